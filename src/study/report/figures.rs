//! The report's figures: last-epoch accuracy against budget, allocation and score heat maps, and how often
//! each slot was chosen over seeds.

use super::rows::last_metric;
use super::{is_flat, StudyReport};
use crate::adapters::SlotId;
use crate::plot::{
    AllocationHeatmap, BudgetPlot, BudgetPoint, PairedDiffPlot, PairedRow, ScoreHeatmap,
};
use crate::proxy::Scores;
use crate::study::record::ChildRecord;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

impl StudyReport {
    /// The budget plot and heat maps (allocation per scored child, scores with the allocation
    /// outlined, and per method how often each slot was chosen over seeds).
    pub fn write_plots(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        if self.records.is_empty() {
            return Ok(out);
        }
        let metric = self.metric();
        let points: Vec<BudgetPoint> = self
            .records
            .iter()
            .filter_map(|r| {
                last_metric(r).map(|m| {
                    BudgetPoint::new(r.method.clone(), r.adapter_params, m * 100.0, r.seed)
                })
            })
            .collect();
        if !points.is_empty() {
            let fig = BudgetPlot::new(points)
                .metric_name(format!("dev {metric}, last epoch (%)"))
                .title(format!(
                    "{}: dev {metric} against adapter parameters",
                    self.name
                ))
                .size(1000, 600)
                .render()?;
            // PNG too: the README shows these two, and not every viewer draws SVG.
            for (p, png) in [
                (dir.join("budget.svg"), false),
                (dir.join("budget.png"), true),
            ] {
                if png {
                    fig.save_png(&p)?;
                } else {
                    fig.save_svg(&p)?;
                }
                out.push(p);
            }
        }
        let paired: Vec<PairedRow> = self
            .rows()
            .into_iter()
            .filter_map(|r| {
                let c = r.comparison?;
                Some(PairedRow {
                    label: format!("{} − {}", r.method, c.baseline),
                    diffs: c.diffs.clone(),
                    mean: c.t.mean,
                    interval: c.t.interval,
                })
            })
            .collect();
        if !paired.is_empty() {
            let n = paired.iter().map(|r| r.diffs.len()).max().unwrap_or(0);
            let mut plot = PairedDiffPlot::new(paired)
                .x_name(format!(
                    "difference in dev {metric}, last epoch (points); bars: 95% t interval"
                ))
                .title(format!(
                    "{}: each method against its baseline, paired by seed (up to {n} seeds)",
                    self.name
                ));
            if self.records.iter().all(|r| r.task == "mrpc") {
                plot = plot.reference(super::PAPER_GAIN, "paper: +1.6");
            }
            let fig = plot.render()?;
            for (p, png) in [
                (dir.join("paired.svg"), false),
                (dir.join("paired.png"), true),
            ] {
                if png {
                    fig.save_png(&p)?;
                } else {
                    fig.save_svg(&p)?;
                }
                out.push(p);
            }
        }
        for sub in ["alloc", "scores", "chosen"] {
            let d = dir.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        }
        for r in &self.records {
            if r.family == "uniform" || r.method == "sc-uniform-r2" {
                continue;
            }
            let stem = format!("{}-seed{}", r.method, r.seed);
            if let Ok(fig) = AllocationHeatmap::new(&r.allocation)
                .title(format!("{} seed {}: allocation", r.method, r.seed))
                .render()
            {
                let p = dir.join("alloc").join(format!("{stem}.svg"));
                fig.save_svg(&p)?;
                out.push(p);
            }
            if let Some(sc) = &r.scores {
                if !is_flat(sc) {
                    if let Ok(fig) = ScoreHeatmap::new(sc)
                        .allocation(&r.allocation)
                        .title(format!("{} seed {}: {} scores", r.method, r.seed, sc.proxy))
                        .render()
                    {
                        let p = dir.join("scores").join(format!("{stem}.svg"));
                        fig.save_svg(&p)?;
                        out.push(p);
                    }
                }
            }
        }
        for (method, freq) in self.selection_frequency() {
            if let Ok(fig) = ScoreHeatmap::new(&freq)
                .log_scale(false)
                .title(format!(
                    "{method}: fraction of seeds (dynamic: of re-allocations) enabling each slot"
                ))
                .render()
            {
                let p = dir.join("chosen").join(format!("{method}.svg"));
                fig.save_svg(&p)?;
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Per scored method: the fraction of its seeds (dynamic: of all re-allocations) that
    /// enabled each candidate slot, as a [`Scores`] for the heat map.
    pub fn selection_frequency(&self) -> BTreeMap<String, Scores> {
        let mut out = BTreeMap::new();
        for r in self.rows() {
            let recs: Vec<&ChildRecord> = self
                .records
                .iter()
                .filter(|x| x.method == r.method)
                .collect();
            if recs[0].family == "uniform" || recs[0].method == "sc-uniform-r2" {
                continue;
            }
            let mut values: BTreeMap<SlotId, f64> = recs[0]
                .allocation
                .candidates
                .iter()
                .map(|s| (*s, 0.0))
                .collect();
            let mut total = 0.0;
            for rec in &recs {
                match &rec.times_enabled {
                    Some(t) => {
                        total += rec.num_reallocations as f64;
                        for (s, n) in t {
                            *values.entry(*s).or_default() += *n as f64;
                        }
                    }
                    None => {
                        total += 1.0;
                        for s in rec.allocation.ranks.keys() {
                            *values.entry(*s).or_default() += 1.0;
                        }
                    }
                }
            }
            if total > 0.0 {
                for v in values.values_mut() {
                    *v /= total;
                }
            }
            out.insert(
                r.method.clone(),
                Scores {
                    proxy: format!("{} selection frequency", r.method),
                    values,
                    rank_gains: None,
                    num_batches: 0,
                    seconds: 0.0,
                },
            );
        }
        out
    }
}
