//! # heterolora
//!
//! HeteroLoRA (Zhang et al., arXiv 2406.14956) on [candle]: score every place a LoRA adapter (or a
//! LoRA-adapted shortcut connection) could go with a cheap zero-cost proxy, enable only the most
//! promising ones under a fixed trainable-parameter budget, fine-tune, and track every run in an
//! MLflow-compatible SQLite store.
//!
//! Modules, one concept each:
//! - [`assets`]: fetching the model and the GLUE data, with checksums.
//! - [`data`]: GLUE tasks, tokenisation, batching, official metrics.
//! - [`model`]: our BERT encoder and sequence-classification head with adapter slots.
//! - [`adapters`]: slot ids, LoRA modules, shortcut connections, PEFT files.
//! - [`proxy`]: zero-cost proxies that score slots.
//! - [`search`]: budgets and allocators that turn scores into an [`search::Allocation`].
//! - [`train`]: the fine-tuning engine.
//! - [`study`]: the budget-matched comparison of methods over seeds, resumable, and its report.
//! - [`tracking`]: the run tracker.
//! - [`plot`] and [`display`]: charts and rich notebook output.
//! - [`notebook`] and [`prelude`]: the evcxr entry points (`use heterolora::prelude::*;`).

pub mod adapters;
pub mod assets;
pub mod bench;
pub mod cli;
pub mod data;
pub mod device;
pub mod display;
pub mod error;
pub mod model;
pub mod notebook;
pub mod plot;
pub mod predict;
pub mod prelude;
pub mod proxy;
pub mod rng;
pub mod search;
pub mod study;
pub mod tracking;
pub mod train;

pub use error::{Error, Result};

// Re-exported so notebooks can name these types without a second `:dep`.
pub use candle_core;
pub use candle_nn;
pub use polars;
