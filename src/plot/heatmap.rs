//! Heat maps: the rank allocation ([`AllocationHeatmap`]) and one proxy's scores
//! ([`ScoreHeatmap`]), both layers by slot kind with cell annotations and row / column totals.
//! The grid drawing is shared with the re-allocation timeline.

use super::figure::Figure;
use super::font::{bold, coloured, text};
use super::palette::{self, blues, text_on, viridis};
use super::{fmt_num, fmt_params, plot_err, Plot, DEFAULT_SIZE};
use crate::adapters::{SlotId, SlotKind};
use crate::proxy::Scores;
use crate::search::Allocation;
use crate::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeSet;

// ---- the shared grid ------------------------------------------------------------------------

/// One drawn cell.
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    pub fill: RGBColor,
    pub text: String,
    /// A thick border (e.g. "enabled in the allocation", "changed at this step").
    pub outline: Option<RGBColor>,
}

impl Cell {
    pub fn new(fill: RGBColor, text: impl Into<String>) -> Self {
        Cell {
            fill,
            text: text.into(),
            outline: None,
        }
    }
}

/// A vertical colour bar.
#[derive(Debug, Clone)]
pub(crate) struct ColourBar {
    pub lo: f64,
    pub hi: f64,
    pub label: String,
    pub ramp: fn(f64) -> RGBColor,
    /// Values are log10 of what the labels show.
    pub log: bool,
}

/// A legend entry: a swatch (fill, optional outline) and its label.
pub(crate) type Swatch = (RGBColor, Option<RGBColor>, String);

/// Everything a grid chart shows. `cells[row][col]`; `None` is a slot that does not exist or is
/// not a candidate (left blank).
#[derive(Debug, Clone)]
pub(crate) struct Grid {
    pub size: (u32, u32),
    pub title: String,
    pub subtitle: String,
    pub row_labels: Vec<String>,
    pub col_labels: Vec<String>,
    pub cells: Vec<Vec<Option<Cell>>>,
    /// Extra columns on the right: header and one value per row.
    pub margin_cols: Vec<(String, Vec<String>)>,
    /// Extra rows at the bottom: label and one value per column, then one per margin column.
    pub margin_rows: Vec<(String, Vec<String>)>,
    pub bar: Option<ColourBar>,
    pub swatches: Vec<Swatch>,
    pub x_desc: Option<String>,
    pub y_desc: Option<String>,
}

fn text_width<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &str,
    style: &TextStyle,
) -> i32 {
    root.estimate_text_size(s, style)
        .map(|(w, _)| w as i32)
        .unwrap_or(s.chars().count() as i32 * 7)
}

fn centred<'a>(style: TextStyle<'a>) -> TextStyle<'a> {
    style.pos(Pos::new(HPos::Center, VPos::Center))
}

impl Plot for Grid {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let (w, h) = (self.size.0 as i32, self.size.1 as i32);
        let nrows = self.cells.len();
        let ncols = self.col_labels.len();
        let label_style = text(13.0);
        let head_style = bold(13.0);

        // Title block.
        root.draw_text(
            &self.title,
            &bold(21.0).pos(Pos::new(HPos::Center, VPos::Top)),
            (w / 2, 8),
        )
        .map_err(plot_err)?;
        if !self.subtitle.is_empty() {
            root.draw_text(
                &self.subtitle,
                &coloured(14.0, palette::DIM).pos(Pos::new(HPos::Center, VPos::Top)),
                (w / 2, 34),
            )
            .map_err(plot_err)?;
        }

        // Layout in pixels.
        let top = if self.subtitle.is_empty() { 62 } else { 80 };
        let y_desc_w = if self.y_desc.is_some() { 22 } else { 0 };
        let row_label_w = self
            .row_labels
            .iter()
            .chain(self.margin_rows.iter().map(|(l, _)| l))
            .map(|l| text_width(root, l, &head_style))
            .max()
            .unwrap_or(0)
            + 10;
        let left = 10 + y_desc_w + row_label_w;
        let margin_w: Vec<i32> = self
            .margin_cols
            .iter()
            .map(|(head, vals)| {
                vals.iter()
                    .chain(std::iter::once(head))
                    .chain(self.margin_rows.iter().filter_map(|(_, v)| v.get(ncols)))
                    .map(|s| text_width(root, s, &head_style) + 12)
                    .max()
                    .unwrap_or(0)
                    .max(44)
            })
            .collect();
        let margins_total: i32 =
            margin_w.iter().sum::<i32>() + if margin_w.is_empty() { 0 } else { 6 };
        let swatch_w = self
            .swatches
            .iter()
            .map(|(_, _, l)| text_width(root, l, &label_style) + 26)
            .max()
            .unwrap_or(0);
        let bar_w = if let Some(bar) = &self.bar {
            let lab = [bar.lo, bar.hi]
                .iter()
                .map(|v| text_width(root, &bar_value(bar, *v), &label_style))
                .max()
                .unwrap_or(0);
            (22 + 6 + lab).max(text_width(root, &bar.label, &label_style))
        } else {
            0
        };
        let legend_w = swatch_w.max(bar_w);
        let right = 10 + margins_total + if legend_w > 0 { legend_w + 18 } else { 0 };
        let bottom = 10 + if self.x_desc.is_some() { 26 } else { 0 };
        let total_rows = (nrows + self.margin_rows.len()).max(1) as i32;
        let cell_w = ((w - left - right) / ncols.max(1) as i32).max(2);
        let cell_h = ((h - top - bottom - 6 * (!self.margin_rows.is_empty()) as i32) / total_rows)
            .clamp(2, 56);
        let grid_w = cell_w * ncols as i32;
        let grid_h = cell_h * nrows as i32;
        let x_of = |c: usize| left + c as i32 * cell_w;
        let y_of = |r: usize| top + r as i32 * cell_h;
        let gap = if cell_w > 6 && cell_h > 6 { 1 } else { 0 };

        // Column labels, thinned so that they never overlap.
        let max_col_w = self
            .col_labels
            .iter()
            .map(|l| text_width(root, l, &label_style))
            .max()
            .unwrap_or(0);
        let col_step = ((max_col_w + 8) / cell_w.max(1) + 1).max(1) as usize;
        for (c, label) in self.col_labels.iter().enumerate() {
            if c % col_step != 0 {
                continue;
            }
            root.draw_text(
                label,
                &label_style.pos(Pos::new(HPos::Center, VPos::Bottom)),
                (x_of(c) + cell_w / 2, top - 5),
            )
            .map_err(plot_err)?;
        }
        // Row labels, thinned when rows are short.
        let row_step = (14 / cell_h.max(1) + 1).max(1) as usize;
        let row_label_style = if cell_h >= 14 { text(13.0) } else { text(11.0) };
        for (r, label) in self.row_labels.iter().enumerate() {
            if r % row_step != 0 {
                continue;
            }
            root.draw_text(
                label,
                &row_label_style.pos(Pos::new(HPos::Right, VPos::Center)),
                (left - 6, y_of(r) + cell_h / 2),
            )
            .map_err(plot_err)?;
        }

        // Cells.
        for (r, row) in self.cells.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                let Some(cell) = cell else { continue };
                let (x0, y0) = (x_of(c), y_of(r));
                let (x1, y1) = (x0 + cell_w, y0 + cell_h);
                root.draw(&Rectangle::new(
                    [(x0 + gap, y0 + gap), (x1 - gap, y1 - gap)],
                    cell.fill.filled(),
                ))
                .map_err(plot_err)?;
                if let Some(o) = cell.outline {
                    outline(root, (x0 + gap, y0 + gap), (x1 - gap, y1 - gap), o)?;
                }
                draw_fitted(
                    root,
                    &cell.text,
                    text_on(cell.fill),
                    (x0, y0),
                    (cell_w, cell_h),
                )?;
            }
        }

        // Margin columns (row totals).
        let mut mx = left + grid_w + 6;
        for ((head, vals), mw) in self.margin_cols.iter().zip(&margin_w) {
            root.draw_text(
                head,
                &head_style.pos(Pos::new(HPos::Center, VPos::Bottom)),
                (mx + mw / 2, top - 5),
            )
            .map_err(plot_err)?;
            for (r, v) in vals.iter().enumerate().take(nrows) {
                let (y0, y1) = (y_of(r), y_of(r) + cell_h);
                root.draw(&Rectangle::new(
                    [(mx + gap, y0 + gap), (mx + mw - gap, y1 - gap)],
                    palette::MARGIN.filled(),
                ))
                .map_err(plot_err)?;
                draw_fitted(root, v, RGBColor(0, 0, 0), (mx, y0), (*mw, cell_h))?;
            }
            mx += mw;
        }
        // Margin rows (column totals), below a small gap.
        let my0 = top + grid_h + 6;
        for (i, (label, vals)) in self.margin_rows.iter().enumerate() {
            let y0 = my0 + i as i32 * cell_h;
            root.draw_text(
                label,
                &head_style.pos(Pos::new(HPos::Right, VPos::Center)),
                (left - 6, y0 + cell_h / 2),
            )
            .map_err(plot_err)?;
            let mut spans: Vec<(i32, i32)> = (0..ncols).map(|c| (x_of(c), cell_w)).collect();
            let mut x = left + grid_w + 6;
            for mw in &margin_w {
                spans.push((x, *mw));
                x += mw;
            }
            for (v, (x0, cw)) in vals.iter().zip(spans) {
                if v.is_empty() {
                    continue;
                }
                root.draw(&Rectangle::new(
                    [(x0 + gap, y0 + gap), (x0 + cw - gap, y0 + cell_h - gap)],
                    palette::MARGIN.filled(),
                ))
                .map_err(plot_err)?;
                draw_fitted(root, v, RGBColor(0, 0, 0), (x0, y0), (cw, cell_h))?;
            }
        }

        // Axis descriptions.
        if let Some(d) = &self.x_desc {
            let y = top
                + grid_h
                + if self.margin_rows.is_empty() {
                    0
                } else {
                    6 + self.margin_rows.len() as i32 * cell_h
                };
            root.draw_text(
                d,
                &text(14.0).pos(Pos::new(HPos::Center, VPos::Top)),
                (left + grid_w / 2, y + 6),
            )
            .map_err(plot_err)?;
        }
        if let Some(d) = &self.y_desc {
            root.draw_text(
                d,
                &text(14.0)
                    .transform(FontTransform::Rotate270)
                    .pos(Pos::new(HPos::Center, VPos::Top)),
                (8, top + grid_h / 2),
            )
            .map_err(plot_err)?;
        }

        // Legend: colour bar, then swatches.
        let lx = w - 10 - legend_w;
        let mut ly = top;
        if let Some(bar) = &self.bar {
            root.draw_text(
                &bar.label,
                &label_style.pos(Pos::new(HPos::Left, VPos::Bottom)),
                (lx, ly - 5),
            )
            .map_err(plot_err)?;
            let bar_h = grid_h.clamp(60, 260);
            let steps = 64;
            for i in 0..steps {
                let t = 1.0 - (i as f64 + 0.5) / steps as f64;
                let y0 = ly + bar_h * i / steps;
                let y1 = ly + bar_h * (i + 1) / steps;
                root.draw(&Rectangle::new(
                    [(lx, y0), (lx + 22, y1)],
                    (bar.ramp)(t).filled(),
                ))
                .map_err(plot_err)?;
            }
            root.draw(&Rectangle::new(
                [(lx, ly), (lx + 22, ly + bar_h)],
                palette::GRID.stroke_width(1),
            ))
            .map_err(plot_err)?;
            for (frac, v) in [(0.0, bar.hi), (0.5, (bar.lo + bar.hi) / 2.0), (1.0, bar.lo)] {
                let y = ly + (bar_h as f64 * frac) as i32;
                root.draw_text(
                    &bar_value(bar, v),
                    &label_style.pos(Pos::new(HPos::Left, VPos::Center)),
                    (lx + 28, y),
                )
                .map_err(plot_err)?;
            }
            ly += bar_h + 24;
        }
        for (fill, outline, label) in &self.swatches {
            root.draw(&Rectangle::new(
                [(lx, ly), (lx + 18, ly + 18)],
                fill.filled(),
            ))
            .map_err(plot_err)?;
            match outline {
                Some(o) => super::heatmap::outline(root, (lx, ly), (lx + 18, ly + 18), *o)?,
                None => root
                    .draw(&Rectangle::new(
                        [(lx, ly), (lx + 18, ly + 18)],
                        palette::GRID.stroke_width(1),
                    ))
                    .map_err(plot_err)?,
            }
            root.draw_text(
                label,
                &label_style.pos(Pos::new(HPos::Left, VPos::Center)),
                (lx + 26, ly + 9),
            )
            .map_err(plot_err)?;
            ly += 26;
        }
        Ok(())
    }
}

/// A 3-pixel border inside the box: three nested 1-pixel rectangles, because the SVG backend
/// ignores the stroke width of rectangles.
pub(crate) fn outline<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    (x0, y0): (i32, i32),
    (x1, y1): (i32, i32),
    colour: RGBColor,
) -> Result<()> {
    for i in 0..3 {
        root.draw(&Rectangle::new(
            [(x0 + i, y0 + i), (x1 - i, y1 - i)],
            colour.stroke_width(1),
        ))
        .map_err(plot_err)?;
    }
    Ok(())
}

fn bar_value(bar: &ColourBar, v: f64) -> String {
    if bar.log {
        fmt_num(10f64.powf(v))
    } else {
        fmt_num(v)
    }
}

/// Draw `s` centred in a cell, shrinking the font to fit; skipped when it cannot fit.
fn draw_fitted<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &str,
    colour: RGBColor,
    (x0, y0): (i32, i32),
    (cw, ch): (i32, i32),
) -> Result<()> {
    if s.is_empty() {
        return Ok(());
    }
    let mut size = (ch as f64 * 0.6).min(14.0);
    while size >= 8.0 {
        let style = coloured(size, colour);
        if text_width(root, s, &style) <= cw - 4 {
            root.draw_text(s, &centred(style), (x0 + cw / 2, y0 + ch / 2))
                .map_err(plot_err)?;
            return Ok(());
        }
        size -= 1.0;
    }
    Ok(())
}

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
#[derive(Debug, Clone)]
pub struct AllocationHeatmap {
    alloc: Allocation,
    colour: Option<HeatmapColour>,
    title: Option<String>,
    size: Option<(u32, u32)>,
}

impl AllocationHeatmap {
    pub fn new(alloc: &Allocation) -> Self {
        AllocationHeatmap {
            alloc: alloc.clone(),
            colour: None,
            title: None,
            size: None,
        }
    }
    pub fn colour(mut self, colour: HeatmapColour) -> Self {
        self.colour = Some(colour);
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
        let kinds: Vec<SlotKind> = SlotKind::ALL
            .into_iter()
            .filter(|k| candidates.iter().any(|s| s.kind == *k))
            .collect();
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
                    let p = slot.params_at_rank(sr.r, &a.dims);
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
        let total_p = a.trainable_params();
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
        let kinds: Vec<SlotKind> = SlotKind::ALL
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
