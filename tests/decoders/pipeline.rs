//! The whole pipeline on the tiny decoder fixtures of `tests/fixtures/decoders/` (written by
//! `scripts/make_decoder_fixtures.py`), through the same code as BERT: grad-norm scores from the
//! shared gradient pass, a top-k allocation at an exact budget counted with the model's slot
//! table (Llama's grouped-query k/v maps are 32 -> 16), the `Trainer` with checkpoints, dev
//! evaluation and dynamic re-allocation, PEFT adapter files and their reload.

use crate::model_util::max_abs_diff;
use candle_core::{DType, Device};
use heterolora::adapters::{Architecture, SearchSpace, SlotKind, SlotSizes};
use heterolora::data::{EncodedDataset, EncodedExample, Label, Split, Task};
use heterolora::model::decoder::DecoderClassifier;
use heterolora::model::AdaptedClassifier;
use heterolora::proxy::{self, GradNorm, ScoringData, W0GradNorm};
use heterolora::rng::Rng;
use heterolora::search::Allocation;
use heterolora::search::{Budget, DynamicSchedule, Every, TopKParams};
use heterolora::train::{
    DynamicReallocator, HookState, MemoryLogger, RunStatus, StopFlag, TrainConfig, TrainHook,
    Trainer,
};
use std::path::Path;

fn fixture(name: &str) -> DecoderClassifier {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/decoders")
        .join(name);
    DecoderClassifier::from_pretrained(&dir, 2, DType::F32, &Device::Cpu, 0).unwrap()
}

/// `n` sequences of 4-8 tokens from 2..64 (never a pad id); the label says whether the last
/// token is above 32, which the last-token head can learn.
fn dataset(n: usize, split: Split, pad_id: u32, seed: u64) -> EncodedDataset {
    let mut rng = Rng::new(seed);
    let examples = (0..n)
        .map(|_| {
            let len = 4 + rng.below(5);
            let ids: Vec<u32> = (0..len).map(|_| 2 + rng.below(62) as u32).collect();
            let label = Label::Class((*ids.last().unwrap() > 32) as u32);
            EncodedExample {
                type_ids: vec![0; ids.len()],
                ids,
                label,
            }
        })
        .collect();
    EncodedDataset {
        task: Task::Mrpc,
        split,
        examples,
        pad_id,
        max_len: 16,
    }
}

fn pipeline(name: &str, pad_id: u32) {
    let mut model = fixture(name);
    let table = model.slot_table().clone();
    let train = dataset(48, Split::Train, pad_id, 1);
    let dev = dataset(24, Split::Dev, pad_id, 2);
    let scoring = ScoringData::from_dataset(&train, 8, 2, &Device::Cpu)
        .unwrap()
        .batches;

    // `all` on Llama takes the gate too.
    let all = table.slots(&SearchSpace::parse_kinds("all").unwrap());
    let gates = all.iter().filter(|s| s.kind == SlotKind::FfnGate).count();
    let gated = table.architecture == Architecture::Llama;
    assert_eq!(gates, if gated { 2 } else { 0 }, "{name}");
    let mut rng = Rng::new(0);
    let scores =
        proxy::score_on(&GradNorm::default(), &mut model, &scoring, &all, &mut rng).unwrap();
    assert_eq!(scores.values.len(), all.len(), "{name}");
    assert!(scores.values.values().all(|v| v.is_finite() && *v > 0.0));
    // The W0-gradient family runs through the decoders' probes.
    let w0 = proxy::score_on(&W0GradNorm::default(), &mut model, &scoring, &all, &mut rng).unwrap();
    assert!(w0.values.values().all(|v| v.is_finite()), "{name}");
    assert!(
        model.adapters().is_empty(),
        "scoring left the model as it was"
    );

    // k and v have the same size on both backbones, so the top-25% budget is exact.
    let space = SearchSpace::parse_kinds("k,v").unwrap();
    let cands = table.candidates(&space).unwrap();
    let topk = TopKParams::new().p(0.25).r(8).check().unwrap();
    let alloc = topk.allocate(&space, &table, &scores).unwrap();
    let budget = Budget::same_as_top_p(&cands, &table, 0.25, 8).unwrap();
    let (h, kv) = table.dims(SlotKind::Value).unwrap();
    assert_eq!(alloc.ranks.len(), 1);
    assert_eq!(alloc.trainable_params_in(&table).unwrap(), budget.params);
    assert_eq!(budget.params, 8 * (h + kv), "{name}");

    let out = tempfile::tempdir().unwrap();
    let cfg = TrainConfig::default()
        .lr(2e-2)
        .epochs(4)
        .batch_size(8)
        .eval_batch_size(24)
        .log_every(1)
        .quiet(true);
    let hook = DynamicReallocator::new(
        DynamicSchedule {
            every: Every::Steps(6),
            at_epoch_start: false,
        },
        topk,
        space.clone(),
        0,
    )
    .unwrap()
    .with_num_batches(2);
    let mut trainer = Trainer::new(model, alloc, train, dev.clone(), cfg)
        .unwrap()
        .with_output_dir(out.path())
        .add_hook(Box::new(hook));
    let mut logger = MemoryLogger::default();
    let result = trainer.fit(&mut logger).unwrap();
    let reallocations = logger
        .metrics
        .iter()
        .filter(|m| m.0 == "realloc.churn")
        .count();
    assert_eq!(reallocations, 4, "{name}: every 6 of 24 steps");
    let losses: Vec<f64> = result.loss_history.iter().map(|l| l.1).collect();
    let first: f64 = losses[..4].iter().sum::<f64>() / 4.0;
    let last: f64 = losses[losses.len() - 4..].iter().sum::<f64>() / 4.0;
    assert!(last < first, "{name}: loss {first} -> {last}");
    assert!(out.path().join("checkpoint").is_dir());
    assert_eq!(result.evals.len(), 4, "one dev evaluation per epoch");
    assert!(trainer.model().enabled_slots().len() == 1);

    let trained = trainer.into_model();
    let dir = out.path().join("adapters");
    trained.save_adapters(&dir).unwrap();
    let mut reloaded = fixture(name);
    reloaded.load_adapters(&dir).unwrap();
    let batch = dev
        .batch(&(0..8).collect::<Vec<_>>(), &Device::Cpu)
        .unwrap();
    let a = trained.forward_batch(&batch, None).unwrap();
    let b = reloaded.forward_batch(&batch, None).unwrap();
    let diff = max_abs_diff(&a, &b);
    assert!(diff < 1e-5, "{name}: reloaded logits differ by {diff}");
}

#[test]
fn opt_scores_allocates_trains_and_reloads() {
    pipeline("opt_pre", 1);
}

#[test]
fn llama_scores_allocates_trains_and_reloads() {
    pipeline("llama", 0);
}

#[test]
fn every_gradient_proxy_scores_a_decoder_and_bert_only_ones_say_so() {
    let mut model = fixture("qwen2");
    let pad = model.backbone().pad_token_id().unwrap_or(0);
    let train = dataset(16, Split::Train, pad, 3);
    let batches = ScoringData::from_dataset(&train, 8, 2, &Device::Cpu)
        .unwrap()
        .batches;
    let slots = model
        .slot_table()
        .slots(&SearchSpace::parse_kinds("q,v,gate,shortcuts").unwrap());
    for name in [
        "constant",
        "grad-norm",
        "snip",
        "snip-w0",
        "fisher",
        "jacob-cov",
        "w0-grad-norm",
        "w0-grad-spectrum",
    ] {
        let p = proxy::by_name(name).unwrap();
        let s = proxy::score_on(p.as_ref(), &mut model, &batches, &slots, &mut Rng::new(0))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(s.values.len(), slots.len(), "{name}");
        assert!(s.values.values().all(|v| v.is_finite()), "{name}: {s:?}");
    }
    for name in ["synflow", "alpha-test"] {
        let p = proxy::by_name(name).unwrap();
        let e = proxy::score_on(p.as_ref(), &mut model, &batches, &slots, &mut Rng::new(0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("qwen2") && e.contains(name), "{name}: {e}");
    }
}

/// Stops a decoder's run after optimiser step `at + 1`.
struct StopAt {
    at: usize,
    flag: StopFlag,
}

impl TrainHook<DecoderClassifier> for StopAt {
    fn name(&self) -> &str {
        "stop_at"
    }
    fn before_step(
        &mut self,
        _model: &mut DecoderClassifier,
        state: &mut HookState<'_>,
    ) -> heterolora::Result<Option<Allocation>> {
        if state.step == self.at {
            self.flag.stop();
        }
        Ok(None)
    }
}

#[test]
fn a_resumed_llama_run_ends_where_an_uninterrupted_one_does() {
    let table = fixture("llama").slot_table().clone();
    let (train, dev) = (
        dataset(32, Split::Train, 0, 5),
        dataset(16, Split::Dev, 0, 6),
    );
    let alloc = heterolora::adapters::Allocation::uniform(
        &SearchSpace::parse_kinds("q,v,gate,residual1").unwrap(),
        &table,
        2,
        4.0,
    )
    .unwrap();
    let cfg = TrainConfig::default()
        .lr(1e-2)
        .epochs(2)
        .batch_size(8)
        .lora_dropout(0.1)
        .quiet(true);
    let trainer = || {
        Trainer::new(
            fixture("llama"),
            alloc.clone(),
            train.clone(),
            dev.clone(),
            cfg.clone(),
        )
        .unwrap()
    };
    let mut straight = trainer();
    assert_eq!(straight.total_steps(), 8);
    straight.fit(&mut MemoryLogger::default()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let flag = StopFlag::new();
    let mut first = trainer()
        .with_output_dir(dir.path())
        .with_stop_flag(flag.clone())
        .add_hook(Box::new(StopAt { at: 5, flag }));
    let part = first.fit(&mut MemoryLogger::default()).unwrap();
    assert_eq!((part.status, part.steps), (RunStatus::Killed, 6));
    let mut second = trainer().with_output_dir(dir.path());
    second.resume_from(dir.path()).unwrap();
    let rest = second.fit(&mut MemoryLogger::default()).unwrap();
    assert_eq!((rest.status, rest.steps), (RunStatus::Finished, 8));

    let want = straight.model().adapter_vars();
    let got = second.model().adapter_vars();
    assert_eq!(want.len(), got.len());
    for ((n1, a), (n2, b)) in want.iter().zip(&got) {
        assert_eq!(n1, n2);
        let d = max_abs_diff(a.as_tensor(), b.as_tensor());
        assert!(d < 1e-6, "{n1} differs by {d} after resuming");
    }
}
