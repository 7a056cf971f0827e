//! HTTP of DICOMweb under `/xapi/dicomweb` and, limited to one project,
//! `/xapi/dicomweb/projects/{project}`: QIDO-RS searches, WADO-RS
//! retrieval (streamed `multipart/related`, metadata, frames, the pixel
//! bulk data), WADO-URI (`/wado?requestType=WADO…`) and STOW-RS. The rules
//! are in [`crate::dicomweb`]; this module only parses, calls and renders.

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value as Json;

use crate::access::Caller;
use crate::archive::{Actor, Error};
use crate::dicomweb::qido::{self, Base, Level, Search};
use crate::dicomweb::{stow, wado};
use crate::error::ApiError;
use crate::state::AppState;

/// Bytes read from a stored file per chunk of a streamed answer: large
/// enough that per-chunk costs (a blocking-pool hop per read) vanish next to
/// the copy, small enough to keep memory flat.
const READ_CHUNK: usize = 256 * 1024;

/// The DICOMweb root of the site.
pub const ROOT: &str = "/xapi/dicomweb";

pub fn routes() -> Router<AppState> {
    let inner = || {
        Router::new()
            .route("/studies", get(search_studies).post(store))
            .route("/series", get(search_series))
            .route("/instances", get(search_instances))
            .route("/wado", get(wado_uri))
            .route("/studies/{study}", get(retrieve).post(store))
            .route("/studies/{study}/metadata", get(metadata))
            .route("/studies/{study}/series", get(search_series))
            .route("/studies/{study}/instances", get(search_instances))
            .route("/studies/{study}/series/{series}", get(retrieve))
            .route("/studies/{study}/series/{series}/metadata", get(metadata))
            .route(
                "/studies/{study}/series/{series}/instances",
                get(search_instances),
            )
            .route(
                "/studies/{study}/series/{series}/instances/{instance}",
                get(retrieve),
            )
            .route(
                "/studies/{study}/series/{series}/instances/{instance}/metadata",
                get(metadata),
            )
            .route(
                "/studies/{study}/series/{series}/instances/{instance}/frames/{frames}",
                get(frames),
            )
            .route(
                "/studies/{study}/series/{series}/instances/{instance}/bulkdata/{tag}",
                get(bulkdata),
            )
    };
    Router::new()
        .nest(ROOT, inner())
        .nest(&format!("{ROOT}/projects/{{project}}"), inner())
}

type Params = Path<HashMap<String, String>>;

fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    params.get(name).map(String::as_str)
}

/// The absolute DICOMweb root this request went through (RetrieveURL and
/// BulkDataURI point back to it).
fn base_url(state: &AppState, headers: &HeaderMap, project: Option<&str>) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if state.config().tls.is_some() {
        "https"
    } else {
        "http"
    };
    match project {
        Some(p) => format!(
            "{scheme}://{host}{ROOT}/projects/{}",
            xnatkit_model::encode_segment(p)
        ),
        None => format!("{scheme}://{host}{ROOT}"),
    }
}

fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn dicom_json(body: &Json) -> Response {
    let mut response = body.to_string().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/dicom+json"),
    );
    response
}

async fn search(
    state: AppState,
    caller: Caller,
    params: HashMap<String, String>,
    raw: Option<String>,
    headers: HeaderMap,
    level: Level,
) -> Result<Response, ApiError> {
    let actor = Actor {
        state: &state,
        caller: &caller,
    };
    let project = param(&params, "project");
    let study = param(&params, "study");
    let series = param(&params, "series");
    let search = Search::parse(level, &query_pairs(raw.as_deref()))?;
    let root = base_url(&state, &headers, project);
    let base = Base(&root);
    let found = match level {
        Level::Study => qido::search_studies(&actor, project, &search, &base).await?,
        Level::Series => qido::search_series(&actor, project, study, &search, &base).await?,
        Level::Instance => {
            qido::search_instances(&actor, project, study, series, &search, &base).await?
        }
    };
    Ok(dicom_json(&Json::Array(found)))
}

async fn search_studies(
    State(state): State<AppState>,
    caller: Caller,
    Path(params): Params,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    search(state, caller, params, raw, headers, Level::Study).await
}

async fn search_series(
    State(state): State<AppState>,
    caller: Caller,
    Path(params): Params,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    search(state, caller, params, raw, headers, Level::Series).await
}

async fn search_instances(
    State(state): State<AppState>,
    caller: Caller,
    Path(params): Params,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    search(state, caller, params, raw, headers, Level::Instance).await
}

/// Does `Accept` allow `multipart/related; type="application/dicom"`?
/// (Absent, `*/*` and `multipart/related` without a type do.)
fn accepts_dicom(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    accept.split(',').any(|item| {
        let item = item.trim().to_ascii_lowercase();
        item.starts_with("*/*")
            || item.starts_with("multipart/*")
            || (item.starts_with("multipart/related")
                && (!item.contains("type=")
                    || item.contains("application/dicom\"")
                    || item.contains("type=application/dicom;")
                    || item.ends_with("type=application/dicom")))
    })
}

fn boundary() -> String {
    format!("xnatkit-{}", uuid::Uuid::new_v4().simple())
}

/// Stored files up to this size are read whole, with their part head, in
/// one blocking call: one hop to the blocking pool and one body chunk per
/// instance instead of an open, a read and an end-of-file read each.
const WHOLE_FILE_LIMIT: u64 = 4 << 20;

/// One part of a `multipart/related` answer: `head`, then the file at
/// `path` (read whole when small, else streamed in chunks).
async fn part_of(
    path: std::path::PathBuf,
    head: String,
) -> futures::stream::BoxStream<'static, std::io::Result<Bytes>> {
    use std::io::Read;
    let shown = path.display().to_string();
    let read = tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path)?;
        let len = file.metadata()?.len();
        if len > WHOLE_FILE_LIMIT {
            return Ok(Part::Large(file, head));
        }
        let capacity = head.len() + usize::try_from(len).unwrap_or(0);
        let mut whole = Vec::with_capacity(capacity);
        whole.extend_from_slice(head.as_bytes());
        file.read_to_end(&mut whole)?;
        Ok::<_, std::io::Error>(Part::Whole(Bytes::from(whole)))
    })
    .await
    .unwrap_or_else(|err| Err(std::io::Error::other(err.to_string())));
    match read {
        Ok(Part::Whole(whole)) => futures::stream::once(async move { Ok(whole) }).boxed(),
        Ok(Part::Large(file, head)) => futures::stream::once(async move { Ok(Bytes::from(head)) })
            .chain(tokio_util::io::ReaderStream::with_capacity(
                tokio::fs::File::from_std(file),
                READ_CHUNK,
            ))
            .boxed(),
        Err(err) => {
            tracing::error!("WADO-RS: reading {shown}: {err}");
            futures::stream::once(async move { Err(err) }).boxed()
        }
    }
}

/// A part read whole (head included), or a large file still to stream
/// after its head.
enum Part {
    Whole(Bytes),
    Large(std::fs::File, String),
}

/// Study, series or instance as a streamed `multipart/related` of the
/// stored files, one open file at a time.
async fn retrieve(
    State(state): State<AppState>,
    caller: Caller,
    Path(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let actor = Actor {
        state: &state,
        caller: &caller,
    };
    let study = param(&params, "study").unwrap_or_default();
    let found = wado::locate(
        &actor,
        param(&params, "project"),
        study,
        param(&params, "series"),
        param(&params, "instance"),
    )
    .await?;
    if !accepts_dicom(&headers) {
        return Err(ApiError::NotAcceptable(
            "this server returns instances as multipart/related; type=\"application/dicom\" as stored; ask for that media type".to_owned(),
        ));
    }
    let boundary = boundary();
    let paths: Vec<std::path::PathBuf> = found.into_iter().map(|l| l.path).collect();
    let head_boundary = boundary.clone();
    // The next file is read while this one is sent; at most two in memory.
    let parts = futures::stream::iter(paths)
        .map(move |path| {
            let head = format!("\r\n--{head_boundary}\r\nContent-Type: application/dicom\r\n\r\n");
            part_of(path, head)
        })
        .buffered(2);
    let tail = format!("\r\n--{boundary}--\r\n");
    let body = parts.flatten().chain(futures::stream::once(async move {
        Ok::<Bytes, std::io::Error>(Bytes::from(tail))
    }));
    let mut response = Response::new(Body::from_stream(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&format!(
            "multipart/related; type=\"application/dicom\"; boundary={boundary}"
        ))
        .map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(response)
}

async fn metadata(
    State(state): State<AppState>,
    caller: Caller,
    Path(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let actor = Actor {
        state: &state,
        caller: &caller,
    };
    let project = param(&params, "project");
    let found = wado::locate(
        &actor,
        project,
        param(&params, "study").unwrap_or_default(),
        param(&params, "series"),
        param(&params, "instance"),
    )
    .await?;
    let root = base_url(&state, &headers, project);
    let all = tokio::task::spawn_blocking(move || {
        let base = Base(&root);
        found
            .iter()
            .map(|l| wado::metadata(l, &base))
            .collect::<Result<Vec<_>, Error>>()
    })
    .await
    .map_err(|e| ApiError::Internal(format!("metadata task failed: {e}")))??;
    Ok(dicom_json(&Json::Array(all)))
}

fn multipart_parts(parts: Vec<Vec<u8>>, media: &str) -> Result<Response, ApiError> {
    let boundary = boundary();
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(
            format!("\r\n--{boundary}\r\nContent-Type: {media}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(&part);
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let part_type = media.split(';').next().unwrap_or(media).trim();
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&format!(
            "multipart/related; type=\"{part_type}\"; boundary={boundary}"
        ))
        .map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(response)
}

async fn frames(
    State(state): State<AppState>,
    caller: Caller,
    Path(params): Params,
) -> Result<Response, ApiError> {
    let actor = Actor {
        state: &state,
        caller: &caller,
    };
    let wanted = wado::parse_frame_list(param(&params, "frames").unwrap_or_default())?;
    let found = wado::locate(
        &actor,
        param(&params, "project"),
        param(&params, "study").unwrap_or_default(),
        param(&params, "series"),
        param(&params, "instance"),
    )
    .await?;
    let located = found
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("instance"))?;
    let (parts, media) = tokio::task::spawn_blocking(move || wado::frames(&located, &wanted))
        .await
        .map_err(|e| ApiError::Internal(format!("frames task failed: {e}")))??;
    multipart_parts(parts, &media)
}

async fn bulkdata(
    State(state): State<AppState>,
    caller: Caller,
    Path(params): Params,
) -> Result<Response, ApiError> {
    let actor = Actor {
        state: &state,
        caller: &caller,
    };
    if !param(&params, "tag").is_some_and(|t| t.eq_ignore_ascii_case("7FE00010")) {
        return Err(ApiError::not_found(
            "bulk data: only the pixel data (7FE00010) is offered",
        ));
    }
    let found = wado::locate(
        &actor,
        param(&params, "project"),
        param(&params, "study").unwrap_or_default(),
        param(&params, "series"),
        param(&params, "instance"),
    )
    .await?;
    let located = found
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("instance"))?;
    let (bytes, media) = tokio::task::spawn_blocking(move || wado::bulk_pixels(&located))
        .await
        .map_err(|e| ApiError::Internal(format!("bulk data task failed: {e}")))??;
    multipart_parts(vec![bytes], &media)
}

/// WADO-URI: `?requestType=WADO&studyUID=…&seriesUID=…&objectUID=…`
/// returns the stored file (`contentType` application/dicom or absent).
async fn wado_uri(
    State(state): State<AppState>,
    caller: Caller,
    Path(params): Params,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let actor = Actor {
        state: &state,
        caller: &caller,
    };
    let query: HashMap<String, String> = query_pairs(raw.as_deref()).into_iter().collect();
    let get = |k: &str| query.get(k).map(String::as_str).unwrap_or_default();
    if get("requestType") != "WADO" {
        return Err(ApiError::BadRequest(
            "WADO-URI needs requestType=WADO".to_owned(),
        ));
    }
    let (study, series, object) = (get("studyUID"), get("seriesUID"), get("objectUID"));
    if study.is_empty() || series.is_empty() || object.is_empty() {
        return Err(ApiError::BadRequest(
            "WADO-URI needs studyUID, seriesUID and objectUID".to_owned(),
        ));
    }
    let content_type = get("contentType");
    if !content_type.is_empty()
        && !content_type
            .split(',')
            .any(|t| matches!(t.trim(), "application/dicom" | "*/*"))
    {
        return Err(ApiError::NotAcceptable(format!(
            "contentType={content_type}: this server returns the stored file (application/dicom)"
        )));
    }
    let located =
        wado::locate_uri(&actor, param(&params, "project"), study, series, object).await?;
    let file = tokio::fs::File::open(&located.path)
        .await
        .map_err(|e| ApiError::Internal(format!("opening {}: {e}", located.path.display())))?;
    let len = file.metadata().await.map(|m| m.len()).ok();
    let mut response = Response::new(Body::from_stream(
        tokio_util::io::ReaderStream::with_capacity(file, READ_CHUNK),
    ));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/dicom"),
    );
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    Ok(response)
}

/// The boundary of a `multipart/related` body, if that is what it is.
fn related_boundary(content_type: &str) -> Option<String> {
    let lower = content_type.to_ascii_lowercase();
    if !lower.trim_start().starts_with("multipart/related") {
        return None;
    }
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// STOW-RS: each `application/dicom` part is spooled to the staging
/// folder, then stored; the staging files are removed whatever happens.
async fn store(
    State(state): State<AppState>,
    caller: Caller,
    Path(params): Params,
    request: Request,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let actor = Actor {
        state: &state,
        caller: &caller,
    };
    let project = param(&params, "project").map(str::to_owned);
    let study = param(&params, "study").map(str::to_owned);
    let headers = request.headers().clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let Some(boundary) = related_boundary(&content_type) else {
        return Err(ApiError::UnsupportedMediaType(
            "STOW-RS takes multipart/related; type=\"application/dicom\" with a boundary"
                .to_owned(),
        ));
    };
    if content_type
        .to_ascii_lowercase()
        .contains("type=\"application/dicom+")
        || content_type
            .to_ascii_lowercase()
            .contains("type=application/dicom+")
    {
        return Err(ApiError::UnsupportedMediaType(
            "STOW-RS here takes application/dicom parts only (not metadata and bulk data)"
                .to_owned(),
        ));
    }
    let dir = state
        .staging_root()
        .join(format!("{}.stow.d", uuid::Uuid::new_v4()));
    let outcome = async {
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| ApiError::Internal(format!("creating {}: {e}", dir.display())))?;
        let mut multipart =
            multer::Multipart::new(request.into_body().into_data_stream(), boundary);
        let mut parts = Vec::new();
        let max = Some(state.config().max_upload_bytes);
        while let Some(field) = multipart
            .next_field()
            .await
            .map_err(|e| ApiError::BadRequest(format!("bad multipart/related body: {e}")))?
        {
            let part_type = field
                .content_type()
                .map(|m| m.essence_str().to_ascii_lowercase());
            if part_type
                .as_deref()
                .is_some_and(|t| t != "application/dicom")
            {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "part {} is {}: STOW-RS here takes application/dicom parts",
                    parts.len() + 1,
                    part_type.unwrap_or_default()
                )));
            }
            let path = dir.join(format!("{}.dcm", parts.len()));
            xnatkit_fileio::write_stream_atomic(&path, field, max).await?;
            parts.push(stow::Part { path });
        }
        if parts.is_empty() {
            return Err(ApiError::BadRequest(
                "the STOW-RS request holds no application/dicom part".to_owned(),
            ));
        }
        Ok(stow::store(&actor, project.as_deref(), study.as_deref(), parts).await?)
    }
    .await;
    if let Err(err) = tokio::fs::remove_dir_all(&dir).await
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("removing {}: {err}", dir.display());
    }
    let outcome = outcome?;
    let root = base_url(&state, &headers, project.as_deref());
    let body = outcome.to_json(&Base(&root), study.as_deref());
    let mut response = dicom_json(&body);
    *response.status_mut() =
        StatusCode::from_u16(outcome.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collected(path: std::path::PathBuf, head: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut stream = part_of(path, head.to_owned()).await;
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn parts_hold_the_head_then_the_file_small_or_large() {
        let dir = tempfile::tempdir().unwrap();
        let head = "\r\n--b\r\nContent-Type: application/dicom\r\n\r\n";
        let limit = usize::try_from(WHOLE_FILE_LIMIT).unwrap();
        for len in [0, 1000, limit, limit + READ_CHUNK + 7] {
            let content: Vec<u8> = (0..len).map(|n| (n % 251) as u8).collect();
            let path = dir.path().join(format!("f{len}"));
            std::fs::write(&path, &content).unwrap();
            let mut want = head.as_bytes().to_vec();
            want.extend_from_slice(&content);
            assert!(collected(path, head).await == want, "a file of {len} bytes");
        }
        let mut missing = part_of(dir.path().join("gone"), head.to_owned()).await;
        assert!(
            matches!(missing.next().await, Some(Err(_))),
            "a missing file ends the body with an error"
        );
    }
}
