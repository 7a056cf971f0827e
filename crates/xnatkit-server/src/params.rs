//! Request parameters: XNAT reads them from the query string and, for
//! form-encoded bodies, from the body too (pyxnat sends its prearchive
//! actions that way).

/// Decoded `key=value` pairs in request order.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

/// The representation a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Xml,
    Zip,
    TarGz,
    Tar,
}

impl Params {
    pub fn from_query(query: Option<&str>) -> Self {
        let mut params = Self::default();
        if let Some(q) = query {
            params.extend_from_urlencoded(q.as_bytes());
        }
        params
    }

    pub fn extend_from_urlencoded(&mut self, body: &[u8]) {
        self.pairs.extend(
            url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())),
        );
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The last value of `key` (exact match first, then case-insensitive).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .or_else(|| {
                self.pairs
                    .iter()
                    .rev()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
            })
            .map(|(_, v)| v.as_str())
    }

    /// True for `key=true` / `key=1` (any case).
    pub fn flag(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }

    /// Zip entry compression as XNAT chooses it: STORED unless the client
    /// asks for deflate with `compression=8` (the zip method number) or
    /// `compression=deflate`.
    pub fn zip_compression(&self) -> xnatkit_fileio::ZipCompression {
        match self
            .get("compression")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("8" | "deflate" | "deflated") => xnatkit_fileio::ZipCompression::DeflatedFast,
            _ => xnatkit_fileio::ZipCompression::Stored,
        }
    }

    pub fn format(&self) -> Option<Format> {
        let raw = self.get("format")?.to_ascii_lowercase();
        Some(match raw.as_str() {
            "csv" => Format::Csv,
            "xml" => Format::Xml,
            "zip" => Format::Zip,
            "tar.gz" | "tgz" | "tar.gzip" => Format::TarGz,
            "tar" => Format::Tar,
            _ => Format::Json,
        })
    }
}

/// Splits an XPath-style parameter such as `xnat:mrSessionData/date` or
/// `xnat:subjectData/fields/field[name=age]/field` into its path below the
/// type (`date`, `fields/field[name=age]/field`). Plain keys are returned as
/// they are.
pub fn xpath_tail(key: &str) -> &str {
    match key.split_once('/') {
        Some((root, rest)) if root.contains(':') => rest,
        _ => key,
    }
}

/// For `fields/field[name=X]/field` returns `X`.
pub fn custom_field_name(tail: &str) -> Option<&str> {
    let rest = tail.strip_prefix("fields/field[name=")?;
    let (name, after) = rest.split_once(']')?;
    if after == "/field" || after.is_empty() {
        Some(name.trim_matches(|c| c == '\'' || c == '"'))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_query_and_xpaths() {
        let p = Params::from_query(Some(
            "xsiType=xnat:mrSessionData&xnat%3AmrSessionData/fields/field%5Bname%3Dx%5D/field=42&format=JSON",
        ));
        assert_eq!(p.get("xsitype"), Some("xnat:mrSessionData"));
        assert_eq!(p.format(), Some(Format::Json));
        let (key, _) = &p.pairs()[1];
        assert_eq!(custom_field_name(xpath_tail(key)), Some("x"));
        assert_eq!(xpath_tail("label"), "label");
        assert_eq!(custom_field_name("fields/field[name=x]/x"), None);
    }
}
