//! Charts from the tracker: training curves, metric against budget, re-allocation timelines. Used
//! by [`super::Workspace`] in notebooks and by `heterolora plot curves|budget|timeline`.

use crate::plot::{BudgetPlot, BudgetPoint, Curve, CurvesPlot, ReallocationTimeline};
use crate::search::dynamic::ReallocationLog;
use crate::tracking::{artifacts, RunTable, Tracker};
use crate::{Error, Result};
use std::collections::BTreeSet;

/// Curves of `metrics` (all of `train_loss`, `dev_accuracy`, `dev_f1` the runs have when empty)
/// for runs given by id or unique id prefix; the legend shows run names.
pub fn curves(tracker: &Tracker, run_ids: &[&str], metrics: &[&str]) -> Result<CurvesPlot> {
    if run_ids.is_empty() {
        return Err(Error::invalid("runs", "none", "at least one run id"));
    }
    let default = ["train_loss", "dev_accuracy", "dev_f1"];
    let wanted: Vec<&str> = if metrics.is_empty() {
        default.to_vec()
    } else {
        metrics.to_vec()
    };
    let mut curves = Vec::new();
    let mut shown = Vec::new();
    for id in run_ids {
        let id = tracker.resolve_run_id(id)?;
        let name = tracker.run_info(&id)?.run_name;
        // Two runs of the same name stay apart in the legend.
        let label = if curves.iter().any(|c: &Curve| c.run == name) {
            format!("{name} ({})", &id[..8])
        } else {
            name
        };
        for m in &wanted {
            let pts = tracker.metric_points(&id, m)?;
            if pts.is_empty() {
                continue;
            }
            if !shown.contains(m) {
                shown.push(*m);
            }
            curves.push(Curve::new(
                label.clone(),
                *m,
                pts.iter().map(|p| (p.step, p.value)).collect(),
            ));
        }
    }
    if curves.is_empty() {
        return Err(Error::Tracking(format!(
            "none of the runs {run_ids:?} logged any of the metrics {wanted:?}"
        )));
    }
    Ok(CurvesPlot::new(curves).metrics(shown))
}

/// Which run-table columns a budget plot reads.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `method` | automatic | column of the line label; automatic: `tags.study.method`, else `tags.sweep.method`, else `params.allocation.method` with `:<proxy>` when a proxy chose it |
/// | `params` | `params.allocation.adapter_params` | trainable adapter parameters |
/// | `metric` | `metrics.best_dev_accuracy` | the y value |
/// | `seed` | `params.seed` | groups repeated runs |
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetColumns {
    pub method: Option<String>,
    pub params: String,
    pub metric: String,
    pub seed: String,
}

impl BudgetColumns {
    /// Defaults with the metric `metric` (`best_dev_accuracy` or `metrics.best_dev_accuracy`).
    pub fn for_metric(metric: &str) -> Self {
        let metric = if metric.contains('.') && metric.starts_with("metrics.") {
            metric.to_string()
        } else {
            format!("metrics.{metric}")
        };
        BudgetColumns {
            method: None,
            params: "params.allocation.adapter_params".into(),
            metric,
            seed: "params.seed".into(),
        }
    }
}

impl Default for BudgetColumns {
    fn default() -> Self {
        Self::for_metric("best_dev_accuracy")
    }
}

/// A column as numbers, whether logged as a metric (f64) or a param (text).
fn numbers(t: &RunTable, col: &str) -> Vec<Option<f64>> {
    let f = t.floats(col);
    if f.iter().any(Option::is_some) {
        return f;
    }
    t.strings(col)
        .into_iter()
        .map(|s| s.and_then(|s| s.trim().parse::<f64>().ok()))
        .collect()
}

fn has_values(t: &RunTable, col: &str) -> bool {
    t.strings(col).iter().any(Option::is_some)
}

/// Line labels per row (see [`BudgetColumns::method`]).
fn method_labels(t: &RunTable, method: Option<&str>) -> Vec<Option<String>> {
    if let Some(c) = method {
        return t.strings(c);
    }
    for c in ["tags.study.method", "tags.sweep.method"] {
        if has_values(t, c) {
            return t.strings(c);
        }
    }
    let m = t.strings("params.allocation.method");
    let p = t.strings("params.allocation.proxy");
    m.into_iter()
        .zip(p)
        .map(|(m, p)| {
            m.map(|m| match p.as_deref() {
                Some(p) if p != "none" && !p.is_empty() => format!("{m}:{p}"),
                _ => m,
            })
        })
        .collect()
}

/// Budget points of the FINISHED runs of `experiments` that match `filter` and have both a
/// parameter count and the metric.
pub fn budget_points(
    tracker: &Tracker,
    experiments: &[&str],
    filter: &str,
    cols: &BudgetColumns,
) -> Result<Vec<BudgetPoint>> {
    let t = tracker.search_runs(experiments, filter, &[])?;
    let status = t.strings("status");
    let methods = method_labels(&t, cols.method.as_deref());
    let params = numbers(&t, &cols.params);
    let metric = numbers(&t, &cols.metric);
    let seeds = numbers(&t, &cols.seed);
    let mut out = Vec::new();
    for i in 0..t.len() {
        if status[i].as_deref() != Some("FINISHED") {
            continue;
        }
        let (Some(p), Some(m)) = (params[i], metric[i]) else {
            continue;
        };
        if !m.is_finite() {
            continue;
        }
        out.push(BudgetPoint::new(
            methods[i].clone().unwrap_or_else(|| "(none)".into()),
            p as usize,
            m,
            seeds[i].map_or(i as u64, |s| s as u64),
        ));
    }
    if out.is_empty() {
        return Err(Error::Tracking(format!(
            "no finished run of {experiments:?}{} has both `{}` and `{}`",
            if filter.trim().is_empty() {
                String::new()
            } else {
                format!(" matching `{filter}`")
            },
            cols.params,
            cols.metric
        )));
    }
    Ok(out)
}

/// The metric against the budget for the runs [`budget_points`] selects.
pub fn budget(
    tracker: &Tracker,
    experiments: &[&str],
    filter: &str,
    cols: &BudgetColumns,
) -> Result<BudgetPlot> {
    let points = budget_points(tracker, experiments, filter, cols)?;
    let name = cols.metric.strip_prefix("metrics.").unwrap_or(&cols.metric);
    let params = if cols.params.contains("adapter") {
        "adapter parameters"
    } else {
        "trainable parameters"
    };
    Ok(BudgetPlot::new(points)
        .metric_name(name)
        .params_name(params))
}

/// The re-allocation timeline of a run with dynamic re-allocation, from its
/// `reallocations.json` artifact.
pub fn timeline(tracker: &Tracker, run_id: &str) -> Result<ReallocationTimeline> {
    let id = tracker.resolve_run_id(run_id)?;
    let info = tracker.run_info(&id)?;
    let path = artifacts::local_dir(&info.artifact_uri)?.join("reallocations.json");
    if !path.is_file() {
        return Err(Error::Tracking(format!(
            "run {id} ({}) has no reallocations.json artifact: only runs with dynamic \
             re-allocation have a timeline",
            info.run_name
        )));
    }
    let log = ReallocationLog::load(&path)?;
    timeline_from_log(&log).map(|t| t.title(format!("Re-allocation timeline of {}", info.run_name)))
}

/// A timeline from a re-allocation log: every slot scored or enabled at any step.
pub fn timeline_from_log(log: &ReallocationLog) -> Result<ReallocationTimeline> {
    let slots: Vec<_> = log
        .records
        .iter()
        .flat_map(|r| r.scores.values.keys().chain(r.enabled.iter()))
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let steps = log.records.iter().map(|r| r.step).collect();
    let enabled = log
        .records
        .iter()
        .map(|r| slots.iter().map(|s| r.enabled.contains(s)).collect())
        .collect();
    ReallocationTimeline::new(steps, slots, enabled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracking::RunStatus;

    fn store() -> (tempfile::TempDir, Tracker) {
        let dir = tempfile::tempdir().unwrap();
        let t = Tracker::open_path(&dir.path().join("mlflow.db")).unwrap();
        (dir, t)
    }

    #[test]
    fn budget_points_read_params_metrics_and_skip_unfinished() {
        let (_d, t) = store();
        for (name, method, proxy, params, acc, seed, finish) in [
            ("a", "uniform", "none", 18432, 0.70, 0, true),
            ("b", "topk", "grad-norm", 9216, 0.72, 0, true),
            ("c", "topk", "grad-norm", 9216, 0.74, 1, true),
            ("d", "topk", "grad-norm", 9216, 0.99, 2, false),
        ] {
            let mut r = t.start_run("exp", name).unwrap();
            r.log_params(&[
                ("allocation.method", method.to_string()),
                ("allocation.proxy", proxy.to_string()),
                ("allocation.adapter_params", params.to_string()),
                ("seed", seed.to_string()),
            ])
            .unwrap();
            r.log_metric("best_dev_accuracy", acc, 10).unwrap();
            r.end(if finish {
                RunStatus::Finished
            } else {
                RunStatus::Killed
            })
            .unwrap();
        }
        let pts = budget_points(&t, &["exp"], "", &BudgetColumns::default()).unwrap();
        assert_eq!(pts.len(), 3, "the killed run is left out");
        let mut labels: Vec<_> = pts.iter().map(|p| p.method.clone()).collect();
        labels.sort();
        assert_eq!(labels, ["topk:grad-norm", "topk:grad-norm", "uniform"]);
        let b = pts.iter().find(|p| p.metric == 0.74).unwrap();
        assert_eq!((b.params, b.seed), (9216, 1));
        let fig = budget(
            &t,
            &["exp"],
            "params.allocation.method = 'topk'",
            &BudgetColumns::default(),
        )
        .unwrap()
        .render()
        .unwrap();
        assert!(fig.to_svg().contains("topk:grad-norm"));
        let e = budget_points(&t, &["exp"], "", &BudgetColumns::for_metric("dev_f1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("metrics.dev_f1"), "{e}");
    }

    #[test]
    fn curves_from_runs_and_missing_metrics() {
        let (_d, t) = store();
        let mut r = t.start_run("exp", "run-one").unwrap();
        for s in 0..5 {
            r.log_metric("train_loss", 1.0 / (s as f64 + 1.0), s)
                .unwrap();
        }
        r.log_metric("dev_accuracy", 0.7, 4).unwrap();
        r.end(RunStatus::Finished).unwrap();
        let id = r.run_id().to_string();
        let plot = curves(&t, &[&id[..8]], &[]).unwrap();
        let svg = plot.render().unwrap().to_svg().to_string();
        assert!(
            svg.contains("run-one") && svg.contains("train loss"),
            "legend and panel"
        );
        let e = curves(&t, &[&id], &["nope"]).unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
    }
}
