//! Shared helpers of the study integration tests: a tiny random BERT on a synthetic pair task as
//! the study's source, a fast protocol, and study construction.
#![allow(dead_code)]

use candle_core::{DType, Device};
use heterolora::adapters::ModelDims;
use heterolora::data::{EncodedDataset, EncodedExample, Label, Split, Task};
use heterolora::model::{BertConfig, SequenceClassifier};
use heterolora::rng::Rng;
use heterolora::search::Allocation;
use heterolora::study::{Loaded, Method, Protocol, Study, StudyConfig, StudySource};
use heterolora::tracking::Tracker;
use heterolora::train::{HookState, StopFlag, TrainHook};
use heterolora::{Error, Result};
use std::path::Path;

/// Pairs whose first segment repeats token 11 (label 1) or token 12 (label 0), and whose second
/// segment is random: learnable by a tiny frozen random encoder with adapters in a few steps,
/// with varied lengths so that padding and bucketing matter.
pub fn synthetic(n: usize, seed: u64, split: Split) -> EncodedDataset {
    let mut rng = Rng::new(seed);
    let examples = (0..n)
        .map(|_| {
            let la = 3 + rng.below(6);
            let lb = 2 + rng.below(6);
            let label = rng.below(2) as u32;
            let mut ids = vec![1u32];
            ids.extend(vec![12 - label; la]);
            ids.push(2);
            let mut type_ids = vec![0u32; ids.len()];
            ids.extend((0..lb).map(|_| 10 + rng.below(80) as u32));
            ids.push(2);
            type_ids.resize(ids.len(), 1);
            EncodedExample {
                ids,
                type_ids,
                label: Label::Class(label),
            }
        })
        .collect();
    EncodedDataset {
        task: Task::Mrpc,
        split,
        examples,
        pad_id: 0,
        max_len: 32,
    }
}

/// The tiny model and synthetic data; loading fails for the seeds in `fail_seeds`.
pub struct Tiny {
    pub fail_seeds: Vec<u64>,
}

impl StudySource for Tiny {
    fn load(&mut self, _task: Task, _max_len: usize, _device: &str, seed: u64) -> Result<Loaded> {
        if self.fail_seeds.contains(&seed) {
            return Err(Error::Other(format!("injected failure for seed {seed}")));
        }
        Ok(Loaded {
            model: SequenceClassifier::random(
                &BertConfig::tiny(),
                2,
                DType::F32,
                &Device::Cpu,
                seed,
            )?,
            train: synthetic(32, 1, Split::Train),
            dev: synthetic(16, 2, Split::Dev),
        })
    }
    fn dims(&mut self) -> Result<ModelDims> {
        let c = BertConfig::tiny();
        Ok(ModelDims {
            num_layers: c.num_hidden_layers,
            hidden_size: c.hidden_size,
            intermediate_size: c.intermediate_size,
        })
    }
    fn describe(&self) -> String {
        "tiny random BERT, synthetic pairs".into()
    }
}

pub fn protocol() -> Protocol {
    let mut p = Protocol::cpu();
    p.name = "tiny".into();
    p.epochs = 2;
    p.lr = 1e-2;
    p.batch_size = 4;
    p.scoring_batches = 2;
    p.scoring_batch_size = 4;
    p.dynamic_every = 0.5;
    p
}

pub fn config(dir: &Path, methods: &str, seeds: Vec<u64>) -> StudyConfig {
    StudyConfig::new(Task::Mrpc, protocol())
        .name("tiny")
        .methods(Method::select(&[methods.to_string()]).unwrap())
        .seeds(seeds)
        .results_dir(dir.join("results"))
}

pub fn study(dir: &Path, cfg: StudyConfig, fail_seeds: Vec<u64>) -> Study {
    let tracker = Tracker::open_path(&dir.join("mlflow.db")).unwrap();
    let mut s = Study::new(cfg, tracker, Box::new(Tiny { fail_seeds }));
    // One process: the settle time only guards against claims written at the same moment.
    s.claims.settle = std::time::Duration::from_millis(20);
    s
}

/// Stops the run after optimiser step `at + 1` (the hook runs before step `at`).
pub struct StopAt {
    pub at: usize,
    pub flag: StopFlag,
}

impl TrainHook for StopAt {
    fn name(&self) -> &str {
        "stop_at"
    }
    fn before_step(
        &mut self,
        _model: &mut SequenceClassifier,
        state: &mut HookState<'_>,
    ) -> Result<Option<Allocation>> {
        if state.step == self.at {
            self.flag.stop();
        }
        Ok(None)
    }
}
