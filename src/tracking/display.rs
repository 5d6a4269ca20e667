//! HTML for notebooks: run tables and metric histories (pure functions, unit-tested). Tables are
//! [`crate::display::HtmlTable`]s and output goes through [`crate::display::emit_evcxr`], the one
//! renderer and wire format of every notebook display in the crate.

use crate::display::{emit_evcxr, Align, HtmlTable};
use polars::prelude::*;

pub use crate::display::escape;

/// Print one evcxr rich-output block (HTML) in a single write.
pub fn emit_html(html: &str) {
    emit_evcxr(&[("text/html", html)]);
}

/// A float for people: 4 significant digits, scientific outside [1e-3, 1e6).
pub fn fmt_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e-3 && v.abs() < 1e6 {
        let digits = (3 - v.abs().log10().floor() as i32).max(0) as usize;
        let s = format!("{v:.digits$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        format!("{v:.3e}")
    }
}

/// Epoch milliseconds as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn fmt_time_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// A cell as plain text (the table escapes it): floats to 4 significant digits, epoch-ms time
/// columns as UTC times, null as empty.
fn cell(av: &AnyValue, is_time: bool) -> String {
    match av {
        AnyValue::Null => String::new(),
        AnyValue::Float64(v) => fmt_float(*v),
        AnyValue::Float32(v) => fmt_float(*v as f64),
        AnyValue::Int64(v) if is_time => fmt_time_ms(*v),
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// A run table as an [`HtmlTable`] (at most `max_rows` rows); `time_cols` (epoch ms) shown as
/// UTC times, numeric columns right-aligned.
pub fn dataframe_table(df: &DataFrame, max_rows: usize, time_cols: &[&str]) -> HtmlTable {
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let shown = df.height().min(max_rows);
    let mut t = HtmlTable::new(names).note(format!(
        "{} run(s) x {} column(s){}",
        df.height(),
        df.width(),
        if df.height() > shown {
            format!(", first {shown} shown")
        } else {
            String::new()
        }
    ));
    for (c, col) in df.columns().iter().enumerate() {
        let is_time = time_cols.contains(&col.name().as_str());
        let numeric = col.dtype().is_primitive_numeric() && !is_time;
        t = t.align(c, if numeric { Align::Right } else { Align::Left });
    }
    for i in 0..shown {
        t.push_row(df.columns().iter().map(|col| {
            let is_time = time_cols.contains(&col.name().as_str());
            col.get(i).map(|av| cell(&av, is_time)).unwrap_or_default()
        }));
    }
    t
}

/// [`dataframe_table`] as HTML.
pub fn dataframe_html(df: &DataFrame, max_rows: usize, time_cols: &[&str]) -> String {
    dataframe_table(df, max_rows, time_cols).to_html()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_and_times() {
        assert_eq!(fmt_float(0.123456), "0.1235");
        assert_eq!(fmt_float(12.0), "12");
        assert_eq!(fmt_float(1e-5), "1.000e-5");
        assert_eq!(fmt_float(f64::NAN), "NaN");
        assert_eq!(fmt_float(f64::NEG_INFINITY), "-inf");
        assert_eq!(fmt_time_ms(0), "1970-01-01 00:00:00");
        assert_eq!(fmt_time_ms(1_700_000_000_000), "2023-11-14 22:13:20");
        assert_eq!(
            escape("<a href='x'>&</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn renders_table_with_escaping_times_and_row_limit() {
        let df = DataFrame::new(
            3,
            vec![
                Column::new("run_id".into(), vec!["a<b", "c", "d"]),
                Column::new("start_time".into(), vec![0i64, 1_700_000_000_000, 5]),
                Column::new("metrics.acc".into(), vec![Some(0.5), None, Some(f64::NAN)]),
            ],
        )
        .unwrap();
        let h = dataframe_html(&df, 2, &["start_time"]);
        assert!(h.contains("<th") && h.contains("metrics.acc"));
        assert!(h.contains("a&lt;b") && !h.contains("a<b"));
        assert!(h.contains("2023-11-14 22:13:20"));
        assert!(h.contains(">0.5<"));
        assert!(h.contains("3 run(s) x 3 column(s), first 2 shown"));
        assert_eq!(h.matches("<tr>").count(), 3, "header + 2 rows");
        // Numbers right-aligned, times and text left-aligned, nulls empty.
        assert!(
            h.contains("text-align:right;padding:2px 8px\">0.5</td>"),
            "{h}"
        );
        assert!(
            h.contains("text-align:left;padding:2px 8px\">2023-11-14 22:13:20</td>"),
            "{h}"
        );
        assert!(
            h.contains("text-align:right;padding:2px 8px\"></td>"),
            "{h}"
        );
    }
}
