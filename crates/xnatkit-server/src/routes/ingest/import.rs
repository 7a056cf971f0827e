//! `POST /data/services/import`: the body (raw, or the file part of a
//! multipart form) is streamed to a staging file, unpacked, and imported.
//! The answer is XNAT's: 200 with one `/data/...` URI per session, CRLF-separated.

use axum::Router;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;

use crate::access::Caller;
use crate::error::ApiError;
use crate::import::{ImportOptions, import_staged, stage};
use crate::routes::{XnatRequest, text};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/data/services/import", post(import))
}

async fn import(
    State(state): State<AppState>,
    caller: Caller,
    request: XnatRequest,
) -> Result<Response, ApiError> {
    let uris = import_request(&state, &caller, request).await?;
    let mut body = uris.join("\r\n");
    body.push_str("\r\n");
    Ok(text(StatusCode::OK, body))
}

/// The import service: the request's file (raw body or multipart file
/// part) staged, unpacked and imported with the request's parameters;
/// the `/data/…` URI of each session. The web Upload page calls it too.
pub(crate) async fn import_request(
    state: &AppState,
    caller: &Caller,
    request: XnatRequest,
) -> Result<Vec<String>, ApiError> {
    caller.require_user()?;
    // Refuse bad parameters before a large body is read.
    ImportOptions::from_params(&request.params)?;
    let id = uuid::Uuid::new_v4();
    let spool = state.staging_root().join(format!("{id}.import"));
    let stage_dir = state.staging_root().join(format!("{id}.import.d"));
    let outcome = receive_and_import(state, caller, request, &spool, &stage_dir).await;
    let _ = tokio::fs::remove_file(&spool).await;
    if let Err(err) = tokio::fs::remove_dir_all(&stage_dir).await
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("removing {}: {err}", stage_dir.display());
    }
    outcome
}

async fn receive_and_import(
    state: &AppState,
    caller: &Caller,
    request: XnatRequest,
    spool: &std::path::Path,
    stage_dir: &std::path::Path,
) -> Result<Vec<String>, ApiError> {
    let mime = request.content_type();
    let max = Some(state.config().max_upload_bytes);
    let XnatRequest {
        parts,
        mut params,
        body,
    } = request;
    let received =
        if mime.starts_with("application/x-www-form-urlencoded") && !params.flag("inbody") {
            // The form was the parameters; no file came.
            0
        } else if mime.starts_with("multipart/form-data") {
            let request = Request::from_parts(parts, body);
            let mut multipart = Multipart::from_request(request, &())
                .await
                .map_err(|e| ApiError::BadRequest(format!("bad multipart body: {e}")))?;
            let mut received = 0;
            while let Some(field) = multipart
                .next_field()
                .await
                .map_err(|e| ApiError::BadRequest(format!("bad multipart body: {e}")))?
            {
                if field.file_name().is_some() {
                    if received > 0 {
                        return Err(ApiError::BadRequest(
                        "Importer is limited to one uploaded resource at a time: send one file part"
                            .to_owned(),
                    ));
                    }
                    received = xnatkit_fileio::write_stream_atomic(spool, field, max)
                        .await?
                        .size;
                } else if let Some(name) = field.name().map(str::to_owned) {
                    let value = field.text().await.map_err(|e| {
                        ApiError::BadRequest(format!("bad multipart field {name}: {e}"))
                    })?;
                    let pair = url::form_urlencoded::Serializer::new(String::new())
                        .append_pair(&name, &value)
                        .finish();
                    params.extend_from_urlencoded(pair.as_bytes());
                }
            }
            received
        } else {
            xnatkit_fileio::write_stream_atomic(spool, body.into_data_stream(), max)
                .await?
                .size
        };
    if params.get("import-handler").is_none() && mime.starts_with("application/dicom") {
        params.extend_from_urlencoded(b"import-handler=gradual-DICOM");
    }
    let options = ImportOptions::from_params(&params)?;
    if received == 0 {
        return Err(ApiError::BadRequest(
            "Unable to identify upload format: the request carried no file; send a zip, tar, tar.gz or DICOM file as the body"
                .to_owned(),
        ));
    }
    let limits = state.config().extract_limits_for(received);
    let (spool_path, stage_path) = (spool.to_path_buf(), stage_dir.to_path_buf());
    let staged =
        tokio::task::spawn_blocking(move || stage::unpack(&spool_path, &stage_path, &limits))
            .await
            .map_err(|e| ApiError::Internal(format!("unpacking task failed: {e}")))??;
    // The spool is no longer needed once extracted; free its space early.
    let _ = tokio::fs::remove_file(spool).await;
    Ok(import_staged(state, caller, &options, staged, stage_dir).await?)
}
