//! A study report's figures: last-epoch accuracy against adapter parameters, the paired
//! differences against the baseline with their intervals, allocation and score heat maps, and
//! how often each slot was chosen over seeds. The study layer makes the numbers; this module
//! (above it) draws them.

use super::{
    AllocationHeatmap, BudgetPlot, BudgetPoint, Figure, PairedDiffPlot, PairedRow, ScoreHeatmap,
};
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
    for (fig, stem) in [
        (budget_figure(this)?, "budget"),
        (paired_figure(this)?, "paired"),
    ] {
        let Some(fig) = fig else { continue };
        // PNG too: the README shows these two, and not every viewer draws SVG.
        let (svg, png) = (
            dir.join(format!("{stem}.svg")),
            dir.join(format!("{stem}.png")),
        );
        fig.save_svg(&svg)?;
        fig.save_png(&png)?;
        out.extend([svg, png]);
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

/// Last-epoch dev metric against adapter parameters: every seed, mean ± std per method; `None`
/// before any child has a last-epoch metric.
pub fn budget_figure(report: &StudyReport) -> Result<Option<Figure>> {
    let metric = report.metric();
    let points: Vec<BudgetPoint> = report
        .records
        .iter()
        .filter_map(|r| {
            last_metric(r)
                .map(|m| BudgetPoint::new(r.method.clone(), r.adapter_params, m * 100.0, r.seed))
        })
        .collect();
    if points.is_empty() {
        return Ok(None);
    }
    BudgetPlot::new(points)
        .metric_name(format!("dev {metric}, last epoch (%)"))
        .title(format!(
            "{}: dev {metric} against adapter parameters",
            report.name
        ))
        .size(1000, 600)
        .render()
        .map(Some)
}

/// Each method's per-seed differences from its baseline with the mean and 95% t interval (and
/// the paper's +1.6 on MRPC); `None` before any method shares a seed with its baseline.
pub fn paired_figure(report: &StudyReport) -> Result<Option<Figure>> {
    let metric = report.metric();
    let paired: Vec<PairedRow> = report
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
    if paired.is_empty() {
        return Ok(None);
    }
    let n = paired.iter().map(|r| r.diffs.len()).max().unwrap_or(0);
    let mut plot = PairedDiffPlot::new(paired)
        .x_name(format!(
            "difference in dev {metric}, last epoch (points); bars: 95% t interval"
        ))
        .title(format!(
            "{}: each method against its baseline, paired by seed (up to {n} seeds)",
            report.name
        ));
    if report.records.iter().all(|r| r.task == "mrpc") {
        plot = plot.reference(PAPER_GAIN, "paper: +1.6");
    }
    plot.render().map(Some)
}
