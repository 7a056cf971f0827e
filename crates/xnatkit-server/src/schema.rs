//! The XML schema served at `/xapi/schemas/xnat`, which xnatpy fetches on
//! connect.
//!
//! xnatpy builds its Python classes from this document on every connect, so
//! it must define every xsi type the server returns ([`XsiType::ALL`]) and
//! stay inside the XSD subset xnatpy parses: root tag written `xs:schema`,
//! no `xs:group` / `xs:attributeGroup`, built-in types spelled `xs:…`.
//! Written for this project; repeated blocks are generated instead of
//! grouped because xnatpy cannot read groups.

use xnatkit_model::{AssessorType, XsiType};

/// Custom variables: `fields/field`, keyed by `name` (xnatpy then indexes
/// `obj.fields["x"]` by name).
const FIELDS_BLOCK: &str = r#"      <xs:element name="fields" minOccurs="0"><xs:complexType><xs:sequence>
        <xs:element name="field" minOccurs="0" maxOccurs="unbounded">
          <xs:annotation><xs:appinfo><xdat:element displayIdentifiers="name"/></xs:appinfo></xs:annotation>
          <xs:complexType><xs:simpleContent><xs:extension base="xs:string">
            <xs:attribute name="name" type="xs:string"/>
          </xs:extension></xs:simpleContent></xs:complexType>
        </xs:element>
      </xs:sequence></xs:complexType></xs:element>
"#;

/// Projects an object is shared into: `sharing/share` with the project and
/// the object's label there, of the named type `xnat:{type}` (the xsi type
/// of the `sharing/share` items the server returns, which xnatpy looks up).
fn sharing_block(share_type: &str) -> String {
    format!(
        r#"      <xs:element name="sharing" minOccurs="0"><xs:complexType><xs:sequence>
        <xs:element name="share" type="xnat:{share_type}" minOccurs="0" maxOccurs="unbounded"/>
      </xs:sequence></xs:complexType></xs:element>
"#
    )
}

const RESOURCES_BLOCK: &str = r#"      <xs:element name="resources" minOccurs="0"><xs:complexType><xs:sequence>
        <xs:element name="resource" type="xnat:abstractResource" minOccurs="0" maxOccurs="unbounded"/>
      </xs:sequence></xs:complexType></xs:element>
"#;

/// XNAT's `scanner` element: the StationName as text, manufacturer and model
/// as attributes, which the JSON flattens to `scanner/manufacturer` etc.
const SCANNER_ELEMENT: &str = r#"      <xs:element name="scanner" minOccurs="0"><xs:complexType><xs:simpleContent><xs:extension base="xs:string">
        <xs:attribute name="manufacturer" type="xs:string"/>
        <xs:attribute name="model" type="xs:string"/>
      </xs:extension></xs:simpleContent></xs:complexType></xs:element>
"#;

/// Session types xnatutils/xnatuploader look up by name even though this
/// server does not create them itself.
const EXTRA_SESSION_TYPES: [&str; 2] = ["smSessionData", "xaSessionData"];

fn local_name(t: XsiType) -> &'static str {
    let full = t.as_str();
    full.strip_prefix("xnat:").unwrap_or(full)
}

/// The `xnat` schema document.
pub fn xnat_schema() -> String {
    let mut out = String::with_capacity(12 * 1024);
    out.push_str(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<xs:schema targetNamespace="http://nrg.wustl.edu/xnat" xmlns:xnat="http://nrg.wustl.edu/xnat" xmlns:xdat="http://nrg.wustl.edu/xdat" xmlns:xs="http://www.w3.org/2001/XMLSchema" elementFormDefault="qualified">
  <xs:complexType name="projectData">
    <xs:sequence>
      <xs:element name="name" type="xs:string" minOccurs="0"/>
      <xs:element name="description" type="xs:string" minOccurs="0"/>
"#,
    );
    out.push_str(RESOURCES_BLOCK);
    out.push_str(FIELDS_BLOCK);
    out.push_str(
        r#"    </xs:sequence>
    <xs:attribute name="ID" type="xs:string" use="required"/>
    <xs:attribute name="secondary_ID" type="xs:string"/>
  </xs:complexType>
  <xs:complexType name="subjectData">
    <xs:annotation><xs:appinfo><xdat:element displayIdentifiers="label"/></xs:appinfo></xs:annotation>
    <xs:sequence>
"#,
    );
    out.push_str(RESOURCES_BLOCK);
    out.push_str(
        r#"      <xs:element name="experiments" minOccurs="0"><xs:complexType><xs:sequence>
        <xs:element name="experiment" type="xnat:subjectAssessorData" minOccurs="0" maxOccurs="unbounded"/>
      </xs:sequence></xs:complexType></xs:element>
"#,
    );
    out.push_str(FIELDS_BLOCK);
    out.push_str(&sharing_block("projectParticipant"));
    out.push_str(
        r#"    </xs:sequence>
    <xs:attribute name="ID" type="xs:string" use="required"/>
    <xs:attribute name="project" type="xs:string"/>
    <xs:attribute name="label" type="xs:string"/>
  </xs:complexType>
  <xs:complexType name="projectParticipant">
    <xs:attribute name="project" type="xs:string" use="required"/>
    <xs:attribute name="label" type="xs:string"/>
    <xs:attribute name="subject_ID" type="xs:string"/>
  </xs:complexType>
  <xs:complexType name="experimentData_share">
    <xs:attribute name="project" type="xs:string" use="required"/>
    <xs:attribute name="label" type="xs:string"/>
    <xs:attribute name="sharing_share_xnat_experimentda_id" type="xs:string"/>
  </xs:complexType>
  <xs:complexType name="experimentData">
    <xs:annotation><xs:appinfo><xdat:element displayIdentifiers="label"/></xs:appinfo></xs:annotation>
    <xs:sequence>
      <xs:element name="date" type="xs:date" minOccurs="0"/>
      <xs:element name="time" type="xs:time" minOccurs="0"/>
      <xs:element name="note" type="xs:string" minOccurs="0"/>
"#,
    );
    out.push_str(RESOURCES_BLOCK);
    out.push_str(FIELDS_BLOCK);
    out.push_str(&sharing_block("experimentData_share"));
    out.push_str(
        r#"    </xs:sequence>
    <xs:attribute name="ID" type="xs:string" use="required"/>
    <xs:attribute name="project" type="xs:string"/>
    <xs:attribute name="label" type="xs:string"/>
  </xs:complexType>
  <xs:complexType name="subjectAssessorData"><xs:complexContent><xs:extension base="xnat:experimentData">
    <xs:sequence><xs:element name="subject_ID" type="xs:string"/></xs:sequence>
  </xs:extension></xs:complexContent></xs:complexType>
  <xs:complexType name="imageSessionData"><xs:complexContent><xs:extension base="xnat:subjectAssessorData">
    <xs:sequence>
      <xs:element name="modality" type="xs:string" minOccurs="0"/>
      <xs:element name="UID" type="xs:string" minOccurs="0"/>
      <xs:element name="session_type" type="xs:string" minOccurs="0"/>
"#,
    );
    out.push_str(SCANNER_ELEMENT);
    out.push_str(
        r#"      <xs:element name="operator" type="xs:string" minOccurs="0"/>
      <xs:element name="dcmAccessionNumber" type="xs:string" minOccurs="0"/>
      <xs:element name="dcmPatientId" type="xs:string" minOccurs="0"/>
      <xs:element name="dcmPatientName" type="xs:string" minOccurs="0"/>
      <xs:element name="acquisition_site" type="xs:string" minOccurs="0"/>
      <xs:element name="scans" minOccurs="0"><xs:complexType><xs:sequence>
        <xs:element name="scan" type="xnat:imageScanData" minOccurs="0" maxOccurs="unbounded"/>
      </xs:sequence></xs:complexType></xs:element>
      <xs:element name="assessors" minOccurs="0"><xs:complexType><xs:sequence>
        <xs:element name="assessor" type="xnat:imageAssessorData" minOccurs="0" maxOccurs="unbounded"/>
      </xs:sequence></xs:complexType></xs:element>
    </xs:sequence>
  </xs:extension></xs:complexContent></xs:complexType>
"#,
    );
    out.push_str(XNAT_ASSESSOR_TYPES);
    out.push_str(&assessor_type(
        AssessorType::QcManualAssessor,
        "xnat:imageAssessorData",
    ));
    let sessions = XsiType::ALL
        .into_iter()
        .filter(|t| t.is_session())
        .map(local_name)
        .chain(EXTRA_SESSION_TYPES);
    for name in sessions {
        // Only mrSessionData adds a field of its own (XNAT's fieldStrength).
        if name == local_name(XsiType::MrSession) {
            out.push_str(&format!(
                "  <xs:complexType name=\"{name}\"><xs:complexContent><xs:extension base=\"xnat:imageSessionData\">\n    <xs:sequence><xs:element name=\"fieldStrength\" type=\"xs:string\" minOccurs=\"0\"/></xs:sequence>\n  </xs:extension></xs:complexContent></xs:complexType>\n"
            ));
            continue;
        }
        out.push_str(&format!(
            "  <xs:complexType name=\"{name}\"><xs:complexContent><xs:extension base=\"xnat:imageSessionData\"/></xs:complexContent></xs:complexType>\n"
        ));
    }
    out.push_str(
        r#"  <xs:complexType name="imageScanData">
    <xs:annotation><xs:appinfo><xdat:element displayIdentifiers="ID"/></xs:appinfo></xs:annotation>
    <xs:sequence>
      <xs:element name="image_session_ID" type="xs:string" minOccurs="0"/>
      <xs:element name="note" type="xs:string" minOccurs="0"/>
      <xs:element name="quality" type="xs:string" minOccurs="0"/>
      <xs:element name="series_description" type="xs:string" minOccurs="0"/>
      <xs:element name="modality" type="xs:string" minOccurs="0"/>
      <xs:element name="frames" type="xs:integer" minOccurs="0"/>
      <xs:element name="series_class" type="xs:string" minOccurs="0"/>
      <xs:element name="startTime" type="xs:time" minOccurs="0"/>
      <xs:element name="bodyPartExamined" type="xs:string" minOccurs="0"/>
"#,
    );
    out.push_str(SCANNER_ELEMENT);
    out.push_str(
        r#"    </xs:sequence>
    <xs:attribute name="ID" type="xs:string" use="required"/>
    <xs:attribute name="type" type="xs:string"/>
    <xs:attribute name="UID" type="xs:string"/>
    <xs:attribute name="project" type="xs:string"/>
  </xs:complexType>
"#,
    );
    for name in XsiType::ALL
        .into_iter()
        .filter(|t| t.is_scan())
        .map(local_name)
    {
        out.push_str(&format!(
            "  <xs:complexType name=\"{name}\"><xs:complexContent><xs:extension base=\"xnat:imageScanData\"/></xs:complexContent></xs:complexType>\n"
        ));
    }
    out.push_str(
        r#"  <xs:complexType name="abstractResource">
    <xs:annotation><xs:appinfo><xdat:element abstract="true" displayIdentifiers="label"/></xs:appinfo></xs:annotation>
    <xs:attribute name="label" type="xs:string"/>
    <xs:attribute name="file_count" type="xs:integer"/>
    <xs:attribute name="file_size" type="xs:long"/>
  </xs:complexType>
  <xs:complexType name="resource"><xs:complexContent><xs:extension base="xnat:abstractResource">
    <xs:attribute name="URI" type="xs:string"/>
    <xs:attribute name="format" type="xs:string"/>
    <xs:attribute name="content" type="xs:string"/>
  </xs:extension></xs:complexContent></xs:complexType>
  <xs:complexType name="resourceCatalog"><xs:complexContent><xs:extension base="xnat:resource"/></xs:complexContent></xs:complexType>
</xs:schema>
"#,
    );
    out
}

/// The assessor base types of the `xnat` namespace, and the QC assessment
/// with its per-scan statistics (`scans/scan/scanStatistics` with named
/// `additionalStatistics`), which the QA pipeline writes.
const XNAT_ASSESSOR_TYPES: &str = r#"  <xs:complexType name="derivedData"><xs:complexContent><xs:extension base="xnat:experimentData"/></xs:complexContent></xs:complexType>
  <xs:complexType name="imageAssessorData"><xs:complexContent><xs:extension base="xnat:derivedData">
    <xs:sequence><xs:element name="imageSession_ID" type="xs:string" minOccurs="0"/></xs:sequence>
  </xs:extension></xs:complexContent></xs:complexType>
  <xs:complexType name="mrAssessorData"><xs:complexContent><xs:extension base="xnat:imageAssessorData"/></xs:complexContent></xs:complexType>
  <xs:complexType name="statisticsData">
    <xs:sequence>
      <xs:element name="mean" type="xs:double" minOccurs="0"/>
      <xs:element name="snr" type="xs:double" minOccurs="0"/>
      <xs:element name="min" type="xs:double" minOccurs="0"/>
      <xs:element name="max" type="xs:double" minOccurs="0"/>
      <xs:element name="stddev" type="xs:double" minOccurs="0"/>
      <xs:element name="no_of_voxels" type="xs:integer" minOccurs="0"/>
      <xs:element name="additionalStatistics" minOccurs="0" maxOccurs="unbounded">
        <xs:complexType><xs:simpleContent><xs:extension base="xs:double">
          <xs:attribute name="name" type="xs:string"/>
        </xs:extension></xs:simpleContent></xs:complexType>
      </xs:element>
    </xs:sequence>
  </xs:complexType>
  <xs:complexType name="qcAssessmentData"><xs:complexContent><xs:extension base="xnat:mrAssessorData">
    <xs:sequence>
      <xs:element name="scans" minOccurs="0"><xs:complexType><xs:sequence>
        <xs:element name="scan" minOccurs="0" maxOccurs="unbounded">
          <xs:complexType>
            <xs:sequence><xs:element name="scanStatistics" type="xnat:statisticsData" minOccurs="0"/></xs:sequence>
            <xs:attribute name="id" type="xs:string"/>
          </xs:complexType>
        </xs:element>
      </xs:sequence></xs:complexType></xs:element>
    </xs:sequence>
    <xs:attribute name="type" type="xs:string"/>
  </xs:extension></xs:complexContent></xs:complexType>
"#;

/// One assessor type with its simple fields as string elements. Fields
/// nested below another element (`validation/status`) are settable by
/// XPath and returned in the item JSON, but left out here: xnatpy would
/// need a class per nesting level for them.
fn assessor_type(kind: AssessorType, base: &str) -> String {
    let mut out = format!(
        "  <xs:complexType name=\"{}\"><xs:complexContent><xs:extension base=\"{base}\">\n    <xs:sequence>\n",
        kind.local_name()
    );
    for field in kind.fields().iter().filter(|f| !f.contains('/')) {
        out.push_str(&format!(
            "      <xs:element name=\"{field}\" type=\"xs:string\" minOccurs=\"0\"/>\n"
        ));
    }
    out.push_str("    </xs:sequence>\n  </xs:extension></xs:complexContent></xs:complexType>\n");
    out
}

/// Names of the schema documents at `/xapi/schemas/{name}`.
pub const SCHEMA_NAMES: [&str; 4] = ["xnat", "xdat", "icr", "proc"];

/// A plugin namespace holding one assessor type that extends
/// `xnat:imageAssessorData` (the ROI collections of the XNAT OHIF plugin,
/// dax's processing records).
pub fn plugin_schema(kind: AssessorType) -> String {
    let ns = kind.namespace();
    let uri = match kind {
        AssessorType::RoiCollection => "http://www.icr.ac.uk/icr",
        _ => "http://nrg.wustl.edu/proc",
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xs:schema targetNamespace=\"{uri}\" xmlns:{ns}=\"{uri}\" xmlns:xnat=\"http://nrg.wustl.edu/xnat\" xmlns:xdat=\"http://nrg.wustl.edu/xdat\" xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" elementFormDefault=\"qualified\">\n{}</xs:schema>\n",
        assessor_type(kind, "xnat:imageAssessorData")
    )
}

/// The `xdat` schema: empty but valid, as xnatpy fetches it too.
pub const XDAT_SCHEMA: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<xs:schema targetNamespace="http://nrg.wustl.edu/xdat" xmlns:xdat="http://nrg.wustl.edu/xdat" xmlns:xs="http://www.w3.org/2001/XMLSchema"/>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defines_every_served_type_and_no_groups() {
        let xsd = xnat_schema();
        for t in XsiType::ALL {
            let needle = format!("name=\"{}\"", local_name(t));
            assert!(xsd.contains(&needle), "{} missing", t.as_str());
        }
        assert!(xsd.contains("<xs:schema targetNamespace=\"http://nrg.wustl.edu/xnat\""));
        assert!(!xsd.contains("xs:group") && !xsd.contains("xs:attributeGroup"));
    }

    #[test]
    fn defines_the_share_item_types() {
        let xsd = xnat_schema();
        for t in [
            crate::routes::archive::SUBJECT_SHARE_TYPE,
            crate::routes::archive::EXPERIMENT_SHARE_TYPE,
        ] {
            let local = t.strip_prefix("xnat:").unwrap_or(t);
            assert!(
                xsd.contains(&format!("<xs:complexType name=\"{local}\">")),
                "{t} missing"
            );
        }
        assert_eq!(xsd.matches("<xs:element name=\"sharing\"").count(), 2);
    }

    #[test]
    fn declares_the_imported_header_fields() {
        let xsd = xnat_schema();
        for name in [
            "scanner",
            "manufacturer",
            "model",
            "operator",
            "acquisition_site",
            "dcmAccessionNumber",
            "dcmPatientId",
            "dcmPatientName",
            "fieldStrength",
            "startTime",
            "bodyPartExamined",
            "series_class",
        ] {
            assert!(xsd.contains(&format!("name=\"{name}\"")), "{name} missing");
        }
        // The scanner block appears once for sessions and once for scans.
        assert_eq!(xsd.matches("<xs:element name=\"scanner\"").count(), 2);
    }
}
