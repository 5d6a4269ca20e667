//! Budgets and allocators: from proxy scores to an [`Allocation`].

pub mod allocation;

pub use allocation::{Allocation, SlotRank};
