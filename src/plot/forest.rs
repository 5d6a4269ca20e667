//! Paired differences against a baseline, one row per method (a forest plot): each seed's
//! difference as a small dot, the mean as a large one, its 95% interval as a bar, with lines at
//! 0 and at a reference effect (the paper's claim).

use super::font::{coloured, text};
use super::grid::text_width;
use super::{fmt_num, palette, plot_err, Plot};
use crate::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One method's paired differences against the baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct PairedRow {
    pub label: String,
    /// Per seed: method minus baseline.
    pub diffs: Vec<f64>,
    pub mean: f64,
    /// The 95% interval of the mean difference (none with one seed).
    pub interval: Option<(f64, f64)>,
}

/// Paired differences against a baseline with their intervals.
///
/// | option | default | meaning |
/// |---|---|---|
/// | `x_name` | `difference` | x axis label |
/// | `reference` | none | a dashed line at this effect, with its label |
/// | `title` | `Paired differences against the baseline` | chart title |
/// | `size` | 800 x (120 + 46 per row) | pixels |
#[derive(Debug, Clone)]
pub struct PairedDiffPlot {
    rows: Vec<PairedRow>,
    x_name: String,
    reference: Option<(f64, String)>,
    title: Option<String>,
    size: Option<(u32, u32)>,
}

impl PairedDiffPlot {
    pub fn new(rows: Vec<PairedRow>) -> Self {
        PairedDiffPlot {
            rows,
            x_name: "difference".into(),
            reference: None,
            title: None,
            size: None,
        }
    }
    pub fn x_name(mut self, name: impl Into<String>) -> Self {
        self.x_name = name.into();
        self
    }
    pub fn reference(mut self, at: f64, label: impl Into<String>) -> Self {
        self.reference = Some((at, label.into()));
        self
    }
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }
    pub fn size(mut self, w: u32, h: u32) -> Self {
        self.size = Some((w, h));
        self
    }
    pub fn render(self) -> Result<super::Figure> {
        if self.rows.is_empty() {
            return Err(Error::Plot(
                "no paired differences to draw (every method needs a baseline on shared seeds)"
                    .into(),
            ));
        }
        super::Figure::new(self)
    }

    fn x_range(&self) -> (f64, f64) {
        let mut lo: f64 = 0.0;
        let mut hi: f64 = 0.0;
        for r in &self.rows {
            for v in r
                .diffs
                .iter()
                .chain([r.mean].iter())
                .filter(|v| v.is_finite())
            {
                lo = lo.min(*v);
                hi = hi.max(*v);
            }
            if let Some((a, b)) = r.interval.filter(|(a, b)| a.is_finite() && b.is_finite()) {
                lo = lo.min(a);
                hi = hi.max(b);
            }
        }
        if let Some((at, _)) = &self.reference {
            lo = lo.min(*at);
            hi = hi.max(*at);
        }
        super::padded(lo, hi, 0.06)
    }
}

impl Plot for PairedDiffPlot {
    fn size(&self) -> (u32, u32) {
        self.size
            .unwrap_or((800, 120 + 46 * self.rows.len().max(1) as u32))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let title = self
            .title
            .clone()
            .unwrap_or_else(|| "Paired differences against the baseline".into());
        super::draw_title(root, &title)?;
        let (_, area) = root.split_vertically(40);
        let n = self.rows.len();
        let label_w = self
            .rows
            .iter()
            .map(|r| text_width(root, &r.label, &text(13.0)))
            .max()
            .unwrap_or(60);
        let (x0, x1) = self.x_range();
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .margin_right(24)
            .x_label_area_size(46)
            .y_label_area_size(label_w + 16)
            .build_cartesian_2d(x0..x1, -0.5f64..(n as f64 - 0.5))
            .map_err(plot_err)?;
        let rows = &self.rows;
        chart
            .configure_mesh()
            .x_desc(self.x_name.as_str())
            .label_style(text(13.0))
            .axis_desc_style(text(14.0))
            .bold_line_style(RGBColor(230, 230, 230))
            .light_line_style(TRANSPARENT)
            .disable_y_mesh()
            .x_labels(8)
            .x_label_formatter(&|v| fmt_num(*v))
            .y_labels(n.max(1) * 2 + 1)
            .y_label_formatter(&|v| {
                let i = v.round();
                if (v - i).abs() > 1e-6 || i < 0.0 || i as usize >= n {
                    return String::new();
                }
                // Top row first: row i is drawn at y = n - 1 - i.
                rows[n - 1 - i as usize].label.clone()
            })
            .draw()
            .map_err(plot_err)?;
        let y_of = |i: usize| (n - 1 - i) as f64;
        let (ya, yb) = (-0.5, n as f64 - 0.5);
        chart
            .draw_series(LineSeries::new(
                [(0.0, ya), (0.0, yb)],
                BLACK.mix(0.7).stroke_width(1),
            ))
            .map_err(plot_err)?;
        if let Some((at, label)) = &self.reference {
            let dash = palette::DIM;
            chart
                .draw_series(DashedLineSeries::new(
                    [(*at, ya), (*at, yb)],
                    6,
                    4,
                    dash.stroke_width(1),
                ))
                .map_err(plot_err)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{label} "),
                    (*at, yb - 0.05),
                    // Left of the line, so that a reference near the right edge is not cut off.
                    coloured(12.0, dash).pos(Pos::new(HPos::Right, VPos::Top)),
                )))
                .map_err(plot_err)?;
        }
        for (i, r) in self.rows.iter().enumerate() {
            let colour = palette::series(i);
            let y = y_of(i);
            if let Some((a, b)) = r.interval {
                chart
                    .draw_series(std::iter::once(ErrorBar::new_horizontal(
                        y,
                        a,
                        r.mean,
                        b,
                        colour.stroke_width(3),
                        10,
                    )))
                    .map_err(plot_err)?;
            }
            // Seeds spread a little vertically so that equal differences stay visible.
            let k = r.diffs.len().max(1) as f64;
            chart
                .draw_series(r.diffs.iter().enumerate().map(|(j, d)| {
                    let dy = 0.22 * ((j as f64 + 0.5) / k - 0.5);
                    Circle::new((*d, y + 0.18 + dy), 3, colour.mix(0.55).filled())
                }))
                .map_err(plot_err)?;
            chart
                .draw_series(std::iter::once(Circle::new(
                    (r.mean, y),
                    6,
                    colour.filled(),
                )))
                .map_err(plot_err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<PairedRow> {
        vec![
            PairedRow {
                label: "static-grad-norm".into(),
                diffs: vec![-4.4, 1.0, -2.0],
                mean: -1.8,
                interval: Some((-8.5, 4.9)),
            },
            PairedRow {
                label: "random".into(),
                diffs: vec![-5.6],
                mean: -5.6,
                interval: None,
            },
        ]
    }

    #[test]
    fn rows_labels_reference_and_range_are_drawn() {
        let fig = PairedDiffPlot::new(rows())
            .x_name("dev accuracy difference (points)")
            .reference(1.6, "paper: +1.6")
            .render()
            .unwrap();
        let svg = fig.to_svg();
        for s in [
            "static-grad-norm",
            "random",
            "paper: +1.6",
            "dev accuracy difference",
        ] {
            assert!(svg.contains(s), "{s} missing");
        }
        assert_eq!(fig.size(), (800, 120 + 46 * 2));
        let p = PairedDiffPlot::new(rows()).reference(1.6, "");
        let (lo, hi) = p.x_range();
        assert!(lo < -8.5 && hi > 4.9, "{lo} {hi}");
    }

    #[test]
    fn nothing_to_draw_is_an_error() {
        assert!(PairedDiffPlot::new(vec![]).render().is_err());
    }
}
