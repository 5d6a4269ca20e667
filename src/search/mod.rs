//! Budgets and allocators: from proxy scores to an [`Allocation`].
//!
//! - [`Budget`] / [`BudgetSpec`]: exact trainable-parameter budgets.
//! - [`UniformParams`] -> [`Uniform`]: the same rank everywhere (the equal-budget baseline).
//! - [`TopKParams`] -> [`TopK`]: the paper's static top-k at a fixed rank, combined or separated
//!   pooling of LoRA and shortcut slots, seeded random tie-breaks.
//! - [`HeterogeneousParams`] -> [`Heterogeneous`]: a rank per slot from a set, maximising the summed
//!   score under the budget.
//! - [`Manual`] / [`Allocation::from_spec`]: hand-written allocations (`q,v:r=8,alpha=16`).
//! - [`dynamic`]: re-allocation inside training (schedule, top-k selection, log).
//! - [`table`]: text and HTML grids of allocations and scores.
//!
//! ```
//! use heterolora::adapters::{ModelDims, SearchSpace};
//! use heterolora::search::{TopKParams, UniformParams};
//! let dims = ModelDims::MINILM_L6;
//! let space = SearchSpace::lora_qv();
//! let uniform = UniformParams::new().r(2).check()?.allocate(&space, &dims)?;
//! assert_eq!(uniform.trainable_params(), 12 * 2 * (384 + 384));
//! let topk = TopKParams::new().p(0.25).r(8).check()?;
//! assert_eq!(topk.counts(12, 0)?, (3, 0));
//! # Ok::<(), heterolora::Error>(())
//! ```

pub mod budget;
pub mod candidates;
pub mod dynamic;
pub mod heterogeneous;
mod knapsack;
pub mod manual;
pub mod table;
pub mod topk;
pub mod uniform;

// The allocation and its alpha rule sit below the model (which builds adapters from them);
// re-exported here, where allocators produce them.
pub use crate::adapters::allocation::{self, Allocation, AllocationSummary, SlotRank};
pub use crate::adapters::alpha::{self, AlphaRule, AlphaRules};
pub use budget::{Budget, BudgetSpec};
pub use dynamic::{
    DynamicSchedule, Every, GradParts, ReallocationLog, ReallocationRecord, ScoringMode,
};
pub use heterogeneous::{Heterogeneous, HeterogeneousParams, Solver};
pub use manual::Manual;
pub use topk::{top_counts, Pooling, TopK, TopKParams};
pub use uniform::{Uniform, UniformParams};
