//! A comparison in words. The verdict comes from the 95% Student-t interval of the paired
//! differences only: significant when it excludes 0, otherwise inconclusive, with how small a
//! difference the design could have detected and how many seeds the paper's +1.6 would need.
//! (The spread of each arm over seeds is no test: the arms share their seeds.)

use super::compare::{Comparison, Verdict, MAX_SEEDS};
use super::PAPER_GAIN;

/// `[lo, hi]` with signs.
pub fn fmt_interval((lo, hi): (f64, f64), digits: usize) -> String {
    format!("[{lo:+.digits$}, {hi:+.digits$}]")
}

impl Comparison {
    /// The paired numbers: mean difference, seeds, t interval and bootstrap interval.
    pub fn numbers_sentence(&self) -> String {
        let n = self.t.n;
        let mut s = format!(
            "paired difference {:+.2} points over {n} seed{}",
            self.t.mean,
            if n == 1 { "" } else { "s" }
        );
        match self.t.interval {
            Some(ci) => s += &format!(", 95% t interval {} ({} df)", fmt_interval(ci, 2), n - 1),
            None => s += ", no t interval with one seed",
        }
        if let Some(b) = &self.bootstrap {
            s += &format!(
                ", {} {}",
                match b.levels {
                    crate::study::stats::BootstrapLevels::Seeds => "seed-level bootstrap",
                    crate::study::stats::BootstrapLevels::SeedsAndExamples => "two-level bootstrap",
                },
                fmt_interval(b.interval, 2)
            );
        }
        s
    }

    /// The verdict from the t interval; on MRPC also where the paper's +1.6 lies.
    pub fn verdict_sentence(&self, on_mrpc: bool) -> String {
        let g = PAPER_GAIN;
        let paper = |s: &mut String, inconclusive: bool| {
            if !on_mrpc {
                return;
            }
            let Some((lo, hi)) = self.t.interval else {
                return;
            };
            *s += &if self.t.contains(g) {
                if inconclusive {
                    format!("; the paper's +{g} is inside the interval too: neither it nor 0 is ruled out")
                } else {
                    format!("; the paper's +{g} is inside the interval")
                }
            } else if hi < g {
                format!("; the interval lies below the paper's +{g}")
            } else {
                debug_assert!(lo > g);
                format!("; the interval lies above the paper's +{g}")
            };
        };
        match self.verdict() {
            Verdict::OneSeed => "no verdict: one paired seed gives a difference but no interval (a t interval needs 2 seeds or more)".to_string(),
            v @ (Verdict::Better | Verdict::Worse) => {
                let mut s = format!(
                    "significant: {} than {} (the 95% interval excludes 0)",
                    if v == Verdict::Better { "better" } else { "worse" },
                    self.baseline
                );
                paper(&mut s, false);
                s
            }
            Verdict::Inconclusive => {
                let mut s = "inconclusive: the 95% interval includes 0".to_string();
                if let (Some(sd), Some(det)) = (self.t.sd, self.detectable) {
                    let target = if on_mrpc {
                        format!("the paper's +{g}")
                    } else {
                        format!("a {g}-point difference (the paper's MRPC gain)")
                    };
                    let need = match self.seeds_for_paper_gain {
                        Some(k) => format!("about {k} seeds"),
                        None => format!("more than {MAX_SEEDS} seeds"),
                    };
                    s += &format!(
                        "; with SD_d {sd:.2} over {} seeds the design detects {det:.2} points at 80% power, and detecting {target} would take {need}",
                        self.t.n
                    );
                }
                paper(&mut s, true);
                s
            }
        }
    }

    /// Dev loss at the last epoch (`loss` names it: cross-entropy, mean squared error), paired
    /// (lower is better), saying so when some records lack the last-epoch value.
    pub fn loss_sentence(&self, loss: &str) -> Option<String> {
        let l = self.loss.as_ref()?;
        let mut s = format!(
            "dev {loss} at the last epoch: paired difference {:+.3} over {} seed{}",
            l.mean,
            l.n,
            if l.n == 1 { "" } else { "s" }
        );
        let mut notes = Vec::new();
        match l.interval {
            Some(ci) => {
                s += &format!(", 95% t interval {}", fmt_interval(ci, 3));
                notes.push(if !l.excludes_zero() {
                    "includes 0"
                } else if l.mean < 0.0 {
                    "lower: significant"
                } else {
                    "higher: significant"
                });
            }
            None => s += ", no interval",
        }
        let partial = format!(
            "{} of {} seeds: the other record{} keep{} the {loss} only at the best epoch, which was not the last",
            l.n,
            self.t.n,
            if self.t.n - l.n == 1 { "" } else { "s" },
            if self.t.n - l.n == 1 { "s" } else { "" },
        );
        if l.n < self.t.n {
            notes.push(&partial);
        }
        if !notes.is_empty() {
            s += &format!(" ({})", notes.join("; "));
        }
        Some(s)
    }
}
