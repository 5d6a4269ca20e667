//! Polars `DataFrame`s as HTML tables in evcxr: an extension trait ([`DataFrameDisplay`]) and a
//! wrapper ([`Table`]) whose inherent `evcxr_display` needs no import.

use super::html::{emit_evcxr, HtmlTable};
use polars::prelude::{AnyValue, DataFrame};

/// Rows shown before the middle of a long frame is elided (half from the head, half from the tail).
pub const DEFAULT_MAX_ROWS: usize = 20;

/// A cell as text: strings without quotes, floats to 6 significant digits, null as `null`.
pub fn format_value(v: &AnyValue) -> String {
    match v {
        AnyValue::Null => "null".to_string(),
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        AnyValue::Float64(f) => format_float(*f),
        AnyValue::Float32(f) => format_float(*f as f64),
        AnyValue::Boolean(b) => b.to_string(),
        other => other.to_string(),
    }
}

fn format_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return "0".into();
    }
    let a = f.abs();
    if !(1e-4..1e9).contains(&a) {
        return format!("{f:.5e}")
            .split_once('e')
            .map(|(m, e)| {
                let m = m.trim_end_matches('0').trim_end_matches('.');
                format!("{m}e{e}")
            })
            .unwrap_or_default();
    }
    let digits = (5 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{f:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The frame as an [`HtmlTable`]: column names, a row of types, at most `max_rows` rows (head and
/// tail, with an elision row between), and its shape as caption.
pub fn frame_table(df: &DataFrame, max_rows: usize) -> HtmlTable {
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let dtypes: Vec<String> = df.columns().iter().map(|c| c.dtype().to_string()).collect();
    let (h, w) = df.shape();
    let mut t = HtmlTable::new(names)
        .sub_header(dtypes)
        .caption(format!("shape: ({h}, {w})"));
    let max_rows = max_rows.max(2);
    let row = |i: usize| -> Vec<String> {
        df.columns()
            .iter()
            .map(|c| c.get(i).map(|v| format_value(&v)).unwrap_or_default())
            .collect()
    };
    if h <= max_rows {
        for i in 0..h {
            t.push_row(row(i));
        }
    } else {
        let head = max_rows.div_ceil(2);
        let tail = max_rows - head;
        for i in 0..head {
            t.push_row(row(i));
        }
        t.push_row(vec!["…".to_string(); w]);
        for i in h - tail..h {
            t.push_row(row(i));
        }
        t = t.note(format!("{} of {h} rows shown", max_rows));
    }
    t
}

/// Rich display for polars frames; `use heterolora::display::DataFrameDisplay;` in a notebook.
pub trait DataFrameDisplay {
    /// The frame as an HTML table (at most [`DEFAULT_MAX_ROWS`] rows).
    fn to_html(&self) -> String;
    /// As [`DataFrameDisplay::to_html`] with a row limit.
    fn to_html_rows(&self, max_rows: usize) -> String;
    /// Show the frame in evcxr as HTML (and polars' own text table for text front ends).
    fn evcxr_display(&self);
}

impl DataFrameDisplay for DataFrame {
    fn to_html(&self) -> String {
        self.to_html_rows(DEFAULT_MAX_ROWS)
    }
    fn to_html_rows(&self, max_rows: usize) -> String {
        frame_table(self, max_rows).to_html()
    }
    fn evcxr_display(&self) {
        emit_evcxr(&[
            ("text/plain", &format!("{self}")),
            ("text/html", &DataFrameDisplay::to_html(self)),
        ]);
    }
}

/// A frame that displays as HTML in evcxr without importing a trait: `Table(df)` as a cell's value.
#[derive(Debug, Clone)]
pub struct Table(pub DataFrame);

impl Table {
    pub fn to_html(&self) -> String {
        DataFrameDisplay::to_html(&self.0)
    }
    pub fn evcxr_display(&self) {
        DataFrameDisplay::evcxr_display(&self.0)
    }
    pub fn into_inner(self) -> DataFrame {
        self.0
    }
}

impl From<DataFrame> for Table {
    fn from(df: DataFrame) -> Self {
        Table(df)
    }
}

impl std::ops::Deref for Table {
    type Target = DataFrame;
    fn deref(&self) -> &DataFrame {
        &self.0
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::{Column, NamedFrom, Series};

    fn runs() -> DataFrame {
        DataFrame::new_infer_height(vec![
            Column::from(Series::new("run_id".into(), &["a1", "b<2>"])),
            Column::from(Series::new("params.r".into(), &[Some("8"), None])),
            Column::from(Series::new("metrics.acc".into(), &[0.8567891234, 1e-7])),
            Column::from(Series::new("metrics.step".into(), &[100i64, 200])),
        ])
        .unwrap()
    }

    #[test]
    fn frame_html_has_header_types_and_escaped_cells() {
        let h = DataFrameDisplay::to_html(&runs());
        assert!(h.contains("shape: (2, 4)"));
        assert!(h.contains(">run_id</th>") && h.contains(">metrics.acc</th>"));
        assert!(h.contains(">str</td>") && h.contains(">f64</td>") && h.contains(">i64</td>"));
        assert!(h.contains(">b&lt;2&gt;</td>"));
        assert!(h.contains(">0.856789</td>"), "{h}");
        assert!(h.contains(">1e-7</td>"), "{h}");
        assert!(h.contains(">null</td>"));
        assert!(h.contains("text-align:right;padding:2px 8px\">100</td>"));
        // header + types + 2 rows
        assert_eq!(h.matches("<tr>").count(), 4);
        assert_eq!(Table(runs()).to_html(), h);
    }

    #[test]
    fn long_frames_are_elided_in_the_middle() {
        let df = DataFrame::new_infer_height(vec![Column::from(Series::new(
            "x".into(),
            (0..100i64).collect::<Vec<_>>(),
        ))])
        .unwrap();
        let h = df.to_html_rows(6);
        assert_eq!(h.matches("<tr>").count(), 2 + 7);
        assert!(h.contains(">2</td>") && h.contains(">97</td>") && h.contains(">99</td>"));
        assert!(!h.contains(">50</td>"));
        assert!(h.contains("…") && h.contains("6 of 100 rows shown"));
        assert_eq!(format_float(1234.5678), "1234.57");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(2.0), "2");
    }
}
