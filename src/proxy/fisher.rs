//! Fisher (Turner et al. 2020, as in Abdelfattah et al. 2021) per slot: for the slot's output
//! z `[b, s, d_out]`, sum over channels c of 0.5 * mean over examples n of
//! (sum over tokens of z * dL/dz)^2, summed over the scoring batches. z is the whole slot output
//! (W0 x + b + adapter; shortcuts: x or 0 plus adapter), so the score is not blind at B = 0, except
//! for fresh zero shortcuts, whose output is 0.

use super::{
    score_by_gradients, scores_from, FreshAdapters, GradientStats, Needs, Proxy, Scorable, Scores,
};
use crate::adapters::SlotId;
use crate::data::Batch;
use crate::rng::Rng;
use crate::Result;

#[derive(Debug, Clone, Copy, Default)]
pub struct Fisher {
    pub fresh: FreshAdapters,
}

impl Proxy for Fisher {
    fn name(&self) -> String {
        "fisher".into()
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
            fisher: true,
            ..Needs::default()
        })
    }

    fn from_gradients(&self, stats: &GradientStats, _rng: &mut Rng) -> Result<Scores> {
        scores_from(self.name(), stats, |g| Ok(g.fisher))
    }
}
