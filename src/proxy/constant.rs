//! `constant`: every slot scores 1. The allocators break ties at random (seeded), so top-k on
//! these scores is the "random allocation" baseline. Costs nothing.

use super::{Proxy, Scorable, Scores};
use crate::adapters::SlotId;
use crate::data::Batch;
use crate::rng::Rng;
use crate::Result;

#[derive(Debug, Clone, Copy, Default)]
pub struct Constant;

impl Proxy for Constant {
    fn name(&self) -> String {
        "constant".into()
    }

    fn score(
        &self,
        model: &mut dyn Scorable,
        batches: &[Batch],
        slots: &[SlotId],
        _rng: &mut Rng,
    ) -> Result<Scores> {
        model.check_inputs(batches, slots)?;
        Ok(Constant::ones(slots))
    }
}

impl Constant {
    /// A score of 1 for every slot: what `score` gives once its inputs are checked.
    pub fn ones(slots: &[SlotId]) -> Scores {
        Scores {
            proxy: "constant".into(),
            values: slots.iter().map(|s| (*s, 1.0)).collect(),
            rank_gains: None,
            num_batches: 0,
            seconds: 0.0,
        }
    }
}
