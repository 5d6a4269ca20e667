//! Saved adapters name their base model (`base_model_name_or_path` in `adapter_config.json`),
//! so that PEFT's `AutoPeftModelForSequenceClassification.from_pretrained(dir)` can load them.

use candle_core::{DType, Device};
use heterolora::adapters::{SlotId, SlotKind};
use heterolora::model::{BertConfig, SequenceClassifier};
use std::path::Path;

use crate::model_util;

fn saved_config(m: &SequenceClassifier, dir: &Path) -> serde_json::Value {
    m.save_adapters(dir).unwrap();
    let text = std::fs::read_to_string(dir.join("adapter_config.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn adapter_config_names_the_folder_the_model_came_from() {
    let mut m =
        SequenceClassifier::random(&BertConfig::tiny(), 2, DType::F32, &Device::Cpu, 0).unwrap();
    m.add_slot(SlotId::new(0, SlotKind::Value), 2, 4.0).unwrap();
    let out = tempfile::tempdir().unwrap();

    // Not known where it came from: the field is there, and null rather than a guess.
    let cfg = saved_config(&m, &out.path().join("unknown"));
    assert!(cfg
        .as_object()
        .unwrap()
        .contains_key("base_model_name_or_path"));
    assert!(cfg["base_model_name_or_path"].is_null(), "{cfg}");

    // Loaded from a local folder: its absolute path.
    let base = tempfile::tempdir().unwrap();
    std::fs::write(base.path().join("config.json"), "{}").unwrap();
    m.set_base_model(base.path());
    let cfg = saved_config(&m, &out.path().join("local"));
    let named = cfg["base_model_name_or_path"].as_str().unwrap();
    assert_eq!(
        Path::new(named),
        std::fs::canonicalize(base.path()).unwrap(),
        "{cfg}"
    );
}

/// The fetched all-MiniLM-L6-v2 is named by its Hugging Face id (needs `heterolora fetch model`).
#[test]
fn the_fetched_minilm_is_named_by_its_hub_id() {
    let dir = model_util::model_dir();
    let mut m = SequenceClassifier::from_pretrained(&dir, 2, DType::F32, &Device::Cpu, 0).unwrap();
    m.add_slot(SlotId::new(0, SlotKind::Query), 8, 16.0)
        .unwrap();
    m.set_base_model(&dir);
    let out = tempfile::tempdir().unwrap();
    let cfg = saved_config(&m, out.path());
    assert_eq!(
        cfg["base_model_name_or_path"], "sentence-transformers/all-MiniLM-L6-v2",
        "{cfg}"
    );
}
