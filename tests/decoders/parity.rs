//! Decoders (OPT pre-/post-LN with and without projections, Llama and Qwen2 with grouped-query
//! attention) against transformers and PEFT, on the tiny random-weight models that
//! `scripts/make_decoder_fixtures.py` wrote into `tests/fixtures/decoders/` (logits of
//! `*ForSequenceClassification` in eval mode, eager attention; PEFT LoRA adapters with non-zero B).
//!
//! This test also writes `target/decoder-peft-export/<name>/`: adapters saved by our code with our
//! logits, which `scripts/make_decoder_fixtures.py --check-ours target/decoder-peft-export` loads in
//! PEFT to check the other direction.

use candle_core::{DType, Device, Tensor};
use heterolora::adapters::peft::{load_safetensors, ADAPTER_WEIGHTS};
use heterolora::adapters::{SlotId, SlotKind};
use heterolora::model::decoder::DecoderClassifier;
use heterolora::rng::Rng;
use std::path::{Path, PathBuf};

const MODELS: [&str; 6] = [
    "opt_pre",
    "opt_post_proj",
    "opt_pre_proj",
    "llama",
    "qwen2",
    "llama_bias_hd16",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/decoders")
        .join(name)
}

struct Reference {
    ids: Tensor,
    mask: Tensor,
    logits: Tensor,
    peft_logits: Tensor,
}

fn reference(name: &str) -> Reference {
    let t = load_safetensors(&fixture(name).join("reference.safetensors"), &Device::Cpu).unwrap();
    Reference {
        ids: t["input_ids"].to_dtype(DType::U32).unwrap(),
        mask: t["attention_mask"].to_dtype(DType::U32).unwrap(),
        logits: t["logits"].clone(),
        peft_logits: t["peft_logits"].clone(),
    }
}

fn load(name: &str) -> DecoderClassifier {
    DecoderClassifier::from_pretrained(&fixture(name), 3, DType::F32, &Device::Cpu, 0).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap()
}

#[test]
fn logits_match_transformers() {
    for name in MODELS {
        let r = reference(name);
        let m = load(name);
        let ours = m.forward(&r.ids, &r.mask, None).unwrap();
        let d = max_diff(&ours, &r.logits);
        println!("{name}: max |ours - transformers| = {d:.3e}");
        assert!(d < 1e-4, "{name}: {d}");
    }
}

#[test]
fn peft_adapters_load_and_reproduce_peft_logits() {
    for name in MODELS {
        let r = reference(name);
        let mut m = load(name);
        m.load_adapters(&fixture(name).join("peft")).unwrap();
        assert_eq!(m.enabled_slots().len(), 4, "{name}");
        let ours = m.forward(&r.ids, &r.mask, None).unwrap();
        let d = max_diff(&ours, &r.peft_logits);
        println!("{name}: max |ours - PEFT| = {d:.3e}");
        assert!(d < 1e-4, "{name}: {d}");
        assert!(
            max_diff(&r.peft_logits, &r.logits) > 1e-2,
            "{name}: the adapter mattered"
        );
    }
}

/// A slot of a kind the fixture's PEFT adapter does not use, to add at another rank.
fn extra_slot(name: &str) -> SlotId {
    match name {
        "opt_pre" | "opt_post_proj" => SlotId::new(0, SlotKind::FfnIn),
        "opt_pre_proj" => SlotId::new(1, SlotKind::FfnOut),
        "llama" | "llama_bias_hd16" => SlotId::new(1, SlotKind::Query),
        _ => SlotId::new(0, SlotKind::FfnGate),
    }
}

#[test]
fn saved_adapters_have_peft_names_and_shapes_and_round_trip() {
    let export = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/decoder-peft-export");
    let mut rng = Rng::new(11);
    for name in MODELS {
        let r = reference(name);
        let mut m = load(name);
        let peft_dir = fixture(name).join("peft");
        m.load_adapters(&peft_dir).unwrap();
        // One more module at another rank and alpha, with non-zero B.
        let extra = extra_slot(name);
        m.add_slot(extra, 3, 5.0).unwrap();
        let b = m.adapter(extra).unwrap().b.clone();
        b.set(
            &rng.uniform_tensor(b.dims().to_vec(), -0.3, 0.3, &Device::Cpu)
                .unwrap(),
        )
        .unwrap();
        let ours = m.forward(&r.ids, &r.mask, None).unwrap();
        let dir = export.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        m.save_adapters(&dir).unwrap();
        let logits: Vec<Vec<f32>> = ours.to_vec2().unwrap();
        std::fs::write(
            dir.join("our_logits.json"),
            serde_json::to_string(&logits).unwrap(),
        )
        .unwrap();

        // PEFT's own file: every key it wrote is in ours, with the same shape.
        let theirs = load_safetensors(&peft_dir.join(ADAPTER_WEIGHTS), &Device::Cpu).unwrap();
        let mine = load_safetensors(&dir.join(ADAPTER_WEIGHTS), &Device::Cpu).unwrap();
        for (k, t) in &theirs {
            let o = mine.get(k).unwrap_or_else(|| panic!("{name}: {k} missing"));
            assert_eq!(o.dims(), t.dims(), "{name}: {k}");
        }
        assert_eq!(
            mine.len(),
            theirs.len() + 2,
            "{name}: the extra module's two factors"
        );
        let cfg: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("adapter_config.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(cfg["r"], 4, "{name}");
        assert_eq!(cfg["task_type"], "SEQ_CLS");

        // Reloaded into a fresh model: the same logits.
        let mut back = load(name);
        back.load_adapters(&dir).unwrap();
        let again = back.forward(&r.ids, &r.mask, None).unwrap();
        assert!(max_diff(&ours, &again) < 1e-6, "{name}");
        // PEFT's files alone (no state file of ours) give the same too.
        let peft_only = tempfile::tempdir().unwrap();
        for f in ["adapter_config.json", ADAPTER_WEIGHTS] {
            std::fs::copy(dir.join(f), peft_only.path().join(f)).unwrap();
        }
        let mut back = load(name);
        back.load_adapters(peft_only.path()).unwrap();
        let again = back.forward(&r.ids, &r.mask, None).unwrap();
        assert!(max_diff(&ours, &again) < 1e-6, "{name}");
    }
}

#[test]
fn shortcuts_are_no_ops_when_fresh_and_round_trip_when_trained() {
    for name in MODELS {
        let r = reference(name);
        let mut m = load(name);
        let base = m.forward(&r.ids, &r.mask, None).unwrap();
        let shortcuts: Vec<SlotId> = m
            .slot_table()
            .all_slots()
            .into_iter()
            .filter(|s| s.kind.is_shortcut())
            .collect();
        assert_eq!(shortcuts.len(), 2 * 4 - 1);
        for s in &shortcuts {
            m.add_slot(*s, 2, 4.0).unwrap();
        }
        assert_eq!(
            max_diff(&base, &m.forward(&r.ids, &r.mask, None).unwrap()),
            0.0
        );
        let mut rng = Rng::new(5);
        for s in &shortcuts {
            let b = m.adapter(*s).unwrap().b.clone();
            b.set(
                &rng.uniform_tensor(b.dims().to_vec(), -0.2, 0.2, &Device::Cpu)
                    .unwrap(),
            )
            .unwrap();
        }
        m.set_enabled(shortcuts[0], false).unwrap();
        let moved = m.forward(&r.ids, &r.mask, None).unwrap();
        assert!(max_diff(&base, &moved) > 1e-3, "{name}");
        let dir = tempfile::tempdir().unwrap();
        m.save_adapters(dir.path()).unwrap();
        // No LoRA module is on: no PEFT files, only ours.
        assert!(!dir.path().join("adapter_config.json").exists());
        let mut back = load(name);
        back.load_adapters(dir.path()).unwrap();
        assert_eq!(back.enabled_slots().len(), shortcuts.len() - 1);
        let again = back.forward(&r.ids, &r.mask, None).unwrap();
        assert!(max_diff(&moved, &again) < 1e-6, "{name}");
    }
}
