//! The proxies, dynamic re-allocation, and the `score` and `search` commands.
//! One test binary per layer, so that a test build links a few binaries rather than one per file.
//!
//!   cargo test --test proxy                   # all of them
//!   cargo test --test proxy proxy_dynamic::   # one file

#[path = "../model_util/mod.rs"]
mod model_util;

mod proxy_dynamic;
mod proxy_formulas;
mod proxy_linalg;
mod proxy_minilm;
mod score_cli;
mod search_cli;
