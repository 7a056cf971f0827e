//! Labels and IDs: XNAT allows `[A-Za-z0-9_-]` only, for project IDs and for
//! subject/experiment labels (XNAT's label rules).

use std::fmt;

/// Why a string is not a valid XNAT label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("label is empty")]
    Empty,
    #[error(
        "invalid character {found:?} in label {label:?}: only letters, digits, '_' and '-' are allowed"
    )]
    InvalidChar { label: String, found: char },
    #[error("label {label:?} is longer than {max} characters")]
    TooLong { label: String, max: usize },
}

/// A validated project ID or subject/experiment label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(String);

/// XNAT stores labels in varchar(255) columns.
pub const MAX_LABEL_LEN: usize = 255;

impl Label {
    /// Validates `raw` against XNAT's rule.
    pub fn parse(raw: &str) -> Result<Self, LabelError> {
        if raw.is_empty() {
            return Err(LabelError::Empty);
        }
        if raw.len() > MAX_LABEL_LEN {
            return Err(LabelError::TooLong {
                label: raw.to_owned(),
                max: MAX_LABEL_LEN,
            });
        }
        if let Some(found) = raw.chars().find(|c| !is_label_char(*c)) {
            return Err(LabelError::InvalidChar {
                label: raw.to_owned(),
                found,
            });
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Label {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// True when `label` is a valid XNAT ID or label (see [`Label::parse`]).
pub fn is_valid_label(label: &str) -> bool {
    Label::parse(label).is_ok()
}

/// True for the characters XNAT accepts in labels.
pub fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Turns a value taken from DICOM (PatientName `Doe^John`, a study
/// description with spaces) into a label the way XNAT does: every character
/// outside `[A-Za-z0-9_-]` becomes `_`. Leading/trailing whitespace is trimmed
/// first; an empty result yields `None` so callers fall through to the next
/// routing rule instead of inventing a label.
pub fn sanitize_label(raw: &str) -> Option<String> {
    let trimmed = raw.trim().trim_end_matches('\0').trim();
    if trimmed.is_empty() {
        return None;
    }
    let out: String = trimmed
        .chars()
        .map(|c| if is_label_char(c) { c } else { '_' })
        .collect();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_xnat_characters() {
        assert!(Label::parse("Subj_01-a").is_ok());
        assert_eq!(Label::parse(""), Err(LabelError::Empty));
        assert!(matches!(
            Label::parse("has space"),
            Err(LabelError::InvalidChar { found: ' ', .. })
        ));
        assert!(Label::parse("../x").is_err());
        assert!(Label::parse("ü").is_err());
        assert!(Label::parse(&"a".repeat(256)).is_err());
    }

    #[test]
    fn sanitises_like_xnat() {
        assert_eq!(sanitize_label("Doe^John").as_deref(), Some("Doe_John"));
        assert_eq!(
            sanitize_label("  CT Thorax 3.0 ").as_deref(),
            Some("CT_Thorax_3_0")
        );
        assert_eq!(sanitize_label("   "), None);
    }

    proptest::proptest! {
        #[test]
        fn sanitised_labels_always_parse(s in "\\PC{1,40}") {
            if let Some(l) = sanitize_label(&s) {
                proptest::prop_assert!(Label::parse(&l).is_ok());
            }
        }
    }
}
