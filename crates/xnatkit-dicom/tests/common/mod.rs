//! Helpers shared by the integration tests: locating peer tools and pydicom's
//! bundled test files with the project's skip/fail rule.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Skips (returns `None`) with a loud line, or panics when `CI` is set.
fn skip(reason: &str) -> Option<PathBuf> {
    if std::env::var_os("CI").is_some() {
        panic!("{reason} (CI is set, so this test may not be skipped)");
    }
    // The skip must show in the test output, not only in a log.
    #[allow(clippy::print_stderr)]
    {
        eprintln!("SKIPPED: {reason}");
    }
    None
}

/// pydicom's `data/test_files` directory, found through `XNATKIT_PEERS_PYTHON`.
pub fn pydicom_test_files() -> Option<PathBuf> {
    let Some(python) = std::env::var_os("XNATKIT_PEERS_PYTHON") else {
        return skip("set XNATKIT_PEERS_PYTHON to a Python with pydicom to use its test files");
    };
    let output = Command::new(&python)
        .args([
            "-c",
            "import pydicom, os; print(os.path.dirname(pydicom.__file__))",
        ])
        .output();
    match output {
        Ok(out) if out.status.success() => {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
                .join("data")
                .join("test_files");
            if dir.is_dir() {
                Some(dir)
            } else {
                skip(&format!("{} has no pydicom test files", dir.display()))
            }
        }
        _ => skip("XNATKIT_PEERS_PYTHON cannot import pydicom"),
    }
}

/// A DCMTK tool on PATH (`dcmdump`, `storescu`, `echoscu`, `storescp`).
pub fn dcmtk_tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    match found {
        Some(path) => Some(path),
        None => skip(&format!("install dcmtk: {name} is not on PATH")),
    }
}

/// The top-level elements `dcmdump` shows for `file`: lower-case `gggg,eeee` →
/// the text inside `[...]` (or the bare value for numbers and `=Name` UIDs).
pub fn dcmdump_values(dcmdump: &Path, file: &Path) -> std::collections::HashMap<String, String> {
    let output = Command::new(dcmdump)
        .args(["+L", "-q", "-Un"])
        .arg(file)
        .output()
        .expect("run dcmdump");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut values = std::collections::HashMap::new();
    for line in text.lines() {
        // Nested elements are indented; top-level ones start with the tag.
        if !line.starts_with('(') || line.len() < 15 {
            continue;
        }
        let tag = line[1..10].to_lowercase();
        let after_vr = line[11..].get(3..).unwrap_or("").trim_start();
        let value = if let Some(body) = after_vr.strip_prefix('[') {
            let end = body.rfind(']').unwrap_or(body.len());
            body[..end].to_owned()
        } else if after_vr.starts_with("(no value") {
            String::new()
        } else {
            after_vr.split('#').next().unwrap_or("").trim().to_owned()
        };
        values.entry(tag).or_insert(value);
    }
    values
}

/// The Python interpreter of the peers venv, if it has pynetdicom.
pub fn peers_python_with_pynetdicom() -> Option<PathBuf> {
    let Some(python) = std::env::var_os("XNATKIT_PEERS_PYTHON") else {
        return skip("set XNATKIT_PEERS_PYTHON to a Python with pynetdicom");
    };
    let ok = Command::new(&python)
        .args(["-c", "import pynetdicom"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(PathBuf::from(python))
    } else {
        skip("XNATKIT_PEERS_PYTHON cannot import pynetdicom")
    }
}
