//! `heterolora bench parity`: the file the device check compares holds PEFT's logits for the
//! committed adapters, the loss, and a finite, non-zero gradient for every trainable variable;
//! `scripts/compare-parity.py` accepts a file against itself and rejects bf16 against f32 at
//! 1e-3 while its gradients still point the same way.

use crate::model_util::*;
use candle_core::{Device, IndexOp};
use heterolora::bench::parity::{parity_tensors, ParityConfig};
use heterolora::train::Precision;
use std::process::Command;

fn config(precision: Precision) -> ParityConfig {
    ParityConfig {
        model_dir: Some(model_dir()),
        glue_dir: Some(heterolora::assets::require_glue_dir(heterolora::data::Task::Mrpc).unwrap()),
        adapters: fixture_dir().join("peft_qv_r8"),
        device: "cpu".into(),
        precision,
        examples: 8,
    }
}

fn compare(a: &std::path::Path, b: &std::path::Path) -> (i32, serde_json::Value) {
    let o = Command::new("python3")
        .arg(root().join("scripts/compare-parity.py"))
        .args([a, b])
        .output()
        .unwrap();
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    (o.status.code().unwrap(), v)
}

#[test]
fn parity_file_holds_peft_logits_loss_and_every_gradient() {
    let dir = tempfile::tempdir().unwrap();
    let f32_file = dir.path().join("cpu.safetensors");
    let r = parity_tensors(&config(Precision::F32), &f32_file).unwrap();
    assert_eq!(r.examples, 8);
    let t = candle_core::safetensors::load(&f32_file, &Device::Cpu).unwrap();
    // The first three pairs are the fixture script's: PEFT's logits.
    let got = t["logits"].i(0..3).unwrap();
    let d = max_abs_diff(&got, &peft_logits("peft_qv_r8"));
    assert!(d < 1e-4, "logits differ from PEFT's by {d}");
    let grads: Vec<_> = t.keys().filter(|k| k.starts_with("grad.")).collect();
    // 12 q,v adapters x (lora_A, lora_B) + the head's weight and bias.
    assert_eq!(grads.len(), 26, "{grads:?}");
    for k in grads {
        let v: Vec<f32> = t[k].flatten_all().unwrap().to_vec1().unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "{k}");
        assert!(v.iter().any(|x| *x != 0.0), "{k} is all zero");
    }
    assert!((t["loss"].to_vec1::<f32>().unwrap()[0] as f64 - r.loss).abs() < 1e-6);

    let (rc, v) = compare(&f32_file, &f32_file);
    assert_eq!(rc, 0, "{v}");
    assert_eq!(v["tensors"], 28);
    let bf16_file = dir.path().join("bf16.safetensors");
    parity_tensors(&config(Precision::Bf16), &bf16_file).unwrap();
    let (rc, v) = compare(&bf16_file, &f32_file);
    assert_eq!(rc, 1, "bf16 is not within 1e-3 of f32: {v}");
    let worst = v["grads_worst_rel_l2"].as_f64().unwrap();
    assert!(worst > 1e-3 && worst < 0.2, "{v}");
    assert!(v["loss"]["rel_l2"].as_f64().unwrap() < 1e-2, "{v}");
}
