//! Charts, drawn with plotters from plain data, kept as SVG and saved as SVG or PNG.
//!
//! Every chart is a small struct holding its data and options ([`AllocationHeatmap`],
//! [`ScoreHeatmap`], [`ProxyScatter`], [`BudgetPlot`], [`CurvesPlot`], [`ReallocationTimeline`]); its
//! `render()` returns a [`Figure`], which displays inline in evcxr and saves as SVG or PNG. The text
//! font (DejaVu Sans) is embedded, so no system fonts are needed.
//!
//! ```
//! use heterolora::plot::{BudgetPlot, BudgetPoint};
//! let points = vec![
//!     BudgetPoint::new("lora", 73_728, 0.84, 0),
//!     BudgetPoint::new("lora", 73_728, 0.86, 1),
//!     BudgetPoint::new("heterolora", 70_000, 0.87, 0),
//! ];
//! let fig = BudgetPlot::new(points).metric_name("accuracy").render().unwrap();
//! assert!(fig.to_svg().contains("heterolora"));
//! ```
//!
//! Charts take plain inputs (slot ids, numbers, strings), not the tracker's types; the `from_*_frame`
//! constructors read the polars frames the tracker returns (MLflow columns `run_id`, `params.<k>`,
//! `metrics.<k>`, `tags.<k>`).

mod budget;
mod curves;
mod figure;
mod font;
mod frame;
mod grid;
mod heatmap;
pub mod palette;
mod scatter;
mod timeline;

pub use budget::{BudgetPlot, BudgetPoint, BudgetSummary};
pub use curves::{Curve, CurvesPlot};
pub use figure::Figure;
pub use font::{ensure_fonts, FONT_FAMILY};
pub use heatmap::{AllocationHeatmap, HeatmapColour, ScoreHeatmap};
pub use scatter::{kendall_tau, spearman_rho, ProxyScatter, ScatterPoint};
pub use timeline::ReallocationTimeline;

use crate::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::{DrawingArea, DrawingBackend};

/// The default figure size in pixels.
pub const DEFAULT_SIZE: (u32, u32) = (800, 500);

/// A chart that can draw itself on any plotters backend. [`Figure::new`] renders it to SVG at once
/// and again to a bitmap when a PNG is asked for, so both come from the same drawing code.
pub trait Plot {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Draw the whole chart on `root` (already filled white).
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

/// Turn a plotters error into ours.
pub(crate) fn plot_err(e: impl std::fmt::Display) -> Error {
    Error::Plot(e.to_string())
}

/// A number for a label: 3 significant digits, scientific outside [1e-3, 1e5).
pub(crate) fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.2e}");
        // 1.50e-4 -> 1.5e-4
        if let Some((m, e)) = s.split_once('e') {
            let m = if m.contains('.') {
                m.trim_end_matches('0').trim_end_matches('.')
            } else {
                m
            };
            return format!("{m}e{e}");
        }
        return s;
    }
    let digits = (2 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A parameter count for an axis: 950, 12.3k, 1.2M.
pub(crate) fn fmt_params(n: f64) -> String {
    let a = n.abs();
    if a >= 1e6 {
        format!("{}M", fmt_num(n / 1e6))
    } else if a >= 1e3 {
        format!("{}k", fmt_num(n / 1e3))
    } else {
        fmt_num(n)
    }
}

/// `[lo, hi]` widened by `frac` of its span on both sides (or by 1 / 5% when flat).
pub(crate) fn padded(lo: f64, hi: f64, frac: f64) -> (f64, f64) {
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    if span <= f64::EPSILON * hi.abs().max(1.0) {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.05 };
        return (lo - d, hi + d);
    }
    (lo - span * frac, hi + span * frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format_compactly() {
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(0.8567), "0.857");
        assert_eq!(fmt_num(12.0), "12");
        assert_eq!(fmt_num(123.456), "123");
        assert_eq!(fmt_num(0.00015), "1.5e-4");
        assert_eq!(fmt_num(-2.5), "-2.5");
        assert_eq!(fmt_params(73_728.0), "73.7k");
        assert_eq!(fmt_params(1_500_000.0), "1.5M");
        assert_eq!(fmt_params(950.0), "950");
        assert_eq!(padded(1.0, 1.0, 0.1), (0.95, 1.05));
        assert_eq!(padded(0.0, 10.0, 0.1), (-1.0, 11.0));
    }
}
