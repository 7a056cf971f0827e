//! DICOM header dump in the shape of XNAT's `/data/services/dicomdump`
//! (what xnatpy's `dicom_dump` reads): rows of `tag1`, `tag2`, `vr`, `value`, `desc`.

use std::path::Path;

use dicom_core::dictionary::DataDictionaryEntry;
use dicom_core::value::PrimitiveValue;
use dicom_core::{DataDictionary as _, Tag, VR, header::Header as _};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_parser::dataset::DataToken;
use serde::Serialize;

use crate::error::Error;
use crate::header::{check_value_fits, text_value};
use crate::source::{open_data_set, parse_error};

/// Binary values are shown as hex bytes, cut to this many characters (as XNAT cuts long values).
const MAX_BINARY_CHARS: usize = 64;

/// One row of the dump.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DumpRow {
    /// Tag of the top-level element, `(0010,0010)`.
    pub tag1: String,
    /// Empty for top-level elements; for elements inside sequences, the tags below
    /// `tag1` down to this element, e.g. `(0008,0100)` or `(0040,A730)(0040,A160)`.
    pub tag2: String,
    pub vr: String,
    /// Text values as stored (multiple values joined with `\`); binary values as hex bytes.
    pub value: String,
    /// Dictionary name of the attribute, from its keyword (`PatientName` → `Patient Name`).
    pub desc: String,
}

/// Dumps the header of the file at `path` (pixel data excluded). `fields` selects
/// top-level attributes by keyword (`PatientName`) or tag (`00100010`, `(0010,0010)`);
/// empty means all. File meta group elements are included only when asked for.
pub fn dicom_dump(path: &Path, fields: &[String]) -> Result<Vec<DumpRow>, Error> {
    let wanted: Vec<Tag> = fields
        .iter()
        .map(|field| parse_field(field))
        .collect::<Result<_, _>>()?;
    let (reader, name, file_len) = crate::header::open_dicom_file(path)?;
    let mut opened = open_data_set(reader, &name)?;
    let selected = |tag: Tag| wanted.is_empty() || wanted.contains(&tag);

    let mut rows = Vec::new();
    if let Some(meta) = &opened.meta {
        for element in meta.to_element_iter() {
            let tag = element.tag();
            if !wanted.is_empty() && wanted.contains(&tag) {
                let vr = element.vr();
                if let Some(value) = element.value().primitive() {
                    rows.push(row(tag, String::new(), vr, render(vr, value)));
                }
            }
        }
    }

    // Tags of the sequences we are inside, outermost first; `None` marks encapsulated
    // pixel data nested in a sequence (icon images), whose fragments are not shown.
    let mut path_stack: Vec<Option<Tag>> = Vec::new();
    let mut pending: Option<(Tag, VR)> = None;
    while let Some(token) = opened.tokens.next() {
        let token = token.map_err(|err| parse_error(&opened.progress, &name, err))?;
        match token {
            DataToken::SequenceStart { tag, .. } => {
                let (tag1, tag2) = tag_columns(&path_stack, tag);
                if top_level_tag(&path_stack, tag).is_some_and(selected) {
                    rows.push(DumpRow {
                        tag1,
                        tag2,
                        vr: "SQ".to_owned(),
                        value: String::new(),
                        desc: describe(tag),
                    });
                }
                path_stack.push(Some(tag));
            }
            DataToken::SequenceEnd => {
                path_stack.pop();
            }
            DataToken::PixelSequenceStart if path_stack.is_empty() => break,
            DataToken::PixelSequenceStart => path_stack.push(None),
            DataToken::ElementHeader(header)
                if path_stack.is_empty() && header.tag.group() >= 0x7FE0 =>
            {
                break;
            }
            DataToken::ElementHeader(header) => {
                check_value_fits(&opened, Some(file_len), header.len, &name)?;
                pending = Some((header.tag, header.vr));
            }
            DataToken::PrimitiveValue(value) => {
                let Some((tag, vr)) = pending.take() else {
                    continue;
                };
                if top_level_tag(&path_stack, tag).is_some_and(selected) {
                    let (tag1, tag2) = tag_columns(&path_stack, tag);
                    let mut dump_row = row(tag, tag2, vr, render(vr, &value));
                    dump_row.tag1 = tag1;
                    rows.push(dump_row);
                }
            }
            _ => {}
        }
    }
    Ok(rows)
}

fn row(tag: Tag, tag2: String, vr: VR, value: String) -> DumpRow {
    DumpRow {
        tag1: format_tag(tag),
        tag2,
        vr: vr.to_string().to_owned(),
        value,
        desc: describe(tag),
    }
}

/// The top-level tag an element belongs to; `None` inside nested pixel data.
fn top_level_tag(path: &[Option<Tag>], tag: Tag) -> Option<Tag> {
    match path.first() {
        None => Some(tag),
        Some(first) => *first,
    }
}

fn tag_columns(path: &[Option<Tag>], tag: Tag) -> (String, String) {
    match path.split_first() {
        None => (format_tag(tag), String::new()),
        Some((first, rest)) => {
            let tag1 = first.map(format_tag).unwrap_or_default();
            let tag2: String = rest
                .iter()
                .flatten()
                .copied()
                .chain(std::iter::once(tag))
                .map(format_tag)
                .collect();
            (tag1, tag2)
        }
    }
}

fn format_tag(tag: Tag) -> String {
    format!("({:04X},{:04X})", tag.group(), tag.element())
}

fn render(vr: VR, value: &PrimitiveValue) -> String {
    let binary = matches!(
        vr,
        VR::OB | VR::OW | VR::OD | VR::OF | VR::OL | VR::OV | VR::UN
    );
    if !binary {
        return text_value(value).unwrap_or_default();
    }
    let bytes = value.to_bytes();
    // Private text elements of implicit-VR files arrive as UN: show them as text.
    if vr == VR::UN
        && !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_graphic() || *b == b' ' || *b == 0 || *b == b'\\')
    {
        return text_value(value).unwrap_or_default();
    }
    let mut hex = bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join("\\");
    if hex.len() > MAX_BINARY_CHARS {
        hex.truncate(MAX_BINARY_CHARS);
        hex.push_str("...");
    }
    hex
}

/// A readable name: the dictionary keyword split into words (`SOPClassUID` →
/// `SOP Class UID`). The dictionary in dicom-rs carries keywords only, not the
/// standard's display names.
fn describe(tag: Tag) -> String {
    if tag.group() % 2 == 1 {
        return if (0x0010..=0x00FF).contains(&tag.element()) {
            "Private Creator".to_owned()
        } else {
            "Private Tag".to_owned()
        };
    }
    if tag.element() == 0 {
        return "Group Length".to_owned();
    }
    match StandardDataDictionary.by_tag(tag) {
        Some(entry) => split_keyword(entry.alias()),
        None => "Unknown".to_owned(),
    }
}

fn split_keyword(keyword: &str) -> String {
    let chars: Vec<char> = keyword.chars().collect();
    let mut out = String::with_capacity(keyword.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        if i > 0 {
            let prev = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let starts_word = (c.is_ascii_uppercase()
                && (prev.is_ascii_lowercase()
                    || prev.is_ascii_digit()
                    || next_is_lower && prev.is_ascii_uppercase()))
                || (c.is_ascii_digit() && prev.is_ascii_lowercase());
            if starts_word {
                out.push(' ');
            }
        }
        out.push(c);
    }
    out
}

/// `PatientName`, `00100010`, `0010,0010` or `(0010,0010)` → tag.
pub fn parse_field(field: &str) -> Result<Tag, Error> {
    let trimmed = field.trim();
    let hex: String = trimmed
        .chars()
        .filter(|c| !matches!(c, '(' | ')' | ','))
        .collect();
    if hex.len() == 8 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        let group = u16::from_str_radix(&hex[..4], 16);
        let element = u16::from_str_radix(&hex[4..], 16);
        if let (Ok(group), Ok(element)) = (group, element) {
            return Ok(Tag(group, element));
        }
    }
    StandardDataDictionary
        .by_name(trimmed)
        .and_then(|entry| match entry.tag_range() {
            dicom_core::dictionary::TagRange::Single(tag) => Some(tag),
            _ => None,
        })
        .ok_or_else(|| Error::UnknownField {
            field: field.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_become_readable_names() {
        assert_eq!(split_keyword("PatientName"), "Patient Name");
        assert_eq!(split_keyword("SOPClassUID"), "SOP Class UID");
        assert_eq!(split_keyword("Modality"), "Modality");
        assert_eq!(split_keyword("StudyInstanceUID"), "Study Instance UID");
        assert_eq!(describe(Tag(0x0010, 0x0010)), "Patient Name");
        assert_eq!(describe(Tag(0x0009, 0x0010)), "Private Creator");
    }

    #[test]
    fn fields_accept_keywords_and_hex() {
        assert_eq!(parse_field("PatientName").ok(), Some(Tag(0x0010, 0x0010)));
        assert_eq!(parse_field("00080060").ok(), Some(Tag(0x0008, 0x0060)));
        assert_eq!(parse_field("(0020,000d)").ok(), Some(Tag(0x0020, 0x000D)));
        assert!(matches!(
            parse_field("NoSuchThing"),
            Err(Error::UnknownField { .. })
        ));
    }
}
