//! Dynamic re-allocation inside training, as model-independent logic.
//!
//! The reference re-allocates every 0.2 epoch and at each epoch start: switch every slot on,
//! rescore on the current weights (grad-norm), keep the top k on. Disabled slots keep their
//! weights (the trainer just stops using and updating them). The trainer's loop is:
//!
//! ```text
//! if schedule.due(step, steps_per_epoch) {
//!     let scores = proxy.score(&model_with_all_slots_on, batches)?;
//!     let alloc = select_top_k(&topk, &space, &dims, &scores, &mut rng)?;
//!     model.set_enabled(&alloc.enabled());
//!     log.push(ReallocationRecord::new(step, steps_per_epoch, scores, &alloc));
//! }
//! ```

use crate::adapters::Allocation;
use crate::adapters::{SearchSpace, SlotId, SlotSizes};
use crate::proxy::Scores;
use crate::rng::Rng;
use crate::search::topk::TopK;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// How often to re-allocate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Every {
    /// Every n optimiser steps, counted from the start of training.
    Steps(usize),
    /// Every fraction f of an epoch. For f <= 1 the points are counted from each epoch's start
    /// (f = 0.2 re-allocates at 0.2, 0.4, 0.6, 0.8 of every epoch, with no drift when the epoch
    /// length is not a multiple of the interval); for f > 1 from the start of training.
    EpochFraction(f64),
}

impl std::fmt::Display for Every {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Every::Steps(n) => write!(f, "{n}steps"),
            Every::EpochFraction(x) => write!(f, "{x}epoch"),
        }
    }
}

impl std::str::FromStr for Every {
    type Err = Error;

    /// `100`, `100steps` or `100step`: every 100 steps; `0.2epoch` or `0.2e`: every 0.2 epoch.
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_lowercase();
        let bad = || {
            Error::invalid(
                "every",
                s,
                "a step count such as 100steps or an epoch fraction such as 0.2epoch",
            )
        };
        let every = if let Some(x) = t
            .strip_suffix("epochs")
            .or_else(|| t.strip_suffix("epoch"))
            .or_else(|| t.strip_suffix('e'))
        {
            Every::EpochFraction(x.trim().parse().map_err(|_| bad())?)
        } else {
            let x = t
                .strip_suffix("steps")
                .or_else(|| t.strip_suffix("step"))
                .unwrap_or(&t);
            Every::Steps(x.trim().parse().map_err(|_| bad())?)
        };
        DynamicSchedule {
            every,
            at_epoch_start: false,
        }
        .check()?;
        Ok(every)
    }
}

/// When re-allocations happen. Step 0 is always due: the first allocation is scored on the
/// initial weights.
///
/// | name | default | range | meaning |
/// |---|---|---|---|
/// | `every` | 0.2 epoch | steps >= 1, fraction > 0 | interval between re-allocations |
/// | `at_epoch_start` | true | | also re-allocate at the first step of every epoch |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DynamicSchedule {
    pub every: Every,
    pub at_epoch_start: bool,
}

impl Default for DynamicSchedule {
    /// The reference schedule: every 0.2 epoch and at each epoch start.
    fn default() -> Self {
        DynamicSchedule {
            every: Every::EpochFraction(0.2),
            at_epoch_start: true,
        }
    }
}

impl DynamicSchedule {
    pub fn check(&self) -> Result<()> {
        match self.every {
            Every::Steps(0) => Err(Error::invalid("every", "0 steps", "at least 1 step")),
            Every::EpochFraction(f) if !(f.is_finite() && f > 0.0) => Err(Error::invalid(
                "every",
                format!("{f} epoch"),
                "a positive fraction of an epoch, e.g. 0.2",
            )),
            _ => Ok(()),
        }
    }

    /// The interval in steps (at least 1).
    pub fn interval_steps(&self, steps_per_epoch: usize) -> usize {
        match self.every {
            Every::Steps(n) => n.max(1),
            Every::EpochFraction(f) => ((f * steps_per_epoch as f64).round() as usize).max(1),
        }
    }

    /// Whether a re-allocation is due before optimiser step `step` (0-based, counted over the
    /// whole run), with `steps_per_epoch` steps in an epoch.
    pub fn due(&self, step: usize, steps_per_epoch: usize) -> bool {
        let spe = steps_per_epoch.max(1);
        if step == 0 || (self.at_epoch_start && step % spe == 0) {
            return true;
        }
        let interval = self.interval_steps(spe);
        match self.every {
            Every::EpochFraction(f) if f <= 1.0 => {
                let pos = step % spe;
                pos > 0 && pos % interval == 0
            }
            _ => step % interval == 0,
        }
    }
}

/// Keep the top k of `scores` under the rules of `topk`, tie-breaking from `rng` (the trainer's
/// stream, so successive re-allocations differ in their tie-breaks).
pub fn select_top_k(
    topk: &TopK,
    space: &SearchSpace,
    dims: &impl SlotSizes,
    scores: &Scores,
    rng: &mut Rng,
) -> Result<Allocation> {
    let mut a = topk.select(space, dims, scores, rng)?;
    a.method = "dynamic".into();
    Ok(a)
}

/// Whether re-allocation scores the model with dropout off or on.
///
/// The authors' dynamic re-allocation scores in training mode (dropout on); this crate scored in
/// evaluation mode first, and [`ScoringMode::Eval`] stays the default so that the committed
/// dynamic results are reproduced bit for bit. Training mode draws its dropout masks from the
/// re-allocator's seeded generator, so it is reproducible too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoringMode {
    /// No dropout: scores are a deterministic function of the weights and batches.
    #[default]
    Eval,
    /// Dropout on (the model's hidden, attention, classifier and LoRA dropout), as the authors.
    Train,
}

impl std::fmt::Display for ScoringMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ScoringMode::Eval => "eval",
            ScoringMode::Train => "train",
        })
    }
}

impl std::str::FromStr for ScoringMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "eval" | "evaluation" => Ok(ScoringMode::Eval),
            "train" | "training" => Ok(ScoringMode::Train),
            _ => Err(Error::invalid(
                "scoring mode",
                s,
                "`eval` (dropout off) or `train` (dropout on, as the authors)",
            )),
        }
    }
}

/// The two parts of a slot's grad-norm at a re-allocation: `||sum dL/dA||_F` and
/// `||sum dL/dB||_F`. On a fresh adapter (B = 0) `a` is exactly 0, so a slot that wins with
/// `a > 0` is one that has been trained: the parts show whether trained slots win because they
/// are trained.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GradParts {
    pub a: f64,
    pub b: f64,
}

/// One re-allocation: when, on which scores, which slots it left on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReallocationRecord {
    pub step: usize,
    pub epoch: usize,
    /// Fractional epoch (step / steps_per_epoch), for plots.
    pub epoch_progress: f64,
    pub scores: Scores,
    pub enabled: Vec<SlotId>,
    /// Dropout off or on while scoring (absent in logs written before the choice: eval).
    #[serde(default)]
    pub mode: ScoringMode,
    /// The A and B parts of each slot's factor gradients (proxies computed from them, such as
    /// grad-norm); empty for other proxies and in logs written before they were recorded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grad_parts: BTreeMap<SlotId, GradParts>,
}

impl ReallocationRecord {
    pub fn new(step: usize, steps_per_epoch: usize, scores: Scores, alloc: &Allocation) -> Self {
        let spe = steps_per_epoch.max(1);
        ReallocationRecord {
            step,
            epoch: step / spe,
            epoch_progress: step as f64 / spe as f64,
            scores,
            enabled: alloc.enabled(),
            mode: ScoringMode::Eval,
            grad_parts: BTreeMap::new(),
        }
    }

    /// The same record with its scoring mode and gradient parts.
    pub fn with_details(mut self, mode: ScoringMode, parts: BTreeMap<SlotId, GradParts>) -> Self {
        self.mode = mode;
        self.grad_parts = parts;
        self
    }
}

/// Every re-allocation of a run, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReallocationLog {
    pub records: Vec<ReallocationRecord>,
}

impl ReallocationLog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, record: ReallocationRecord) {
        self.records.push(record);
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Slots switched on or off at each re-allocation relative to the one before (0 for the first).
    pub fn churn(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.records.len());
        for (i, r) in self.records.iter().enumerate() {
            if i == 0 {
                out.push(0);
                continue;
            }
            let prev = &self.records[i - 1].enabled;
            let on = r.enabled.iter().filter(|s| !prev.contains(s)).count();
            let off = prev.iter().filter(|s| !r.enabled.contains(s)).count();
            out.push(on + off);
        }
        out
    }

    /// For every slot ever scored, in how many re-allocations it was on.
    pub fn times_enabled(&self) -> BTreeMap<SlotId, usize> {
        let mut out = BTreeMap::new();
        for r in &self.records {
            for s in r.scores.values.keys() {
                out.entry(*s).or_insert(0);
            }
            for s in &r.enabled {
                *out.entry(*s).or_insert(0) += 1;
            }
        }
        out
    }

    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    pub fn from_json(json: &str) -> Result<Self> {
        Ok(serde_json::from_str(json)?)
    }

    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_json()? + "\n").map_err(|e| Error::io(path, e))
    }

    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::parse(path, e.line(), format!("not a re-allocation log JSON: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::ModelDims;
    use crate::search::TopKParams;

    #[test]
    fn reference_schedule_fires_at_fifths_and_epoch_starts() {
        let s = DynamicSchedule::default();
        s.check().unwrap();
        // 459 steps per epoch (MRPC, batch 8): interval round(91.8) = 92.
        let due: Vec<usize> = (0..2 * 459).filter(|&t| s.due(t, 459)).collect();
        assert_eq!(due, vec![0, 92, 184, 276, 368, 459, 551, 643, 735, 827]);
        let s = DynamicSchedule {
            every: Every::Steps(100),
            at_epoch_start: false,
        };
        let due: Vec<usize> = (0..350).filter(|&t| s.due(t, 120)).collect();
        assert_eq!(due, vec![0, 100, 200, 300]);
        let s = DynamicSchedule {
            every: Every::EpochFraction(2.0),
            at_epoch_start: false,
        };
        let due: Vec<usize> = (0..50).filter(|&t| s.due(t, 10)).collect();
        assert_eq!(due, vec![0, 20, 40]);
        assert!(DynamicSchedule {
            every: Every::Steps(0),
            at_epoch_start: true
        }
        .check()
        .is_err());
        let e = DynamicSchedule {
            every: Every::EpochFraction(-0.5),
            at_epoch_start: true,
        }
        .check()
        .unwrap_err()
        .to_string();
        assert!(e.contains("-0.5"), "{e}");
    }

    #[test]
    fn reallocations_are_recorded_and_roundtrip() {
        let d = ModelDims::MINILM_L6;
        let space = SearchSpace::lora_qv();
        let slots = space.slots(6);
        let topk = TopKParams::new().check().unwrap();
        let mut rng = Rng::new(5);
        let mut log = ReallocationLog::new();
        let schedule = DynamicSchedule::default();
        for step in 0..20 {
            if !schedule.due(step, 10) {
                continue;
            }
            // Scores drift so the top 3 move.
            let scores = Scores {
                proxy: "grad-norm".into(),
                values: slots
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (*s, ((i + step) % 12) as f64))
                    .collect(),
                rank_gains: None,
                num_batches: 4,
                seconds: 0.0,
            };
            let a = select_top_k(&topk, &space, &d, &scores, &mut rng).unwrap();
            assert_eq!(a.method, "dynamic");
            assert_eq!(a.ranks.len(), 3);
            log.push(ReallocationRecord::new(step, 10, scores, &a));
        }
        assert_eq!(log.len(), 10);
        assert_eq!(log.records[5].epoch, 1);
        assert!(log.churn()[1] > 0);
        let times = log.times_enabled();
        assert_eq!(times.len(), 12);
        assert_eq!(times.values().sum::<usize>(), 10 * 3);
        let back = ReallocationLog::from_json(&log.to_json().unwrap()).unwrap();
        assert_eq!(back, log);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("realloc.json");
        log.save(&p).unwrap();
        assert_eq!(ReallocationLog::load(&p).unwrap(), log);
    }
}
