//! [`MetricHistory`]: every point of one metric of one run (MLflow's `get_metric_history`).

use super::display::{emit_html, escape, fmt_float};
use super::entities::MetricPoint;
use crate::Result;
use polars::prelude::*;

/// The points of metric `key` of run `run_id`, ordered by step then timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricHistory {
    pub run_id: String,
    pub key: String,
    pub points: Vec<MetricPoint>,
}

impl MetricHistory {
    pub fn new(run_id: String, key: String, points: Vec<MetricPoint>) -> Self {
        MetricHistory {
            run_id,
            key,
            points,
        }
    }
    pub fn len(&self) -> usize {
        self.points.len()
    }
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
    pub fn steps(&self) -> Vec<i64> {
        self.points.iter().map(|p| p.step).collect()
    }
    pub fn values(&self) -> Vec<f64> {
        self.points.iter().map(|p| p.value).collect()
    }
    pub fn timestamps(&self) -> Vec<i64> {
        self.points.iter().map(|p| p.timestamp).collect()
    }
    /// The last point (greatest step, then timestamp).
    pub fn last(&self) -> Option<MetricPoint> {
        self.points.last().copied()
    }
    /// The smallest finite value and its step.
    pub fn min(&self) -> Option<(i64, f64)> {
        self.finite().min_by(|a, b| a.1.total_cmp(&b.1))
    }
    /// The largest finite value and its step.
    pub fn max(&self) -> Option<(i64, f64)> {
        self.finite().max_by(|a, b| a.1.total_cmp(&b.1))
    }
    fn finite(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.points
            .iter()
            .filter(|p| p.value.is_finite())
            .map(|p| (p.step, p.value))
    }

    /// Columns `step`, `timestamp` (epoch ms), `value`.
    pub fn to_dataframe(&self) -> Result<DataFrame> {
        Ok(DataFrame::new(
            self.points.len(),
            vec![
                Column::new("step".into(), self.steps()),
                Column::new("timestamp".into(), self.timestamps()),
                Column::new("value".into(), self.values()),
            ],
        )?)
    }

    /// An HTML block: a line chart (inline SVG) and a summary table.
    pub fn to_html(&self) -> String {
        history_html(self)
    }

    /// Rich notebook output (evcxr).
    pub fn evcxr_display(&self) {
        emit_html(&self.to_html());
    }
}

impl std::fmt::Display for MetricHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} of run {} ({} points)",
            self.key,
            self.run_id,
            self.points.len()
        )?;
        writeln!(f, "{:>10}  {:>14}  value", "step", "timestamp")?;
        for p in &self.points {
            writeln!(f, "{:>10}  {:>14}  {}", p.step, p.timestamp, p.value)?;
        }
        Ok(())
    }
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
