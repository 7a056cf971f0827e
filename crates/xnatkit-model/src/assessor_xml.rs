//! An image assessor as an XNAT XML document: what `PUT …/assessors/A`
//! takes as its body (pyxnat's `create(xml=…)` sends it as a multipart
//! file, dax's `upload_assessor_xml` raw with `inbody=true`) and what the
//! client writes for the assessors it files on any XNAT (the QA pipeline's
//! `xnat:qcAssessmentData` with its per-scan statistics, which XPath query
//! parameters cannot express).
//!
//! Only the parts xnatkit stores are read: the type (root element or
//! `xsi:type`), `label`, the type's fields ([`AssessorType::fields`], nested
//! elements joined with `/`) and a QC assessment's `scans/scan`
//! statistics. XNAT's structural elements (`imageSession_ID`, `resources`,
//! `out`, sharing, …) are skipped — the URL says where the assessor goes —
//! and any other element is refused, as an unknown XPath field is.

use quick_xml::Reader;
use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::{BytesStart, Event};

use crate::assessor::{AssessorType, qc_scan_statistics};
use crate::items::ItemChild;

/// One QC-assessed scan: its ID and its metrics by name.
pub type ScanMetrics = (String, Vec<(String, f64)>);

/// The part of an assessor document xnatkit stores.
#[derive(Debug, Clone, PartialEq)]
pub struct AssessorDocument {
    pub xsi_type: AssessorType,
    pub label: Option<String>,
    /// Field steps below the type (`procstatus`, `validation/status`).
    pub fields: Vec<(String, String)>,
    /// A QC assessment's per-scan metrics (`scans/scan`).
    pub qc_scans: Vec<ScanMetrics>,
}

/// Why a body is not an assessor document.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AssessorXmlError {
    #[error("the body is not well-formed XML: {0}")]
    Malformed(String),
    #[error(
        "the document's root element {0} is not an assessor type this server stores; use one of {types}",
        types = AssessorType::ALL.map(AssessorType::as_str).join(", ")
    )]
    UnknownType(String),
    #[error("the document has no root element")]
    Empty,
    #[error("{kind} has no field {field}; it has {fields}", fields = fields_of(*.kind))]
    UnknownField { kind: AssessorType, field: String },
    #[error("QC statistic {name} of scan {scan} is not a number: {value:?}")]
    NotANumber {
        scan: String,
        name: String,
        value: String,
    },
}

fn fields_of(kind: AssessorType) -> String {
    crate::assessor::COMMON_FIELDS
        .iter()
        .chain(kind.fields())
        .copied()
        .collect::<Vec<_>>()
        .join(", ")
}

/// Elements of XNAT's experiment and assessor schema that describe where
/// the record sits or what hangs under it; the URL and the resource routes
/// say that here, so a document's copies are skipped, not refused.
const STRUCTURAL: [&str; 14] = [
    "imageSession_ID",
    "subject_ID",
    "sharing",
    "resources",
    "in",
    "out",
    "fields",
    "provenance",
    "investigator",
    "prearchivePath",
    "acquisition_site",
    "modality",
    "parameters",
    "validation",
];

/// XNAT's named statistics of `xnat:statisticsData` and the metric each
/// holds (the inverse of [`qc_scan_statistics`]).
const NAMED_STATISTICS: [(&str, &str); 6] = [
    ("mean", "mean"),
    ("snr", "snr"),
    ("min", "min"),
    ("max", "max"),
    ("stddev", "stddev"),
    ("no_of_voxels", "mask_voxels"),
];

fn malformed(e: impl std::fmt::Display) -> AssessorXmlError {
    AssessorXmlError::Malformed(e.to_string())
}

fn local(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    match name.split_once(':') {
        Some((_, l)) => l.to_owned(),
        None => name.into_owned(),
    }
}

/// `(local name, value)` of each attribute but the namespace declarations.
fn attributes(e: &BytesStart<'_>) -> Result<Vec<(String, String)>, AssessorXmlError> {
    let mut out = Vec::new();
    for attr in e.attributes() {
        let attr = attr.map_err(malformed)?;
        let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(malformed)?
            .into_owned();
        // `xsi:type` keeps its prefix: a QC assessment's own `type`
        // attribute is a field.
        let name = if key == "xsi:type" {
            key
        } else {
            local(key.as_bytes())
        };
        out.push((name, value));
    }
    Ok(out)
}

/// A `scans/scan` being read: its ID, its additional statistics in
/// document order, and the named ones (which repeat metrics the
/// additional ones usually carry).
#[derive(Default)]
struct ScanBeingRead {
    id: String,
    additional: Vec<(String, f64)>,
    named: Vec<(String, f64)>,
}

/// One element's place while the document is read.
struct Open {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    has_children: bool,
}

impl AssessorDocument {
    /// Reads an assessor document.
    pub fn parse(xml: &str) -> Result<Self, AssessorXmlError> {
        let mut reader = Reader::from_str(xml);
        // Not trimmed here: text around an entity (`a &lt; b`) comes in
        // pieces; values are trimmed whole.
        reader.config_mut().trim_text(false);
        let mut stack: Vec<Open> = Vec::new();
        let mut doc: Option<AssessorDocument> = None;
        let mut scan: Option<ScanBeingRead> = None;
        loop {
            let event = reader.read_event().map_err(malformed)?;
            let (start, empty) = match &event {
                Event::Start(e) => (Some(e), false),
                Event::Empty(e) => (Some(e), true),
                _ => (None, false),
            };
            if let Some(e) = start {
                let name = local(e.name().as_ref());
                let attrs = attributes(e)?;
                if let Some(parent) = stack.last_mut() {
                    parent.has_children = true;
                }
                if stack.is_empty() {
                    // The type is the root's qualified name (`xnat:QCAssessment`).
                    let qualified = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                    doc = Some(Self::from_root(&qualified, &attrs)?);
                }
                let path: Vec<&str> = stack.iter().skip(1).map(|o| o.name.as_str()).collect();
                if path == ["scans"] && name == "scan" {
                    let id = attrs
                        .iter()
                        .find(|(k, _)| k == "id" || k == "ID")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    scan = Some(ScanBeingRead {
                        id,
                        ..ScanBeingRead::default()
                    });
                }
                stack.push(Open {
                    name,
                    attrs,
                    text: String::new(),
                    has_children: false,
                });
                if !empty {
                    continue;
                }
            }
            match event {
                Event::Text(t) => {
                    if let Some(open) = stack.last_mut() {
                        open.text.push_str(&t.decode().map_err(malformed)?);
                    }
                }
                Event::CData(t) => {
                    if let Some(open) = stack.last_mut() {
                        open.text.push_str(&t.decode().map_err(malformed)?);
                    }
                }
                Event::GeneralRef(r) => {
                    let text = match r.resolve_char_ref().map_err(malformed)? {
                        Some(c) => c.to_string(),
                        None => {
                            let name = r.decode().map_err(malformed)?;
                            resolve_predefined_entity(&name)
                                .ok_or_else(|| malformed(format!("unknown entity &{name};")))?
                                .to_owned()
                        }
                    };
                    if let Some(open) = stack.last_mut() {
                        open.text.push_str(&text);
                    }
                }
                Event::End(_) | Event::Empty(_) => {
                    let Some(closed) = stack.pop() else {
                        return Err(malformed("an end tag without its start"));
                    };
                    let Some(doc) = doc.as_mut() else {
                        return Err(AssessorXmlError::Empty);
                    };
                    if stack.is_empty() {
                        // The root's own end.
                        continue;
                    }
                    let path: Vec<&str> = stack.iter().skip(1).map(|o| o.name.as_str()).collect();
                    doc.closed(&path, closed, &mut scan)?;
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if !stack.is_empty() {
            return Err(malformed("the document ends inside an element"));
        }
        doc.ok_or(AssessorXmlError::Empty)
    }

    fn from_root(name: &str, attrs: &[(String, String)]) -> Result<Self, AssessorXmlError> {
        let declared = attrs.iter().find(|(k, _)| k == "xsi:type").map(|(_, v)| v);
        let xsi_type = AssessorType::parse(name)
            .or_else(|| declared.and_then(|t| AssessorType::parse(t)))
            .ok_or_else(|| AssessorXmlError::UnknownType(name.to_owned()))?;
        let mut doc = AssessorDocument {
            xsi_type,
            label: None,
            fields: Vec::new(),
            qc_scans: Vec::new(),
        };
        for (key, value) in attrs {
            match key.as_str() {
                "label" => doc.label = Some(value.clone()),
                // Where it sits is the URL's to say; `type` on the root of
                // anything but a QC assessment is the xsi:type.
                "ID" | "project" | "version" | "original" | "schemaLocation" | "xsi:type" => {}
                other => doc.field(other, value)?,
            }
        }
        Ok(doc)
    }

    fn field(&mut self, path: &str, value: &str) -> Result<(), AssessorXmlError> {
        let canonical =
            self.xsi_type
                .field(path)
                .ok_or_else(|| AssessorXmlError::UnknownField {
                    kind: self.xsi_type,
                    field: path.to_owned(),
                })?;
        self.fields
            .push((canonical.to_owned(), value.trim().to_owned()));
        Ok(())
    }

    /// Takes what a closed element holds; `path` names its ancestors
    /// below the root.
    fn closed(
        &mut self,
        path: &[&str],
        closed: Open,
        scan: &mut Option<ScanBeingRead>,
    ) -> Result<(), AssessorXmlError> {
        let top = path.first().copied().unwrap_or(closed.name.as_str());
        if self.xsi_type == AssessorType::QcAssessment && top == "scans" {
            return self.qc_part(path, closed, scan);
        }
        if closed.has_children {
            return Ok(());
        }
        let mut steps: Vec<&str> = path.to_vec();
        steps.push(&closed.name);
        let field = steps.join("/");
        if self.xsi_type.field(&field).is_some() {
            return self.field(&field, &closed.text);
        }
        if STRUCTURAL.contains(&top) {
            return Ok(());
        }
        Err(AssessorXmlError::UnknownField {
            kind: self.xsi_type,
            field,
        })
    }

    fn qc_part(
        &mut self,
        path: &[&str],
        closed: Open,
        scan: &mut Option<ScanBeingRead>,
    ) -> Result<(), AssessorXmlError> {
        match (path, closed.name.as_str()) {
            (["scans"], "scan") => {
                if let Some(mut done) = scan.take() {
                    for (metric, value) in done.named {
                        if !done.additional.iter().any(|(m, _)| *m == metric) {
                            done.additional.push((metric, value));
                        }
                    }
                    self.qc_scans.push((done.id, done.additional));
                }
            }
            (["scans", "scan", "scanStatistics"], name) => {
                let Some(reading) = scan.as_mut() else {
                    return Ok(());
                };
                let additional = name == "additionalStatistics";
                let metric = if additional {
                    closed
                        .attrs
                        .iter()
                        .find(|(k, _)| k == "name")
                        .map(|(_, v)| v.clone())
                } else {
                    NAMED_STATISTICS
                        .iter()
                        .find(|(field, _)| *field == name)
                        .map(|(_, metric)| (*metric).to_owned())
                };
                let Some(metric) = metric else {
                    return Ok(());
                };
                let text = closed.text.trim();
                if text.is_empty() {
                    return Ok(());
                }
                let value: f64 = text.parse().map_err(|_| AssessorXmlError::NotANumber {
                    scan: reading.id.clone(),
                    name: metric.clone(),
                    value: text.to_owned(),
                })?;
                let list = if additional {
                    &mut reading.additional
                } else {
                    &mut reading.named
                };
                if !list.iter().any(|(m, _)| *m == metric) {
                    list.push((metric, value));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The nested records to store (a QC assessment's `scans/scan`), as
    /// XNAT's items JSON `children`.
    pub fn children(&self) -> Vec<ItemChild> {
        if self.qc_scans.is_empty() {
            Vec::new()
        } else {
            vec![qc_scan_statistics(&self.qc_scans)]
        }
    }

    /// The document XNAT takes for this assessor in `project`.
    pub fn to_xml(&self, project: &str) -> String {
        let ns = self.xsi_type.namespace();
        let root = match self.xsi_type {
            AssessorType::QcAssessment => "xnat:QCAssessment".to_owned(),
            other => other.as_str().to_owned(),
        };
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str(&format!(
            "<{root} xmlns:xnat=\"http://nrg.wustl.edu/xnat\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\""
        ));
        if ns != "xnat" {
            out.push_str(&format!(" xmlns:{ns}=\"http://nrg.wustl.edu/{ns}\""));
        }
        if let Some(label) = &self.label {
            out.push_str(&format!(" label=\"{}\"", escape(label)));
        }
        out.push_str(&format!(" project=\"{}\"", escape(project)));
        // The QC type is an attribute in XNAT's schema.
        let mut elements = Vec::new();
        for (name, value) in &self.fields {
            if self.xsi_type == AssessorType::QcAssessment && name == "type" {
                out.push_str(&format!(" type=\"{}\"", escape(value)));
            } else {
                elements.push((name, value));
            }
        }
        out.push_str(">\n");
        for (name, value) in elements {
            let prefix = if crate::assessor::COMMON_FIELDS.contains(&name.as_str()) {
                "xnat"
            } else {
                ns
            };
            let steps: Vec<&str> = name.split('/').collect();
            for step in &steps[..steps.len() - 1] {
                out.push_str(&format!("<{prefix}:{step}>"));
            }
            let last = steps[steps.len() - 1];
            out.push_str(&format!(
                "<{prefix}:{last}>{}</{prefix}:{last}>",
                escape(value)
            ));
            for step in steps[..steps.len() - 1].iter().rev() {
                out.push_str(&format!("</{prefix}:{step}>"));
            }
            out.push('\n');
        }
        if !self.qc_scans.is_empty() {
            out.push_str("<xnat:scans>\n");
            for (scan_id, metrics) in &self.qc_scans {
                out.push_str(&format!(
                    "<xnat:scan id=\"{}\"><xnat:scanStatistics xsi:type=\"xnat:statisticsData\">",
                    escape(scan_id)
                ));
                for (field, metric) in NAMED_STATISTICS {
                    if let Some((_, value)) = metrics.iter().find(|(m, _)| m == metric) {
                        out.push_str(&format!("<xnat:{field}>{value}</xnat:{field}>"));
                    }
                }
                for (name, value) in metrics {
                    out.push_str(&format!(
                        "<xnat:additionalStatistics name=\"{}\">{value}</xnat:additionalStatistics>",
                        escape(name)
                    ));
                }
                out.push_str("</xnat:scanStatistics></xnat:scan>\n");
            }
            out.push_str("</xnat:scans>\n");
        }
        out.push_str(&format!("</{root}>\n"));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_qc_document_round_trips() {
        let doc = AssessorDocument {
            xsi_type: AssessorType::QcAssessment,
            label: Some("S1_QA_1".to_owned()),
            fields: vec![
                ("type".to_owned(), "xnatkit-qa".to_owned()),
                ("note".to_owned(), "a < b & c".to_owned()),
            ],
            qc_scans: vec![(
                "1".to_owned(),
                vec![
                    ("mean".to_owned(), 101.5),
                    ("snr".to_owned(), 12.25),
                    ("efc".to_owned(), 0.5),
                    ("mask_voxels".to_owned(), 4096.0),
                ],
            )],
        };
        let xml = doc.to_xml("P1");
        assert_eq!(AssessorDocument::parse(&xml).unwrap(), doc, "{xml}");
        let children = doc.children();
        assert_eq!(children[0].field, "scans/scan");
    }

    #[test]
    fn a_dax_document_sets_nested_fields_and_skips_structure() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<proc:genProcData xmlns:proc="http://nrg.wustl.edu/proc" xmlns:xnat="http://nrg.wustl.edu/xnat"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID="" label="S1-x-FS" project="P">
  <xnat:date>2026-12-06</xnat:date>
  <xnat:imageSession_ID>XNAT_E00001</xnat:imageSession_ID>
  <xnat:out><xnat:file label="PDF" URI="/tmp/x.pdf"/></xnat:out>
  <proc:procstatus>JOB_RUNNING</proc:procstatus>
  <proc:proctype>FS</proc:proctype>
  <proc:validation><proc:status>Needs QA</proc:status></proc:validation>
</proc:genProcData>"#;
        let doc = AssessorDocument::parse(xml).unwrap();
        assert_eq!(doc.xsi_type, AssessorType::GenProc);
        assert_eq!(doc.label.as_deref(), Some("S1-x-FS"));
        assert_eq!(
            doc.fields,
            [
                ("date", "2026-12-06"),
                ("procstatus", "JOB_RUNNING"),
                ("proctype", "FS"),
                ("validation/status", "Needs QA"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
    }

    #[test]
    fn the_type_may_come_from_xsi_type() {
        let xml = r#"<xnat:QCAssessment xmlns:xnat="x" xmlns:xsi="y" xsi:type="xnat:qcAssessmentData" type="mriqc" label="L"/>"#;
        let doc = AssessorDocument::parse(xml).unwrap();
        assert_eq!(doc.xsi_type, AssessorType::QcAssessment);
        assert_eq!(doc.fields, [("type".to_owned(), "mriqc".to_owned())]);
        let generic = r#"<xnat:Assessor xmlns:xsi="y" xsi:type="proc:genProcData"><proc:procstatus>X</proc:procstatus></xnat:Assessor>"#;
        let doc = AssessorDocument::parse(generic).unwrap();
        assert_eq!(doc.xsi_type, AssessorType::GenProc);
    }

    #[test]
    fn bad_documents_say_why() {
        assert!(matches!(
            AssessorDocument::parse("<xnat:mrSessionData/>"),
            Err(AssessorXmlError::UnknownType(_))
        ));
        assert!(matches!(
            AssessorDocument::parse(
                "<proc:genProcData xmlns:proc=\"p\"><proc:procstatuz>X</proc:procstatuz></proc:genProcData>"
            ),
            Err(AssessorXmlError::UnknownField { .. })
        ));
        assert!(matches!(
            AssessorDocument::parse("<proc:genProcData><proc:procstatus>"),
            Err(AssessorXmlError::Malformed(_))
        ));
        assert_eq!(AssessorDocument::parse("  "), Err(AssessorXmlError::Empty));
        let bad_number = "<xnat:QCAssessment><xnat:scans><xnat:scan id=\"2\"><xnat:scanStatistics><xnat:mean>high</xnat:mean></xnat:scanStatistics></xnat:scan></xnat:scans></xnat:QCAssessment>";
        assert!(matches!(
            AssessorDocument::parse(bad_number),
            Err(AssessorXmlError::NotANumber { .. })
        ));
    }
}
