//! alpha-test (the reference's non-zero-cost proxy): for each slot, the smallest scale alpha in
//! {0, 0.1, ..., 1} that keeps the metric within `tolerance` of the unscaled model, found by
//! binary search (at most 4 evaluations per slot, each over `eval_batches` batches, forward passes
//! only). A slot that can be scaled to 0 without harm scores 0; one that needs its full
//! contribution scores 1.
//!
//! As the authors define it (the default):
//! - what is scaled is the whole output of the slot's module, `alpha * (W0 x + b + delta(x))`
//!   ([`AlphaScope::Layer`]); for the identity shortcuts (`residual1`, `residual2`) the identity
//!   path cannot be scaled from here, so only their adapter is (the zero shortcuts' output is
//!   their adapter's);
//! - the tolerance is relative ([`Tolerance::Relative`]: accuracy may fall to `base * (1 - tol)`,
//!   loss rise to `base * (1 + tol)`);
//! - the adapters are trained briefly first (`train_steps` AdamW steps at `train_lr` on the
//!   scoring batches, dropout on, on a copy: the caller's model is not changed).
//!
//! The first definition here ([`AlphaTest::adapter_only`], proxy name `alpha-test-adapter`)
//! scaled only the adapter's contribution against an absolute tolerance, without training: with
//! fresh adapters (B = 0) scaling changes nothing, so every slot scored 0.
//!
//! Cost: slots x (up to 4) x `eval_batches` forward passes, plus one baseline and `train_steps`
//! training steps; with 12 slots and 4 batches, about 200 forward passes, several times a
//! gradient pass over 32 batches (see the `bench score` subcommand).
//!
//! BERT only (its brief training and metrics run on BERT's classifier): on a decoder,
//! [`super::score_on`] returns an [`crate::Error::Config`] naming the architecture.

use super::engine::{check_inputs, working_copy};
use super::target::{bert_only, Scorable};
use super::{FreshAdapters, Proxy, Scores};
use crate::adapters::SlotId;
use crate::data::Batch;
use crate::model::SequenceClassifier;
use crate::rng::Rng;
use crate::{Error, Result};
use candle_core::{DType, Tensor, D};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use std::collections::BTreeMap;
use std::time::Instant;

/// The metric the alpha-test keeps within tolerance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AlphaMetric {
    /// Accuracy on the evaluation batches (must not drop by more than the tolerance).
    #[default]
    Accuracy,
    /// Mean loss (must not rise by more than the tolerance). Used for regression tasks.
    Loss,
}

/// What the alpha-test scales.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AlphaScope {
    /// The module's whole output `W0 x + b + delta(x)` (the authors').
    #[default]
    Layer,
    /// The adapter's contribution `delta(x)` only.
    Adapter,
}

/// How the tolerance compares a scaled model's metric with the unscaled one's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Tolerance {
    /// A fraction of the unscaled metric (the authors').
    #[default]
    Relative,
    /// In the metric's own units.
    Absolute,
}

/// | name | default | meaning | range |
/// |---|---|---|---|
/// | `tolerance` | 0.01 | allowed accuracy drop (or loss rise), see `tolerance_kind` | >= 0 |
/// | `tolerance_kind` | relative | [`Tolerance`] | |
/// | `scope` | layer | what is scaled ([`AlphaScope`]) | |
/// | `metric` | accuracy | see [`AlphaMetric`] | |
/// | `eval_batches` | 4 | how many of the scoring batches each evaluation uses | >= 1 |
/// | `train_steps` | 8 | AdamW steps on the adapters before testing (cycling over the scoring batches) | >= 0 |
/// | `train_lr` | 1e-3 | learning rate of those steps | (0, 1] |
#[derive(Debug, Clone, Copy)]
pub struct AlphaTest {
    pub tolerance: f64,
    pub tolerance_kind: Tolerance,
    pub scope: AlphaScope,
    pub metric: AlphaMetric,
    pub eval_batches: usize,
    pub train_steps: usize,
    pub train_lr: f64,
    pub fresh: FreshAdapters,
}

impl Default for AlphaTest {
    /// The authors' definition.
    fn default() -> Self {
        AlphaTest {
            tolerance: 0.01,
            tolerance_kind: Tolerance::Relative,
            scope: AlphaScope::Layer,
            metric: AlphaMetric::Accuracy,
            eval_batches: 4,
            train_steps: 8,
            train_lr: 1e-3,
            fresh: FreshAdapters::default(),
        }
    }
}

impl AlphaTest {
    /// The first definition here: the adapter's contribution only, an absolute tolerance, no
    /// training first (blind on fresh adapters). Proxy name `alpha-test-adapter`.
    pub fn adapter_only() -> Self {
        AlphaTest {
            tolerance_kind: Tolerance::Absolute,
            scope: AlphaScope::Adapter,
            train_steps: 0,
            ..AlphaTest::default()
        }
    }

    fn check(&self) -> Result<()> {
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return Err(Error::invalid("tolerance", self.tolerance, "a number >= 0"));
        }
        if self.eval_batches == 0 {
            return Err(Error::invalid("eval_batches", 0, "at least 1"));
        }
        if !(self.train_lr.is_finite() && self.train_lr > 0.0 && self.train_lr <= 1.0) {
            return Err(Error::invalid(
                "train_lr",
                self.train_lr,
                "a number in (0, 1]",
            ));
        }
        Ok(())
    }

    /// Whether `m` (a scaled model's metric) is within tolerance of `base`.
    fn passes(&self, m: f64, base: f64, use_loss: bool) -> bool {
        let slack = match self.tolerance_kind {
            Tolerance::Absolute => self.tolerance,
            Tolerance::Relative => self.tolerance * base.abs(),
        };
        if use_loss {
            m <= base + slack
        } else {
            m >= base - slack
        }
    }

    /// `train_steps` AdamW steps on `work`'s enabled adapters (not the head), one scoring batch
    /// per step, dropout on with masks from `rng`.
    fn train_briefly(
        &self,
        work: &SequenceClassifier,
        batches: &[Batch],
        rng: &mut Rng,
    ) -> Result<()> {
        if self.train_steps == 0 {
            return Ok(());
        }
        let head = work.head();
        let vars: Vec<candle_core::Var> = work
            .trainable_vars()
            .into_iter()
            .map(|(_, v)| v)
            .filter(|v| v.as_tensor().id() != head.0.as_tensor().id())
            .filter(|v| v.as_tensor().id() != head.1.as_tensor().id())
            .collect();
        let mut opt = AdamW::new(
            vars,
            ParamsAdamW {
                lr: self.train_lr,
                weight_decay: 0.0,
                ..ParamsAdamW::default()
            },
        )?;
        for step in 0..self.train_steps {
            let b = &batches[step % batches.len()];
            let logits = work.forward(
                &b.input_ids,
                &b.token_type_ids,
                &b.attention_mask,
                Some(rng),
            )?;
            let loss = work.loss(&logits, &b.labels)?;
            opt.backward_step(&loss)?;
        }
        Ok(())
    }

    /// Scales `slot`'s output by `c` (see [`AlphaScope`]); `orig` holds its unscaled state.
    fn set_scale(
        &self,
        work: &mut SequenceClassifier,
        slot: SlotId,
        orig: &(f64, Option<(Tensor, Option<Tensor>)>),
        c: f64,
    ) -> Result<()> {
        work.set_slot_scale(slot, orig.0 * c)?;
        if let Some((w, b)) = &orig.1 {
            let lin = work
                .bert
                .slot_linear_mut(slot)
                .ok_or_else(|| Error::UnknownSlot(slot.to_string()))?;
            lin.weight = (w * c)?;
            lin.bias = match b {
                Some(b) => Some((b * c)?),
                None => None,
            };
        }
        Ok(())
    }

    fn metric_value(&self, m: &SequenceClassifier, batches: &[Batch]) -> Result<f64> {
        let regression = m.num_labels() == 1;
        let mut total = 0.0;
        let mut n = 0usize;
        for b in batches {
            let logits = m.forward(&b.input_ids, &b.token_type_ids, &b.attention_mask, None)?;
            let size = b.size();
            if self.metric == AlphaMetric::Loss || regression {
                let l = m
                    .loss(&logits, &b.labels)?
                    .to_dtype(DType::F64)?
                    .to_scalar::<f64>()?;
                total += l * size as f64;
            } else {
                let pred = logits
                    .argmax(D::Minus1)?
                    .to_dtype(DType::U32)?
                    .to_vec1::<u32>()?;
                let gold = b.labels.to_dtype(DType::U32)?.to_vec1::<u32>()?;
                total += pred.iter().zip(&gold).filter(|(p, g)| p == g).count() as f64;
            }
            n += size;
        }
        Ok(total / n.max(1) as f64)
    }
}

impl Proxy for AlphaTest {
    fn name(&self) -> String {
        let first = self.scope == AlphaScope::Adapter
            && self.tolerance_kind == Tolerance::Absolute
            && self.train_steps == 0;
        if first {
            "alpha-test-adapter"
        } else {
            "alpha-test"
        }
        .into()
    }

    fn score(
        &self,
        model: &mut dyn Scorable,
        batches: &[Batch],
        slots: &[SlotId],
        rng: &mut Rng,
    ) -> Result<Scores> {
        let model = bert_only(model, &self.name())?;
        check_inputs(&*model, batches, slots)?;
        self.check()?;
        let start = Instant::now();
        let mut work = working_copy(model, slots, &self.fresh)?;
        self.train_briefly(&work, batches, rng)?;
        let evals = &batches[..self.eval_batches.min(batches.len())];
        let use_loss = self.metric == AlphaMetric::Loss || work.num_labels() == 1;
        let base = self.metric_value(&work, evals)?;
        let mut values = BTreeMap::new();
        for &slot in slots {
            let scale = work.adapter(slot).map(|a| a.scale).unwrap_or(1.0);
            let frozen = match self.scope {
                AlphaScope::Layer => work
                    .bert
                    .slot_linear_mut(slot)
                    .map(|l| (l.weight.clone(), l.bias.clone())),
                AlphaScope::Adapter => None,
            };
            let orig = (scale, frozen);
            // Grid index i = alpha * 10; index 10 (the unscaled slot) always passes.
            let (mut lo, mut hi) = (0usize, 10usize);
            while lo < hi {
                let mid = (lo + hi) / 2;
                self.set_scale(&mut work, slot, &orig, mid as f64 / 10.0)?;
                let m = self.metric_value(&work, evals)?;
                if self.passes(m, base, use_loss) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            self.set_scale(&mut work, slot, &orig, 1.0)?;
            values.insert(slot, hi as f64 / 10.0);
        }
        Ok(Scores {
            proxy: self.name(),
            values,
            rank_gains: None,
            num_batches: evals.len(),
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}
