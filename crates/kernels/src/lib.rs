//! Fused, vectorised CPU kernels for a BERT training step, with their backward passes.
//!
//! candle builds LayerNorm, softmax, GELU, dropout and attention out of primitive element-wise
//! ops, each a full pass over a freshly allocated tensor, and runs batched attention matmuls one
//! small gemm at a time. The kernels here do each of those in one pass (or one task per batch
//! item and head), on plain `f32` slices, parallel over rows with rayon, and compiled for AVX2
//! and AVX-512 with run-time dispatch (the default x86-64 target only has SSE2).
//!
//! They live in their own crate so that the dev profile can build them at opt-level 3 while the
//! main crate stays at opt-level 1 (tensor loops at low optimisation are several times slower).
//! heterolora wraps them as candle custom ops (`heterolora::model::fused`).

#[macro_use]
mod simd;

pub mod attention;
pub mod dropout;
pub mod gelu;
pub mod layer_norm;
pub mod linear;
pub mod math;

pub use dropout::Dropout;
pub use simd::{isa, Isa};

/// Rows per rayon task: enough work per task to amortise scheduling, enough tasks to balance.
pub(crate) fn rows_per_task(rows: usize, cols: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    // About 16k elements a task at least; at most 4 tasks a thread.
    let min_rows = (16_384 / cols.max(1)).max(1);
    let even = rows.div_ceil(threads * 4).max(1);
    even.max(min_rows)
}
