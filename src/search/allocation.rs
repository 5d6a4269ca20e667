//! [`Allocation`]: which slots are on, at which rank and alpha, and where that choice came from.

use crate::adapters::{ModelDims, SlotId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Rank and alpha of one enabled slot (PEFT's `r` and `lora_alpha`; scaling = alpha / r).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SlotRank {
    pub r: usize,
    pub lora_alpha: f64,
}

/// An adapter allocation: rank per enabled slot over a set of candidate slots.
///
/// Slots absent from `ranks` are off (rank 0). `candidates` is the search space the allocation was
/// chosen from, so that tables and plots can show what was left off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Allocation {
    pub dims: ModelDims,
    pub candidates: Vec<SlotId>,
    pub ranks: BTreeMap<SlotId, SlotRank>,
    /// The allocator that produced it (`uniform`, `topk`, `heterogeneous`, `dynamic`, `manual`).
    pub method: String,
    /// The proxy whose scores it was chosen on, if any.
    pub proxy: Option<String>,
    /// Free-form provenance: data, number of batches, seed, budget.
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
}

impl Allocation {
    /// Rank of `slot` (0 when off).
    pub fn rank(&self, slot: &SlotId) -> usize {
        self.ranks.get(slot).map_or(0, |s| s.r)
    }

    /// Exact number of trainable adapter parameters: sum over enabled slots of r * (d_in + d_out).
    pub fn trainable_params(&self) -> usize {
        self.ranks
            .iter()
            .map(|(slot, s)| slot.params_at_rank(s.r, &self.dims))
            .sum()
    }
}
