//! Wrapper input matchers: the JSONPath filter expressions the Container
//! Service puts on derived inputs (`"matcher": "@.scan-type in ['T1', 'MPRAGE']"`),
//! evaluated on an archive object. The forms XNAT's commands use:
//!
//! - `'LABEL' in @.resources[*].label` (and `nin`): the object has (or
//!   lacks) a resource of that label;
//! - `@.FIELD == 'V'`, `@.FIELD != 'V'`;
//! - `@.FIELD =~ /REGEX/` (`/i` for case-insensitive), matching the whole
//!   value as Jayway JSONPath (the Container Service's) does;
//! - `@.FIELD in ['A', 'B']`, `@.FIELD nin [...]`;
//!
//! joined with `&&` and `||` (`&&` binds tighter). FIELD is one of `id`,
//! `label`, `uri`, `project-id`, `scan-type`, `xsiType`, `session-id`.
//! Anything else is refused with the forms understood rather than guessed.

use regex::RegexBuilder;

use crate::resolve::{ResolveError, XnatObject};

/// Does `matcher` accept `object` (or, for a resource, its label)?
pub fn matches(matcher: &str, object: &XnatObject) -> Result<bool, ResolveError> {
    // Every term is checked (not short-circuited), so an unsupported term
    // is reported whatever the others say.
    let mut any = false;
    for alternative in split_outside_literals(matcher, "||") {
        let mut all = true;
        for term in split_outside_literals(alternative, "&&") {
            all &= matches_term(term, object)?;
        }
        any |= all;
    }
    Ok(any)
}

/// `text` split at each `sep` that is not inside quotes or a `/regex/`.
fn split_outside_literals<'a>(text: &'a str, sep: &str) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let mut inside: Option<char> = None;
    let mut start = 0;
    let mut previous = ' ';
    for (i, c) in text.char_indices() {
        if i < start {
            continue;
        }
        match inside {
            Some(close) if c == close && previous != '\\' => inside = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => inside = Some(c),
            // A regex literal follows `=~`.
            None if c == '/' && text[..i].trim_end().ends_with("=~") => inside = Some('/'),
            None if text[i..].starts_with(sep) => {
                parts.push(&text[start..i]);
                start = i + sep.len();
            }
            None => {}
        }
        previous = c;
    }
    parts.push(&text[start..]);
    parts
}

fn matches_term(term: &str, object: &XnatObject) -> Result<bool, ResolveError> {
    let t = term.trim();
    if let Some((wanted, rest)) = quoted_prefix(t) {
        let (negated, path) = match operator(rest.trim_start()) {
            Some(("in", path)) => (false, path),
            Some(("nin", path)) => (true, path),
            _ => return Err(unsupported(term)),
        };
        if path.trim() != "@.resources[*].label" {
            return Err(unsupported(term));
        }
        return Ok(object.resources.iter().any(|r| r.label == wanted) != negated);
    }
    let Some(expr) = t.strip_prefix("@.") else {
        return Err(unsupported(term));
    };
    let end = expr
        .find(|c: char| c.is_whitespace() || "=!~".contains(c))
        .unwrap_or(expr.len());
    let (field, rest) = expr.split_at(end);
    let have = object.property(field).ok_or_else(|| {
        ResolveError::Invalid(format!(
            "matcher {term:?}: field {field:?} is not known (id, label, uri, project-id, scan-type, xsiType, session-id)"
        ))
    })?;
    let Some((op, operand)) = operator(rest.trim_start()) else {
        return Err(unsupported(term));
    };
    let operand = operand.trim();
    match op {
        "==" | "!=" => match quoted_prefix(operand) {
            Some((value, "")) => Ok((have == value) == (op == "==")),
            _ => Err(unsupported(term)),
        },
        "=~" => {
            let (pattern, flags) = regex_literal(operand).ok_or_else(|| unsupported(term))?;
            let regex = RegexBuilder::new(&format!("^(?:{pattern})$"))
                .case_insensitive(flags.contains('i'))
                .build()
                .map_err(|e| {
                    ResolveError::Invalid(format!("matcher {term:?}: bad regular expression: {e}"))
                })?;
            Ok(regex.is_match(&have))
        }
        "in" | "nin" => {
            let list = string_list(operand).ok_or_else(|| unsupported(term))?;
            Ok(list.iter().any(|v| *v == have) == (op == "in"))
        }
        _ => Err(unsupported(term)),
    }
}

/// The comparison operator `text` starts with, and what follows it.
fn operator(text: &str) -> Option<(&'static str, &str)> {
    for op in ["==", "!=", "=~"] {
        if let Some(rest) = text.strip_prefix(op) {
            return Some((op, rest));
        }
    }
    // Word operators need a break after them (`in [`, `in @`).
    for op in ["nin", "in"] {
        if let Some(rest) = text.strip_prefix(op)
            && rest.starts_with(|c: char| c.is_whitespace() || c == '[' || c == '@')
        {
            return Some((op, rest));
        }
    }
    None
}

/// `/pattern/flags` → (`pattern`, `flags`).
fn regex_literal(text: &str) -> Option<(String, &str)> {
    let body = text.strip_prefix('/')?;
    let end = body.rfind('/')?;
    let flags = &body[end + 1..];
    flags
        .chars()
        .all(|c| c.is_ascii_alphabetic())
        .then(|| (body[..end].replace("\\/", "/"), flags))
}

/// `['A', "B"]` → the strings.
fn string_list(text: &str) -> Option<Vec<&str>> {
    let mut rest = text.strip_prefix('[')?.trim_start();
    let mut out = Vec::new();
    if let Some(tail) = rest.strip_prefix(']') {
        return tail.trim().is_empty().then_some(out);
    }
    loop {
        let (value, tail) = quoted_prefix(rest)?;
        out.push(value);
        let tail = tail.trim_start();
        if let Some(more) = tail.strip_prefix(',') {
            rest = more.trim_start();
        } else {
            let end = tail.strip_prefix(']')?;
            return end.trim().is_empty().then_some(out);
        }
    }
}

fn unsupported(term: &str) -> ResolveError {
    ResolveError::Invalid(format!(
        "matcher {term:?} is not supported here; use \"'LABEL' in @.resources[*].label\", \"@.FIELD == 'VALUE'\" (or !=), \"@.FIELD =~ /REGEX/i\" or \"@.FIELD in ['A', 'B']\" (or nin), joined with && and ||"
    ))
}

/// `'text' rest` → (`text`, `rest`).
fn quoted_prefix(s: &str) -> Option<(&str, &str)> {
    let quote = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = &s[1..];
    let end = body.find(quote)?;
    Some((&body[..end], &body[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::tests::scan_of_type as scan;

    #[test]
    fn the_forms_xnat_commands_use() {
        let t1 = scan("MPRAGE T1", &["DICOM", "SNAPSHOTS"]);
        for (matcher, want) in [
            ("'DICOM' in @.resources[*].label", true),
            ("'NIFTI' in @.resources[*].label", false),
            ("'NIFTI' nin @.resources[*].label", true),
            ("@.scan-type == 'MPRAGE T1'", true),
            ("@.scan-type != 'MPRAGE T1'", false),
            ("@.scan-type =~ /.*T1.*/", true),
            ("@.scan-type =~ /mprage.*/i", true),
            ("@.scan-type =~ /mprage.*/", false),
            ("@.scan-type =~ /T1/", false),
            ("@.scan-type in ['T2', \"MPRAGE T1\"]", true),
            ("@.scan-type nin ['T2', 'MPRAGE T1']", false),
            (
                "@.xsiType == 'xnat:mrScanData' && 'DICOM' in @.resources[*].label",
                true,
            ),
            ("@.scan-type == 'T2' || @.scan-type =~ /.*(T1|PD).*/", true),
            ("@.scan-type =~ /a||b/ || @.label == '3'", true),
        ] {
            assert_eq!(matches(matcher, &t1).unwrap(), want, "{matcher}");
        }
    }

    #[test]
    fn what_is_not_understood_is_refused_with_the_forms() {
        let t1 = scan("T1", &[]);
        for bad in [
            "@.scan-type > 'T1'",
            "@.bogus == 'x'",
            "'X' in @.files[*].name",
            "@.scan-type =~ /(/",
            "@.scan-type in 'T1'",
            "$.label",
        ] {
            let err = matches(bad, &t1).unwrap_err().to_string();
            assert!(err.contains(bad) || err.contains("bogus"), "{bad}: {err}");
        }
    }
}
