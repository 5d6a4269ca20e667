//! HTML for notebooks: run tables and metric histories (pure functions, unit-tested), and the
//! evcxr output block.

use super::history::MetricHistory;
use polars::prelude::*;
use std::io::Write;

/// Print one evcxr rich-output block in a single write (blocks from threads never interleave).
pub fn emit_html(html: &str) {
    let block = format!("EVCXR_BEGIN_CONTENT text/html\n{html}\nEVCXR_END_CONTENT\n");
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(block.as_bytes());
    let _ = out.flush();
}

/// Escape text for HTML.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
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

fn cell(av: &AnyValue, is_time: bool) -> String {
    match av {
        AnyValue::Null => String::new(),
        AnyValue::Float64(v) => fmt_float(*v),
        AnyValue::Float32(v) => fmt_float(*v as f64),
        AnyValue::Int64(v) if is_time => fmt_time_ms(*v),
        AnyValue::String(s) => escape(s),
        AnyValue::StringOwned(s) => escape(s.as_str()),
        other => escape(&other.to_string()),
    }
}

/// An HTML table of `df` (at most `max_rows` rows); `time_cols` (epoch ms) shown as UTC times.
pub fn dataframe_html(df: &DataFrame, max_rows: usize, time_cols: &[&str]) -> String {
    let mut h = String::from(
        "<div style=\"overflow-x:auto\"><table style=\"border-collapse:collapse;font-size:12px\">\n<thead><tr>",
    );
    for name in df.get_column_names() {
        h.push_str(&format!(
            "<th style=\"text-align:left;border-bottom:1px solid #999;padding:2px 6px\">{}</th>",
            escape(name)
        ));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    let shown = df.height().min(max_rows);
    for i in 0..shown {
        h.push_str("<tr>");
        for col in df.columns() {
            let is_time = time_cols.contains(&col.name().as_str());
            let numeric = col.dtype().is_primitive_numeric() && !is_time;
            let text = col.get(i).map(|av| cell(&av, is_time)).unwrap_or_default();
            let align = if numeric { "right" } else { "left" };
            h.push_str(&format!(
                "<td style=\"text-align:{align};padding:2px 6px\">{text}</td>"
            ));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table>");
    h.push_str(&format!(
        "<div style=\"font-size:11px;color:#666\">{} run(s) x {} column(s){}</div></div>",
        df.height(),
        df.width(),
        if df.height() > shown {
            format!(", first {shown} shown")
        } else {
            String::new()
        }
    ));
    h
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
