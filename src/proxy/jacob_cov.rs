//! jacob_cov (Mellor et al. 2021), adapted per slot.
//!
//! The original scores a whole network: J_n = d(sum of outputs)/d(input_n) for each example n of
//! a batch, C = the correlation matrix of the J_n, score = -sum_i (ln(l_i + k) + 1/(l_i + k)) over
//! C's eigenvalues, k = 1e-5 (higher = the network tells inputs apart better). A slot has no
//! network of its own, so here the slot's output z plays the input: J_n = d(sum of logits_n)/dz_n
//! `[s, d_out]` flattened, i.e. jacob_cov of the sub-network downstream of the slot, as seen
//! through the activations at the slot. One extra backward per batch serves every slot; the score
//! is the mean over the first `batches` scoring batches (default 1, as the original scores one
//! batch). It does not involve A or B, so it is not blind at B = 0.

use super::{
    score_by_gradients, scores_from, FreshAdapters, GradientStats, Needs, Proxy, Scorable, Scores,
};
use crate::adapters::SlotId;
use crate::data::Batch;
use crate::rng::Rng;
use crate::Result;

#[derive(Debug, Clone, Copy)]
pub struct JacobCov {
    /// How many of the scoring batches the Jacobians are taken on.
    pub batches: usize,
    pub fresh: FreshAdapters,
}

impl Default for JacobCov {
    fn default() -> Self {
        JacobCov {
            batches: 1,
            fresh: FreshAdapters::default(),
        }
    }
}

impl Proxy for JacobCov {
    fn name(&self) -> String {
        "jacob-cov".into()
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
            jacobian_batches: self.batches.max(1),
            ..Needs::default()
        })
    }

    fn from_gradients(&self, stats: &GradientStats, _rng: &mut Rng) -> Result<Scores> {
        let mut s = scores_from(self.name(), stats, |g| Ok(g.jacob_cov))?;
        s.num_batches = self.batches.max(1).min(stats.num_batches);
        Ok(s)
    }
}
