//! grad-norm scoring (the shared gradient pass) and a few `Trainer` steps through [`Classifier`],
//! the enum over backbones, on the tiny decoder fixtures of `tests/fixtures/decoders/` (written by
//! `scripts/make_decoder_fixtures.py`) and on a tiny random BERT.

use candle_core::{DType, Device, Tensor};
use heterolora::adapters::peft::load_safetensors;
use heterolora::adapters::{Allocation, Architecture, SearchSpace, SlotId, SlotKind};
use heterolora::data::{Batch, EncodedDataset, EncodedExample, Label, Split, Task};
use heterolora::model::{AdaptedClassifier, BertConfig, Classifier, SequenceClassifier};
use heterolora::proxy::{score_on, GradNorm};
use heterolora::rng::Rng;
use heterolora::train::{TrainConfig, Trainer};
use std::path::Path;

fn fixture_dir(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/decoders")
        .join(name)
}

fn labelled(ids: Tensor, mask: Tensor, labels: &[u32]) -> Batch {
    Batch {
        token_type_ids: ids.zeros_like().unwrap(),
        input_ids: ids,
        attention_mask: mask,
        labels: Tensor::new(labels, &Device::Cpu).unwrap(),
        labelled: true,
        indices: (0..labels.len()).collect(),
    }
}

fn setup(name: &str, num_labels: usize) -> (Classifier, Batch) {
    let dir = fixture_dir(name);
    let m = Classifier::from_pretrained(&dir, num_labels, DType::F32, &Device::Cpu, 0).unwrap();
    let t = load_safetensors(&dir.join("reference.safetensors"), &Device::Cpu).unwrap();
    let batch = labelled(
        t["input_ids"].to_dtype(DType::U32).unwrap(),
        t["attention_mask"].to_dtype(DType::U32).unwrap(),
        &[0, num_labels as u32 - 1, 1],
    );
    (m, batch)
}

fn tiny_bert() -> (Classifier, Batch) {
    let m =
        SequenceClassifier::random(&BertConfig::tiny(), 3, DType::F32, &Device::Cpu, 3).unwrap();
    let batch = labelled(
        Tensor::new(&[[1u32, 5, 9, 2], [1, 7, 2, 0]], &Device::Cpu).unwrap(),
        Tensor::new(&[[1u32, 1, 1, 1], [1, 1, 1, 0]], &Device::Cpu).unwrap(),
        &[1, 0],
    );
    (m.into(), batch)
}

/// The reference batch's sequences (mask 1) as a training split, re-padded with `pad_id`.
fn as_dataset(batch: &Batch, pad_id: u32) -> EncodedDataset {
    let ids = batch.input_ids.to_vec2::<u32>().unwrap();
    let mask = batch.attention_mask.to_vec2::<u32>().unwrap();
    let labels = batch.labels.to_vec1::<u32>().unwrap();
    let examples = ids
        .iter()
        .zip(&mask)
        .zip(&labels)
        .map(|((row, m), &l)| {
            let ids: Vec<u32> = row
                .iter()
                .zip(m)
                .filter(|(_, &k)| k == 1)
                .map(|(&t, _)| t)
                .collect();
            EncodedExample {
                type_ids: vec![0; ids.len()],
                ids,
                label: Label::Class(l),
            }
        })
        .collect();
    EncodedDataset {
        task: Task::Rte,
        split: Split::Train,
        examples,
        pad_id,
        max_len: 64,
    }
}

#[test]
fn grad_norm_scores_every_slot_without_touching_the_model() {
    let mut cases: Vec<(String, Classifier, Batch)> = ["opt_post_proj", "llama", "qwen2"]
        .into_iter()
        .map(|n| {
            let (m, b) = setup(n, 3);
            (n.to_string(), m, b)
        })
        .collect();
    let (m, b) = tiny_bert();
    cases.push(("bert".into(), m, b));
    for (name, mut m, batch) in cases {
        let space = SearchSpace::parse_kinds("q,v,gate,ffn_out,shortcuts").unwrap();
        let slots = m.slot_table().slots(&space);
        let gates = slots.iter().filter(|s| s.kind == SlotKind::FfnGate).count();
        let gated = matches!(m.architecture(), Architecture::Llama | Architecture::Qwen2);
        assert_eq!(gates, if gated { 2 } else { 0 }, "{name}");
        let scores = score_on(
            &GradNorm::default(),
            &mut m,
            std::slice::from_ref(&batch),
            &slots,
            &mut Rng::new(0),
        )
        .unwrap();
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
fn a_few_trainer_steps_lower_the_loss() {
    for (name, pad_id) in [("opt_pre", 1), ("llama", 0)] {
        let (m, batch) = setup(name, 2);
        let table = m.slot_table();
        let kinds = if table.has_slot(SlotId::new(0, SlotKind::FfnGate)) {
            "q,v,gate"
        } else {
            "q,v"
        };
        let space = SearchSpace::parse_kinds(kinds).unwrap();
        let alloc = Allocation::uniform(&space, &table, 4, 8.0).unwrap();
        assert_eq!(
            alloc.trainable_params_in(&table).unwrap(),
            table
                .slots(&space)
                .iter()
                .map(|s| table.params_at_rank(*s, 4).unwrap())
                .sum::<usize>()
        );
        let data = as_dataset(&batch, pad_id);
        let cfg = TrainConfig::default().lr(1e-2).batch_size(3).quiet(true);
        let mut trainer = Trainer::new(m, alloc.clone(), data.clone(), data, cfg).unwrap();
        assert_eq!(
            trainer.model().enabled_slots(),
            alloc.ranks.keys().copied().collect::<Vec<_>>()
        );
        let losses: Vec<f64> = (0..15)
            .map(|_| trainer.step_on(&[0, 1, 2], 1e-2).unwrap())
            .collect();
        println!("{name}: loss {:.4} -> {:.4}", losses[0], losses[14]);
        assert!(losses[14] < 0.5 * losses[0], "{name}: {losses:?}");
        // The steps moved the adapters: B is no longer zero.
        let m = trainer.into_model();
        let any = m.slot_table().slots(&space)[0];
        let b = m.adapter(any).unwrap().b.as_tensor().abs().unwrap();
        assert!(b.max_all().unwrap().to_scalar::<f32>().unwrap() > 0.0);
    }
}
