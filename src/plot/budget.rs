//! The task metric against the trainable-parameter budget: one line per method through the mean
//! over seeds, error bars of one standard deviation, and every seed's value as a faint dot.

use super::figure::Figure;
use super::font::{coloured, text};
use super::frame::{floats, strings};
use super::grid::text_width;
use super::palette;
use super::{fmt_num, fmt_params, padded, plot_err, Plot, DEFAULT_SIZE};
use crate::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use polars::prelude::DataFrame;

/// One finished run: its method, trainable parameters, final metric and seed.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetPoint {
    pub method: String,
    pub params: usize,
    pub metric: f64,
    pub seed: u64,
}

impl BudgetPoint {
    pub fn new(method: impl Into<String>, params: usize, metric: f64, seed: u64) -> Self {
        BudgetPoint {
            method: method.into(),
            params,
            metric,
            seed,
        }
    }

    /// Points from a `search_runs` frame: `method_col` (e.g. `params.method`), `params_col` (e.g.
    /// `metrics.trainable_params` or `params.trainable_params`), `metric_col` (e.g.
    /// `metrics.eval_accuracy`), and `seed_col` (e.g. `params.seed`; the row number when `None`).
    /// Rows whose metric or parameter count is missing (unfinished or failed runs) are skipped;
    /// unparseable values are errors naming the column and row.
    pub fn from_runs_frame(
        df: &DataFrame,
        method_col: &str,
        params_col: &str,
        metric_col: &str,
        seed_col: Option<&str>,
    ) -> Result<Vec<BudgetPoint>> {
        let methods = strings(df, method_col)?;
        let params = floats(df, params_col)?;
        let metrics = floats(df, metric_col)?;
        let seeds = match seed_col {
            Some(c) => floats(df, c)?,
            None => (0..df.height()).map(|i| Some(i as f64)).collect(),
        };
        let mut out = Vec::new();
        for row in 0..df.height() {
            let (Some(p), Some(m)) = (params[row], metrics[row]) else {
                continue;
            };
            if p < 0.0 || p.fract() != 0.0 {
                return Err(Error::Plot(format!(
                    "column `{params_col}`, row {row}: {p} is not a parameter count"
                )));
            }
            out.push(BudgetPoint {
                method: methods[row].clone().unwrap_or_else(|| "(none)".to_string()),
                params: p as usize,
                metric: m,
                seed: seeds[row].map_or(row as u64, |s| s as u64),
            });
        }
        if out.is_empty() {
            return Err(Error::Plot(format!(
                "no run in the frame has both `{params_col}` and `{metric_col}`"
            )));
        }
        Ok(out)
    }
}

/// Mean and spread of one method at one budget.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetSummary {
    pub method: String,
    /// Mean trainable parameters of the runs grouped here.
    pub params: f64,
    pub mean: f64,
    /// Sample standard deviation (n - 1); 0 for a single run.
    pub std: f64,
    pub n: usize,
}

/// Metric against trainable parameters, one line per method.
///
/// Runs of a method whose parameter counts are within `group_tolerance` (relative, default 5%) of
/// each other form one point: allocators hit a budget only approximately, differently per seed.
///
/// | option | default | meaning |
/// |---|---|---|
/// | `metric_name` | `metric` | y axis label (a metric key reads as words: `best_dev_accuracy` is "dev accuracy (best epoch)") |
/// | `params_name` | `adapter parameters` | x axis label: what the parameter counts count |
/// | `log_x` | when budgets span > 10x | log-scaled parameter axis |
/// | `group_tolerance` | 0.05 | relative gap that still counts as the same budget |
/// | `title` | `<metric> against trainable parameters` | chart title |
/// | `size` | 800 x 500 | pixels |
#[derive(Debug, Clone)]
pub struct BudgetPlot {
    points: Vec<BudgetPoint>,
    metric_name: String,
    params_name: String,
    log_x: Option<bool>,
    tolerance: f64,
    title: Option<String>,
    size: (u32, u32),
}

impl BudgetPlot {
    pub fn new(points: Vec<BudgetPoint>) -> Self {
        BudgetPlot {
            points,
            metric_name: "metric".into(),
            params_name: "adapter parameters".into(),
            log_x: None,
            tolerance: 0.05,
            title: None,
            size: DEFAULT_SIZE,
        }
    }
    pub fn metric_name(mut self, name: impl Into<String>) -> Self {
        self.metric_name = name.into();
        self
    }
    /// What the x axis counts (`adapter parameters`, `trainable parameters`).
    pub fn params_name(mut self, name: impl Into<String>) -> Self {
        self.params_name = name.into();
        self
    }
    pub fn log_x(mut self, log: bool) -> Self {
        self.log_x = Some(log);
        self
    }
    pub fn group_tolerance(mut self, tol: f64) -> Self {
        self.tolerance = tol.max(0.0);
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

    /// Methods in order of first appearance.
    pub fn methods(&self) -> Vec<String> {
        let mut m: Vec<String> = Vec::new();
        for p in &self.points {
            if !m.contains(&p.method) {
                m.push(p.method.clone());
            }
        }
        m
    }

    /// Mean +- std per method and budget group, sorted by method (first appearance) then params.
    pub fn summary(&self) -> Vec<BudgetSummary> {
        let mut out = Vec::new();
        for method in self.methods() {
            let mut pts: Vec<&BudgetPoint> = self
                .points
                .iter()
                .filter(|p| p.method == method && p.metric.is_finite())
                .collect();
            pts.sort_by_key(|p| p.params);
            let mut group: Vec<&BudgetPoint> = Vec::new();
            let flush = |group: &mut Vec<&BudgetPoint>, out: &mut Vec<BudgetSummary>| {
                if group.is_empty() {
                    return;
                }
                let n = group.len();
                let mean = group.iter().map(|p| p.metric).sum::<f64>() / n as f64;
                let var = if n > 1 {
                    group.iter().map(|p| (p.metric - mean).powi(2)).sum::<f64>() / (n - 1) as f64
                } else {
                    0.0
                };
                out.push(BudgetSummary {
                    method: method.clone(),
                    params: group.iter().map(|p| p.params as f64).sum::<f64>() / n as f64,
                    mean,
                    std: var.sqrt(),
                    n,
                });
                group.clear();
            };
            for p in pts {
                if let Some(first) = group.first() {
                    let base = first.params.max(1) as f64;
                    if (p.params as f64 - base) / base > self.tolerance {
                        flush(&mut group, &mut out);
                    }
                }
                group.push(p);
            }
            flush(&mut group, &mut out);
        }
        out
    }

    pub fn render(&self) -> Result<Figure> {
        if self.summary().is_empty() {
            return Err(Error::Plot(
                "budget plot: no run with a finite metric".to_string(),
            ));
        }
        Figure::new(self.clone())
    }
}

/// Sideways slot of each method (`i - (m - 1) / 2`, in method order) when at least two methods
/// have a point at the same budget (within `tolerance`, relative); all zero otherwise.
fn dodge_slots(summary: &[BudgetSummary], methods: &[String], tolerance: f64) -> Vec<f64> {
    let shared = summary.iter().enumerate().any(|(i, a)| {
        summary[i + 1..].iter().any(|b| {
            a.method != b.method
                && (a.params - b.params).abs()
                    <= tolerance * a.params.abs().max(b.params.abs()).max(1.0)
        })
    });
    let m = methods.len();
    (0..m)
        .map(|i| {
            if shared {
                i as f64 - (m as f64 - 1.0) / 2.0
            } else {
                0.0
            }
        })
        .collect()
}

/// Tick positions for the parameter axis: the budgets themselves when there are few, else 1-2-5
/// steps per decade on a log axis; `None` leaves the ticks to plotters (linear axis).
fn param_ticks(budgets: &[f64], lo: f64, hi: f64, log: bool) -> Option<Vec<f64>> {
    if !budgets.is_empty() && budgets.len() <= 8 {
        return Some(budgets.to_vec());
    }
    if !log {
        return None;
    }
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let t = m * decade;
            if t >= lo && t <= hi {
                ticks.push(t);
            }
        }
        decade *= 10.0;
    }
    Some(ticks)
}

/// Marker shape of the `i`-th series: colours cycle after 8, so each cycle gets its own shape and
/// no two of up to 24 methods look alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Circle,
    Triangle,
    Cross,
}

impl Marker {
    fn of(i: usize) -> Marker {
        match (i / palette::OKABE_ITO.len()) % 3 {
            0 => Marker::Circle,
            1 => Marker::Triangle,
            _ => Marker::Cross,
        }
    }

    /// Draws the marker at `at` (in `area`'s coordinates), `size` pixels in radius.
    fn draw<DB: DrawingBackend, CT: CoordTranslate>(
        self,
        area: &DrawingArea<DB, CT>,
        at: CT::From,
        size: i32,
        style: ShapeStyle,
    ) -> Result<()> {
        match self {
            Marker::Circle => area.draw(&Circle::new(at, size, style)),
            Marker::Triangle => area.draw(&TriangleMarker::new(at, size + 2, style)),
            Marker::Cross => area.draw(&Cross::new(at, size, style.stroke_width(2))),
        }
        .map_err(plot_err)
    }
}

/// Pixel width of the legend column for `names` at the 13 px label font.
fn legend_width<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, names: &[String]) -> i32 {
    let widest = names
        .iter()
        .map(|n| text_width(root, n, &text(13.0)))
        .max()
        .unwrap_or(0);
    (36 + widest).clamp(90, 320)
}

impl Plot for BudgetPlot {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let summary = self.summary();
        let xs: Vec<f64> = self.points.iter().map(|p| p.params as f64).collect();
        let (xmin, xmax) = xs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let mut ylo = f64::INFINITY;
        let mut yhi = f64::NEG_INFINITY;
        for s in &summary {
            ylo = ylo.min(s.mean - s.std);
            yhi = yhi.max(s.mean + s.std);
        }
        for p in self.points.iter().filter(|p| p.metric.is_finite()) {
            ylo = ylo.min(p.metric);
            yhi = yhi.max(p.metric);
        }
        let (ylo, yhi) = padded(ylo, yhi, 0.08);
        let log = xmin > 0.0 && self.log_x.unwrap_or(xmax / xmin > 10.0);
        // Log axes are drawn as a linear axis over log10(params) with our own ticks: plotters'
        // log axis labels only powers of ten, often a single tick over a budget sweep.
        let tx = move |v: f64| if log { v.log10() } else { v };
        let (xa, xb) = padded(tx(xmin), tx(xmax), 0.06);
        let mut budgets: Vec<f64> = summary.iter().map(|s| s.params).collect();
        budgets.sort_by(f64::total_cmp);
        budgets.dedup_by(|a, b| (*a - *b).abs() <= 1e-9 * b.abs().max(1.0));
        // Methods compared at the same budget (the point of a budget-matched study) would draw on
        // top of each other: spread them sideways, keeping each method's offset the same everywhere.
        let methods = self.methods();
        let slots = dodge_slots(&summary, &methods, self.tolerance);
        let step = if slots.iter().any(|&o| o != 0.0) {
            // Budgets within the grouping tolerance count as one place on the axis.
            let mut places = budgets.clone();
            places.dedup_by(|b, a| (*b - *a) <= self.tolerance * a.abs().max(1.0));
            let gaps = places.windows(2).map(|w| tx(w[1]) - tx(w[0]));
            let span = gaps.fold(0.2 * (xb - xa), |a, g| a.min(0.4 * g));
            span / (methods.len() - 1) as f64
        } else {
            0.0
        };
        let half = slots.iter().fold(0.0f64, |a, o| a.max(o.abs())) * step;
        let (xa, xb) = (xa - half, xb + half);
        let dx = |method: &str| {
            methods
                .iter()
                .position(|m| m == method)
                .map_or(0.0, |i| slots[i] * step)
        };
        let untx = move |v: f64| if log { 10f64.powf(v) } else { v };
        let ticks = param_ticks(&budgets, untx(xa), untx(xb), log);

        let w = self.size.0 as i32;
        let title = self.title.clone().unwrap_or_else(|| {
            format!(
                "{} against {}",
                super::metric_label(&self.metric_name),
                self.params_name
            )
        });
        super::draw_title(root, &title)?;
        let (nmin, nmax) = summary
            .iter()
            .fold((usize::MAX, 0), |(a, b), s| (a.min(s.n), b.max(s.n)));
        let seeds = if nmin == nmax {
            format!("{nmin}")
        } else {
            format!("{nmin}–{nmax}")
        };
        root.draw_text(
            &format!("mean ± std over seeds (n = {seeds} per point); dots are single runs"),
            &coloured(14.0, palette::DIM).pos(Pos::new(HPos::Center, VPos::Top)),
            (w / 2, 34),
        )
        .map_err(plot_err)?;
        let (_, area) = root.split_vertically(56);
        // The legend gets its own column right of the plot: inside, it hid points (the 4x-budget
        // reference sits in the corner a legend would take).
        let lw = legend_width(root, &methods);
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .margin_right(28 + lw)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(xa..xb, ylo..yhi)
            .map_err(plot_err)?;
        let xdesc = if log {
            format!("{} (log scale)", self.params_name)
        } else {
            self.params_name.clone()
        };
        let ydesc = super::metric_label(&self.metric_name);
        let grid = RGBColor(225, 225, 225);
        {
            let mut mesh = chart.configure_mesh();
            mesh.x_desc(xdesc.as_str())
                .y_desc(ydesc.as_str())
                .label_style(text(13.0))
                .axis_desc_style(text(15.0))
                .bold_line_style(grid)
                .light_line_style(TRANSPARENT)
                .y_label_formatter(&|v| fmt_num(*v))
                .y_labels(8);
            let fx = move |v: &f64| fmt_params(untx(*v));
            if ticks.is_some() {
                mesh.x_labels(0).disable_x_mesh();
                mesh.draw().map_err(plot_err)?;
            } else {
                mesh.x_labels(8).x_label_formatter(&fx);
                mesh.draw().map_err(plot_err)?;
            }
        }
        if let Some(ticks) = &ticks {
            let mut last_label: Option<i32> = None;
            for &t in ticks {
                let x = tx(t);
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x, ylo), (x, yhi)],
                        grid.stroke_width(1),
                    )))
                    .map_err(plot_err)?;
                let (px, py) = chart.backend_coord(&(x, ylo));
                // backend_coord is absolute; `root` starts at the backend's origin.
                root.draw(&PathElement::new(
                    vec![(px, py), (px, py + 5)],
                    BLACK.stroke_width(1),
                ))
                .map_err(plot_err)?;
                // Budgets a few percent apart (53.8k and 55.3k) would print on top of each other.
                let label = fmt_params(t);
                let half = text_width(root, &label, &text(13.0)) / 2;
                if last_label.is_some_and(|end| px - half < end + 6) {
                    continue;
                }
                last_label = Some(px + half);
                root.draw_text(
                    &label,
                    &text(13.0).pos(Pos::new(HPos::Center, VPos::Top)),
                    (px, py + 8),
                )
                .map_err(plot_err)?;
            }
        }

        for (i, method) in methods.iter().enumerate() {
            let colour = palette::series(i);
            let marker = Marker::of(i);
            let off = dx(method);
            let tx = move |v: f64| tx(v) + off;
            let rows: Vec<&BudgetSummary> =
                summary.iter().filter(|s| &s.method == method).collect();
            if rows.is_empty() {
                continue;
            }
            // Every seed, faint, so that the spread behind each error bar stays visible.
            let raw: Vec<(f64, f64)> = self
                .points
                .iter()
                .filter(|p| &p.method == method && p.metric.is_finite())
                .map(|p| (tx(p.params as f64), p.metric))
                .collect();
            for &c in &raw {
                marker.draw(chart.plotting_area(), c, 3, colour.mix(0.3).filled())?;
            }
            chart
                .draw_series(rows.iter().filter(|s| s.n > 1).map(|s| {
                    ErrorBar::new_vertical(
                        tx(s.params),
                        s.mean - s.std,
                        s.mean,
                        s.mean + s.std,
                        colour.stroke_width(2),
                        10,
                    )
                }))
                .map_err(plot_err)?;
            chart
                .draw_series(LineSeries::new(
                    rows.iter().map(|s| (tx(s.params), s.mean)),
                    colour.stroke_width(2),
                ))
                .map_err(plot_err)?;
            for s in &rows {
                marker.draw(
                    chart.plotting_area(),
                    (tx(s.params), s.mean),
                    4,
                    colour.filled(),
                )?;
            }
        }
        // The legend column, top right, in method order.
        let (_, top) = chart.backend_coord(&(xa, yhi));
        let x0 = w - lw - 12;
        for (i, method) in methods.iter().enumerate() {
            let colour = palette::series(i);
            let y = top + 8 + 20 * i as i32;
            root.draw(&PathElement::new(
                vec![(x0, y), (x0 + 22, y)],
                colour.stroke_width(2),
            ))
            .map_err(plot_err)?;
            Marker::of(i).draw(root, (x0 + 11, y), 4, colour.filled())?;
            root.draw_text(
                method,
                &text(13.0).pos(Pos::new(HPos::Left, VPos::Center)),
                (x0 + 30, y),
            )
            .map_err(plot_err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_at_a_shared_budget_are_spread_sideways_and_others_are_not() {
        let at = |m: &str, p: usize| BudgetPoint::new(m, p, 0.8, 0);
        let plot = BudgetPlot::new(vec![at("a", 1000), at("b", 1005), at("c", 1000)]);
        let slots = dodge_slots(&plot.summary(), &plot.methods(), 0.02);
        assert_eq!(slots, vec![-1.0, 0.0, 1.0]);
        let apart = BudgetPlot::new(vec![at("a", 1000), at("b", 4000)]);
        assert_eq!(
            dodge_slots(&apart.summary(), &apart.methods(), 0.02),
            vec![0.0, 0.0]
        );
        // In the rendered chart each method's single-run dots sit at their own x.
        let fig = plot.render().unwrap();
        let xs: std::collections::BTreeSet<&str> = fig
            .to_svg()
            .split("<circle cx=\"")
            .skip(1)
            .filter(|c| c.contains("r=\"3\""))
            .map(|c| c.split('"').next().unwrap())
            .collect();
        assert_eq!(xs.len(), 3, "{xs:?}");
    }

    #[test]
    fn many_methods_get_distinct_markers_and_a_legend_beside_the_plot() {
        // 12 methods: the Okabe-Ito colours cycle after 8, so methods 9-12 are triangles.
        let pts: Vec<BudgetPoint> = (0..12)
            .map(|i| BudgetPoint::new(format!("method-{i:02}"), 1000 * (1 + i % 3), 0.8, 0))
            .collect();
        let plot = BudgetPlot::new(pts).size(800, 500);
        assert_eq!(Marker::of(7), Marker::Circle);
        assert_eq!(Marker::of(8), Marker::Triangle);
        assert_eq!(Marker::of(16), Marker::Cross);
        let svg = plot.render().unwrap().to_svg().to_string();
        assert!(svg.contains("<polygon"), "no triangle marker drawn");
        // Every legend entry is drawn right of the last x tick label, i.e. outside the plot.
        let text_x = |label: &str| -> f64 {
            let at = svg.find(&format!(">\n{label}\n</text>")).expect(label);
            let open = svg[..at].rfind("<text").unwrap();
            let tag = &svg[open..at];
            let x = tag.split("x=\"").nth(1).unwrap().split('"').next().unwrap();
            x.parse().unwrap()
        };
        let last_tick = text_x("3k");
        for i in 0..12 {
            assert!(text_x(&format!("method-{i:02}")) > last_tick + 20.0);
        }
    }

    #[test]
    fn close_budgets_do_not_print_overlapping_tick_labels() {
        let pts = vec![
            BudgetPoint::new("a", 18_432, 0.7, 0),
            BudgetPoint::new("b", 53_760, 0.7, 0),
            BudgetPoint::new("c", 55_296, 0.7, 0),
            BudgetPoint::new("d", 73_728, 0.7, 0),
        ];
        let svg = BudgetPlot::new(pts).render().unwrap().to_svg().to_string();
        let label = |t: &str| svg.contains(&format!(">\n{t}\n</text>"));
        assert!(label("18.4k") && label("53.8k") && label("73.7k"), "{svg}");
        assert!(!label("55.3k"), "55.3k overlaps 53.8k");
    }

    #[test]
    fn summary_groups_near_budgets_and_uses_sample_std() {
        let pts = vec![
            BudgetPoint::new("lora", 1000, 0.80, 0),
            BudgetPoint::new("lora", 1000, 0.84, 1),
            BudgetPoint::new("lora", 2000, 0.90, 0),
            BudgetPoint::new("hetero", 1010, 0.85, 0),
            BudgetPoint::new("hetero", 990, 0.87, 1),
            BudgetPoint::new("hetero", 2000, f64::NAN, 0),
        ];
        let s = BudgetPlot::new(pts).summary();
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].method.as_str(), s[0].n), ("lora", 2));
        assert!((s[0].mean - 0.82).abs() < 1e-12);
        // Sample variance (0.02^2 + 0.02^2) / (2 - 1).
        assert!((s[0].std - 0.0008f64.sqrt()).abs() < 1e-12);
        assert_eq!((s[1].n, s[1].std), (1, 0.0));
        assert_eq!(
            (s[2].method.as_str(), s[2].n, s[2].params),
            ("hetero", 2, 1000.0)
        );
    }
}
