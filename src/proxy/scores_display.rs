//! How [`Scores`] show: a plain-text grid (their `Display`) and an HTML table with each score
//! shaded on a viridis scale (`to_html`, `evcxr_display`).

use super::scores::Scores;
use crate::adapters::allocation_display::axes;
use crate::adapters::allocation_display::kinds_of;
use crate::adapters::SlotId;
use crate::display::grid::Grid;
use crate::display::html::{emit_evcxr, HtmlTable, TableCell};
use crate::display::palette::{hex, viridis};

/// A score in the text grid: 4 decimals, scientific outside [1e-3, 1e4).
fn fmt_score_text(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if (1e-3..1e4).contains(&a) {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

/// A score with 4 significant digits, scientific outside [1e-3, 1e5), trailing zeros dropped.
fn fmt_score(v: f64) -> String {
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    let a = v.abs();
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    if (1e-3..1e5).contains(&a) {
        let digits = (3 - a.log10().floor() as i32).max(0) as usize;
        trim(format!("{v:.digits$}"))
    } else {
        let s = format!("{v:.3e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        format!("{}e{e}", trim(m.to_string()))
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
                        .map_or("-".into(), |v| fmt_score_text(*v)),
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
        footer.push(fmt_score_text(
            v.iter().sum::<f64>() / v.len().max(1) as f64,
        ));
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

impl Scores {
    /// Layers by slot kind: each slot's score (shaded on a viridis scale), with per-layer and
    /// per-kind sums.
    pub fn to_table(&self) -> HtmlTable {
        let kinds = kinds_of(self.values.keys());
        let layers = self.values.keys().map(|s| s.layer + 1).max().unwrap_or(0);
        let finite: Vec<f64> = self
            .values
            .values()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        let (lo, hi) = finite
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let shade = |v: f64| {
            let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
            hex(viridis(t))
        };
        let fmt = fmt_score;
        let mut headers = vec!["layer".to_string()];
        headers.extend(kinds.iter().map(|k| k.short().to_string()));
        headers.push("Σ".to_string());
        let mut caption = format!(
            "Proxy scores `{}`: {} slots, {} batches",
            self.proxy,
            self.values.len(),
            self.num_batches
        );
        if self.seconds > 0.0 {
            caption.push_str(&format!(", {:.1} s", self.seconds));
        }
        let mut t = HtmlTable::new(headers).caption(caption).row_headers(true);
        let mut col = vec![0.0; kinds.len()];
        for layer in 0..layers {
            let mut row = vec![TableCell::new(layer.to_string())];
            let mut sum = 0.0;
            for (c, &kind) in kinds.iter().enumerate() {
                row.push(match self.values.get(&SlotId::new(layer, kind)) {
                    Some(&v) if v.is_finite() => {
                        sum += v;
                        col[c] += v;
                        TableCell::new(fmt(v)).background(shade(v))
                    }
                    Some(&v) => TableCell::new(format!("{v}")),
                    None => TableCell::new(""),
                });
            }
            row.push(TableCell::new(fmt(sum)).bold());
            t.push_row(row);
        }
        let mut sums = vec![TableCell::new("Σ").bold()];
        sums.extend(col.iter().map(|&v| TableCell::new(fmt(v)).bold()));
        sums.push(TableCell::new(fmt(col.iter().sum())).bold());
        t.push_footer_row(sums);
        t
    }

    /// The score table as HTML.
    pub fn to_html(&self) -> String {
        self.to_table().to_html()
    }

    /// The score table as aligned plain text.
    pub fn to_text(&self) -> String {
        self.to_table().to_text()
    }

    /// Show the score table in evcxr.
    pub fn evcxr_display(&self) {
        emit_evcxr(&[
            ("text/plain", &self.to_text()),
            ("text/html", &self.to_html()),
        ]);
    }
}

impl std::fmt::Display for Scores {
    /// The scores as a text grid: layers as rows, slot kinds as columns, per-kind means below.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&scores_text(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::SearchSpace;
    use std::collections::BTreeMap;

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
        assert_eq!(fmt_score_text(1.5e-7), "1.500e-7");
    }

    #[test]
    fn scores_html_shades_values_and_sums() {
        let mut values = BTreeMap::new();
        values.insert("layer.0.attention.query".parse().unwrap(), 0.5);
        values.insert("layer.1.attention.query".parse().unwrap(), 1.5);
        values.insert("layer.1.attention.value".parse().unwrap(), 2e-6);
        let s = Scores {
            proxy: "snip".into(),
            values,
            rank_gains: None,
            num_batches: 4,
            seconds: 1.25,
        };
        let h = s.to_html();
        assert!(
            h.contains("Proxy scores `snip`: 3 slots, 4 batches, 1.2 s") || h.contains("1.3 s"),
            "{h}"
        );
        assert!(
            h.contains(">0.5</td>") && h.contains(">1.5</td>") && h.contains(">2e-6</td>"),
            "{h}"
        );
        assert!(h.contains("background:#440154"));
        assert!(h.contains("font-weight:bold\">2</td>"), "{h}");
        assert_eq!(h.matches("<tr>").count(), 4);
        assert!(s.to_text().contains("snip"));
        assert_eq!(fmt_score(0.123456), "0.1235");
        assert_eq!(fmt_score(1234.56), "1235");
        assert_eq!(fmt_score(-1.5e-5), "-1.5e-5");
    }
}
