//! `grad-norm`: ||dL/dA||_F + ||dL/dB||_F of each slot's adapter, gradients of the task loss
//! summed over the scoring batches. With a fresh adapter (B = 0) dL/dA = 0 exactly, so the score
//! is ||dL/dB||_F = (alpha / r) ||dL/dz^T (x A^T)||_F: it still sees the data through A.

use super::fro;
use super::{
    score_by_gradients, scores_from, FreshAdapters, GradientStats, Needs, Proxy, Scorable, Scores,
};
use crate::adapters::SlotId;
use crate::data::Batch;
use crate::rng::Rng;
use crate::Result;

#[derive(Debug, Clone, Copy, Default)]
pub struct GradNorm {
    pub fresh: FreshAdapters,
}

impl Proxy for GradNorm {
    fn name(&self) -> String {
        "grad-norm".into()
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
            Ok(fro(g.grad_a.as_ref().expect("factors"))?
                + fro(g.grad_b.as_ref().expect("factors"))?)
        })
    }
}
