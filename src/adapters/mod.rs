//! Adapter slots: where a LoRA module or a LoRA-adapted shortcut connection can go.
//!
//! [`slot`] names the slots and counts their parameters; the modules themselves and the PEFT files
//! live beside it.

pub mod slot;

pub use slot::{ModelDims, SearchSpace, SlotId, SlotKind};
