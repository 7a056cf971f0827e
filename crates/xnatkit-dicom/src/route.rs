//! Project / subject / session routing of DICOM when the request does not say
//! where data belongs (XNAT's DICOM object identifier order).

use std::sync::LazyLock;

use regex::Regex;

use crate::header::DicomHeader;
use xnatkit_model::label::{is_valid_label, sanitize_label};

/// Explicit destination given with the request (`project`, `subject`, `session`
/// parameters); each one wins over anything found in the headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutingHints {
    pub project: Option<String>,
    pub subject: Option<String>,
    pub session: Option<String>,
}

/// Where an instance belongs. `None` means no rule gave a value: an instance
/// without project is "Unassigned" (prearchive); a session without label is
/// called [`FALLBACK_SESSION_LABEL`] by XNAT.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Route {
    pub project: Option<String>,
    pub subject: Option<String>,
    pub session: Option<String>,
    /// `AA:true|false` from the comment fields: overrides the project's auto-archive setting.
    pub auto_archive: Option<bool>,
}

/// Label XNAT gives a session when no rule names one.
pub const FALLBACK_SESSION_LABEL: &str = "dicom_upload";

/// Routes without knowing which projects exist: a project candidate counts when
/// it is a syntactically valid project ID. Use [`route_with`] to check existence
/// (and access) as XNAT does.
pub fn route(header: &DicomHeader, hints: &RoutingHints) -> Route {
    route_with(header, hints, |_| true)
}

/// Routes in XNAT's order. `project_usable(id)` says whether a candidate names a
/// project the importing user may write to; unusable candidates (an unknown
/// explicit `project` included, as in XNAT) fall through to the next rule:
///
/// - project: hint; `Project:` in Patient Comments, Study Comments, Additional
///   Patient History; Study Description; Accession Number.
/// - subject: hint; `Subject:` in the comment fields; Patient Name.
/// - session: hint; `Session:` in the comment fields; Patient ID.
///
/// Subject and session labels are sanitised to `[A-Za-z0-9_-]`.
pub fn route_with(
    header: &DicomHeader,
    hints: &RoutingHints,
    project_usable: impl Fn(&str) -> bool,
) -> Route {
    let comment_fields = [
        header.patient_comments.as_deref(),
        header.study_comments.as_deref(),
        header.additional_patient_history.as_deref(),
    ];
    let from_comments = |key: &Option<Regex>| {
        comment_fields
            .iter()
            .flatten()
            .filter_map(|text| extract_assignment(key, text))
            .collect::<Vec<_>>()
    };

    let project_candidates = hints
        .project
        .iter()
        .map(|p| p.trim().to_owned())
        .chain(from_comments(&PROJECT_KEY))
        .chain(header.study_description.iter().map(|d| d.trim().to_owned()))
        .chain(header.accession_number.iter().map(|a| a.trim().to_owned()));
    let project = project_candidates
        .into_iter()
        .find(|candidate| is_valid_label(candidate) && project_usable(candidate));

    let first_label =
        |explicit: &Option<String>, key: &Option<Regex>, fallback: &Option<String>| {
            explicit
                .iter()
                .map(|s| s.to_owned())
                .chain(from_comments(key))
                .chain(fallback.iter().cloned())
                .find_map(|raw| sanitize_label(&raw))
        };
    let subject = first_label(&hints.subject, &SUBJECT_KEY, &header.patient_name);
    let session = first_label(&hints.session, &SESSION_KEY, &header.patient_id);
    let auto_archive = from_comments(&AUTO_ARCHIVE_KEY)
        .into_iter()
        .find_map(|value| match value.to_ascii_lowercase().as_str() {
            "t" | "true" => Some(true),
            "f" | "false" => Some(false),
            _ => None,
        });

    Route {
        project,
        subject,
        session,
        auto_archive,
    }
}

// `Key: value` inside free text: the key starts the text or follows whitespace, `,`
// or `;`; the value is `[\w-]*` and is followed by whitespace, `,`, `;` or the end.
// The keys are constants, so the pattern always compiles; `Option` keeps the
// library free of panics anyway.
fn assignment_pattern(key: &str) -> Option<Regex> {
    let pattern = format!(r"(?i)(?:^|[\s,;]){key}\s*:\s*([A-Za-z0-9_-]*)(?:[\s,;]|$)");
    Regex::new(&pattern).ok()
}

static PROJECT_KEY: LazyLock<Option<Regex>> = LazyLock::new(|| assignment_pattern("Project"));
static SUBJECT_KEY: LazyLock<Option<Regex>> = LazyLock::new(|| assignment_pattern("Subject"));
static SESSION_KEY: LazyLock<Option<Regex>> = LazyLock::new(|| assignment_pattern("Session"));
static AUTO_ARCHIVE_KEY: LazyLock<Option<Regex>> = LazyLock::new(|| assignment_pattern("AA"));

fn extract_assignment(key: &Option<Regex>, text: &str) -> Option<String> {
    key.as_ref()?
        .captures(text)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_owned())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> DicomHeader {
        DicomHeader {
            patient_name: Some("Doe^John".into()),
            patient_id: Some("PID 001".into()),
            study_description: Some("Brain MRI".into()),
            accession_number: Some("ACC1".into()),
            ..DicomHeader::default()
        }
    }

    #[test]
    fn explicit_hints_win() {
        let hints = RoutingHints {
            project: Some("P1".into()),
            subject: Some("S 1".into()),
            session: Some("E1".into()),
        };
        let route = route(&header(), &hints);
        assert_eq!(route.project.as_deref(), Some("P1"));
        assert_eq!(route.subject.as_deref(), Some("S_1"));
        assert_eq!(route.session.as_deref(), Some("E1"));
    }

    #[test]
    fn comments_then_description_then_accession() {
        let mut h = header();
        h.study_comments = Some("Project:BobsProj Subject:s001 Session:s001_MR1 AA:true".into());
        let r = route(&h, &RoutingHints::default());
        assert_eq!(r.project.as_deref(), Some("BobsProj"));
        assert_eq!(r.subject.as_deref(), Some("s001"));
        assert_eq!(r.session.as_deref(), Some("s001_MR1"));
        assert_eq!(r.auto_archive, Some(true));

        // "Brain MRI" is not a valid project ID, so accession number is used.
        let r = route(&header(), &RoutingHints::default());
        assert_eq!(r.project.as_deref(), Some("ACC1"));
        assert_eq!(r.subject.as_deref(), Some("Doe_John"));
        assert_eq!(r.session.as_deref(), Some("PID_001"));

        let mut h = header();
        h.study_description = Some("NEURO_7".into());
        assert_eq!(
            route(&h, &RoutingHints::default()).project.as_deref(),
            Some("NEURO_7")
        );
        // ...unless that project does not exist.
        let r = route_with(&h, &RoutingHints::default(), |p| p == "ACC1");
        assert_eq!(r.project.as_deref(), Some("ACC1"));
        let r = route_with(&h, &RoutingHints::default(), |_| false);
        assert_eq!(r.project, None);
    }

    #[test]
    fn unknown_explicit_project_falls_back_to_dicom() {
        let hints = RoutingHints {
            project: Some("Nope".into()),
            ..RoutingHints::default()
        };
        let r = route_with(&header(), &hints, |p| p != "Nope");
        assert_eq!(r.project.as_deref(), Some("ACC1"));
    }

    #[test]
    fn comment_syntax_is_strict_about_boundaries() {
        let h = DicomHeader {
            patient_comments: Some("xProject:Wrong".into()),
            additional_patient_history: Some("notes; project : Right, more".into()),
            ..DicomHeader::default()
        };
        let r = route(&h, &RoutingHints::default());
        assert_eq!(r.project.as_deref(), Some("Right"));
        assert_eq!(r.subject, None);
        assert_eq!(r.session, None);
    }
}
