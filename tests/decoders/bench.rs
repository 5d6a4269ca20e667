//! The benchmarks load through `model::AssetLoader`, so they take a decoder folder as the
//! commands do. A functional check on the tiny fixtures (one step, two batches): nothing here is
//! timed or compared.

use crate::util::{fixture, glue_root};
use heterolora::bench::proxy::{bench_scoring, ScoreBenchConfig};
use heterolora::bench::train::{bench_train_step, BenchConfig};
use std::process::Command;

#[test]
fn bench_train_runs_a_step_on_a_llama_folder() {
    let dir = tempfile::tempdir().unwrap();
    let glue = glue_root(dir.path(), 16, 4);
    let cfg = BenchConfig {
        model_dir: Some(fixture("llama")),
        glue_dir: Some(glue.clone()),
        allocation: "uniform:q,v,gate:r=2".into(),
        batch_size: 4,
        max_len: 32,
        steps: 2,
        warmup: 1,
        bucket: true,
        ..Default::default()
    };
    let r = bench_train_step(&cfg).unwrap();
    // Adapters: 2 layers x 2 x ((32 + 32) + (32 + 16) + (32 + 48)); the score head 32 x 2.
    assert_eq!(r.trainable_params, 2 * 2 * (64 + 48 + 80) + 32 * 2);
    assert!(r.last_loss.is_finite() && r.examples_per_sec > 0.0, "{r}");

    // The command line, as `heterolora bench train` runs it.
    let o = Command::new(env!("CARGO_BIN_EXE_heterolora"))
        .args(["bench", "train", "--steps", "1", "--warmup", "0"])
        .args([
            "--batch-size",
            "4",
            "--max-len",
            "32",
            "--allocation",
            "uniform:q,v:r=2",
        ])
        .arg("--model")
        .arg(fixture("opt_pre"))
        .arg("--glue")
        .arg(&glue)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["steps"], 1);
}

#[test]
fn bench_scoring_scores_a_decoder_slot_table() {
    let dir = tempfile::tempdir().unwrap();
    let glue = glue_root(dir.path(), 16, 4);
    let r = bench_scoring(&ScoreBenchConfig {
        model_dir: Some(fixture("qwen2")),
        glue_dir: Some(glue),
        space: "all".into(),
        proxies: vec!["grad-norm".into(), "w0-grad-norm".into()],
        num_batches: 2,
        batch_size: 4,
        train_batch_size: 4,
        max_len: 32,
        train_steps: 1,
        warmup: 0,
        ..Default::default()
    })
    .unwrap();
    // `all` on Qwen2: 7 LoRA kinds (the gate too) and 4 shortcuts in 2 layers, less shortcut2
    // in layer 0.
    assert_eq!(r.slots, 2 * 7 + 4 + 3);
    assert_eq!(r.rows.len(), 2);
    assert!(r.shared_pass.is_some());
}
