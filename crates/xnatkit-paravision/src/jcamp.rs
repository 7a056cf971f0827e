//! Reader for the JCAMP-DX parameter lists ParaVision writes (`acqp`, `method`,
//! `visu_pars`, `reco`, `subject`, `id`).
//!
//! No crate reads this dialect, and the Python readers mangle wrapped strings
//! and mid-array run-length encoding, so this is our own. The reader never
//! panics: any malformed input becomes a [`JcampError`].

use std::collections::BTreeMap;
use std::path::Path;

/// Why a parameter file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JcampError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a ParaVision parameter file (no `##$NAME=value` records)")]
    NoRecords,
    #[error("parameter {name}: {problem}")]
    Syntax { name: String, problem: String },
}

/// One parsed value. Numbers and enums stay text (`Word`) because ParaVision
/// writes doubles without a decimal point (`##$RG=101`); the caller decides.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A bare token: number, enum, `Yes`/`No`.
    Word(String),
    /// A `<...>` string, escapes resolved.
    Text(String),
    /// A parenthesised struct `(a, b, ...)`.
    Struct(Vec<Value>),
    /// Several whitespace-separated items (an array body or a list inside a struct field).
    List(Vec<Value>),
}

impl Value {
    /// The text of a word or string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Word(s) | Value::Text(s) => Some(s),
            Value::List(items) if items.len() == 1 => items[0].as_str(),
            _ => None,
        }
    }

    /// A word read as a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Word(s) => s.trim().parse::<f64>().ok(),
            Value::List(items) if items.len() == 1 => items[0].as_f64(),
            _ => None,
        }
    }

    /// The elements of an array; a scalar is an array of one.
    pub fn elements(&self) -> &[Value] {
        match self {
            Value::List(items) => items,
            other => std::slice::from_ref(other),
        }
    }

    /// Fields of a struct (or the struct-like single element of a one-element array).
    pub fn fields(&self) -> Option<&[Value]> {
        match self {
            Value::Struct(fields) => Some(fields),
            Value::List(items) if items.len() == 1 => items[0].fields(),
            _ => None,
        }
    }
}

/// A parameter: declared sizes (string-length dimension removed) and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub dims: Vec<usize>,
    pub value: Value,
}

/// A whole parameter file: `##LABEL=` header lines and `##$NAME=` parameters.
#[derive(Debug, Clone, Default)]
pub struct ParamFile {
    pub header: BTreeMap<String, String>,
    pub params: BTreeMap<String, Param>,
}

impl ParamFile {
    /// Read and parse a file. Invalid UTF-8 is replaced rather than rejected:
    /// PV5 files are ASCII and PV360 files UTF-8, and a stray byte in a comment
    /// must not make a scan unreadable.
    pub fn read(path: &Path) -> Result<ParamFile, JcampError> {
        let bytes = std::fs::read(path)?;
        parse(&String::from_utf8_lossy(&bytes))
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.params.get(name).map(|p| &p.value)
    }

    /// A string or enum parameter.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }

    /// A scalar number (first element of an array).
    pub fn f64(&self, name: &str) -> Option<f64> {
        self.get(name)
            .and_then(|v| v.elements().first())
            .and_then(Value::as_f64)
    }

    /// All elements as numbers; `None` when absent or when any element is not a number.
    pub fn f64s(&self, name: &str) -> Option<Vec<f64>> {
        self.get(name)?
            .elements()
            .iter()
            .map(Value::as_f64)
            .collect()
    }

    /// All elements as strings.
    pub fn strs(&self, name: &str) -> Option<Vec<String>> {
        self.get(name)?
            .elements()
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect()
    }
}

/// Parse the text of a parameter file.
pub fn parse(text: &str) -> Result<ParamFile, JcampError> {
    let mut file = ParamFile::default();
    for record in split_records(text) {
        if let Some(name) = record.label.strip_prefix('$') {
            let param = parse_param(name, &record.first_line, &record.body)?;
            file.params.insert(name.to_owned(), param);
        } else if record.label == "END" {
            break;
        } else {
            let mut value = record.first_line.clone();
            value.push_str(&record.body);
            file.header
                .insert(record.label.clone(), value.trim().to_owned());
        }
    }
    if file.params.is_empty() {
        return Err(JcampError::NoRecords);
    }
    Ok(file)
}

struct Record {
    label: String,
    first_line: String,
    body: String,
}

/// Records start at lines beginning with `##`; `$$` lines are comments.
/// Continuation lines are joined by deleting the newline only, because
/// ParaVision wraps mid-token inside strings (`<1H\n>`) and keeps the space
/// when it wraps at a space.
fn split_records(text: &str) -> Vec<Record> {
    let mut records: Vec<Record> = Vec::new();
    for raw_line in text.split('\n') {
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        if let Some(rest) = line.strip_prefix("##") {
            let (label, value) = match rest.split_once('=') {
                Some((l, v)) => (l.trim().to_owned(), v.to_owned()),
                None => (rest.trim().to_owned(), String::new()),
            };
            records.push(Record {
                label,
                first_line: value,
                body: String::new(),
            });
        } else if line.starts_with("$$") {
            continue;
        } else if let Some(current) = records.last_mut() {
            current.body.push_str(line);
        }
    }
    records
}

fn syntax(name: &str, problem: impl Into<String>) -> JcampError {
    JcampError::Syntax {
        name: name.to_owned(),
        problem: problem.into(),
    }
}

/// `( 5, 9 )` on the `=` line, if that is all the line holds.
fn size_prefix(first_line: &str) -> Option<Vec<usize>> {
    let inner = first_line.trim().strip_prefix('(')?.strip_suffix(')')?;
    inner
        .split(',')
        .map(|part| part.trim().parse::<usize>().ok())
        .collect()
}

fn parse_param(name: &str, first_line: &str, body: &str) -> Result<Param, JcampError> {
    let sizes = size_prefix(first_line);
    let has_body = !body.trim().is_empty();
    let (dims, text) = match sizes {
        // A size line followed by a body; or an empty array like `( 0 )`.
        Some(dims) if has_body || dims.contains(&0) => (Some(dims), body.to_owned()),
        // `(1, 1)` alone on the line is a scalar struct, not sizes.
        _ => (None, format!("{first_line}{body}")),
    };
    let items = Parser::new(name, &text).items_until_end()?;
    let Some(mut dims) = dims else {
        let value = match items.len() {
            0 => Value::Word(String::new()),
            1 => items
                .into_iter()
                .next()
                .unwrap_or(Value::Word(String::new())),
            _ => Value::List(items),
        };
        return Ok(Param {
            dims: Vec::new(),
            value,
        });
    };
    let all_text = !items.is_empty() && items.iter().all(|v| matches!(v, Value::Text(_)));
    let declared: usize = dims.iter().product();
    let without_last: usize = dims
        .split_last()
        .map_or(1, |(_, rest)| rest.iter().product());
    // The last size of a string array is the maximum string length, not a dimension.
    if all_text && items.len() == without_last {
        dims.pop();
    } else if items.len() != declared {
        return Err(syntax(
            name,
            format!(
                "declares {declared} elements ({dims:?}) but has {}",
                items.len()
            ),
        ));
    }
    Ok(Param {
        dims,
        value: Value::List(items),
    })
}

/// Recursive-descent reader over one value's text.
struct Parser<'a> {
    name: &'a str,
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

/// Nesting deeper than this is garbage, not ParaVision; refusing it keeps the
/// recursion bounded.
const MAX_DEPTH: usize = 64;
/// `@N*(...)` larger than this is garbage; refusing it bounds memory.
const MAX_EXPANDED: usize = 1 << 24;

impl<'a> Parser<'a> {
    fn new(name: &'a str, text: &str) -> Self {
        Parser {
            name,
            chars: text.chars().collect(),
            pos: 0,
            depth: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn err(&self, problem: impl Into<String>) -> JcampError {
        syntax(self.name, problem)
    }

    fn items_until_end(&mut self) -> Result<Vec<Value>, JcampError> {
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None => return Ok(items),
                Some(',') => self.pos += 1,
                Some(')') => return Err(self.err("unbalanced `)`")),
                Some(_) => self.item(&mut items)?,
            }
        }
    }

    /// One item, pushed onto `out` (RLE pushes several).
    fn item(&mut self, out: &mut Vec<Value>) -> Result<(), JcampError> {
        match self.peek() {
            Some('<') => {
                let text = self.string()?;
                out.push(Value::Text(text));
            }
            Some('(') => {
                let value = self.structure()?;
                out.push(value);
            }
            Some('@') => self.run(out)?,
            Some(_) => {
                let word = self.word();
                if word.is_empty() {
                    return Err(self.err(format!("unexpected `{}`", self.peek().unwrap_or(' '))));
                }
                out.push(Value::Word(word));
            }
            None => return Err(self.err("value ends early")),
        }
        if out.len() > MAX_EXPANDED {
            return Err(self.err("too many elements"));
        }
        Ok(())
    }

    fn word(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_whitespace() || matches!(c, '(' | ')' | ',' | '<') {
                break;
            }
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    /// `<...>`; `\<` and `\>` are escapes, except that a backslash right
    /// before the closing `>` of a string with no later `>` is content
    /// (`<\>` is a lone backslash).
    fn string(&mut self) -> Result<String, JcampError> {
        self.pos += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated `<string>`")),
                Some('\\') if matches!(self.chars.get(self.pos + 1), Some('<')) => {
                    text.push('<');
                    self.pos += 2;
                }
                Some('\\') if matches!(self.chars.get(self.pos + 1), Some('>')) => {
                    if self.backslash_closes() {
                        text.push('\\');
                        self.pos += 2;
                        return Ok(text);
                    }
                    text.push('>');
                    self.pos += 2;
                }
                Some('>') => {
                    self.pos += 1;
                    return Ok(text);
                }
                Some(c) => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// At `\>`: is the `>` the end of the string? Yes when nothing after it
    /// could close the string instead.
    fn backslash_closes(&self) -> bool {
        let after = self.pos + 2;
        let next_is_boundary = self
            .chars
            .get(after)
            .is_none_or(|c| c.is_whitespace() || matches!(c, ',' | ')'));
        if !next_is_boundary {
            return false;
        }
        // A later `>` before the next `<` would close this string instead.
        !self.chars[after..]
            .iter()
            .take_while(|c| **c != '<')
            .any(|c| *c == '>')
    }

    /// `(field, field, ...)`; a field with several items is a list.
    fn structure(&mut self) -> Result<Value, JcampError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.pos += 1;
        let mut fields = Vec::new();
        let mut current: Vec<Value> = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None => return Err(self.err("unterminated `(`")),
                Some(')') => {
                    self.pos += 1;
                    if !current.is_empty() || !fields.is_empty() {
                        fields.push(collapse(std::mem::take(&mut current)));
                    }
                    break;
                }
                Some(',') => {
                    self.pos += 1;
                    fields.push(collapse(std::mem::take(&mut current)));
                }
                Some(_) => self.item(&mut current)?,
            }
        }
        self.depth -= 1;
        Ok(Value::Struct(fields))
    }

    /// `@N*(items)`: N copies of the items.
    fn run(&mut self, out: &mut Vec<Value>) -> Result<(), JcampError> {
        self.pos += 1;
        let count_text = self.word_until('*');
        let count: usize = count_text
            .trim()
            .parse()
            .map_err(|_| self.err(format!("bad repeat count `@{count_text}`")))?;
        if self.peek() != Some('*') {
            return Err(self.err("`@N` without `*(`"));
        }
        self.pos += 1;
        self.skip_ws();
        if self.peek() != Some('(') {
            return Err(self.err("`@N*` without `(`"));
        }
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.pos += 1;
        let mut inner = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None => return Err(self.err("unterminated `@N*(`")),
                Some(')') => {
                    self.pos += 1;
                    break;
                }
                Some(',') => self.pos += 1,
                Some(_) => self.item(&mut inner)?,
            }
        }
        self.depth -= 1;
        if count.saturating_mul(inner.len()).saturating_add(out.len()) > MAX_EXPANDED {
            return Err(self.err("repeat expands to too many elements"));
        }
        for _ in 0..count {
            out.extend(inner.iter().cloned());
        }
        Ok(())
    }

    fn word_until(&mut self, stop: char) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == stop || c == '(' || c == '<' {
                break;
            }
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }
}

fn collapse(mut items: Vec<Value>) -> Value {
    match items.len() {
        0 => Value::Word(String::new()),
        1 => items.pop().unwrap_or(Value::Word(String::new())),
        _ => Value::List(items),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str, name: &str) -> Param {
        let file = parse(text).unwrap();
        file.params.get(name).cloned().unwrap()
    }

    #[test]
    fn scalars_arrays_and_header() {
        let text = "##TITLE=Parameter List\n##OWNER=nmrsu\n$$ comment\n##$VisuCoreDim=2\n\
            ##$VisuCoreSize=( 2 )\n80 64\n##$RG=101\n##$ACQ_operator=\n##END=\n##$After=1\n";
        let file = parse(text).unwrap();
        assert_eq!(file.header["OWNER"], "nmrsu");
        assert_eq!(file.f64("VisuCoreDim"), Some(2.0));
        assert_eq!(file.f64s("VisuCoreSize"), Some(vec![80.0, 64.0]));
        assert_eq!(file.f64("RG"), Some(101.0));
        assert_eq!(file.str("ACQ_operator"), Some(""));
        assert!(
            file.get("After").is_none(),
            "content after ##END= is ignored"
        );
    }

    #[test]
    fn wrapped_arrays_keep_their_separating_space() {
        let p = one(
            "##$X=( 5 )\n133.886716438374 133.886716438374 \n133.88 1 \n2\n",
            "X",
        );
        assert_eq!(p.value.elements().len(), 5);
    }

    #[test]
    fn string_arrays_drop_the_length_dimension() {
        let p = one("##$VisuCoreUnits=( 2, 65 )\n<mm> <mm>\n", "VisuCoreUnits");
        assert_eq!(p.dims, vec![2]);
        let p = one("##$Scalar=( 65 )\n<ParaVision>\n", "Scalar");
        assert_eq!(p.value.as_str(), Some("ParaVision"));
        let p = one("##$E=( 2, 7 )\n1 2 3 4 5 6 7 1 2 3 4 5 6 7\n", "E");
        assert_eq!(p.dims, vec![2, 7]);
    }

    #[test]
    fn strings_are_opaque_and_wraps_do_not_invent_spaces() {
        let text = "##$A=( 65 )\n<HpMode,On##$EndBis,04,FA#>\n##$B=( 65 )\n<1H\n>\n\
            ##$C=( 65 )\n<gauss\n.exc>\n##$D=( 65 )\n<\\>\n##$E=( 65 )\n<a \\<b\\> c>\n";
        let file = parse(text).unwrap();
        assert_eq!(file.str("A"), Some("HpMode,On##$EndBis,04,FA#"));
        assert_eq!(file.str("B"), Some("1H"));
        assert_eq!(file.str("C"), Some("gauss.exc"));
        assert_eq!(file.str("D"), Some("\\"));
        assert_eq!(file.str("E"), Some("a <b> c"));
    }

    #[test]
    fn size_prefix_spacing_and_padded_enum_tuples() {
        for prefix in ["(2)", "( 2 )", "(   2   )"] {
            let p = one(&format!("##$X={prefix}\n1 2\n"), "X");
            assert_eq!(p.dims, vec![2]);
        }
        let p = one("##$T=( <A> , <B> )\n", "T");
        let fields = p.value.fields().unwrap();
        assert_eq!(fields[1].as_str(), Some("B"));
    }

    #[test]
    fn structs_single_and_multi_tuple_with_nested_lists() {
        let p = one(
            "##$VisuFGOrderDesc=( 2 )\n(11, <FG_ECHO>, <>, 0, 1) (5, <FG_SLICE>, <>, 1, \n2)\n",
            "VisuFGOrderDesc",
        );
        assert_eq!(p.value.elements().len(), 2);
        let second = p.value.elements()[1].fields().unwrap();
        assert_eq!(second[1].as_str(), Some("FG_SLICE"));
        assert_eq!(second[4].as_f64(), Some(2.0));
        let p = one("##$VisuCoreSlicePacksDef=(1, 1)\n", "VisuCoreSlicePacksDef");
        assert_eq!(p.value.fields().unwrap().len(), 2);
        let p = one(
            "##$G=(((1 0 0 0 1 0 0 0 1, 0 0 0), 40 40 1, <+R;read> <+P;phase>), 1, No)\n",
            "G",
        );
        let outer = p.value.fields().unwrap();
        let inner = outer[0].fields().unwrap();
        assert_eq!(inner[1].elements().len(), 3);
    }

    #[test]
    fn run_length_encoding_whole_mid_nested_and_strings() {
        let p = one("##$S=( 55 )\n@55*(9.17)\n", "S");
        assert_eq!(p.value.elements().len(), 55);
        let p = one("##$O=( 6, 3 )\n@15*(0) -0.231 0.0447 1\n", "O");
        assert_eq!(p.value.elements()[15].as_f64(), Some(-0.231));
        let p = one("##$T=( 2, 65 )\n@2*(<x, y>)\n", "T");
        assert_eq!(p.value.elements()[1].as_str(), Some("x, y"));
        let p = one("##$N=(0 100 100 @21*(0))\n", "N");
        assert_eq!(p.value.fields().unwrap()[0].elements().len(), 24);
        let p = one("##$M=( 4 )\n@2*(@2*(1))\n", "M");
        assert_eq!(p.value.elements().len(), 4);
    }

    #[test]
    fn frame_type_scalar_and_array_forms_read_the_same() {
        let a = parse("##$F=MAGNITUDE_IMAGE\n").unwrap();
        let b = parse("##$F=( 1 )\nMAGNITUDE_IMAGE\n").unwrap();
        assert_eq!(a.str("F"), b.str("F"));
    }

    #[test]
    fn count_mismatch_and_garbage_are_errors() {
        assert!(matches!(
            parse("##$X=( 3 )\n1 2\n"),
            Err(JcampError::Syntax { .. })
        ));
        assert!(matches!(
            parse("\u{0}\u{1}binary junk"),
            Err(JcampError::NoRecords)
        ));
        assert!(parse("##$X=( 2 )\n<unterminated\n").is_err());
        assert!(parse("##$X=(1, (2\n").is_err());
        assert!(parse("##$X=@99999999999*(1 2 3)\n").is_err());
    }

    #[test]
    fn utf8_strings_survive() {
        let p = one("##$U=( 65 )\n<σ of T2 \nRelaxation Time>\n", "U");
        assert_eq!(p.value.as_str(), Some("σ of T2 Relaxation Time"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_garbage(text in "(##\\$?[A-Za-z_]{0,6}=?|[ ()<>@*,\\\\$#0-9a-z.\\n-]){0,40}") {
            let _ = parse(&text);
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }
    }
}
