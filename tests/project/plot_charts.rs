//! Every chart rendered from small fixed data: the SVG holds the expected elements and the PNG has
//! the expected pixel size. Set `HETEROLORA_PLOT_DIR=<dir>` to keep the PNGs for a visual check.

use heterolora::adapters::{ModelDims, SearchSpace, SlotId};
use heterolora::plot::{
    AllocationHeatmap, BudgetPlot, BudgetPoint, Curve, CurvesPlot, Figure, HeatmapColour,
    ProxyScatter, ReallocationTimeline, ScoreHeatmap,
};
use heterolora::polars::prelude::{Column, DataFrame, NamedFrom, Series};
use heterolora::proxy::Scores;
use heterolora::search::{Allocation, SlotRank};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn slot(s: &str) -> SlotId {
    s.parse().unwrap()
}

fn allocation() -> Allocation {
    let mut ranks = BTreeMap::new();
    for (s, r) in [
        ("layer.0.attention.query", 8),
        ("layer.0.residual1", 2),
        ("layer.1.attention.value", 4),
        ("layer.1.shortcut2", 2),
    ] {
        ranks.insert(
            slot(s),
            SlotRank {
                r,
                lora_alpha: 2.0 * r as f64,
            },
        );
    }
    Allocation {
        dims: ModelDims {
            num_layers: 2,
            hidden_size: 384,
            intermediate_size: 1536,
        },
        candidates: SearchSpace::lora_qv_shortcuts().slots(2),
        ranks,
        method: "heterogeneous".into(),
        proxy: Some("grad-norm".into()),
        meta: BTreeMap::new(),
    }
}

fn scores(proxy: &str, f: impl Fn(usize, usize) -> f64) -> Scores {
    let mut values = BTreeMap::new();
    for (i, s) in SearchSpace::lora_qv_shortcuts()
        .slots(2)
        .into_iter()
        .enumerate()
    {
        values.insert(s, f(i, s.layer));
    }
    Scores {
        proxy: proxy.into(),
        values,
        rank_gains: None,
        num_batches: 4,
        seconds: 0.8,
    }
}

fn count(svg: &str, needle: &str) -> usize {
    svg.matches(needle).count()
}

/// The opening of an opaque SVG polyline (a series line or a legend line) in `colour`.
fn polyline(colour: &str) -> String {
    format!("<polyline fill=\"none\" opacity=\"1\" stroke=\"{colour}\"")
}

fn has_text(svg: &str, text: &str) -> bool {
    // plotters writes `<text ...>\nTEXT\n</text>`.
    svg.contains(&format!(">\n{text}\n</text>")) || svg.contains(&format!(">{text}</text>"))
}

/// Save the PNG (to HETEROLORA_PLOT_DIR when set, else a temporary dir) and check its header.
fn check_png(fig: &Figure, name: &str) {
    let keep = std::env::var_os("HETEROLORA_PLOT_DIR").map(PathBuf::from);
    let tmp = tempfile::tempdir().unwrap();
    let dir = keep.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let png = dir.join(format!("{name}.png"));
    let svg = dir.join(format!("{name}.svg"));
    fig.save_png(&png).unwrap();
    fig.save_svg(&svg).unwrap();
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{name}: not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((w, h), fig.size(), "{name}: PNG size");
    // A blank white image compresses to a few hundred bytes; a chart with text does not.
    assert!(
        bytes.len() > 8_000,
        "{name}: PNG only {} bytes",
        bytes.len()
    );
    assert_eq!(std::fs::read_to_string(&svg).unwrap(), fig.to_svg());
}

fn check_svg_size(fig: &Figure) {
    let (w, h) = fig.size();
    let svg = fig.to_svg();
    assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
    assert!(svg.contains(&format!("width=\"{w}\"")) && svg.contains(&format!("height=\"{h}\"")));
    assert!(svg.trim_end().ends_with("</svg>"));
}

#[test]
fn allocation_heatmap_has_a_cell_per_slot_annotations_and_totals() {
    let fig = AllocationHeatmap::new(&allocation()).render().unwrap();
    // Two layers: the default height shrinks to fit the rows.
    assert_eq!(fig.size(), (800, 280));
    check_svg_size(&fig);
    let svg = fig.to_svg();
    assert!(
        has_text(svg, "Allocation: heterogeneous (grad-norm)"),
        "title"
    );
    for label in [
        "q", "v", "res1", "res2", "sc1", "sc2", "layer 0", "layer 1", "Σ r", "params",
    ] {
        assert!(has_text(svg, label), "label {label}");
    }
    // 1 background + 11 slot cells (shortcut2 has no layer 0) + 2 x 2 row totals
    // + 7 + 7 column totals (one blank each) + 4 legend swatches (r = 2, 4, 8, off) x 2.
    assert_eq!(count(svg, "<rect"), 1 + 11 + 4 + 14 + 8);
    // Rank annotations: r=8 once as a cell and once as a row total; r=4 and the params totals.
    assert!(has_text(svg, "8") && has_text(svg, "4") && has_text(svg, "r = 8"));
    // q at r = 8 on hidden 384: 8 * 768 = 6144 params; total 6144 + 1536 + 3072 + 1536 = 12,288.
    assert!(has_text(svg, "6.14k") && has_text(svg, "12.3k"));
    assert!(svg.contains("4 of 11 slots on · 12,288 trainable parameters"));
    check_png(&fig, "allocation_rank");

    let fig = AllocationHeatmap::new(&allocation())
        .colour(HeatmapColour::OnOff)
        .size(640, 400)
        .render()
        .unwrap();
    assert_eq!(fig.size(), (640, 400));
    assert!(has_text(fig.to_svg(), "# on") && has_text(fig.to_svg(), "on"));
    check_png(&fig, "allocation_onoff");
}

#[test]
fn score_heatmap_outlines_the_allocation_and_sums() {
    let s = scores("grad-norm", |i, _| {
        0.01 * (i as f64 + 1.0) * (i as f64 + 1.0)
    });
    let fig = ScoreHeatmap::new(&s)
        .allocation(&allocation())
        .render()
        .unwrap();
    check_svg_size(&fig);
    let svg = fig.to_svg();
    assert!(has_text(svg, "Proxy scores: grad-norm"));
    assert!(has_text(svg, "Σ") && has_text(svg, "score") && has_text(svg, "on in heterogeneous"));
    // Values 0.01 * k^2 for k = 1..=11: 0.01 and 1.21 appear as annotations.
    assert!(has_text(svg, "0.01") && has_text(svg, "1.21"));
    // 4 enabled slots outlined, plus the legend swatch: 3 nested vermillion rectangles each.
    assert_eq!(count(svg, "fill=\"none\" stroke=\"#D55E00\""), 3 * 5);
    check_png(&fig, "scores");
}

#[test]
fn scatter_prints_rank_correlations_and_a_legend_per_kind() {
    let a = scores("grad-norm", |i, _| i as f64 + 1.0);
    let b = scores("snip", |i, _| {
        ((i as f64 + 1.0) * 0.7).sin() + i as f64 * 0.3
    });
    let sc = ProxyScatter::from_scores(&a, &b).unwrap();
    let rho = sc.spearman().unwrap();
    let tau = sc.kendall().unwrap();
    assert!(rho > 0.5 && tau > 0.3 && tau < rho, "rho {rho} tau {tau}");
    let fig = sc.render().unwrap();
    check_svg_size(&fig);
    let svg = fig.to_svg();
    assert!(has_text(svg, "snip against grad-norm"));
    let line = format!("Spearman ρ = {rho:.3} · Kendall τ = {tau:.3} · n = 11");
    assert!(has_text(svg, &line), "{line}");
    for kind in ["q", "v", "res1", "res2", "sc1", "sc2"] {
        assert!(has_text(svg, kind), "legend {kind}");
    }
    // LoRA kinds as circles (5 q/v points + ... ) and shortcuts as triangles, each with a legend marker.
    assert_eq!(count(svg, "<circle"), 4 + 2);
    assert_eq!(count(svg, "<polygon"), 7 + 4);
    check_png(&fig, "scatter");

    // Against a measured importance, and the error for too few shared slots.
    let imp: BTreeMap<SlotId, f64> = a.values.iter().map(|(k, v)| (*k, -v)).collect();
    let sc = ProxyScatter::against_importance(&a, "accuracy drop", &imp).unwrap();
    assert!((sc.spearman().unwrap() + 1.0).abs() < 1e-12);
    let one: BTreeMap<SlotId, f64> = [(slot("layer.0.attention.query"), 1.0)].into();
    assert!(ProxyScatter::against_importance(&a, "x", &one).is_err());
}

#[test]
fn budget_plot_has_a_line_and_legend_per_method() {
    let mut pts = Vec::new();
    for (m, base) in [("lora", 0.80), ("heterolora", 0.83), ("topk", 0.81)] {
        for (i, params) in [4_608usize, 18_432, 36_864, 73_728].into_iter().enumerate() {
            for seed in 0..3u64 {
                let metric = base + 0.02 * i as f64 + 0.005 * (seed as f64 - 1.0);
                pts.push(BudgetPoint::new(m, params, metric, seed));
            }
        }
    }
    let plot = BudgetPlot::new(pts).metric_name("accuracy");
    assert_eq!(plot.summary().len(), 12);
    let fig = plot.render().unwrap();
    check_svg_size(&fig);
    let svg = fig.to_svg();
    assert!(has_text(svg, "accuracy against adapter parameters"));
    assert!(has_text(svg, "adapter parameters (log scale)"));
    // The four budgets are the x ticks.
    for tick in ["4.61k", "18.4k", "36.9k", "73.7k"] {
        assert!(has_text(svg, tick), "tick {tick}");
    }
    for m in ["lora", "heterolora", "topk"] {
        assert!(has_text(svg, m), "legend {m}");
    }
    // One line per method, and one legend line per method (the grid is drawn in light grey).
    for colour in ["#0072B2", "#E69F00", "#009E73"] {
        assert_eq!(count(svg, &polyline(colour)), 2, "{colour}");
    }
    assert!(svg.contains("mean ± std over seeds (n = 3 per point)"));
    check_png(&fig, "budget");
}

#[test]
fn budget_points_come_from_a_search_runs_frame() {
    let df = DataFrame::new_infer_height(vec![
        Column::from(Series::new("run_id".into(), &["a", "b", "c", "d"])),
        Column::from(Series::new(
            "params.method".into(),
            &["lora", "lora", "hetero", "hetero"],
        )),
        Column::from(Series::new(
            "params.trainable_params".into(),
            &["1000", "1000", "990", "1000"],
        )),
        Column::from(Series::new("params.seed".into(), &["0", "1", "0", "1"])),
        Column::from(Series::new(
            "metrics.eval_accuracy".into(),
            &[Some(0.8), Some(0.82), Some(0.85), None],
        )),
    ])
    .unwrap();
    let pts = BudgetPoint::from_runs_frame(
        &df,
        "params.method",
        "params.trainable_params",
        "metrics.eval_accuracy",
        Some("params.seed"),
    )
    .unwrap();
    assert_eq!(pts.len(), 3, "the unfinished run d is skipped");
    assert_eq!(pts[1], BudgetPoint::new("lora", 1000, 0.82, 1));
    assert_eq!(pts[2].params, 990);
    let err = BudgetPoint::from_runs_frame(
        &df,
        "params.method",
        "params.r",
        "metrics.eval_accuracy",
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`params.r`") && err.contains("params.trainable_params"),
        "{err}"
    );
    assert!(BudgetPlot::new(pts).render().is_ok());
}

#[test]
fn training_curves_have_a_line_per_run_and_metric() {
    let mut curves = Vec::new();
    for (r, run) in ["lora-r8", "heterolora"].iter().enumerate() {
        let loss: Vec<(i64, f64)> = (0..50)
            .map(|s| {
                (
                    s * 10,
                    0.7 * (-(s as f64) / (15.0 + r as f64 * 5.0)).exp()
                        + 0.05 * ((s * 7) as f64).sin().abs(),
                )
            })
            .collect();
        let acc: Vec<(i64, f64)> = (1..=5)
            .map(|e| (e * 100, 0.7 + 0.03 * e as f64 + 0.01 * r as f64))
            .collect();
        curves.push(Curve::new(*run, "train_loss", loss));
        curves.push(Curve::new(*run, "eval_accuracy", acc));
    }
    let fig = CurvesPlot::new(curves.clone()).render().unwrap();
    check_svg_size(&fig);
    let svg = fig.to_svg();
    assert!(has_text(svg, "Training curves"));
    assert!(has_text(svg, "train loss") && has_text(svg, "eval accuracy"));
    assert!(
        has_text(svg, "training step"),
        "x axis says what the steps are"
    );
    assert!(has_text(svg, "lora-r8") && has_text(svg, "heterolora"));
    // Per run: a curve in each of the 2 panels + 1 legend entry (first panel only).
    assert_eq!(count(svg, &polyline("#0072B2")), 3);
    assert_eq!(count(svg, &polyline("#E69F00")), 3);
    check_png(&fig, "curves");

    let fig = CurvesPlot::new(curves.clone())
        .smoothing(0.6)
        .metrics(["train_loss"])
        .render()
        .unwrap();
    // Per run: the smoothed line and its legend entry, and the raw line faint behind.
    assert_eq!(count(fig.to_svg(), &polyline("#0072B2")), 2);
    assert_eq!(
        count(fig.to_svg(), "<polyline fill=\"none\" opacity=\"0.25\""),
        2
    );
    check_png(&fig, "curves_smoothed");
    let err = CurvesPlot::new(curves)
        .metrics(["nope"])
        .render()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`nope`") && err.contains("train_loss"),
        "{err}"
    );
}

#[test]
fn curves_come_from_a_metric_history_frame() {
    let df = DataFrame::new_infer_height(vec![
        Column::from(Series::new("run_name".into(), &["a", "a", "b", "a"])),
        Column::from(Series::new("key".into(), &["loss", "loss", "loss", "acc"])),
        Column::from(Series::new("step".into(), &[2i64, 1, 1, 1])),
        Column::from(Series::new("value".into(), &[0.5, 0.9, 0.8, 0.7])),
    ])
    .unwrap();
    let c = Curve::from_history_frame(&df, "run_name").unwrap();
    assert_eq!(c.len(), 3);
    assert_eq!(c[0], Curve::new("a", "loss", vec![(1, 0.9), (2, 0.5)]));
    assert_eq!(c[1].run, "b");
    assert_eq!(c[2].metric, "acc");

    // The tracker's `metric_histories(runs, key)` frame: run_id, step, timestamp, value.
    let df = DataFrame::new_infer_height(vec![
        Column::from(Series::new("run_id".into(), &["r1", "r1", "r2"])),
        Column::from(Series::new("step".into(), &[0i64, 10, 0])),
        Column::from(Series::new("timestamp".into(), &[1i64, 2, 3])),
        Column::from(Series::new("value".into(), &[1.0, 0.5, 0.9])),
    ])
    .unwrap();
    let c = Curve::from_metric_frame(&df, "run_id", "train_loss").unwrap();
    assert_eq!(
        c,
        [
            Curve::new("r1", "train_loss", vec![(0, 1.0), (10, 0.5)]),
            Curve::new("r2", "train_loss", vec![(0, 0.9)]),
        ]
    );
    let err = Curve::from_history_frame(&df, "run_id")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`key`"), "{err}");
}

#[test]
fn reallocation_timeline_has_a_cell_per_slot_and_step() {
    let slots: Vec<SlotId> = SearchSpace::lora_qv().slots(3);
    let steps = vec![0, 200, 400, 600, 800];
    let enabled: Vec<Vec<bool>> = (0..steps.len())
        .map(|t| (0..slots.len()).map(|s| (s + t) % 3 != 0).collect())
        .collect();
    let tl = ReallocationTimeline::new(steps, slots, enabled).unwrap();
    let fig = tl.render().unwrap();
    check_svg_size(&fig);
    let svg = fig.to_svg();
    assert!(has_text(svg, "Re-allocation timeline"));
    assert!(has_text(svg, "training step") && has_text(svg, "L2 v") && has_text(svg, "800"));
    // 1 background + 6 x 5 cells + 3-rect outlines of switched cells + 6 + 5 totals
    // + 4 swatches (fill + a 1-rect or 3-rect border).
    let switches = tl.changes();
    assert!(switches > 0);
    assert_eq!(
        count(svg, "<rect"),
        1 + 30 + 3 * switches + 6 + 5 + 4 + 1 + 1 + 3 + 3
    );
    assert!(svg.contains(&format!("6 slots · 5 re-allocations · {switches} switches")));
    check_png(&fig, "timeline");
}

#[test]
fn figures_display_inline_in_evcxr_and_report_bad_paths() {
    let fig = AllocationHeatmap::new(&allocation()).render().unwrap();
    let out = fig.to_evcxr();
    assert!(out.starts_with("EVCXR_BEGIN_CONTENT image/svg+xml\n<svg"));
    assert!(out.ends_with("</svg>\nEVCXR_END_CONTENT\n"));
    assert_eq!(out.matches("EVCXR_BEGIN_CONTENT").count(), 1);
    let err = fig
        .save_png("/nonexistent-dir/x.png")
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent-dir"), "{err}");
    assert!(format!("{fig:?}").starts_with("Figure(800x280"));
    assert!(AllocationHeatmap::new(&allocation())
        .size(10, 10)
        .render()
        .is_err());
    let mut empty = allocation();
    empty.candidates.clear();
    empty.ranks.clear();
    let err = AllocationHeatmap::new(&empty)
        .render()
        .unwrap_err()
        .to_string();
    assert!(err.contains("no candidate slots"), "{err}");
    let none = Scores {
        values: BTreeMap::new(),
        ..scores("snip", |_, _| 0.0)
    };
    assert!(ScoreHeatmap::new(&none).render().is_err());
}

#[test]
fn large_timeline_grows_in_height_and_thins_its_labels() {
    // MiniLM-L6's LoRA + shortcut space (35 slots) re-allocated 24 times.
    let slots: Vec<SlotId> = SearchSpace::lora_qv_shortcuts().slots(6);
    let steps: Vec<usize> = (0..24).map(|i| i * 50).collect();
    let enabled: Vec<Vec<bool>> = (0..steps.len())
        .map(|t| (0..slots.len()).map(|s| (s * 7 + t / 3) % 5 < 2).collect())
        .collect();
    let fig = ReallocationTimeline::new(steps, slots, enabled)
        .unwrap()
        .render()
        .unwrap();
    let (w, h) = fig.size();
    assert_eq!(w, 800);
    assert!(h > 500, "height {h}");
    let svg = fig.to_svg();
    assert!(has_text(svg, "L5 sc2") && has_text(svg, "0"));
    // Step labels that would overlap are left out, but the first is always there.
    let shown = (0..24)
        .filter(|i| has_text(svg, &(i * 50).to_string()))
        .count();
    assert!((6..24).contains(&shown), "{shown} step labels");
    check_png(&fig, "timeline_large");
    let fig = AllocationHeatmap::new(&{
        let mut a = allocation();
        a.dims = ModelDims::MINILM_L6;
        a.candidates = SearchSpace::lora_qv_shortcuts().slots(6);
        a
    })
    .render()
    .unwrap();
    assert_eq!(fig.size(), (800, 454));
    check_png(&fig, "allocation_minilm");
}
