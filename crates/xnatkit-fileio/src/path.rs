//! Client-supplied names on their way to the file system.
//!
//! [`SafeRelPath`] is the one type through which a name that came from a
//! request (URL path segment, upload file name, archive entry, a value read
//! back from the database) reaches the disk: it can only be built by
//! validation and only turned into a real path by joining it onto a root
//! ([`SafeRelPath::under`]), so whatever is joined cannot leave that root.
//!
//! Written by hand rather than with `zip`'s `enclosed_name`: that one lets
//! `a/../b` through and is zip-only, while uploads, URLs and tar entries need
//! the same stricter rule (no `..` at all, no backslashes).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::Error;

/// Longest single path component most file systems accept.
pub const MAX_COMPONENT_BYTES: usize = 255;

/// Longest relative path accepted. Far below PATH_MAX (4096 on Linux) so
/// that root + relative path + temp-name decoration still fits, and a
/// too-long name is refused here as a client error instead of failing deep
/// in the file system.
pub const MAX_PATH_BYTES: usize = 1024;

/// A relative, normalised, `/`-separated path that cannot leave the
/// directory it is joined onto.
///
/// Every component is non-empty, not `.` or `..`, free of `/`, `\`, NUL and
/// control characters, at most [`MAX_COMPONENT_BYTES`] long; the first has
/// no drive prefix (`C:`); the whole is at most [`MAX_PATH_BYTES`] long.
///
/// ```
/// use xnatkit_fileio::SafeRelPath;
///
/// let root = std::path::Path::new("/srv/archive");
/// let scan = SafeRelPath::segment("1")?;
/// let name = SafeRelPath::parse("dir//./image.dcm")?;
/// assert_eq!(scan.join(&name)?.under(root), root.join("1/dir/image.dcm"));
/// assert!(SafeRelPath::segment("..").is_err());
/// assert!(SafeRelPath::segment("a/b").is_err());
/// assert!(SafeRelPath::parse("a/../../etc/passwd").is_err());
/// # Ok::<(), xnatkit_fileio::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SafeRelPath(String);

impl SafeRelPath {
    /// Exactly one path component: a URL path segment after its one
    /// percent-decoding, a label, a scan ID. Nothing is normalised away:
    /// empty, `.`, `..` and anything containing `/` are refused.
    pub fn segment(name: &str) -> Result<Self, Error> {
        let refuse = |reason| unsafe_path(name, reason);
        check_characters(name).map_err(refuse)?;
        if name.contains('/') {
            return Err(refuse("it contains a '/'"));
        }
        check_component(name).map_err(refuse)?;
        if has_drive_prefix(name) {
            return Err(refuse("it starts with a drive letter"));
        }
        Ok(Self(name.to_owned()))
    }

    /// A `/`-separated relative path as clients name files inside a body
    /// (upload file names, archive entries): `.` components and duplicate
    /// or trailing slashes are dropped, everything else must be a valid
    /// component.
    pub fn parse(name: &str) -> Result<Self, Error> {
        let refuse = |reason| unsafe_path(name, reason);
        if name.is_empty() {
            return Err(refuse("the name is empty"));
        }
        check_characters(name).map_err(refuse)?;
        if name.starts_with('/') {
            return Err(refuse("it is an absolute path"));
        }
        if has_drive_prefix(name) {
            return Err(refuse("it starts with a drive letter"));
        }
        let mut parts = Vec::new();
        for component in name.split('/') {
            match component {
                "" | "." => {}
                _ => {
                    check_component(component).map_err(refuse)?;
                    parts.push(component);
                }
            }
        }
        if parts.is_empty() {
            return Err(refuse("it names no file"));
        }
        let joined = parts.join("/");
        if joined.len() > MAX_PATH_BYTES {
            return Err(refuse("the path is longer than 1024 bytes"));
        }
        Ok(Self(joined))
    }

    /// Path segments that were already split and decoded (e.g. the segments
    /// of a URL path after `…/files/`): each must pass [`Self::segment`].
    pub fn from_segments<S: AsRef<str>>(
        segments: impl IntoIterator<Item = S>,
    ) -> Result<Self, Error> {
        let mut path: Option<Self> = None;
        for segment in segments {
            let next = Self::segment(segment.as_ref())?;
            path = Some(match path {
                Some(p) => p.join(&next)?,
                None => next,
            });
        }
        path.ok_or_else(|| unsafe_path("", "the name is empty"))
    }

    /// `self/more`; refused only when the result is too long.
    pub fn join(&self, more: &SafeRelPath) -> Result<Self, Error> {
        let joined = format!("{}/{}", self.0, more.0);
        if joined.len() > MAX_PATH_BYTES {
            return Err(unsafe_path(&joined, "the path is longer than 1024 bytes"));
        }
        Ok(Self(joined))
    }

    /// The real path below `root`. The result is always `root` plus normal
    /// components, never above it.
    pub fn under(&self, root: &Path) -> PathBuf {
        let mut path = root.to_path_buf();
        path.extend(self.components());
        path
    }

    /// The components, outermost first.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// Every proper ancestor, outermost first (`a`, `a/b` for `a/b/c`).
    pub fn ancestors(&self) -> impl Iterator<Item = &str> {
        self.0
            .match_indices('/')
            .map(move |(index, _)| &self.0[..index])
    }

    /// The parent path, `None` for a single component.
    pub fn parent(&self) -> Option<Self> {
        self.0
            .rsplit_once('/')
            .map(|(parent, _)| Self(parent.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for SafeRelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for SafeRelPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Validates a client-supplied relative path (file names in uploads, archive
/// entry names) and returns it normalised, as [`SafeRelPath::parse`] does.
///
/// Refused: empty names, absolute paths (`/x`, `C:\x`, `C:x`, `\\server`),
/// any `..` component, NUL and other control characters, backslashes (a
/// Windows separator would otherwise become part of a Unix file name),
/// components longer than 255 bytes, paths longer than 1024 bytes.
/// Normalised: `./` components and duplicate or trailing slashes are
/// dropped. Spaces and non-ASCII characters are kept as they are.
pub fn safe_relative_path(name: &str) -> Result<PathBuf, Error> {
    SafeRelPath::parse(name).map(|p| PathBuf::from(p.0))
}

fn unsafe_path(name: &str, reason: &'static str) -> Error {
    Error::UnsafePath {
        name: name.to_owned(),
        reason,
    }
}

fn check_characters(name: &str) -> Result<(), &'static str> {
    if name.contains('\0') {
        return Err("it contains a NUL byte");
    }
    if name.chars().any(char::is_control) {
        return Err("it contains a control character");
    }
    if name.contains('\\') {
        return Err("it contains a backslash; use '/' as separator");
    }
    Ok(())
}

fn check_component(component: &str) -> Result<(), &'static str> {
    match component {
        "" => Err("the name is empty"),
        "." => Err("it is '.'"),
        ".." => Err("it contains a '..' component"),
        _ if component.len() > MAX_COMPONENT_BYTES => Err("a component is longer than 255 bytes"),
        _ => Ok(()),
    }
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

    #[test]
    fn segments_are_exactly_one_component() {
        for bad in [
            "", ".", "..", "a/b", "../x", "/", "a\\b", "..\\", "a\0b", "a\nb", "C:", "c:x",
        ] {
            assert!(SafeRelPath::segment(bad).is_err(), "{bad:?} accepted");
        }
        assert!(SafeRelPath::segment(&"x".repeat(256)).is_err());
        for good in [
            "1",
            "DICOM",
            "..hidden",
            "a..b",
            ".dot",
            "Über 北京",
            "%2e%2e",
        ] {
            assert_eq!(SafeRelPath::segment(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn from_segments_validates_each_segment() {
        let path = SafeRelPath::from_segments(["a", "b", "c.dcm"]).unwrap();
        assert_eq!(path.as_str(), "a/b/c.dcm");
        assert_eq!(path.ancestors().collect::<Vec<_>>(), ["a", "a/b"]);
        assert_eq!(path.parent().unwrap().as_str(), "a/b");
        assert!(SafeRelPath::from_segments(["a", "..", "b"]).is_err());
        assert!(SafeRelPath::from_segments(["a", "../b"]).is_err());
        assert!(SafeRelPath::from_segments(["a", ""]).is_err());
        assert!(SafeRelPath::from_segments(Vec::<&str>::new()).is_err());
    }

    #[test]
    fn total_length_is_bounded() {
        let component = "x".repeat(200);
        let long = [component.as_str(); 6].join("/");
        assert!(long.len() > MAX_PATH_BYTES);
        assert!(SafeRelPath::parse(&long).is_err());
        let four = SafeRelPath::parse(&[component.as_str(); 4].join("/")).unwrap();
        assert!(four.join(&four).is_err());
        assert!(SafeRelPath::from_segments([component.as_str(); 6]).is_err());
    }

    #[test]
    fn under_stays_below_the_root() {
        let root = Path::new("/srv/root");
        let path = SafeRelPath::parse("a/b").unwrap().under(root);
        assert_eq!(path, Path::new("/srv/root/a/b"));
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

    proptest::proptest! {
        /// Whatever the input, an accepted path joined onto a root is that
        /// root plus normal components: it can never name anything above it.
        #[test]
        fn accepted_paths_stay_under_the_root(
            name in "([a.%/\\\\:C \x00é]|\\.\\.|%2[eEfF]|%5[cC]){0,10}"
        ) {
            let root = Path::new("/srv/root");
            for accepted in [SafeRelPath::parse(&name), SafeRelPath::segment(&name)]
                .into_iter()
                .flatten()
            {
                let full = accepted.under(root);
                proptest::prop_assert!(full.starts_with(root));
                proptest::prop_assert!(full
                    .strip_prefix(root)
                    .unwrap()
                    .components()
                    .all(|c| matches!(c, Component::Normal(_))));
                proptest::prop_assert!(accepted.components().all(|c| c != ".." && c != "."));
            }
        }
    }
}
