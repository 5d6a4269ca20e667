//! The W0-gradient family: scores from G = dL/dW0, the gradient of a slot's frozen map (summed
//! over the scoring batches; via the model's probes, so G = sum over tokens of dL/dz x^T). A LoRA
//! update B A follows G: its first step is -lr * G projected onto rank r. These scores therefore
//! see every slot at initialisation, when B = 0 blinds SNIP and SynFlow. For shortcuts the frozen
//! map is the identity (residual1/2) or zero (shortcut1/2); G is informative either way.
//!
//! - `w0-grad-norm`: ||G||_F.
//! - `w0-grad-spectrum`: sum_{i <= r} sigma_i(G)^2, the energy of G's top r singular values: the
//!   first-order loss decrease available to a rank-r update of given size. It fills
//!   [`Scores::rank_gains`] with the cumulative energies of ranks 1..=`max_rank`, which the
//!   heterogeneous allocator uses to price every extra rank.

use super::linalg::top_sq_singular_values;
use super::{
    fro, score_by_gradients, scores_from, FreshAdapters, GradientStats, Needs, Proxy, Scorable,
    Scores,
};
use crate::adapters::SlotId;
use crate::data::Batch;
use crate::rng::Rng;
use crate::{Error, Result};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, Default)]
pub struct W0GradNorm {
    pub fresh: FreshAdapters,
}

impl Proxy for W0GradNorm {
    fn name(&self) -> String {
        "w0-grad-norm".into()
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
            fro(g.grad_w0.as_ref().expect("frozen"))
        })
    }
}

/// `w0-grad-spectrum`.
///
/// | name | default | meaning |
/// |---|---|---|
/// | `r` | 8 | rank whose energy is the score |
/// | `max_rank` | 16 | length of the per-rank gains (capped by min(d_in, d_out)) |
#[derive(Debug, Clone, Copy)]
pub struct W0GradSpectrum {
    pub r: usize,
    pub max_rank: usize,
    pub fresh: FreshAdapters,
}

impl Default for W0GradSpectrum {
    fn default() -> Self {
        W0GradSpectrum {
            r: 8,
            max_rank: 16,
            fresh: FreshAdapters::default(),
        }
    }
}

impl Proxy for W0GradSpectrum {
    fn name(&self) -> String {
        "w0-grad-spectrum".into()
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

    fn from_gradients(&self, stats: &GradientStats, rng: &mut Rng) -> Result<Scores> {
        if self.r == 0 {
            return Err(Error::invalid("r", 0, "a rank >= 1"));
        }
        let start = std::time::Instant::now();
        let k = self.max_rank.max(self.r);
        let mut gains = BTreeMap::new();
        let mut values = BTreeMap::new();
        for (slot, g) in &stats.slots {
            let sv = top_sq_singular_values(g.grad_w0.as_ref().expect("frozen"), k, rng)?;
            let mut cum = Vec::with_capacity(sv.len());
            let mut acc = 0.0;
            for s in sv {
                acc += s;
                cum.push(acc);
            }
            let v = cum
                .get(self.r.min(cum.len()).saturating_sub(1))
                .copied()
                .unwrap_or(0.0);
            values.insert(*slot, v);
            cum.truncate(self.max_rank.max(1));
            gains.insert(*slot, cum);
        }
        let mut s = scores_from(self.name(), stats, |_| Ok(0.0))?;
        s.values = values;
        s.rank_gains = Some(gains);
        s.seconds = stats.seconds + start.elapsed().as_secs_f64();
        Ok(s)
    }
}
