//! [`MetricHistory`]: every point of one metric of one run (MLflow's `get_metric_history`).

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
        super::display::history_html(self)
    }

    /// Rich notebook output (evcxr).
    pub fn evcxr_display(&self) {
        super::display::emit_html(&self.to_html());
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
