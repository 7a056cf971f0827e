//! The one rule for a test whose prerequisite (a peer tool, PostgreSQL, a
//! real data set) is missing: on a developer's machine it skips with a loud
//! `SKIPPED:` line; under CI (`CI` set, as CI sets `CI=true`) it fails, so a
//! broken CI machine can never pass by skipping.

use std::path::PathBuf;

/// True when running under CI: `CI` is set and not `false`, `0` or empty —
/// the same reading insta uses to refuse writing snapshots.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "false" | "0" | ""))
}

/// Skips (prints `SKIPPED: reason`) or, under CI, panics with `reason`.
/// Returns `None` so callers can write `return skip(...)` in an
/// `Option`-returning lookup.
pub fn skip<T>(reason: &str) -> Option<T> {
    assert!(
        !under_ci(),
        "{reason} (CI is set, so this test may not be skipped)"
    );
    // A skip must show in the test output, not only in a log: this is
    // the one place the tests print it.
    #[allow(clippy::print_stderr)]
    {
        eprintln!("SKIPPED: {reason}");
    }
    None
}

/// `name` on `PATH`, or [`skip`] naming the Debian `package` that has it.
pub fn tool(name: &str, package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    match found {
        Some(path) => Some(path),
        None => skip(&format!(
            "`{name}` is not on PATH (Debian package {package})"
        )),
    }
}

/// The value of environment variable `var` (non-empty), or [`skip`] with `why`.
pub fn env(var: &str, why: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => skip(&format!("set {var}: {why}")),
    }
}
