//! The training loop on a tiny random BERT and a synthetic pair task: resume equivalence,
//! the NaN stop with a readable failed run, interruption, schedule shape in the logged metrics,
//! and learning something at all.

use crate::study_util::{synthetic, StopAt};
use candle_core::{DType, Device, Tensor};
use heterolora::data::{EncodedDataset, Label, Split, Task};
use heterolora::model::{BertConfig, SequenceClassifier};
use heterolora::search::Allocation;
use heterolora::tracking::{MemoryLogger, RunStatus};
use heterolora::train::{
    parse_allocation, HookState, Precision, Schedule, StopFlag, TrainConfig, TrainHook, Trainer,
};
use heterolora::Result;

fn tiny_trainer(cfg: TrainConfig) -> Result<Trainer> {
    let model = SequenceClassifier::random(&BertConfig::tiny(), 2, DType::F32, &Device::Cpu, 7)?;
    let alloc: Allocation = parse_allocation("uniform:q,v:r=4", &model.dims())?;
    Trainer::new(
        model,
        alloc,
        synthetic(40, 1, Split::Train),
        synthetic(24, 2, Split::Dev),
        cfg,
    )
}

fn base_cfg() -> TrainConfig {
    TrainConfig::default()
        .lr(1e-2)
        .batch_size(4)
        .grad_accum(2)
        .epochs(2)
        .eval_every(3)
        .log_every(1)
        .lora_dropout(0.1)
        .quiet(true)
}

fn values(t: &Trainer) -> Vec<(String, Vec<f32>)> {
    t.model()
        .adapter_vars()
        .into_iter()
        .map(|(n, v)| {
            (
                n,
                v.as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap(),
            )
        })
        .collect()
}

#[test]
fn resume_gives_the_same_result_as_an_uninterrupted_run() -> Result<()> {
    let cfg = base_cfg();
    let mut straight = tiny_trainer(cfg.clone())?;
    // 40 examples / batch 4 = 10 micro-batches = 5 optimiser steps per epoch, 10 in all.
    assert_eq!(straight.total_steps(), 10);
    let mut log = MemoryLogger::default();
    let full = straight.fit(&mut log)?;
    assert_eq!(full.status, RunStatus::Finished);
    assert_eq!(full.steps, 10);
    let want = values(&straight);

    // Stop at an epoch end (after step 5) and in the middle of epoch 2 (after step 7, which
    // also tests the data position within an epoch).
    for stop_after in [5usize, 7] {
        let dir = tempfile::tempdir().unwrap();
        let flag = StopFlag::new();
        let mut first = tiny_trainer(cfg.clone())?
            .with_output_dir(dir.path())
            .with_stop_flag(flag.clone())
            .add_hook(Box::new(StopAt {
                at: stop_after - 1,
                flag: flag.clone(),
            }));
        let mut log1 = MemoryLogger::default();
        let part = first.fit(&mut log1)?;
        assert_eq!(part.status, RunStatus::Killed);
        assert_eq!(log1.status, Some(RunStatus::Killed));
        assert_eq!(part.steps, stop_after);
        assert!(dir.path().join("checkpoint/state.json").is_file());

        let mut second = tiny_trainer(cfg.clone())?.with_output_dir(dir.path());
        second.resume_from(dir.path())?;
        let mut log2 = MemoryLogger::default();
        let rest = second.fit(&mut log2)?;
        assert_eq!(rest.status, RunStatus::Finished);
        assert_eq!(rest.steps, 10);
        let got = values(&second);
        assert_eq!(got.len(), want.len());
        for ((n1, a), (n2, b)) in want.iter().zip(&got) {
            assert_eq!(n1, n2);
            let max = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(
                max <= 1e-6,
                "stop after {stop_after}: {n1} differs by {max}"
            );
        }
        // Same evaluations, best epoch and loss curve.
        assert_eq!(rest.best_epoch, full.best_epoch);
        assert_eq!(rest.evals.len(), full.evals.len());
        for (a, b) in rest.evals.iter().zip(&full.evals) {
            assert_eq!(
                (a.epoch, a.step, a.epoch_end),
                (b.epoch, b.step, b.epoch_end)
            );
            assert!((a.metrics["loss"] - b.metrics["loss"]).abs() < 1e-6);
        }
        let l1: Vec<f64> = rest.loss_history.iter().map(|x| x.1).collect();
        let l2: Vec<f64> = full.loss_history.iter().map(|x| x.1).collect();
        assert_eq!(l1.len(), l2.len());
        for (a, b) in l1.iter().zip(&l2) {
            assert!((a - b).abs() < 1e-6, "{l1:?} vs {l2:?}");
        }
    }
    Ok(())
}

#[test]
fn resume_rejects_a_different_config() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let flag = StopFlag::new();
    let mut t = tiny_trainer(base_cfg())?
        .with_output_dir(dir.path())
        .with_stop_flag(flag.clone())
        .add_hook(Box::new(StopAt { at: 1, flag }));
    t.fit(&mut MemoryLogger::default())?;
    let mut other = tiny_trainer(base_cfg().lr(5e-3))?;
    let e = other.resume_from(dir.path()).unwrap_err().to_string();
    assert!(e.contains("lr = 0.01 in the checkpoint"), "{e}");
    Ok(())
}

/// Poisons the classifier weight before step `at`, so that step's loss is NaN.
struct PoisonAt(usize);

impl TrainHook for PoisonAt {
    fn name(&self) -> &str {
        "poison"
    }
    fn before_step(
        &mut self,
        model: &mut SequenceClassifier,
        state: &mut HookState<'_>,
    ) -> Result<Option<Allocation>> {
        if state.step == self.0 {
            let (w, _) = model.head();
            let nan = Tensor::full(f32::NAN, w.dims(), &Device::Cpu)?;
            w.set(&nan)?;
        }
        Ok(None)
    }
}

#[test]
fn a_nan_loss_stops_the_run_names_step_and_lr_and_keeps_the_log() -> Result<()> {
    let cfg = base_cfg()
        .schedule(Schedule::Constant)
        .warmup_steps(Some(0));
    let mut t = tiny_trainer(cfg)?.add_hook(Box::new(PoisonAt(4)));
    let mut log = MemoryLogger::default();
    let err = t.fit(&mut log).unwrap_err().to_string();
    // The hook poisons before the 5th step (index 4).
    assert!(err.contains("step 5"), "{err}");
    assert!(err.contains("loss is NaN"), "{err}");
    assert!(err.contains("learning rate 1.000e-2"), "{err}");
    assert_eq!(log.status, Some(RunStatus::Failed));
    // The four good steps' losses and the evaluation at step 3 are still there.
    assert_eq!(log.history("train_loss").len(), 4);
    assert_eq!(log.history("dev_accuracy").len(), 1);
    assert!(log
        .tags
        .iter()
        .any(|(k, v)| k == "error" && v.contains("step 5")));
    assert!(log.params.iter().any(|(k, v)| k == "lr" && v == "0.01"));
    Ok(())
}

#[test]
fn a_huge_learning_rate_without_clipping_fails_cleanly_or_finishes() -> Result<()> {
    // Not every divergence produces a NaN; whatever happens, the run must end with a status.
    let cfg = base_cfg().lr(1.0).clip_norm(None).weight_decay(0.0);
    let mut t = tiny_trainer(cfg)?;
    let mut log = MemoryLogger::default();
    match t.fit(&mut log) {
        Ok(r) => assert_eq!(r.status, RunStatus::Finished),
        Err(e) => {
            assert_eq!(log.status, Some(RunStatus::Failed));
            assert!(e.to_string().contains("learning rate"), "{e}");
        }
    }
    Ok(())
}

#[test]
fn logged_learning_rates_warm_up_then_decay_linearly() -> Result<()> {
    let cfg = base_cfg().warmup_steps(Some(3)).eval_every(0);
    let mut t = tiny_trainer(cfg)?;
    let mut log = MemoryLogger::default();
    t.fit(&mut log)?;
    let lrs: Vec<f64> = log.history("lr").into_iter().map(|(_, v)| v).collect();
    let want: Vec<f64> = (0..10)
        .map(|s| Schedule::Linear.lr_at(1e-2, s, 10, 3))
        .collect();
    assert_eq!(lrs, want);
    assert!(lrs[0] < lrs[1] && lrs[1] < lrs[2], "{lrs:?}");
    assert!(lrs[3..].windows(2).all(|w| w[1] < w[0]), "{lrs:?}");
    // Constant after warm-up.
    let mut t = tiny_trainer(
        base_cfg()
            .schedule(Schedule::Constant)
            .warmup_steps(Some(2)),
    )?;
    let mut log = MemoryLogger::default();
    t.fit(&mut log)?;
    let lrs: Vec<f64> = log.history("lr").into_iter().map(|(_, v)| v).collect();
    assert_eq!(&lrs[..3], &[5e-3, 1e-2, 1e-2]);
    assert!(lrs[2..].iter().all(|&l| l == 1e-2));
    Ok(())
}

/// 4 epochs at lr 2e-2, batch 8, of the synthetic task's 160 training pairs.
fn learning_cfg() -> TrainConfig {
    TrainConfig::default()
        .lr(2e-2)
        .batch_size(8)
        .epochs(4)
        .quiet(true)
}

/// A trainer of uniform r = 8 on q,v over an f32 tiny BERT (the trainer casts it to `cfg`'s
/// precision) on the synthetic task, 64 dev pairs.
fn learning_trainer(cfg: TrainConfig) -> Result<Trainer> {
    let model = SequenceClassifier::random(&BertConfig::tiny(), 2, DType::F32, &Device::Cpu, 3)?;
    let alloc = parse_allocation("uniform:q,v:r=8", &model.dims())?;
    Trainer::new(
        model,
        alloc,
        synthetic(160, 11, Split::Train),
        synthetic(64, 12, Split::Dev),
        cfg,
    )
}

#[test]
fn training_learns_the_synthetic_task_and_logs_everything() -> Result<()> {
    let mut t = learning_trainer(learning_cfg().eval_every(0))?;
    let before = t.evaluate()?["loss"];
    let mut log = MemoryLogger::default();
    let r = t.fit(&mut log)?;
    let after = r.final_metrics().unwrap()["loss"];
    assert!(after < before, "dev loss {before} -> {after}");
    let losses = log.history("epoch_train_loss");
    assert_eq!(losses.len(), 4);
    assert!(losses[3].1 < losses[0].1, "{losses:?}");
    assert_eq!(r.epoch_evals().len(), 4);
    assert!(r.best_epoch.is_some());
    assert_eq!(log.status, Some(RunStatus::Finished));
    for key in [
        "lr",
        "batch_size",
        "seed",
        "allocation.ranks",
        "trainable_params",
        "task",
    ] {
        assert!(
            log.params.iter().any(|(k, _)| k == key),
            "param {key} missing"
        );
    }
    for art in ["allocation.json", "train_result.json"] {
        assert!(
            log.artifacts.iter().any(|(p, _)| p == art),
            "artifact {art} missing"
        );
    }
    assert!(
        log.artifacts
            .iter()
            .any(|(p, _)| p.starts_with("adapters/")),
        "{:?}",
        log.artifacts
    );
    assert!(r.to_html().contains("<table>"));
    Ok(())
}

/// Trains the synthetic task for 4 epochs at `precision`; dev loss before and after, and the
/// trainer.
fn train_at(precision: Precision) -> Result<(f64, f64, Trainer)> {
    let mut t = learning_trainer(learning_cfg().precision(precision))?;
    let before = t.evaluate()?["loss"];
    let r = t.fit(&mut MemoryLogger::default())?;
    Ok((before, r.final_metrics().unwrap()["loss"], t))
}

#[test]
fn bf16_mixed_precision_learns_like_f32_with_f32_master_weights() -> Result<()> {
    let (before32, after32, _) = train_at(Precision::F32)?;
    let (before16, after16, t) = train_at(Precision::Bf16)?;
    assert_eq!(t.model().dtype(), DType::BF16);
    let mut finer_than_bf16 = 0;
    for (name, v) in t.model().trainable_vars() {
        assert_eq!(v.dtype(), DType::F32, "{name}");
        if !name.contains("lora_B") {
            continue;
        }
        // lora_B starts at zero, which bf16 holds exactly; the updates accumulate in f32 into
        // values that bf16 cannot hold. Factors stored in bf16 would round-trip exactly.
        let x = v.as_tensor().flatten_all()?;
        let back = x.to_dtype(DType::BF16)?.to_dtype(DType::F32)?;
        let differ = x
            .ne(&back)?
            .to_dtype(DType::U32)?
            .sum_all()?
            .to_scalar::<u32>()?;
        finer_than_bf16 += differ;
    }
    assert!(finer_than_bf16 > 0);
    assert!(
        (before16 - before32).abs() < 0.01 * before32,
        "{before16} vs {before32}"
    );
    assert!(after16 < before16, "dev loss {before16} -> {after16}");
    assert!(
        after16 < before16 - 0.5 * (before32 - after32),
        "bf16 learnt less than half of what f32 did: {before16} -> {after16}, f32 {before32} -> {after32}"
    );
    Ok(())
}

/// The synthetic pairs as an STS-B-like regression: the score is 4.5 for label 1 and 1.5 for
/// label 0, so the training targets' mean is known exactly.
fn synthetic_scores(n: usize, seed: u64, split: Split) -> EncodedDataset {
    let mut ds = synthetic(n, seed, split);
    ds.task = Task::Stsb;
    for e in &mut ds.examples {
        if let Label::Class(c) = e.label {
            e.label = Label::Score(1.5 + 3.0 * c as f32);
        }
    }
    ds
}

#[test]
fn a_regression_head_starts_at_the_training_mean_unless_told_not_to() -> Result<()> {
    let train = synthetic_scores(40, 1, Split::Train);
    let targets = train.labels_f32().unwrap();
    let mean = targets.iter().sum::<f32>() / targets.len() as f32;
    let bias_of = |mean_init: bool| -> Result<f32> {
        let model =
            SequenceClassifier::random(&BertConfig::tiny(), 1, DType::F32, &Device::Cpu, 7)?;
        let alloc = parse_allocation("uniform:q,v:r=4", &model.dims())?;
        let cfg = base_cfg().mean_init(mean_init);
        let t = Trainer::new(
            model,
            alloc,
            train.clone(),
            synthetic_scores(24, 2, Split::Dev),
            cfg,
        )?;
        let (_, b) = t.model().head();
        Ok(b.as_tensor().to_vec1::<f32>()?[0])
    };
    let started = bias_of(true)?;
    assert!((started - mean).abs() < 1e-6, "bias {started}, mean {mean}");
    assert_eq!(
        bias_of(false)?,
        0.0,
        "mean_init off keeps the fresh head's zero bias"
    );

    // Starting at the mean, the first evaluation's mean squared error is at most the targets'
    // spread around it plus what the random features add, far below a zero head's E[y^2].
    let model = SequenceClassifier::random(&BertConfig::tiny(), 1, DType::F32, &Device::Cpu, 7)?;
    let alloc = parse_allocation("uniform:q,v:r=4", &model.dims())?;
    let mut t = Trainer::new(
        model,
        alloc,
        train,
        synthetic_scores(24, 2, Split::Dev),
        base_cfg(),
    )?;
    let r = t.fit(&mut MemoryLogger::default())?;
    let first = *r.evals.first().unwrap().metrics.get("loss").unwrap();
    assert!(first.is_finite() && first < 5.0, "first dev MSE {first}");
    Ok(())
}

/// The end-of-training dev predictions come from the final evaluation's logits: exactly what a
/// second pass over dev gives and what the final evaluation's metric was computed from. A later
/// step drops them, so they never describe an older model than the trainer's.
#[test]
fn final_dev_predictions_are_the_final_evaluations_until_the_next_step() -> Result<()> {
    let model = SequenceClassifier::random(&BertConfig::tiny(), 1, DType::F32, &Device::Cpu, 7)?;
    let alloc = parse_allocation("uniform:q,v:r=4", &model.dims())?;
    let mut t = Trainer::new(
        model,
        alloc,
        synthetic_scores(40, 1, Split::Train),
        synthetic_scores(24, 2, Split::Dev),
        base_cfg().lora_dropout(0.0),
    )?;
    let r = t.fit(&mut MemoryLogger::default())?;
    assert_eq!(r.status, RunStatus::Finished);
    let kept = t.final_dev_predictions()?;
    assert_eq!(kept, t.dev_predictions()?, "kept logits differ from a pass");
    let last = r.evals.last().unwrap();
    assert_eq!(
        last.step, r.steps,
        "the last evaluation is after the final step"
    );
    let pearson = kept.metric(Task::Stsb, "pearson").unwrap();
    assert!((pearson - last.metrics["pearson"]).abs() < 1e-12);

    t.step_on(&[0, 1, 2, 3], 0.05)?;
    let moved = t.dev_predictions()?;
    assert_ne!(moved, kept, "a step at lr 0.05 changes the scores");
    assert_eq!(
        t.final_dev_predictions()?,
        moved,
        "a stale final evaluation was kept"
    );
    Ok(())
}
