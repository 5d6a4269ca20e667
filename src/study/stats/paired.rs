//! The paired comparison over seeds: a seed fixes data order, head initialisation and dropout
//! masks for every method, so two methods are compared through their per-seed differences.
//! Here: the mean difference with its Student-t interval (n - 1 degrees of freedom), the
//! smallest difference the design detects at a given power, and the seeds another effect needs.

use super::student_t::t_quantile;
use crate::{Error, Result};

/// The two-sided level of every interval in the report, and the power of the design figures.
pub const LEVEL: f64 = 0.95;
pub const POWER: f64 = 0.8;

/// Mean and sample standard deviation (n - 1) of per-seed differences, with the t interval.
#[derive(Debug, Clone, PartialEq)]
pub struct PairedT {
    /// Paired seeds.
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation of the differences (SD_d); `None` with one seed.
    pub sd: Option<f64>,
    /// The two-sided confidence level of `interval`.
    pub level: f64,
    /// mean ± t_{(1+level)/2, n-1} · SD_d / √n; `None` with one seed (no spread to scale by).
    pub interval: Option<(f64, f64)>,
}

impl PairedT {
    /// Whether the interval excludes 0 (`false` when there is no interval).
    pub fn excludes_zero(&self) -> bool {
        self.interval.is_some_and(|(lo, hi)| lo > 0.0 || hi < 0.0)
    }

    /// Whether the interval contains `x` (`false` when there is no interval).
    pub fn contains(&self, x: f64) -> bool {
        self.interval.is_some_and(|(lo, hi)| lo <= x && x <= hi)
    }
}

/// The paired t analysis of per-seed differences `diffs` (arm minus baseline) at `level`.
pub fn paired_t(diffs: &[f64], level: f64) -> Result<PairedT> {
    let n = diffs.len();
    if n == 0 || diffs.iter().any(|d| !d.is_finite()) {
        return Err(Error::InvalidParam {
            name: "diffs".into(),
            value: format!("{diffs:?}"),
            expected: "at least one finite per-seed difference".into(),
        });
    }
    let mean = diffs.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Ok(PairedT {
            n,
            mean,
            sd: None,
            level,
            interval: None,
        });
    }
    let sd = (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let half = t_quantile(0.5 + level / 2.0, (n - 1) as f64)? * sd / (n as f64).sqrt();
    Ok(PairedT {
        n,
        mean,
        sd: Some(sd),
        level,
        interval: Some((mean - half, mean + half)),
    })
}

/// The smallest true difference a paired design with `n` seeds and per-seed spread `sd`
/// detects with probability `power` at two-sided level `level`:
/// (t_{(1+level)/2, n-1} + t_{power, n-1}) · sd / √n. `None` below two seeds.
pub fn detectable_effect(sd: f64, n: usize, level: f64, power: f64) -> Result<Option<f64>> {
    if n < 2 {
        return Ok(None);
    }
    let df = (n - 1) as f64;
    let k = t_quantile(0.5 + level / 2.0, df)? + t_quantile(power, df)?;
    Ok(Some(k * sd / (n as f64).sqrt()))
}

/// The fewest seeds (at least 2) whose detectable effect is at most `effect`, given the
/// per-seed spread `sd`; `None` if more than `max_seeds` would be needed. The detectable
/// effect falls with n, so doubling then bisection finds it.
pub fn seeds_needed(
    sd: f64,
    effect: f64,
    level: f64,
    power: f64,
    max_seeds: usize,
) -> Result<Option<usize>> {
    let enough = |n: usize| -> Result<bool> {
        Ok(detectable_effect(sd, n, level, power)?.is_some_and(|d| d <= effect.abs()))
    };
    if max_seeds < 2 {
        return Ok(None);
    }
    let (mut lo, mut hi) = (1usize, 2usize);
    while !enough(hi)? {
        if hi >= max_seeds {
            return Ok(None);
        }
        lo = hi;
        hi = (hi * 2).min(max_seeds);
    }
    // enough(hi), and lo is 1 or a count that is not enough.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if enough(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(Some(hi))
}
