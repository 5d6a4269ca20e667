//! How a dynamic run's [`ReallocationLog`] shows: how often each slot was on, as a text grid (its
//! `Display`) and as shaded HTML. Allocations and scores show through their own modules
//! (`adapters::allocation_display`, `proxy::scores_display`).

use crate::adapters::allocation_display::axes;
use crate::adapters::{SlotId, SlotKind};
use crate::display::grid::Grid;
use crate::display::html::{emit_evcxr, escape};
use crate::search::dynamic::ReallocationLog;
use std::fmt;

pub use crate::adapters::allocation_display::{params_by_kind, params_by_kind_in};
pub use crate::display::thousands;
pub use crate::proxy::scores_display::scores_text;

/// Background colour for a value in [0, 1] (light to dark blue), and a readable text colour.
fn shade(x: f64) -> (String, &'static str) {
    let x = if x.is_finite() {
        x.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let a = 0.12 + 0.78 * x;
    let text = if a > 0.55 { "#fff" } else { "#000" };
    (format!("rgba(31,119,180,{a:.2})"), text)
}

fn log_grid(log: &ReallocationLog) -> (Grid, Vec<usize>, Vec<SlotKind>) {
    let times = log.times_enabled();
    let (layers, kinds) = axes(times.keys());
    let n = log.len();
    let mut header = vec!["layer".to_string()];
    header.extend(kinds.iter().map(|k| k.short().to_string()));
    let rows = layers
        .iter()
        .map(|&l| {
            let mut row = vec![l.to_string()];
            for &k in &kinds {
                row.push(
                    times
                        .get(&SlotId::new(l, k))
                        .map_or("-".into(), |t| format!("{t}/{n}")),
                );
            }
            row
        })
        .collect();
    let churn = log.churn();
    let mut footer = vec![format!("churn {:?}", churn)];
    footer.extend(kinds.iter().map(|_| String::new()));
    (
        Grid {
            header,
            rows,
            footer,
        },
        layers,
        kinds,
    )
}

fn log_title(log: &ReallocationLog) -> String {
    match (log.records.first(), log.records.last()) {
        (Some(a), Some(b)) => format!(
            "{} re-allocations (proxy {}) from step {} to step {}: times each slot was on",
            log.len(),
            a.scores.proxy,
            a.step,
            b.step
        ),
        _ => "no re-allocations".into(),
    }
}

impl fmt::Display for ReallocationLog {
    /// How often each slot was on over the re-allocations (layers x kinds), and the churn (slots
    /// switched) at each re-allocation.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&log_grid(self).0.text(&log_title(self)))
    }
}

impl ReallocationLog {
    /// The grid of [`Display`](fmt::Display) as HTML, shaded by the fraction of re-allocations
    /// each slot was on.
    pub fn to_html(&self) -> String {
        let (grid, layers, kinds) = log_grid(self);
        let times = self.times_enabled();
        let n = self.len().max(1) as f64;
        let mut h = String::new();
        h.push_str("<table class=\"heterolora-reallocations\" style=\"border-collapse:collapse;text-align:right;font-family:monospace\">\n");
        h.push_str(&format!(
            "<caption style=\"text-align:left\">{}</caption>\n<thead><tr>",
            escape(&log_title(self))
        ));
        for c in &grid.header {
            h.push_str(&format!("<th>{}</th>", escape(c)));
        }
        h.push_str("</tr></thead>\n<tbody>\n");
        for (row, &l) in grid.rows.iter().zip(&layers) {
            h.push_str(&format!("<tr><th>{}</th>", row[0]));
            for (cell, &k) in row[1..].iter().zip(&kinds) {
                let slot = SlotId::new(l, k);
                let t = times.get(&slot).copied().unwrap_or(0) as f64;
                let (bg, fg) = shade(t / n);
                h.push_str(&format!(
                    "<td title=\"{slot}\" style=\"background:{bg};color:{fg};padding:2px 6px\">{cell}</td>"
                ));
            }
            h.push_str("</tr>\n");
        }
        h.push_str(&format!(
            "</tbody>\n<tfoot><tr><th colspan=\"{}\" style=\"text-align:left\">{}</th></tr></tfoot>\n</table>",
            kinds.len() + 1,
            escape(&grid.footer[0])
        ));
        h
    }

    /// Inline display in an evcxr notebook.
    pub fn evcxr_display(&self) {
        emit_evcxr(&[("text/html", &self.to_html())]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::{Allocation, ModelDims, SearchSpace};
    use crate::proxy::Scores;

    #[test]
    fn reallocation_log_grid_counts_times_on() {
        use crate::search::dynamic::ReallocationRecord;
        let slots = SearchSpace::lora_qv().slots(2);
        let mut log = ReallocationLog::new();
        for (step, on) in [(0, vec![0, 1]), (5, vec![1, 2])] {
            let scores = Scores {
                proxy: "grad-norm".into(),
                values: slots.iter().map(|s| (*s, 1.0)).collect(),
                rank_gains: None,
                num_batches: 1,
                seconds: 0.0,
            };
            let mut a = Allocation::from_spec("q,v:r=8", &ModelDims::MINILM_L6).unwrap();
            a.ranks.retain(|s, _| on.iter().any(|&i| slots[i] == *s));
            log.push(ReallocationRecord::new(step, 10, scores, &a));
        }
        let t = log.to_string();
        let rows: Vec<Vec<&str>> = t.lines().map(|l| l.split_whitespace().collect()).collect();
        assert!(
            t.starts_with("2 re-allocations (proxy grad-norm) from step 0 to step 5"),
            "{t}"
        );
        assert_eq!(rows[2], ["0", "1/2", "2/2"]);
        assert_eq!(rows[3], ["1", "1/2", "0/2"]);
        assert!(t.contains("churn [0, 2]"), "{t}");
        let h = log.to_html();
        assert!(
            h.contains(
                "title=\"layer.0.attention.value\" style=\"background:rgba(31,119,180,0.90)"
            ),
            "{h}"
        );
        assert!(h.contains("churn [0, 2]"));
    }
}
