//! HTML escaping, evcxr output blocks, and [`HtmlTable`]: a small table builder that renders as
//! HTML (notebooks) and as aligned plain text (terminals, logs).

use std::fmt::Write as _;
use std::io::Write as _;

/// Escape text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The evcxr wire format for rich output: one `EVCXR_BEGIN_CONTENT <mime>` block per MIME type.
pub fn evcxr_blocks(blocks: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (mime, content) in blocks {
        let _ = write!(
            out,
            "EVCXR_BEGIN_CONTENT {mime}\n{content}\nEVCXR_END_CONTENT\n"
        );
    }
    out
}

/// Print evcxr blocks to stdout in one write, so that output from several threads never
/// interleaves inside a block.
pub fn emit_evcxr(blocks: &[(&str, &str)]) {
    let s = evcxr_blocks(blocks);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}

/// Horizontal alignment of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// One table cell: text, an optional background colour (`#rrggbb`) and weight.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableCell {
    pub text: String,
    pub background: Option<String>,
    pub bold: bool,
}

impl TableCell {
    pub fn new(text: impl Into<String>) -> Self {
        TableCell {
            text: text.into(),
            ..Default::default()
        }
    }
    pub fn background(mut self, hex: impl Into<String>) -> Self {
        self.background = Some(hex.into());
        self
    }
    pub fn bold(mut self) -> Self {
        self.bold = true;
        self
    }
}

impl From<String> for TableCell {
    fn from(s: String) -> Self {
        TableCell::new(s)
    }
}

impl From<&str> for TableCell {
    fn from(s: &str) -> Self {
        TableCell::new(s)
    }
}

/// A table with a caption, header rows, body rows and a footer note.
///
/// Columns whose cells all read as numbers are right-aligned unless set otherwise. The first
/// column can be a row header (`<th scope="row">`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HtmlTable {
    caption: Option<String>,
    headers: Vec<Vec<String>>,
    rows: Vec<Vec<TableCell>>,
    /// Rows drawn after a rule (totals).
    footer_rows: Vec<Vec<TableCell>>,
    align: Vec<Option<Align>>,
    row_headers: bool,
    note: Option<String>,
}

impl HtmlTable {
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        HtmlTable {
            headers: vec![headers.into_iter().map(Into::into).collect()],
            ..Default::default()
        }
    }
    pub fn caption(mut self, caption: impl Into<String>) -> Self {
        self.caption = Some(caption.into());
        self
    }
    /// A further header row (e.g. column types), shown under the first in a lighter style.
    pub fn sub_header<S: Into<String>>(mut self, cells: impl IntoIterator<Item = S>) -> Self {
        self.headers
            .push(cells.into_iter().map(Into::into).collect());
        self
    }
    /// Render the first column as row headers.
    pub fn row_headers(mut self, yes: bool) -> Self {
        self.row_headers = yes;
        self
    }
    pub fn align(mut self, column: usize, align: Align) -> Self {
        if self.align.len() <= column {
            self.align.resize(column + 1, None);
        }
        self.align[column] = Some(align);
        self
    }
    /// A note under the table (plain text).
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
    pub fn push_row<C: Into<TableCell>>(&mut self, cells: impl IntoIterator<Item = C>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }
    /// A row after a rule, for totals.
    pub fn push_footer_row<C: Into<TableCell>>(&mut self, cells: impl IntoIterator<Item = C>) {
        self.footer_rows
            .push(cells.into_iter().map(Into::into).collect());
    }
    pub fn num_rows(&self) -> usize {
        self.rows.len()
    }

    fn width(&self) -> usize {
        self.headers
            .iter()
            .map(Vec::len)
            .chain(self.rows.iter().chain(&self.footer_rows).map(Vec::len))
            .max()
            .unwrap_or(0)
    }

    fn column_align(&self, c: usize) -> Align {
        if let Some(Some(a)) = self.align.get(c) {
            return *a;
        }
        if c == 0 && self.row_headers {
            return Align::Left;
        }
        let mut any = false;
        for row in self.rows.iter().chain(&self.footer_rows) {
            let Some(cell) = row.get(c) else { continue };
            let t = cell.text.trim();
            if t.is_empty() || t == "·" || t == "null" || t == "…" {
                continue;
            }
            any = true;
            if !looks_numeric(t) {
                return Align::Left;
            }
        }
        if any {
            Align::Right
        } else {
            Align::Left
        }
    }

    /// The table as an HTML fragment (`<table>`), every text escaped.
    pub fn to_html(&self) -> String {
        let n = self.width();
        let aligns: Vec<Align> = (0..n).map(|c| self.column_align(c)).collect();
        let mut h = String::new();
        h.push_str("<div style=\"overflow-x:auto\"><table class=\"heterolora\" style=\"border-collapse:collapse;font-variant-numeric:tabular-nums\">\n");
        if let Some(c) = &self.caption {
            let _ = writeln!(
                h,
                "<caption style=\"text-align:left;font-weight:bold;padding:4px 0\">{}</caption>",
                escape(c)
            );
        }
        h.push_str("<thead>\n");
        for (i, row) in self.headers.iter().enumerate() {
            h.push_str("<tr>");
            for (c, cell) in row.iter().enumerate() {
                let align = if aligns.get(c) == Some(&Align::Right) {
                    "right"
                } else {
                    "left"
                };
                if i == 0 {
                    let _ = write!(h, "<th style=\"text-align:{align};border-bottom:1px solid #999;padding:2px 8px\">{}</th>", escape(cell));
                } else {
                    let _ = write!(h, "<td style=\"text-align:{align};color:#777;font-size:smaller;padding:0 8px\">{}</td>", escape(cell));
                }
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</thead>\n<tbody>\n");
        let write_row = |h: &mut String, row: &[TableCell], rule: bool| {
            h.push_str("<tr>");
            for (c, cell) in row.iter().enumerate() {
                let align = if aligns.get(c) == Some(&Align::Right) {
                    "right"
                } else {
                    "left"
                };
                let mut style = format!("text-align:{align};padding:2px 8px");
                if rule {
                    style.push_str(";border-top:1px solid #999");
                }
                if let Some(bg) = &cell.background {
                    let _ = write!(
                        style,
                        ";background:{};color:{}",
                        escape(bg),
                        text_colour(bg)
                    );
                }
                if cell.bold {
                    style.push_str(";font-weight:bold");
                }
                let tag = if c == 0 && self.row_headers {
                    "th scope=\"row\""
                } else {
                    "td"
                };
                let close = if c == 0 && self.row_headers {
                    "th"
                } else {
                    "td"
                };
                let _ = write!(
                    h,
                    "<{tag} style=\"{style}\">{}</{close}>",
                    escape(&cell.text)
                );
            }
            h.push_str("</tr>\n");
        };
        for row in &self.rows {
            write_row(&mut h, row, false);
        }
        for (i, row) in self.footer_rows.iter().enumerate() {
            write_row(&mut h, row, i == 0);
        }
        h.push_str("</tbody>\n</table>");
        if let Some(note) = &self.note {
            let _ = write!(
                h,
                "\n<div style=\"color:#777;font-size:smaller\">{}</div>",
                escape(note)
            );
        }
        h.push_str("</div>");
        h
    }

    /// The table as aligned plain text.
    pub fn to_text(&self) -> String {
        let n = self.width();
        let aligns: Vec<Align> = (0..n).map(|c| self.column_align(c)).collect();
        let all_rows: Vec<Vec<&str>> = self
            .headers
            .iter()
            .map(|r| r.iter().map(String::as_str).collect())
            .chain(
                self.rows
                    .iter()
                    .chain(&self.footer_rows)
                    .map(|r| r.iter().map(|c| c.text.as_str()).collect()),
            )
            .collect();
        let mut widths = vec![0usize; n];
        for row in &all_rows {
            for (c, s) in row.iter().enumerate() {
                widths[c] = widths[c].max(s.chars().count());
            }
        }
        let line = |row: &[&str]| {
            let mut s = String::new();
            for (c, w) in widths.iter().enumerate() {
                let cell = row.get(c).copied().unwrap_or("");
                let pad = w - cell.chars().count();
                if c > 0 {
                    s.push_str("  ");
                }
                match aligns[c] {
                    Align::Left => {
                        s.push_str(cell);
                        s.push_str(&" ".repeat(pad));
                    }
                    Align::Right => {
                        s.push_str(&" ".repeat(pad));
                        s.push_str(cell);
                    }
                }
            }
            s.trim_end().to_string()
        };
        let total_w = widths.iter().sum::<usize>() + 2 * n.saturating_sub(1);
        let rule = "-".repeat(total_w);
        let mut out = String::new();
        if let Some(c) = &self.caption {
            out.push_str(c);
            out.push('\n');
        }
        let nh = self.headers.len();
        for row in &all_rows[..nh] {
            out.push_str(&line(row));
            out.push('\n');
        }
        out.push_str(&rule);
        out.push('\n');
        for row in &all_rows[nh..nh + self.rows.len()] {
            out.push_str(&line(row));
            out.push('\n');
        }
        if !self.footer_rows.is_empty() {
            out.push_str(&rule);
            out.push('\n');
            for row in &all_rows[nh + self.rows.len()..] {
                out.push_str(&line(row));
                out.push('\n');
            }
        }
        if let Some(note) = &self.note {
            out.push_str(note);
            out.push('\n');
        }
        out
    }

    /// Show in evcxr as HTML (with the plain text for text-only front ends).
    pub fn evcxr_display(&self) {
        emit_evcxr(&[
            ("text/plain", &self.to_text()),
            ("text/html", &self.to_html()),
        ]);
    }
}

impl std::fmt::Display for HtmlTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// Numbers as this crate prints them: `12`, `-0.5`, `1.5e-4`, `73.7k`, `1.2M`, `73,728`, `85%`.
fn looks_numeric(t: &str) -> bool {
    let t = t.trim_end_matches(['k', 'M', '%']).replace(',', "");
    t.parse::<f64>().is_ok()
}

/// Black or white text for a `#rrggbb` background.
fn text_colour(bg: &str) -> &'static str {
    let hex = bg.trim_start_matches('#');
    if hex.len() != 6 {
        return "inherit";
    }
    let p = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(255) as f64;
    let l = 0.2126 * p(0) + 0.7152 * p(2) + 0.0722 * p(4);
    if l < 140.0 {
        "#fff"
    } else {
        "#000"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_html_cares_about() {
        assert_eq!(
            escape(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn table_renders_escaped_cells_and_aligns_numbers() {
        let mut t = HtmlTable::new(["name", "acc"])
            .caption("runs <1>")
            .row_headers(true);
        t.push_row(["<script>", "0.85"]);
        t.push_row(["b&c", "0.9"]);
        t.push_footer_row([
            TableCell::new("mean").bold(),
            TableCell::new("0.875").background("#08306b"),
        ]);
        let h = t.to_html();
        assert!(h.contains("<caption"));
        assert!(h.contains("runs &lt;1&gt;"));
        assert!(h.contains(">&lt;script&gt;</th>"));
        assert!(!h.contains("<script>"));
        assert!(h.contains("b&amp;c"));
        assert_eq!(h.matches("<tr>").count(), 4);
        assert_eq!(h.matches("<th scope=\"row\"").count(), 3);
        assert!(
            h.contains("text-align:right;padding:2px 8px\">0.85</td>"),
            "{h}"
        );
        assert!(h.contains("background:#08306b;color:#fff"));
        assert!(h.contains("border-top:1px solid #999"));
        let text = t.to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "runs <1>");
        assert_eq!(lines[1], "name        acc");
        assert_eq!(lines[3], "<script>   0.85");
        assert_eq!(lines[6], "mean      0.875");
        assert_eq!(lines.len(), 7);
    }

    #[test]
    fn evcxr_blocks_have_the_wire_format() {
        let s = evcxr_blocks(&[("text/html", "<b>x</b>")]);
        assert_eq!(
            s,
            "EVCXR_BEGIN_CONTENT text/html\n<b>x</b>\nEVCXR_END_CONTENT\n"
        );
        assert!(looks_numeric("73.7k") && looks_numeric("73,728") && !looks_numeric("lora"));
        assert_eq!(text_colour("#ffffff"), "#000");
    }
}
