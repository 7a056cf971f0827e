//! The one place that writes to the terminal, modelled on uv's `printer.rs`.
//!
//! Data (tables, JSON, URIs, the results a script reads) goes to stdout;
//! status lines, warnings and progress go to stderr, so `xnatkit ls | sort`
//! or `--json > out.json` never mixes the two. `--quiet` drops status and
//! progress but never data, warnings or errors. Progress bars are drawn only
//! when stderr is a terminal. Everything else in the workspace reports
//! through return values, observers or `tracing`; clippy's `print_stdout`
//! and `print_stderr` lints hold that line and are allowed only here.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};

use anyhow::Context;
use indicatif::ProgressDrawTarget;

/// How much the binary says on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Printer {
    /// Status lines and progress bars (bars only on a terminal).
    Default,
    /// `--quiet`: data, warnings and errors only.
    Quiet,
}

impl Printer {
    pub fn new(quiet: bool) -> Self {
        if quiet { Self::Quiet } else { Self::Default }
    }

    /// Whether status lines are shown.
    pub fn shows_status(self) -> bool {
        self == Self::Default
    }

    /// Whether progress bars are drawn: not under `--quiet`, and only when
    /// stderr is a terminal (a log file must not fill with redraws).
    pub fn shows_progress(self) -> bool {
        self.shows_status() && std::io::stderr().is_terminal()
    }

    /// Where progress bars draw (see [`Self::shows_progress`]).
    pub fn progress_target(self) -> ProgressDrawTarget {
        if self.shows_progress() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        }
    }

    /// One line of data on stdout.
    pub fn data(self, line: impl std::fmt::Display) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").or_else(ignore_broken_pipe)
    }

    /// A value as pretty JSON on stdout.
    pub fn json<T: serde::Serialize>(self, value: &T) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(value).context("cannot render JSON")?;
        self.data(text)
    }

    /// Rows as aligned columns (header first) on stdout.
    pub fn table(self, headers: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        for line in aligned(headers, rows) {
            writeln!(out, "{line}").or_else(ignore_broken_pipe)?;
        }
        Ok(())
    }

    /// A status line on stderr (what is happening, what was done); dropped
    /// under `--quiet`.
    pub fn status(self, line: impl std::fmt::Display) {
        if self.shows_status() {
            eprintln!("{line}");
        }
    }

    /// A line on stderr that `--quiet` keeps: warnings, items that failed,
    /// what to do next after an interruption.
    pub fn warn(self, line: impl std::fmt::Display) {
        eprintln!("{line}");
    }

    /// The error that ends the command, outermost context first.
    pub fn error(self, err: &anyhow::Error) {
        eprintln!("error: {err:#}");
    }

    /// A question on stderr with no line break, for the answer to follow.
    pub fn ask(self, question: &str) {
        eprint!("{question}");
        let _ = std::io::stderr().flush();
    }
}

/// `xnatkit ls | head` must not fail with "broken pipe".
fn ignore_broken_pipe(err: std::io::Error) -> anyhow::Result<()> {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(err).context("cannot write to stdout")
    }
}

/// The lines of a table: each column as wide as its widest cell, two spaces
/// between columns, no padding after the last.
fn aligned(headers: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            text.push_str(cell);
            if i != last {
                let width = widths.get(i).copied().unwrap_or(0);
                let pad = width.saturating_sub(cell.chars().count());
                text.push_str(&" ".repeat(pad + 2));
            }
        }
        text
    };
    std::iter::once(line(headers.to_vec()))
        .chain(
            rows.iter()
                .map(|r| line(r.iter().map(String::as_str).collect())),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::aligned;

    #[test]
    fn columns_align_on_the_widest_cell_without_trailing_spaces() {
        let rows = vec![
            vec!["P1".to_owned(), "First project".to_owned()],
            vec!["PROJECT_TWO".to_owned(), "x".to_owned()],
        ];
        assert_eq!(
            aligned(&["PROJECT", "NAME"], &rows),
            [
                "PROJECT      NAME",
                "P1           First project",
                "PROJECT_TWO  x",
            ]
        );
    }
}
