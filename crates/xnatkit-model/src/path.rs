//! The archive URI grammar: the URL forms XNAT accepts and its clients
//! send (`/data/projects/P/subjects/S/experiments/E/scans/N/resources/R/files/F`,
//! `/data/archive/...`, `/REST/...`, and the short `/data/experiments/ID` forms).
//!
//! Clients mix `/data/...`, `/data/archive/...` and `/REST/...`, address
//! subjects and experiments by accession ID or label, use short forms such as
//! `/data/experiments/{ID}/scans/...`, and put comma lists or `ALL` in place of
//! scan IDs. [`ArchivePath::parse`] turns any of those into one structure;
//! resolving IDs versus labels is the server's job.

use std::fmt;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// Characters escaped inside one URI path segment: everything that would end
/// or restructure the segment, plus space and `%` so labels and file names
/// round-trip through [`ArchivePath::split_request_path`].
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\');

/// Escapes one path segment (a label, scan ID, resource label or file name
/// component) for use in an archive URI. Client and server share it so the
/// URIs one builds are the ones the other parses.
pub fn encode_segment(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// What a path addresses. `…s` variants are collection listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Projects,
    Project,
    Subjects,
    Subject,
    Experiments,
    Experiment,
    Scans,
    Scan,
    /// `…/experiments/E/assessors`: a session's image assessors.
    Assessors,
    Assessor,
    Resources,
    Resource,
    Files,
    File,
}

/// Which scans a path names: `ALL`, or an explicit list (`1,2`, or a single
/// ID). XNAT also accepts scan *types* in place of IDs; the server resolves that.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ScanSelector {
    All,
    Ids(Vec<String>),
}

impl ScanSelector {
    pub fn parse(segment: &str) -> Self {
        if segment.eq_ignore_ascii_case("ALL") {
            Self::All
        } else {
            Self::Ids(
                segment
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )
        }
    }

    /// The one scan ID when exactly one was named.
    pub fn single(&self) -> Option<&str> {
        match self {
            Self::Ids(ids) if ids.len() == 1 => Some(ids[0].as_str()),
            _ => None,
        }
    }
}

impl fmt::Display for ScanSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("ALL"),
            Self::Ids(ids) => f.write_str(&ids.join(",")),
        }
    }
}

/// A file path inside a resource (may contain `/`); validated elsewhere
/// for `..` and absolute forms before it touches a disk.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileSelector(pub String);

/// The object that owns resources at a given path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ParentPath {
    Project,
    Subject,
    Experiment,
    Scan,
    Assessor,
}

/// A parsed archive path. Fields are filled from the outside in; `level`
/// says which one is addressed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArchivePath {
    pub project: Option<String>,
    pub subject: Option<String>,
    pub experiment: Option<String>,
    pub scans: Option<ScanSelector>,
    /// An image assessor of the experiment, by accession ID or label.
    pub assessor: Option<String>,
    pub resource: Option<String>,
    pub file: Option<FileSelector>,
    level: Option<Level>,
}

/// A path that is not part of the archive grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("unknown path segment {segment:?} after {after:?}")]
    UnexpectedSegment { segment: String, after: String },
    #[error("path is missing the {what} after {after:?}")]
    Missing { what: &'static str, after: String },
    #[error("path does not start with /data, /data/archive or /REST")]
    NoPrefix,
    #[error(
        "path segment {segment:?} is not UTF-8 text without control characters once \
         percent-decoded; encode names as UTF-8"
    )]
    BadSegment { segment: String },
}

impl ArchivePath {
    pub fn level(&self) -> Level {
        self.level.unwrap_or(Level::Projects)
    }

    /// The kind of object whose resources this path reaches, if any.
    pub fn resource_owner(&self) -> Option<ParentPath> {
        if self.assessor.is_some() {
            Some(ParentPath::Assessor)
        } else if self.scans.is_some() {
            Some(ParentPath::Scan)
        } else if self.experiment.is_some() {
            Some(ParentPath::Experiment)
        } else if self.subject.is_some() {
            Some(ParentPath::Subject)
        } else if self.project.is_some() {
            Some(ParentPath::Project)
        } else {
            None
        }
    }

    /// Splits a raw request path (still percent-encoded) into segments
    /// after the `/data`, `/data/archive` or `/REST` prefix, each
    /// percent-decoded exactly once. A segment that is not UTF-8 once
    /// decoded (`%c0%ae`) or holds a control character (`%00`) is refused:
    /// no label, ID or file name has one, and some databases refuse NUL.
    pub fn split_request_path(raw: &str) -> Result<Vec<String>, PathError> {
        let canonical = crate::uri::canonical_request_path(raw);
        let raw = canonical.as_deref().unwrap_or(raw);
        let decoded = raw
            .split('/')
            .filter(|s| !s.is_empty())
            .map(decode_segment)
            .collect::<Result<Vec<String>, PathError>>()?;
        let mut rest = decoded.as_slice();
        match rest.first().map(String::as_str) {
            Some("data") => rest = &rest[1..],
            _ => return Err(PathError::NoPrefix),
        }
        Ok(rest.to_vec())
    }

    /// Parses a full request path such as
    /// `/data/archive/projects/P/subjects/S/experiments/E/scans/1/resources/DICOM/files/a/b.dcm`.
    pub fn parse_request_path(raw: &str) -> Result<Self, PathError> {
        Self::parse(&Self::split_request_path(raw)?)
    }

    /// Parses decoded segments (prefix already removed).
    pub fn parse(segments: &[String]) -> Result<Self, PathError> {
        let mut path = Self::default();
        let seg = |i: usize| segments.get(i).map(String::as_str);
        let so_far = |i: usize| segments[..i.min(segments.len())].join("/");

        path.level = Some(match seg(0) {
            None => {
                return Err(PathError::Missing {
                    what: "collection",
                    after: String::new(),
                });
            }
            Some("projects") => Level::Projects,
            Some("subjects") => Level::Subjects,
            Some("experiments") => Level::Experiments,
            Some(other) => {
                return Err(PathError::UnexpectedSegment {
                    segment: other.to_owned(),
                    after: String::new(),
                });
            }
        });

        let mut i = 1;
        while let Some(collection) = seg(i) {
            let value = seg(i + 1);
            match (collection, path.level()) {
                ("subjects", Level::Project) => {
                    path.level = Some(Level::Subjects);
                }
                ("experiments", Level::Project | Level::Subject) => {
                    path.level = Some(Level::Experiments);
                }
                ("scans", Level::Experiment) => {
                    path.level = Some(Level::Scans);
                }
                ("assessors", Level::Experiment) => {
                    path.level = Some(Level::Assessors);
                }
                // XNAT files an assessor's resources as inputs (`in`) or
                // outputs (`out`); the labels are unique across both, so
                // both forms reach the same resources.
                ("in" | "out", Level::Assessor)
                    if seg(i + 1) == Some("resources") || seg(i + 1) == Some("files") =>
                {
                    i += 1;
                    continue;
                }
                (
                    "resources",
                    Level::Project
                    | Level::Subject
                    | Level::Experiment
                    | Level::Scan
                    | Level::Assessor,
                ) => {
                    path.level = Some(Level::Resources);
                }
                ("files", Level::Resource | Level::Experiment | Level::Scan | Level::Assessor) => {
                    path.level = Some(Level::Files);
                    if value.is_some() {
                        let rest = segments[i + 1..].join("/");
                        path.file = Some(FileSelector(rest));
                        path.level = Some(Level::File);
                    }
                    return Ok(path);
                }
                // A value following a collection name.
                (v, Level::Subjects) => {
                    path.subject = Some(v.to_owned());
                    path.level = Some(Level::Subject);
                    i += 1;
                    continue;
                }
                (v, Level::Experiments) => {
                    path.experiment = Some(v.to_owned());
                    path.level = Some(Level::Experiment);
                    i += 1;
                    continue;
                }
                (v, Level::Scans) => {
                    path.scans = Some(ScanSelector::parse(v));
                    path.level = Some(Level::Scan);
                    i += 1;
                    continue;
                }
                (v, Level::Assessors) => {
                    path.assessor = Some(v.to_owned());
                    path.level = Some(Level::Assessor);
                    i += 1;
                    continue;
                }
                (v, Level::Resources) => {
                    path.resource = Some(v.to_owned());
                    path.level = Some(Level::Resource);
                    i += 1;
                    continue;
                }
                (v, Level::Projects) => {
                    path.project = Some(v.to_owned());
                    path.level = Some(Level::Project);
                    i += 1;
                    continue;
                }
                (other, _) => {
                    return Err(PathError::UnexpectedSegment {
                        segment: other.to_owned(),
                        after: so_far(i),
                    });
                }
            }
            i += 1;
        }
        Ok(path)
    }
}

/// One raw path segment, percent-decoded once and checked.
pub fn decode_segment(raw: &str) -> Result<String, PathError> {
    let bad = || PathError::BadSegment {
        segment: raw.to_owned(),
    };
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| bad())?;
    if decoded.chars().any(char::is_control) {
        return Err(bad());
    }
    Ok(decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(raw: &str) -> ArchivePath {
        ArchivePath::parse_request_path(raw).unwrap()
    }

    #[test]
    fn segments_are_decoded_once_and_checked() {
        let segments = ArchivePath::split_request_path("/data/files/a%252Fb/%2e%2e/c%20d").unwrap();
        assert_eq!(segments, ["files", "a%2Fb", "..", "c d"]);
        for bad in [
            "/data/x/%00",
            "/data/x/a%0Ab",
            "/data/%c0%ae%c0%ae",
            "/data/%ff",
        ] {
            assert!(
                matches!(
                    ArchivePath::split_request_path(bad),
                    Err(PathError::BadSegment { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn full_hierarchy_with_archive_prefix() {
        let path = p(
            "/data/archive/projects/P/subjects/S/experiments/E/scans/1/resources/DICOM/files/a/b%20c.dcm",
        );
        assert_eq!(path.project.as_deref(), Some("P"));
        assert_eq!(path.subject.as_deref(), Some("S"));
        assert_eq!(path.experiment.as_deref(), Some("E"));
        assert_eq!(path.scans, Some(ScanSelector::Ids(vec!["1".into()])));
        assert_eq!(path.resource.as_deref(), Some("DICOM"));
        assert_eq!(path.file, Some(FileSelector("a/b c.dcm".into())));
        assert_eq!(path.level(), Level::File);
        assert_eq!(path.resource_owner(), Some(ParentPath::Scan));
    }

    #[test]
    fn short_forms_and_listings() {
        assert_eq!(p("/data/projects").level(), Level::Projects);
        assert_eq!(p("/REST/projects/P").level(), Level::Project);
        let e = p("/data/experiments/XNAT_E00001/scans/ALL/files");
        assert_eq!(e.scans, Some(ScanSelector::All));
        assert_eq!(e.level(), Level::Files);
        let s = p("/data/subjects/XNAT_S00001/experiments");
        assert_eq!(s.subject.as_deref(), Some("XNAT_S00001"));
        assert_eq!(s.level(), Level::Experiments);
        let pe = p("/data/projects/P/experiments/E/resources");
        assert_eq!(pe.level(), Level::Resources);
        assert_eq!(pe.resource_owner(), Some(ParentPath::Experiment));
        assert_eq!(
            p("/data/experiments/E/scans/1,2/files").scans,
            Some(ScanSelector::Ids(vec!["1".into(), "2".into()]))
        );
    }

    #[test]
    fn assessor_paths() {
        let list = p("/data/experiments/E1/assessors");
        assert_eq!(list.level(), Level::Assessors);
        let item = p("/data/projects/P/subjects/S/experiments/E/assessors/QC1");
        assert_eq!(item.assessor.as_deref(), Some("QC1"));
        assert_eq!(item.level(), Level::Assessor);
        for raw in [
            "/data/experiments/E/assessors/A/resources/R/files/x.json",
            "/data/experiments/E/assessors/A/out/resources/R/files/x.json",
            "/data/experiments/E/assessors/A/in/resources/R/files/x.json",
        ] {
            let f = p(raw);
            assert_eq!(f.level(), Level::File, "{raw}");
            assert_eq!(f.assessor.as_deref(), Some("A"));
            assert_eq!(f.resource.as_deref(), Some("R"));
            assert_eq!(f.resource_owner(), Some(ParentPath::Assessor));
        }
        assert_eq!(
            p("/data/experiments/E/assessors/A/files").level(),
            Level::Files
        );
        assert!(ArchivePath::parse_request_path("/data/experiments/E/assessors/A/scans").is_err());
        assert!(ArchivePath::parse_request_path("/data/projects/P/assessors").is_err());
    }

    #[test]
    fn encoded_segments_round_trip() {
        for raw in ["a b", "x/y", "50%", "q?#", "ü", "back\\slash"] {
            let uri = format!("/data/projects/P/resources/R/files/{}", encode_segment(raw));
            assert_eq!(p(&uri).file, Some(FileSelector(raw.to_owned())), "{raw}");
        }
    }

    #[test]
    fn rejects_unknown_segments() {
        assert!(ArchivePath::parse_request_path("/data/projects/P/bogus/x").is_err());
        assert!(ArchivePath::parse_request_path("/other/projects").is_err());
        assert!(ArchivePath::parse_request_path("/data/projects/P/subjects/S/scans/1").is_err());
    }
}
