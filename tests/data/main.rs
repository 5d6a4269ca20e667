//! GLUE data, metrics and tokenisation, and the `fetch` commands.
//! One test binary per layer, so that a test build links a few binaries rather than one per file.
//!
//!   cargo test --test data                    # all of them
//!   cargo test --test data fetch_glue::       # one file

mod fetch_glue;
mod fetch_model;
mod fetch_on_first_use;
mod glue_data;
mod glue_metrics;
mod glue_tokenize;
