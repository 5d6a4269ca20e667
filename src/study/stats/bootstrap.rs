//! The paired bootstrap of a mean difference over seeds. Two levels, as the study's variance has
//! two sources: resample the seeds (training randomness), then within each resampled seed
//! resample the dev examples, the same examples for both arms (evaluation-set randomness). With
//! one value per seed (no per-example predictions) the second level has nothing to resample and
//! this is the ordinary seed-level bootstrap. A metric that is not a mean over examples (F1,
//! Pearson) is recomputed on every resample from both arms' predictions
//! ([`PairedBootstrap::metric_pairs`]). Seeded, so a report is reproducible.

use crate::rng::Rng;
use crate::{Error, Result};

/// The default number of resamples.
pub const RESAMPLES: usize = 10_000;

/// Which levels were resampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootstrapLevels {
    /// Seeds only: one difference per seed.
    Seeds,
    /// Seeds, then the dev examples within each seed, jointly for both arms.
    SeedsAndExamples,
}

impl BootstrapLevels {
    pub fn describe(self) -> &'static str {
        match self {
            BootstrapLevels::Seeds => "seed-level bootstrap (seeds resampled)",
            BootstrapLevels::SeedsAndExamples => {
                "two-level bootstrap (seeds, then dev examples within each seed, jointly for both arms)"
            }
        }
    }
}

/// A percentile bootstrap interval of the mean paired difference.
#[derive(Debug, Clone, PartialEq)]
pub struct BootstrapCi {
    pub levels: BootstrapLevels,
    pub resamples: usize,
    pub level: f64,
    /// The observed statistic: the mean over seeds of the per-seed mean differences.
    pub estimate: f64,
    /// Standard deviation of the resampled statistics (the bootstrap standard error).
    pub se: f64,
    /// The (1 - level) / 2 and (1 + level) / 2 percentiles of the resampled statistics.
    pub interval: (f64, f64),
}

/// The bootstrap's settings: resamples, interval level and the RNG seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedBootstrap {
    pub resamples: usize,
    pub level: f64,
    pub seed: u64,
}

impl Default for PairedBootstrap {
    fn default() -> Self {
        PairedBootstrap {
            resamples: RESAMPLES,
            level: super::LEVEL,
            seed: 0,
        }
    }
}

impl PairedBootstrap {
    pub fn resamples(mut self, n: usize) -> Self {
        self.resamples = n;
        self
    }

    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Seed-level bootstrap of one difference per seed.
    pub fn seeds(&self, diffs: &[f64]) -> Result<BootstrapCi> {
        let groups: Vec<Vec<f64>> = diffs.iter().map(|d| vec![*d]).collect();
        let mut ci = self.two_level(&groups)?;
        ci.levels = BootstrapLevels::Seeds;
        Ok(ci)
    }

    /// Two-level bootstrap from the two arms' per-example scores (e.g. 1 for a correct
    /// prediction), `arm[seed][example]`, the same dev examples in the same order for both arms
    /// of a seed: resampling an example index takes it for both arms at once.
    pub fn arms(&self, arm: &[Vec<f64>], baseline: &[Vec<f64>]) -> Result<BootstrapCi> {
        if arm.len() != baseline.len() || arm.iter().zip(baseline).any(|(a, b)| a.len() != b.len())
        {
            return Err(Error::InvalidParam {
                name: "per-example scores".into(),
                value: format!("{} and {} seeds", arm.len(), baseline.len()),
                expected: "the same seeds and dev examples for both arms".into(),
            });
        }
        let groups: Vec<Vec<f64>> = arm
            .iter()
            .zip(baseline)
            .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x - y).collect())
            .collect();
        self.two_level(&groups)
    }

    /// Two-level bootstrap of per-example differences `groups[seed][example]` (arm minus
    /// baseline on the same example): each resample draws n seeds with replacement, then for
    /// each drawn seed as many of its examples with replacement, and records the mean over the
    /// drawn seeds of their resampled mean differences.
    pub fn two_level(&self, groups: &[Vec<f64>]) -> Result<BootstrapCi> {
        if groups.is_empty()
            || groups
                .iter()
                .any(|g| g.is_empty() || g.iter().any(|x| !x.is_finite()))
            || self.resamples < 2
        {
            return Err(Error::InvalidParam {
                name: "bootstrap input".into(),
                value: format!("{} seed(s), {} resamples", groups.len(), self.resamples),
                expected:
                    "at least one seed, each with finite differences, and 2 or more resamples"
                        .into(),
            });
        }
        let seed_means: Vec<f64> = groups.iter().map(|g| mean(g)).collect();
        let n = groups.len();
        let levels = if groups.iter().all(|g| g.len() == 1) {
            BootstrapLevels::Seeds
        } else {
            BootstrapLevels::SeedsAndExamples
        };
        let mut rng = Rng::derive(self.seed, "paired-bootstrap");
        let mut stats = Vec::with_capacity(self.resamples);
        for _ in 0..self.resamples {
            let mut total = 0.0;
            for _ in 0..n {
                let g = &groups[rng.below(n)];
                total += if g.len() == 1 {
                    g[0]
                } else {
                    (0..g.len()).map(|_| g[rng.below(g.len())]).sum::<f64>() / g.len() as f64
                };
            }
            stats.push(total / n as f64);
        }
        self.summarize(levels, mean(&seed_means), stats)
    }

    /// Two-level bootstrap of the difference in a dev metric computed from per-example outputs
    /// (`metric(predictions, labels)`: accuracy, F1, Pearson ...), one [`SeedPair`] per seed:
    /// each resample draws n seeds with replacement, then for each drawn seed as many dev
    /// examples with replacement, the same ones for both arms, and records the mean over the
    /// drawn seeds of `metric(arm) - metric(baseline)` on the drawn examples. The estimate is
    /// that mean on the full dev sets. With accuracy on class ids it is exactly
    /// [`PairedBootstrap::arms`] on per-example correctness (the same draws). A resample whose
    /// metric is undefined (NaN: a constant prediction under Pearson) is left out; more than
    /// one in a hundred is an error.
    pub fn metric_pairs(
        &self,
        pairs: &[SeedPair<'_>],
        metric: &dyn Fn(&[f32], &[f32]) -> f64,
    ) -> Result<BootstrapCi> {
        let bad = pairs.is_empty()
            || self.resamples < 2
            || pairs.iter().any(|p| {
                p.labels.is_empty()
                    || p.arm.len() != p.labels.len()
                    || p.baseline.len() != p.labels.len()
            });
        if bad {
            return Err(Error::InvalidParam {
                name: "per-example predictions".into(),
                value: format!("{} seed(s), {} resamples", pairs.len(), self.resamples),
                expected:
                    "at least one seed whose two arms have a prediction for every dev label, \
                           and 2 or more resamples"
                        .into(),
            });
        }
        let full: Vec<f64> = pairs
            .iter()
            .map(|p| metric(p.arm, p.labels) - metric(p.baseline, p.labels))
            .collect();
        if let Some(i) = full.iter().position(|d| !d.is_finite()) {
            return Err(Error::InvalidParam {
                name: "per-example predictions".into(),
                value: format!("seed {i}: metric difference {}", full[i]),
                expected: "a metric defined on the full dev set for both arms".into(),
            });
        }
        let n = pairs.len();
        let mut rng = Rng::derive(self.seed, "paired-bootstrap");
        let mut stats = Vec::with_capacity(self.resamples);
        let (mut a, mut b, mut l) = (Vec::new(), Vec::new(), Vec::new());
        let mut undefined = 0usize;
        for _ in 0..self.resamples {
            let mut total = 0.0;
            for _ in 0..n {
                let k = rng.below(n);
                let p = &pairs[k];
                let m = p.labels.len();
                if m == 1 {
                    total += full[k];
                    continue;
                }
                a.clear();
                b.clear();
                l.clear();
                for _ in 0..m {
                    let i = rng.below(m);
                    a.push(p.arm[i]);
                    b.push(p.baseline[i]);
                    l.push(p.labels[i]);
                }
                total += metric(&a, &l) - metric(&b, &l);
            }
            if total.is_finite() {
                stats.push(total / n as f64);
            } else {
                undefined += 1;
            }
        }
        if undefined * 100 > self.resamples {
            return Err(Error::InvalidParam {
                name: "per-example predictions".into(),
                value: format!("{undefined} of {} resamples undefined", self.resamples),
                expected: "a metric defined on almost every resample of the dev examples".into(),
            });
        }
        let levels = if pairs.iter().all(|p| p.labels.len() == 1) {
            BootstrapLevels::Seeds
        } else {
            BootstrapLevels::SeedsAndExamples
        };
        self.summarize(levels, mean(&full), stats)
    }

    /// The interval and standard error of resampled statistics.
    fn summarize(
        &self,
        levels: BootstrapLevels,
        estimate: f64,
        mut stats: Vec<f64>,
    ) -> Result<BootstrapCi> {
        let m = mean(&stats);
        let se =
            (stats.iter().map(|s| (s - m).powi(2)).sum::<f64>() / (stats.len() - 1) as f64).sqrt();
        stats.sort_by(f64::total_cmp);
        let tail = (1.0 - self.level) / 2.0;
        Ok(BootstrapCi {
            levels,
            resamples: stats.len(),
            level: self.level,
            estimate,
            se,
            interval: (percentile(&stats, tail), percentile(&stats, 1.0 - tail)),
        })
    }
}

/// One seed's per-example outputs of both arms on the same dev examples, in the same order:
/// predicted class ids or scores, and the gold labels.
#[derive(Debug, Clone, Copy)]
pub struct SeedPair<'a> {
    pub arm: &'a [f32],
    pub baseline: &'a [f32],
    pub labels: &'a [f32],
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// The q-quantile (0 <= q <= 1) of sorted values with linear interpolation between order
/// statistics (NumPy's default, so the reference script computes the same thing).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}
