//! The single-object JSON shape (`GET {object}?format=json`) that xnatpy
//! reads: `{"items": [{"children": [...], "meta": {...}, "data_fields": {...}}]}`
//! (the shapes xnatpy and pyxnat parse).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ItemsDocument {
    pub items: Vec<ObjectItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ObjectItem {
    #[serde(default)]
    pub children: Vec<ItemChild>,
    pub meta: ItemMeta,
    #[serde(default)]
    pub data_fields: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ItemMeta {
    #[serde(rename = "xsi:type")]
    pub xsi_type: String,
    #[serde(rename = "isHistory", default)]
    pub is_history: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_event_id: Option<i64>,
    /// XNAT style `Mon Jan 08 10:00:00 UTC 2024`; xnatpy parses it with dateutil.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
}

/// A nested collection, e.g. `fields/field` (custom variables).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ItemChild {
    pub field: String,
    pub items: Vec<ObjectItem>,
}

/// The `children` path under which custom variables live.
pub const FIELDS_CHILD: &str = "fields/field";

impl ObjectItem {
    pub fn new(xsi_type: &str) -> Self {
        Self {
            children: Vec::new(),
            meta: ItemMeta {
                xsi_type: xsi_type.to_owned(),
                is_history: false,
                create_event_id: None,
                start_date: None,
            },
            data_fields: BTreeMap::new(),
        }
    }

    /// Sets a data field as a string (the form XNAT uses for simple values).
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.data_fields
            .insert(key.to_owned(), serde_json::Value::String(value.into()));
        self
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.data_fields.get(key).and_then(|v| v.as_str())
    }

    /// Custom variables as `name → value`, read from the `fields/field` child.
    pub fn custom_fields(&self) -> BTreeMap<String, String> {
        self.children
            .iter()
            .filter(|c| c.field == FIELDS_CHILD)
            .flat_map(|c| c.items.iter())
            .filter_map(|item| {
                let name = item.get_str("name")?;
                let value = item.get_str("field").unwrap_or_default();
                Some((name.to_owned(), value.to_owned()))
            })
            .collect()
    }
}

impl ItemsDocument {
    pub fn single(item: ObjectItem) -> Self {
        Self { items: vec![item] }
    }

    /// The current (non-history) item, as xnatpy picks it.
    pub fn current(&self) -> Option<&ObjectItem> {
        self.items.iter().find(|i| !i.meta.is_history)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_contract_example() {
        let text = r#"{"items":[{"children":[{"field":"fields/field","items":[{"children":[],
          "meta":{"create_event_id":130,"xsi:type":"xnat:experimentData_field","isHistory":false},
          "data_fields":{"field":"42","name":"brain_volume"}}]}],
          "meta":{"xsi:type":"xnat:mrSessionData","isHistory":false,"start_date":"Mon Jan 08 10:05:00 UTC 2024"},
          "data_fields":{"ID":"XNAT_E00001","label":"SESS1","project":"TEST"}}]}"#;
        let doc: ItemsDocument = serde_json::from_str(text).unwrap();
        let item = doc.current().unwrap();
        assert_eq!(item.meta.xsi_type, "xnat:mrSessionData");
        assert_eq!(item.get_str("label"), Some("SESS1"));
        assert_eq!(item.custom_fields()["brain_volume"], "42");
    }
}
