//! SNIP (Lee et al. 2019) on adapter factors: sum |A * dL/dA| + sum |B * dL/dB|, and on the frozen
//! map: sum |W0 * dL/dW0| (`snip-w0`).
//!
//! With a fresh adapter (B = 0), dL/dA = 0 and B * dL/dB = 0, so `snip` scores every fresh slot
//! exactly 0: it carries information only on partly trained adapters (dynamic re-allocation).
//! `snip-w0` is not blind for LoRA modules and identity shortcuts (sum of |diag dL/dWs|) but is 0
//! for zero shortcuts, whose frozen map is 0.

use super::{
    abs_dot, score_by_gradients, scores_from, FreshAdapters, GradientStats, Needs, Proxy, Scorable,
    Scores,
};
use crate::adapters::SlotId;
use crate::data::Batch;
use crate::rng::Rng;
use crate::Result;

#[derive(Debug, Clone, Copy, Default)]
pub struct Snip {
    pub fresh: FreshAdapters,
}

impl Proxy for Snip {
    fn name(&self) -> String {
        "snip".into()
    }

    fn score(
        &self,
        model: &mut dyn Scorable,
        batches: &[Batch],
        slots: &[SlotId],
        rng: &mut Rng,
    ) -> Result<Scores> {
        score_by_gradients(self, &self.fresh, model, batches, slots, rng)
    }

    fn gradient_needs(&self) -> Option<Needs> {
        Some(Needs {
            factors: true,
            ..Needs::default()
        })
    }

    fn from_gradients(&self, stats: &GradientStats, _rng: &mut Rng) -> Result<Scores> {
        scores_from(self.name(), stats, |g| {
            Ok(abs_dot(
                g.a.as_ref().expect("factors"),
                g.grad_a.as_ref().expect("factors"),
            )? + abs_dot(
                g.b.as_ref().expect("factors"),
                g.grad_b.as_ref().expect("factors"),
            )?)
        })
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SnipW0 {
    pub fresh: FreshAdapters,
}

impl Proxy for SnipW0 {
    fn name(&self) -> String {
        "snip-w0".into()
    }

    fn score(
        &self,
        model: &mut dyn Scorable,
        batches: &[Batch],
        slots: &[SlotId],
        rng: &mut Rng,
    ) -> Result<Scores> {
        score_by_gradients(self, &self.fresh, model, batches, slots, rng)
    }

    fn gradient_needs(&self) -> Option<Needs> {
        Some(Needs {
            frozen: true,
            ..Needs::default()
        })
    }

    fn from_gradients(&self, stats: &GradientStats, _rng: &mut Rng) -> Result<Scores> {
        scores_from(self.name(), stats, |g| {
            abs_dot(
                g.w0.as_ref().expect("frozen"),
                g.grad_w0.as_ref().expect("frozen"),
            )
        })
    }
}
