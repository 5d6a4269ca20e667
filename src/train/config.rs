//! [`TrainConfig`]: the fine-tuning hyper-parameters, checked before use.

use super::optim::AdamWParams;
use super::precision::Precision;
use super::schedule::Schedule;
use crate::model::HeadPooling;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Examples per evaluation batch unless set (`eval_batch_size` below).
pub const DEFAULT_EVAL_BATCH_SIZE: usize = 64;

/// Fine-tuning hyper-parameters.
///
/// Build with [`TrainConfig::default`] and the setters; [`TrainConfig::check`] validates every
/// field and is called by the trainer before anything runs, so a bad value fails before a model is
/// loaded and its error names the field and the allowed range.
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `lr` | 5e-4 | peak learning rate (after warm-up) | (0, 1] |
/// | `weight_decay` | 0.01 | AdamW decoupled weight decay, on trainable variables only | [0, 1) |
/// | `beta1`, `beta2` | 0.9, 0.999 | AdamW moment decay rates | [0, 1) |
/// | `eps` | 1e-8 | AdamW denominator epsilon | > 0 |
/// | `batch_size` | 32 | examples per micro-batch (one forward/backward) | >= 1 |
/// | `grad_accum` | 1 | micro-batches per optimiser step; effective batch = `batch_size * grad_accum` | >= 1 |
/// | `epochs` | 3 | passes over the training split (ignored when `max_steps` is set) | >= 1 |
/// | `max_steps` | none | optimiser-step budget; overrides `epochs`, crossing epoch boundaries as needed | >= 1 |
/// | `warmup_ratio` | 0.06 | warm-up length as a fraction of all optimiser steps | [0, 1) |
/// | `warmup_steps` | none | warm-up length in optimiser steps; overrides `warmup_ratio` | < total steps |
/// | `schedule` | linear | `constant` or `linear` (warm-up then linear decay to 0) | |
/// | `clip_norm` | 1.0 | clip gradients to this global L2 norm; `None` disables | > 0 |
/// | `eval_every` | 0 | also evaluate on dev every N optimiser steps (0: only at epoch ends) | >= 0 |
/// | `eval_batch_size` | 64 | examples per evaluation batch (no gradients, so it can be larger) | >= 1 |
/// | `log_every` | 10 | log loss and learning rate every N optimiser steps | >= 1 |
/// | `max_len` | 128 | token limit per example (pairs truncated longest-first) | [8, 512] |
/// | `seed` | 0 | fixes data order, adapter initialisation and dropout | any |
/// | `lora_dropout` | 0.0 | dropout on the adapters' input in training (reference: 0) | [0, 1) |
/// | `head` | none | the classifier head's read-out ([`HeadPooling`]: `cls` = [CLS] through the pooler, `mean` = mean over non-pad tokens); none keeps the model's (cls unless set on it) | |
/// | `mean_init` | true | regression (one output): start the head's bias at the training targets' mean, so that training fits the features instead of first walking the bias to the mean (STS-B's is 2.7; AdamW moves it about `lr` a step) | |
/// | `device` | `cpu` | `auto`, `cpu`, `cuda` or `cuda:N` | |
/// | `precision` | f32 | the frozen model's compute format ([`Precision`]): `bf16` keeps adapters, head, statistics and loss in f32 (for GPUs; slower on the CPU) | `f32`, `bf16` |
/// | `quiet` | false | no progress bar: one plain line per evaluation (notebooks, CI logs) | |
/// | `checkpoint_every` | 0 | also checkpoint every N optimiser steps (0: at epoch ends only) | >= 0 |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    pub lr: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub batch_size: usize,
    pub grad_accum: usize,
    pub epochs: usize,
    pub max_steps: Option<usize>,
    pub warmup_ratio: f64,
    pub warmup_steps: Option<usize>,
    pub schedule: Schedule,
    pub clip_norm: Option<f64>,
    pub eval_every: usize,
    pub eval_batch_size: usize,
    pub log_every: usize,
    pub max_len: usize,
    pub seed: u64,
    pub lora_dropout: f64,
    /// The head's read-out set on the model before training; `None` keeps the model's. Absent
    /// from checkpoints written before the choice existed (they trained the [CLS] head, which is
    /// what a model loaded without a setting has).
    pub head: Option<HeadPooling>,
    /// Regression heads start at the training targets' mean (see the table). Checkpoints written
    /// before the field existed read `true`; it acts only on a fresh start, never on a resume.
    pub mean_init: bool,
    pub device: String,
    /// Absent from records and checkpoints written before the choice existed: they are f32.
    pub precision: Precision,
    pub quiet: bool,
    pub checkpoint_every: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        let adam = AdamWParams::default();
        TrainConfig {
            lr: 5e-4,
            weight_decay: adam.weight_decay,
            beta1: adam.beta1,
            beta2: adam.beta2,
            eps: adam.eps,
            batch_size: 32,
            grad_accum: 1,
            epochs: 3,
            max_steps: None,
            warmup_ratio: 0.06,
            warmup_steps: None,
            schedule: Schedule::Linear,
            clip_norm: Some(1.0),
            eval_every: 0,
            eval_batch_size: DEFAULT_EVAL_BATCH_SIZE,
            log_every: 10,
            max_len: 128,
            seed: 0,
            lora_dropout: 0.0,
            head: None,
            mean_init: true,
            device: "cpu".to_string(),
            precision: Precision::F32,
            quiet: false,
            checkpoint_every: 0,
        }
    }
}

macro_rules! setters {
    ($($name:ident: $ty:ty),* $(,)?) => {
        $(
            #[doc = concat!("Set `", stringify!($name), "` (see the table on [`TrainConfig`]).")]
            pub fn $name(mut self, value: $ty) -> Self {
                self.$name = value;
                self
            }
        )*
    };
}

impl TrainConfig {
    setters!(
        lr: f64,
        weight_decay: f64,
        batch_size: usize,
        grad_accum: usize,
        epochs: usize,
        max_steps: Option<usize>,
        warmup_ratio: f64,
        warmup_steps: Option<usize>,
        schedule: Schedule,
        clip_norm: Option<f64>,
        eval_every: usize,
        eval_batch_size: usize,
        log_every: usize,
        max_len: usize,
        seed: u64,
        lora_dropout: f64,
        head: Option<HeadPooling>,
        mean_init: bool,
        precision: Precision,
        quiet: bool,
        checkpoint_every: usize,
    );

    /// Set the device spec (`auto`, `cpu`, `cuda:N`).
    pub fn device(mut self, spec: impl Into<String>) -> Self {
        self.device = spec.into();
        self
    }

    /// Validate every field; the error names the first bad one, its value and the allowed range.
    pub fn check(&self) -> Result<()> {
        fn unit_open(name: &str, v: f64) -> Result<()> {
            if !(v.is_finite() && (0.0..1.0).contains(&v)) {
                return Err(Error::invalid(name, v, "a number in [0, 1)"));
            }
            Ok(())
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 1.0) {
            return Err(Error::invalid(
                "lr",
                self.lr,
                "a learning rate in (0, 1], e.g. 5e-4",
            ));
        }
        unit_open("weight_decay", self.weight_decay)?;
        unit_open("beta1", self.beta1)?;
        unit_open("beta2", self.beta2)?;
        unit_open("warmup_ratio", self.warmup_ratio)?;
        unit_open("lora_dropout", self.lora_dropout)?;
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(Error::invalid(
                "eps",
                self.eps,
                "a positive number, e.g. 1e-8",
            ));
        }
        for (name, v) in [
            ("batch_size", self.batch_size),
            ("grad_accum", self.grad_accum),
            ("eval_batch_size", self.eval_batch_size),
            ("log_every", self.log_every),
        ] {
            if v == 0 {
                return Err(Error::invalid(name, v, "an integer >= 1"));
            }
        }
        if self.max_steps.is_none() && self.epochs == 0 {
            return Err(Error::invalid(
                "epochs",
                0,
                "an integer >= 1 (or set max_steps)",
            ));
        }
        if self.max_steps == Some(0) {
            return Err(Error::invalid(
                "max_steps",
                0,
                "an integer >= 1, or none for epochs",
            ));
        }
        if let Some(c) = self.clip_norm {
            if !(c.is_finite() && c > 0.0) {
                return Err(Error::invalid(
                    "clip_norm",
                    c,
                    "a positive norm, or none to disable clipping",
                ));
            }
        }
        if !(8..=512).contains(&self.max_len) {
            return Err(Error::invalid(
                "max_len",
                self.max_len,
                "an integer in [8, 512]",
            ));
        }
        check_device_spec(&self.device)?;
        Ok(())
    }

    /// Optimiser steps per epoch for `num_examples` training examples (the last, partial
    /// micro-batch and a last, partial accumulation group both count).
    pub fn steps_per_epoch(&self, num_examples: usize) -> usize {
        let micro = num_examples.div_ceil(self.batch_size);
        micro.div_ceil(self.grad_accum).max(1)
    }

    /// Total optimiser steps of the run.
    pub fn total_steps(&self, num_examples: usize) -> usize {
        self.max_steps
            .unwrap_or_else(|| self.epochs * self.steps_per_epoch(num_examples))
    }

    /// Warm-up length in optimiser steps.
    pub fn warmup_steps_for(&self, total_steps: usize) -> usize {
        match self.warmup_steps {
            Some(w) => w.min(total_steps),
            None => (self.warmup_ratio * total_steps as f64).ceil() as usize,
        }
    }

    /// The AdamW part of the configuration.
    pub fn adamw(&self) -> AdamWParams {
        AdamWParams {
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
        }
    }

    /// Every field as a (name, value) parameter for the tracker.
    pub fn to_params(&self) -> Vec<(String, String)> {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "none".to_string());
        vec![
            ("lr".into(), self.lr.to_string()),
            ("weight_decay".into(), self.weight_decay.to_string()),
            ("beta1".into(), self.beta1.to_string()),
            ("beta2".into(), self.beta2.to_string()),
            ("eps".into(), self.eps.to_string()),
            ("batch_size".into(), self.batch_size.to_string()),
            ("grad_accum".into(), self.grad_accum.to_string()),
            ("epochs".into(), self.epochs.to_string()),
            (
                "max_steps".into(),
                opt(self.max_steps.map(|s| s.to_string())),
            ),
            ("warmup_ratio".into(), self.warmup_ratio.to_string()),
            (
                "warmup_steps".into(),
                opt(self.warmup_steps.map(|s| s.to_string())),
            ),
            ("schedule".into(), self.schedule.to_string()),
            (
                "clip_norm".into(),
                opt(self.clip_norm.map(|s| s.to_string())),
            ),
            ("eval_every".into(), self.eval_every.to_string()),
            ("eval_batch_size".into(), self.eval_batch_size.to_string()),
            ("max_len".into(), self.max_len.to_string()),
            ("seed".into(), self.seed.to_string()),
            ("lora_dropout".into(), self.lora_dropout.to_string()),
            ("head".into(), opt(self.head.map(|h| h.to_string()))),
            ("mean_init".into(), self.mean_init.to_string()),
            ("device".into(), self.device.clone()),
            ("precision".into(), self.precision.to_string()),
        ]
    }
}

/// The syntax of a device spec, checked without touching the device (creating a CUDA context is
/// slow and [`crate::device::parse_device`] does that when the run starts).
fn check_device_spec(spec: &str) -> Result<()> {
    let s = spec.trim().to_ascii_lowercase();
    let ok = match s.as_str() {
        "auto" | "cpu" | "cuda" => true,
        _ => s
            .strip_prefix("cuda:")
            .is_some_and(|n| n.parse::<usize>().is_ok()),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("device", spec, "auto, cpu, cuda or cuda:N"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_bad_values_name_the_field() {
        TrainConfig::default().check().unwrap();
        let cases: Vec<(TrainConfig, &str)> = vec![
            (TrainConfig::default().lr(0.0), "lr"),
            (TrainConfig::default().lr(f64::NAN), "lr"),
            (TrainConfig::default().weight_decay(1.5), "weight_decay"),
            (TrainConfig::default().batch_size(0), "batch_size"),
            (TrainConfig::default().grad_accum(0), "grad_accum"),
            (TrainConfig::default().epochs(0), "epochs"),
            (TrainConfig::default().max_steps(Some(0)), "max_steps"),
            (TrainConfig::default().clip_norm(Some(-1.0)), "clip_norm"),
            (TrainConfig::default().max_len(4), "max_len"),
            (TrainConfig::default().lora_dropout(1.0), "lora_dropout"),
            (TrainConfig::default().device("tpu"), "device"),
        ];
        for (cfg, field) in cases {
            let e = cfg.check().unwrap_err().to_string();
            assert!(e.contains(&format!("`{field}`")), "{field}: {e}");
        }
        // A step budget makes epochs irrelevant.
        TrainConfig::default()
            .epochs(0)
            .max_steps(Some(10))
            .check()
            .unwrap();
    }

    #[test]
    fn step_arithmetic() {
        let c = TrainConfig::default()
            .batch_size(32)
            .grad_accum(2)
            .epochs(3);
        // 3668 MRPC training pairs: 115 micro-batches, 58 optimiser steps per epoch.
        assert_eq!(c.steps_per_epoch(3668), 58);
        assert_eq!(c.total_steps(3668), 174);
        assert_eq!(c.warmup_steps_for(174), 11);
        assert_eq!(c.clone().warmup_steps(Some(5)).warmup_steps_for(174), 5);
        assert_eq!(c.max_steps(Some(7)).total_steps(3668), 7);
        let params = TrainConfig::default().to_params();
        assert!(params.iter().any(|(k, v)| k == "lr" && v == "0.0005"));
        let params = TrainConfig::default()
            .head(Some(HeadPooling::Mean))
            .to_params();
        assert!(params.iter().any(|(k, v)| k == "head" && v == "mean"));
    }

    #[test]
    fn configs_saved_without_a_head_keep_the_models() {
        let mut v = serde_json::to_value(TrainConfig::default()).unwrap();
        v.as_object_mut().unwrap().remove("head");
        let c: TrainConfig = serde_json::from_value(v).unwrap();
        assert_eq!(c.head, None);
    }
}
