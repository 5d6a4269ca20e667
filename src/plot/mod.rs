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
mod forest;
mod frame;
mod grid;
mod heatmap;
pub use crate::display::palette;
mod scatter;
pub mod study;
mod timeline;

pub use budget::{BudgetPlot, BudgetPoint, BudgetSummary};
pub use curves::{Curve, CurvesPlot};
pub use figure::Figure;
pub use font::{ensure_fonts, FONT_FAMILY};
pub use forest::{PairedDiffPlot, PairedRow};
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
/// Draws a chart's title centred at the top of `root`, in the largest bold size from 21 down to
/// 12 that fits the width with a margin; a title too long even at 12 is cut with an ellipsis.
/// Returns the size used.
pub(crate) fn draw_title<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<f64> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    let w = root.dim_in_pixel().0 as i32;
    let room = w - 24;
    let fits = |t: &str, size: f64| grid::text_width(root, t, &font::bold(size)) <= room;
    let mut size = 21.0;
    while size > 12.0 && !fits(title, size) {
        size -= 1.0;
    }
    let mut shown = title.to_string();
    while !fits(&shown, size) && shown.chars().count() > 1 {
        shown = shown
            .chars()
            .take(shown.chars().count() - 2)
            .collect::<String>()
            + "…";
    }
    root.draw_text(
        &shown,
        &font::bold(size).pos(Pos::new(HPos::Center, VPos::Top)),
        (w / 2, 8),
    )
    .map_err(plot_err)?;
    Ok(size)
}

/// A metric key as an axis label: `best_dev_accuracy` -> `dev accuracy (best epoch)`,
/// `last_dev_f1` -> `dev F1 (last epoch)`, `train_loss` -> `train loss`; prefixes such as
/// `metrics.` or `study.` dropped.
pub fn metric_label(key: &str) -> String {
    let mut k = key;
    for p in ["metrics.", "study."] {
        k = k.strip_prefix(p).unwrap_or(k);
    }
    let (k, when) = match (k.strip_prefix("best_"), k.strip_prefix("last_")) {
        (Some(rest), _) => (rest, " (best epoch)"),
        (_, Some(rest)) => (rest, " (last epoch)"),
        _ => (k, ""),
    };
    let words: Vec<String> = k
        .split(['_', '.'])
        .filter(|w| !w.is_empty())
        .map(|w| match w {
            "f1" => "F1".to_string(),
            "mcc" => "MCC".to_string(),
            "lr" => "learning rate".to_string(),
            w => w.to_string(),
        })
        .collect();
    format!("{}{when}", words.join(" "))
}

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
    fn metric_keys_read_as_axis_labels() {
        assert_eq!(
            metric_label("best_dev_accuracy"),
            "dev accuracy (best epoch)"
        );
        assert_eq!(metric_label("metrics.last_dev_f1"), "dev F1 (last epoch)");
        assert_eq!(metric_label("train_loss"), "train loss");
        assert_eq!(metric_label("lr"), "learning rate");
    }

    #[test]
    fn long_titles_shrink_then_are_cut_never_clipped() {
        use plotters::prelude::{IntoDrawingArea, SVGBackend};
        font::ensure_fonts().unwrap();
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (300, 200)).into_drawing_area();
            assert_eq!(draw_title(&root, "Short",).unwrap(), 21.0);
            let long = "MRPC dev accuracy against adapter parameters (study mrpc-cpu6, 5 seeds)";
            let size = draw_title(&root, long).unwrap();
            assert!(size < 21.0);
            let cut = "x".repeat(400);
            assert_eq!(draw_title(&root, &cut).unwrap(), 12.0);
        }
        assert!(
            svg.contains('…'),
            "the 400-character title is cut with an ellipsis"
        );
    }

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
