//! Typed access to the archive hierarchy: projects → subjects → sessions
//! (experiments) → scans → resources → files, parsed from XNAT's listing
//! tables ([`xnatkit_model::ResultSet`]).

use reqwest::Method;
use serde::Serialize;
use xnatkit_model::{ItemsDocument, ObjectItem, ResultSet, Row};

use crate::client::{Request, XnatClient};
use crate::error::{ClientError, Result};

/// Escapes one path segment (shared with the server through xnatkit-model).
pub use xnatkit_model::encode_segment as seg;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Subject {
    pub id: String,
    pub label: String,
    pub project: String,
}

/// An experiment (image session) of a subject.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub label: String,
    pub project: String,
    pub xsi_type: String,
    /// `YYYY-MM-DD` or empty.
    pub date: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Scan {
    pub id: String,
    /// The scan type (`type` column); falls back to the series description
    /// when the server left it empty.
    pub scan_type: String,
    pub series_description: String,
    pub quality: String,
    pub xsi_type: String,
}

/// An image assessor of a session (a QC assessment, an ROI collection, a
/// processing record), as the session's `assessors` listing gives it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Assessor {
    /// Accession ID.
    pub id: String,
    pub label: String,
    pub xsi_type: String,
    /// Creation date as the server lists it (`insert_date`), for "newest".
    pub insert_date: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Resource {
    pub id: String,
    pub label: String,
    pub format: String,
    pub file_count: Option<u64>,
    pub file_size: Option<u64>,
}

/// A file as listed by the server.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RemoteFile {
    /// Path inside its resource (may contain `/`).
    pub path: String,
    /// Server-relative download URI.
    pub uri: String,
    /// Resource label (`collection`).
    pub resource: String,
    pub size: Option<u64>,
    /// MD5 hex of the stored bytes, lower case; `None` when the server
    /// gives none.
    pub digest: Option<String>,
}

fn col<'a>(row: &'a Row, names: &[&str]) -> &'a str {
    names
        .iter()
        .find_map(|n| row.get(*n).filter(|v| !v.is_empty()))
        .map_or("", String::as_str)
}

fn num(row: &Row, names: &[&str]) -> Option<u64> {
    col(row, names).trim().parse().ok()
}

/// The row's `project`, or the listed project when the server leaves it out.
fn project_of(row: &Row, listed: &str) -> String {
    match col(row, &["project"]) {
        "" => listed.to_owned(),
        p => p.to_owned(),
    }
}

impl Project {
    fn from_row(row: &Row) -> Self {
        Self {
            id: col(row, &["ID", "id"]).to_owned(),
            name: col(row, &["name"]).to_owned(),
            description: col(row, &["description"]).to_owned(),
        }
    }
}

impl Subject {
    fn from_row(row: &Row, project: &str) -> Self {
        Self {
            id: col(row, &["ID", "id"]).to_owned(),
            label: col(row, &["label"]).to_owned(),
            project: project_of(row, project),
        }
    }
}

impl Session {
    fn from_row(row: &Row, project: &str) -> Self {
        Self {
            id: col(row, &["ID", "id"]).to_owned(),
            label: col(row, &["label"]).to_owned(),
            project: project_of(row, project),
            xsi_type: col(row, &["xsiType", "element_name"]).to_owned(),
            date: col(row, &["date"]).to_owned(),
        }
    }
}

impl Assessor {
    fn from_row(row: &Row) -> Self {
        Self {
            id: col(row, &["ID", "id"]).to_owned(),
            label: col(row, &["label"]).to_owned(),
            xsi_type: col(row, &["xsiType", "element_name"]).to_owned(),
            insert_date: col(row, &["insert_date"]).to_owned(),
        }
    }
}

impl Scan {
    fn from_row(row: &Row) -> Self {
        let series_description = col(row, &["series_description"]).to_owned();
        let scan_type = match col(row, &["type"]) {
            "" => series_description.clone(),
            t => t.to_owned(),
        };
        Self {
            id: col(row, &["ID", "id"]).to_owned(),
            scan_type,
            series_description,
            quality: col(row, &["quality"]).to_owned(),
            xsi_type: col(row, &["xsiType", "element_name"]).to_owned(),
        }
    }
}

impl Resource {
    fn from_row(row: &Row) -> Self {
        Self {
            id: col(row, &["xnat_abstractresource_id", "ID"]).to_owned(),
            label: col(row, &["label"]).to_owned(),
            format: col(row, &["format"]).to_owned(),
            file_count: num(row, &["file_count"]),
            file_size: num(row, &["file_size"]),
        }
    }
}

impl RemoteFile {
    fn from_row(row: &Row) -> Option<Self> {
        let uri = col(row, &["URI"]).to_owned();
        if uri.is_empty() {
            return None;
        }
        // The path inside the resource is what follows `/files/` in the URI
        // (Name is only the base name when files sit in sub-folders).
        let path = match uri.find("/files/") {
            Some(i) => percent_encoding::percent_decode_str(&uri[i + "/files/".len()..])
                .decode_utf8_lossy()
                .into_owned(),
            None => col(row, &["Name", "name"]).to_owned(),
        };
        let resource = match col(row, &["collection"]) {
            "" => resource_from_uri(&uri).unwrap_or_default(),
            c => c.to_owned(),
        };
        let digest = match col(row, &["digest"]).trim() {
            "" => None,
            d => Some(d.to_ascii_lowercase()),
        };
        Some(Self {
            path,
            uri,
            resource,
            size: num(row, &["Size", "size"]),
            digest,
        })
    }
}

fn resource_from_uri(uri: &str) -> Option<String> {
    let start = uri.find("/resources/")? + "/resources/".len();
    let rest = &uri[start..];
    Some(rest.split('/').next()?.to_owned())
}

/// Path of a session, built from labels or IDs (the server accepts both).
pub fn session_path(project: &str, subject: &str, session: &str) -> String {
    format!(
        "/data/projects/{}/subjects/{}/experiments/{}",
        seg(project),
        seg(subject),
        seg(session)
    )
}

impl XnatClient {
    /// GETs a listing as JSON.
    pub async fn list(&self, path: &str, columns: &[&str], what: &str) -> Result<ResultSet> {
        let mut request = Request::get(path, what).query("format", "json");
        if !columns.is_empty() {
            request = request.query("columns", columns.join(","));
        }
        let (url, text) = self.get_body(path, &request).await?;
        ResultSet::from_json(&text).map_err(|e| ClientError::Decode {
            url,
            reason: format!("not a ResultSet listing ({e})"),
        })
    }

    /// GETs one object's `{"items": [...]}` JSON and returns the current item.
    pub async fn item(&self, path: &str, what: &str) -> Result<ObjectItem> {
        let request = Request::get(path, what).query("format", "json");
        let (url, text) = self.get_body(path, &request).await?;
        let doc: ItemsDocument = serde_json::from_str(&text).map_err(|e| ClientError::Decode {
            url: url.clone(),
            reason: format!("not an items document ({e})"),
        })?;
        doc.current().cloned().ok_or_else(|| ClientError::Decode {
            url,
            reason: "no current item".into(),
        })
    }

    /// Sends the GET `request` for `path`; returns the URL errors name (no
    /// query) and the body.
    async fn get_body(&self, path: &str, request: &Request) -> Result<(String, String)> {
        let url = self.url(path, &[])?.to_string();
        let text = self
            .send(request)
            .await?
            .text()
            .await
            .map_err(|e| ClientError::Transport {
                method: "GET".into(),
                url: url.clone(),
                reason: crate::client::describe_reqwest(&e),
            })?;
        Ok((url, text))
    }

    /// Sends a request and returns the body text (trimmed).
    pub async fn text(&self, request: &Request) -> Result<String> {
        let response = self.send(request).await?;
        let url = response.url().to_string();
        let text = response.text().await.map_err(|e| ClientError::Transport {
            method: request.method.to_string(),
            url,
            reason: crate::client::describe_reqwest(&e),
        })?;
        Ok(text.trim().to_owned())
    }

    pub async fn projects(&self) -> Result<Vec<Project>> {
        let set = self
            .list(
                "/data/projects",
                &["ID", "name", "description", "URI"],
                "project list",
            )
            .await?;
        Ok(set.rows.iter().map(Project::from_row).collect())
    }

    /// Fails with [`ClientError::NotFound`] when the project does not exist
    /// or is not visible.
    pub async fn project(&self, project: &str) -> Result<ObjectItem> {
        self.item(
            &format!("/data/projects/{}", seg(project)),
            &format!("project {project:?}"),
        )
        .await
    }

    pub async fn subjects(&self, project: &str) -> Result<Vec<Subject>> {
        let set = self
            .list(
                &format!("/data/projects/{}/subjects", seg(project)),
                &["ID", "label", "project", "URI"],
                &format!("project {project:?}"),
            )
            .await?;
        Ok(set
            .rows
            .iter()
            .map(|r| Subject::from_row(r, project))
            .collect())
    }

    /// Sessions of one subject (label or ID).
    pub async fn sessions(&self, project: &str, subject: &str) -> Result<Vec<Session>> {
        let set = self
            .list(
                &format!(
                    "/data/projects/{}/subjects/{}/experiments",
                    seg(project),
                    seg(subject)
                ),
                &["ID", "label", "project", "xsiType", "date", "URI"],
                &format!("subject {subject:?} in project {project:?}"),
            )
            .await?;
        Ok(set
            .rows
            .iter()
            .map(|r| Session::from_row(r, project))
            .collect())
    }

    pub async fn scans(&self, project: &str, subject: &str, session: &str) -> Result<Vec<Scan>> {
        let set = self
            .list(
                &format!("{}/scans", session_path(project, subject, session)),
                &[
                    "ID",
                    "type",
                    "series_description",
                    "quality",
                    "xsiType",
                    "URI",
                ],
                &format!("session {session:?}"),
            )
            .await?;
        Ok(set.rows.iter().map(Scan::from_row).collect())
    }

    /// The image assessors of a session.
    pub async fn assessors(
        &self,
        project: &str,
        subject: &str,
        session: &str,
    ) -> Result<Vec<Assessor>> {
        let set = self
            .list(
                &format!("{}/assessors", session_path(project, subject, session)),
                &["ID", "label", "xsiType", "insert_date"],
                &format!("the assessors of session {session:?}"),
            )
            .await?;
        Ok(set.rows.iter().map(Assessor::from_row).collect())
    }

    /// Resources of the object at `parent` (a server path such as a scan's).
    pub async fn resources(&self, parent: &str) -> Result<Vec<Resource>> {
        let set = self.list_below(parent, "resources").await?;
        Ok(set.rows.iter().map(Resource::from_row).collect())
    }

    /// Files under `parent` (a resource, a scan or `…/scans/ALL`).
    pub async fn files(&self, parent: &str) -> Result<Vec<RemoteFile>> {
        let set = self.list_below(parent, "files").await?;
        Ok(set.rows.iter().filter_map(RemoteFile::from_row).collect())
    }

    /// The listing `{parent}/{children}` with every column the server sends.
    async fn list_below(&self, parent: &str, children: &str) -> Result<ResultSet> {
        self.list(
            &format!("{parent}/{children}"),
            &[],
            &format!("{children} of {parent}"),
        )
        .await
    }

    /// Creates (or confirms) an object with a PUT; returns the body (the ID).
    pub async fn put_object(
        &self,
        path: &str,
        query: &[(&str, &str)],
        what: &str,
    ) -> Result<String> {
        let mut request = Request::new(Method::PUT, path, what);
        for (k, v) in query {
            request = request.query(k, *v);
        }
        self.text(&request).await
    }

    /// Uploads one file into a resource (PUT of the whole file to a fixed
    /// path: safe to retry).
    pub async fn upload_file(
        &self,
        resource_path: &str,
        name: &str,
        local: &std::path::Path,
    ) -> Result<()> {
        let remote = name.split('/').map(seg).collect::<Vec<_>>().join("/");
        let request = Request::new(
            Method::PUT,
            format!("{resource_path}/files/{remote}"),
            format!("file {name:?}"),
        )
        .query("overwrite", "true")
        .body(crate::client::RequestBody::File(
            local.to_owned(),
            "application/octet-stream",
        ));
        self.send(&request).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnatkit_model::resultset::row;

    #[test]
    fn file_rows_give_path_resource_and_digest() {
        let f = RemoteFile::from_row(&row([
            ("Name", "b.dcm"),
            (
                "URI",
                "/data/experiments/E1/scans/1/resources/12/files/sub%20dir/b.dcm",
            ),
            ("Size", "10"),
            ("digest", "ABC"),
        ]))
        .unwrap();
        assert_eq!(f.path, "sub dir/b.dcm");
        assert_eq!(f.resource, "12");
        assert_eq!(f.size, Some(10));
        assert_eq!(f.digest.as_deref(), Some("abc"));
    }

    #[test]
    fn scan_type_falls_back_to_description() {
        let s = Scan::from_row(&row([("ID", "2"), ("series_description", "T1")]));
        assert_eq!(s.scan_type, "T1");
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
    }
}
