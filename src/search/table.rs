//! Text and HTML grids of allocations and scores: layers as rows, slot kinds as columns.
//!
//! The HTML is pure (a `String`, unit-tested); `evcxr_display` prints it as one evcxr block.

use crate::adapters::{SlotId, SlotKind};
use crate::proxy::Scores;
use crate::search::allocation::Allocation;
use crate::search::dynamic::ReallocationLog;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;

/// `1234567` -> `1,234,567`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Prints one evcxr display block in a single write, so that blocks from threads never interleave.
pub fn evcxr_print(mime: &str, content: &str) {
    let block = format!("EVCXR_BEGIN_CONTENT {mime}\n{content}\nEVCXR_END_CONTENT\n");
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(block.as_bytes());
    let _ = out.flush();
}

/// The layers and kinds a set of slots spans, in order.
fn axes<'a>(slots: impl Iterator<Item = &'a SlotId>) -> (Vec<usize>, Vec<SlotKind>) {
    let mut layers = std::collections::BTreeSet::new();
    let mut kinds = std::collections::BTreeSet::new();
    for s in slots {
        layers.insert(s.layer);
        kinds.insert(s.kind);
    }
    // SlotKind's Ord follows SlotKind::ALL: LoRA kinds first.
    (layers.into_iter().collect(), kinds.into_iter().collect())
}

/// A rendered grid: header, one row per layer, one footer row; the first column is the label.
struct Grid {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    footer: Vec<String>,
}

impl Grid {
    fn text(&self, title: &str) -> String {
        let ncol = self.header.len();
        let mut w = vec![0; ncol];
        for row in std::iter::once(&self.header)
            .chain(&self.rows)
            .chain(std::iter::once(&self.footer))
        {
            for (i, c) in row.iter().enumerate() {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let line = |row: &[String]| -> String {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == 0 {
                        format!("{c:<width$}", width = w[0])
                    } else {
                        format!("{c:>width$}", width = w[i])
                    }
                })
                .collect();
            cells.join("  ").trim_end().to_string()
        };
        let mut out = String::new();
        out.push_str(title);
        out.push('\n');
        out.push_str(&line(&self.header[..]));
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(&r[..]));
            out.push('\n');
        }
        out.push_str(&line(&self.footer[..]));
        out
    }
}

fn allocation_grid(a: &Allocation) -> Grid {
    let (layers, kinds) = axes(a.candidates.iter().chain(a.ranks.keys()));
    let mut header = vec!["layer".to_string()];
    header.extend(kinds.iter().map(|k| k.short().to_string()));
    header.push("params".into());
    let mut rows = Vec::new();
    for &l in &layers {
        let mut row = vec![l.to_string()];
        let mut params = 0;
        for &k in &kinds {
            let slot = SlotId::new(l, k);
            row.push(match a.ranks.get(&slot) {
                Some(sr) => {
                    params += slot.params_at_rank(sr.r, &a.dims);
                    sr.r.to_string()
                }
                None if a.candidates.contains(&slot) => ".".into(),
                None => "-".into(),
            });
        }
        row.push(thousands(params));
        rows.push(row);
    }
    let mut footer = vec!["on".to_string()];
    for &k in &kinds {
        let on = a.ranks.keys().filter(|s| s.kind == k).count();
        let of = a.candidates.iter().filter(|s| s.kind == k).count();
        footer.push(format!("{on}/{of}"));
    }
    footer.push(thousands(a.trainable_params()));
    Grid {
        header,
        rows,
        footer,
    }
}

fn allocation_title(a: &Allocation) -> String {
    a.summary().to_string()
}

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

impl fmt::Display for Allocation {
    /// A grid of ranks: layers as rows, slot kinds as columns; `.` a candidate left off, `-` not a
    /// candidate; per-layer parameters on the right, enabled/candidate counts at the bottom.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&allocation_grid(self).text(&allocation_title(self)))
    }
}

impl Allocation {
    /// The rank grid of [`Display`](fmt::Display) as an HTML table, shaded by rank, with each
    /// cell's slot id, rank and alpha as a tooltip.
    pub fn to_html(&self) -> String {
        let grid = allocation_grid(self);
        let max_r = self.ranks.values().map(|s| s.r).max().unwrap_or(1).max(1) as f64;
        let (layers, kinds) = axes(self.candidates.iter().chain(self.ranks.keys()));
        let mut h = String::new();
        h.push_str("<table class=\"heterolora-allocation\" style=\"border-collapse:collapse;text-align:right;font-family:monospace\">\n");
        h.push_str(&format!(
            "<caption style=\"text-align:left\">{}</caption>\n<thead><tr>",
            escape_html(&allocation_title(self))
        ));
        for c in &grid.header {
            h.push_str(&format!("<th>{}</th>", escape_html(c)));
        }
        h.push_str("</tr></thead>\n<tbody>\n");
        for (row, &l) in grid.rows.iter().zip(&layers) {
            h.push_str(&format!("<tr><th>{}</th>", row[0]));
            for (cell, &k) in row[1..=kinds.len()].iter().zip(&kinds) {
                let slot = SlotId::new(l, k);
                match self.ranks.get(&slot) {
                    Some(sr) => {
                        let (bg, fg) = shade(sr.r as f64 / max_r);
                        h.push_str(&format!(
                            "<td class=\"on\" title=\"{slot} r={} alpha={}\" style=\"background:{bg};color:{fg};padding:2px 6px\">{cell}</td>",
                            sr.r, sr.lora_alpha
                        ));
                    }
                    None => {
                        let class = if cell == "." { "off" } else { "absent" };
                        h.push_str(&format!(
                            "<td class=\"{class}\" title=\"{slot}\" style=\"color:#999;padding:2px 6px\">{cell}</td>"
                        ));
                    }
                }
            }
            h.push_str(&format!("<td>{}</td></tr>\n", row[kinds.len() + 1]));
        }
        h.push_str("</tbody>\n<tfoot><tr>");
        for c in &grid.footer {
            h.push_str(&format!("<th>{}</th>", escape_html(c)));
        }
        h.push_str("</tr></tfoot>\n</table>");
        h
    }

    /// Inline display in an evcxr notebook.
    pub fn evcxr_display(&self) {
        evcxr_print("text/html", &self.to_html());
    }
}

fn fmt_score(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if (1e-3..1e4).contains(&a) {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

fn scores_grid(s: &Scores) -> Grid {
    let (layers, kinds) = axes(s.values.keys());
    let mut header = vec!["layer".to_string()];
    header.extend(kinds.iter().map(|k| k.short().to_string()));
    let rows = layers
        .iter()
        .map(|&l| {
            let mut row = vec![l.to_string()];
            for &k in &kinds {
                row.push(
                    s.values
                        .get(&SlotId::new(l, k))
                        .map_or("-".into(), |v| fmt_score(*v)),
                );
            }
            row
        })
        .collect();
    let mut footer = vec!["mean".to_string()];
    for &k in &kinds {
        let v: Vec<f64> = s
            .values
            .iter()
            .filter(|(id, _)| id.kind == k)
            .map(|(_, v)| *v)
            .collect();
        footer.push(fmt_score(v.iter().sum::<f64>() / v.len().max(1) as f64));
    }
    Grid {
        header,
        rows,
        footer,
    }
}

fn scores_title(s: &Scores) -> String {
    let mut t = format!(
        "scores of proxy {} on {} slots ({} batches, {:.2} s)",
        s.proxy,
        s.values.len(),
        s.num_batches,
        s.seconds
    );
    if s.rank_gains.is_some() {
        t.push_str(", with per-rank gains");
    }
    t
}

/// The scores grid as text (used by `Scores`' `Display`).
pub fn scores_text(s: &Scores) -> String {
    scores_grid(s).text(&scores_title(s))
}

/// The scores grid as an HTML table, each cell shaded by its score relative to the range.
pub fn scores_html(s: &Scores) -> String {
    let grid = scores_grid(s);
    let (layers, kinds) = axes(s.values.keys());
    let (lo, hi) = s
        .values
        .values()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut h = String::new();
    h.push_str("<table class=\"heterolora-scores\" style=\"border-collapse:collapse;text-align:right;font-family:monospace\">\n");
    h.push_str(&format!(
        "<caption style=\"text-align:left\">{}</caption>\n<thead><tr>",
        escape_html(&scores_title(s))
    ));
    for c in &grid.header {
        h.push_str(&format!("<th>{}</th>", escape_html(c)));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for (row, &l) in grid.rows.iter().zip(&layers) {
        h.push_str(&format!("<tr><th>{}</th>", row[0]));
        for (cell, &k) in row[1..].iter().zip(&kinds) {
            let slot = SlotId::new(l, k);
            match s.values.get(&slot) {
                Some(&v) => {
                    let (bg, fg) = shade((v - lo) / span);
                    h.push_str(&format!(
                        "<td title=\"{slot} = {v}\" style=\"background:{bg};color:{fg};padding:2px 6px\">{cell}</td>"
                    ));
                }
                None => h.push_str("<td style=\"color:#999;padding:2px 6px\">-</td>"),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n<tfoot><tr>");
    for c in &grid.footer {
        h.push_str(&format!("<th>{}</th>", escape_html(c)));
    }
    h.push_str("</tr></tfoot>\n</table>");
    h
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
            escape_html(&log_title(self))
        ));
        for c in &grid.header {
            h.push_str(&format!("<th>{}</th>", escape_html(c)));
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
            escape_html(&grid.footer[0])
        ));
        h
    }

    /// Inline display in an evcxr notebook.
    pub fn evcxr_display(&self) {
        evcxr_print("text/html", &self.to_html());
    }
}

/// Per-kind totals of an allocation's parameters, for legends and reports.
pub fn params_by_kind(a: &Allocation) -> BTreeMap<SlotKind, usize> {
    let mut out = BTreeMap::new();
    for (slot, sr) in &a.ranks {
        *out.entry(slot.kind).or_default() += slot.params_at_rank(sr.r, &a.dims);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::{ModelDims, SearchSpace};
    use crate::search::SlotRank;

    fn sample() -> Allocation {
        let mut a = Allocation::from_spec("q,v:r=2;res1,sc2:r=4", &ModelDims::MINILM_L6).unwrap();
        a.ranks.insert(
            SlotId::new(3, SlotKind::Value),
            SlotRank {
                r: 8,
                lora_alpha: 16.0,
            },
        );
        a.ranks.remove(&SlotId::new(0, SlotKind::Query));
        a.method = "topk <x>".into();
        a
    }

    #[test]
    fn thousands_separates() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(585_728), "585,728");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn text_table_shows_ranks_offs_and_absent_slots() {
        let a = sample();
        let t = a.to_string();
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].contains("topk <x>") && lines[0].contains("22 of 23"),
            "{t}"
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["layer", "q", "v", "res1", "sc2", "params"]
        );
        // Layer 0: q off, v at 2, res1 at 4, shortcut2 absent in layer 0.
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["0", ".", "2", "4", "-", "4,608"]
        );
        assert_eq!(
            lines[5].split_whitespace().collect::<Vec<_>>(),
            ["3", "2", "8", "4", "4", "13,824"]
        );
        let last = lines.last().unwrap().split_whitespace().collect::<Vec<_>>();
        assert_eq!(last[..5], ["on", "5/6", "6/6", "6/6", "5/5"]);
        assert_eq!(last[5], thousands(a.trainable_params()));
    }

    #[test]
    fn html_has_the_grid_cells_and_escapes() {
        let a = sample();
        let h = a.to_html();
        assert!(h.starts_with("<table") && h.ends_with("</table>"));
        assert!(h.contains("topk &lt;x&gt;") && !h.contains("<x>"));
        assert!(h.contains("<th>res1</th>") && h.contains("<th>sc2</th>"));
        assert!(
            h.contains("title=\"layer.3.attention.value r=8 alpha=16\""),
            "{h}"
        );
        assert!(h.contains("class=\"off\" title=\"layer.0.attention.query\""));
        assert!(h.contains("class=\"absent\" title=\"layer.0.shortcut2\""));
        assert_eq!(h.matches("</td></tr>").count(), 6);
        assert_eq!(h.matches("class=\"on\"").count(), a.ranks.len());
    }

    #[test]
    fn scores_grid_text_and_html() {
        let slots = SearchSpace::lora_qv().slots(2);
        let s = Scores {
            proxy: "grad-norm".into(),
            values: slots
                .iter()
                .enumerate()
                .map(|(i, s)| (*s, i as f64 * 0.5))
                .collect(),
            rank_gains: None,
            num_batches: 32,
            seconds: 1.5,
        };
        let t = scores_text(&s);
        assert!(t.contains("grad-norm") && t.contains("32 batches"), "{t}");
        let row1: Vec<&str> = t.lines().nth(3).unwrap().split_whitespace().collect();
        assert_eq!(row1, ["1", "1.0000", "1.5000"]);
        let h = scores_html(&s);
        assert!(h.contains("title=\"layer.1.attention.value = 1.5\""), "{h}");
        assert!(h.contains("rgba(31,119,180,0.90)"));
        assert!(h.contains("<th>mean</th>"));
        assert_eq!(fmt_score(1.5e-7), "1.500e-7");
    }

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
