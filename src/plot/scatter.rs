//! Proxy against proxy (or against measured importance), one point per slot, with Spearman's rho
//! and Kendall's tau-b printed on the chart.

use super::figure::Figure;
use super::font::{coloured, text};
use super::palette;
use super::{fmt_num, padded, plot_err, Plot, DEFAULT_SIZE};
use crate::adapters::{SlotId, SlotKind};
use crate::proxy::Scores;
use crate::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeMap;

/// One point: a slot (or any labelled item) and its two values.
#[derive(Debug, Clone, PartialEq)]
pub struct ScatterPoint {
    pub label: String,
    /// Colours and shapes the point by slot kind when known.
    pub kind: Option<SlotKind>,
    pub x: f64,
    pub y: f64,
}

/// Ranks 1..=n with ties given their average rank.
fn average_ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut ranks = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            ranks[k] = r;
        }
        i = j + 1;
    }
    ranks
}

fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// Spearman's rank correlation (Pearson's r of average ranks, so ties are handled as scipy does).
/// `None` with fewer than two pairs, unequal lengths, or a constant input.
pub fn spearman_rho(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    pearson(&average_ranks(x), &average_ranks(y))
}

/// Kendall's tau-b (ties in either input corrected for, as scipy's default). O(n^2): fine for the
/// few hundred slots of a model. `None` when undefined.
pub fn kendall_tau(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len();
    if n != y.len() || n < 2 {
        return None;
    }
    let (mut conc, mut disc, mut tie_x, mut tie_y) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..n {
        for j in i + 1..n {
            let dx = x[i].total_cmp(&x[j]) as i64;
            let dy = y[i].total_cmp(&y[j]) as i64;
            if dx == 0 {
                tie_x += 1;
            }
            if dy == 0 {
                tie_y += 1;
            }
            if dx * dy > 0 {
                conc += 1;
            } else if dx * dy < 0 {
                disc += 1;
            }
        }
    }
    let n0 = (n * (n - 1) / 2) as i64;
    let denom = ((n0 - tie_x) as f64 * (n0 - tie_y) as f64).sqrt();
    (denom > 0.0).then(|| (conc - disc) as f64 / denom)
}

/// Scatter of two score sets over the same slots, with rank correlations.
///
/// | option | default | meaning |
/// |---|---|---|
/// | `log_scale` | automatic per axis | plot log10 of positive values spanning > 2 decades |
/// | `title` | `<y> against <x>` | chart title |
/// | `size` | 800 x 500 | pixels |
#[derive(Debug, Clone)]
pub struct ProxyScatter {
    x_name: String,
    y_name: String,
    points: Vec<ScatterPoint>,
    log: Option<bool>,
    title: Option<String>,
    size: (u32, u32),
}

impl ProxyScatter {
    /// Points with non-finite values are dropped (and counted in the subtitle).
    pub fn new(
        x_name: impl Into<String>,
        y_name: impl Into<String>,
        points: Vec<ScatterPoint>,
    ) -> Self {
        ProxyScatter {
            x_name: x_name.into(),
            y_name: y_name.into(),
            points,
            log: None,
            title: None,
            size: DEFAULT_SIZE,
        }
    }

    /// Two proxies over the slots both scored.
    pub fn from_scores(x: &Scores, y: &Scores) -> Result<Self> {
        Self::join(&x.proxy, &x.values, &y.proxy, &y.values)
    }

    /// A proxy against a measured importance per slot (e.g. accuracy drop when the slot is removed).
    pub fn against_importance(
        scores: &Scores,
        importance_name: &str,
        importance: &BTreeMap<SlotId, f64>,
    ) -> Result<Self> {
        Self::join(&scores.proxy, &scores.values, importance_name, importance)
    }

    fn join(
        xn: &str,
        xv: &BTreeMap<SlotId, f64>,
        yn: &str,
        yv: &BTreeMap<SlotId, f64>,
    ) -> Result<Self> {
        let points: Vec<ScatterPoint> = xv
            .iter()
            .filter_map(|(id, &x)| {
                yv.get(id).map(|&y| ScatterPoint {
                    label: id.to_string(),
                    kind: Some(id.kind),
                    x,
                    y,
                })
            })
            .collect();
        if points.len() < 2 {
            return Err(Error::Plot(format!(
                "`{xn}` and `{yn}` share {} scored slots; a scatter needs at least 2",
                points.len()
            )));
        }
        let (xn, yn) = if xn == yn {
            (format!("{xn} (x)"), format!("{yn} (y)"))
        } else {
            (xn.to_string(), yn.to_string())
        };
        Ok(Self::new(xn, yn, points))
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
        self.size = (width, height);
        self
    }

    fn finite(&self) -> Vec<&ScatterPoint> {
        self.points
            .iter()
            .filter(|p| p.x.is_finite() && p.y.is_finite())
            .collect()
    }

    /// Spearman's rho over the finite points.
    pub fn spearman(&self) -> Option<f64> {
        let p = self.finite();
        let x: Vec<f64> = p.iter().map(|p| p.x).collect();
        let y: Vec<f64> = p.iter().map(|p| p.y).collect();
        spearman_rho(&x, &y)
    }

    /// Kendall's tau-b over the finite points.
    pub fn kendall(&self) -> Option<f64> {
        let p = self.finite();
        let x: Vec<f64> = p.iter().map(|p| p.x).collect();
        let y: Vec<f64> = p.iter().map(|p| p.y).collect();
        kendall_tau(&x, &y)
    }

    /// The line printed under the title.
    pub fn correlation_text(&self) -> String {
        let f = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
        let n = self.finite().len();
        let mut s = format!(
            "Spearman ρ = {} · Kendall τ = {} · n = {n}",
            f(self.spearman()),
            f(self.kendall())
        );
        let dropped = self.points.len() - n;
        if dropped > 0 {
            s.push_str(&format!(" ({dropped} non-finite dropped)"));
        }
        s
    }

    pub fn render(&self) -> Result<Figure> {
        if self.finite().len() < 2 {
            return Err(Error::Plot(format!(
                "scatter of `{}` against `{}` needs at least 2 finite points",
                self.y_name, self.x_name
            )));
        }
        Figure::new(self.clone())
    }

    fn use_log(&self, vals: &[f64]) -> bool {
        let positive = vals.iter().all(|&v| v > 0.0);
        let (lo, hi) = min_max(vals);
        positive && self.log.unwrap_or(hi / lo > 100.0)
    }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        })
}

/// Colour and whether the marker is a triangle (shortcut kinds) for a point's kind.
fn kind_style(kind: Option<SlotKind>) -> (RGBColor, bool) {
    match kind {
        None => (palette::series(0), false),
        Some(k) if k.is_shortcut() => {
            let i = SlotKind::SHORTCUTS
                .iter()
                .position(|s| *s == k)
                .unwrap_or(0);
            (palette::series(i), true)
        }
        Some(k) => {
            let i = SlotKind::LORA.iter().position(|s| *s == k).unwrap_or(0);
            (palette::series(i), false)
        }
    }
}

impl Plot for ProxyScatter {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let pts = self.finite();
        let xs: Vec<f64> = pts.iter().map(|p| p.x).collect();
        let ys: Vec<f64> = pts.iter().map(|p| p.y).collect();
        let (lx, ly) = (self.use_log(&xs), self.use_log(&ys));
        let tx = |v: f64| if lx { v.log10() } else { v };
        let ty = |v: f64| if ly { v.log10() } else { v };
        let (x0, x1) = min_max(&xs);
        let (y0, y1) = min_max(&ys);
        let (x0, x1) = padded(tx(x0), tx(x1), 0.05);
        let (y0, y1) = padded(ty(y0), ty(y1), 0.05);

        let w = self.size.0 as i32;
        let title = self
            .title
            .clone()
            .unwrap_or_else(|| format!("{} against {}", self.y_name, self.x_name));
        super::draw_title(root, &title)?;
        root.draw_text(
            &self.correlation_text(),
            &coloured(15.0, palette::DIM).pos(Pos::new(HPos::Center, VPos::Top)),
            (w / 2, 34),
        )
        .map_err(plot_err)?;
        let (_, area) = root.split_vertically(58);

        let x_desc = if lx {
            format!("{} (log scale)", self.x_name)
        } else {
            self.x_name.clone()
        };
        let y_desc = if ly {
            format!("{} (log scale)", self.y_name)
        } else {
            self.y_name.clone()
        };
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .margin_right(24)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(plot_err)?;
        let fx = move |v: &f64| {
            if lx {
                fmt_num(10f64.powf(*v))
            } else {
                fmt_num(*v)
            }
        };
        let fy = move |v: &f64| {
            if ly {
                fmt_num(10f64.powf(*v))
            } else {
                fmt_num(*v)
            }
        };
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .label_style(text(13.0))
            .axis_desc_style(text(15.0))
            .bold_line_style(RGBColor(225, 225, 225))
            .light_line_style(TRANSPARENT)
            .x_label_formatter(&fx)
            .y_label_formatter(&fy)
            .x_labels(8)
            .y_labels(8)
            .draw()
            .map_err(plot_err)?;

        // One series per kind, in the fixed kind order, so that the legend reads like the tables.
        let mut groups: Vec<Option<SlotKind>> = Vec::new();
        for p in &pts {
            if !groups.contains(&p.kind) {
                groups.push(p.kind);
            }
        }
        groups.sort();
        for kind in groups {
            let (colour, triangle) = kind_style(kind);
            let style = colour.mix(0.85).filled();
            let members: Vec<(f64, f64)> = pts
                .iter()
                .filter(|p| p.kind == kind)
                .map(|p| (tx(p.x), ty(p.y)))
                .collect();
            let label = kind.map_or("slots".to_string(), |k| k.short().to_string());
            let anno = if triangle {
                chart.draw_series(
                    members
                        .iter()
                        .map(|&c| TriangleMarker::new(c, 7, style))
                        .map(|m| m.into_dyn()),
                )
            } else {
                chart.draw_series(
                    members
                        .iter()
                        .map(|&c| Circle::new(c, 5, style))
                        .map(|m| m.into_dyn()),
                )
            }
            .map_err(plot_err)?;
            anno.label(label).legend(move |(x, y)| {
                if triangle {
                    TriangleMarker::new((x + 8, y), 7, colour.filled()).into_dyn()
                } else {
                    Circle::new((x + 8, y), 5, colour.filled()).into_dyn()
                }
            });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(palette::GRID)
            .label_font(text(13.0))
            .draw()
            .map_err(plot_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn rank_correlations_match_hand_computation() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [2.0, 1.0, 4.0, 3.0, 5.0];
        // Sum of squared rank differences 4: rho = 1 - 6 * 4 / (5 * 24) = 0.8.
        assert!(close(spearman_rho(&x, &y), 0.8));
        // 8 concordant, 2 discordant pairs of 10.
        assert!(close(kendall_tau(&x, &y), 0.6));
        let rev: Vec<f64> = x.iter().rev().copied().collect();
        assert!(close(spearman_rho(&x, &rev), -1.0));
        assert!(close(kendall_tau(&x, &rev), -1.0));
        // Ties: x = [1, 2, 2, 3], y = [1, 3, 2, 4]; scipy gives rho 0.9486833, tau-b 0.9128709.
        let (x, y) = ([1.0, 2.0, 2.0, 3.0], [1.0, 3.0, 2.0, 4.0]);
        assert!((spearman_rho(&x, &y).unwrap() - 0.948_683_298).abs() < 1e-8);
        assert!((kendall_tau(&x, &y).unwrap() - 0.912_870_929).abs() < 1e-8);
        assert_eq!(spearman_rho(&[1.0, 1.0], &[1.0, 2.0]), None);
        assert_eq!(kendall_tau(&[1.0], &[1.0]), None);
        assert_eq!(average_ranks(&[3.0, 1.0, 3.0]), [2.5, 1.0, 2.5]);
    }
}
