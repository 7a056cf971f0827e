//! The path pattern grammar of xnatuploader's "Paths" section.
//!
//! A pattern set is a list of patterns matched against the parts of a file's
//! path relative to the scanned directory, one pattern per part, left to right:
//!
//! - `{Name}` captures any text; a name made of one repeated character
//!   (`{YYYY}`, `{MM}`, `{II}`) captures exactly that many digits;
//! - text outside braces must appear literally;
//! - `*` matches exactly one directory, `**` one or more (shortest first).
//!
//! Differences from xnatuploader 1.1.9, on purpose: text before the first `{`
//! must match (xnatuploader silently drops it, so `DICOM` matches any name
//! there), and a pattern must match the whole name, not only its beginning.

use std::collections::BTreeMap;

use regex::Regex;

use crate::error::Error;

/// One pattern of a pattern set.
#[derive(Debug, Clone)]
pub enum Segment {
    /// `*`: exactly one path part.
    One,
    /// `**`: one or more path parts.
    OneOrMore,
    /// A name pattern with captures.
    Name {
        source: String,
        regex: Regex,
        captures: Vec<String>,
    },
}

/// A labelled list of patterns (one row of the "Paths" section).
#[derive(Debug, Clone)]
pub struct PatternSet {
    pub label: String,
    pub segments: Vec<Segment>,
}

/// Values captured from one path, by capture name.
pub type Captures = BTreeMap<String, String>;

impl PatternSet {
    /// Parses the patterns of one "Paths" row.
    pub fn parse(label: &str, patterns: &[String]) -> Result<Self, Error> {
        if patterns.is_empty() {
            return Err(Error::Config(format!(
                "pattern set '{label}' has no patterns; add at least one pattern to its right"
            )));
        }
        let segments = patterns
            .iter()
            .map(|p| parse_segment(label, p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            label: label.to_owned(),
            segments,
        })
    }

    /// Capture names in the order they first appear.
    pub fn capture_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for segment in &self.segments {
            if let Segment::Name { captures, .. } = segment {
                for name in captures {
                    if !names.contains(name) {
                        names.push(name.clone());
                    }
                }
            }
        }
        names
    }

    /// Matches the parts of a relative path; `None` when the set does not match.
    pub fn match_parts(&self, parts: &[&str]) -> Option<Captures> {
        match_from(&self.segments, parts)
    }
}

fn match_from(segments: &[Segment], parts: &[&str]) -> Option<Captures> {
    let Some((segment, rest_segments)) = segments.split_first() else {
        return parts.is_empty().then(Captures::new);
    };
    let (part, rest_parts) = parts.split_first()?;
    match segment {
        Segment::One => match_from(rest_segments, rest_parts),
        Segment::OneOrMore => {
            // Shortest first, like xnatuploader: the first split that lets the
            // rest match wins, so captures after `**` are the same as there.
            (1..=parts.len()).find_map(|taken| match_from(rest_segments, &parts[taken..]))
        }
        Segment::Name {
            regex, captures, ..
        } => {
            let found = regex.captures(part)?;
            let mut values = match_from(rest_segments, rest_parts)?;
            for name in captures {
                if let Some(m) = found.name(name) {
                    // Later parts win on repeated names, as in xnatuploader.
                    values
                        .entry(name.clone())
                        .or_insert_with(|| m.as_str().to_owned());
                }
            }
            Some(values)
        }
    }
}

fn parse_segment(label: &str, pattern: &str) -> Result<Segment, Error> {
    let fail = |detail: String| Error::Pattern {
        label: label.to_owned(),
        pattern: pattern.to_owned(),
        detail,
    };
    match pattern.trim() {
        "*" => return Ok(Segment::One),
        "**" => return Ok(Segment::OneOrMore),
        "" => return Err(fail("the pattern is empty".to_owned())),
        _ => {}
    }
    let mut regex = String::from("^");
    let mut captures: Vec<String> = Vec::new();
    let mut rest = pattern;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err(fail("'}' without a matching '{'".to_owned()));
        }
        regex.push_str(&regex::escape(&rest[..open]));
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| fail("'{' without a closing '}'".to_owned()))?;
        let name = &after[..close];
        if !is_capture_name(name) {
            return Err(fail(format!(
                "'{{{name}}}' is not a valid capture name (use letters, digits and _, starting with a letter)"
            )));
        }
        if captures.iter().any(|c| c == name) {
            return Err(fail(format!(
                "'{{{name}}}' appears twice; give each capture its own name"
            )));
        }
        regex.push_str(&capture_regex(name));
        captures.push(name.to_owned());
        rest = &after[close + 1..];
    }
    regex.push_str(&regex::escape(rest));
    regex.push('$');
    let regex = Regex::new(&regex).map_err(|e| fail(e.to_string()))?;
    Ok(Segment::Name {
        source: pattern.to_owned(),
        regex,
        captures,
    })
}

fn is_capture_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `{YYYY}`-style names (one character repeated) capture that many digits;
/// every other name captures any text, greedily as in xnatuploader.
fn capture_regex(name: &str) -> String {
    let mut chars = name.chars();
    let first = chars.next();
    if first.is_some() && chars.all(|c| Some(c) == first) {
        format!("(?P<{name}>[0-9]{{{}}})", name.len())
    } else {
        format!("(?P<{name}>.*)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(patterns: &[&str]) -> PatternSet {
        let owned: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        PatternSet::parse("Test", &owned).unwrap()
    }

    fn parts(path: &str) -> Vec<&str> {
        path.split('/').collect()
    }

    #[test]
    fn seed_example_matches_and_captures() {
        let s = set(&["{SubjectName}-{ID}", "**", "{Directory}", "{filename}.dcm"]);
        let got = s
            .match_parts(&parts("Doe^John-0001/20200312/Chest CT/scan0000.dcm"))
            .unwrap();
        assert_eq!(got["SubjectName"], "Doe^John");
        assert_eq!(got["ID"], "0001");
        assert_eq!(got["Directory"], "Chest CT");
        assert_eq!(got["filename"], "scan0000");
        assert_eq!(
            s.capture_names(),
            ["SubjectName", "ID", "Directory", "filename"]
        );
    }

    #[test]
    fn double_star_needs_at_least_one_part_and_takes_several() {
        let s = set(&["{Name}-{ID}", "**", "{Directory}", "{file}.dcm"]);
        assert!(s.match_parts(&parts("a-1/CT/x.dcm")).is_none());
        let got = s.match_parts(&parts("a-1/d/e/f/CT/x.dcm")).unwrap();
        assert_eq!(got["Directory"], "CT");
    }

    #[test]
    fn single_star_is_exactly_one_part() {
        let s = set(&["*", "{file}"]);
        assert!(s.match_parts(&parts("a/b")).is_some());
        assert!(s.match_parts(&parts("a/b/c")).is_none());
        assert!(s.match_parts(&parts("b")).is_none());
    }

    #[test]
    fn repeated_letter_names_capture_digits_only() {
        let s = set(&["{YYYY}{MM}{DD}", "{file}"]);
        let got = s.match_parts(&parts("20200312/x")).unwrap();
        assert_eq!((got["YYYY"].as_str(), got["MM"].as_str()), ("2020", "03"));
        assert!(s.match_parts(&parts("2020031/x")).is_none());
        assert!(s.match_parts(&parts("abcd0312/x")).is_none());
    }

    #[test]
    fn literal_text_must_match_whole_name() {
        let s = set(&["DICOM", "{file}.dcm"]);
        assert!(s.match_parts(&parts("DICOM/a.dcm")).is_some());
        assert!(s.match_parts(&parts("OTHER/a.dcm")).is_none());
        assert!(s.match_parts(&parts("DICOM/a.dcm.bak")).is_none());
    }

    #[test]
    fn single_letter_names_are_one_digit_as_in_xnatuploader() {
        let s = set(&["{x}", "{file}"]);
        assert!(s.match_parts(&parts("7/a")).is_some());
        assert!(s.match_parts(&parts("ab/a")).is_none());
    }

    #[test]
    fn bad_patterns_are_reported() {
        for bad in ["{open", "close}", "{a}{a}", "{1x}", "{}", ""] {
            let err = PatternSet::parse("P", &[bad.to_string()]).unwrap_err();
            assert!(err.to_string().contains("pattern set 'P'"), "{err}");
        }
    }
}
