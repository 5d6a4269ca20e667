//! Heat maps: the rank allocation ([`AllocationHeatmap`]) and one proxy's scores
//! ([`ScoreHeatmap`]), both layers by slot kind with cell annotations and row / column totals.
//! Both are drawn by the shared grid chart (`grid.rs`), as is the re-allocation timeline.

use super::figure::Figure;
use super::grid::{Cell, ColourBar, Grid, Swatch};
use super::palette::{self, blues, viridis};
use super::{fmt_num, fmt_params, DEFAULT_SIZE};
use crate::adapters::{SlotId, SlotKind, SlotTable};
use crate::proxy::Scores;
use crate::search::Allocation;
use crate::Result;
use plotters::style::RGBColor;
use std::collections::BTreeSet;

// ---- allocation heat map ----------------------------------------------------------------------

/// How the allocation heat map colours enabled cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeatmapColour {
    /// Colour by rank (a blue ramp over the distinct ranks).
    Rank,
    /// One colour for every enabled slot.
    OnOff,
}

/// Layers by slot kind, each enabled slot coloured by its rank (or on/off) and annotated with it,
/// with per-layer and per-kind totals of rank and parameters.
///
/// | option | default | meaning |
/// |---|---|---|
/// | `colour` | `Rank` when ranks differ, else `OnOff` | cell colouring |
/// | `title` | `Allocation: <method> (<proxy>)` | chart title |
/// | `size` | 800 x 500 | pixels |
/// | `slot_table` | none: BERT-shaped maps | the model's sizes, for exact parameter totals of a decoder (grouped-query k/v, Llama's gate) |
///
/// Columns are the kinds the allocation has candidates of, Llama's `gate` included.
#[derive(Debug, Clone)]
pub struct AllocationHeatmap {
    alloc: Allocation,
    colour: Option<HeatmapColour>,
    title: Option<String>,
    size: Option<(u32, u32)>,
    table: Option<SlotTable>,
}

impl AllocationHeatmap {
    pub fn new(alloc: &Allocation) -> Self {
        AllocationHeatmap {
            alloc: alloc.clone(),
            colour: None,
            title: None,
            size: None,
            table: None,
        }
    }
    pub fn colour(mut self, colour: HeatmapColour) -> Self {
        self.colour = Some(colour);
        self
    }
    /// Count parameters with the model's slot table (a decoder's k/v and gate sizes).
    pub fn slot_table(mut self, table: &SlotTable) -> Self {
        self.table = Some(table.clone());
        self
    }
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = Some((width, height));
        self
    }

    /// Draw it. An allocation without candidate or enabled slots is an error.
    pub fn render(&self) -> Result<Figure> {
        if self.alloc.candidates.is_empty() && self.alloc.ranks.is_empty() {
            return Err(crate::Error::Plot(format!(
                "allocation `{}` has no candidate slots to plot",
                self.alloc.method
            )));
        }
        Figure::new(self.grid())
    }

    pub(crate) fn grid(&self) -> Grid {
        let a = &self.alloc;
        let candidates: BTreeSet<SlotId> =
            a.candidates.iter().chain(a.ranks.keys()).copied().collect();
        let kinds: Vec<SlotKind> = SlotKind::EVERY
            .into_iter()
            .filter(|k| candidates.iter().any(|s| s.kind == *k))
            .collect();
        // BERT-shaped maps unless the model's table says otherwise.
        let params = |slot: SlotId, r: usize| match &self.table {
            Some(t) => t
                .params_at_rank(slot, r)
                .unwrap_or_else(|| slot.params_at_rank(r, &a.dims)),
            None => slot.params_at_rank(r, &a.dims),
        };
        let num_layers = a
            .dims
            .num_layers
            .max(candidates.iter().map(|s| s.layer + 1).max().unwrap_or(0));
        let distinct: Vec<usize> = a
            .ranks
            .values()
            .map(|s| s.r)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mode = self.colour.unwrap_or(if distinct.len() > 1 {
            HeatmapColour::Rank
        } else {
            HeatmapColour::OnOff
        });
        let on_colour = palette::series(0);
        let rank_colour = |r: usize| -> RGBColor {
            match mode {
                HeatmapColour::OnOff => on_colour,
                HeatmapColour::Rank => {
                    if distinct.len() <= 1 {
                        blues(0.75)
                    } else {
                        let i = distinct.iter().position(|&d| d == r).unwrap_or(0);
                        blues(0.15 + 0.85 * i as f64 / (distinct.len() - 1) as f64)
                    }
                }
            }
        };

        let mut cells = Vec::with_capacity(num_layers);
        let mut row_r = vec![0usize; num_layers];
        let mut row_p = vec![0usize; num_layers];
        let mut col_r = vec![0usize; kinds.len()];
        let mut col_p = vec![0usize; kinds.len()];
        for layer in 0..num_layers {
            let mut row = Vec::with_capacity(kinds.len());
            for (c, &kind) in kinds.iter().enumerate() {
                let slot = SlotId::new(layer, kind);
                let cell = if let Some(sr) = a.ranks.get(&slot) {
                    let p = params(slot, sr.r);
                    let count = if mode == HeatmapColour::OnOff {
                        1
                    } else {
                        sr.r
                    };
                    row_r[layer] += count;
                    col_r[c] += count;
                    row_p[layer] += p;
                    col_p[c] += p;
                    Some(Cell::new(rank_colour(sr.r), sr.r.to_string()))
                } else if candidates.contains(&slot) {
                    Some(Cell::new(palette::OFF, ""))
                } else {
                    None
                };
                row.push(cell);
            }
            cells.push(row);
        }
        let total_label = if mode == HeatmapColour::OnOff {
            "# on"
        } else {
            "Σ r"
        };
        let total_r: usize = row_r.iter().sum();
        let total_p: usize = a.ranks.iter().map(|(s, sr)| params(*s, sr.r)).sum();
        let mut sum_row: Vec<String> = col_r.iter().map(|v| v.to_string()).collect();
        sum_row.push(total_r.to_string());
        sum_row.push(String::new());
        let mut param_row: Vec<String> = col_p.iter().map(|&v| fmt_params(v as f64)).collect();
        param_row.push(String::new());
        param_row.push(fmt_params(total_p as f64));

        let mut swatches: Vec<Swatch> = match mode {
            HeatmapColour::OnOff => vec![(
                on_colour,
                None,
                match distinct.as_slice() {
                    [r] => format!("on (r = {r})"),
                    _ => "on".to_string(),
                },
            )],
            HeatmapColour::Rank => distinct
                .iter()
                .map(|&r| (rank_colour(r), None, format!("r = {r}")))
                .collect(),
        };
        swatches.push((palette::OFF, None, "off".to_string()));

        let title = self.title.clone().unwrap_or_else(|| match &a.proxy {
            Some(p) => format!("Allocation: {} ({p})", a.method),
            None => format!("Allocation: {}", a.method),
        });
        let n_cand = candidates.len();
        let subtitle = format!(
            "{} of {} slots on · {} trainable parameters",
            a.ranks.len(),
            n_cand,
            group_thousands(total_p)
        );
        Grid {
            size: self.size.unwrap_or_else(|| auto_size(num_layers, 2)),
            title,
            subtitle,
            row_labels: (0..num_layers).map(|l| format!("layer {l}")).collect(),
            col_labels: kinds.iter().map(|k| k.short().to_string()).collect(),
            cells,
            margin_cols: vec![
                (
                    total_label.to_string(),
                    row_r.iter().map(|v| v.to_string()).collect(),
                ),
                (
                    "params".to_string(),
                    row_p.iter().map(|&v| fmt_params(v as f64)).collect(),
                ),
            ],
            margin_rows: vec![
                (total_label.to_string(), sum_row),
                ("params".to_string(), param_row),
            ],
            bar: None,
            swatches,
            x_desc: None,
            y_desc: None,
        }
    }
}

/// 800 wide, and tall enough for rows of about 44 pixels (at most 500): a two-layer toy model
/// does not get a page of white space.
pub(crate) fn auto_size(rows: usize, margin_rows: usize) -> (u32, u32) {
    let h = 80 + 44 * (rows + margin_rows) as u32 + 6 + 16;
    (DEFAULT_SIZE.0, h.clamp(280, DEFAULT_SIZE.1))
}

/// 73728 -> "73,728".
pub(crate) fn group_thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

// ---- score heat map ---------------------------------------------------------------------------

/// Layers by slot kind, coloured by one proxy's score (viridis; log scale when positive scores
/// span more than two decades), annotated with the values, with per-layer and per-kind sums.
/// Slots enabled in an optional allocation get an outline.
///
/// | option | default | meaning |
/// |---|---|---|
/// | `log_scale` | automatic | colour by log10(score) |
/// | `allocation` | none | outline the slots it enables |
/// | `title` | `Proxy scores: <proxy>` | chart title |
/// | `size` | 800 x 500 | pixels |
#[derive(Debug, Clone)]
pub struct ScoreHeatmap {
    scores: Scores,
    allocation: Option<Allocation>,
    log: Option<bool>,
    title: Option<String>,
    size: Option<(u32, u32)>,
}

impl ScoreHeatmap {
    pub fn new(scores: &Scores) -> Self {
        ScoreHeatmap {
            scores: scores.clone(),
            allocation: None,
            log: None,
            title: None,
            size: None,
        }
    }
    pub fn allocation(mut self, alloc: &Allocation) -> Self {
        self.allocation = Some(alloc.clone());
        self
    }
    pub fn log_scale(mut self, log: bool) -> Self {
        self.log = Some(log);
        self
    }
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = Some((width, height));
        self
    }

    pub fn render(&self) -> Result<Figure> {
        Figure::new(self.grid()?)
    }

    pub(crate) fn grid(&self) -> Result<Grid> {
        let s = &self.scores;
        if s.values.is_empty() {
            return Err(crate::Error::Plot(format!(
                "proxy `{}` has no scores to plot",
                s.proxy
            )));
        }
        let kinds: Vec<SlotKind> = SlotKind::EVERY
            .into_iter()
            .filter(|k| s.values.keys().any(|id| id.kind == *k))
            .collect();
        let num_layers = s.values.keys().map(|id| id.layer + 1).max().unwrap_or(0);
        let finite: Vec<f64> = s
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
        let all_positive = !finite.is_empty() && lo > 0.0;
        let log = self.log.unwrap_or(all_positive && hi / lo > 100.0) && all_positive;
        let tf = |v: f64| if log { v.log10() } else { v };
        let (tlo, thi) = if finite.is_empty() {
            (0.0, 1.0)
        } else {
            (tf(lo), tf(hi))
        };
        let norm = |v: f64| {
            if thi > tlo {
                (tf(v) - tlo) / (thi - tlo)
            } else {
                0.5
            }
        };
        let enabled = |id: &SlotId| {
            self.allocation
                .as_ref()
                .is_some_and(|a| a.ranks.contains_key(id))
        };
        let outline = palette::OKABE_ITO[3];

        let mut cells = Vec::new();
        let mut row_sum = vec![0.0; num_layers];
        let mut col_sum = vec![0.0; kinds.len()];
        for (layer, layer_sum) in row_sum.iter_mut().enumerate() {
            let mut row = Vec::new();
            for (c, &kind) in kinds.iter().enumerate() {
                let id = SlotId::new(layer, kind);
                row.push(s.values.get(&id).map(|&v| {
                    let mut cell = if v.is_finite() {
                        *layer_sum += v;
                        col_sum[c] += v;
                        Cell::new(viridis(norm(v)), fmt_num(v))
                    } else {
                        Cell::new(palette::OFF, format!("{v}"))
                    };
                    if enabled(&id) {
                        cell.outline = Some(outline);
                    }
                    cell
                }));
            }
            cells.push(row);
        }
        let total: f64 = row_sum.iter().sum();
        let mut sum_row: Vec<String> = col_sum.iter().map(|&v| fmt_num(v)).collect();
        sum_row.push(fmt_num(total));
        let mut swatches = Vec::new();
        if let Some(a) = &self.allocation {
            swatches.push((
                RGBColor(255, 255, 255),
                Some(outline),
                format!("on in {}", a.method),
            ));
        }
        let mut subtitle = format!("{} slots · {} batches", s.values.len(), s.num_batches);
        if s.seconds > 0.0 {
            subtitle.push_str(&format!(" · {:.1} s", s.seconds));
        }
        if log {
            subtitle.push_str(" · log colour scale");
        }
        Ok(Grid {
            size: self.size.unwrap_or_else(|| auto_size(num_layers, 1)),
            title: self
                .title
                .clone()
                .unwrap_or_else(|| format!("Proxy scores: {}", s.proxy)),
            subtitle,
            row_labels: (0..num_layers).map(|l| format!("layer {l}")).collect(),
            col_labels: kinds.iter().map(|k| k.short().to_string()).collect(),
            cells,
            margin_cols: vec![(
                "Σ".to_string(),
                row_sum.iter().map(|&v| fmt_num(v)).collect(),
            )],
            margin_rows: vec![("Σ".to_string(), sum_row)],
            bar: Some(ColourBar {
                lo: tlo,
                hi: thi,
                label: "score".to_string(),
                ramp: viridis,
                log,
            }),
            swatches,
            x_desc: None,
            y_desc: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::ModelDims;
    use crate::search::SlotRank;
    use std::collections::BTreeMap;

    pub(crate) fn alloc() -> Allocation {
        let dims = ModelDims {
            num_layers: 2,
            hidden_size: 8,
            intermediate_size: 32,
        };
        let candidates = crate::adapters::SearchSpace::lora_qv_shortcuts().slots(2);
        let mut ranks = BTreeMap::new();
        for (slot, r) in [
            ("layer.0.attention.query", 8),
            ("layer.1.attention.value", 4),
            ("layer.1.shortcut2", 2),
        ] {
            ranks.insert(
                slot.parse().unwrap(),
                SlotRank {
                    r,
                    lora_alpha: 16.0,
                },
            );
        }
        Allocation {
            dims,
            candidates,
            ranks,
            method: "heterogeneous".into(),
            proxy: Some("grad-norm".into()),
            meta: BTreeMap::new(),
        }
    }

    #[test]
    fn allocation_grid_has_totals_and_blank_missing_slots() {
        let g = AllocationHeatmap::new(&alloc()).grid();
        assert_eq!(g.col_labels, ["q", "v", "res1", "res2", "sc1", "sc2"]);
        assert_eq!(g.row_labels.len(), 2);
        // shortcut2 does not exist in layer 0.
        assert!(g.cells[0][5].is_none());
        assert_eq!(g.cells[0][0].as_ref().unwrap().text, "8");
        assert_eq!(g.cells[0][1].as_ref().unwrap().text, "");
        // Row totals of ranks: 8 and 4 + 2.
        assert_eq!(g.margin_cols[0].1, ["8", "6"]);
        // params: q at r=8 is 8 * (8 + 8) = 128; v at r=4 is 64; sc2 at r=2 is 32.
        assert_eq!(g.margin_cols[1].1, ["128", "96"]);
        assert_eq!(g.margin_rows[0].1, ["8", "4", "0", "0", "0", "2", "14", ""]);
        assert_eq!(g.margin_rows[1].1.last().unwrap(), "224");
        assert!(g.subtitle.contains("3 of 11 slots on"), "{}", g.subtitle);
        assert_eq!(g.swatches.len(), 4);
        let onoff = AllocationHeatmap::new(&alloc())
            .colour(HeatmapColour::OnOff)
            .grid();
        assert_eq!(onoff.margin_cols[0].0, "# on");
        assert_eq!(onoff.margin_cols[0].1, ["1", "2"]);
    }

    #[test]
    fn a_llama_allocation_shows_the_gate_and_counts_with_the_slot_table() {
        use crate::adapters::{Architecture, SearchSpace};
        // 2 layers, hidden 32, feed-forward 48, 4 query heads and 2 key-value heads of 8.
        let t = SlotTable::llama(Architecture::Llama, 2, 32, 48, 32, 16);
        let space = SearchSpace::parse_kinds("q,v,gate").unwrap();
        let a = Allocation::uniform(&space, &t, 4, 8.0).unwrap();
        let g = AllocationHeatmap::new(&a).slot_table(&t).grid();
        assert_eq!(g.col_labels, ["q", "v", "ffn_gate"]);
        // q 4 * (32 + 32), v 4 * (32 + 16), gate 4 * (32 + 48) per layer.
        let per_layer = fmt_params(768.0);
        assert_eq!(g.margin_cols[1].1, [per_layer.clone(), per_layer]);
        assert_eq!(g.margin_rows[1].1.last().unwrap(), &fmt_params(1536.0));
        // Without the table, v is counted BERT-shaped (32 -> 32).
        let bert_shaped = AllocationHeatmap::new(&a).grid();
        assert_eq!(bert_shaped.margin_cols[1].1[0], fmt_params(832.0));
    }

    #[test]
    fn score_grid_picks_log_scale_for_wide_positive_ranges() {
        let mut values = BTreeMap::new();
        values.insert("layer.0.attention.query".parse().unwrap(), 1e-4);
        values.insert("layer.0.attention.value".parse().unwrap(), 1.0);
        values.insert("layer.1.attention.value".parse().unwrap(), 0.5);
        let s = Scores {
            proxy: "snip".into(),
            values,
            rank_gains: None,
            num_batches: 2,
            seconds: 0.0,
        };
        let g = ScoreHeatmap::new(&s).grid().unwrap();
        assert!(g.bar.as_ref().unwrap().log);
        assert!(g.cells[1][0].is_none());
        assert_eq!(g.margin_cols[0].1, ["1", "0.5"]);
        let g = ScoreHeatmap::new(&s).log_scale(false).grid().unwrap();
        assert!(!g.bar.unwrap().log);
        assert_eq!(group_thousands(73728), "73,728");
        assert_eq!(group_thousands(100), "100");
    }
}
