//! Proxies on the real all-MiniLM-L6-v2 and the first MRPC training batches, and the
//! `score` / `search --proxy` command line end to end. Needs the fetched assets
//! (`heterolora fetch model`, `heterolora fetch glue`).

use crate::model_util;

use heterolora::adapters::{SearchSpace, SlotKind};
use heterolora::cli::score::{load_for_scoring, ScoringOpts};
use heterolora::proxy::{self, FreshAdapters, Proxy, Scores};
use heterolora::rng::Rng;
use heterolora::search::TopKParams;
use std::path::PathBuf;

fn glue_dir() -> PathBuf {
    let local = model_util::root().join("datasets/glue");
    if local.join("MRPC/train.tsv").exists() {
        return local;
    }
    if let Ok(d) = std::env::var("HETEROLORA_GLUE_DIR") {
        let p = PathBuf::from(d);
        if p.join("MRPC/train.tsv").exists() {
            return p;
        }
    }
    panic!("GLUE MRPC not found in datasets/glue nor $HETEROLORA_GLUE_DIR: run `heterolora fetch glue` first");
}

fn opts(batches: usize) -> ScoringOpts {
    ScoringOpts {
        task: "mrpc".into(),
        batches,
        batch_size: 8,
        max_len: 128,
        fresh_r: 8,
        device: "cpu".into(),
        precision: "f32".into(),
        assets: heterolora::cli::assets::AssetArgs {
            model: Some(model_util::model_dir()),
            glue: Some(glue_dir()),
        },
    }
}

#[test]
fn real_model_scores_show_the_b_zero_blindness_and_the_w0_signal() {
    let (_, mut model, data) = load_for_scoring(&opts(2), 0).unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data.batches[0].indices, (0..8).collect::<Vec<_>>());
    let space = SearchSpace::lora_qv_shortcuts();
    let slots = space.slots(6);
    let names = ["grad-norm", "snip", "w0-grad-spectrum", "fisher"];
    let ps: Vec<Box<dyn Proxy>> = names.iter().map(|n| proxy::by_name(n).unwrap()).collect();
    let refs: Vec<&dyn Proxy> = ps.iter().map(|p| p.as_ref()).collect();
    let all = proxy::score_all(
        &refs,
        &mut model,
        &data.batches,
        &slots,
        &FreshAdapters::default(),
        &mut Rng::new(0),
    )
    .unwrap();
    let get = |n: &str| all.iter().find(|s| s.proxy == n).unwrap();
    assert!(get("snip").values.values().all(|&v| v == 0.0));
    assert!(get("grad-norm").values.values().all(|&v| v > 0.0));
    let spec = get("w0-grad-spectrum");
    assert!(spec.values.values().all(|&v| v > 0.0 && v.is_finite()));
    assert_eq!(spec.rank_gains.as_ref().unwrap().len(), slots.len());
    // Scores flow into the allocators.
    let alloc = TopKParams::new()
        .check()
        .unwrap()
        .allocate(&space, &model.dims(), spec)
        .unwrap();
    assert_eq!(alloc.ranks.len(), 3 + 6);
    let back = Scores::from_json(&spec.to_json().unwrap()).unwrap();
    for (s, v) in &spec.values {
        assert!((back.values[s] - v).abs() <= 1e-12 * v.abs(), "{s}");
    }
    assert!(get("fisher")
        .values
        .iter()
        .filter(|(s, _)| s.kind == SlotKind::Query)
        .all(|(_, &v)| v > 0.0));
    assert!(model.adapter_slots().is_empty());
}

#[test]
fn score_and_search_with_proxy_on_the_command_line() {
    use clap::Parser;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scores.json");
    let model = model_util::model_dir();
    let glue = glue_dir();
    let cli = heterolora::cli::Cli::parse_from([
        "heterolora",
        "score",
        "--task",
        "mrpc",
        "--proxy",
        "grad-norm,w0-grad-norm",
        "--space",
        "q,v",
        "--batches",
        "2",
        "--batch-size",
        "4",
        "--model-dir",
        model.to_str().unwrap(),
        "--glue-dir",
        glue.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--tracking-uri",
        dir.path().join("mlflow.db").to_str().unwrap(),
    ]);
    heterolora::cli::run(cli).unwrap();
    let gn = Scores::load(dir.path().join("scores.grad-norm.json")).unwrap();
    assert_eq!(gn.values.len(), 12);
    assert_eq!(gn.num_batches, 2);
    assert!(dir.path().join("scores.w0-grad-norm.json").exists());
    let tracker = heterolora::tracking::Tracker::open_path(&dir.path().join("mlflow.db")).unwrap();
    let runs = tracker.search_runs(&["mrpc"], "", &[]).unwrap();
    assert_eq!(runs.run_ids().len(), 1);

    let alloc_path = dir.path().join("allocation.json");
    let cli = heterolora::cli::Cli::parse_from([
        "heterolora",
        "search",
        "--proxy",
        "w0-grad-spectrum",
        "--kinds",
        "q,v",
        "--batches",
        "2",
        "--batch-size",
        "4",
        "--model-dir",
        model.to_str().unwrap(),
        "--glue-dir",
        glue.to_str().unwrap(),
        "--method",
        "heterogeneous",
        "--out",
        alloc_path.to_str().unwrap(),
    ]);
    heterolora::cli::run(cli).unwrap();
    let alloc = heterolora::search::Allocation::load(&alloc_path).unwrap();
    assert!(!alloc.ranks.is_empty());
    assert_eq!(
        alloc.meta.get("proxy").map(String::as_str),
        Some("w0-grad-spectrum")
    );
    assert!(dir.path().join("allocation.scores.json").exists());
}
