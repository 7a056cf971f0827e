//! xsi types: the `xsiType` strings XNAT uses for every object it returns.
//! The server's schema (served at `/xapi/schemas/xnat`) must define every type
//! listed in [`XsiType::ALL`]; xnatpy builds its classes from that schema.

use std::fmt;

/// Every object type xnatkit creates or returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XsiType {
    Project,
    Subject,
    MrSession,
    CtSession,
    PetSession,
    PetMrSession,
    UsSession,
    OtherDicomSession,
    MrScan,
    CtScan,
    PetScan,
    UsScan,
    OtherDicomScan,
    ResourceCatalog,
}

impl XsiType {
    pub const ALL: [Self; 14] = [
        Self::Project,
        Self::Subject,
        Self::MrSession,
        Self::CtSession,
        Self::PetSession,
        Self::PetMrSession,
        Self::UsSession,
        Self::OtherDicomSession,
        Self::MrScan,
        Self::CtScan,
        Self::PetScan,
        Self::UsScan,
        Self::OtherDicomScan,
        Self::ResourceCatalog,
    ];

    /// The namespaced name, e.g. `xnat:mrSessionData`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Project => "xnat:projectData",
            Self::Subject => "xnat:subjectData",
            Self::MrSession => "xnat:mrSessionData",
            Self::CtSession => "xnat:ctSessionData",
            Self::PetSession => "xnat:petSessionData",
            Self::PetMrSession => "xnat:petmrSessionData",
            Self::UsSession => "xnat:usSessionData",
            Self::OtherDicomSession => "xnat:otherDicomSessionData",
            Self::MrScan => "xnat:mrScanData",
            Self::CtScan => "xnat:ctScanData",
            Self::PetScan => "xnat:petScanData",
            Self::UsScan => "xnat:usScanData",
            Self::OtherDicomScan => "xnat:otherDicomScanData",
            Self::ResourceCatalog => "xnat:resourceCatalog",
        }
    }

    /// Parses a type name; accepts the case-insensitive forms clients send
    /// (`xnat:MRSessionData`, `xnat:mrSessionData`) and the schema element
    /// aliases (`xnat:MRSession`).
    pub fn parse(raw: &str) -> Option<Self> {
        let lower = raw.trim().to_ascii_lowercase();
        let name = lower.strip_prefix("xnat:").unwrap_or(&lower);
        let found = match name {
            "projectdata" | "project" => Self::Project,
            "subjectdata" | "subject" => Self::Subject,
            "mrsessiondata" | "mrsession" => Self::MrSession,
            "ctsessiondata" | "ctsession" => Self::CtSession,
            "petsessiondata" | "petsession" => Self::PetSession,
            "petmrsessiondata" | "petmrsession" => Self::PetMrSession,
            "ussessiondata" | "ussession" => Self::UsSession,
            "otherdicomsessiondata" | "otherdicomsession" => Self::OtherDicomSession,
            "mrscandata" | "mrscan" => Self::MrScan,
            "ctscandata" | "ctscan" => Self::CtScan,
            "petscandata" | "petscan" => Self::PetScan,
            "usscandata" | "usscan" => Self::UsScan,
            "otherdicomscandata" | "otherdicomscan" => Self::OtherDicomScan,
            "resourcecatalog" | "resource" | "abstractresource" => Self::ResourceCatalog,
            _ => return None,
        };
        Some(found)
    }

    pub fn is_session(self) -> bool {
        matches!(
            self,
            Self::MrSession
                | Self::CtSession
                | Self::PetSession
                | Self::PetMrSession
                | Self::UsSession
                | Self::OtherDicomSession
        )
    }

    pub fn is_scan(self) -> bool {
        matches!(
            self,
            Self::MrScan | Self::CtScan | Self::PetScan | Self::UsScan | Self::OtherDicomScan
        )
    }

    /// The modality string a session of this type reports.
    pub fn modality(self) -> Option<&'static str> {
        match self {
            Self::MrSession | Self::MrScan => Some("MR"),
            Self::CtSession | Self::CtScan => Some("CT"),
            Self::PetSession | Self::PetScan => Some("PT"),
            Self::PetMrSession => Some("PT"),
            Self::UsSession | Self::UsScan => Some("US"),
            _ => None,
        }
    }
}

impl fmt::Display for XsiType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The modality family a session belongs to, decided from DICOM Modality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionModality {
    Mr,
    Ct,
    Pet,
    PetMr,
    Us,
    Other,
}

impl SessionModality {
    /// XNAT's rule: a study is PET if it has a PT series (PET/MR when MR too),
    /// else MR, CT or US by the primary modality; anything else is "other DICOM".
    pub fn from_modalities<'a>(modalities: impl IntoIterator<Item = &'a str>) -> Self {
        let mut has = |m: &str| m.to_ascii_uppercase();
        let set: Vec<String> = modalities.into_iter().map(&mut has).collect();
        let any = |m: &str| set.iter().any(|s| s == m);
        if any("PT") && any("MR") {
            Self::PetMr
        } else if any("PT") {
            Self::Pet
        } else if any("MR") {
            Self::Mr
        } else if any("CT") {
            Self::Ct
        } else if any("US") {
            Self::Us
        } else {
            Self::Other
        }
    }

    pub fn session_type(self) -> XsiType {
        match self {
            Self::Mr => XsiType::MrSession,
            Self::Ct => XsiType::CtSession,
            Self::Pet => XsiType::PetSession,
            Self::PetMr => XsiType::PetMrSession,
            Self::Us => XsiType::UsSession,
            Self::Other => XsiType::OtherDicomSession,
        }
    }

    /// Scan type for a series of `modality` inside a session.
    pub fn scan_type_for(modality: &str) -> XsiType {
        match modality.to_ascii_uppercase().as_str() {
            "MR" => XsiType::MrScan,
            "CT" => XsiType::CtScan,
            "PT" => XsiType::PetScan,
            "US" => XsiType::UsScan,
            _ => XsiType::OtherDicomScan,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_type() {
        for t in XsiType::ALL {
            assert_eq!(XsiType::parse(t.as_str()), Some(t));
        }
        assert_eq!(
            XsiType::parse("xnat:MRSessionData"),
            Some(XsiType::MrSession)
        );
        assert_eq!(XsiType::parse("xnat:nonsense"), None);
    }

    #[test]
    fn modality_rules() {
        assert_eq!(
            SessionModality::from_modalities(["MR", "PT"]),
            SessionModality::PetMr
        );
        assert_eq!(
            SessionModality::from_modalities(["ct", "SR"]),
            SessionModality::Ct
        );
        assert_eq!(
            SessionModality::from_modalities(["SR"]),
            SessionModality::Other
        );
    }
}
