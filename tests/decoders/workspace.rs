//! The notebooks' `Workspace` on a decoder folder (the Llama fixture with its tokenizer and a
//! GLUE-format MRPC folder written here): scores of every gated slot, a top-k allocation sized
//! with the model's slot table, a tracked training run, its saved adapters reloaded and their
//! predictions equal to the run's last dev metrics, and the allocation heat map with the gate.

use crate::util::{fixture, glue_root};
use heterolora::adapters::{SearchSpace, SlotKind};
use heterolora::data::{Split, Task};
use heterolora::model::Classifier;
use heterolora::notebook::{Settings, Workspace};
use heterolora::predict::Which;

#[test]
fn a_workspace_scores_allocates_trains_and_predicts_on_a_decoder() {
    let dir = tempfile::tempdir().unwrap();
    let glue = glue_root(dir.path(), 40, 16);
    let db = dir.path().join("mlflow.db");
    let settings = Settings::quick()
        .max_len(32)
        .batch_size(8)
        .epochs(2)
        .lr(1e-2)
        .score_batches(2)
        .tracking(db.to_str().unwrap());
    let mut ws = Workspace::open_from(Task::Mrpc, settings, fixture("llama"), &glue).unwrap();
    assert!(matches!(ws.model(), Classifier::Decoder(_)));
    assert!(ws.model().to_html().contains("llama"));

    let space = SearchSpace::parse_kinds("q,v,gate").unwrap();
    assert_eq!(ws.slots(&space).len(), 6);
    let scores = ws.score("grad-norm", &space).unwrap();
    assert_eq!(scores.values.len(), 6);
    let alloc = ws.top_k(&space, &scores, 0.5, 4).unwrap();
    assert_eq!(alloc.ranks.len(), 3);
    // Exact with the slot table: q 4 * (32 + 32), v 4 * (32 + 16), gate 4 * (32 + 48).
    let table = ws.slot_table();
    assert_eq!(
        ws.adapter_params(&alloc),
        alloc.trainable_params_in(&table).unwrap()
    );
    ws.plot_allocation(&alloc).unwrap();
    let uniform = ws.uniform(&space, 2).unwrap();
    assert!(uniform.ranks.keys().any(|s| s.kind == SlotKind::FfnGate));

    let result = ws.train("topk-llama", &alloc, ws.train_config()).unwrap();
    let last = result.final_metrics().unwrap().clone();
    let run_id = result.run_id.clone().unwrap();
    let adapters = ws.saved_adapters(&run_id, Which::Final).unwrap();
    let reloaded = ws.load_adapters(&adapters).unwrap();
    assert_eq!(reloaded.adapter_slots().len(), 3);
    assert_eq!(
        reloaded.head_params(),
        2 * 32,
        "score: 2 labels x hidden 32, no bias"
    );
    let report = ws.predict(&reloaded, Split::Dev, 3).unwrap();
    let acc = report.metrics["accuracy"];
    assert!(
        (acc - last["accuracy"]).abs() < 1e-9,
        "predict {acc} vs training {}",
        last["accuracy"]
    );
}
