//! A JCAMP-DX parameter file in ParaVision's style, written by test code:
//! the one writer behind the synthetic ParaVision studies of the
//! paravision tests and the RARE-VTR scans of the maps tests.

use std::fmt::Write as _;
use std::path::Path;

/// A JCAMP-DX parameter file in ParaVision's style: header, `$$` comments,
/// arrays wrapped before column 78 at a space, string arrays `( n, 65 )`.
pub struct Jcamp {
    text: String,
    version_title: String,
}

impl Jcamp {
    pub fn new(title: &str) -> Jcamp {
        let mut text = String::new();
        writeln!(text, "##TITLE={title}").unwrap();
        text.push_str("##JCAMPDX=4.24\n##DATATYPE=Parameter Values\n");
        text.push_str("##ORIGIN=Bruker BioSpin MRI GmbH\n##OWNER=nmrsu\n");
        text.push_str("$$ Thu Jul 25 09:02:12 2024 CEST (UT+2h)  nmrsu\n");
        Jcamp {
            text,
            version_title: title.to_owned(),
        }
    }

    pub fn raw(mut self, name: &str, value: &str) -> Self {
        writeln!(self.text, "##${name}={value}").unwrap();
        self
    }

    pub fn comment(mut self, text: &str) -> Self {
        writeln!(self.text, "$$ @vis= {text}").unwrap();
        self
    }

    pub fn string(mut self, name: &str, value: &str) -> Self {
        writeln!(self.text, "##${name}=( 65 )\n<{value}>").unwrap();
        self
    }

    pub fn strings(mut self, name: &str, values: &[&str]) -> Self {
        let body: Vec<String> = values.iter().map(|v| format!("<{v}>")).collect();
        writeln!(self.text, "##${name}=( {}, 65 )", values.len()).unwrap();
        self.text.push_str(&wrap(&body));
        self
    }

    pub fn array(mut self, name: &str, dims: &[usize], tokens: &[String]) -> Self {
        let dims: Vec<String> = dims.iter().map(usize::to_string).collect();
        writeln!(self.text, "##${name}=( {} )", dims.join(", ")).unwrap();
        self.text.push_str(&wrap(tokens));
        self
    }

    pub fn numbers(self, name: &str, dims: &[usize], values: &[f64]) -> Self {
        let tokens: Vec<String> = values.iter().map(|v| format!("{v}")).collect();
        self.array(name, dims, &tokens)
    }

    /// PV360 style: `@N*(v)` runs for repeated values.
    pub fn numbers_rle(mut self, name: &str, values: &[f64]) -> Self {
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < values.len() {
            let mut j = i;
            while j < values.len() && values[j] == values[i] {
                j += 1;
            }
            if j - i > 1 {
                tokens.push(format!("@{}*({})", j - i, values[i]));
            } else {
                tokens.push(format!("{}", values[i]));
            }
            i = j;
        }
        writeln!(self.text, "##${name}=( {} )", values.len()).unwrap();
        self.text.push_str(&wrap(&tokens));
        self
    }

    pub fn finish(mut self, dir: &Path, file: &str) {
        self.text.push_str("##END=\n");
        if self.version_title.contains("ParaVision") {
            self.text
                .push_str("$$ File finished by PARX at 2024-07-25 09:02:12.259 +0200\n");
        }
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(file), self.text).unwrap();
    }
}

/// Tokens joined by spaces, wrapped before column 78 after a space.
fn wrap(tokens: &[String]) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for token in tokens {
        if !line.is_empty() && line.len() + token.len() + 1 > 78 {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        line.push_str(token);
        line.push(' ');
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}
