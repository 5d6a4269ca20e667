//! Benchmark: the cost of scoring every candidate slot of the real model against one training
//! epoch. The epoch time is extrapolated from timed training steps (the trainer's own step:
//! forward with dropout, loss, backward, AdamW; [`crate::bench::train::bench_train_step`]) times
//! the steps in an MRPC epoch; each proxy is timed alone on the first N training batches, and the
//! gradient proxies once more sharing one pass ([`super::score_all`]).

use super::train::{bench_train_step, BenchConfig};
use crate::adapters::{candidates_in, SearchSpace, SlotId};
use crate::data::Task;
use crate::device::{device_name, parse_device};
use crate::model::{AdaptedClassifier, AssetLoader, Classifier};
use crate::proxy::{by_name, score_all, FreshAdapters, Proxy, ScoringData};
use crate::rng::Rng;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// What to benchmark.
///
/// | name | default | meaning |
/// |---|---|---|
/// | `space` | `all` | candidate kinds (all = 6 LoRA kinds + 4 shortcuts in every layer) |
/// | `proxies` | every built-in | proxy names |
/// | `num_batches`, `batch_size` | 32, 32 | the scoring batches (the reference scores 32 of 8) |
/// | `train_batch_size` | 32 | the training batches the epoch is timed on (length-bucketed, as the trainer's) |
/// | `train_steps`, `warmup` | 10, 2 | timed and untimed training steps (q,v r = 8) |
#[derive(Debug, Clone)]
pub struct ScoreBenchConfig {
    pub model_dir: Option<PathBuf>,
    pub glue_dir: Option<PathBuf>,
    pub device: String,
    pub space: String,
    pub proxies: Vec<String>,
    pub num_batches: usize,
    pub batch_size: usize,
    pub train_batch_size: usize,
    pub max_len: usize,
    pub train_steps: usize,
    pub warmup: usize,
}

impl Default for ScoreBenchConfig {
    fn default() -> Self {
        ScoreBenchConfig {
            model_dir: None,
            glue_dir: None,
            device: "cpu".into(),
            space: "all".into(),
            proxies: crate::proxy::NAMES.iter().map(|s| s.to_string()).collect(),
            num_batches: 32,
            batch_size: 32,
            train_batch_size: 32,
            max_len: 128,
            train_steps: 10,
            warmup: 2,
        }
    }
}

/// One proxy's cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScoreBenchRow {
    pub proxy: String,
    pub seconds: f64,
    /// seconds / (one training epoch's seconds).
    pub fraction_of_epoch: f64,
}

/// Measured figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScoreBenchReport {
    pub device: String,
    pub slots: usize,
    pub num_batches: usize,
    pub batch_size: usize,
    #[serde(default)]
    pub train_batch_size: usize,
    pub ms_per_train_step: f64,
    pub steps_per_epoch: usize,
    pub epoch_seconds: f64,
    pub rows: Vec<ScoreBenchRow>,
    /// The gradient proxies together, sharing one pass.
    pub shared_pass: Option<ScoreBenchRow>,
}

impl std::fmt::Display for ScoreBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "scoring {} slots on {} batches of {} ({}); training at batch {}: {:.0} ms/step x {} steps = {:.1} s/epoch",
            self.slots,
            self.num_batches,
            self.batch_size,
            self.device,
            self.train_batch_size,
            self.ms_per_train_step,
            self.steps_per_epoch,
            self.epoch_seconds
        )?;
        writeln!(f, "{:<20} {:>10} {:>12}", "proxy", "seconds", "x epoch")?;
        for r in self.rows.iter().chain(self.shared_pass.iter()) {
            writeln!(
                f,
                "{:<20} {:>10.2} {:>12.4}",
                r.proxy, r.seconds, r.fraction_of_epoch
            )?;
        }
        Ok(())
    }
}

/// Runs the benchmark on MRPC.
pub fn bench_scoring(cfg: &ScoreBenchConfig) -> Result<ScoreBenchReport> {
    // The bench binaries do not go through the CLI's main: tune here so they time what it runs.
    crate::device::tune_allocator();
    if cfg.num_batches == 0
        || cfg.batch_size == 0
        || cfg.train_batch_size == 0
        || cfg.train_steps == 0
    {
        return Err(Error::invalid(
            "num_batches/batch_size/train_batch_size/train_steps",
            0,
            ">= 1",
        ));
    }
    let train_report = bench_train_step(&BenchConfig {
        model_dir: cfg.model_dir.clone(),
        glue_dir: cfg.glue_dir.clone(),
        device: cfg.device.clone(),
        allocation: "uniform:q,v:r=8".into(),
        batch_size: cfg.train_batch_size,
        max_len: cfg.max_len,
        steps: cfg.train_steps,
        warmup: cfg.warmup,
        bucket: true,
        fixed_len: false,
        precision: crate::train::Precision::F32,
    })?;
    let device = parse_device(&cfg.device)?;
    // The loading path of every command: the folder checked, MRPC's training split encoded
    // with its tokenizer, BERT or a decoder by its config.json (head seed 0).
    let loaded = AssetLoader::new(Task::Mrpc)
        .model_dir(cfg.model_dir.as_deref())
        .glue_dir(cfg.glue_dir.as_deref())
        .max_len(cfg.max_len)
        .splits(true, false)
        .device(&device)
        .load()?;
    let train = loaded.train()?;
    let steps_per_epoch = train.len().div_ceil(cfg.train_batch_size);
    let epoch_seconds = train_report.ms_per_step / 1000.0 * steps_per_epoch as f64;
    let data = ScoringData::from_dataset(train, cfg.batch_size, cfg.num_batches, &device)?;
    let space = SearchSpace::parse_kinds(&cfg.space)?;
    let proxies: Vec<Box<dyn Proxy>> = cfg
        .proxies
        .iter()
        .map(|n| by_name(n))
        .collect::<Result<_>>()?;
    // BERT is scored on its own type, as the benchmark always timed it; a decoder through the
    // enum, on the slots of the space it has (Llama's gate with `all`).
    let (slots, (rows, shared_pass)) = match loaded.model.expect("the loader builds the model") {
        Classifier::Encoder(mut m) => {
            let slots = space.slots(m.dims().num_layers);
            let timed = time_proxies(&mut m, &proxies, &data, &slots, epoch_seconds)?;
            (slots, timed)
        }
        mut decoder => {
            let slots = candidates_in(&space, &decoder.slot_table())?;
            let timed = time_proxies(&mut decoder, &proxies, &data, &slots, epoch_seconds)?;
            (slots, timed)
        }
    };
    Ok(ScoreBenchReport {
        device: device_name(&device),
        slots: slots.len(),
        num_batches: data.len(),
        batch_size: cfg.batch_size,
        train_batch_size: cfg.train_batch_size,
        ms_per_train_step: train_report.ms_per_step,
        steps_per_epoch,
        epoch_seconds,
        rows,
        shared_pass,
    })
}

/// Times each proxy alone on `model`, then the gradient proxies sharing one pass (when there
/// are several): one row each, seconds and the fraction of a training epoch.
fn time_proxies<M: AdaptedClassifier>(
    model: &mut M,
    proxies: &[Box<dyn Proxy>],
    data: &ScoringData,
    slots: &[SlotId],
    epoch_seconds: f64,
) -> Result<(Vec<ScoreBenchRow>, Option<ScoreBenchRow>)> {
    let device = model.device().clone();
    let mut rows = Vec::new();
    for p in proxies {
        let t0 = Instant::now();
        p.score(&mut *model, &data.batches, slots, &mut Rng::new(0))?;
        device.synchronize()?;
        let s = t0.elapsed().as_secs_f64();
        rows.push(ScoreBenchRow {
            proxy: p.name(),
            seconds: s,
            fraction_of_epoch: s / epoch_seconds,
        });
    }
    let grad: Vec<&dyn Proxy> = proxies
        .iter()
        .filter(|p| p.gradient_needs().is_some())
        .map(|p| p.as_ref())
        .collect();
    let shared_pass = if grad.len() > 1 {
        let t0 = Instant::now();
        score_all(
            &grad,
            model,
            &data.batches,
            slots,
            &FreshAdapters::default(),
            &mut Rng::new(0),
        )?;
        device.synchronize()?;
        let s = t0.elapsed().as_secs_f64();
        Some(ScoreBenchRow {
            proxy: format!("{} gradient proxies, one pass", grad.len()),
            seconds: s,
            fraction_of_epoch: s / epoch_seconds,
        })
    } else {
        None
    };
    Ok((rows, shared_pass))
}
