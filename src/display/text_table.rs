//! Plain-text tables for a terminal: aligned columns that fit a given width.
//!
//! A listing nobody can read is no listing: rather than wrapping, the table first shrinks the
//! columns that may be shortened (long names, truncated with `…`), then leaves out optional
//! columns from the right, and reports which ones it left out so the caller can say how to get
//! them back.

use super::html::Align;

/// One column: header, cells (one per row) and how it may give way to a narrow terminal.
#[derive(Debug, Clone, PartialEq)]
pub struct TextColumn {
    pub header: String,
    pub cells: Vec<String>,
    pub align: Align,
    /// Never wider than this (cells are truncated with `…`).
    pub max_width: usize,
    /// May be shortened down to this width when the table is too wide.
    pub min_width: usize,
    /// May be left out when the table is too wide (the rightmost optional column goes first).
    pub optional: bool,
    /// Cut long cells in the middle (`study-mrpc…seed13`) rather than at the end: for names
    /// whose ends tell runs apart.
    pub elide_middle: bool,
}

impl TextColumn {
    /// A left-aligned column that is neither shortened (up to 48 characters) nor left out.
    pub fn new(header: impl Into<String>, cells: Vec<String>) -> Self {
        TextColumn {
            header: header.into(),
            cells,
            align: Align::Left,
            max_width: 48,
            min_width: usize::MAX,
            optional: false,
            elide_middle: false,
        }
    }
    pub fn right(mut self) -> Self {
        self.align = Align::Right;
        self
    }
    pub fn max_width(mut self, w: usize) -> Self {
        self.max_width = w.max(1);
        self
    }
    /// May be shortened to `w` characters when the table does not fit.
    pub fn shrink_to(mut self, w: usize) -> Self {
        self.min_width = w.max(1);
        self
    }
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
    pub fn elide_middle(mut self) -> Self {
        self.elide_middle = true;
        self
    }
    /// The narrowest this column gets: its minimum, but never narrower than its header.
    fn floor(&self) -> usize {
        self.min_width.max(self.header.chars().count())
    }
    fn natural_width(&self) -> usize {
        self.cells
            .iter()
            .map(|c| c.chars().count())
            .chain(std::iter::once(self.header.chars().count()))
            .max()
            .unwrap_or(0)
            .min(self.max_width)
    }
}

/// The columns of a table; [`TextTable::render`] lays them out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TextTable {
    pub columns: Vec<TextColumn>,
}

/// A rendered table and the headers of the optional columns left out to fit.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedTable {
    pub text: String,
    pub left_out: Vec<String>,
}

const GAP: &str = "  ";

/// `s` cut to `width` characters with `…` in the middle where something was cut (the end when
/// `width` is too small for both ends to mean anything).
pub fn truncate_middle(s: &str, width: usize) -> String {
    let s = s.replace(['\n', '\r', '\t'], " ");
    let n = s.chars().count();
    if n <= width || width < 7 {
        return truncate(&s, width);
    }
    let tail = (width - 1) / 2;
    let head = width - 1 - tail;
    let mut out: String = s.chars().take(head).collect();
    out.push('…');
    out.extend(s.chars().skip(n - tail));
    out
}

/// `s` cut to `width` characters, the last one `…` when something was cut; line breaks become
/// spaces so a cell stays on its line.
pub fn truncate(s: &str, width: usize) -> String {
    let s = s.replace(['\n', '\r', '\t'], " ");
    if s.chars().count() <= width {
        return s;
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}

impl TextTable {
    pub fn new(columns: Vec<TextColumn>) -> Self {
        TextTable { columns }
    }

    /// The table in at most `width` characters per line when it can be made to fit (`None`: no
    /// limit): shortens the shrinkable columns, widest first, then leaves out optional columns
    /// from the right.
    pub fn render(&self, width: Option<usize>) -> RenderedTable {
        let mut keep: Vec<bool> = vec![true; self.columns.len()];
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.natural_width()).collect();
        let total = |keep: &[bool], widths: &[usize]| -> usize {
            let n = keep.iter().filter(|k| **k).count();
            let w: usize = widths
                .iter()
                .zip(keep)
                .filter(|(_, k)| **k)
                .map(|(w, _)| *w)
                .sum();
            w + GAP.len() * n.saturating_sub(1)
        };
        if let Some(limit) = width {
            loop {
                let over = total(&keep, &widths).saturating_sub(limit);
                if over == 0 {
                    break;
                }
                let shrinkable = (0..self.columns.len())
                    .filter(|&i| keep[i] && widths[i] > self.columns[i].floor())
                    .max_by_key(|&i| widths[i] - self.columns[i].floor());
                if let Some(i) = shrinkable {
                    let room = widths[i] - self.columns[i].floor();
                    widths[i] -= room.min(over);
                    continue;
                }
                match (0..self.columns.len())
                    .rev()
                    .find(|&i| keep[i] && self.columns[i].optional)
                {
                    Some(i) => keep[i] = false,
                    None => break,
                }
            }
        }
        let shown: Vec<usize> = (0..self.columns.len()).filter(|&i| keep[i]).collect();
        let rows = self
            .columns
            .iter()
            .map(|c| c.cells.len())
            .max()
            .unwrap_or(0);
        let mut text = String::new();
        let mut line = |cells: Vec<String>| {
            let mut parts = Vec::with_capacity(shown.len());
            for (k, &i) in shown.iter().enumerate() {
                let cell = if self.columns[i].elide_middle {
                    truncate_middle(&cells[k], widths[i])
                } else {
                    truncate(&cells[k], widths[i])
                };
                let last = k + 1 == shown.len();
                parts.push(match self.columns[i].align {
                    Align::Right => format!("{cell:>w$}", w = widths[i]),
                    Align::Left if last => cell,
                    Align::Left => format!("{cell:<w$}", w = widths[i]),
                });
            }
            text.push_str(parts.join(GAP).trim_end());
            text.push('\n');
        };
        line(
            shown
                .iter()
                .map(|&i| self.columns[i].header.clone())
                .collect(),
        );
        for r in 0..rows {
            line(
                shown
                    .iter()
                    .map(|&i| self.columns[i].cells.get(r).cloned().unwrap_or_default())
                    .collect(),
            );
        }
        let left_out = (0..self.columns.len())
            .filter(|&i| !keep[i])
            .map(|i| self.columns[i].header.clone())
            .collect();
        RenderedTable { text, left_out }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> TextTable {
        TextTable::new(vec![
            TextColumn::new(
                "name",
                vec!["a-very-long-run-name-indeed".into(), "b".into()],
            )
            .shrink_to(8),
            TextColumn::new("acc", vec!["0.9".into(), "0.75".into()]).right(),
            TextColumn::new("loss", vec!["0.1".into(), String::new()])
                .right()
                .optional(),
        ])
    }

    #[test]
    fn fits_by_shrinking_then_leaving_out() {
        let full = table().render(None);
        let header = format!("{:<27}  {:>4}  {:>4}\n", "name", "acc", "loss");
        assert!(full.text.starts_with(&header), "{}", full.text);
        assert!(full.left_out.is_empty());

        let narrow = table().render(Some(20));
        assert!(
            narrow.text.lines().all(|l| l.chars().count() <= 20),
            "{}",
            narrow.text
        );
        assert!(narrow.text.contains("a-very-…"), "{}", narrow.text);
        assert!(narrow.left_out.is_empty());

        let tiny = table().render(Some(14));
        assert_eq!(tiny.left_out, vec!["loss".to_string()]);
        assert!(
            tiny.text.lines().all(|l| l.chars().count() <= 14),
            "{}",
            tiny.text
        );
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(truncate("a\nb", 4), "a b");
        assert_eq!(
            truncate_middle("study-mrpc-static-seed13", 13),
            "study-…seed13"
        );
        assert_eq!(truncate_middle("short", 13), "short");
    }
}
