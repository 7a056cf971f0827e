//! Session and scan data types chosen from modalities and SOP classes, as XNAT's
//! session builder does.

/// The XNAT image session type of a study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionKind {
    Mr,
    Ct,
    Pet,
    PetMr,
    Us,
    Nm,
    Cr,
    Dx,
    Mg,
    Xa,
    Rf,
    Ecg,
    Es,
    Io,
    Op,
    Opt,
    Sm,
    Gm,
    /// No modality XNAT has a session type for (e.g. only secondary captures).
    Other,
}

/// Modalities that lead a study, strongest first: a study gets the session type of
/// its strongest modality. PT beats MR and CT (PET/CT is a PET session), MR and CT
/// beat everything else; SC, OT, SR, SEG, RT*, KO, PR never lead.
const LEAD_ORDER: &[(&str, SessionKind)] = &[
    ("PT", SessionKind::Pet),
    ("MR", SessionKind::Mr),
    ("CT", SessionKind::Ct),
    ("NM", SessionKind::Nm),
    ("US", SessionKind::Us),
    ("XA", SessionKind::Xa),
    ("RF", SessionKind::Rf),
    ("MG", SessionKind::Mg),
    ("DX", SessionKind::Dx),
    ("CR", SessionKind::Cr),
    ("ES", SessionKind::Es),
    ("IO", SessionKind::Io),
    ("OP", SessionKind::Op),
    ("OPT", SessionKind::Opt),
    ("SM", SessionKind::Sm),
    ("GM", SessionKind::Gm),
    ("ECG", SessionKind::Ecg),
];

impl SessionKind {
    /// The session type for a study containing these modalities. PET together with
    /// MR becomes a PET/MR session (XNAT's "create as PET/MR" setting); callers that
    /// want "as PET" map [`SessionKind::PetMr`] to [`SessionKind::Pet`].
    pub fn from_modalities<I, S>(modalities: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let present: Vec<String> = modalities
            .into_iter()
            .map(|m| m.as_ref().trim().to_ascii_uppercase())
            .collect();
        let has = |m: &str| present.iter().any(|p| p == m);
        if has("PT") && has("MR") {
            return SessionKind::PetMr;
        }
        LEAD_ORDER
            .iter()
            .find(|(modality, _)| has(modality))
            .map_or(SessionKind::Other, |(_, kind)| *kind)
    }

    /// The strongest modality among `modalities` (what XNAT calls the lead modality).
    pub fn lead_modality<'a>(modalities: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
        let present: Vec<&str> = modalities.into_iter().collect();
        LEAD_ORDER.iter().find_map(|(modality, _)| {
            present
                .iter()
                .find(|p| p.trim().eq_ignore_ascii_case(modality))
                .copied()
        })
    }

    /// XSI type of the session, e.g. `xnat:mrSessionData`.
    pub fn session_xsi_type(&self) -> &'static str {
        match self {
            SessionKind::Mr => "xnat:mrSessionData",
            SessionKind::Ct => "xnat:ctSessionData",
            SessionKind::Pet => "xnat:petSessionData",
            SessionKind::PetMr => "xnat:petmrSessionData",
            SessionKind::Us => "xnat:usSessionData",
            SessionKind::Nm => "xnat:nmSessionData",
            SessionKind::Cr => "xnat:crSessionData",
            SessionKind::Dx => "xnat:dxSessionData",
            SessionKind::Mg => "xnat:mgSessionData",
            SessionKind::Xa => "xnat:xaSessionData",
            SessionKind::Rf => "xnat:rfSessionData",
            SessionKind::Ecg => "xnat:ecgSessionData",
            SessionKind::Es => "xnat:esSessionData",
            SessionKind::Io => "xnat:ioSessionData",
            SessionKind::Op => "xnat:opSessionData",
            SessionKind::Opt => "xnat:optSessionData",
            SessionKind::Sm => "xnat:smSessionData",
            SessionKind::Gm => "xnat:gmSessionData",
            SessionKind::Other => "xnat:otherDicomSessionData",
        }
    }

    /// The kind whose session XSI type is `xsi_type` (`xnat:mrSessionData` → `Mr`).
    pub fn from_session_xsi_type(xsi_type: &str) -> Option<Self> {
        ALL_KINDS
            .iter()
            .copied()
            .find(|kind| kind.session_xsi_type().eq_ignore_ascii_case(xsi_type))
    }

    /// XSI type of a scan of this modality, e.g. `xnat:mrScanData`.
    pub fn scan_xsi_type(modality: &str) -> &'static str {
        match modality.trim().to_ascii_uppercase().as_str() {
            "MR" => "xnat:mrScanData",
            "CT" => "xnat:ctScanData",
            "PT" => "xnat:petScanData",
            "US" => "xnat:usScanData",
            "NM" => "xnat:nmScanData",
            "CR" => "xnat:crScanData",
            "DX" => "xnat:dxScanData",
            "MG" => "xnat:mgScanData",
            "XA" => "xnat:xaScanData",
            "RF" => "xnat:rfScanData",
            "ECG" => "xnat:ecgScanData",
            "ES" => "xnat:esScanData",
            "IO" => "xnat:ioScanData",
            "OP" => "xnat:opScanData",
            "OPT" => "xnat:optScanData",
            "SM" => "xnat:smScanData",
            "GM" => "xnat:gmScanData",
            "SR" => "xnat:srScanData",
            "SEG" => "xnat:segScanData",
            "SC" => "xnat:scScanData",
            "RTIMAGE" => "xnat:rtImageScanData",
            _ => "xnat:otherDicomScanData",
        }
    }

    /// XSI type of a scan, looking at the SOP class first: secondary captures,
    /// structured reports and segmentations keep their own scan types whatever
    /// their Modality says.
    pub fn scan_xsi_type_for(sop_class_uid: &str, modality: &str) -> &'static str {
        if let Some(special) = sop_class_scan_type(sop_class_uid) {
            return special;
        }
        Self::scan_xsi_type(modality)
    }
}

const ALL_KINDS: &[SessionKind] = &[
    SessionKind::Mr,
    SessionKind::Ct,
    SessionKind::Pet,
    SessionKind::PetMr,
    SessionKind::Us,
    SessionKind::Nm,
    SessionKind::Cr,
    SessionKind::Dx,
    SessionKind::Mg,
    SessionKind::Xa,
    SessionKind::Rf,
    SessionKind::Ecg,
    SessionKind::Es,
    SessionKind::Io,
    SessionKind::Op,
    SessionKind::Opt,
    SessionKind::Sm,
    SessionKind::Gm,
    SessionKind::Other,
];

fn sop_class_scan_type(sop_class_uid: &str) -> Option<&'static str> {
    use dicom_dictionary_std::uids;
    let uid = sop_class_uid.trim_end_matches(['\0', ' ']);
    if uid == "1.2.840.10008.5.1.4.1.1.7" || uid.starts_with("1.2.840.10008.5.1.4.1.1.7.") {
        // 1.2.840.10008.5.1.4.1.1.7[.x]: (multi-frame) secondary capture
        Some("xnat:scScanData")
    } else if uid.starts_with("1.2.840.10008.5.1.4.1.1.88.") {
        Some("xnat:srScanData")
    } else if uid == uids::SEGMENTATION_STORAGE {
        Some("xnat:segScanData")
    } else if uid == uids::RT_IMAGE_STORAGE {
        Some("xnat:rtImageScanData")
    } else {
        None
    }
}

/// The modality implied by an image SOP class, for instances whose Modality is empty.
pub(crate) fn modality_of_sop_class(sop_class_uid: &str) -> Option<&'static str> {
    use dicom_dictionary_std::uids;
    let uid = sop_class_uid.trim_end_matches(['\0', ' ']);
    let modality = match uid {
        uids::MR_IMAGE_STORAGE
        | uids::ENHANCED_MR_IMAGE_STORAGE
        | uids::ENHANCED_MR_COLOR_IMAGE_STORAGE
        | uids::MR_SPECTROSCOPY_STORAGE => "MR",
        uids::CT_IMAGE_STORAGE | uids::ENHANCED_CT_IMAGE_STORAGE => "CT",
        uids::POSITRON_EMISSION_TOMOGRAPHY_IMAGE_STORAGE | uids::ENHANCED_PET_IMAGE_STORAGE => "PT",
        uids::ULTRASOUND_IMAGE_STORAGE | uids::ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE => "US",
        uids::NUCLEAR_MEDICINE_IMAGE_STORAGE => "NM",
        uids::COMPUTED_RADIOGRAPHY_IMAGE_STORAGE => "CR",
        _ => return None,
    };
    Some(modality)
}

#[cfg(test)]
mod tests {
    use super::SessionKind;

    #[test]
    fn lead_modality_decides_the_session_type() {
        assert_eq!(SessionKind::from_modalities(["MR"]), SessionKind::Mr);
        assert_eq!(SessionKind::from_modalities(["CT", "PT"]), SessionKind::Pet);
        assert_eq!(
            SessionKind::from_modalities(["PT", "CT", "RTSTRUCT"]),
            SessionKind::Pet
        );
        assert_eq!(
            SessionKind::from_modalities(["MR", "RTSTRUCT"]),
            SessionKind::Mr
        );
        assert_eq!(
            SessionKind::from_modalities(["MR", "SC", "OT"]),
            SessionKind::Mr
        );
        assert_eq!(
            SessionKind::from_modalities(["MR", "PT"]),
            SessionKind::PetMr
        );
        assert_eq!(SessionKind::from_modalities(["SC"]), SessionKind::Other);
        assert_eq!(SessionKind::from_modalities(["XA"]), SessionKind::Xa);
        assert_eq!(SessionKind::from_modalities(["cr"]), SessionKind::Cr);
        assert_eq!(
            SessionKind::from_modalities(Vec::<String>::new()),
            SessionKind::Other
        );
    }

    #[test]
    fn xsi_types() {
        assert_eq!(SessionKind::Mr.session_xsi_type(), "xnat:mrSessionData");
        assert_eq!(
            SessionKind::Other.session_xsi_type(),
            "xnat:otherDicomSessionData"
        );
        assert_eq!(
            SessionKind::from_session_xsi_type("xnat:petSessionData"),
            Some(SessionKind::Pet)
        );
        assert_eq!(SessionKind::scan_xsi_type("PT"), "xnat:petScanData");
        assert_eq!(
            SessionKind::scan_xsi_type("RTSTRUCT"),
            "xnat:otherDicomScanData"
        );
        assert_eq!(
            SessionKind::scan_xsi_type_for("1.2.840.10008.5.1.4.1.1.7", "CT"),
            "xnat:scScanData"
        );
        assert_eq!(
            SessionKind::scan_xsi_type_for("1.2.840.10008.5.1.4.1.1.4", "MR"),
            "xnat:mrScanData"
        );
        assert_eq!(SessionKind::lead_modality(["SC", "MR", "PT"]), Some("PT"));
    }
}
