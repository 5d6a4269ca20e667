//! The report's tables as polars frames: `table.csv` (one row per method, with the paired
//! comparison) and `runs.csv` (one row per finished child).

use super::rows::{last_loss, last_metric};
use super::StudyReport;
use crate::Result;
use polars::prelude::{Column, DataFrame, NamedFrom, Series};

/// A named column of any type polars builds a series from.
fn col<T, P: ?Sized>(name: &str, v: T) -> Column
where
    Series: NamedFrom<T, P>,
{
    Column::new(name.into(), v)
}

impl StudyReport {
    /// The results table as a polars frame (metric values in points: x100).
    pub fn table(&self) -> Result<DataFrame> {
        let rows = self.rows();
        let metric = self.metric();
        let cmp = |f: &dyn Fn(&super::compare::Comparison) -> Option<f64>| -> Vec<Option<f64>> {
            rows.iter()
                .map(|r| r.comparison.as_ref().and_then(f))
                .collect::<Vec<_>>()
        };
        let cols = vec![
            col(
                "method",
                rows.iter().map(|r| r.method.clone()).collect::<Vec<_>>(),
            ),
            col(
                "family",
                rows.iter().map(|r| r.family.clone()).collect::<Vec<_>>(),
            ),
            col("seeds", rows.iter().map(|r| r.n as u32).collect::<Vec<_>>()),
            col(
                &format!("{metric}_last_mean"),
                rows.iter().map(|r| r.mean).collect::<Vec<_>>(),
            ),
            col(
                &format!("{metric}_last_std"),
                rows.iter().map(|r| r.std).collect::<Vec<_>>(),
            ),
            col(
                "dev_loss_last_mean",
                rows.iter().map(|r| r.loss_mean).collect::<Vec<_>>(),
            ),
            col(
                "dev_loss_last_std",
                rows.iter().map(|r| r.loss_std).collect::<Vec<_>>(),
            ),
            col(
                "dev_loss_last_seeds",
                rows.iter()
                    .map(|r| r.losses.iter().flatten().count() as u32)
                    .collect::<Vec<_>>(),
            ),
            col(
                "baseline",
                rows.iter()
                    .map(|r| r.comparison.as_ref().map(|c| c.baseline.clone()))
                    .collect::<Vec<Option<String>>>(),
            ),
            col(
                "paired_seeds",
                rows.iter()
                    .map(|r| r.comparison.as_ref().map(|c| c.t.n as u32))
                    .collect::<Vec<Option<u32>>>(),
            ),
            col("paired_diff", cmp(&|c| Some(c.t.mean))),
            col("paired_sd", cmp(&|c| c.t.sd)),
            col("t_ci_low", cmp(&|c| c.t.interval.map(|i| i.0))),
            col("t_ci_high", cmp(&|c| c.t.interval.map(|i| i.1))),
            col(
                "bootstrap_ci_low",
                cmp(&|c| c.bootstrap.as_ref().map(|b| b.interval.0)),
            ),
            col(
                "bootstrap_ci_high",
                cmp(&|c| c.bootstrap.as_ref().map(|b| b.interval.1)),
            ),
            col("detectable_effect", cmp(&|c| c.detectable)),
            col(
                "seeds_for_paper_gain",
                rows.iter()
                    .map(|r| {
                        r.comparison
                            .as_ref()
                            .and_then(|c| c.seeds_for_paper_gain)
                            .map(|n| n as u32)
                    })
                    .collect::<Vec<Option<u32>>>(),
            ),
            col(
                "verdict",
                rows.iter()
                    .map(|r| {
                        r.comparison
                            .as_ref()
                            .map(|c| c.verdict().short().to_string())
                    })
                    .collect::<Vec<Option<String>>>(),
            ),
            col(
                "dev_loss_paired_diff",
                cmp(&|c| c.loss.as_ref().map(|l| l.mean)),
            ),
            col(
                "dev_loss_ci_low",
                cmp(&|c| c.loss.as_ref().and_then(|l| l.interval).map(|i| i.0)),
            ),
            col(
                "dev_loss_ci_high",
                cmp(&|c| c.loss.as_ref().and_then(|l| l.interval).map(|i| i.1)),
            ),
            col(
                &format!("{metric}_best_mean"),
                rows.iter().map(|r| r.best_mean).collect::<Vec<_>>(),
            ),
            col(
                &format!("{metric}_best_std"),
                rows.iter().map(|r| r.best_std).collect::<Vec<_>>(),
            ),
            col(
                "budget",
                rows.iter().map(|r| r.budget as u64).collect::<Vec<_>>(),
            ),
            col(
                "adapter_params",
                rows.iter().map(|r| r.adapter_params).collect::<Vec<_>>(),
            ),
            col(
                "trainable_params",
                rows.iter().map(|r| r.trainable_params).collect::<Vec<_>>(),
            ),
            col(
                "wall_time_s",
                rows.iter().map(|r| r.wall_time_s).collect::<Vec<_>>(),
            ),
        ];
        Ok(DataFrame::new(rows.len(), cols)?)
    }

    /// One row per finished child (what `runs.csv` holds).
    pub fn runs_frame(&self) -> Result<DataFrame> {
        let r = &self.records;
        let cols = vec![
            col("key", r.iter().map(|x| x.key.clone()).collect::<Vec<_>>()),
            col(
                "method",
                r.iter().map(|x| x.method.clone()).collect::<Vec<_>>(),
            ),
            col("seed", r.iter().map(|x| x.seed).collect::<Vec<_>>()),
            col(
                "metric",
                r.iter().map(|x| x.metric.clone()).collect::<Vec<_>>(),
            ),
            col("last", r.iter().map(last_metric).collect::<Vec<_>>()),
            col("dev_loss_last", r.iter().map(last_loss).collect::<Vec<_>>()),
            col("best", r.iter().map(|x| x.best_metric).collect::<Vec<_>>()),
            col(
                "best_epoch",
                r.iter()
                    .map(|x| x.best_epoch.map(|e| e as u32))
                    .collect::<Vec<Option<u32>>>(),
            ),
            col(
                "f1_at_best",
                r.iter()
                    .map(|x| x.best_metrics.get("f1").copied())
                    .collect::<Vec<Option<f64>>>(),
            ),
            col(
                "epoch_metrics",
                r.iter()
                    .map(|x| {
                        x.epoch_metrics
                            .iter()
                            .map(|v| format!("{v:.4}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect::<Vec<_>>(),
            ),
            col(
                "budget",
                r.iter().map(|x| x.budget as u64).collect::<Vec<_>>(),
            ),
            col(
                "adapter_params",
                r.iter()
                    .map(|x| x.adapter_params as u64)
                    .collect::<Vec<_>>(),
            ),
            col(
                "wall_time_s",
                r.iter().map(|x| x.wall_time_s).collect::<Vec<_>>(),
            ),
            col(
                "enabled",
                r.iter().map(|x| x.enabled_string()).collect::<Vec<_>>(),
            ),
            col(
                "run_id",
                r.iter().map(|x| x.run_id.clone()).collect::<Vec<_>>(),
            ),
        ];
        Ok(DataFrame::new(r.len(), cols)?)
    }
}
