//! Validation of client-supplied relative paths.
//!
//! Written by hand rather than with `zip`'s `enclosed_name`: that one lets
//! `a/../b` through and is zip-only, while uploads and tar entries need the
//! same stricter rule (no `..` at all, no backslashes).

use std::path::PathBuf;

use crate::Error;

/// Longest single path component most file systems accept.
const MAX_COMPONENT_BYTES: usize = 255;

/// Validates a client-supplied relative path (file names in uploads, archive
/// entry names) and returns it normalised.
///
/// Refused: empty names, absolute paths (`/x`, `C:\x`, `C:x`, `\\server`),
/// any `..` component, NUL and other control characters, backslashes (a
/// Windows separator would otherwise become part of a Unix file name),
/// components longer than 255 bytes. Normalised: `./` components and
/// duplicate or trailing slashes are dropped. Spaces and non-ASCII characters
/// are kept as they are.
pub fn safe_relative_path(name: &str) -> Result<PathBuf, Error> {
    let refuse = |reason| Error::UnsafePath {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(refuse("the name is empty"));
    }
    if name.contains('\0') {
        return Err(refuse("it contains a NUL byte"));
    }
    if name.chars().any(char::is_control) {
        return Err(refuse("it contains a control character"));
    }
    if name.contains('\\') {
        return Err(refuse("it contains a backslash; use '/' as separator"));
    }
    if name.starts_with('/') {
        return Err(refuse("it is an absolute path"));
    }
    if has_drive_prefix(name) {
        return Err(refuse("it starts with a drive letter"));
    }
    let mut normalised = PathBuf::new();
    for component in name.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err(refuse("it contains a '..' component")),
            _ if component.len() > MAX_COMPONENT_BYTES => {
                return Err(refuse("a component is longer than 255 bytes"));
            }
            _ => normalised.push(component),
        }
    }
    if normalised.as_os_str().is_empty() {
        return Err(refuse("it names no file"));
    }
    Ok(normalised)
}

/// `C:`-style prefix: harmless on Unix but absolute or drive-relative for
/// any Windows tool that later sees the name (e.g. after a zip download).
fn has_drive_prefix(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Component, Path};

    fn ok(name: &str) -> PathBuf {
        safe_relative_path(name).unwrap()
    }

    fn refused(name: &str) -> &'static str {
        match safe_relative_path(name) {
            Err(Error::UnsafePath { reason, name: n }) => {
                assert_eq!(n, name);
                reason
            }
            other => panic!("{name:?} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn parent_components_are_refused() {
        refused("..");
        refused("../evil");
        refused("a/../b");
        refused("a/b/..");
        refused("./../x");
    }

    #[test]
    fn absolute_paths_are_refused() {
        assert_eq!(refused("/etc/passwd"), "it is an absolute path");
        refused("//double");
        refused("C:\\x");
        assert_eq!(refused("C:x"), "it starts with a drive letter");
        refused("c:/x");
        refused("\\\\srv\\x");
        refused("\\x");
    }

    #[test]
    fn bad_characters_are_refused() {
        assert_eq!(refused("a\0b"), "it contains a NUL byte");
        refused("a\nb");
        refused("dir\\file");
        refused("");
        refused(".");
        refused("./");
        refused("//");
        refused(&"x".repeat(256));
    }

    #[test]
    fn normal_names_are_normalised() {
        assert_eq!(ok("./a//b"), Path::new("a/b"));
        assert_eq!(ok("a/b/"), Path::new("a/b"));
        assert_eq!(ok("a/./b"), Path::new("a/b"));
        assert_eq!(
            ok("scan 1/file name.dcm"),
            Path::new("scan 1/file name.dcm")
        );
        assert_eq!(ok("Über/北京/ß.dcm"), Path::new("Über/北京/ß.dcm"));
        assert_eq!(ok("..hidden"), Path::new("..hidden"));
        assert_eq!(ok("a..b/c"), Path::new("a..b/c"));
        assert_eq!(ok(".dotfile"), Path::new(".dotfile"));
        assert_eq!(ok(&"x".repeat(255)), Path::new(&"x".repeat(255)));
    }

    proptest::proptest! {
        #[test]
        fn never_accepts_parent_or_absolute(
            name in "[a./\\\\:C \\x00é]{0,12}"
        ) {
            let has_parent = name.split('/').any(|c| c == "..")
                || name.split(['/', '\\']).any(|c| c == "..");
            let absolute = name.starts_with('/') || name.starts_with('\\')
                || Path::new(&name).is_absolute();
            match safe_relative_path(&name) {
                Ok(path) => {
                    proptest::prop_assert!(!has_parent && !absolute, "{name:?} accepted");
                    proptest::prop_assert!(path.is_relative());
                    proptest::prop_assert!(path
                        .components()
                        .all(|c| matches!(c, Component::Normal(_))));
                }
                Err(Error::UnsafePath { .. }) => {}
                Err(other) => proptest::prop_assert!(false, "{other:?}"),
            }
        }
    }
}
