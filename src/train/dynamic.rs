//! Dynamic re-allocation inside training (HeteroLoRA's dynamic variant).
//!
//! At every point of a [`DynamicSchedule`] (reference: every 0.2 epoch and at each epoch start):
//! switch every candidate slot on (creating a missing adapter at the top-k rank, so that what is
//! scored is what will be trained), rescore on the current weights with a proxy (grad-norm by
//! default) on the first N training batches, keep the top k on ([`crate::search::dynamic::select_top_k`]).
//! Disabled slots keep their weights. Every re-allocation's scores and enabled set are recorded
//! in a [`ReallocationLog`] and, through a [`RunLogger`], as metrics (`realloc.score.<slot>`,
//! `realloc.enabled.<slot>`, `realloc.churn`, and for proxies built on the factor gradients the
//! parts `realloc.grad_a.<slot>` = ||sum dL/dA||_F and `realloc.grad_b.<slot>` = ||sum dL/dB||_F)
//! at the training step and as the JSON artifact `reallocations.json`.
//!
//! Scoring runs in evaluation mode by default ([`ScoringMode::Eval`], what the committed dynamic
//! results used); [`DynamicReallocator::with_mode`] with [`ScoringMode::Train`] scores with
//! dropout on, as the authors do, masks drawn from the re-allocator's seeded generator.

use crate::adapters::{SearchSpace, SlotId};
use crate::data::Batch;
use crate::model::AdaptedClassifier;
use crate::proxy::Scores;
use crate::proxy::{
    by_name, fro, gradient_pass_in_mode, score_on, FreshAdapters, Proxy, ScoringData,
};
use crate::rng::Rng;
use crate::search::dynamic::select_top_k;
use crate::search::{
    Allocation, DynamicSchedule, GradParts, ReallocationLog, ReallocationRecord, ScoringMode, TopK,
    TopKParams,
};
use crate::train::logger::RunLogger;
use crate::{Error, Result};
use std::collections::BTreeMap;

/// The re-allocation state of one training run.
pub struct DynamicReallocator {
    pub schedule: DynamicSchedule,
    pub topk: TopK,
    pub space: SearchSpace,
    pub proxy: Box<dyn Proxy>,
    /// N: scoring batches taken from the start of the training split.
    pub num_batches: usize,
    /// Examples per scoring batch; `None`: the training batch size.
    pub batch_size: Option<usize>,
    pub log: ReallocationLog,
    /// Tie-breaks and proxy randomness (and, in training mode, the scoring dropout masks).
    pub rng: Rng,
    /// Dropout off (default) or on while scoring.
    pub mode: ScoringMode,
    batches: Option<Vec<Batch>>,
}

impl DynamicReallocator {
    /// The reference setup: grad-norm, 32 batches, `schedule`, `topk` over `space`.
    pub fn new(
        schedule: DynamicSchedule,
        topk: TopK,
        space: SearchSpace,
        seed: u64,
    ) -> Result<Self> {
        schedule.check()?;
        Ok(DynamicReallocator {
            schedule,
            topk,
            space,
            proxy: by_name("grad-norm")?,
            num_batches: 32,
            batch_size: None,
            log: ReallocationLog::new(),
            rng: Rng::derive(seed, "proxy.dynamic"),
            mode: ScoringMode::Eval,
            batches: None,
        })
    }

    /// Scores with dropout off ([`ScoringMode::Eval`], the default) or on ([`ScoringMode::Train`],
    /// the authors'). Training mode needs a proxy computed from the gradient pass (grad-norm,
    /// SNIP, Fisher, ...).
    pub fn with_mode(mut self, mode: ScoringMode) -> Self {
        self.mode = mode;
        self
    }

    pub fn with_proxy(mut self, proxy: Box<dyn Proxy>) -> Self {
        self.proxy = proxy;
        self
    }

    pub fn with_num_batches(mut self, n: usize) -> Self {
        self.num_batches = n;
        self.batches = None;
        self
    }

    /// Uses these scoring batches instead of taking them from the training split.
    pub fn with_batches(mut self, batches: Vec<Batch>) -> Self {
        self.batches = Some(batches);
        self
    }

    /// The scoring batches, built from `data` the first time.
    pub fn scoring_batches(
        &mut self,
        data: impl FnOnce(usize, usize) -> Result<ScoringData>,
        train_batch_size: usize,
    ) -> Result<&[Batch]> {
        if self.batches.is_none() {
            let bs = self.batch_size.unwrap_or(train_batch_size);
            self.batches = Some(data(bs, self.num_batches)?.batches);
        }
        Ok(self.batches.as_deref().unwrap_or(&[]))
    }

    /// Every candidate slot on, at the top-k rank and alpha (a p = 1 top-k allocation).
    pub fn all_on<M: AdaptedClassifier>(&self, model: &M) -> Result<Allocation> {
        let dims = model.slot_table();
        let slots = dims.slots(&self.space);
        let ones = Scores {
            proxy: "constant".into(),
            values: slots.iter().map(|s| (*s, 1.0)).collect(),
            rank_gains: None,
            num_batches: 0,
            seconds: 0.0,
        };
        let params = TopKParams {
            p: 1.0,
            ..self.topk.params().clone()
        };
        params.check()?.allocate(&self.space, &dims, &ones)
    }

    /// The log and the tie-break generator: what a checkpoint saves of the hook.
    pub fn state(&self) -> serde_json::Value {
        serde_json::json!({ "log": self.log, "rng": self.rng })
    }

    /// Restores what [`DynamicReallocator::state`] returned.
    pub fn load_state(&mut self, state: serde_json::Value) -> Result<()> {
        if state.is_null() {
            return Ok(());
        }
        #[derive(serde::Deserialize)]
        struct Saved {
            log: ReallocationLog,
            rng: Rng,
        }
        let s: Saved = serde_json::from_value(state).map_err(|e| Error::Config {
            field: "checkpoint hooks.dynamic".into(),
            reason: format!("not a dynamic re-allocation state: {e}"),
        })?;
        self.log = s.log;
        self.rng = s.rng;
        Ok(())
    }

    /// Whether a re-allocation is due before step `step`.
    pub fn due(&self, step: usize, steps_per_epoch: usize) -> bool {
        self.schedule.due(step, steps_per_epoch)
    }

    /// One re-allocation on the current weights: all candidates on, rescore, keep the top k.
    /// `model` ends with exactly the top-k candidates enabled (other adapters outside the space
    /// are left as they were). Logs to `logger` when given.
    pub fn reallocate<M: AdaptedClassifier>(
        &mut self,
        model: &mut M,
        step: usize,
        steps_per_epoch: usize,
        logger: Option<&mut dyn RunLogger>,
    ) -> Result<Allocation> {
        let batches = self.batches.take().ok_or_else(|| {
            Error::Other("dynamic re-allocation has no scoring batches yet".into())
        })?;
        let res = self.reallocate_on(model, &batches, step, steps_per_epoch, logger);
        self.batches = Some(batches);
        res
    }

    fn reallocate_on<M: AdaptedClassifier>(
        &mut self,
        model: &mut M,
        batches: &[Batch],
        step: usize,
        steps_per_epoch: usize,
        logger: Option<&mut dyn RunLogger>,
    ) -> Result<Allocation> {
        let dims = model.slot_table();
        let all = self.all_on(model)?;
        for (slot, sr) in &all.ranks {
            match model.slot_rank(*slot) {
                Some((r, _)) if r == sr.r => model.set_enabled(*slot, true)?,
                _ => model.add_slot(*slot, sr.r, sr.lora_alpha)?,
            }
        }
        let slots: Vec<SlotId> = all.ranks.keys().copied().collect();
        let (scores, parts) = self.score(model, batches, &slots)?;
        let alloc = select_top_k(&self.topk, &self.space, &dims, &scores, &mut self.rng)?;
        for &slot in &slots {
            model.set_enabled(slot, alloc.is_enabled(&slot))?;
        }
        let record = ReallocationRecord::new(step, steps_per_epoch, scores, &alloc)
            .with_details(self.mode, parts);
        self.log.push(record);
        if let Some(logger) = logger {
            self.log_last(logger, step)?;
        }
        Ok(alloc)
    }

    /// Scores `slots` (all switched on in `model`) in the re-allocator's mode, with the A and B
    /// parts of the factor gradients when the proxy is computed from them. For gradient proxies
    /// in evaluation mode this is exactly `proxy.score` (one gradient pass, then the proxy's
    /// formula), so earlier logs are reproduced.
    fn score<M: AdaptedClassifier>(
        &mut self,
        model: &mut M,
        batches: &[Batch],
        slots: &[SlotId],
    ) -> Result<(Scores, BTreeMap<SlotId, GradParts>)> {
        let Some(needs) = self.proxy.gradient_needs() else {
            if self.mode == ScoringMode::Train {
                return Err(Error::invalid(
                    "dynamic scoring mode",
                    format!("train with proxy {}", self.proxy.name()),
                    "a proxy computed from the gradient pass (grad-norm, snip, fisher, ...) for \
                     training-mode scoring, or eval mode",
                ));
            }
            let scores = score_on(self.proxy.as_ref(), model, batches, slots, &mut self.rng)?;
            return Ok((scores, BTreeMap::new()));
        };
        // Every slot already has its adapter (switched on above): no fresh ones are made.
        let fresh = FreshAdapters::default();
        let dropout = (self.mode == ScoringMode::Train).then_some(&mut self.rng);
        let stats = gradient_pass_in_mode(model, batches, slots, needs, &fresh, dropout)?;
        let mut parts = BTreeMap::new();
        for (slot, g) in &stats.slots {
            if let (Some(ga), Some(gb)) = (&g.grad_a, &g.grad_b) {
                parts.insert(
                    *slot,
                    GradParts {
                        a: fro(ga)?,
                        b: fro(gb)?,
                    },
                );
            }
        }
        let scores = self.proxy.from_gradients(&stats, &mut self.rng)?;
        Ok((scores, parts))
    }

    /// Logs the last re-allocation: per-slot scores, on/off and (when recorded) the A and B parts
    /// of the factor gradients as metrics at `step`, the churn, and the whole log as
    /// `reallocations.json`.
    pub fn log_last(&self, logger: &mut dyn RunLogger, step: usize) -> Result<()> {
        let Some(rec) = self.log.records.last() else {
            return Ok(());
        };
        let mut metrics = Vec::new();
        for (slot, v) in &rec.scores.values {
            metrics.push((format!("realloc.score.{slot}"), *v));
            let on = rec.enabled.contains(slot) as u8 as f64;
            metrics.push((format!("realloc.enabled.{slot}"), on));
        }
        for (slot, p) in &rec.grad_parts {
            metrics.push((format!("realloc.grad_a.{slot}"), p.a));
            metrics.push((format!("realloc.grad_b.{slot}"), p.b));
        }
        let churn = self.log.churn().last().copied().unwrap_or(0);
        metrics.push(("realloc.churn".into(), churn as f64));
        metrics.push(("realloc.seconds".into(), rec.scores.seconds));
        logger.log_metrics(&metrics, step as i64)?;
        logger.log_text(&self.log.to_json()?, "reallocations.json")?;
        Ok(())
    }
}

impl<M: AdaptedClassifier> crate::train::TrainHook<M> for DynamicReallocator {
    fn name(&self) -> &str {
        "dynamic"
    }

    /// At each scheduled step: re-allocate on the current weights and hand the trainer the new
    /// allocation (it then optimises only the enabled adapters).
    fn before_step(
        &mut self,
        model: &mut M,
        state: &mut crate::train::HookState<'_>,
    ) -> Result<Option<Allocation>> {
        if !self.due(state.step, state.steps_per_epoch) {
            return Ok(None);
        }
        let (train, device) = (state.train, state.device);
        self.scoring_batches(
            |bs, n| ScoringData::from_dataset(train, bs, n, device),
            state.batcher.batch_size(),
        )?;
        let alloc = self.reallocate(
            model,
            state.step,
            state.steps_per_epoch,
            Some(&mut *state.logger),
        )?;
        Ok(Some(alloc))
    }

    fn state(&self) -> serde_json::Value {
        DynamicReallocator::state(self)
    }

    fn load_state(&mut self, state: serde_json::Value) -> Result<()> {
        DynamicReallocator::load_state(self, state)
    }
}
