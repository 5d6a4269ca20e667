//! HTML for notebooks: run tables and metric histories (pure functions, unit-tested). Tables are
//! [`crate::display::HtmlTable`]s and output goes through [`crate::display::emit_evcxr`], the one
//! renderer and wire format of every notebook display in the crate.

use super::history::MetricHistory;
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

/// A small SVG line chart of a history (finite points only) and a summary line.
pub fn history_html(hist: &MetricHistory) -> String {
    let (w, hgt, pad) = (480.0_f64, 180.0_f64, 36.0_f64);
    let pts: Vec<(f64, f64)> = hist
        .points
        .iter()
        .filter(|p| p.value.is_finite())
        .map(|p| (p.step as f64, p.value))
        .collect();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{hgt}\" style=\"font-family:sans-serif;font-size:10px\">"
    );
    if !pts.is_empty() {
        let (x0, x1) = pts
            .iter()
            .fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p.0), a.1.max(p.0)));
        let (y0, y1) = pts
            .iter()
            .fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p.1), a.1.max(p.1)));
        let sx = |x: f64| pad + if x1 > x0 { (x - x0) / (x1 - x0) } else { 0.5 } * (w - 2.0 * pad);
        let sy = |y: f64| {
            hgt - pad + -(if y1 > y0 { (y - y0) / (y1 - y0) } else { 0.5 }) * (hgt - 2.0 * pad)
        };
        let line: Vec<String> = pts
            .iter()
            .map(|p| format!("{:.1},{:.1}", sx(p.0), sy(p.1)))
            .collect();
        svg.push_str(&format!(
            "<rect x=\"{pad}\" y=\"{pad}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#ccc\"/>",
            w - 2.0 * pad,
            hgt - 2.0 * pad
        ));
        svg.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"{}\"/>",
            line.join(" ")
        ));
        svg.push_str(&format!(
            "<text x=\"{pad}\" y=\"{}\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            hgt - pad + 14.0,
            fmt_float(x0),
            w - pad,
            hgt - pad + 14.0,
            fmt_float(x1)
        ));
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            pad - 3.0,
            pad + 4.0,
            fmt_float(y1),
            pad - 3.0,
            hgt - pad,
            fmt_float(y0)
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{}\" y=\"14\" text-anchor=\"middle\" font-size=\"12\">{}</text></svg>",
        w / 2.0,
        escape(&hist.key)
    ));
    let last = hist
        .last()
        .map(|p| format!("last {} at step {}", fmt_float(p.value), p.step))
        .unwrap_or_default();
    let min = hist
        .min()
        .map(|(s, v)| format!(", min {} at step {s}", fmt_float(v)))
        .unwrap_or_default();
    let max = hist
        .max()
        .map(|(s, v)| format!(", max {} at step {s}", fmt_float(v)))
        .unwrap_or_default();
    let non_finite = hist.points.iter().filter(|p| !p.value.is_finite()).count();
    let nf = if non_finite > 0 {
        format!(", {non_finite} non-finite point(s) not drawn")
    } else {
        String::new()
    };
    format!(
        "<div>{svg}<div style=\"font-size:11px;color:#444\"><b>{}</b> of run <code>{}</code>: {} point(s); {last}{min}{max}{nf}</div></div>",
        escape(&hist.key),
        escape(&hist.run_id),
        hist.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracking::entities::MetricPoint;

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

    #[test]
    fn renders_history_chart_and_summary() {
        let pts = vec![
            MetricPoint {
                value: 1.0,
                timestamp: 1,
                step: 0,
            },
            MetricPoint {
                value: f64::NAN,
                timestamp: 2,
                step: 1,
            },
            MetricPoint {
                value: 0.25,
                timestamp: 3,
                step: 2,
            },
        ];
        let h = history_html(&MetricHistory::new("abc".into(), "loss".into(), pts));
        assert!(h.contains("<svg") && h.contains("<polyline"));
        assert!(
            h.contains("3 point(s)") && h.contains("last 0.25 at step 2"),
            "{h}"
        );
        assert!(h.contains("min 0.25 at step 2") && h.contains("1 non-finite point(s) not drawn"));
    }
}
