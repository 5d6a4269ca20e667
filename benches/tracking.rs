//! Tracker throughput: metric points logged per second, and `search_runs` on 10,000 runs x 20
//! metrics.
//!
//! ```text
//! cargo bench --bench tracking --profile dev            # dev profile: dependencies at opt-level 3
//! HL_BENCH_RUNS=2000 cargo bench --bench tracking --profile dev
//! HL_BENCH_DB=target/bench.db cargo bench --bench tracking --profile dev   # keep the store
//! ```
//! CARGO_PROFILE_DEV_OPT_LEVEL=3 cargo bench --bench tracking --profile dev   # our crate optimised too
//! Timings are printed, never asserted. Run creation is bound by SQLite's page writes (4 short
//! transactions per run); numbers on a loaded machine vary by 3x.

use heterolora::tracking::{FlushPolicy, RunStatus, Tracker};
use std::time::Instant;

fn env_usize(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn main() -> heterolora::Result<()> {
    let n_runs = env_usize("HL_BENCH_RUNS", 10_000);
    let n_metrics = env_usize("HL_BENCH_METRICS", 20);
    let steps = env_usize("HL_BENCH_STEPS", 100_000);
    let dir = tempfile::tempdir().map_err(|e| heterolora::Error::io("tempdir", e))?;
    // HL_BENCH_DB=<path> keeps the store (for looking at query plans); it must not exist yet.
    let db = std::env::var("HL_BENCH_DB")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.path().join("bench.db"));
    let t = Tracker::open_path(&db)?;

    // 1. One training run logging every step (batched, default policy).
    let mut run = t.start_run("bench", "train")?;
    let t0 = Instant::now();
    for s in 0..steps as i64 {
        run.log_metric("loss", 1.0 / (s as f64 + 1.0), s)?;
    }
    run.end(RunStatus::Finished)?;
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "log_metric, default batching      : {steps} points in {dt:.3} s = {:.0} points/s",
        steps as f64 / dt
    );

    // 2. Same, three metrics per step via log_metrics.
    let mut run = t.start_run("bench", "train3")?;
    let t0 = Instant::now();
    for s in 0..(steps / 3) as i64 {
        run.log_metrics(&[("loss", 0.5), ("acc", 0.9), ("lr", 1e-4)], s)?;
    }
    run.end(RunStatus::Finished)?;
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "log_metrics x3, default batching  : {} points in {dt:.3} s = {:.0} points/s",
        steps / 3 * 3,
        (steps / 3 * 3) as f64 / dt
    );

    // 3. Worst case: every point its own transaction.
    let n_imm = steps.min(5_000);
    let mut run = t.start_run("bench", "immediate")?;
    run.set_flush_policy(FlushPolicy::immediate());
    let t0 = Instant::now();
    for s in 0..n_imm as i64 {
        run.log_metric("loss", 0.1, s)?;
    }
    run.end(RunStatus::Finished)?;
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "log_metric, one transaction each  : {n_imm} points in {dt:.3} s = {:.0} points/s",
        n_imm as f64 / dt
    );

    // 4. The search workload: n_runs runs x n_metrics metrics (+ 3 params each).
    let t0 = Instant::now();
    let exp = t.experiment("search")?;
    for i in 0..n_runs {
        let mut r = exp.start_run(&format!("run-{i}"))?;
        r.log_params(&[
            ("r", (4 << (i % 4)).to_string()),
            ("seed", i.to_string()),
            ("task", "mrpc".to_string()),
        ])?;
        let metrics: Vec<(String, f64)> = (0..n_metrics)
            .map(|k| {
                (
                    format!("metric_{k}"),
                    ((i * 31 + k * 7) % 1000) as f64 / 1000.0,
                )
            })
            .collect();
        r.log_metrics(&metrics, 0)?;
        r.end(RunStatus::Finished)?;
    }
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "create {n_runs} runs x {n_metrics} metrics  : {dt:.2} s ({:.0} runs/s)",
        n_runs as f64 / dt
    );

    for (label, filter, order) in [
        ("search_runs, no filter            ", "", vec![]),
        (
            "search_runs, metric filter        ",
            "metrics.metric_3 > 0.5",
            vec!["metrics.metric_3 DESC"],
        ),
        (
            "search_runs, metric+param filter  ",
            "metrics.metric_3 > 0.5 and params.r = '8'",
            vec![],
        ),
    ] {
        let mut best = f64::MAX;
        let mut rows = 0;
        for _ in 0..3 {
            let t0 = Instant::now();
            let table = t.search_runs(&["search"], filter, &order)?;
            best = best.min(t0.elapsed().as_secs_f64());
            rows = table.len();
            assert!(table.df().width() >= 7 + n_metrics);
        }
        println!("{label}: {rows} runs in {:.1} ms (best of 3)", best * 1e3);
    }
    let t0 = Instant::now();
    let some = t.search_runs_limit(&["search"], "", &["metrics.metric_0 DESC"], Some(100))?;
    println!(
        "search_runs, top 100 by a metric   : {} runs in {:.1} ms",
        some.len(),
        t0.elapsed().as_secs_f64() * 1e3
    );
    let id = t
        .search_runs_limit(&["bench"], "attributes.run_name = 'train'", &[], Some(1))?
        .run_ids()[0]
        .clone();
    let t0 = Instant::now();
    let h = t.metric_history(&id, "loss")?;
    println!(
        "metric_history of {} points        : {:.1} ms",
        h.len(),
        t0.elapsed().as_secs_f64() * 1e3
    );
    let size = std::fs::metadata(t.path()).map(|m| m.len()).unwrap_or(0);
    println!("store size: {:.1} MiB", size as f64 / (1 << 20) as f64);
    Ok(())
}
