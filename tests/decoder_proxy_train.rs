//! grad-norm scoring and a few AdamW steps through [`Classifier`], the enum over backbones, on the
//! tiny decoder fixtures of `tests/fixtures/decoders/` (written by
//! `scripts/make_decoder_fixtures.py`) and on a tiny random BERT.

use candle_core::{DType, Device, Tensor};
use heterolora::adapters::peft::load_safetensors;
use heterolora::adapters::{Allocation, Architecture, SearchSpace, SlotId, SlotKind};
use heterolora::model::{BertConfig, Classifier, SequenceClassifier};
use heterolora::proxy::backbones::{grad_norm_scores, LabelledBatch};
use heterolora::train::backbones::train_steps;
use std::path::Path;

fn setup(name: &str) -> (Classifier, LabelledBatch) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/decoders")
        .join(name);
    let m = Classifier::from_pretrained(&dir, 3, DType::F32, &Device::Cpu, 0).unwrap();
    let t = load_safetensors(&dir.join("reference.safetensors"), &Device::Cpu).unwrap();
    let batch = LabelledBatch {
        input_ids: t["input_ids"].to_dtype(DType::U32).unwrap(),
        token_type_ids: None,
        attention_mask: t["attention_mask"].to_dtype(DType::U32).unwrap(),
        labels: Tensor::new(&[0u32, 2, 1], &Device::Cpu).unwrap(),
    };
    (m, batch)
}

fn tiny_bert() -> (Classifier, LabelledBatch) {
    let m =
        SequenceClassifier::random(&BertConfig::tiny(), 3, DType::F32, &Device::Cpu, 3).unwrap();
    let batch = LabelledBatch {
        input_ids: Tensor::new(&[[1u32, 5, 9, 2], [1, 7, 2, 0]], &Device::Cpu).unwrap(),
        token_type_ids: None,
        attention_mask: Tensor::new(&[[1u32, 1, 1, 1], [1, 1, 1, 0]], &Device::Cpu).unwrap(),
        labels: Tensor::new(&[1u32, 0], &Device::Cpu).unwrap(),
    };
    (m.into(), batch)
}

#[test]
fn grad_norm_scores_every_slot_without_touching_the_model() {
    let mut cases: Vec<(String, Classifier, LabelledBatch)> = ["opt_post_proj", "llama", "qwen2"]
        .into_iter()
        .map(|n| {
            let (m, b) = setup(n);
            (n.to_string(), m, b)
        })
        .collect();
    let (m, b) = tiny_bert();
    cases.push(("bert".into(), m, b));
    for (name, m, batch) in cases {
        let space = SearchSpace::parse_kinds("q,v,gate,ffn_out,shortcuts").unwrap();
        let slots = m.slot_table().slots(&space);
        let gates = slots.iter().filter(|s| s.kind == SlotKind::FfnGate).count();
        let gated = matches!(m.architecture(), Architecture::Llama | Architecture::Qwen2);
        assert_eq!(gates, if gated { 2 } else { 0 }, "{name}");
        let scores = grad_norm_scores(&m, std::slice::from_ref(&batch), &slots, 4, 8.0).unwrap();
        assert_eq!(scores.values.len(), slots.len());
        for (s, v) in &scores.values {
            assert!(v.is_finite() && *v > 0.0, "{name}: {s} scored {v}");
        }
        assert!(
            m.enabled_slots().is_empty(),
            "{name}: scoring left the model as it was"
        );
    }
}

#[test]
fn a_few_adamw_steps_lower_the_loss() {
    for name in ["opt_pre", "llama"] {
        let (mut m, batch) = setup(name);
        let table = m.slot_table();
        let kinds = if table.has_slot(SlotId::new(0, SlotKind::FfnGate)) {
            "q,v,gate"
        } else {
            "q,v"
        };
        let space = SearchSpace::parse_kinds(kinds).unwrap();
        let alloc = Allocation::uniform(&space, &table.model_dims(), 4, 8.0).unwrap();
        assert_eq!(
            alloc.trainable_params_in(&table).unwrap(),
            table
                .slots(&space)
                .iter()
                .map(|s| table.params_at_rank(*s, 4).unwrap())
                .sum::<usize>()
        );
        m.apply_allocation(&alloc).unwrap();
        assert_eq!(
            m.enabled_slots(),
            alloc.ranks.keys().copied().collect::<Vec<_>>()
        );
        let losses = train_steps(&m, std::slice::from_ref(&batch), 15, 1e-2, 0).unwrap();
        println!("{name}: loss {:.4} -> {:.4}", losses[0], losses[14]);
        assert!(losses[14] < 0.5 * losses[0], "{name}: {losses:?}");
        // The steps moved the adapters: B is no longer zero.
        let any = m.slot_table().slots(&space)[0];
        let b = m.adapter(any).unwrap().b.as_tensor().abs().unwrap();
        assert!(b.max_all().unwrap().to_scalar::<f32>().unwrap() > 0.0);
    }
}
