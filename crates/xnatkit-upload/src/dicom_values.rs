//! The DICOM attributes a mapping may name (`DICOM:StudyDate`), read from a
//! header parsed by `xnatkit-dicom`, and xnatuploader's rules for files it refuses.

use xnatkit_dicom::DicomHeader;

/// Attributes `DICOM:<name>` can refer to. The first seven are the ones
/// xnatuploader 1.1.9 reads; the rest are extensions.
pub const SUPPORTED: &[&str] = &[
    "Modality",
    "SeriesNumber",
    "StudyDescription",
    "StudyDate",
    "Manufacturer",
    "ManufacturerModelName",
    "StationName",
    "PatientID",
    "PatientName",
    "AccessionNumber",
    "SeriesDescription",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "StudyID",
    "StudyTime",
    "ProtocolName",
    "BodyPartExamined",
    "InstitutionName",
];

/// The DICOM columns of the Files worksheet, after `SessionLabel`, in
/// xnatuploader's order.
pub const SHEET_COLUMNS: &[&str] = &[
    "DICOM:Manufacturer",
    "DICOM:ManufacturerModelName",
    "DICOM:Modality",
    "DICOM:SeriesNumber",
    "DICOM:StationName",
    "DICOM:StudyDate",
    "DICOM:StudyDescription",
];

type Getter = fn(&DicomHeader) -> Option<String>;

/// The getter for a supported attribute name.
pub fn lookup_supported(attribute: &str) -> Option<Getter> {
    let getter: Getter = match attribute {
        "Modality" => |h| h.effective_modality(),
        "SeriesNumber" => |h| h.series_number.map(|n| n.to_string()),
        "StudyDescription" => |h| h.study_description.clone(),
        "StudyDate" => |h| h.study_date.clone(),
        "Manufacturer" => |h| h.manufacturer.clone(),
        "ManufacturerModelName" => |h| h.manufacturer_model_name.clone(),
        "StationName" => |h| h.station_name.clone(),
        "PatientID" => |h| h.patient_id.clone(),
        "PatientName" => |h| h.patient_name.clone(),
        "AccessionNumber" => |h| h.accession_number.clone(),
        "SeriesDescription" => |h| h.series_description.clone(),
        "StudyInstanceUID" => |h| non_empty(&h.study_instance_uid),
        "SeriesInstanceUID" => |h| non_empty(&h.series_instance_uid),
        "StudyID" => |h| h.study_id.clone(),
        "StudyTime" => |h| h.study_time.clone(),
        "ProtocolName" => |h| h.protocol_name.clone(),
        "BodyPartExamined" => |h| h.body_part_examined.clone(),
        "InstitutionName" => |h| h.institution_name.clone(),
        _ => return None,
    };
    Some(getter)
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// Every supported attribute present in `header`, keyed `DICOM:<name>`.
pub fn values(header: &DicomHeader) -> Vec<(String, String)> {
    SUPPORTED
        .iter()
        .filter_map(|name| {
            let get = lookup_supported(name)?;
            get(header).map(|v| (format!("DICOM:{name}"), v))
        })
        .collect()
}

/// Why xnatuploader would refuse this DICOM file, if it would: encapsulated
/// documents and structured reports are not images, and XNAT's header
/// extraction breaks on `DOSE_INFO` images.
pub fn refusal(header: &DicomHeader) -> Option<&'static str> {
    const ENCAPSULATED_DOCUMENT_PREFIX: &str = "1.2.840.10008.5.1.4.1.1.104.";
    if header
        .sop_class_uid
        .starts_with(ENCAPSULATED_DOCUMENT_PREFIX)
    {
        return Some("DICOM is an encapsulated report");
    }
    match header.effective_modality().as_deref() {
        None => return Some("DICOM has no modality"),
        Some("SR") => return Some("DICOM is an SR (structured report)"),
        Some(_) => {}
    }
    let third_image_type = header
        .image_type
        .as_deref()
        .and_then(|t| t.split('\\').nth(2));
    if third_image_type == Some("DOSE_INFO") {
        return Some("DICOM has ImageType DOSE_INFO");
    }
    None
}
