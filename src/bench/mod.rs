//! Benchmarks of the library's hot paths, kept out of its core modules: a training step
//! ([`train`]: `heterolora bench train`, `scripts/bench-vs-peft.py`) and proxy scoring
//! ([`proxy`]: `cargo bench --bench proxy`); [`parity`]: logits and gradients on one device, for
//! comparing devices (`heterolora bench parity`).

pub mod parity;
pub mod proxy;
pub mod train;
