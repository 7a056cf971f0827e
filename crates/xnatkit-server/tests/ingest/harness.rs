//! The ingestion tests' harness: the shared test server of `tests/common`
//! plus generated DICOM and archive builders.

#[path = "../common/server.rs"]
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use common::*;
use reqwest::{Method, StatusCode};
use tempfile::TempDir;
use xnatkit_dicom::testdata::{SyntheticInstance, new_uid, write_series};

impl TestServer {
    /// POSTs `body` to the import service; returns status and text.
    pub async fn import(&self, query: &str, body: Vec<u8>, auth: &Auth) -> (StatusCode, String) {
        let r = self
            .req(
                Method::POST,
                &format!("/data/services/import?{query}"),
                Some(auth),
            )
            .header("Content-Type", "application/zip")
            .body(body)
            .send()
            .await
            .expect("POST import");
        let status = r.status();
        (status, r.text().await.expect("text"))
    }

    /// Every file below the staging folder (must be empty between imports).
    pub fn staging_leftovers(&self) -> Vec<PathBuf> {
        walk(&self.data.path().join("staging"))
            .into_iter()
            .filter(|p| !p.starts_with(self.data.path().join("staging").join("dicom-spool")))
            .collect()
    }
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

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

/// A zip of `(name, bytes)` entries (deflated).
pub fn zip_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        zip.start_file(name.as_str(), options).expect("zip entry");
        zip.write_all(bytes).expect("zip write");
    }
    zip.finish().expect("zip finish").into_inner()
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

pub fn tar_gz_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(encoder);
    for (name, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, bytes.as_slice())
            .expect("tar entry");
    }
    tar.into_inner()
        .expect("tar finish")
        .finish()
        .expect("gzip finish")
}

pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(bytes))
}
