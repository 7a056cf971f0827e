//! `download`: a session, subject or project into XNAT's own folder
//! structure, as xnatpy's `download_dir` lays it out
//! (`{session}/scans/{id}-{type}/resources/{label}/files/{path}`), but file
//! by file through the resumable downloader instead of one big zip.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::archive::session_path;
use crate::client::XnatClient;
use crate::error::{ClientError, Result};
use crate::layout::safe_component;
use crate::transfer::FileJob;

/// What to download, parsed from `PROJECT[/SUBJECT[/SESSION]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeTarget {
    Project(String),
    Subject(String, String),
    Session(String, String, String),
}

impl TreeTarget {
    pub fn parse(text: &str) -> Result<Self> {
        let parts: Vec<&str> = text.split('/').filter(|p| !p.is_empty()).collect();
        match parts.as_slice() {
            [p] => Ok(Self::Project((*p).to_owned())),
            [p, s] => Ok(Self::Subject((*p).to_owned(), (*s).to_owned())),
            [p, s, e] => Ok(Self::Session(
                (*p).to_owned(),
                (*s).to_owned(),
                (*e).to_owned(),
            )),
            _ => Err(ClientError::Invalid(format!(
                "{text:?}: expected PROJECT, PROJECT/SUBJECT or PROJECT/SUBJECT/SESSION"
            ))),
        }
    }
}

/// XNAT's zip naming of scan folders: non-alphanumerics become `_`.
fn scan_folder(id: &str, scan_type: &str) -> String {
    let t: String = scan_type
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if t.is_empty() {
        safe_component(id)
    } else {
        safe_component(&format!("{id}-{t}"))
    }
}

/// The scan ID in a file URI `…/scans/{id}/resources/…`.
fn scan_of_uri(uri: &str) -> Option<String> {
    let start = uri.find("/scans/")? + "/scans/".len();
    let id = uri[start..].split('/').next()?;
    Some(
        percent_encoding::percent_decode_str(id)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// Lists every scan file of the target and where it goes under `out`.
/// Returns the jobs and the session labels (job `group` indexes them).
pub async fn plan_tree(
    client: &XnatClient,
    target: &TreeTarget,
    out: &Path,
) -> Result<(Vec<FileJob>, Vec<String>)> {
    // (project, subject label, session ID, session label, base folder)
    let mut sessions: Vec<(String, String, String, String, PathBuf)> = Vec::new();
    match target {
        TreeTarget::Project(p) => {
            client.project(p).await?;
            for subject in client.subjects(p).await? {
                for s in client.sessions(p, &subject.id).await? {
                    let base = out
                        .join(safe_component(p))
                        .join(safe_component(&subject.label))
                        .join(safe_component(&s.label));
                    sessions.push((p.clone(), subject.id.clone(), s.id, s.label, base));
                }
            }
        }
        TreeTarget::Subject(p, subj) => {
            for s in client.sessions(p, subj).await? {
                let base = out
                    .join(safe_component(subj))
                    .join(safe_component(&s.label));
                sessions.push((p.clone(), subj.clone(), s.id, s.label, base));
            }
        }
        TreeTarget::Session(p, subj, e) => {
            let item = client
                .item(&session_path(p, subj, e), &format!("session {e:?}"))
                .await?;
            let label = item.get_str("label").unwrap_or(e).to_owned();
            let base = out.join(safe_component(&label));
            sessions.push((p.clone(), subj.clone(), e.clone(), label, base));
        }
    }
    let mut jobs = Vec::new();
    let mut labels = Vec::new();
    for (group, (project, subject, session_id, label, base)) in sessions.into_iter().enumerate() {
        labels.push(label);
        let types: HashMap<String, String> = client
            .scans(&project, &subject, &session_id)
            .await?
            .into_iter()
            .map(|s| (s.id, s.scan_type))
            .collect();
        if types.is_empty() {
            continue;
        }
        let path = format!(
            "{}/scans/ALL",
            session_path(&project, &subject, &session_id)
        );
        for file in client.files(&path).await? {
            let scan = scan_of_uri(&file.uri).unwrap_or_default();
            let scan_type = types.get(&scan).map_or("", String::as_str);
            let dest = base
                .join("scans")
                .join(scan_folder(&scan, scan_type))
                .join("resources")
                .join(safe_component(&file.resource))
                .join("files")
                .join(xnatkit_fileio::safe_relative_path(&file.path)?);
            jobs.push(FileJob {
                group,
                remote: file,
                dest,
            });
        }
    }
    Ok((jobs, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_folders() {
        assert_eq!(
            TreeTarget::parse("P/S/E").unwrap(),
            TreeTarget::Session("P".into(), "S".into(), "E".into())
        );
        assert!(TreeTarget::parse("").is_err());
        assert_eq!(scan_folder("2", "SAG LOCALIZER"), "2-SAG_LOCALIZER");
        assert_eq!(
            scan_of_uri("/data/experiments/E/scans/12/resources/DICOM/files/a").as_deref(),
            Some("12")
        );
    }
}
