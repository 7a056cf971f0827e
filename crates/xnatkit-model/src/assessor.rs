//! Image assessor types: the derived records XNAT attaches to a session
//! (quality control, ROI collections, processing records), with the fields
//! each one carries.
//!
//! Clients set assessor fields as XPath query parameters
//! (`?xsiType=proc:genProcData&proc:genProcData/procstatus=JOB_RUNNING`), so
//! the server needs, per type, which field paths exist; the schemas served at
//! `/xapi/schemas/...` are generated from the same lists so the fields a
//! client can set are the ones its classes know.

use std::fmt;

use crate::items::{ItemChild, ObjectItem};

/// Every image assessor type xnatkit stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssessorType {
    /// `xnat:imageAssessorData`, the generic derived record.
    ImageAssessor,
    /// `xnat:qcAssessmentData`: per-scan statistics from an automatic QA.
    QcAssessment,
    /// `xnat:qcManualAssessorData`: a person's pass/fail verdict.
    QcManualAssessor,
    /// `icr:roiCollectionData`: ROIs as the XNAT OHIF viewer saves them.
    RoiCollection,
    /// `proc:genProcData`: dax's processing record.
    GenProc,
}

/// Fields every assessor has (XNAT's `experimentData`), settable by XPath.
pub const COMMON_FIELDS: [&str; 4] = ["date", "time", "note", "visit_id"];

impl AssessorType {
    pub const ALL: [Self; 5] = [
        Self::ImageAssessor,
        Self::QcAssessment,
        Self::QcManualAssessor,
        Self::RoiCollection,
        Self::GenProc,
    ];

    /// The namespaced name, e.g. `proc:genProcData`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ImageAssessor => "xnat:imageAssessorData",
            Self::QcAssessment => "xnat:qcAssessmentData",
            Self::QcManualAssessor => "xnat:qcManualAssessorData",
            Self::RoiCollection => "icr:roiCollectionData",
            Self::GenProc => "proc:genProcData",
        }
    }

    /// The schema namespace prefix (`xnat`, `icr`, `proc`).
    pub fn namespace(self) -> &'static str {
        self.as_str().split(':').next().unwrap_or("xnat")
    }

    /// The type name without its prefix (`genProcData`).
    pub fn local_name(self) -> &'static str {
        let full = self.as_str();
        full.split_once(':').map_or(full, |(_, local)| local)
    }

    /// Parses a type name case-insensitively, with or without the `Data`
    /// suffix XNAT's element aliases drop (`xnat:QCAssessment`).
    pub fn parse(raw: &str) -> Option<Self> {
        let lower = raw.trim().to_ascii_lowercase();
        let lower = lower.strip_suffix("data").unwrap_or(&lower);
        Self::ALL.into_iter().find(|t| {
            let own = t.as_str().to_ascii_lowercase();
            own.strip_suffix("data") == Some(lower)
        })
    }

    /// The fields of this type, beyond [`COMMON_FIELDS`], as XPath
    /// steps below the type (`validation/status`). Nested records of
    /// these types (a QC assessment's per-scan statistics, an ROI
    /// collection's ROI list) are written by the server, not by XPath.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Self::ImageAssessor => &[],
            Self::QcAssessment => &["type"],
            Self::QcManualAssessor => &[
                "rater",
                "pass",
                "comments",
                "payable",
                "rescan",
                "incidentalFindings",
                "stereotacticMarker",
            ],
            Self::RoiCollection => &[
                "collectionType",
                "subjectID",
                "name",
                "description",
                "references/seriesUID",
            ],
            Self::GenProc => &[
                "procstatus",
                "proctype",
                "procversion",
                "jobid",
                "walltimeused",
                "memused",
                "memusedmb",
                "jobnode",
                "jobstartdate",
                "inputs",
                "dax_version",
                "dax_version_hash",
                "dax_docker_version",
                "validation/status",
                "validation/method",
                "validation/notes",
                "validation/validated_by",
                "validation/date",
            ],
        }
    }

    /// The stored name of a settable field, found case-insensitively
    /// (clients send `procStatus` as often as `procstatus`).
    pub fn field(self, name: &str) -> Option<&'static str> {
        COMMON_FIELDS
            .iter()
            .chain(self.fields())
            .find(|f| f.eq_ignore_ascii_case(name))
            .copied()
    }
}

impl fmt::Display for AssessorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The label of the assessor a pipeline files for an output on a session
/// (or one of its scans): `{session}_{label}[_{scan}]`, with anything a
/// label may not hold turned into `_` (scan IDs may carry dots). The
/// server's engine and the client's local runner both name QA assessors
/// so, and find them again by it.
pub fn output_assessor_label(session: &str, label: &str, scan: Option<&str>) -> String {
    let raw = match scan {
        Some(scan) => format!("{session}_{label}_{scan}"),
        None => format!("{session}_{label}"),
    };
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The `scans/scan` child of an `xnat:qcAssessmentData` item: per scan, its
/// `scanStatistics` with XNAT's named statistics (`mean`, `snr`, `min`,
/// `max`, `stddev`, `no_of_voxels`) as fields and every metric as a named
/// `additionalStatistics` entry, the layout XNAT's schema gives.
pub fn qc_scan_statistics(scans: &[(String, Vec<(String, f64)>)]) -> ItemChild {
    const NAMED: [(&str, &str); 6] = [
        ("mean", "mean"),
        ("snr", "snr"),
        ("min", "min"),
        ("max", "max"),
        ("stddev", "stddev"),
        ("mask_voxels", "no_of_voxels"),
    ];
    let items = scans
        .iter()
        .map(|(scan_id, metrics)| {
            let mut stats = ObjectItem::new("xnat:statisticsData");
            for (metric, field) in NAMED {
                if let Some((_, value)) = metrics.iter().find(|(m, _)| m == metric) {
                    stats.set(field, format!("{value}"));
                }
            }
            let additional = metrics
                .iter()
                .map(|(name, value)| {
                    let mut entry = ObjectItem::new("xnat:statisticsData_additionalStatistics");
                    entry.set("name", name.clone());
                    entry.set("additionalStatistics", format!("{value}"));
                    entry
                })
                .collect();
            stats.children.push(ItemChild {
                field: "additionalStatistics".to_owned(),
                items: additional,
            });
            let mut scan = ObjectItem::new("xnat:qcAssessmentData_scan");
            scan.set("id", scan_id.clone());
            scan.children.push(ItemChild {
                field: "scanStatistics".to_owned(),
                items: vec![stats],
            });
            scan
        })
        .collect();
    ItemChild {
        field: "scans/scan".to_owned(),
        items,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_clients_send() {
        assert_eq!(
            AssessorType::parse("xnat:qcAssessmentData"),
            Some(AssessorType::QcAssessment)
        );
        assert_eq!(
            AssessorType::parse("xnat:QCAssessment"),
            Some(AssessorType::QcAssessment)
        );
        assert_eq!(
            AssessorType::parse("PROC:GENPROCDATA"),
            Some(AssessorType::GenProc)
        );
        assert_eq!(AssessorType::parse("xnat:mrSessionData"), None);
        for t in AssessorType::ALL {
            assert_eq!(AssessorType::parse(t.as_str()), Some(t));
        }
    }

    #[test]
    fn qc_statistics_keep_every_metric() {
        let child = qc_scan_statistics(&[(
            "3".to_owned(),
            vec![("snr".to_owned(), 12.5), ("efc".to_owned(), 0.4)],
        )]);
        assert_eq!(child.field, "scans/scan");
        let scan = &child.items[0];
        assert_eq!(scan.get_str("id"), Some("3"));
        let stats = &scan.children[0].items[0];
        assert_eq!(stats.get_str("snr"), Some("12.5"));
        let names: Vec<_> = stats.children[0]
            .items
            .iter()
            .filter_map(|i| i.get_str("name"))
            .collect();
        assert_eq!(names, ["snr", "efc"]);
    }

    #[test]
    fn fields_are_found_case_insensitively() {
        let t = AssessorType::GenProc;
        assert_eq!(t.field("procStatus"), Some("procstatus"));
        assert_eq!(t.field("validation/STATUS"), Some("validation/status"));
        assert_eq!(t.field("note"), Some("note"));
        assert_eq!(t.field("bogus"), None);
        assert_eq!(t.local_name(), "genProcData");
        assert_eq!(t.namespace(), "proc");
    }
}
