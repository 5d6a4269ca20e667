//! Our BERT, its adapters and shortcuts, and PEFT interoperability on all-MiniLM-L6-v2.
//! One test binary per layer, so that a test build links a few binaries rather than one per file.
//!
//!   cargo test --test model                   # all of them
//!   cargo test --test model model_hf_parity:: # one file

#[path = "../model_util/mod.rs"]
mod model_util;

mod device_parity;
mod model_hf_parity;
mod model_shortcuts;
mod peft_base_model;
mod peft_interop;
