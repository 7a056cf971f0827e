//! Shapes of what the archive returns: listing rows (all values strings,
//! every column xnatpy and pyxnat read always present, empty when unknown),
//! single-object items (`items[0].data_fields`, `children`, `meta`, as
//! xnatpy reads them) and URIs under `/data`.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use xnatkit_model::items::FIELDS_CHILD;
use xnatkit_model::resultset::row;
use xnatkit_model::{ItemChild, ItemsDocument, ObjectItem, ResultSet, Row};

use crate::error::ApiError;
use crate::params::{Format, Params};
use crate::routes::json;
use crate::store::{Assessor, Experiment, FileRow, Project, Resource, Scan, Share, Subject};

pub(crate) use xnatkit_model::encode_segment;

/// `children` path of the projects an object is shared into.
pub(crate) const SHARING_CHILD: &str = "sharing/share";
/// xsi types of share items, as XNAT names them; both are defined in the
/// served schema ([`crate::schema`]) because xnatpy builds classes from it.
pub const SUBJECT_SHARE_TYPE: &str = "xnat:projectParticipant";
pub const EXPERIMENT_SHARE_TYPE: &str = "xnat:experimentData_share";

/// Characters escaped in file paths of listed URIs. Spaces stay as they
/// are: xnatpy keys files by the URI's tail, so `a b.nii` must read back as
/// `a b.nii`; HTTP clients encode the space when they request the URI.
const FILE_PATH: &AsciiSet = &CONTROLS.add(b'#').add(b'?').add(b'%');

/// Prepares a relative file path for a listed URI, keeping '/'.
pub(crate) fn encode_path(path: &str) -> String {
    utf8_percent_encode(path, FILE_PATH).to_string()
}

/// XNAT's `start_date` style, which xnatpy parses with dateutil.
pub(crate) fn xnat_date(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%a %b %d %H:%M:%S UTC %Y")
        .to_string()
}

/// Listing timestamps: `YYYY-MM-DD HH:MM:SS.f`.
pub(crate) fn insert_date(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
}

pub(crate) fn project_row(p: &Project) -> Row {
    row([
        ("ID", p.id.clone()),
        ("secondary_ID", p.secondary_id.clone()),
        ("name", p.name.clone()),
        ("description", p.description.clone()),
        ("pi_firstname", String::new()),
        ("pi_lastname", String::new()),
        // Aliases are not supported; pyxnat's share() reads the column.
        ("alias", String::new()),
        ("xsiType", "xnat:projectData".to_owned()),
        ("URI", format!("/data/projects/{}", p.id)),
    ])
}

/// A subject row; `label` is its label in the listed project (a share's
/// label there), `project` stays its own project, as XNAT lists them.
pub(crate) fn subject_row(s: &Subject, label: &str) -> Row {
    row([
        ("ID", s.id.clone()),
        ("project", s.project.clone()),
        ("label", label.to_owned()),
        ("insert_date", insert_date(s.created)),
        ("insert_user", s.created_by.clone()),
        ("xsiType", "xnat:subjectData".to_owned()),
        ("URI", format!("/data/subjects/{}", s.id)),
    ])
}

/// An experiment row; `label` and `subject_label` as the listed project
/// knows them, `project` its own project (as for [`subject_row`]).
pub(crate) fn experiment_row(e: &Experiment, label: &str, subject_label: &str) -> Row {
    row([
        ("ID", e.id.clone()),
        ("project", e.project.clone()),
        ("label", label.to_owned()),
        ("xsiType", e.xsi_type.clone()),
        ("date", e.attrs.date.clone()),
        ("insert_date", insert_date(e.created)),
        ("subject_ID", e.subject_id.clone()),
        ("subject_label", subject_label.to_owned()),
        ("URI", format!("/data/experiments/{}", e.id)),
    ])
}

/// One assessor in a session's `assessors` listing. `columns=` may ask
/// for fields by XPath (`proc:genProcData/procstatus`, as pyxnat's
/// `attrs.get` does); each comes back under the name asked for.
pub(crate) fn assessor_row(a: &Assessor, session: &Experiment, extra: &[String]) -> Row {
    let mut r = row([
        ("ID", a.id.clone()),
        ("id", a.id.clone()),
        ("project", a.project.clone()),
        ("label", a.label.clone()),
        ("xsiType", a.xsi_type.clone()),
        ("date", a.fields.get("date").cloned().unwrap_or_default()),
        ("insert_date", insert_date(a.created)),
        ("insert_user", a.created_by.clone()),
        ("session_ID", session.id.clone()),
        ("session_label", session.label.clone()),
        ("imageSession_ID", session.id.clone()),
        (
            "URI",
            format!("/data/experiments/{}/assessors/{}", session.id, a.id),
        ),
    ]);
    for column in extra {
        let tail = crate::params::xpath_tail(column);
        let value = a
            .fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(tail))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        r.insert(column.clone(), value);
    }
    r
}

pub(crate) fn scan_row(s: &Scan) -> Row {
    row([
        ("xnat_imagescandata_id", s.pk.to_string()),
        ("ID", s.scan_id.clone()),
        ("type", s.attrs.scan_type.clone()),
        ("series_description", s.attrs.series_description.clone()),
        ("quality", s.attrs.quality.clone()),
        ("note", s.attrs.note.clone()),
        ("xsiType", s.xsi_type.clone()),
        (
            "URI",
            format!(
                "/data/experiments/{}/scans/{}",
                s.experiment_id,
                encode_segment(&s.scan_id)
            ),
        ),
    ])
}

/// Resource rows carry no `ID`/`URI`/`xsiType` (as in XNAT): xnatpy then
/// uses `xnat_abstractresource_id` and `element_name`, and pyxnat drops
/// rows that have an `xsiType` without a `/data` URI.
pub(crate) fn resource_row(r: &Resource, category: &str, cat_id: &str) -> Row {
    row([
        ("xnat_abstractresource_id", r.id.to_string()),
        ("label", r.label.clone()),
        ("element_name", "xnat:resourceCatalog".to_owned()),
        ("category", category.to_owned()),
        ("cat_id", cat_id.to_owned()),
        ("cat_desc", String::new()),
        ("format", r.format.clone()),
        ("content", r.content.clone()),
        ("tags", r.tags.clone()),
        ("file_count", r.file_count.to_string()),
        ("file_size", r.file_size.to_string()),
    ])
}

/// File rows: `Name` is the bare file name, `URI` a working download URL
/// through the numeric resource ID, `digest` the MD5 of the stored bytes.
pub(crate) fn file_row(f: &FileRow, resource: &Resource, owner_uri: &str) -> Row {
    let name = f.path.rsplit('/').next().unwrap_or(&f.path).to_owned();
    row([
        ("Name", name),
        ("Size", f.size.to_string()),
        (
            "URI",
            format!(
                "{owner_uri}/resources/{}/files/{}",
                resource.id,
                encode_path(&f.path)
            ),
        ),
        ("path", f.path.clone()),
        ("collection", resource.label.clone()),
        ("file_tags", f.tags.clone()),
        ("file_format", f.format.clone()),
        ("file_content", f.content.clone()),
        ("cat_ID", resource.id.to_string()),
        ("digest", f.md5.clone()),
    ])
}

/// Applies XNAT's listing filters: `xsiType=`, `label=`/`ID=` with `*`
/// wildcards; unknown filters are ignored.
pub(crate) fn filter_rows(mut rows: Vec<Row>, params: &Params) -> Vec<Row> {
    for key in ["xsiType", "label", "ID", "project", "type"] {
        if let Some(pattern) = params.get(key) {
            if pattern.is_empty() || pattern == "*" {
                continue;
            }
            rows.retain(|r| match r.get(key) {
                Some(value) => pattern
                    .split(',')
                    .any(|p| wildcard_match(&p.to_ascii_lowercase(), &value.to_ascii_lowercase())),
                // Rows without the column (e.g. resources) are not filtered.
                None => true,
            });
        }
    }
    rows
}

fn wildcard_match(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((head, tail)) => {
            if !value.starts_with(head) {
                return false;
            }
            let rest = &value[head.len()..];
            if tail.is_empty() {
                return true;
            }
            (0..=rest.len())
                .filter(|i| rest.is_char_boundary(*i))
                .any(|i| wildcard_match(tail, &rest[i..]))
        }
    }
}

/// XNAT's paging of listings: `offset=N` skips N rows (after the filters),
/// `limit=N` keeps at most N, `limit=*` (or no limit) keeps all. The
/// listings come from ordered queries, so pages do not overlap.
fn page(rows: Vec<Row>, params: &Params) -> Result<Vec<Row>, ApiError> {
    let number = |key: &str| -> Result<Option<usize>, ApiError> {
        match params.get(key).map(str::trim) {
            None | Some("" | "*") => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| {
                ApiError::BadRequest(format!(
                    "{key}={text:?} is not a number; use {key}=N (limit=* for all rows)"
                ))
            }),
        }
    };
    let offset = number("offset")?.unwrap_or(0);
    let limit = number("limit")?.unwrap_or(usize::MAX);
    Ok(rows.into_iter().skip(offset).take(limit).collect())
}

/// A listing answer: JSON unless CSV was asked for.
pub(crate) fn table(title: &str, columns: &[&str], rows: Vec<Row>, params: &Params) -> Response {
    let rows = match page(filter_rows(rows, params), params) {
        Ok(rows) => rows,
        Err(err) => return err.into_response(),
    };
    let mut set = ResultSet::new(title, columns);
    for r in rows {
        set.push(r);
    }
    match params.format() {
        Some(Format::Csv) => {
            let mut response = set.to_csv().into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            response
        }
        _ => json(set.to_json()),
    }
}

fn fields_child(
    owner_type: &str,
    owner_key_name: &str,
    owner_id: &str,
    fields: &[(String, String)],
) -> Option<ItemChild> {
    if fields.is_empty() {
        return None;
    }
    let items = fields
        .iter()
        .map(|(name, value)| {
            let mut item = ObjectItem::new(&format!("{owner_type}_field"));
            item.set("name", name.clone());
            item.set("field", value.clone());
            item.set(owner_key_name, owner_id.to_owned());
            item
        })
        .collect();
    Some(ItemChild {
        field: FIELDS_CHILD.to_owned(),
        items,
    })
}

fn finish(mut item: ObjectItem, created: i64) -> ObjectItem {
    item.meta.start_date = Some(xnat_date(created));
    item.meta.create_event_id = Some(created / 1000);
    item
}

pub(crate) fn project_item(p: &Project, fields: &[(String, String)]) -> ObjectItem {
    let mut item = ObjectItem::new("xnat:projectData");
    item.set("ID", p.id.clone())
        .set("secondary_ID", p.secondary_id.clone())
        .set("name", p.name.clone());
    if !p.description.is_empty() {
        item.set("description", p.description.clone());
    }
    item.children.extend(fields_child(
        "xnat:projectData",
        "fields_field_xnat_projectdata_id",
        &p.id,
        fields,
    ));
    finish(item, p.created)
}

/// The `sharing/share` child: one item per project the object is shared
/// into, with its label there (xnatpy reads it for `label` in a project).
fn sharing_child(
    xsi_type: &str,
    owner_key_name: &str,
    owner_id: &str,
    shares: &[Share],
) -> Option<ItemChild> {
    if shares.is_empty() {
        return None;
    }
    let items = shares
        .iter()
        .map(|share| {
            let mut item = ObjectItem::new(xsi_type);
            item.set("project", share.project.clone())
                .set("label", share.label.clone())
                .set(owner_key_name, owner_id.to_owned());
            finish(item, share.created)
        })
        .collect();
    Some(ItemChild {
        field: SHARING_CHILD.to_owned(),
        items,
    })
}

pub(crate) fn subject_item(
    s: &Subject,
    fields: &[(String, String)],
    shares: &[Share],
) -> ObjectItem {
    let mut item = ObjectItem::new("xnat:subjectData");
    item.set("ID", s.id.clone())
        .set("label", s.label.clone())
        .set("project", s.project.clone());
    item.children.extend(fields_child(
        "xnat:subjectData",
        "fields_field_xnat_subjectdata_id",
        &s.id,
        fields,
    ));
    item.children.extend(sharing_child(
        SUBJECT_SHARE_TYPE,
        "subject_ID",
        &s.id,
        shares,
    ));
    finish(item, s.created)
}

pub(crate) fn experiment_item(
    e: &Experiment,
    fields: &[(String, String)],
    shares: &[Share],
) -> ObjectItem {
    let mut item = ObjectItem::new(&e.xsi_type);
    item.set("ID", e.id.clone())
        .set("id", e.id.clone())
        .set("label", e.label.clone())
        .set("project", e.project.clone())
        .set("subject_ID", e.subject_id.clone());
    for (key, value) in [
        ("date", &e.attrs.date),
        ("time", &e.attrs.time),
        ("note", &e.attrs.note),
        ("modality", &e.attrs.modality),
        ("UID", &e.attrs.uid),
        ("session_type", &e.attrs.session_type),
        // Header fields, keyed as XNAT flattens them (nested with `/`).
        ("scanner", &e.attrs.dicom.scanner),
        ("scanner/manufacturer", &e.attrs.dicom.scanner_manufacturer),
        ("scanner/model", &e.attrs.dicom.scanner_model),
        ("operator", &e.attrs.dicom.operator),
        ("acquisition_site", &e.attrs.dicom.acquisition_site),
        ("dcmAccessionNumber", &e.attrs.dicom.accession_number),
        ("dcmPatientId", &e.attrs.dicom.patient_id),
        ("dcmPatientName", &e.attrs.dicom.patient_name),
        ("fieldStrength", &e.attrs.dicom.field_strength),
    ] {
        if !value.is_empty() {
            item.set(key, value.clone());
        }
    }
    item.children.extend(fields_child(
        "xnat:experimentData",
        "fields_field_xnat_experimentdata_id",
        &e.id,
        fields,
    ));
    item.children.extend(sharing_child(
        EXPERIMENT_SHARE_TYPE,
        "sharing_share_xnat_experimentda_id",
        &e.id,
        shares,
    ));
    finish(item, e.created)
}

/// An assessor as xnatpy reads it: its fields as data fields (nested ones
/// flattened with `/`, as XNAT does), the server-written nested records as
/// children.
pub(crate) fn assessor_item(a: &Assessor, session: &Experiment) -> ObjectItem {
    let mut item = ObjectItem::new(&a.xsi_type);
    item.set("ID", a.id.clone())
        .set("id", a.id.clone())
        .set("label", a.label.clone())
        .set("project", a.project.clone())
        .set("imageSession_ID", session.id.clone());
    for (key, value) in &a.fields {
        item.set(key, value.clone());
    }
    if !a.children.is_empty() {
        // Written by this server from typed values; a row that does not
        // parse is shown without its nested records rather than failing
        // the whole read.
        if let Ok(children) = serde_json::from_str::<Vec<ItemChild>>(&a.children) {
            item.children.extend(children);
        }
    }
    finish(item, a.created)
}

pub(crate) fn scan_item(s: &Scan, project: &str) -> ObjectItem {
    let mut item = ObjectItem::new(&s.xsi_type);
    item.set("ID", s.scan_id.clone())
        .set("image_session_ID", s.experiment_id.clone())
        .set("project", project.to_owned())
        .set("xnat_imagescandata_id", s.pk.to_string());
    for (key, value) in [
        ("type", &s.attrs.scan_type),
        ("series_description", &s.attrs.series_description),
        ("quality", &s.attrs.quality),
        ("note", &s.attrs.note),
        ("UID", &s.attrs.uid),
        ("modality", &s.attrs.modality),
        ("frames", &s.attrs.frames),
        ("scanner", &s.attrs.dicom.scanner),
        ("scanner/manufacturer", &s.attrs.dicom.scanner_manufacturer),
        ("scanner/model", &s.attrs.dicom.scanner_model),
        ("startTime", &s.attrs.dicom.start_time),
        ("bodyPartExamined", &s.attrs.dicom.body_part_examined),
        ("series_class", &s.attrs.dicom.series_class),
    ] {
        if !value.is_empty() {
            item.set(key, value.clone());
        }
    }
    finish(item, s.created)
}

pub(crate) fn resource_item(r: &Resource, category: &str, cat_id: &str) -> ObjectItem {
    let mut item = ObjectItem::new("xnat:resourceCatalog");
    for (k, v) in resource_row(r, category, cat_id) {
        if k != "element_name" {
            item.set(&k, v);
        }
    }
    item
}

pub(crate) fn items_response(item: ObjectItem) -> Response {
    json(serde_json::to_string(&ItemsDocument::single(item)).unwrap_or_else(|_| "{}".to_owned()))
}

/// A minimal XML rendering of an item (pyxnat's `EObject.get()`).
pub(crate) fn item_xml(item: &ObjectItem) -> Response {
    let element = item.meta.xsi_type.as_str();
    let mut attrs = String::new();
    for (k, v) in &item.data_fields {
        if let Some(v) = v.as_str()
            && !k.contains('/')
        {
            attrs.push_str(&format!(" {k}=\"{}\"", xml_escape(v)));
        }
    }
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{element}{attrs} xmlns:xnat=\"http://nrg.wustl.edu/xnat\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"/>\n"
    );
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    response
}

pub(crate) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_encoding() {
        assert!(wildcard_match("s0*", "s01"));
        assert!(wildcard_match("*1", "s01"));
        assert!(!wildcard_match("s0*2", "s01"));
        assert_eq!(encode_path("a b/c#.dcm"), "a b/c%23.dcm");
        assert!(xnat_date(0).starts_with("Thu Jan 01 00:00:00 UTC 1970"));
    }
}
