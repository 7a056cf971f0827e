//! Which files an output takes: a command output's `glob` (the Container
//! Service's field) matched against each file's path relative to the
//! output's folder (`path` below its mount). `*` does not cross a `/`, so
//! `*.nii.gz` takes the folder's own files and `**/*.nii.gz` those of every
//! subfolder too; no glob takes every file.

use globset::{GlobBuilder, GlobMatcher};

/// An output's file selection.
#[derive(Debug, Clone, Default)]
pub struct OutputSelector(Option<GlobMatcher>);

impl OutputSelector {
    /// The selection `glob` describes (`None` or empty: every file).
    pub fn new(glob: Option<&str>) -> Result<Self, String> {
        match glob.map(str::trim).filter(|g| !g.is_empty()) {
            None => Ok(Self(None)),
            Some(g) => GlobBuilder::new(g)
                .literal_separator(true)
                .build()
                .map(|glob| Self(Some(glob.compile_matcher())))
                .map_err(|e| format!("glob {g:?} is not a valid pattern: {e}")),
        }
    }

    /// Does the output take the file at `relative` ('/'-separated)?
    pub fn takes(&self, relative: &str) -> bool {
        self.0.as_ref().is_none_or(|m| m.is_match(relative))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_stay_in_their_folder() {
        let top = OutputSelector::new(Some("*.nii.gz")).unwrap();
        assert!(top.takes("T2_map.nii.gz"));
        assert!(!top.takes("T2_map.json"));
        assert!(!top.takes("dicom/T2_map.nii.gz"));
        let deep = OutputSelector::new(Some("**/*.dcm")).unwrap();
        assert!(deep.takes("a.dcm") && deep.takes("series/1/a.dcm"));
        assert!(OutputSelector::new(None).unwrap().takes("anything/at/all"));
        assert!(OutputSelector::new(Some(" ")).unwrap().takes("x"));
        assert!(
            OutputSelector::new(Some("[a-"))
                .unwrap_err()
                .contains("not a valid pattern")
        );
    }
}
