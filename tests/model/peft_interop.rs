//! PEFT interoperability on all-MiniLM-L6-v2, without torch: adapters saved by PEFT load into our
//! model and reproduce PEFT's logits; adapters we save have PEFT's keys, shapes and config fields.
//! Fixtures: scripts/make_model_fixtures.py. The reverse check (PEFT loading ours) is
//! `python scripts/make_model_fixtures.py --check-ours target/peft-export`, on the directory the
//! last test writes.

use crate::model_util;

use candle_core::{DType, Device, Tensor};
use heterolora::adapters::{SlotId, SlotKind};
use heterolora::model::SequenceClassifier;
use heterolora::rng::Rng;
use model_util::*;
use std::collections::BTreeSet;

fn load(num_labels: usize) -> SequenceClassifier {
    SequenceClassifier::from_pretrained(&model_dir(), num_labels, DType::F32, &Device::Cpu, 0)
        .unwrap()
}

fn logits_of(model: &SequenceClassifier) -> Tensor {
    let (ids, tt, mask) = mrpc_inputs();
    model.forward(&ids, &tt, &mask, None).unwrap()
}

fn check_peft_fixture(name: &str) -> SequenceClassifier {
    let mut model = load(2);
    model.load_adapters(&fixture_dir().join(name)).unwrap();
    let got = logits_of(&model);
    let want = peft_logits(name);
    let d = max_abs_diff(&got, &want);
    assert!(d < 1e-4, "{name}: max abs diff from PEFT's logits {d}");
    // The adapter matters: without it (same head) the logits are clearly different.
    let mut plain = model.clone();
    for s in plain.adapter_slots() {
        plain.set_enabled(s, false).unwrap();
    }
    let no_adapter = peft_logits("no_adapter");
    let d0 = max_abs_diff(&logits_of(&plain), &no_adapter);
    assert!(
        d0 < 1e-4,
        "{name}: head-only logits differ from PEFT's by {d0}"
    );
    assert!(max_abs_diff(&want, &no_adapter) > 1e-2);
    eprintln!("{name}: max abs diff {d:.2e}");
    model
}

#[test]
fn peft_qv_r8_adapter_reproduces_peft_logits() {
    let model = check_peft_fixture("peft_qv_r8");
    assert_eq!(model.enabled_slots().len(), 12);
    assert_eq!(
        model.slot_rank(SlotId::new(3, SlotKind::Value)),
        Some((8, 16.0))
    );
    // 6 layers x 2 modules x 8 x (384 + 384) = 73,728 adapter parameters, + a 2-label head.
    assert_eq!(model.slot_params().values().sum::<usize>(), 73_728);
    assert_eq!(model.trainable_params(), 73_728 + 2 * 384 + 2);
    assert_eq!(model.total_params(), 22_713_216 + 73_728 + 770);
}

#[test]
fn peft_rank_and_alpha_patterns_are_honoured() {
    let model = check_peft_fixture("peft_pattern");
    assert_eq!(
        model.slot_rank(SlotId::new(2, SlotKind::Key)),
        Some((4, 4.0))
    );
    assert_eq!(
        model.slot_rank(SlotId::new(1, SlotKind::Key)),
        Some((2, 4.0))
    );
    assert_eq!(
        model.slot_rank(SlotId::new(0, SlotKind::FfnIn)),
        Some((2, 8.0))
    );
    assert_eq!(
        model.slot_rank(SlotId::new(1, SlotKind::FfnIn)),
        Some((2, 4.0))
    );
}

/// Also writes `target/merged-export/` (a merged BertForSequenceClassification checkpoint and
/// our logits) for `scripts/make_model_fixtures.py --check-merged target/merged-export`.
#[test]
fn merged_real_model_equals_unmerged() {
    let model = check_peft_fixture("peft_qv_r8");
    let want = logits_of(&model);
    let d = max_abs_diff(&want, &logits_of(&model.merged().unwrap()));
    assert!(d < 1e-5, "{d}");
    let dir = root().join("target/merged-export");
    let _ = std::fs::remove_dir_all(&dir);
    model.save_merged(&dir).unwrap();
    let back = SequenceClassifier::from_pretrained(&dir, 2, DType::F32, &Device::Cpu, 9).unwrap();
    let d = max_abs_diff(&want, &logits_of(&back));
    assert!(d < 1e-5, "reloaded merged checkpoint differs by {d}");
    write_logits(&dir, &want);
}

fn write_logits(dir: &std::path::Path, logits: &Tensor) {
    let (ids, tt, mask) = mrpc_inputs();
    let out = serde_json::json!({
        "input_ids": ids.to_vec2::<u32>().unwrap(),
        "token_type_ids": tt.to_vec2::<u32>().unwrap(),
        "attention_mask": mask.to_vec2::<u32>().unwrap(),
        "logits": logits.to_vec2::<f32>().unwrap(),
    });
    std::fs::write(
        dir.join("heterolora_logits.json"),
        serde_json::to_string(&out).unwrap(),
    )
    .unwrap();
}

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn keys_and_shapes(path: &std::path::Path) -> BTreeSet<(String, Vec<usize>)> {
    candle_core::safetensors::load(path, &Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(k, t)| (k, t.dims().to_vec()))
        .collect()
}

#[test]
fn our_adapter_files_have_peft_keys_shapes_and_config_fields() {
    let mut model = load(2);
    for l in 0..6 {
        model
            .add_slot(SlotId::new(l, SlotKind::Query), 8, 16.0)
            .unwrap();
        model
            .add_slot(SlotId::new(l, SlotKind::Value), 8, 16.0)
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    model.save_adapters(dir.path()).unwrap();
    let fixture = fixture_dir().join("peft_qv_r8");
    assert_eq!(
        keys_and_shapes(&dir.path().join("adapter_model.safetensors")),
        keys_and_shapes(&fixture.join("adapter_model.safetensors"))
    );
    let ours = json(&dir.path().join("adapter_config.json"));
    let theirs = json(&fixture.join("adapter_config.json"));
    let fields = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(fields(&ours), fields(&theirs));
    // PEFT keeps target_modules as a set: the order in its file varies from run to run.
    let sorted = |v: &serde_json::Value| {
        let mut x: Vec<String> = serde_json::from_value(v.clone()).unwrap();
        x.sort();
        x
    };
    assert_eq!(
        sorted(&ours["target_modules"]),
        sorted(&theirs["target_modules"])
    );
    for f in [
        "r",
        "lora_alpha",
        "rank_pattern",
        "alpha_pattern",
        "task_type",
        "peft_type",
        "modules_to_save",
        "bias",
        "use_rslora",
        "use_dora",
    ] {
        assert_eq!(ours[f], theirs[f], "field {f}");
    }
}

/// Writes `target/peft-export/`: a heterogeneous adapter of ours (ranks 8 and 4, an alpha
/// pattern, a scaled slot, a disabled slot, a disabled shortcut) with non-zero B, plus the inputs
/// and our logits, for `scripts/make_model_fixtures.py --check-ours target/peft-export`.
#[test]
fn export_heterogeneous_adapter_for_the_peft_check() {
    let mut model = load(2);
    let mut slots = vec![];
    for l in 0..6 {
        slots.push((SlotId::new(l, SlotKind::Query), 8, 16.0));
        slots.push((SlotId::new(l, SlotKind::Value), 8, 16.0));
    }
    slots.push((SlotId::new(2, SlotKind::Key), 4, 16.0));
    slots.push((SlotId::new(4, SlotKind::FfnOut), 4, 8.0));
    slots.push((SlotId::new(1, SlotKind::AttnOutput), 8, 16.0));
    slots.push((SlotId::new(3, SlotKind::Residual1), 2, 4.0));
    for (s, r, a) in &slots {
        model.add_slot(*s, *r, *a).unwrap();
    }
    let mut rng = Rng::new(2024);
    for (k, v) in model.adapter_vars() {
        if k.contains("lora_B") {
            v.set(
                &rng.uniform_tensor(v.shape(), -0.1, 0.1, &Device::Cpu)
                    .unwrap(),
            )
            .unwrap();
        }
    }
    // A head with logits of order 1 makes the comparison tight in relative terms.
    let (w, b) = model.head();
    w.set(
        &rng.uniform_tensor(w.shape(), -0.2, 0.2, &Device::Cpu)
            .unwrap(),
    )
    .unwrap();
    b.set(
        &rng.uniform_tensor(b.shape(), -0.2, 0.2, &Device::Cpu)
            .unwrap(),
    )
    .unwrap();
    model
        .set_enabled(SlotId::new(1, SlotKind::AttnOutput), false)
        .unwrap();
    model
        .set_enabled(SlotId::new(3, SlotKind::Residual1), false)
        .unwrap();
    model
        .set_slot_scale(SlotId::new(0, SlotKind::Value), 0.5)
        .unwrap();
    let want = logits_of(&model);

    let dir = root().join("target/peft-export");
    let _ = std::fs::remove_dir_all(&dir);
    model.save_adapters(&dir).unwrap();
    let cfg = json(&dir.join("adapter_config.json"));
    assert_eq!(cfg["r"], 8);
    assert_eq!(cfg["rank_pattern"]["encoder.layer.2.attention.self.key"], 4);
    assert_eq!(cfg["rank_pattern"]["encoder.layer.4.output.dense"], 4);
    assert_eq!(
        cfg["alpha_pattern"]["encoder.layer.0.attention.self.value"],
        8
    );
    // Our own round trip restores everything, disabled slots included.
    let mut back = load(2);
    back.load_adapters(&dir).unwrap();
    assert_eq!(back.adapter_slots(), model.adapter_slots());
    assert_eq!(back.enabled_slots(), model.enabled_slots());
    assert!(max_abs_diff(&want, &logits_of(&back)) < 1e-6);

    write_logits(&dir, &want);
    eprintln!(
        "wrote {}: check it in PEFT with `python scripts/make_model_fixtures.py --check-ours {}`",
        dir.display(),
        dir.display()
    );
}
