//! [`TrainHook`]: code that runs inside the training loop, before optimiser steps.
//!
//! Dynamic re-allocation (HeteroLoRA's dynamic variant: every N steps switch every adapter on,
//! rescore, keep the top k) plugs in here: the hook gets the model mutably, the training data and
//! the logger, and returns the new allocation when it changed which adapters are on. The trainer
//! then refreshes the variables it optimises (optimiser moments of switched-off adapters are
//! kept for when they come back, as PyTorch keeps them for parameters without gradient) and logs
//! the allocation as an artifact.

use crate::data::{Batcher, EncodedDataset};
use crate::model::{AdaptedClassifier, SequenceClassifier};
use crate::search::Allocation;
use crate::train::logger::RunLogger;
use crate::Result;
use candle_core::Device;

/// What a hook sees of the training loop.
pub struct HookState<'a> {
    /// Optimiser steps done (the step about to run is `step`, 0-based).
    pub step: usize,
    /// 0-based epoch in progress.
    pub epoch: usize,
    /// Micro-batches of `epoch` already consumed (0 at the start of an epoch).
    pub micro_in_epoch: usize,
    pub steps_per_epoch: usize,
    pub total_steps: usize,
    /// Learning rate the coming step will use.
    pub lr: f64,
    /// The training split and the batcher that orders it (its `epoch(k)` is deterministic, so a
    /// hook may look at upcoming batches without changing them).
    pub train: &'a EncodedDataset,
    pub batcher: &'a Batcher,
    pub device: &'a Device,
    /// The allocation in force.
    pub allocation: &'a Allocation,
    pub logger: &'a mut dyn RunLogger,
}

impl HookState<'_> {
    /// Whether no batch of the current epoch has been consumed yet.
    pub fn is_epoch_start(&self) -> bool {
        self.micro_in_epoch == 0
    }

    /// Whether the coming step is a multiple of `every` (never for `every == 0`), counting the
    /// first step (step 0) as one.
    pub fn every(&self, every: usize) -> bool {
        every > 0 && self.step % every == 0
    }
}

/// Runs before every optimiser step of a [`crate::train::Trainer`] on a model `M` (BERT's by
/// default; any [`AdaptedClassifier`]).
pub trait TrainHook<M: AdaptedClassifier = SequenceClassifier> {
    /// A stable name: the key of the hook's state in checkpoints and the prefix of what it logs.
    fn name(&self) -> &str;

    /// Called before every optimiser step. Return `Some(allocation)` when the hook changed which
    /// adapters are enabled (or their ranks) to the given allocation; `None` otherwise.
    fn before_step(
        &mut self,
        model: &mut M,
        state: &mut HookState<'_>,
    ) -> Result<Option<Allocation>>;

    /// State to save in a checkpoint, so that a resumed run continues the hook exactly.
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Restore what [`TrainHook::state`] returned.
    fn load_state(&mut self, _state: serde_json::Value) -> Result<()> {
        Ok(())
    }
}
