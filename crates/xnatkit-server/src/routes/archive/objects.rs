//! Single objects over HTTP: `?format=json`/`xml` items, and the XPath
//! parameters of creation/update PUTs (see [`crate::archive::objects`]) turned into
//! the typed changes that [`crate::archive::objects`] applies; DELETE.

use axum::http::StatusCode;
use axum::response::Response;
use xnatkit_model::assessor_xml::AssessorDocument;
use xnatkit_model::{Accessibility, ArchivePath, AssessorType, Level, XsiType};

use crate::archive::assessors::AssessorChanges;

use super::Ctx;
use super::render::{
    assessor_item, experiment_item, item_xml, items_response, project_item, scan_item, subject_item,
};
use crate::access::Action;
use crate::archive::objects::{
    self as rules, ExperimentChanges, FieldChanges, ProjectChanges, ScanChanges, SubjectChanges,
    Written,
};
use crate::archive::{project_access, required_scope};
use crate::error::ApiError;
use crate::params::{Format, custom_field_name, xpath_tail};
use crate::routes::text;
use crate::store::{ExperimentStatus, Owner, Share, ShareKind};

fn respond_item(ctx: &Ctx, item: xnatkit_model::ObjectItem) -> Response {
    match ctx.params.format() {
        Some(Format::Xml) => item_xml(&item),
        _ => items_response(item),
    }
}

pub(crate) async fn get_item(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let store = ctx.state.store();
    let scope = required_scope(&ctx.actor(), path).await?;
    match path.level() {
        Level::Project => {
            scope.check(Action::ReadProject)?;
            let fields = store
                .custom_fields(&Owner::Project(scope.project.id.clone()))
                .await?;
            Ok(respond_item(ctx, project_item(&scope.project, &fields)))
        }
        Level::Subject => {
            scope.check(Action::ReadData)?;
            let subject = scope.subject(path)?;
            let fields = store
                .custom_fields(&Owner::Subject(subject.id.clone()))
                .await?;
            let shares = visible_shares(ctx, ShareKind::Subject, &subject.id).await?;
            Ok(respond_item(ctx, subject_item(subject, &fields, &shares)))
        }
        Level::Experiment => {
            scope.check(Action::ReadData)?;
            let experiment = scope.experiment(path)?;
            let fields = store
                .custom_fields(&Owner::Experiment(experiment.id.clone()))
                .await?;
            let shares = visible_shares(ctx, ShareKind::Experiment, &experiment.id).await?;
            Ok(respond_item(
                ctx,
                experiment_item(experiment, &fields, &shares),
            ))
        }
        _ => {
            scope.check(Action::ReadData)?;
            let experiment = scope.experiment(path)?;
            let scan_id = path.scans.as_ref().and_then(|s| s.single()).unwrap_or("");
            let scan = store
                .scan(&experiment.id, scan_id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("scan {scan_id}")))?;
            Ok(respond_item(ctx, scan_item(&scan, &scope.project.id)))
        }
    }
}

/// The shares of an object into projects the caller can see (as in
/// project listings): other projects' names are not revealed.
async fn visible_shares(ctx: &Ctx, kind: ShareKind, id: &str) -> Result<Vec<Share>, ApiError> {
    let store = ctx.state.store();
    let mut out = Vec::new();
    for share in store.shares(kind, id).await? {
        if let Some(project) = store.project(&share.project).await?
            && project_access(&ctx.actor(), &project)
                .await?
                .lists_project()
        {
            out.push(share);
        }
    }
    Ok(out)
}

/// Custom-variable changes in the request (`…/fields/field[name=x]/field=v`;
/// `NULL` deletes). Names are lower-cased as XNAT stores them.
fn field_changes(ctx: &Ctx) -> FieldChanges {
    ctx.params
        .pairs()
        .iter()
        .filter_map(|(k, v)| {
            let name = custom_field_name(xpath_tail(k))?;
            if name.is_empty() {
                return None;
            }
            let value = (v != "NULL").then(|| v.clone());
            Some((name.to_ascii_lowercase(), value))
        })
        .collect()
}

/// Simple attributes (`date`, `xnat:mrSessionData/date`, …) by lower-cased
/// name; `NULL` clears.
pub(crate) fn attribute(ctx: &Ctx, name: &str) -> Option<String> {
    ctx.params
        .pairs()
        .iter()
        .rev()
        .find(|(k, _)| xpath_tail(k).eq_ignore_ascii_case(name))
        .map(|(_, v)| {
            if v == "NULL" {
                String::new()
            } else {
                v.clone()
            }
        })
}

/// The answer to a PUT: 201 with the new ID, or 200 with the ID.
fn written(outcome: Written) -> Response {
    match outcome {
        Written::Created(id) => text(StatusCode::CREATED, id),
        Written::Updated(id) => text(StatusCode::OK, id),
    }
}

/// `xsiType=` when it names a type `want` accepts.
fn requested_type(
    ctx: &Ctx,
    want: fn(XsiType) -> bool,
    what: &str,
) -> Result<Option<XsiType>, ApiError> {
    match ctx.params.get("xsiType") {
        None => Ok(None),
        Some(raw) => match XsiType::parse(raw) {
            Some(t) if want(t) => Ok(Some(t)),
            _ => Err(ApiError::BadRequest(format!(
                "xsiType {raw} is not a {what} type this server supports"
            ))),
        },
    }
}

pub(crate) async fn put_project(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let accessibility = match attribute(ctx, "accessibility") {
        Some(raw) => Some(
            raw.parse::<Accessibility>()
                .map_err(|e| ApiError::BadRequest(e.to_string()))?,
        ),
        None => None,
    };
    let changes = ProjectChanges {
        name: attribute(ctx, "name"),
        description: attribute(ctx, "description"),
        secondary_id: attribute(ctx, "secondary_ID"),
        accessibility,
        fields: field_changes(ctx),
    };
    let id = path.project.as_deref().unwrap_or_default();
    Ok(written(
        rules::put_project(&ctx.actor(), id, &changes).await?,
    ))
}

pub(crate) async fn put_subject(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let changes = SubjectChanges {
        label: attribute(ctx, "label"),
        fields: field_changes(ctx),
    };
    Ok(written(
        rules::put_subject(&ctx.actor(), path, &changes).await?,
    ))
}

pub(crate) async fn put_experiment(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let status = if ctx.params.flag("quarantine") {
        Some(ExperimentStatus::Quarantine)
    } else if ctx.params.flag("activate") {
        Some(ExperimentStatus::Active)
    } else {
        None
    };
    let changes = ExperimentChanges {
        label: attribute(ctx, "label"),
        xsi_type: requested_type(ctx, XsiType::is_session, "session")?,
        date: attribute(ctx, "date"),
        time: attribute(ctx, "time"),
        note: attribute(ctx, "note"),
        modality: attribute(ctx, "modality"),
        uid: attribute(ctx, "UID"),
        session_type: attribute(ctx, "session_type"),
        subject: attribute(ctx, "subject_ID"),
        status,
        fields: field_changes(ctx),
    };
    Ok(written(
        rules::put_experiment(&ctx.actor(), path, &changes).await?,
    ))
}

pub(crate) async fn put_scan(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let changes = ScanChanges {
        xsi_type: requested_type(ctx, XsiType::is_scan, "scan")?,
        scan_type: attribute(ctx, "type"),
        series_description: attribute(ctx, "series_description"),
        quality: attribute(ctx, "quality"),
        note: attribute(ctx, "note"),
        uid: attribute(ctx, "UID"),
        modality: attribute(ctx, "modality"),
        frames: attribute(ctx, "frames"),
    };
    Ok(written(
        rules::put_scan(&ctx.actor(), path, &changes).await?,
    ))
}

/// `…/assessors/A?format=json|xml`.
pub(crate) async fn get_assessor(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let (found, assessor) = crate::archive::assessors::get(&ctx.actor(), path).await?;
    Ok(respond_item(ctx, assessor_item(&assessor, &found.session)))
}

/// Largest assessor XML document read from a request body.
const MAX_ASSESSOR_XML_BYTES: usize = 8 << 20;

/// The XML document a PUT carries, if any: the body itself (dax's raw
/// `inbody=true` upload) or the first part of a multipart body (pyxnat's
/// `create(xml=…)`).
async fn assessor_document(
    ctx: &Ctx,
    body: axum::body::Body,
) -> Result<Option<AssessorDocument>, ApiError> {
    let content_type = ctx
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = if content_type.to_ascii_lowercase().starts_with("multipart/") {
        let mut multipart = super::files::multipart_of(body, &content_type).await?;
        match multipart
            .next_field()
            .await
            .map_err(|e| ApiError::BadRequest(format!("bad multipart body: {e}")))?
        {
            Some(field) => field
                .bytes()
                .await
                .map_err(|e| ApiError::BadRequest(format!("bad multipart body: {e}")))?,
            None => return Ok(None),
        }
    } else {
        axum::body::to_bytes(body, MAX_ASSESSOR_XML_BYTES)
            .await
            .map_err(|e| {
                ApiError::BadRequest(format!(
                    "cannot read the assessor document (at most {} MiB): {e}",
                    MAX_ASSESSOR_XML_BYTES >> 20
                ))
            })?
    };
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::BadRequest("the assessor document is not UTF-8 text".to_owned()))?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    AssessorDocument::parse(text)
        .map(Some)
        .map_err(|e| ApiError::BadRequest(format!("assessor document: {e}")))
}

/// PUT `…/assessors/A?xsiType=T&T/field=value…`: creates or updates.
/// Every XPath parameter below the type is a field of the assessor; the
/// type says which exist (an unknown one is refused, not dropped). A body
/// holding an assessor XML document (dax, pyxnat's `create(xml=…)`) gives
/// the type, label, fields and a QC assessment's scan statistics, and
/// replaces the stored fields unless `allowDataDeletion=false`; XPath
/// parameters given beside it win.
pub(crate) async fn put_assessor(
    ctx: &Ctx,
    path: &ArchivePath,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let document = assessor_document(ctx, body).await?;
    let xsi_type = match ctx.params.get("xsiType") {
        None => None,
        Some(raw) => Some(AssessorType::parse(raw).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "xsiType {raw} is not an assessor type this server supports; use one of {}",
                AssessorType::ALL.map(AssessorType::as_str).join(", ")
            ))
        })?),
    };
    let mut fields = Vec::new();
    let mut label = None;
    for (key, value) in ctx.params.pairs() {
        let Some((root, tail)) = key.split_once('/') else {
            if key.eq_ignore_ascii_case("label") {
                label = Some(value.clone());
            }
            continue;
        };
        if !root.contains(':') {
            continue;
        }
        let value = if value == "NULL" {
            String::new()
        } else {
            value.clone()
        };
        if tail.eq_ignore_ascii_case("label") {
            label = Some(value);
        } else if !tail.eq_ignore_ascii_case("ID") && !tail.eq_ignore_ascii_case("project") {
            fields.push((tail.to_owned(), value));
        }
    }
    let mut changes = AssessorChanges {
        label,
        xsi_type,
        fields,
        children: None,
        replace: false,
    };
    if let Some(doc) = document {
        changes.xsi_type = changes.xsi_type.or(Some(doc.xsi_type));
        changes.label = changes.label.or(doc.label.clone());
        changes.replace = ctx
            .params
            .get("allowDataDeletion")
            .is_none_or(|v| !v.eq_ignore_ascii_case("false"));
        let children = doc.children();
        if !children.is_empty() {
            changes.children =
                Some(serde_json::to_string(&children).map_err(|e| {
                    ApiError::Internal(format!("assessor statistics as JSON: {e}"))
                })?);
        } else if changes.replace {
            // A replacing document without scan statistics has none.
            changes.children = Some(String::new());
        }
        let mut fields = doc.fields;
        fields.append(&mut changes.fields);
        changes.fields = fields;
    }
    Ok(written(
        crate::archive::assessors::put(&ctx.actor(), path, &changes).await?,
    ))
}

/// DELETE of any archive object; always 200 on success (xnatpy rejects 204).
pub(crate) async fn delete(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    match path.level() {
        Level::Resource => super::files::delete_resource(ctx, path).await,
        Level::File => super::files::delete_file(ctx, path).await,
        Level::Assessor => {
            crate::archive::assessors::delete(&ctx.actor(), path).await?;
            Ok(text(StatusCode::OK, ""))
        }
        _ => {
            rules::delete(&ctx.actor(), path).await?;
            Ok(text(StatusCode::OK, ""))
        }
    }
}
