//! How an [`Allocation`] shows: a plain-text grid of ranks (its `Display`), and an HTML table with
//! cells shaded like the heat maps (`to_html`, `evcxr_display`).

use super::allocation::Allocation;
use super::{SlotId, SlotKind, SlotTable};
use crate::display::grid::Grid;
use crate::display::html::{emit_evcxr, HtmlTable, TableCell};
use crate::display::palette::{blues, hex};
use crate::display::thousands;
use crate::Result;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The layers and kinds a set of slots spans, in order.
pub(crate) fn axes<'a>(slots: impl Iterator<Item = &'a SlotId>) -> (Vec<usize>, Vec<SlotKind>) {
    let mut layers = std::collections::BTreeSet::new();
    let mut kinds = std::collections::BTreeSet::new();
    for s in slots {
        layers.insert(s.layer);
        kinds.insert(s.kind);
    }
    // SlotKind's Ord follows SlotKind::EVERY: LoRA kinds first.
    (layers.into_iter().collect(), kinds.into_iter().collect())
}

pub(crate) fn kinds_of<'a>(slots: impl Iterator<Item = &'a SlotId> + Clone) -> Vec<SlotKind> {
    SlotKind::EVERY
        .into_iter()
        .filter(|k| slots.clone().any(|s| s.kind == *k))
        .collect()
}

/// Parameters of a rank-`r` adapter on `slot`: with the model's table when one is given (a
/// decoder's grouped-query k/v and gate), else with BERT-shaped maps from the allocation's dims.
/// Callers with a table have checked every slot against it ([`Allocation::trainable_params_in`]).
fn slot_params(a: &Allocation, table: Option<&SlotTable>, slot: SlotId, r: usize) -> usize {
    match table {
        Some(t) => t.params_at_rank(slot, r).unwrap_or(0),
        None => slot.params_at_rank(r, &a.dims),
    }
}

fn total_params(a: &Allocation, table: Option<&SlotTable>) -> usize {
    a.ranks
        .iter()
        .map(|(s, sr)| slot_params(a, table, *s, sr.r))
        .sum()
}

fn allocation_grid(a: &Allocation, table: Option<&SlotTable>) -> Grid {
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
                    params += slot_params(a, table, slot, sr.r);
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
    footer.push(thousands(total_params(a, table)));
    Grid {
        header,
        rows,
        footer,
    }
}

impl fmt::Display for Allocation {
    /// A grid of ranks: layers as rows, slot kinds as columns; `.` a candidate left off, `-` not a
    /// candidate; per-layer parameters on the right, enabled/candidate counts at the bottom.
    /// Parameters are counted with BERT-shaped maps; a decoder's: [`Allocation::to_string_in`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&allocation_grid(self, None).text(&self.summary().to_string()))
    }
}

impl Allocation {
    /// The `Display` grid with parameters counted on the model `table` describes (a decoder's
    /// grouped-query k/v maps and gate); slots the model lacks are an error that names them.
    pub fn to_string_in(&self, table: &SlotTable) -> Result<String> {
        let title = self.summary_in(table)?.to_string();
        Ok(allocation_grid(self, Some(table)).text(&title))
    }

    /// Layers by slot kind: the rank of each enabled slot, `·` for a candidate left off, blank
    /// where the slot is not a candidate; per-layer and per-kind rank sums and parameters
    /// (BERT-shaped maps; a decoder's: [`Allocation::to_table_in`]).
    pub fn to_table(&self) -> HtmlTable {
        self.table_with(None)
    }

    /// [`Allocation::to_table`] with parameters counted on the model `table` describes; slots the
    /// model lacks are an error that names them.
    pub fn to_table_in(&self, table: &SlotTable) -> Result<HtmlTable> {
        self.trainable_params_in(table)?;
        Ok(self.table_with(Some(table)))
    }

    fn table_with(&self, table: Option<&SlotTable>) -> HtmlTable {
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
                thousands(total_params(self, table))
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
                        let p = slot_params(self, table, slot, sr.r);
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
            row.push(TableCell::new(thousands(rp)).bold());
            t.push_row(row);
        }
        let mut sums = vec![TableCell::new("Σ r").bold()];
        sums.extend(col_r.iter().map(|v| TableCell::new(v.to_string()).bold()));
        sums.push(TableCell::new(col_r.iter().sum::<usize>().to_string()).bold());
        sums.push(TableCell::new(""));
        t.push_footer_row(sums);
        let mut params = vec![TableCell::new("params").bold()];
        params.extend(col_p.iter().map(|&v| TableCell::new(thousands(v)).bold()));
        params.push(TableCell::new(""));
        params.push(TableCell::new(thousands(total_params(self, table))).bold());
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

/// Per-kind totals of an allocation's parameters, for legends and reports (BERT-shaped maps; a
/// decoder's: [`params_by_kind_in`]).
pub fn params_by_kind(a: &Allocation) -> BTreeMap<SlotKind, usize> {
    kind_totals(a, None)
}

/// [`params_by_kind`] on the model `table` describes; slots the model lacks are an error that
/// names them.
pub fn params_by_kind_in(a: &Allocation, table: &SlotTable) -> Result<BTreeMap<SlotKind, usize>> {
    a.trainable_params_in(table)?;
    Ok(kind_totals(a, Some(table)))
}

fn kind_totals(a: &Allocation, table: Option<&SlotTable>) -> BTreeMap<SlotKind, usize> {
    let mut out = BTreeMap::new();
    for (slot, sr) in &a.ranks {
        *out.entry(slot.kind).or_default() += slot_params(a, table, *slot, sr.r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::{ModelDims, SearchSpace, SlotRank};

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
    fn tables_count_with_the_model_slot_table() {
        use crate::adapters::Architecture;
        let d = ModelDims::MINILM_L6;
        let a = Allocation::from_spec("q,v:r=8", &d).unwrap();
        // BERT's table gives the plain outputs, byte for byte.
        let bert = SlotTable::bert(&d);
        assert_eq!(a.to_string_in(&bert).unwrap(), a.to_string());
        assert_eq!(a.to_table_in(&bert).unwrap().to_html(), a.to_html());
        assert_eq!(params_by_kind_in(&a, &bert).unwrap(), params_by_kind(&a));
        // Llama, 6 layers, hidden 384, 6 heads of 64 with 2 key-value heads: v maps 384 -> 128.
        let t = SlotTable::llama(Architecture::Llama, 6, 384, 1536, 384, 128);
        let text = a.to_string_in(&t).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("61,440 trainable parameters"), "{text}");
        let row0: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(
            row0,
            ["0", "8", "8", &thousands(8 * 768 + 8 * 512)],
            "{text}"
        );
        assert_eq!(
            lines.last().unwrap().split_whitespace().last(),
            Some("61,440")
        );
        let h = a.to_table_in(&t).unwrap().to_html();
        assert!(h.contains("61,440 trainable parameters"), "{h}");
        let by_kind = params_by_kind_in(&a, &t).unwrap();
        assert_eq!(by_kind[&SlotKind::Value], 6 * 8 * 512);
        assert_eq!(by_kind[&SlotKind::Query], 6 * 8 * 768);
        // A slot the model lacks is named.
        let g = Allocation::from_spec("gate:r=2", &d).unwrap();
        for e in [
            g.to_string_in(&bert).unwrap_err().to_string(),
            g.to_table_in(&bert).unwrap_err().to_string(),
            params_by_kind_in(&g, &bert).unwrap_err().to_string(),
        ] {
            assert!(e.contains("layer.0.gate"), "{e}");
        }
    }
}
