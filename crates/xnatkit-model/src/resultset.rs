//! The listing shape every XNAT client parses:
//! `{"ResultSet": {"Result": [{..}], "totalRecords": "N", "title": ".."}}`,
//! with every value a string (xnatpy calls `.strip()` on them), and the CSV
//! rendering of the same table that pyxnat reads.

use std::collections::BTreeMap;

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

/// One row of a listing: column name → string value.
pub type Row = BTreeMap<String, String>;

/// A listing table. `columns` fixes the CSV column order; JSON rows carry
/// every key they have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultSet {
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
}

/// The JSON document wrapping a [`ResultSet`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResultSetDocument {
    #[serde(rename = "ResultSet")]
    pub result_set: ResultSetBody,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResultSetBody {
    #[serde(rename = "Result", deserialize_with = "lenient_rows")]
    pub result: Vec<Row>,
    #[serde(rename = "totalRecords", default, deserialize_with = "lenient_string")]
    pub total_records: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub title: String,
}

impl ResultSet {
    pub fn new(title: impl Into<String>, columns: &[&str]) -> Self {
        Self {
            title: title.into(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; columns not yet known are added to the CSV order.
    pub fn push(&mut self, row: Row) {
        for key in row.keys() {
            if !self.columns.iter().any(|c| c == key) {
                self.columns.push(key.clone());
            }
        }
        self.rows.push(row);
    }

    pub fn to_document(&self) -> ResultSetDocument {
        ResultSetDocument {
            result_set: ResultSetBody {
                result: self.rows.clone(),
                total_records: self.rows.len().to_string(),
                title: self.title.clone(),
            },
        }
    }

    pub fn to_json(&self) -> String {
        // Serialising maps of strings cannot fail.
        serde_json::to_string(&self.to_document()).unwrap_or_else(|_| String::from("{}"))
    }

    /// CSV with a header row, standard quoting (pyxnat uses Python's csv module).
    pub fn to_csv(&self) -> String {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        let empty = String::new();
        // Writing into a Vec only fails on malformed records, which cannot
        // happen with a fixed column count.
        let _ = writer.write_record(&self.columns);
        for row in &self.rows {
            let record = self.columns.iter().map(|c| row.get(c).unwrap_or(&empty));
            let _ = writer.write_record(record);
        }
        let bytes = writer.into_inner().unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }

    /// Parses a JSON listing as served by XNAT (or xnatkit).
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        let doc: ResultSetDocument = serde_json::from_str(text)?;
        let mut set = Self {
            title: doc.result_set.title,
            ..Self::default()
        };
        for row in doc.result_set.result {
            set.push(row);
        }
        Ok(set)
    }
}

/// Real XNAT sometimes emits numbers or nulls where strings are documented;
/// a client must not fail on them.
fn scalar_to_string(value: serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(scalar_to_string(serde_json::Value::deserialize(d)?))
}

fn lenient_rows<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Row>, D::Error> {
    let raw: Vec<BTreeMap<String, serde_json::Value>> = Vec::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|(k, v)| (k, scalar_to_string(v)))
                .collect()
        })
        .collect())
}

/// Builds a [`Row`] from pairs: `row([("ID", id), ("label", label)])`.
pub fn row<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Row {
    pairs
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_are_strings_and_round_trip() {
        let mut set = ResultSet::new("Subjects", &["ID", "label", "URI"]);
        set.push(row([
            ("ID", "XNAT_S00001"),
            ("label", "S1"),
            ("URI", "/data/subjects/XNAT_S00001"),
        ]));
        let json = set.to_json();
        assert!(json.contains(r#""totalRecords":"1""#), "{json}");
        let back = ResultSet::from_json(&json).unwrap();
        assert_eq!(back.rows, set.rows);
    }

    #[test]
    fn tolerates_numbers_and_nulls() {
        let set = ResultSet::from_json(
            r#"{"ResultSet":{"Result":[{"Size":12,"digest":null}],"totalRecords":1}}"#,
        )
        .unwrap();
        assert_eq!(set.rows[0]["Size"], "12");
        assert_eq!(set.rows[0]["digest"], "");
    }

    #[test]
    fn csv_quotes_and_orders_columns() {
        let mut set = ResultSet::new("Files", &["Name", "Size"]);
        set.push(row([("Name", "a, b.dcm"), ("Size", "3")]));
        assert_eq!(set.to_csv(), "Name,Size\r\n\"a, b.dcm\",3\r\n");
    }
}
