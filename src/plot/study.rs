//! A study report's figures: last-epoch accuracy against adapter parameters, the paired
//! differences against the baseline with their intervals, allocation and score heat maps, and
//! how often each slot was chosen over seeds. The study layer makes the numbers; this module
//! (above it) draws them.

use super::{AllocationHeatmap, BudgetPlot, BudgetPoint, PairedDiffPlot, PairedRow, ScoreHeatmap};
use crate::study::report::{is_flat, last_metric, StudyReport, PAPER_GAIN};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Writes the figures of `report` into `dir`: `budget.svg`/`.png`, `paired.svg`/`.png`, and the
/// heat maps under `alloc/`, `scores/` and `chosen/`.
pub fn write_study_plots(report: &StudyReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let this = report;
    let mut out = Vec::new();
    if this.records.is_empty() {
        return Ok(out);
    }
    let metric = this.metric();
    let points: Vec<BudgetPoint> = this
        .records
        .iter()
        .filter_map(|r| {
            last_metric(r)
                .map(|m| BudgetPoint::new(r.method.clone(), r.adapter_params, m * 100.0, r.seed))
        })
        .collect();
    if !points.is_empty() {
        let fig = BudgetPlot::new(points)
            .metric_name(format!("dev {metric}, last epoch (%)"))
            .title(format!(
                "{}: dev {metric} against adapter parameters",
                this.name
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
    let paired: Vec<PairedRow> = this
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
                this.name
            ));
        if this.records.iter().all(|r| r.task == "mrpc") {
            plot = plot.reference(PAPER_GAIN, "paper: +1.6");
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
    for r in &this.records {
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
    for (method, freq) in this.selection_frequency() {
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
