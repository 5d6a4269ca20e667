//! alpha-test (the reference's non-zero-cost proxy): for each slot, the smallest scale alpha in
//! {0, 0.1, ..., 1} of the slot's adapter contribution that keeps the metric within `tolerance` of
//! the unscaled model, found by binary search (at most 4 evaluations per slot, each over
//! `eval_batches` batches, forward passes only). A slot that can be scaled to 0 without harm
//! scores 0; one that needs its full contribution scores 1.
//!
//! Cost: slots x (up to 4) x `eval_batches` forward passes, plus one baseline; with 12 slots and
//! 4 batches, about 200 forward passes, several times a gradient pass over 32 batches (see the
//! `bench score` subcommand). With fresh adapters (B = 0) scaling changes nothing, so every slot
//! scores 0: like SNIP it only informs on partly trained adapters.

use super::engine::{check_inputs, working_copy};
use super::{FreshAdapters, Proxy, Scores};
use crate::adapters::SlotId;
use crate::data::Batch;
use crate::model::SequenceClassifier;
use crate::rng::Rng;
use crate::{Error, Result};
use candle_core::{DType, D};
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

/// | name | default | meaning |
/// |---|---|---|
/// | `tolerance` | 0.01 | allowed accuracy drop (or loss rise) |
/// | `metric` | accuracy | see [`AlphaMetric`] |
/// | `eval_batches` | 4 | how many of the scoring batches each evaluation uses |
#[derive(Debug, Clone, Copy)]
pub struct AlphaTest {
    pub tolerance: f64,
    pub metric: AlphaMetric,
    pub eval_batches: usize,
    pub fresh: FreshAdapters,
}

impl Default for AlphaTest {
    fn default() -> Self {
        AlphaTest {
            tolerance: 0.01,
            metric: AlphaMetric::Accuracy,
            eval_batches: 4,
            fresh: FreshAdapters::default(),
        }
    }
}

impl AlphaTest {
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
        "alpha-test".into()
    }

    fn score(
        &self,
        model: &mut SequenceClassifier,
        batches: &[Batch],
        slots: &[SlotId],
        _rng: &mut Rng,
    ) -> Result<Scores> {
        check_inputs(model, batches, slots)?;
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return Err(Error::invalid("tolerance", self.tolerance, "a number >= 0"));
        }
        if self.eval_batches == 0 {
            return Err(Error::invalid("eval_batches", 0, "at least 1"));
        }
        let start = Instant::now();
        let mut work = working_copy(model, slots, &self.fresh)?;
        let evals = &batches[..self.eval_batches.min(batches.len())];
        let use_loss = self.metric == AlphaMetric::Loss || work.num_labels() == 1;
        let base = self.metric_value(&work, evals)?;
        let mut values = BTreeMap::new();
        for &slot in slots {
            let orig = work.adapter(slot).map(|a| a.scale).unwrap_or(1.0);
            // Grid index i = alpha * 10; index 10 (the unscaled slot) always passes.
            let (mut lo, mut hi) = (0usize, 10usize);
            while lo < hi {
                let mid = (lo + hi) / 2;
                work.set_slot_scale(slot, orig * mid as f64 / 10.0)?;
                let m = self.metric_value(&work, evals)?;
                let ok = if use_loss {
                    m <= base + self.tolerance
                } else {
                    m >= base - self.tolerance
                };
                if ok {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            work.set_slot_scale(slot, orig)?;
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
