//! WADO-RS and WADO-URI without HTTP: which stored files a retrieval
//! means (only in sessions the caller may read; anything else is "not
//! found", so a private study cannot even be confirmed), their metadata in
//! the DICOM JSON model, and single frames cut from the stored pixel data
//! as stored (native pixel data by frame size, encapsulated pixel data by
//! fragment or offset table).

use std::path::PathBuf;

use dicom_core::value::Value;
use dicom_dictionary_std::tags;
use dicom_object::{InMemDicomObject, OpenFileOptions};
use serde_json::Value as Json;

use super::json::{PIXEL_DATA, dataset};
use super::qido::{Base, instances_of};
use super::study_sessions;
use crate::archive::{Actor, Error, Result};
use crate::store::{InstanceRow, StudyRow};

/// One stored instance a retrieval returns.
#[derive(Debug, Clone)]
pub struct Located {
    pub study: StudyRow,
    pub row: InstanceRow,
    pub path: PathBuf,
}

/// The instances of a study, one of its series, or one instance.
pub async fn locate(
    actor: &Actor<'_>,
    project: Option<&str>,
    study_uid: &str,
    series_uid: Option<&str>,
    sop_uid: Option<&str>,
) -> Result<Vec<Located>> {
    let studies = study_sessions(actor, project, study_uid).await?;
    let rows = instances_of(actor, &studies, series_uid, false).await?;
    let mut out = Vec::new();
    for (study, row) in rows {
        if sop_uid.is_some_and(|u| u != row.sop_instance_uid) {
            continue;
        }
        let path = crate::archive::files::file_on_disk(actor.state, &row.dir, &row.path)?;
        out.push(Located { study, row, path });
    }
    if out.is_empty() {
        let what = match (series_uid, sop_uid) {
            (_, Some(sop)) => format!("instance {sop}"),
            (Some(series), None) => format!("series {series}"),
            (None, None) => format!("study {study_uid}"),
        };
        return Err(Error::not_found(what));
    }
    Ok(out)
}

/// WADO-URI: one instance by its UIDs, checked against each other.
pub async fn locate_uri(
    actor: &Actor<'_>,
    project: Option<&str>,
    study_uid: &str,
    series_uid: &str,
    sop_uid: &str,
) -> Result<Located> {
    let found = locate(actor, project, study_uid, Some(series_uid), Some(sop_uid)).await?;
    found
        .into_iter()
        .next()
        .ok_or_else(|| Error::not_found(format!("instance {sop_uid}")))
}

fn open_error(path: &std::path::Path, err: impl std::fmt::Display) -> Error {
    Error::Internal(format!("reading {}: {err}", path.display()))
}

/// The DICOM JSON of one instance without bulk data; its pixel data
/// points to the instance's `bulkdata` URI. Blocking: run on the blocking pool.
pub fn metadata(located: &Located, base: &Base<'_>) -> Result<Json> {
    let obj = OpenFileOptions::new()
        .read_until(PIXEL_DATA)
        .open_file(&located.path)
        .map_err(|e| open_error(&located.path, e))?;
    let uri = format!(
        "{}/bulkdata/7FE00010",
        base.instance(
            &located.row.study_uid,
            &located.row.series_uid,
            &located.row.sop_instance_uid
        )
    );
    let mut json = dataset(&obj, None);
    // read_until stops before the pixel data: name it when the image has one.
    if obj.get(tags::ROWS).is_some()
        && let Json::Object(map) = &mut json
    {
        map.insert(
            "7FE00010".to_owned(),
            serde_json::json!({ "vr": "OW", "BulkDataURI": uri }),
        );
    }
    Ok(json)
}

/// Media type of frames stored in transfer syntax `ts`.
pub fn frame_media_type(ts: &str) -> String {
    let ts = ts.trim_end_matches('\0');
    let mime = match ts {
        "1.2.840.10008.1.2.4.50"
        | "1.2.840.10008.1.2.4.51"
        | "1.2.840.10008.1.2.4.57"
        | "1.2.840.10008.1.2.4.70" => "image/jpeg",
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => "image/jls",
        "1.2.840.10008.1.2.4.90" | "1.2.840.10008.1.2.4.91" => "image/jp2",
        "1.2.840.10008.1.2.5" => "image/x-dicom-rle",
        _ => return "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1".to_owned(),
    };
    format!("{mime}; transfer-syntax={ts}")
}

/// Parses a frame list (`1,3,5`; numbers from 1).
pub fn parse_frame_list(list: &str) -> Result<Vec<usize>> {
    list.split(',')
        .map(|n| match n.trim().parse::<usize>() {
            Ok(v) if v >= 1 => Ok(v),
            _ => Err(Error::Invalid(format!(
                "frame list {list:?}: frames are numbers from 1, separated by commas"
            ))),
        })
        .collect()
}

/// The asked frames of one instance, as stored. Blocking.
pub fn frames(located: &Located, wanted: &[usize]) -> Result<(Vec<Vec<u8>>, String)> {
    let obj = dicom_object::open_file(&located.path).map_err(|e| open_error(&located.path, e))?;
    let ts = obj.meta().transfer_syntax().to_owned();
    let inner: &InMemDicomObject = &obj;
    let pixel = inner
        .get(PIXEL_DATA)
        .ok_or_else(|| Error::not_found("frames: the instance has no pixel data"))?;
    let count = located.row.number_of_frames.unwrap_or(1).max(1) as usize;
    if let Some(&bad) = wanted.iter().find(|&&n| n > count) {
        return Err(Error::not_found(format!(
            "frame {bad}: the instance has {count} frames"
        )));
    }
    let mut out = Vec::with_capacity(wanted.len());
    match pixel.value() {
        Value::PixelSequence(seq) => {
            let fragments = seq.fragments();
            let offsets = seq.offset_table();
            for &n in wanted {
                let frame = if count == 1 {
                    fragments.concat()
                } else if fragments.len() == count {
                    fragments[n - 1].clone()
                } else if offsets.len() == count {
                    // Fragments of frame n start at offset n and end at n+1
                    // (offsets count item headers of 8 bytes each).
                    let mut at = 0u64;
                    let mut bytes = Vec::new();
                    let start = u64::from(offsets[n - 1]);
                    let end = offsets.get(n).map_or(u64::MAX, |&o| u64::from(o));
                    for f in fragments {
                        if at >= start && at < end {
                            bytes.extend_from_slice(f);
                        }
                        at += 8 + f.len() as u64;
                    }
                    bytes
                } else {
                    return Err(Error::Invalid(
                        "frames: the stored fragments cannot be split into frames; retrieve the instance".to_owned(),
                    ));
                };
                out.push(frame);
            }
            Ok((out, frame_media_type(&ts)))
        }
        Value::Primitive(p) => {
            let bytes = p.to_bytes();
            let per = bytes.len() / count;
            for &n in wanted {
                out.push(bytes[(n - 1) * per..n * per].to_vec());
            }
            Ok((out, frame_media_type("")))
        }
        Value::Sequence(_) => Err(Error::Invalid(
            "frames: the pixel data is not an image".to_owned(),
        )),
    }
}

/// All the pixel data of one native instance (the `BulkDataURI` target).
pub fn bulk_pixels(located: &Located) -> Result<(Vec<u8>, String)> {
    let count = located.row.number_of_frames.unwrap_or(1).max(1) as usize;
    let (frames, media) = frames(located, &(1..=count).collect::<Vec<_>>())?;
    Ok((frames.concat(), media))
}
