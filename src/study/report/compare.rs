//! The paired comparison of a method with its baseline: a seed fixes data order, head
//! initialisation and dropout masks for every method, so the two are compared through their
//! per-seed differences (the mean with its 95% t interval, a seeded bootstrap, the smallest
//! difference the design detects at 80% power, and the seeds the paper's +1.6 would need).

use super::PAPER_GAIN;
use crate::study::stats::{
    detectable_effect, paired_t, seeds_needed, BootstrapCi, PairedBootstrap, PairedT, SeedPair,
    LEVEL, POWER,
};
use crate::train::DevPredictions;

/// The most seeds [`Comparison::seeds_for_paper_gain`] looks for.
pub const MAX_SEEDS: usize = 10_000;

/// A method against its baseline on the seeds both finished.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub baseline: String,
    /// The seeds both have a last-epoch value for, ascending.
    pub seeds: Vec<u64>,
    /// Per seed: method minus baseline, last-epoch primary metric, in points.
    pub diffs: Vec<f64>,
    /// Mean difference, SD_d and the 95% Student-t interval (none with one seed).
    pub t: PairedT,
    /// The percentile bootstrap of the mean difference (two seeds or more).
    pub bootstrap: Option<BootstrapCi>,
    /// (t_0.975 + t_0.8) · SD_d / √n: the smallest difference detected at 80% power.
    pub detectable: Option<f64>,
    /// Seeds at which the paper's +1.6 points becomes detectable at 80% power, given SD_d
    /// (`None` below two seeds or beyond [`MAX_SEEDS`]).
    pub seeds_for_paper_gain: Option<usize>,
    /// The same paired t analysis of dev cross-entropy at the last epoch, on the seeds both
    /// recorded it for.
    pub loss: Option<PairedT>,
    /// The seeds `loss` is over.
    pub loss_seeds: Vec<u64>,
}

/// What the interval says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The 95% interval lies above 0.
    Better,
    /// The 95% interval lies below 0.
    Worse,
    /// The 95% interval includes 0.
    Inconclusive,
    /// One paired seed: a difference but no interval.
    OneSeed,
}

impl Verdict {
    /// The table's one-word form.
    pub fn short(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::Inconclusive => "inconclusive",
            Verdict::OneSeed => "one seed",
        }
    }

    /// The verdict as a clause after the numbers.
    pub fn phrase(self) -> &'static str {
        match self {
            Verdict::Better => "significant, better",
            Verdict::Worse => "significant, worse",
            Verdict::Inconclusive => "inconclusive",
            Verdict::OneSeed => "no verdict",
        }
    }
}

/// Pairs `a` and `b` by seed where both are known: (seeds, a values, b values).
fn pair<T: Copy>(
    seeds_a: &[u64],
    a: &[Option<T>],
    seeds_b: &[u64],
    b: &[Option<T>],
) -> (Vec<u64>, Vec<T>, Vec<T>) {
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    for (s, x) in seeds_a.iter().zip(a) {
        let y = seeds_b.iter().position(|t| t == s).and_then(|i| b[i]);
        if let (Some(x), Some(y)) = (x, y) {
            out.0.push(*s);
            out.1.push(*x);
            out.2.push(y);
        }
    }
    out
}

/// One method's last-epoch values by seed, as a comparison reads them.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    pub method: &'a str,
    pub seeds: &'a [u64],
    /// The primary metric per seed (non-finite: missing).
    pub values: &'a [f64],
    /// Dev cross-entropy per seed, where recorded.
    pub losses: &'a [Option<f64>],
    /// Each dev example's prediction at the last epoch, per seed, where recorded.
    pub dev: &'a [Option<DevPredictions>],
}

/// The primary metric in points from per-example predictions and labels (what the two-level
/// bootstrap recomputes on every resample).
pub type PointsMetric<'a> = &'a dyn Fn(&[f32], &[f32]) -> f64;

/// The two-level bootstrap when both arms recorded their dev predictions on every paired seed
/// (the same labels), else the seed-level one over `diffs`.
fn bootstrap(
    seeds: &[u64],
    diffs: &[f64],
    row: Series<'_>,
    base: Series<'_>,
    metric: Option<PointsMetric<'_>>,
) -> Option<BootstrapCi> {
    if diffs.len() < 2 {
        return None;
    }
    fn dev_of(s: Series<'_>, seed: u64) -> Option<&DevPredictions> {
        let i = s.seeds.iter().position(|t| *t == seed)?;
        s.dev.get(i)?.as_ref()
    }
    let pairs: Option<Vec<SeedPair<'_>>> = seeds
        .iter()
        .map(|&seed| {
            let (a, b) = (dev_of(row, seed)?, dev_of(base, seed)?);
            (a.labels == b.labels && a.predictions.len() == a.labels.len()).then_some(SeedPair {
                arm: &a.predictions,
                baseline: &b.predictions,
                labels: &a.labels,
            })
        })
        .collect();
    if let (Some(pairs), Some(metric)) = (pairs, metric) {
        if let Ok(ci) = PairedBootstrap::default().metric_pairs(&pairs, metric) {
            return Some(ci);
        }
    }
    PairedBootstrap::default().seeds(diffs).ok()
}

impl Comparison {
    /// `row` against `base` on their common seeds; `None` if they share no seed. `metric`
    /// recomputes the primary metric (in points) from per-example predictions, for the
    /// two-level bootstrap where both arms recorded them.
    pub fn between(
        row: Series<'_>,
        base: Series<'_>,
        metric: Option<PointsMetric<'_>>,
    ) -> Option<Comparison> {
        let known = |v: &[f64]| -> Vec<Option<f64>> {
            v.iter().map(|x| x.is_finite().then_some(*x)).collect()
        };
        let (seeds, a, b) = pair(
            row.seeds,
            &known(row.values),
            base.seeds,
            &known(base.values),
        );
        let diffs: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
        let t = paired_t(&diffs, LEVEL).ok()?;
        let bootstrap = bootstrap(&seeds, &diffs, row, base, metric);
        let (detectable, seeds_for_paper_gain) = match t.sd {
            Some(sd) => (
                detectable_effect(sd, t.n, LEVEL, POWER).ok().flatten(),
                seeds_needed(sd, PAPER_GAIN, LEVEL, POWER, MAX_SEEDS)
                    .ok()
                    .flatten(),
            ),
            None => (None, None),
        };
        let (loss_seeds, la, lb) = pair(row.seeds, row.losses, base.seeds, base.losses);
        let loss_diffs: Vec<f64> = la.iter().zip(&lb).map(|(x, y)| x - y).collect();
        Some(Comparison {
            baseline: base.method.to_string(),
            seeds,
            diffs,
            t,
            bootstrap,
            detectable,
            seeds_for_paper_gain,
            loss: paired_t(&loss_diffs, LEVEL).ok(),
            loss_seeds,
        })
    }

    pub fn verdict(&self) -> Verdict {
        match self.t.interval {
            None => Verdict::OneSeed,
            Some((lo, _)) if lo > 0.0 => Verdict::Better,
            Some((_, hi)) if hi < 0.0 => Verdict::Worse,
            Some(_) => Verdict::Inconclusive,
        }
    }
}
