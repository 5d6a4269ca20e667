//! One row per method: the last-epoch primary metric per seed (the study's primary number, as
//! nothing is selected on the split it is reported on), dev cross-entropy at the last epoch
//! beside it, the best epoch only as a description, and the paired comparison with the method's
//! equal-budget baseline.

use super::compare::{Comparison, PointsMetric, Series};
use super::{mean_std, StudyReport, BASELINE, SC_BASELINE};
use crate::data::Task;
use crate::study::methods::{Method, Space};
use crate::study::record::ChildRecord;
use crate::train::DevPredictions;
use std::collections::BTreeSet;

/// One method's results over its seeds (metric values in points, i.e. x100).
#[derive(Debug, Clone, PartialEq)]
pub struct MethodRow {
    pub method: String,
    pub family: String,
    pub n: usize,
    pub seeds: Vec<u64>,
    /// The primary metric at the last epoch, per seed (NaN where a record lacks it).
    pub values: Vec<f64>,
    pub mean: f64,
    /// Sample standard deviation (n - 1); 0 for one seed.
    pub std: f64,
    /// The primary metric at the best epoch, per seed: descriptive only (chosen on dev).
    pub best_values: Vec<f64>,
    pub best_mean: f64,
    pub best_std: f64,
    /// Dev cross-entropy at the last epoch, per seed, where the record has it.
    pub losses: Vec<Option<f64>>,
    /// Each dev example's prediction at the last epoch, per seed, where the record has them.
    pub dev: Vec<Option<DevPredictions>>,
    /// Mean and std of the recorded `losses` (`None` if none is recorded).
    pub loss_mean: Option<f64>,
    pub loss_std: Option<f64>,
    /// The paired comparison with [`baseline_of`] this method (none for the baseline itself or
    /// before the baseline has a common seed).
    pub comparison: Option<Comparison>,
    /// The mean paired difference with the baseline (0 for the baseline itself).
    pub delta: Option<f64>,
    pub budget: usize,
    pub adapter_params: f64,
    pub trainable_params: f64,
    pub wall_time_s: f64,
}

/// The baseline a method is held against: uniform r = 2 over the same slot space (the LoRA +
/// shortcut methods spend about 3x the q,v budget, so their baseline is `sc-uniform-r2`);
/// `None` for `uniform-r2` itself.
impl MethodRow {
    /// This row's values by seed, for [`Comparison::between`].
    pub fn series(&self) -> Series<'_> {
        Series {
            method: &self.method,
            seeds: &self.seeds,
            values: &self.values,
            losses: &self.losses,
            dev: &self.dev,
        }
    }
}

pub fn baseline_of(method: &str) -> Option<&'static str> {
    if method == BASELINE {
        return None;
    }
    let space = Method::all()
        .into_iter()
        .find(|m| m.name == method)
        .map(|m| m.space);
    let shortcut_space = match space {
        Some(s) => s == Space::QvShortcuts,
        None => method.starts_with("sc-"),
    };
    if shortcut_space && method != SC_BASELINE {
        Some(SC_BASELINE)
    } else {
        Some(BASELINE)
    }
}

/// The primary metric at the end of the last epoch.
pub fn last_metric(r: &ChildRecord) -> Option<f64> {
    r.last_metrics
        .get(&r.metric)
        .copied()
        .or_else(|| r.epoch_metrics.last().copied())
}

/// Dev cross-entropy at the end of the last epoch: recorded since `last_metrics`; in older
/// records only at the best epoch, so known when the best epoch was the last.
pub fn last_loss(r: &ChildRecord) -> Option<f64> {
    r.last_metrics.get("loss").copied().or_else(|| {
        let last = r.epoch_metrics.len();
        (last > 0 && r.best_epoch == Some(last))
            .then(|| r.best_metrics.get("loss").copied())
            .flatten()
    })
}

impl StudyReport {
    /// The primary metric in points from per-example predictions, for the records' task; `None`
    /// when the task is not known or does not report that metric.
    fn points_metric(&self) -> Option<impl Fn(&[f32], &[f32]) -> f64> {
        let first = self.records.first()?;
        let task: Task = first.task.parse().ok()?;
        let name = first.metric.clone();
        crate::data::metrics::named(task, &name, &[0.0, 1.0], &[0.0, 1.0])?;
        Some(move |p: &[f32], l: &[f32]| {
            crate::data::metrics::named(task, &name, p, l).map_or(f64::NAN, |v| v * 100.0)
        })
    }

    /// The finished records of `method`, by seed.
    pub(super) fn method_records(&self, method: &str) -> Vec<&ChildRecord> {
        let mut recs: Vec<&ChildRecord> =
            self.records.iter().filter(|r| r.method == method).collect();
        recs.sort_by_key(|r| r.seed);
        recs
    }

    /// One row per method, in the study's priority order (methods outside it last, by name).
    pub fn rows(&self) -> Vec<MethodRow> {
        let order: Vec<String> = Method::all().into_iter().map(|m| m.name).collect();
        let mut names: Vec<String> = self
            .records
            .iter()
            .map(|r| r.method.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        names.sort_by_key(|n| {
            (
                order.iter().position(|o| o == n).unwrap_or(usize::MAX),
                n.clone(),
            )
        });
        let mut rows: Vec<MethodRow> = names.iter().map(|name| self.row(name)).collect();
        let points = self.points_metric();
        let metric = points.as_ref().map(|f| f as PointsMetric<'_>);
        for i in 0..rows.len() {
            let Some(base) = baseline_of(&rows[i].method) else {
                rows[i].delta = Some(0.0);
                continue;
            };
            if let Some(b) = rows.iter().find(|r| r.method == base).cloned() {
                let c = Comparison::between(rows[i].series(), b.series(), metric);
                rows[i].delta = c.as_ref().map(|c| c.t.mean);
                rows[i].comparison = c;
            }
        }
        rows
    }

    fn row(&self, name: &str) -> MethodRow {
        let recs = self.method_records(name);
        let pts = |v: Option<f64>| v.map_or(f64::NAN, |x| x * 100.0);
        let values: Vec<f64> = recs.iter().map(|r| pts(last_metric(r))).collect();
        let best_values: Vec<f64> = recs.iter().map(|r| pts(r.best_metric)).collect();
        let losses: Vec<Option<f64>> = recs.iter().map(|r| last_loss(r)).collect();
        let finite = |v: &[f64]| {
            v.iter()
                .copied()
                .filter(|x| x.is_finite())
                .collect::<Vec<_>>()
        };
        let (mean, std) = mean_std(&finite(&values));
        let (best_mean, best_std) = mean_std(&finite(&best_values));
        let known: Vec<f64> = losses.iter().flatten().copied().collect();
        let (loss_mean, loss_std) = if known.is_empty() {
            (None, None)
        } else {
            let (m, s) = mean_std(&known);
            (Some(m), Some(s))
        };
        let avg = |f: &dyn Fn(&ChildRecord) -> f64| {
            recs.iter().map(|r| f(r)).sum::<f64>() / recs.len() as f64
        };
        MethodRow {
            method: name.to_string(),
            family: recs[0].family.clone(),
            n: recs.len(),
            seeds: recs.iter().map(|r| r.seed).collect(),
            values,
            mean,
            std,
            best_values,
            best_mean,
            best_std,
            losses,
            dev: recs.iter().map(|r| r.dev_predictions.clone()).collect(),
            loss_mean,
            loss_std,
            comparison: None,
            delta: None,
            budget: recs[0].budget,
            adapter_params: avg(&|r| r.adapter_params as f64),
            trainable_params: avg(&|r| r.trainable_params as f64),
            wall_time_s: avg(&|r| r.wall_time_s),
        }
    }
}
