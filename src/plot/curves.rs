//! Training curves: one panel per metric (loss, dev metric, learning rate, ...), one line per run,
//! each run in the same colour in every panel.

use super::figure::Figure;
use super::font::{bold, text};
use super::frame::{floats, strings};
use super::palette;
use super::{fmt_num, padded, plot_err, Plot, DEFAULT_SIZE};
use crate::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use polars::prelude::DataFrame;
use std::collections::BTreeMap;

/// One metric's history in one run: (step, value) pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// The run's name (or id) as the legend shows it.
    pub run: String,
    pub metric: String,
    pub points: Vec<(i64, f64)>,
}

impl Curve {
    pub fn new(run: impl Into<String>, metric: impl Into<String>, points: Vec<(i64, f64)>) -> Self {
        Curve {
            run: run.into(),
            metric: metric.into(),
            points,
        }
    }

    /// Curves from a metric-history frame with one row per logged point: a run column (`run_col`,
    /// e.g. `run_id` or `run_name`) and MLflow's `key`, `step` and `value` columns. Points are
    /// sorted by step; curves come in order of first appearance.
    pub fn from_history_frame(df: &DataFrame, run_col: &str) -> Result<Vec<Curve>> {
        Self::from_frame_columns(df, run_col, "key", "step", "value")
    }

    /// As [`Curve::from_history_frame`] with every column name given.
    pub fn from_frame_columns(
        df: &DataFrame,
        run_col: &str,
        key_col: &str,
        step_col: &str,
        value_col: &str,
    ) -> Result<Vec<Curve>> {
        let keys = strings(df, key_col)?;
        Self::collect(df, run_col, keys, step_col, value_col)
    }

    /// Curves of one metric from a frame without a key column, one row per point: `run_col`
    /// (e.g. `run_id`), `step` and `value`, as the tracker's `metric_histories(runs, key)` returns.
    pub fn from_metric_frame(df: &DataFrame, run_col: &str, metric: &str) -> Result<Vec<Curve>> {
        let keys = vec![Some(metric.to_string()); df.height()];
        Self::collect(df, run_col, keys, "step", "value")
    }

    fn collect(
        df: &DataFrame,
        run_col: &str,
        keys: Vec<Option<String>>,
        step_col: &str,
        value_col: &str,
    ) -> Result<Vec<Curve>> {
        let runs = strings(df, run_col)?;
        let steps = floats(df, step_col)?;
        let values = floats(df, value_col)?;
        let mut order: Vec<(String, String)> = Vec::new();
        let mut map: BTreeMap<(String, String), Vec<(i64, f64)>> = BTreeMap::new();
        for row in 0..df.height() {
            let (Some(run), Some(key)) = (&runs[row], &keys[row]) else {
                continue;
            };
            let step = steps[row].unwrap_or(0.0) as i64;
            let value = values[row].unwrap_or(f64::NAN);
            let k = (run.clone(), key.clone());
            if !map.contains_key(&k) {
                order.push(k.clone());
            }
            map.entry(k).or_default().push((step, value));
        }
        Ok(order
            .into_iter()
            .map(|k| {
                let mut points = map.remove(&k).unwrap_or_default();
                points.sort_by_key(|p| p.0);
                Curve::new(k.0, k.1, points)
            })
            .collect())
    }
}

/// Several runs' curves, one panel per metric.
///
/// | option | default | meaning |
/// |---|---|---|
/// | `smoothing` | 0 (off) | exponential moving-average weight in [0, 1); the raw curve stays faint behind; curves of fewer than 8 points (per-epoch evaluations) stay raw, with markers |
/// | `metrics` | all, in order of appearance | which metrics get a panel, in this order |
/// | `title` | `Training curves` | chart title |
/// | `size` | 800 x 500 | pixels |
#[derive(Debug, Clone)]
pub struct CurvesPlot {
    curves: Vec<Curve>,
    smoothing: f64,
    metrics: Option<Vec<String>>,
    title: Option<String>,
    size: (u32, u32),
}

impl CurvesPlot {
    pub fn new(curves: Vec<Curve>) -> Self {
        CurvesPlot {
            curves,
            smoothing: 0.0,
            metrics: None,
            title: None,
            size: DEFAULT_SIZE,
        }
    }
    /// EMA weight: smoothed[t] = w * smoothed[t-1] + (1 - w) * raw[t].
    pub fn smoothing(mut self, weight: f64) -> Self {
        self.smoothing = if weight.is_finite() {
            weight.clamp(0.0, 0.99)
        } else {
            0.0
        };
        self
    }
    pub fn metrics<S: Into<String>>(mut self, metrics: impl IntoIterator<Item = S>) -> Self {
        self.metrics = Some(metrics.into_iter().map(Into::into).collect());
        self
    }
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }

    fn panel_metrics(&self) -> Vec<String> {
        if let Some(m) = &self.metrics {
            return m.clone();
        }
        let mut m: Vec<String> = Vec::new();
        for c in &self.curves {
            if !m.contains(&c.metric) {
                m.push(c.metric.clone());
            }
        }
        m
    }

    fn runs(&self) -> Vec<String> {
        let mut r: Vec<String> = Vec::new();
        for c in &self.curves {
            if !r.contains(&c.run) {
                r.push(c.run.clone());
            }
        }
        r
    }

    pub fn render(&self) -> Result<Figure> {
        let metrics = self.panel_metrics();
        if metrics.is_empty() {
            return Err(Error::Plot("training curves: no curves to plot".into()));
        }
        for m in &metrics {
            let has = self
                .curves
                .iter()
                .any(|c| &c.metric == m && c.points.iter().any(|p| p.1.is_finite()));
            if !has {
                let known: Vec<String> = self.curves.iter().map(|c| c.metric.clone()).collect();
                return Err(Error::Plot(format!(
                    "training curves: metric `{m}` has no finite points (metrics: {})",
                    known.join(", ")
                )));
            }
        }
        Figure::new(self.clone())
    }
}

/// Curves with fewer points are drawn raw and marked, whatever the smoothing.
const MIN_SMOOTH_POINTS: usize = 8;

fn ema(points: &[(i64, f64)], w: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len());
    let mut acc: Option<f64> = None;
    for &(s, v) in points {
        let a = match acc {
            None => v,
            Some(a) => w * a + (1.0 - w) * v,
        };
        acc = Some(a);
        out.push((s as f64, a));
    }
    out
}

impl Plot for CurvesPlot {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let metrics = self.panel_metrics();
        let runs = self.runs();
        let title = self
            .title
            .clone()
            .unwrap_or_else(|| "Training curves".to_string());
        super::draw_title(root, &title)?;
        let (_, area) = root.split_vertically(38);
        let cols = metrics.len().min(2);
        let rows = metrics.len().div_ceil(cols);
        let panels = area.split_evenly((rows, cols));
        for (pi, (metric, panel)) in metrics.iter().zip(panels.iter()).enumerate() {
            let curves: Vec<&Curve> = self.curves.iter().filter(|c| &c.metric == metric).collect();
            let finite = curves
                .iter()
                .flat_map(|c| c.points.iter())
                .filter(|p| p.1.is_finite());
            let (mut x0, mut x1, mut y0, mut y1) = (
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::INFINITY,
                f64::NEG_INFINITY,
            );
            for &(s, v) in finite {
                x0 = x0.min(s as f64);
                x1 = x1.max(s as f64);
                y0 = y0.min(v);
                y1 = y1.max(v);
            }
            let (x0, x1) = if x1 > x0 {
                (x0, x1)
            } else {
                (x0 - 1.0, x1 + 1.0)
            };
            let (y0, y1) = padded(y0, y1, 0.06);
            let label = super::metric_label(metric);
            let mut chart = ChartBuilder::on(panel)
                .caption(&label, bold(16.0))
                .margin(10)
                .margin_right(20)
                .x_label_area_size(40)
                .y_label_area_size(74)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .x_desc("training step")
                .y_desc(&label)
                .label_style(text(12.0))
                .axis_desc_style(text(14.0))
                .bold_line_style(RGBColor(225, 225, 225))
                .light_line_style(TRANSPARENT)
                .x_labels(6)
                .y_labels(6)
                .x_label_formatter(&|v| fmt_num(*v))
                .y_label_formatter(&|v| fmt_num(*v))
                .draw()
                .map_err(plot_err)?;
            for c in curves {
                let ri = runs.iter().position(|r| r == &c.run).unwrap_or(0);
                let colour = palette::series(ri);
                let pts: Vec<(i64, f64)> = c
                    .points
                    .iter()
                    .copied()
                    .filter(|p| p.1.is_finite())
                    .collect();
                // Per-epoch evaluations are a handful of points: smoothing them would draw a
                // line that misses every measured value, so they stay raw, with markers.
                let few = pts.len() < MIN_SMOOTH_POINTS;
                let line: Vec<(f64, f64)> = if self.smoothing > 0.0 && !few {
                    chart
                        .draw_series(LineSeries::new(
                            pts.iter().map(|&(s, v)| (s as f64, v)),
                            colour.mix(0.25).stroke_width(1),
                        ))
                        .map_err(plot_err)?;
                    ema(&pts, self.smoothing)
                } else {
                    pts.iter().map(|&(s, v)| (s as f64, v)).collect()
                };
                let anno = chart
                    .draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))
                    .map_err(plot_err)?;
                if pi == 0 {
                    anno.label(c.run.as_str()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                    });
                }
                if few {
                    chart
                        .draw_series(line.iter().map(|&p| Circle::new(p, 4, colour.filled())))
                        .map_err(plot_err)?;
                }
            }
            if pi == 0 {
                let pos = if metric.to_ascii_lowercase().contains("loss") {
                    SeriesLabelPosition::UpperRight
                } else {
                    SeriesLabelPosition::LowerRight
                };
                chart
                    .configure_series_labels()
                    .position(pos)
                    .background_style(WHITE.mix(0.9))
                    .border_style(palette::GRID)
                    .label_font(text(12.0))
                    .draw()
                    .map_err(plot_err)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_starts_at_the_first_value() {
        let s = ema(&[(0, 1.0), (1, 3.0), (2, 3.0)], 0.5);
        assert_eq!(s, [(0.0, 1.0), (1.0, 2.0), (2.0, 2.5)]);
    }
}
