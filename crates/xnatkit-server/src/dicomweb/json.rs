//! The DICOM JSON model (PS3.18 F.2): attributes keyed by their tag as
//! eight hex digits, each with its VR and a `Value` array (person names as
//! `{"Alphabetic": …}`, numbers as numbers, sequences as nested objects).
//! Searches build it from database rows ([`attr`]); metadata converts a
//! data set read up to the pixel data ([`dataset`]), with bulk data left
//! out and the pixel data named by a `BulkDataURI`.

use base64::Engine;
use dicom_core::header::Header;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{Tag, VR};
use dicom_object::InMemDicomObject;
use serde_json::{Map, Value as Json, json};

/// The pixel data tag, the one bulk data element metadata points to.
pub const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);

/// Binary values up to this size are inlined; larger ones are left out.
const INLINE_BINARY_MAX: usize = 1024;

/// `GGGGEEEE`, as DICOM JSON keys attributes.
pub fn tag_key(tag: Tag) -> String {
    format!("{:04X}{:04X}", tag.group(), tag.element())
}

/// A text attribute (empty text: the attribute with no value).
pub fn attr(out: &mut Map<String, Json>, tag: &str, vr: &str, value: &str) {
    if value.is_empty() {
        out.insert(tag.to_owned(), json!({ "vr": vr }));
    } else if vr == "PN" {
        out.insert(
            tag.to_owned(),
            json!({ "vr": vr, "Value": [{ "Alphabetic": value }] }),
        );
    } else {
        out.insert(tag.to_owned(), json!({ "vr": vr, "Value": [value] }));
    }
}

/// A multi-valued text attribute.
pub fn attr_multi(out: &mut Map<String, Json>, tag: &str, vr: &str, values: &[String]) {
    if values.is_empty() {
        out.insert(tag.to_owned(), json!({ "vr": vr }));
    } else {
        out.insert(tag.to_owned(), json!({ "vr": vr, "Value": values }));
    }
}

/// A numeric attribute (IS, US, UL…); `None` is the attribute with no value.
pub fn attr_int(out: &mut Map<String, Json>, tag: &str, vr: &str, value: Option<i64>) {
    match value {
        Some(v) => out.insert(tag.to_owned(), json!({ "vr": vr, "Value": [v] })),
        None => out.insert(tag.to_owned(), json!({ "vr": vr })),
    };
}

/// A data set in the DICOM JSON model. Pixel data becomes a `BulkDataURI`
/// to `bulk_uri` (when given); other binary values are inlined when small.
pub fn dataset(obj: &InMemDicomObject, bulk_uri: Option<&str>) -> Json {
    let mut out = Map::new();
    for element in obj.iter() {
        let tag = element.tag();
        // Group lengths carry nothing a client needs.
        if tag.element() == 0 {
            continue;
        }
        let vr = element.vr();
        let mut entry = Map::new();
        entry.insert("vr".to_owned(), Json::String(vr.to_string().to_owned()));
        if tag == PIXEL_DATA {
            if let Some(uri) = bulk_uri {
                entry.insert("BulkDataURI".to_owned(), Json::String(uri.to_owned()));
            }
            out.insert(tag_key(tag), Json::Object(entry));
            continue;
        }
        match element.value() {
            Value::Sequence(seq) => {
                let items: Vec<Json> = seq.items().iter().map(|i| dataset(i, None)).collect();
                if !items.is_empty() {
                    entry.insert("Value".to_owned(), Json::Array(items));
                }
            }
            Value::PixelSequence(_) => {}
            Value::Primitive(PrimitiveValue::Empty) => {}
            Value::Primitive(p) => {
                if let Some((key, value)) = primitive(vr, p) {
                    entry.insert(key.to_owned(), value);
                }
            }
        }
        out.insert(tag_key(tag), Json::Object(entry));
    }
    Json::Object(out)
}

fn strings(p: &PrimitiveValue) -> Vec<String> {
    p.to_multi_str()
        .iter()
        .map(|s| s.trim_end_matches(['\0', ' ']).trim_start().to_owned())
        .collect()
}

fn text_values(values: Vec<String>) -> Option<Json> {
    if values.iter().all(String::is_empty) {
        return None;
    }
    Some(Json::Array(
        values
            .into_iter()
            .map(|s| {
                if s.is_empty() {
                    Json::Null
                } else {
                    Json::String(s)
                }
            })
            .collect(),
    ))
}

fn primitive(vr: VR, p: &PrimitiveValue) -> Option<(&'static str, Json)> {
    match vr {
        VR::PN => {
            let names: Vec<Json> = strings(p)
                .into_iter()
                .map(|s| {
                    if s.is_empty() {
                        Json::Null
                    } else {
                        json!({ "Alphabetic": s })
                    }
                })
                .collect();
            names
                .iter()
                .any(|n| !n.is_null())
                .then_some(("Value", Json::Array(names)))
        }
        VR::IS => {
            let values: Vec<Json> = strings(p)
                .into_iter()
                .map(|s| s.trim().parse::<i64>().map_or(Json::Null, Json::from))
                .collect();
            Some(("Value", Json::Array(values)))
        }
        VR::DS | VR::FL | VR::FD => {
            let values: Vec<Json> = p
                .to_multi_float64()
                .unwrap_or_default()
                .into_iter()
                .map(|f| serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number))
                .collect();
            Some(("Value", Json::Array(values)))
        }
        VR::SS | VR::US | VR::SL | VR::UL | VR::SV | VR::UV => {
            let values: Vec<Json> = match vr {
                VR::UV => p
                    .to_multi_int::<u64>()
                    .unwrap_or_default()
                    .into_iter()
                    .map(Json::from)
                    .collect(),
                _ => p
                    .to_multi_int::<i64>()
                    .unwrap_or_default()
                    .into_iter()
                    .map(Json::from)
                    .collect(),
            };
            Some(("Value", Json::Array(values)))
        }
        VR::AT => match p {
            PrimitiveValue::Tags(tags) => Some((
                "Value",
                Json::Array(tags.iter().map(|t| Json::String(tag_key(*t))).collect()),
            )),
            _ => None,
        },
        VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN => {
            let bytes = p.to_bytes();
            (bytes.len() <= INLINE_BINARY_MAX).then(|| {
                (
                    "InlineBinary",
                    Json::String(base64::engine::general_purpose::STANDARD.encode(&bytes)),
                )
            })
        }
        _ => text_values(strings(p)).map(|v| ("Value", v)),
    }
}
