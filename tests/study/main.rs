//! The study: end to end, twins, claims and workers, the `run`/`study` checks, and Slurm.
//! One test binary per layer, so that a test build links a few binaries rather than one per file.
//!
//!   cargo test --test study                   # all of them
//!   cargo test --test study study_claims::    # one file

#[path = "../study_util/mod.rs"]
mod study_util;

mod study_claims;
mod study_cli;
mod study_resume;
mod study_slurm_cluster;
mod study_tiny;
mod study_twins;
mod study_workers_cli;
