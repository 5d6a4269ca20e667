//! The grid chart behind the heat maps and the re-allocation timeline: labelled rows and columns
//! of coloured, annotated cells, total (margin) rows and columns, and a legend (colour bar and/or
//! swatches). Laid out in pixels by hand: plotters' chart builder has no categorical grid.

use super::font::{bold, coloured, text};
use super::palette::{self, text_on};
use super::{fmt_num, plot_err, Plot};
use crate::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

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

/// Pixel width of `s` in `style`, measured with the font (7 px a character if it cannot be).
pub(super) fn text_width<DB: DrawingBackend>(
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
        super::draw_title(root, &self.title)?;
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
        for (fill, border, label) in &self.swatches {
            root.draw(&Rectangle::new(
                [(lx, ly), (lx + 18, ly + 18)],
                fill.filled(),
            ))
            .map_err(plot_err)?;
            match border {
                Some(o) => outline(root, (lx, ly), (lx + 18, ly + 18), *o)?,
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
