//! The decoder backbones (OPT, Llama, Qwen2) on the tiny random-weight fixtures of
//! `tests/fixtures/decoders/` (written by `scripts/make_decoder_fixtures.py`): numerics against
//! transformers and PEFT, tokenisation, proxies, the whole pipeline, the commands and the notebook
//! workspace. One test binary for all of them, so a test build links it once.
//!
//!   cargo test --test decoders                # all of them
//!   cargo test --test decoders tokenize::      # one part

#[path = "../model_util/mod.rs"]
mod model_util;
mod util;

mod bench;
mod parity;
mod pipeline;
mod predict_base;
mod proxy_train;
mod search_cli;
mod tokenize;
mod train_job;
mod workspace;
