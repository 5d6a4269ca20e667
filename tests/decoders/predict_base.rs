//! `heterolora predict` on a decoder's adapters without `--model`: the base model is the folder
//! the adapters' `adapter_config.json` names (`base_model_name_or_path`), and when that folder
//! is not here the error says to pass `--model`.

use crate::util::{fixture, glue_root, output_of};
use candle_core::{DType, Device};
use heterolora::adapters::{SlotId, SlotKind};
use heterolora::model::decoder::DecoderClassifier;
use std::path::Path;
use std::process::Command;

fn predict(adapter: &Path, glue: &Path, extra: &[&str]) -> (bool, String, String) {
    output_of(
        &mut Command::new(env!("CARGO_BIN_EXE_heterolora"))
            .arg("predict")
            .arg(adapter)
            .args(["--task", "mrpc", "--max-len", "32", "--format", "json"])
            .args(["--no-track", "--device", "cpu", "--glue"])
            .arg(glue)
            .args(extra),
    )
}

#[test]
fn predict_finds_a_decoder_base_in_the_adapter_config() {
    let dir = tempfile::tempdir().unwrap();
    let glue = glue_root(dir.path(), 4, 8);
    let model_dir = fixture("qwen2");
    let mut m =
        DecoderClassifier::from_pretrained(&model_dir, 2, DType::F32, &Device::Cpu, 3).unwrap();
    m.add_slot(SlotId::new(0, SlotKind::FfnGate), 4, 8.0)
        .unwrap();
    let adapters = dir.path().join("adapters");
    m.save_adapters(&adapters).unwrap();
    let cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(adapters.join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    let base = cfg["base_model_name_or_path"].as_str().unwrap();
    assert!(Path::new(base).join("config.json").is_file(), "{base}");

    let (ok, named, stderr) = predict(&adapters, &glue, &[]);
    assert!(ok, "{stderr}");
    let (ok, explicit, stderr) =
        predict(&adapters, &glue, &["--model", model_dir.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let metrics = |s: &str| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(s).unwrap()["metrics"].clone()
    };
    assert_eq!(metrics(&named), metrics(&explicit));
    assert!(metrics(&named)["accuracy"].is_number(), "{named}");

    // The base folder gone (adapters carried to another machine): the error says what to pass.
    let moved = dir.path().join("moved");
    std::fs::create_dir_all(&moved).unwrap();
    for e in std::fs::read_dir(&adapters).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, moved.join(p.file_name().unwrap())).unwrap();
    }
    let mut cfg = cfg;
    cfg["base_model_name_or_path"] = dir
        .path()
        .join("no-such-model")
        .display()
        .to_string()
        .into();
    std::fs::write(moved.join("adapter_config.json"), cfg.to_string()).unwrap();
    let (ok, _, stderr) = predict(&moved, &glue, &[]);
    assert!(!ok);
    assert!(
        stderr.contains("--model DIR")
            && stderr.contains("no-such-model")
            && stderr.contains("qwen2"),
        "{stderr}"
    );
    // --model still works there.
    let (ok, again, stderr) = predict(&moved, &glue, &["--model", model_dir.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert_eq!(metrics(&again), metrics(&explicit));
}
