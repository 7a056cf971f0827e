//! Scan selection by an ordered list of scan types: within a session the
//! first type (or glob pattern) that any scan matches wins, and every scan
//! matching it is exported. This is the fallback the seed story needed
//! (`Fl_Thorax INSP 3.0 Qr36`, else `Fl_Thorax 3.0 Qr36`).

use globset::{GlobBuilder, GlobMatcher};

use crate::archive::{Scan, Session};
use crate::error::{ClientError, Result};

/// An ordered list of scan-type patterns.
#[derive(Debug, Clone)]
pub struct TypeSelector {
    patterns: Vec<(String, GlobMatcher)>,
}

impl TypeSelector {
    /// Builds the selector. Patterns use glob syntax (`*`, `?`, `[..]`);
    /// a plain type name matches itself only.
    pub fn new(patterns: &[String], ignore_case: bool) -> Result<Self> {
        if patterns.is_empty() {
            return Err(ClientError::Invalid(
                "no scan type given; pass at least one -t TYPE".into(),
            ));
        }
        let mut compiled = Vec::with_capacity(patterns.len());
        for p in patterns {
            let trimmed = p.trim();
            if trimmed.is_empty() {
                return Err(ClientError::Invalid("empty scan type given with -t".into()));
            }
            let glob = GlobBuilder::new(trimmed)
                .case_insensitive(ignore_case)
                .literal_separator(false)
                .backslash_escape(true)
                .build()
                .map_err(|e| ClientError::Invalid(format!("scan type pattern {p:?}: {e}")))?;
            compiled.push((trimmed.to_owned(), glob.compile_matcher()));
        }
        Ok(Self { patterns: compiled })
    }

    /// The winning pattern for these scans and the scans matching it.
    pub fn pick<'a>(&self, scans: &'a [Scan]) -> Option<(&str, Vec<&'a Scan>)> {
        self.patterns.iter().find_map(|(text, glob)| {
            let hits: Vec<&Scan> = scans
                .iter()
                .filter(|s| glob.is_match(s.scan_type.trim()))
                .collect();
            (!hits.is_empty()).then_some((text.as_str(), hits))
        })
    }

    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(|(t, _)| t.as_str())
    }
}

/// Which sessions of a subject to consider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionChoice {
    /// Every session.
    #[default]
    All,
    /// Only the most recent one by session date (label breaks ties).
    Latest,
}

/// Applies the choice; keeps the server's order otherwise.
pub fn choose_sessions(mut sessions: Vec<Session>, choice: SessionChoice) -> Vec<Session> {
    match choice {
        SessionChoice::All => sessions,
        SessionChoice::Latest => {
            sessions.sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.label.cmp(&b.label)));
            sessions.pop().into_iter().collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(id: &str, t: &str) -> Scan {
        Scan {
            id: id.into(),
            scan_type: t.into(),
            series_description: String::new(),
            quality: String::new(),
            xsi_type: String::new(),
        }
    }

    #[test]
    fn first_present_type_wins() {
        let sel = TypeSelector::new(
            &[
                "Fl_Thorax INSP 3.0 Qr36".into(),
                "Fl_Thorax 3.0 Qr36".into(),
            ],
            false,
        )
        .unwrap();
        let scans = [scan("1", "Topogram"), scan("2", "Fl_Thorax 3.0 Qr36")];
        let (t, hits) = sel.pick(&scans).unwrap();
        assert_eq!(t, "Fl_Thorax 3.0 Qr36");
        assert_eq!(hits[0].id, "2");
        assert!(sel.pick(&[scan("1", "Topogram")]).is_none());
    }

    #[test]
    fn globs_and_case() {
        let sel = TypeSelector::new(&["fl_thorax*".into()], true).unwrap();
        assert!(sel.pick(&[scan("1", "Fl_Thorax INSP 3.0 Qr36")]).is_some());
        let strict = TypeSelector::new(&["fl_thorax*".into()], false).unwrap();
        assert!(strict.pick(&[scan("1", "Fl_Thorax INSP")]).is_none());
        assert!(TypeSelector::new(&[], false).is_err());
    }

    #[test]
    fn latest_session_by_date() {
        let s = |l: &str, d: &str| Session {
            id: l.into(),
            label: l.into(),
            project: "P".into(),
            xsi_type: String::new(),
            date: d.into(),
        };
        let got = choose_sessions(
            vec![s("a", "2024-01-02"), s("b", "2023-05-01"), s("c", "")],
            SessionChoice::Latest,
        );
        assert_eq!(got[0].label, "a");
    }
}
