//! Where exported files go: a template such as `{subject}/{scan_type}` with
//! the placeholders `{subject}`, `{session}`, `{scan_id}`, `{scan_type}`
//! and `{resource}`, each filled with a value made safe as one path
//! component (scan types keep their spaces, as in the seed story's
//! `125586/Fl_Thorax INSP 3.0 Qr36/`).

use std::path::PathBuf;

use crate::error::{ClientError, Result};

/// The values a template can use.
#[derive(Debug, Clone, Copy)]
pub struct LayoutValues<'a> {
    pub subject: &'a str,
    pub session: &'a str,
    pub scan_id: &'a str,
    pub scan_type: &'a str,
    pub resource: &'a str,
}

const PLACEHOLDERS: &[&str] = &["subject", "session", "scan_id", "scan_type", "resource"];

/// The default for a subject: the first of these that gives every
/// exported scan its own folder.
pub const DEFAULT_LAYOUTS: &[&str] = &[
    "{subject}/{scan_type}",
    "{subject}/{session}/{scan_type}",
    "{subject}/{session}/{scan_id}-{scan_type}",
];

/// Checks a user template: known placeholders only, balanced braces,
/// relative.
pub fn validate_template(template: &str) -> Result<()> {
    let bad = |why: String| ClientError::Invalid(format!("--layout {template:?}: {why}"));
    if template.starts_with('/') || template.contains("..") {
        return Err(bad("must be a relative path without '..'".into()));
    }
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(|| bad("unclosed '{'".into()))?;
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(bad(format!(
                "unknown placeholder {{{name}}}; use {}",
                PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// Makes a server-supplied value usable as one folder name on Linux,
/// macOS and Windows shares.
pub fn safe_component(value: &str) -> String {
    let cleaned: String = value
        .trim()
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim_end_matches(['.', ' ']).to_owned();
    if cleaned.is_empty() || cleaned.starts_with('.') || is_windows_device_name(&cleaned) {
        format!("_{cleaned}")
    } else {
        cleaned
    }
}

/// `CON`, `NUL`, `COM1`, … (also with an extension, any case) cannot be
/// created on Windows or on SMB shares served from Windows, where exports
/// of the seed story land.
fn is_windows_device_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).to_ascii_uppercase();
    matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit()
            && stem.as_bytes()[3] != b'0')
}

/// Renders a template into a relative folder path.
pub fn render(template: &str, values: &LayoutValues<'_>) -> Result<PathBuf> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').unwrap_or(after.len());
        let value = match &after[..close] {
            "subject" => values.subject,
            "session" => values.session,
            "scan_id" => values.scan_id,
            "scan_type" => values.scan_type,
            "resource" => values.resource,
            other => other,
        };
        out.push_str(&safe_component(value));
        rest = after.get(close + 1..).unwrap_or("");
    }
    out.push_str(rest);
    Ok(xnatkit_fileio::safe_relative_path(&out)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_sanitises() {
        let v = LayoutValues {
            subject: "125586",
            session: "S1",
            scan_id: "3",
            scan_type: "Fl_Thorax INSP 3.0 Qr36",
            resource: "DICOM",
        };
        assert_eq!(
            render("{subject}/{scan_type}", &v).unwrap(),
            PathBuf::from("125586/Fl_Thorax INSP 3.0 Qr36")
        );
        let evil = LayoutValues {
            scan_type: "../a/b",
            ..v
        };
        assert_eq!(
            render("{scan_type}", &evil).unwrap(),
            PathBuf::from("_.._a_b")
        );
        assert!(validate_template("{subject}/{nope}").is_err());
        assert!(validate_template("{subject}/{session}/{scan_id}-{scan_type}/{resource}").is_ok());
        assert_eq!(safe_component("CON:"), "CON_");
        assert_eq!(safe_component("con"), "_con");
        assert_eq!(safe_component("Nul.txt"), "_Nul.txt");
        assert_eq!(safe_component("COM1"), "_COM1");
        assert_eq!(safe_component("LPT9.dcm"), "_LPT9.dcm");
        assert_eq!(safe_component("COM0"), "COM0");
        assert_eq!(safe_component("CONSOLE"), "CONSOLE");
    }
}
