//! Adapter slots: where a LoRA module or a LoRA-adapted shortcut connection can go.
//!
//! [`slot`] names the slots and counts their parameters; [`backbone`] maps them onto each
//! architecture's modules and sizes; [`lora`] holds one slot's low-rank pair;
//! [`shortcut`] documents where shortcuts enter the layer; [`peft`] reads and writes PEFT's files.

pub mod allocation;
pub mod allocation_display;
pub mod alpha;
pub mod backbone;
pub mod lora;
pub mod peft;
pub mod peft_base;
pub mod shortcut;
pub mod slot;

pub use allocation::{candidates, candidates_in, Allocation, AllocationSummary, SlotRank};
pub use alpha::{AlphaRule, AlphaRules};
pub use backbone::{Architecture, SlotSizes, SlotTable};
pub use lora::LoraAdapter;
pub use shortcut::ShortcutPlacement;
pub use slot::{ModelDims, SearchSpace, SlotId, SlotKind};
