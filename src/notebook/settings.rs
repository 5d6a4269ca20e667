//! [`Settings`]: how big a notebook's experiment is (quick for a tour of the workflow, tutorial
//! for a model that learns in minutes on a CPU, full for the reference protocol's sizes).

use crate::model::HeadPooling;
use crate::search::AlphaRule;
use crate::train::{Precision, Schedule, TrainConfig};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Warm-up of [`Settings::train_config`], as a fraction of all optimiser steps.
pub const WARMUP_RATIO: f64 = 0.06;

/// The size of a [`super::Workspace`]'s experiment.
///
/// | field | quick | tutorial | full | meaning |
/// |---|---|---|---|---|
/// | `max_len` | 64 | 64 | 128 | token limit per example |
/// | `score_batches` | 4 | 8 | 32 | N: scoring batches from the start of the training split |
/// | `score_batch_size` | 16 | 32 | 32 | examples per scoring batch |
/// | `train_limit` | 320 | all | all | training examples used (the first N of the split) |
/// | `dev_limit` | 200 | all | all | dev examples evaluated (the first N of the split) |
/// | `epochs` | 1 | 2 | 3 | epochs of [`super::Workspace::train_config`] |
/// | `batch_size` | 16 | 32 | 32 | training batch size of `train_config` |
/// | `lr` | 1e-3 | 2e-3 | 5e-4 | peak learning rate of `train_config` |
/// | schedule | linear | linear | linear | `train_config`: warm-up over the first 6% of the optimiser steps, then linear decay to 0 |
/// | `fresh_r` | 8 | 8 | 8 | rank of the fresh adapters proxies score |
/// | `seed` | 0 | 0 | 0 | model head, adapters, data order, proxy tie-breaks |
/// | `device` | `cpu` | `cpu` | `auto` | `auto`, `cpu`, `cuda`, `cuda:N` |
/// | `precision` | f32 | f32 | f32 | the frozen model's compute format for scoring and training ([`Precision`]; `bf16` on a GPU: f32 adapters, head and loss) |
/// | `tracking` | default store | default store | default store | tracker path or `sqlite:///` URI |
/// | `lora_alpha` | `16` | `16` | `16` | LoRA alpha rule of the allocations ([`AlphaRule`]: the authors' 16 at every rank; `2r` keeps the scaling at 2) |
/// | `head` | `cls` | `cls` | `cls` | classifier read-out ([`HeadPooling`]: [CLS] through the pooler, or the mean over non-pad tokens) |
///
/// - [`Settings::quick`] makes every notebook cell run in seconds to a few minutes on a laptop
///   CPU; its training runs are too short to leave the majority class (68.4% of MRPC dev): they
///   show the workflow, not a model that learned.
/// - [`Settings::tutorial`] trains on the whole MRPC training split and evaluates the whole dev
///   split, two epochs at short sequences: uniform LoRA r = 8 on q,v reached 77.2% dev accuracy
///   with seed 0 (notebook 01: 453 s on two CPU cores shared with other jobs).
/// - [`Settings::full`] is the reference protocol's sizes; for comparisons between methods use
///   `heterolora study`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub max_len: usize,
    pub score_batches: usize,
    pub score_batch_size: usize,
    pub train_limit: Option<usize>,
    pub dev_limit: Option<usize>,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub fresh_r: usize,
    pub seed: u64,
    pub device: String,
    /// Tracker store; `None`: `tracking/mlflow.db` of the project (or `$MLFLOW_TRACKING_URI`).
    pub tracking: Option<String>,
    #[serde(default = "AlphaRule::lora_default")]
    pub lora_alpha: AlphaRule,
    #[serde(default)]
    pub head: HeadPooling,
    #[serde(default)]
    pub precision: Precision,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::quick()
    }
}

impl Settings {
    /// Minutes on a CPU (see the table).
    pub fn quick() -> Self {
        Settings {
            max_len: 64,
            score_batches: 4,
            score_batch_size: 16,
            train_limit: Some(320),
            dev_limit: Some(200),
            epochs: 1,
            batch_size: 16,
            lr: 1e-3,
            fresh_r: 8,
            seed: 0,
            device: "cpu".into(),
            tracking: None,
            lora_alpha: AlphaRule::LORA_DEFAULT,
            head: HeadPooling::Cls,
            precision: Precision::F32,
        }
    }

    /// A model that learns in minutes on a CPU: the whole training and dev splits, `max_len` 64,
    /// 2 epochs of batch 32 at lr 2e-3, linear decay after a 6% warm-up (see the table).
    pub fn tutorial() -> Self {
        Settings {
            max_len: 64,
            score_batches: 8,
            score_batch_size: 32,
            train_limit: None,
            dev_limit: None,
            epochs: 2,
            batch_size: 32,
            lr: 2e-3,
            ..Settings::quick()
        }
    }

    /// The reference protocol's sizes (whole training split, 3 epochs).
    pub fn full() -> Self {
        Settings {
            max_len: 128,
            score_batches: 32,
            score_batch_size: 32,
            train_limit: None,
            dev_limit: None,
            epochs: 3,
            batch_size: 32,
            lr: 5e-4,
            fresh_r: 8,
            seed: 0,
            device: "auto".into(),
            tracking: None,
            lora_alpha: AlphaRule::LORA_DEFAULT,
            head: HeadPooling::Cls,
            precision: Precision::F32,
        }
    }

    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    pub fn device(mut self, device: impl Into<String>) -> Self {
        self.device = device.into();
        self
    }
    /// Log to this store (a path or `sqlite:///` URI) instead of the default one.
    pub fn tracking(mut self, path_or_uri: impl Into<String>) -> Self {
        self.tracking = Some(path_or_uri.into());
        self
    }
    pub fn train_limit(mut self, n: Option<usize>) -> Self {
        self.train_limit = n;
        self
    }
    pub fn dev_limit(mut self, n: Option<usize>) -> Self {
        self.dev_limit = n;
        self
    }
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }
    pub fn score_batches(mut self, n: usize) -> Self {
        self.score_batches = n;
        self
    }
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    pub fn lr(mut self, lr: f64) -> Self {
        self.lr = lr;
        self
    }
    /// LoRA alpha of the workspace's allocations as a function of rank (default: 16).
    pub fn lora_alpha(mut self, rule: AlphaRule) -> Self {
        self.lora_alpha = rule;
        self
    }
    /// The frozen model's compute format, for scoring and training (default: f32; `Bf16` on a
    /// GPU).
    pub fn precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }
    /// The classifier's read-out, for scoring and training (default: [CLS]).
    pub fn head(mut self, head: HeadPooling) -> Self {
        self.head = head;
        self
    }

    /// Every field in range, or an error naming the first that is not.
    pub fn check(&self) -> Result<()> {
        if !(8..=512).contains(&self.max_len) {
            return Err(Error::invalid("max_len", self.max_len, "in [8, 512]"));
        }
        for (name, v) in [
            ("score_batches", self.score_batches),
            ("score_batch_size", self.score_batch_size),
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("fresh_r", self.fresh_r),
        ] {
            if v == 0 {
                return Err(Error::invalid(name, v, "at least 1"));
            }
        }
        if self.train_limit == Some(0) {
            return Err(Error::invalid(
                "train_limit",
                0,
                "at least 1, or None for all",
            ));
        }
        if !(self.lr > 0.0 && self.lr <= 1.0) {
            return Err(Error::invalid("lr", self.lr, "in (0, 1]"));
        }
        self.lora_alpha.check("lora_alpha")
    }

    /// The training configuration these settings imply (a notebook changes it with the setters):
    /// AdamW at `lr` after a linear warm-up over 6% of the optimiser steps, then linear decay to 0.
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            lr: self.lr,
            schedule: Schedule::Linear,
            warmup_ratio: WARMUP_RATIO,
            warmup_steps: None,
            batch_size: self.batch_size,
            epochs: self.epochs,
            max_len: self.max_len,
            seed: self.seed,
            device: self.device.clone(),
            precision: self.precision,
            log_every: 2,
            head: Some(self.head),
            // Plain progress lines: a notebook's stderr is not a terminal.
            quiet: false,
            ..TrainConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_and_full_are_valid_and_bad_fields_are_named() {
        Settings::quick().check().unwrap();
        Settings::full().check().unwrap();
        Settings::tutorial().check().unwrap();
        let e = Settings::quick()
            .max_len(4)
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_len"), "{e}");
        let e = Settings::quick().epochs(0).check().unwrap_err().to_string();
        assert!(e.contains("epochs"), "{e}");
        let e = Settings::quick()
            .train_limit(Some(0))
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("train_limit"), "{e}");
        let c = Settings::quick().seed(7).train_config();
        assert_eq!((c.seed, c.max_len, c.epochs), (7, 64, 1));
        c.check().unwrap();
        assert_eq!(c.head, Some(HeadPooling::Cls));
        assert_eq!(Settings::quick().lora_alpha, AlphaRule::AUTHORS);
        let m = Settings::quick().head(HeadPooling::Mean).train_config();
        assert_eq!(m.head, Some(HeadPooling::Mean));
        let e = Settings::quick()
            .lora_alpha(AlphaRule::Fixed(-1.0))
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("lora_alpha"), "{e}");
    }

    #[test]
    fn tutorial_is_the_measured_recipe() {
        let t = Settings::tutorial();
        assert_eq!((t.train_limit, t.dev_limit), (None, None), "whole splits");
        assert_eq!((t.max_len, t.epochs, t.batch_size), (64, 2, 32));
        assert_eq!(t.lr, 2e-3);
        assert_eq!(t.device, "cpu");
        let c = t.seed(3).train_config();
        c.check().unwrap();
        assert_eq!(c.schedule, Schedule::Linear, "linear decay");
        assert_eq!((c.warmup_ratio, c.warmup_steps), (0.06, None), "6% warm-up");
        assert_eq!(
            (c.lr, c.epochs, c.batch_size, c.max_len, c.seed),
            (2e-3, 2, 32, 64, 3)
        );
        assert_eq!(c.device, "cpu");
        // The quick and full presets warm up and decay the same way.
        for s in [Settings::quick(), Settings::full()] {
            let c = s.train_config();
            assert_eq!((c.schedule, c.warmup_ratio), (Schedule::Linear, 0.06));
        }
        let g = Settings::tutorial().device("cuda").train_config();
        assert_eq!(g.device, "cuda");
    }
}
