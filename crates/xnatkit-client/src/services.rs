//! XNAT services beyond the archive tree: alias tokens, the import service,
//! the prearchive, DICOM header dumps and custom variables (`fields`).
//! Request shapes are those of xnatpy and pyxnat, which XNAT servers and
//! `xnatkit-server` both answer.

use std::collections::BTreeMap;
use std::path::Path;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use xnatkit_model::ResultSet;

use crate::archive::seg;
use crate::client::{Request, RequestBody, XnatClient};
use crate::error::{ClientError, Result};

/// A freshly issued alias token.
#[derive(Debug, Clone, Deserialize)]
pub struct IssuedToken {
    pub alias: String,
    pub secret: String,
    #[serde(rename = "estimatedExpirationTime", default)]
    pub expires_at_ms: Option<i64>,
}

/// Where the import service puts a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportDestination {
    Archive,
    Prearchive,
}

/// Parameters of an import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub destination: ImportDestination,
    pub project: String,
    pub subject: Option<String>,
    pub session: Option<String>,
    /// `none`, `append` or `delete`.
    pub overwrite: Option<String>,
}

/// One prearchive session (a row of `/data/prearchive/projects`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PrearchiveSession {
    pub project: String,
    pub timestamp: String,
    pub name: String,
    pub subject: String,
    pub status: String,
    pub scan_date: String,
    pub uploaded: String,
    /// `/prearchive/projects/P/TS/NAME` (no `/data`, as XNAT lists it).
    pub url: String,
}

impl PrearchiveSession {
    /// `PROJECT/TIMESTAMP/NAME`, the handle the CLI shows and accepts.
    pub fn handle(&self) -> String {
        format!("{}/{}/{}", self.project, self.timestamp, self.name)
    }
}

/// Turns `PROJECT/TIMESTAMP/NAME` (or a full `/prearchive/...` URL) into the
/// `src` form `/prearchive/projects/P/TS/NAME`.
pub fn prearchive_src(handle: &str) -> Result<String> {
    let trimmed = handle.trim().trim_start_matches("/data");
    if let Some(rest) = trimmed.strip_prefix("/prearchive/projects/") {
        return Ok(format!("/prearchive/projects/{rest}"));
    }
    let parts: Vec<&str> = trimmed.split('/').filter(|p| !p.is_empty()).collect();
    if parts.len() != 3 {
        return Err(ClientError::Invalid(format!(
            "prearchive session {handle:?}: expected PROJECT/TIMESTAMP/NAME as listed by `xnatkit prearchive ls`"
        )));
    }
    Ok(format!(
        "/prearchive/projects/{}/{}/{}",
        seg(parts[0]),
        seg(parts[1]),
        seg(parts[2])
    ))
}

/// One line of a DICOM header dump.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DumpEntry {
    pub tag: String,
    /// Item tag for entries inside a sequence.
    pub tag2: String,
    pub vr: String,
    pub value: String,
    pub description: String,
}

fn content_type_for(path: &Path) -> &'static str {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if name.ends_with(".zip") {
        "application/zip"
    } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        "application/x-gzip"
    } else if name.ends_with(".tar") {
        "application/x-tar"
    } else {
        "application/octet-stream"
    }
}

impl XnatClient {
    /// `GET /data/services/tokens/issue`.
    pub async fn issue_token(&self) -> Result<IssuedToken> {
        let request =
            Request::get("/data/services/tokens/issue", "token service").query("format", "json");
        let text = self.text(&request).await?;
        serde_json::from_str(&text).map_err(|e| ClientError::Decode {
            url: format!("{}/data/services/tokens/issue", self.server()),
            reason: format!("not a token ({e})"),
        })
    }

    /// `GET /data/services/tokens/invalidate/{alias}/{secret}`.
    pub async fn invalidate_token(&self, alias: &str, secret: &str) -> Result<()> {
        let request = Request::get(
            format!(
                "/data/services/tokens/invalidate/{}/{}",
                seg(alias),
                seg(secret)
            ),
            "token",
        );
        self.send(&request).await.map(drop)
    }

    /// Sends a zip/tar file, or a folder zipped on the fly, to the import
    /// service; returns the URI of the new session. Never retried after the
    /// body may have reached the server (the import could happen twice).
    pub async fn import(&self, source: &Path, options: &ImportOptions) -> Result<String> {
        let meta = std::fs::metadata(source).map_err(|e| ClientError::io(source, e))?;
        let body = if meta.is_dir() {
            let mut entries = Vec::new();
            for entry in walkdir::WalkDir::new(source).sort_by_file_name() {
                let entry = entry.map_err(|e| {
                    ClientError::io(
                        e.path().unwrap_or(source).to_owned(),
                        std::io::Error::other(e.to_string()),
                    )
                })?;
                if !entry.file_type().is_file() {
                    continue;
                }
                let rel = entry
                    .path()
                    .strip_prefix(source)
                    .unwrap_or(entry.path())
                    .to_string_lossy()
                    .replace('\\', "/");
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                entries.push(xnatkit_fileio::ArchiveEntry {
                    name: rel,
                    source: entry.path().to_owned(),
                    size,
                    modified: None,
                });
            }
            if entries.is_empty() {
                return Err(ClientError::Invalid(format!(
                    "{}: the folder contains no files to import",
                    source.display()
                )));
            }
            RequestBody::Zip(entries)
        } else {
            RequestBody::File(source.to_owned(), content_type_for(source))
        };
        let dest = match options.destination {
            ImportDestination::Archive => "/archive",
            ImportDestination::Prearchive => "/prearchive",
        };
        let mut request = Request::new(
            Method::POST,
            "/data/services/import",
            format!("project {:?}", options.project),
        )
        .query("dest", dest)
        .query("project", options.project.clone())
        .body(body);
        if let Some(s) = &options.subject {
            request = request.query("subject", s.clone());
        }
        if let Some(s) = &options.session {
            request = request.query("session", s.clone());
        }
        if let Some(o) = &options.overwrite {
            request = request.query("overwrite", o.clone());
        }
        let text = self.text(&request).await?;
        Ok(text.lines().next().unwrap_or_default().trim().to_owned())
    }

    /// Sessions in the prearchive, of one project or all visible ones.
    pub async fn prearchive_sessions(
        &self,
        project: Option<&str>,
    ) -> Result<Vec<PrearchiveSession>> {
        let path = match project {
            Some(p) => format!("/data/prearchive/projects/{}", seg(p)),
            None => "/data/prearchive/projects".to_owned(),
        };
        let set = self.list(&path, &[], "prearchive").await?;
        Ok(set
            .rows
            .iter()
            .map(|r| {
                let get = |k: &str| r.get(k).cloned().unwrap_or_default();
                PrearchiveSession {
                    project: get("project"),
                    timestamp: get("timestamp"),
                    name: match get("name") {
                        n if n.is_empty() => get("folderName"),
                        n => n,
                    },
                    subject: get("subject"),
                    status: get("status"),
                    scan_date: get("scan_date"),
                    uploaded: get("uploaded"),
                    url: get("url"),
                }
            })
            .collect())
    }

    /// Archives a prearchive session; returns the archive URI.
    pub async fn prearchive_archive(
        &self,
        handle: &str,
        project: Option<&str>,
        subject: Option<&str>,
        session: Option<&str>,
        overwrite: Option<&str>,
    ) -> Result<String> {
        let src = prearchive_src(handle)?;
        let mut request = Request::new(
            Method::POST,
            "/data/services/archive",
            format!("prearchive session {handle:?}"),
        )
        .query("src", format!("/data{src}"))
        .query("auto-archive", "false");
        for (key, value) in [
            ("project", project),
            ("subject", subject),
            ("session", session),
            ("overwrite", overwrite),
        ] {
            if let Some(v) = value {
                request = request.query(key, v);
            }
        }
        let text = self.text(&request).await?;
        Ok(text.lines().next().unwrap_or_default().trim().to_owned())
    }

    /// Moves a prearchive session to another project.
    pub async fn prearchive_move(&self, handle: &str, new_project: &str) -> Result<()> {
        let src = prearchive_src(handle)?;
        let request = Request::new(
            Method::POST,
            "/data/services/prearchive/move",
            format!("prearchive session {handle:?}"),
        )
        .query("src", src)
        .query("newProject", new_project)
        .query("async", "false");
        self.send(&request).await.map(drop)
    }

    /// Deletes a prearchive session.
    pub async fn prearchive_delete(&self, handle: &str) -> Result<()> {
        let src = prearchive_src(handle)?;
        let request = Request::new(
            Method::POST,
            "/data/services/prearchive/delete",
            format!("prearchive session {handle:?}"),
        )
        .query("src", src)
        .query("async", "false");
        self.send(&request).await.map(drop)
    }

    /// DICOM header of the first file of `src` (`/archive/projects/P/...`
    /// or `/prearchive/projects/...`), optionally limited to `fields`
    /// (keywords or `GGGGEEEE`).
    pub async fn dicom_dump(&self, src: &str, fields: &[String]) -> Result<Vec<DumpEntry>> {
        let mut request = Request::get("/data/services/dicomdump", format!("DICOM data at {src}"))
            .query("src", src)
            .query("format", "json");
        for f in fields {
            request = request.query("field", f.clone());
        }
        let text = self.text(&request).await?;
        let set = ResultSet::from_json(&text).map_err(|e| ClientError::Decode {
            url: format!("{}/data/services/dicomdump", self.server()),
            reason: format!("not a ResultSet ({e})"),
        })?;
        Ok(set
            .rows
            .iter()
            .map(|r| {
                let get = |k: &str| r.get(k).cloned().unwrap_or_default();
                DumpEntry {
                    tag: get("tag1"),
                    tag2: get("tag2"),
                    vr: get("vr"),
                    value: get("value"),
                    description: get("desc"),
                }
            })
            .collect())
    }

    /// Custom variables of the object at `path` (a project, subject or
    /// session path).
    pub async fn fields(&self, path: &str, what: &str) -> Result<BTreeMap<String, String>> {
        Ok(self.item(path, what).await?.custom_fields())
    }

    /// Sets custom variables on the object at `path`. Names are sent as
    /// given; XNAT stores them in lower case.
    pub async fn set_fields(
        &self,
        path: &str,
        what: &str,
        values: &[(String, String)],
    ) -> Result<()> {
        let item = self.item(path, what).await?;
        let xsi = item.meta.xsi_type;
        let mut request = Request::new(Method::PUT, path, what).query("xsiType", xsi.clone());
        for (name, value) in values {
            request = request.query(
                &format!("{xsi}/fields/field[name={name}]/field"),
                value.clone(),
            );
        }
        self.send(&request).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prearchive_handles() {
        assert_eq!(
            prearchive_src("P/20240108_100512345/S 1").unwrap(),
            "/prearchive/projects/P/20240108_100512345/S%201"
        );
        assert_eq!(
            prearchive_src("/data/prearchive/projects/P/T/N").unwrap(),
            "/prearchive/projects/P/T/N"
        );
        assert!(prearchive_src("P/T").is_err());
        assert_eq!(
            content_type_for(Path::new("a.TAR.GZ")),
            "application/x-gzip"
        );
    }
}
