//! Shared helpers of the model integration tests: asset lookup and fixture reading.
#![allow(dead_code)]

use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::PathBuf;

/// The crate root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// all-MiniLM-L6-v2: `datasets/models/all-MiniLM-L6-v2` under the crate root, else
/// `$HETEROLORA_MODEL_DIR`. Panics with the command to run when neither exists.
pub fn model_dir() -> PathBuf {
    let local = root().join("datasets/models/all-MiniLM-L6-v2");
    if local.join("model.safetensors").exists() {
        return local;
    }
    if let Ok(dir) = std::env::var("HETEROLORA_MODEL_DIR") {
        let p = PathBuf::from(dir);
        if p.join("model.safetensors").exists() {
            return p;
        }
    }
    panic!(
        "all-MiniLM-L6-v2 not found in {} nor in $HETEROLORA_MODEL_DIR: run `heterolora fetch model` first",
        local.display()
    );
}

pub fn fixture_dir() -> PathBuf {
    root().join("tests/fixtures/model")
}

/// The tensors of `tests/fixtures/model/<name>`.
pub fn fixture(name: &str) -> HashMap<String, Tensor> {
    let p = fixture_dir().join(name);
    candle_core::safetensors::load(&p, &Device::Cpu).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (regenerate with scripts/make_model_fixtures.py)",
            p.display()
        )
    })
}

/// The first three MRPC dev pairs (the ones the fixture script used), tokenised by our tokenizer
/// (checked against the reference tokenizer in tests/data/glue_tokenize.rs) and padded to the longest:
/// (input_ids, token_type_ids, mask) as u32 `[3, seq]`. Read from the fetched GLUE data at test
/// time so that no GLUE text, nor its token ids, is committed.
pub fn mrpc_inputs() -> (Tensor, Tensor, Tensor) {
    use heterolora::data::{load_split, Split, Task, Tokenizer};
    let glue = heterolora::assets::require_glue_dir(Task::Mrpc).unwrap_or_else(|e| panic!("{e}"));
    let ds = load_split(&glue, Task::Mrpc, Split::Dev).unwrap();
    let tok = Tokenizer::from_file(model_dir().join("tokenizer.json"), 128).unwrap();
    let enc = tok.encode_dataset(&ds).unwrap();
    let b = enc.batch(&[0, 1, 2], &Device::Cpu).unwrap();
    (b.input_ids, b.token_type_ids, b.attention_mask)
}

/// Logits `[3, 2]` stored by the fixture script under `name`.
pub fn peft_logits(name: &str) -> Tensor {
    let p = fixture_dir().join("peft_logits.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    let rows: Vec<Vec<f32>> = serde_json::from_value(v[name].clone())
        .unwrap_or_else(|e| panic!("{}: `{name}`: {e}", p.display()));
    let n = rows.len();
    let flat: Vec<f32> = rows.into_iter().flatten().collect();
    let m = flat.len() / n;
    Tensor::from_vec(flat, (n, m), &Device::Cpu).unwrap()
}

/// max |a - b|.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a.to_dtype(DType::F32).unwrap() - b.to_dtype(DType::F32).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}
