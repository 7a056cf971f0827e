//! The server tests' harness: the in-process test server of
//! `xnatkit-test-support` (SQLite, and PostgreSQL through
//! `XNATKIT_TEST_DATABASE_URL`) plus the generated studies and archives the
//! ingestion tests send.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tempfile::TempDir;
use xnatkit_test_support::dicom::{SyntheticInstance, new_uid, write_series};
pub use xnatkit_test_support::files::{files_below, md5_hex, tar_gz_of, zip_of};
pub use xnatkit_test_support::server::*;

/// A generated study: `series` series of `per_series` MR instances each.
pub struct Study {
    pub uid: String,
    pub dir: TempDir,
    pub files: Vec<PathBuf>,
}

pub fn study(series: usize, per_series: usize, tweak: impl Fn(&mut SyntheticInstance)) -> Study {
    let dir = tempfile::tempdir().expect("temp dir");
    let uid = new_uid();
    let mut files = Vec::new();
    for n in 1..=series {
        let mut template = SyntheticInstance::new(&uid, &new_uid());
        template.series_number = Some(n as i64);
        template.series_description = Some(format!("Series {n}"));
        tweak(&mut template);
        files.extend(
            write_series(&dir.path().join(format!("s{n}")), &template, per_series)
                .expect("write series"),
        );
    }
    Study { uid, dir, files }
}

/// Zip entries for files under `root`, named like xnatpy's `import_dir`.
pub fn entries_of(root: &Path, files: &[PathBuf]) -> Vec<(String, Vec<u8>)> {
    files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(root).unwrap_or(f);
            (
                format!("Case001/{}", rel.to_string_lossy()),
                std::fs::read(f).expect("read file"),
            )
        })
        .collect()
}

/// Logs in through the pages' login form as a browser does; returns the
/// `Cookie` header value (`JSESSIONID=…`).
pub async fn browser_login(s: &TestServer, auth: &Auth) -> String {
    let r = s
        .req(reqwest::Method::POST, "/app/login", None)
        .form(&[("username", auth.0.as_str()), ("password", auth.1.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        reqwest::StatusCode::SEE_OTHER,
        "login {}",
        auth.0
    );
    session_cookie(&r)
}

/// The `JSESSIONID=…` pair a login answer sets.
pub fn session_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("JSESSIONID="))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// GET a page as a browser with `cookie`: (status, body).
pub async fn page(s: &TestServer, path: &str, cookie: &str) -> (reqwest::StatusCode, String) {
    let r = s
        .req(reqwest::Method::GET, path, None)
        .header(reqwest::header::COOKIE, cookie)
        .header(reqwest::header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.text().await.unwrap())
}

/// The form token a page carries for its forms.
pub fn form_token(html: &str) -> String {
    let marker = "name=\"xnatkit-csrf\" content=\"";
    let start = html.find(marker).expect("a form token") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}
