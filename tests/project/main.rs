//! The repository's own checks and the charts: one-way layers, the CUDA build script's CPU-side pieces, and every chart on fixed data.
//! One test binary per layer, so that a test build links a few binaries rather than one per file.
//!
//!   cargo test --test project                 # all of them
//!   cargo test --test project layers::        # one file

mod cuda_build_script;
mod layers;
mod plot_charts;
