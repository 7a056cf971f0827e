//! The parameters of `POST /data/services/import` as XNAT reads them and
//! xnatpy's `import_` sends them (`project`, `subject`, `session`, `dest`,
//! `overwrite`, `import-handler`, ...), read from the query and a form body
//! alike.

use xnatkit_dicom::RoutingHints;

use crate::archive::Error;
use crate::params::Params;

/// Where the request asked the sessions to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// No `dest`: the project's `prearchive_code` (and `AA`) decide.
    Default,
    Archive,
    Prearchive,
}

/// XNAT's `overwrite` values (its `Importer.parseOverrideValue`): absent or
/// `none` refuses an existing session, `append` merges, `delete` (or
/// `override`) merges and replaces conflicting files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Refuse when the session exists.
    None,
    /// Merge into the existing session; files already there are a conflict.
    Append,
    /// Merge and replace files that exist (`delete`, `override`).
    Replace,
}

/// `import-handler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportHandler {
    /// `DICOM-zip` (default): archives or single instances, routed per instance.
    DicomZip,
    /// `gradual-DICOM`: one instance per request; the session stays RECEIVING.
    GradualDicom,
    /// `SI`: like DICOM-zip, but an archive destination takes one study only.
    SessionImporter,
}

/// Everything an import needs to know besides the data.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub hints: RoutingHints,
    pub destination: Destination,
    pub overwrite: Overwrite,
    pub ignore_unparsable: bool,
    pub direct_archive: bool,
    pub handler: ImportHandler,
    /// `AA` / `auto-archive` when given.
    pub auto_archive: Option<bool>,
    /// Recorded as the prearchive `SOURCE` column.
    pub source: String,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            hints: RoutingHints::default(),
            destination: Destination::Default,
            overwrite: Overwrite::None,
            ignore_unparsable: false,
            direct_archive: false,
            handler: ImportHandler::DicomZip,
            auto_archive: None,
            source: String::new(),
        }
    }
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn bool_param(value: Option<&str>) -> Option<bool> {
    match value?.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "yes" => Some(true),
        "false" | "f" | "0" | "no" => Some(false),
        _ => None,
    }
}

impl Overwrite {
    pub fn parse(raw: Option<&str>) -> Self {
        match raw.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("none") | Some("false") => Self::None,
            Some("delete") | Some("override") => Self::Replace,
            // XNAT treats every other value as "merge allowed".
            Some(_) => Self::Append,
        }
    }
}

impl ImportOptions {
    pub fn from_params(params: &Params) -> Result<Self, Error> {
        let handler = match params.get("import-handler").map(str::trim) {
            None | Some("") => ImportHandler::DicomZip,
            Some(h) if h.eq_ignore_ascii_case("DICOM-zip") => ImportHandler::DicomZip,
            Some(h) if h.eq_ignore_ascii_case("gradual-DICOM") => ImportHandler::GradualDicom,
            Some(h) if h.eq_ignore_ascii_case("SI") => ImportHandler::SessionImporter,
            Some(other) => {
                return Err(Error::NotFound(format!(
                    "unknown import-handler {other:?}: use DICOM-zip, gradual-DICOM or SI"
                )));
            }
        };
        let mut hints = RoutingHints {
            project: non_empty(params.get("project").or_else(|| params.get("PROJECT_ID"))),
            subject: non_empty(params.get("subject").or_else(|| params.get("SUBJECT_ID"))),
            session: non_empty(params.get("session").or_else(|| params.get("EXPT_LABEL"))),
        };
        let destination = match non_empty(params.get("dest")) {
            None => Destination::Default,
            Some(dest) => parse_dest(&dest, &mut hints)?,
        };
        Ok(Self {
            hints,
            destination,
            overwrite: Overwrite::parse(params.get("overwrite")),
            ignore_unparsable: bool_param(params.get("Ignore-Unparsable")).unwrap_or(false),
            direct_archive: bool_param(params.get("Direct-Archive")).unwrap_or(false),
            handler,
            auto_archive: bool_param(params.get("AA").or_else(|| params.get("auto-archive"))),
            source: params.get("SOURCE").unwrap_or_default().to_owned(),
        })
    }
}

/// `/archive[/projects/P[/subjects/S[/experiments/E]]]` or
/// `/prearchive[/projects/P[/…]]`, with or without `/data`. Names in `dest`
/// fill hints the request did not give explicitly.
fn parse_dest(dest: &str, hints: &mut RoutingHints) -> Result<Destination, Error> {
    let trimmed = xnatkit_model::uri::without_rest_root(dest.trim_end_matches('/'));
    let segments: Vec<&str> = trimmed.split('/').filter(|s| !s.is_empty()).collect();
    let bad = || {
        Error::Invalid(format!(
            "dest {dest:?} is not understood: use /archive[/projects/P[/subjects/S[/experiments/E]]] or /prearchive[/projects/P]"
        ))
    };
    let (destination, rest) = match segments.split_first() {
        Some((&"archive", rest)) => (Destination::Archive, rest),
        Some((&"prearchive", rest)) => (Destination::Prearchive, rest),
        _ => return Err(bad()),
    };
    let fill = |slot: &mut Option<String>, value: &str| {
        if slot.is_none() {
            *slot = Some(value.to_owned());
        }
    };
    for pair in rest.chunks(2) {
        match pair {
            ["projects", p] => fill(&mut hints.project, p),
            ["subjects", s] if destination == Destination::Archive => fill(&mut hints.subject, s),
            ["experiments", e] if destination == Destination::Archive => {
                fill(&mut hints.session, e)
            }
            // Prearchive timestamp/folder: the folder is the session label.
            [_ts, folder] if destination == Destination::Prearchive => {
                fill(&mut hints.session, folder)
            }
            [_ts] if destination == Destination::Prearchive => {}
            _ => return Err(bad()),
        }
    }
    Ok(destination)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_aliases_dest_and_overwrite() {
        let params = Params::from_query(Some(
            "PROJECT_ID=P1&dest=/data/archive/projects/P2/subjects/S1/experiments/E1&overwrite=append&Ignore-Unparsable=true",
        ));
        let options = ImportOptions::from_params(&params).unwrap();
        assert_eq!(options.destination, Destination::Archive);
        assert_eq!(options.hints.project.as_deref(), Some("P1"));
        assert_eq!(options.hints.subject.as_deref(), Some("S1"));
        assert_eq!(options.hints.session.as_deref(), Some("E1"));
        assert_eq!(options.overwrite, Overwrite::Append);
        assert!(options.ignore_unparsable);
        assert_eq!(Overwrite::parse(Some("delete")), Overwrite::Replace);
        assert_eq!(Overwrite::parse(Some("none")), Overwrite::None);
    }

    #[test]
    fn refuses_unknown_dest_and_handler() {
        let params = Params::from_query(Some("dest=/elsewhere"));
        assert!(ImportOptions::from_params(&params).is_err());
        let params = Params::from_query(Some("import-handler=XAR"));
        assert_eq!(
            crate::error::ApiError::from(ImportOptions::from_params(&params).unwrap_err()).status(),
            axum::http::StatusCode::NOT_FOUND
        );
    }
}
