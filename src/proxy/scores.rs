//! [`Scores`]: one proxy's score per slot.

use crate::adapters::SlotId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The scores one proxy gave every candidate slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Proxy name (`grad-norm`, `snip`, `synflow`, `w0-grad-spectrum`, ...).
    pub proxy: String,
    pub values: BTreeMap<SlotId, f64>,
    /// For proxies that can say what each extra rank is worth: per slot, the score gained by
    /// ranks 1..=len (cumulative, non-decreasing). Used by the heterogeneous-rank allocator.
    #[serde(default)]
    pub rank_gains: Option<BTreeMap<SlotId, Vec<f64>>>,
    /// Training batches the scores were computed on.
    pub num_batches: usize,
    /// Wall time of the scoring, seconds.
    pub seconds: f64,
}
