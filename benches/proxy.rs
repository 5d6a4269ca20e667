//! Proxy cost against one training epoch on all-MiniLM-L6-v2 and MRPC.
//!
//! ```text
//! HETEROLORA_MODEL_DIR=... HETEROLORA_GLUE_DIR=... cargo bench --profile dev --bench proxy
//! ```
//! Environment: `HL_BENCH_SPACE` (default `all`), `HL_BENCH_PROXIES` (comma-separated, default
//! all), `HL_BENCH_BATCHES` (32), `HL_BENCH_BATCH_SIZE` (32; the reference scores batches of 8), `HL_BENCH_TRAIN_BATCH_SIZE` (32), `HL_BENCH_STEPS` (10 timed training steps), `HL_BENCH_DEVICE`
//! (cpu), `HL_BENCH_OUT` (also write the report as JSON there).

use heterolora::bench::proxy::{bench_scoring, ScoreBenchConfig};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.is_empty())
}

fn main() -> heterolora::Result<()> {
    let mut cfg = ScoreBenchConfig::default();
    if let Some(s) = env("HL_BENCH_SPACE") {
        cfg.space = s;
    }
    if let Some(p) = env("HL_BENCH_PROXIES") {
        cfg.proxies = p.split(',').map(|s| s.trim().to_string()).collect();
    }
    if let Some(n) = env("HL_BENCH_BATCHES") {
        cfg.num_batches = n.parse().expect("HL_BENCH_BATCHES: a number");
    }
    if let Some(n) = env("HL_BENCH_BATCH_SIZE") {
        cfg.batch_size = n.parse().expect("HL_BENCH_BATCH_SIZE: a number");
    }
    if let Some(n) = env("HL_BENCH_TRAIN_BATCH_SIZE") {
        cfg.train_batch_size = n.parse().expect("HL_BENCH_TRAIN_BATCH_SIZE: a number");
    }
    if let Some(n) = env("HL_BENCH_STEPS") {
        cfg.train_steps = n.parse().expect("HL_BENCH_STEPS: a number");
    }
    if let Some(d) = env("HL_BENCH_DEVICE") {
        cfg.device = d;
    }
    let report = bench_scoring(&cfg)?;
    println!("{report}");
    if let Some(out) = env("HL_BENCH_OUT") {
        std::fs::write(&out, serde_json::to_string_pretty(&report)? + "\n")
            .map_err(|e| heterolora::Error::io(&out, e))?;
    }
    Ok(())
}
