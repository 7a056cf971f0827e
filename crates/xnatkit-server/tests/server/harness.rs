//! The server tests' harness: the shared test server of `tests/common`
//! plus helpers only these tests use.

#[path = "../common/server.rs"]
mod common;

pub use common::*;
use md5::{Digest, Md5};
use reqwest::StatusCode;

/// Lower-case hex MD5, as the server lists it as `digest`.
pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// A zip (deflated, default options) holding `files` as (name, bytes).
pub fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in files {
        writer
            .start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

impl TestServer {
    /// Project, subject and MR session owned by `auth`; returns (subject ID, session ID).
    pub async fn seed(&self, auth: &Auth, project: &str) -> (String, String) {
        assert_eq!(
            self.put(&format!("/data/projects/{project}"), auth)
                .await
                .status(),
            StatusCode::CREATED
        );
        let r = self
            .put(
                &format!("/data/projects/{project}/subjects/SUBJ1?xsiType=xnat:subjectData"),
                auth,
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let subject = r.text().await.expect("text");
        let r = self
            .put(
                &format!("/data/projects/{project}/subjects/SUBJ1/experiments/SESS1?xsiType=xnat:mrSessionData&xnat:mrSessionData/date=2024-01-31"),
                auth,
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let session = r.text().await.expect("text");
        (subject, session)
    }

    /// Every file below the data directory (names relative to it).
    pub fn data_files(&self) -> Vec<String> {
        walk(self.data.path(), self.data.path())
    }
}

fn walk(root: &std::path::Path, dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(root, &path));
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}
