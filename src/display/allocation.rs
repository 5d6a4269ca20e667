//! Tables for [`Allocation`] and [`Scores`]: layers by slot kind with totals, as HTML (cells shaded
//! like the heat maps) and as plain text.

use super::html::{emit_evcxr, HtmlTable, TableCell};
use crate::adapters::{SlotId, SlotKind};
use crate::plot::palette::{blues, hex, viridis};
use crate::proxy::Scores;
use crate::search::Allocation;
use std::collections::BTreeSet;

fn fmt_count(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn kinds_of<'a>(slots: impl Iterator<Item = &'a SlotId> + Clone) -> Vec<SlotKind> {
    SlotKind::ALL
        .into_iter()
        .filter(|k| slots.clone().any(|s| s.kind == *k))
        .collect()
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

impl Allocation {
    /// Layers by slot kind: the rank of each enabled slot, `·` for a candidate left off, blank
    /// where the slot is not a candidate; per-layer and per-kind rank sums and parameters.
    pub fn to_table(&self) -> HtmlTable {
        let cands: BTreeSet<SlotId> = self
            .candidates
            .iter()
            .chain(self.ranks.keys())
            .copied()
            .collect();
        let kinds = kinds_of(cands.iter());
        let layers = self
            .dims
            .num_layers
            .max(cands.iter().map(|s| s.layer + 1).max().unwrap_or(0));
        let distinct: Vec<usize> = self
            .ranks
            .values()
            .map(|s| s.r)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let shade = |r: usize| {
            let i = distinct.iter().position(|&d| d == r).unwrap_or(0);
            let t = if distinct.len() > 1 {
                0.15 + 0.85 * i as f64 / (distinct.len() - 1) as f64
            } else {
                0.75
            };
            hex(blues(t))
        };
        let mut headers = vec!["layer".to_string()];
        headers.extend(kinds.iter().map(|k| k.short().to_string()));
        headers.extend(["Σ r".to_string(), "params".to_string()]);
        let title = match &self.proxy {
            Some(p) => format!("Allocation `{}` ({p})", self.method),
            None => format!("Allocation `{}`", self.method),
        };
        let mut t = HtmlTable::new(headers)
            .caption(format!(
                "{title}: {} of {} slots on, {} trainable parameters",
                self.ranks.len(),
                cands.len(),
                fmt_count(self.trainable_params())
            ))
            .row_headers(true);
        let mut col_r = vec![0usize; kinds.len()];
        let mut col_p = vec![0usize; kinds.len()];
        for layer in 0..layers {
            let mut row = vec![TableCell::new(layer.to_string())];
            let (mut rr, mut rp) = (0, 0);
            for (c, &kind) in kinds.iter().enumerate() {
                let slot = SlotId::new(layer, kind);
                row.push(match self.ranks.get(&slot) {
                    Some(sr) => {
                        let p = slot.params_at_rank(sr.r, &self.dims);
                        rr += sr.r;
                        rp += p;
                        col_r[c] += sr.r;
                        col_p[c] += p;
                        TableCell::new(sr.r.to_string()).background(shade(sr.r))
                    }
                    None if cands.contains(&slot) => TableCell::new("·"),
                    None => TableCell::new(""),
                });
            }
            row.push(TableCell::new(rr.to_string()).bold());
            row.push(TableCell::new(fmt_count(rp)).bold());
            t.push_row(row);
        }
        let mut sums = vec![TableCell::new("Σ r").bold()];
        sums.extend(col_r.iter().map(|v| TableCell::new(v.to_string()).bold()));
        sums.push(TableCell::new(col_r.iter().sum::<usize>().to_string()).bold());
        sums.push(TableCell::new(""));
        t.push_footer_row(sums);
        let mut params = vec![TableCell::new("params").bold()];
        params.extend(col_p.iter().map(|&v| TableCell::new(fmt_count(v)).bold()));
        params.push(TableCell::new(""));
        params.push(TableCell::new(fmt_count(self.trainable_params())).bold());
        t.push_footer_row(params);
        if !self.meta.is_empty() {
            let meta: Vec<String> = self.meta.iter().map(|(k, v)| format!("{k}={v}")).collect();
            t = t.note(meta.join(", "));
        }
        t
    }

    /// The allocation table as HTML.
    pub fn to_html(&self) -> String {
        self.to_table().to_html()
    }

    /// The allocation table as aligned plain text.
    pub fn to_text(&self) -> String {
        self.to_table().to_text()
    }

    /// Show the allocation table in evcxr.
    pub fn evcxr_display(&self) {
        emit_evcxr(&[
            ("text/plain", &self.to_text()),
            ("text/html", &self.to_html()),
        ]);
    }
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

#[cfg(test)]
mod tests {
    use crate::adapters::{ModelDims, SearchSpace};
    use crate::proxy::Scores;
    use crate::search::{Allocation, SlotRank};
    use std::collections::BTreeMap;

    fn alloc() -> Allocation {
        let mut ranks = BTreeMap::new();
        ranks.insert(
            "layer.0.attention.query".parse().unwrap(),
            SlotRank {
                r: 8,
                lora_alpha: 16.0,
            },
        );
        ranks.insert(
            "layer.1.residual1".parse().unwrap(),
            SlotRank {
                r: 2,
                lora_alpha: 4.0,
            },
        );
        Allocation {
            dims: ModelDims {
                num_layers: 2,
                hidden_size: 8,
                intermediate_size: 32,
            },
            candidates: SearchSpace::parse_kinds("q,v,res1").unwrap().slots(2),
            ranks,
            method: "topk<&>".into(),
            proxy: None,
            meta: [("budget".to_string(), "1000".to_string())].into(),
        }
    }

    #[test]
    fn allocation_html_has_ranks_totals_and_escaped_method() {
        let h = alloc().to_html();
        assert!(
            h.contains("Allocation `topk&lt;&amp;&gt;`: 2 of 6 slots on, 160 trainable parameters"),
            "{h}"
        );
        // header + 2 layers + 2 footer rows
        assert_eq!(h.matches("<tr>").count(), 5);
        for head in ["q", "v", "res1", "Σ r", "params"] {
            assert!(h.contains(&format!(">{head}</th>")), "{head}");
        }
        assert!(h.contains(">8</td>") && h.contains(">·</td>"));
        // q at r = 8: 8 * (8 + 8) = 128 params; res1 at r = 2: 32.
        assert!(h.contains("font-weight:bold\">128</td>"));
        assert!(h.contains("font-weight:bold\">160</td>"));
        assert!(h.contains("budget=1000"));
        let text = alloc().to_text();
        let tokens = |i: usize| -> Vec<String> {
            text.lines()
                .nth(i)
                .unwrap()
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        assert_eq!(
            tokens(1),
            ["layer", "q", "v", "res1", "Σ", "r", "params"],
            "{text}"
        );
        assert_eq!(tokens(3), ["0", "8", "·", "·", "8", "128"], "{text}");
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
        assert_eq!(super::fmt_score(0.123456), "0.1235");
        assert_eq!(super::fmt_score(1234.56), "1235");
        assert_eq!(super::fmt_score(-1.5e-5), "-1.5e-5");
    }
}
