//! Changing and deleting from the subject and session pages: custom
//! variables (set, remove) and deletion of a subject, session or scan
//! behind a confirmation page that says what goes and asks for the label.
//! Each form calls a domain function under the REST API's permission
//! rules: `archive::objects::set_custom_fields` (what
//! `PUT …?xnat:subjectData/fields/field[name=x]/field=v` changes, but
//! never creating the object) and `archive::objects::delete`, as
//! `DELETE /data/projects/P/…` does.

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use xnatkit_model::encode_segment;

use super::links::{actor, archive_path, project_href, session_href, subject_href};
use super::{Layout, WebError, csrf, page, require_login, see_other};
use crate::access::{Action, Caller};
use crate::archive::Scope;
use crate::archive::objects::{self, DeletionPreview, FieldChanges};
use crate::error::ApiError;
use crate::state::AppState;

type PageResult = Result<Response, WebError>;

/// The longest custom-variable name the form accepts.
const MAX_FIELD_NAME: usize = 64;

/// The page path of a subject, session or scan (`/app/projects/P/…`).
fn page_href(project: &str, subject: &str, experiment: Option<&str>, scan: Option<&str>) -> String {
    let mut href = match experiment {
        Some(experiment) => session_href(project, subject, experiment),
        None => subject_href(project, subject),
    };
    if let Some(scan) = scan {
        href.push_str("/scans/");
        href.push_str(&encode_segment(scan));
    }
    href
}

/// Whether the page should offer deletion of what `scope` reaches through
/// the path: the same checks `objects::delete` makes (a share is removed
/// by whoever may unshare; anything else needs Delete).
pub fn may_delete(scope: &Scope) -> bool {
    if scope.names_shared() {
        scope.check_unshare().is_ok()
    } else {
        scope.check(Action::Delete).is_ok()
    }
}

/// A custom-variable name as XNAT stores it (lower case), or why not.
fn field_name(raw: &str) -> Result<String, WebError> {
    let name = raw.trim().to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= MAX_FIELD_NAME
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(WebError(ApiError::BadRequest(format!(
            "custom variable name {raw:?}: use a letter followed by letters, digits or _ (at most {MAX_FIELD_NAME})"
        ))));
    }
    Ok(name)
}

#[derive(Deserialize)]
pub struct FieldForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
    /// Present: remove the variable instead of setting it.
    remove: Option<String>,
}

impl FieldForm {
    fn changes(&self) -> Result<FieldChanges, WebError> {
        let name = field_name(&self.name)?;
        let value = if self.remove.is_some() {
            None
        } else {
            Some(self.value.trim().to_owned())
        };
        Ok(vec![(name, value)])
    }
}

/// `POST /app/projects/P/subjects/S/fields`.
pub async fn subject_fields(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((project, subject)): Path<(String, String)>,
    Form(form): Form<FieldForm>,
) -> PageResult {
    csrf::check(&headers, &caller, form.csrf.as_deref())?;
    require_login(&caller)?;
    let path = archive_path(&project, &subject, None, None)?;
    objects::set_custom_fields(&actor(&state, &caller), &path, &form.changes()?).await?;
    let back = page_href(&project, &subject, None, None);
    Ok(see_other(&format!("{back}#custom-fields")))
}

/// `POST /app/projects/P/subjects/S/experiments/E/fields`.
pub async fn session_fields(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((project, subject, experiment)): Path<(String, String, String)>,
    Form(form): Form<FieldForm>,
) -> PageResult {
    csrf::check(&headers, &caller, form.csrf.as_deref())?;
    require_login(&caller)?;
    let path = archive_path(&project, &subject, Some(&experiment), None)?;
    objects::set_custom_fields(&actor(&state, &caller), &path, &form.changes()?).await?;
    let back = page_href(&project, &subject, Some(&experiment), None);
    Ok(see_other(&format!("{back}#custom-fields")))
}

#[derive(Template)]
#[template(path = "web/delete.html")]
struct DeletePage {
    layout: Layout,
    project: String,
    preview: DeletionPreview,
    summary: String,
    action: String,
    back: String,
}

/// `3 sessions, 12 scans, 1,440 files (198.0 MB)` for what the preview
/// counts.
fn summary(preview: &DeletionPreview) -> String {
    let mut parts = Vec::new();
    let plural = |n: usize, one: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {one}s")
        }
    };
    if preview.what == "subject" {
        parts.push(plural(preview.sessions, "session"));
    }
    if preview.what != "scan" {
        parts.push(plural(preview.scans, "scan"));
    }
    let files = usize::try_from(preview.files).unwrap_or(0);
    parts.push(format!(
        "{} ({})",
        plural(files, "file"),
        super::pages::human_size(preview.bytes)
    ));
    parts.join(", ")
}

/// Where a page goes after the deletion: the parent's page.
fn parent_href(project: &str, subject: &str, experiment: Option<&str>, scan: bool) -> String {
    match (experiment, scan) {
        (Some(experiment), true) => page_href(project, subject, Some(experiment), None),
        (Some(_), false) => page_href(project, subject, None, None),
        (None, _) => project_href(project),
    }
}

async fn confirm(
    state: &AppState,
    caller: &Caller,
    project: &str,
    subject: &str,
    experiment: Option<&str>,
    scan: Option<&str>,
) -> PageResult {
    require_login(caller)?;
    let path = archive_path(project, subject, experiment, scan)?;
    let preview = objects::deletion_preview(&actor(state, caller), &path).await?;
    let here = page_href(project, subject, experiment, scan);
    let back = match scan {
        Some(_) => parent_href(project, subject, experiment, true),
        None => here.clone(),
    };
    let layout = Layout::new(
        state,
        caller,
        format!("Delete {} {}", preview.what, preview.label),
    )
    .crumb("Projects", "/app/projects")
    .crumb(
        project.to_owned(),
        format!("/app/projects/{}", encode_segment(project)),
    );
    let rendered = DeletePage {
        layout,
        project: project.to_owned(),
        summary: summary(&preview),
        preview,
        action: format!("{here}/delete"),
        back,
    }
    .render();
    Ok(page(StatusCode::OK, rendered))
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    #[serde(default)]
    confirm: String,
}

async fn delete(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    form: &DeleteForm,
    (project, subject, experiment, scan): (&str, &str, Option<&str>, Option<&str>),
) -> PageResult {
    csrf::check(headers, caller, form.csrf.as_deref())?;
    require_login(caller)?;
    let path = archive_path(project, subject, experiment, scan)?;
    let actor = actor(state, caller);
    let preview = objects::deletion_preview(&actor, &path).await?;
    if form.confirm.trim() != preview.label {
        return Err(WebError(ApiError::BadRequest(format!(
            "nothing was deleted: type the {} label {:?} exactly to confirm",
            preview.what, preview.label
        ))));
    }
    objects::delete(&actor, &path).await?;
    Ok(see_other(&parent_href(
        project,
        subject,
        experiment,
        scan.is_some(),
    )))
}

/// `GET /app/projects/P/subjects/S/delete`.
pub async fn confirm_subject(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, subject)): Path<(String, String)>,
) -> PageResult {
    confirm(&state, &caller, &project, &subject, None, None).await
}

/// `POST /app/projects/P/subjects/S/delete`.
pub async fn delete_subject(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((project, subject)): Path<(String, String)>,
    Form(form): Form<DeleteForm>,
) -> PageResult {
    delete(
        &state,
        &caller,
        &headers,
        &form,
        (&project, &subject, None, None),
    )
    .await
}

/// `GET /app/projects/P/subjects/S/experiments/E/delete`.
pub async fn confirm_session(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, subject, experiment)): Path<(String, String, String)>,
) -> PageResult {
    confirm(&state, &caller, &project, &subject, Some(&experiment), None).await
}

/// `POST /app/projects/P/subjects/S/experiments/E/delete`.
pub async fn delete_session(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((project, subject, experiment)): Path<(String, String, String)>,
    Form(form): Form<DeleteForm>,
) -> PageResult {
    let target = (
        project.as_str(),
        subject.as_str(),
        Some(experiment.as_str()),
        None,
    );
    delete(&state, &caller, &headers, &form, target).await
}

/// `GET /app/projects/P/subjects/S/experiments/E/scans/C/delete`.
pub async fn confirm_scan(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, subject, experiment, scan)): Path<(String, String, String, String)>,
) -> PageResult {
    confirm(
        &state,
        &caller,
        &project,
        &subject,
        Some(&experiment),
        Some(&scan),
    )
    .await
}

/// `POST /app/projects/P/subjects/S/experiments/E/scans/C/delete`.
pub async fn delete_scan(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((project, subject, experiment, scan)): Path<(String, String, String, String)>,
    Form(form): Form<DeleteForm>,
) -> PageResult {
    let target = (
        project.as_str(),
        subject.as_str(),
        Some(experiment.as_str()),
        Some(scan.as_str()),
    );
    delete(&state, &caller, &headers, &form, target).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_lower_case_identifiers() {
        assert_eq!(field_name(" Age ").ok(), Some("age".to_owned()));
        assert_eq!(field_name("weight_kg2").ok(), Some("weight_kg2".to_owned()));
        for bad in ["", "2x", "a b", "a/b", "é", &"x".repeat(65)] {
            assert!(field_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn summaries_count_what_goes() {
        let mut preview = DeletionPreview {
            what: "subject",
            label: "S1".to_owned(),
            share_of: None,
            allowed: true,
            sessions: 2,
            scans: 1,
            files: 3,
            bytes: 1500,
        };
        assert_eq!(summary(&preview), "2 sessions, 1 scan, 3 files (1.5 KB)");
        preview.what = "scan";
        preview.files = 1;
        assert_eq!(summary(&preview), "1 file (1.5 KB)");
    }
}
