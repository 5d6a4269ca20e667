//! The trainer (tiny and real), Ctrl-C checkpoints, and `heterolora predict`.
//! One test binary per layer, so that a test build links a few binaries rather than one per file.
//!
//!   cargo test --test train                   # all of them
//!   cargo test --test train train_interrupt:: # one file

#[path = "../study_util/mod.rs"]
mod study_util;

mod predict_tiny;
mod train_interrupt;
mod train_real;
mod train_tiny;
