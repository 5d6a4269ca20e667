//! The results table in Markdown: last-epoch primary metric and dev cross-entropy first, the
//! paired comparison with the baseline (difference, t and bootstrap intervals, detectable
//! effect, verdict), the best epoch only as a description, then costs.

use super::rows::MethodRow;
use super::summary::fmt_secs;
use super::verdict::fmt_interval;
use super::StudyReport;
use std::fmt::Write as _;

fn pm(mean: Option<f64>, std: Option<f64>, digits: usize) -> String {
    match (mean, std) {
        (Some(m), Some(s)) if m.is_finite() => format!("{m:.digits$} ± {s:.digits$}"),
        _ => "-".into(),
    }
}

/// The comparison cells: vs, paired Δ, t interval, bootstrap interval, detectable Δ, verdict.
fn comparison_cells(r: &MethodRow) -> [String; 6] {
    let Some(c) = &r.comparison else {
        return [
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
        ];
    };
    [
        c.baseline.clone(),
        format!("{:+.2}", c.t.mean),
        c.t.interval.map_or("-".into(), |ci| fmt_interval(ci, 2)),
        c.bootstrap
            .as_ref()
            .map_or("-".into(), |b| fmt_interval(b.interval, 2)),
        c.detectable.map_or("-".into(), |d| format!("{d:.2}")),
        c.verdict().short().into(),
    ]
}

impl StudyReport {
    /// The results table in Markdown (metric values in points: x100).
    pub fn table_markdown(&self) -> String {
        let metric = self.metric();
        let loss = self.loss_short();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| method | seeds | {metric}, last epoch (mean ± std) | dev {loss}, last epoch (mean ± std) | vs | paired Δ | 95% t CI | bootstrap 95% CI | detectable Δ (80% power) | verdict | {metric}, best epoch (descriptive) | per seed (last epoch) | budget | adapter params | wall time |"
        );
        let _ = writeln!(s, "|{}", "---|".repeat(15));
        for r in self.rows() {
            let per_seed: Vec<String> = r
                .seeds
                .iter()
                .zip(&r.values)
                .map(|(s, v)| format!("{s}: {v:.2}"))
                .collect();
            let loss_seeds = r.losses.iter().flatten().count();
            let loss = pm(r.loss_mean, r.loss_std, 3)
                + &if loss_seeds < r.n && loss_seeds > 0 {
                    format!(" ({loss_seeds} of {})", r.n)
                } else {
                    String::new()
                };
            let [vs, d, ci, boot, det, verdict] = comparison_cells(&r);
            let _ = writeln!(
                s,
                "| {} | {} | {} | {loss} | {vs} | {d} | {ci} | {boot} | {det} | {verdict} | {} | {} | {} | {:.0} | {} |",
                r.method,
                r.n,
                pm(Some(r.mean), Some(r.std), 2),
                pm(Some(r.best_mean), Some(r.best_std), 2),
                per_seed.join(", "),
                r.budget,
                r.adapter_params,
                fmt_secs(r.wall_time_s),
            );
        }
        s
    }
}
