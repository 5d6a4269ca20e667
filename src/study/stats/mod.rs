//! The statistics behind the study's verdicts, written out here (no statistics crate): the
//! report calls a difference significant only when its 95% interval excludes 0.
//!
//! - [`student_t`]: Student's t CDF and quantile;
//! - [`paired`]: the paired t interval over seeds, the detectable effect at 80% power and the
//!   seeds an effect needs;
//! - [`bootstrap`]: the seeded two-level paired bootstrap (seeds, then dev examples).
//!
//! Every number is checked against SciPy: `scripts/reference_stats.py` prints the constants
//! the tests hold.

pub mod bootstrap;
pub mod paired;
pub mod student_t;

pub use bootstrap::{
    percentile, BootstrapCi, BootstrapLevels, PairedBootstrap, SeedPair, RESAMPLES,
};
pub use paired::{detectable_effect, paired_t, seeds_needed, PairedT, LEVEL, POWER};
pub use student_t::{t_cdf, t_pdf, t_quantile};

#[cfg(test)]
mod tests;
