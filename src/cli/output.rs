//! `--format table|json|csv`: how a command prints its result.
//!
//! A table is for people; JSON and CSV are for programs, so in those formats stdout carries
//! exactly one document (one JSON value, or one CSV table with a header) and every note
//! ("wrote ...", "tracked run ...") goes to stderr. Values are raw there: full run ids, full
//! precision, epoch milliseconds, nothing truncated.

use clap::ValueEnum;
use std::io::Write;

/// The output format of a command that prints results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for a terminal.
    #[default]
    Table,
    /// One JSON document.
    Json,
    /// Comma-separated values with a header row.
    Csv,
}

impl OutputFormat {
    /// Whether the output is for a program (notes then belong on stderr).
    pub fn is_machine(self) -> bool {
        !matches!(self, OutputFormat::Table)
    }
}

/// Writes `text` to stdout in one go. A closed pipe (`... | head`) is not an error: whatever
/// the command had to write to files is written already.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// `value` as pretty JSON with a final newline.
pub fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    print_stdout(&(serde_json::to_string_pretty(value)? + "\n"))
}

/// A number as JSON; NaN and infinities (which JSON cannot hold) become null.
pub fn json_number(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

/// One CSV field, quoted when it holds a comma, a quote, a line break or edge spaces (RFC 4180).
pub fn csv_field(s: &str) -> String {
    let needs_quotes = s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ');
    if needs_quotes {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A CSV document: the header, then one line per row.
pub fn csv_document<S: AsRef<str>>(header: &[S], rows: &[Vec<String>]) -> String {
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        cells.map(csv_field).collect::<Vec<_>>().join(",") + "\n"
    };
    let mut out = line(&mut header.iter().map(|h| h.as_ref()));
    for r in rows {
        out.push_str(&line(&mut r.iter().map(String::as_str)));
    }
    out
}

/// A float for CSV: the shortest text that reads back as the same number (a missing value is
/// an empty field, written by the caller).
pub fn csv_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_what_needs_it() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        let doc = csv_document(&["k", "v"], &[vec!["r".into(), "8".into()]]);
        assert_eq!(doc, "k,v\nr,8\n");
    }

    #[test]
    fn json_numbers_never_break_the_document() {
        assert_eq!(json_number(f64::NAN), serde_json::Value::Null);
        assert_eq!(json_number(0.5), serde_json::json!(0.5));
        assert_eq!(csv_float(0.1), "0.1");
        assert_eq!(csv_float(f64::INFINITY), "inf");
    }
}
