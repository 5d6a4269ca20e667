//! The report's summary: sentences written by code from the measured numbers. Verdicts come
//! from the paired 95% t interval only (see [`super::verdict`]).

use super::compare::Verdict;
use super::rows::MethodRow;
use super::{is_flat, short, StudyReport, BASELINE, SC_BASELINE};
use crate::adapters::SlotId;
use crate::study::record::ChildRecord;
use crate::study::stats::{BootstrapLevels, RESAMPLES};
use std::fmt::Write as _;

/// How the numbers are read: written once at the top of every summary.
fn method_note(metric: &str, loss: &str, bootstrap: &str) -> String {
    format!(
        "How to read it: the primary metric is dev {metric} at the last epoch (nothing is selected on the split it is reported on), \
with dev {loss} at the last epoch beside it; the best-epoch {metric} is only descriptive. A seed fixes data order, head \
initialisation and dropout masks for every method, so each method is compared seed by seed with uniform LoRA r = 2 over the \
same slot space (the larger-budget references uniform-r8 and sc-uniform-r2 with the q,v one): the mean paired difference, its 95% Student-t interval (n - 1 degrees of freedom) and a percentile bootstrap \
({RESAMPLES} resamples, seeded). A difference is called significant only when its 95% t interval excludes 0. {bootstrap}"
    )
}

/// What the bootstrap column resampled: the dev examples too where both arms' records carry
/// per-example predictions, else only the seeds.
fn bootstrap_note(rows: &[MethodRow], metric: &str) -> String {
    let (mut two, mut one) = (Vec::new(), Vec::new());
    for r in rows {
        if let Some(b) = r.comparison.as_ref().and_then(|c| c.bootstrap.as_ref()) {
            match b.levels {
                BootstrapLevels::SeedsAndExamples => two.push(r.method.as_str()),
                BootstrapLevels::Seeds => one.push(r.method.as_str()),
            }
        }
    }
    let two_level = format!(
        "the two-level bootstrap (seeds, then the dev examples within each seed, the same examples for both \
arms, {metric} recomputed on every resample)"
    );
    let seed_level = "the seed-level bootstrap, which over a handful of seeds can only range over the observed differences";
    match (two.is_empty(), one.is_empty()) {
        (true, true) => {
            "No comparison has two paired seeds yet, so there is no bootstrap interval.".to_string()
        }
        (false, true) => format!(
            "Every comparison's child records carry each dev example's prediction, so the bootstrap shown is {two_level}: \
it adds the evaluation set's sampling noise to the seeds'. It is a cross-check, not the verdict."
        ),
        (true, false) => format!(
            "The child records carry no per-example dev predictions (`heterolora study predictions` adds them from the runs' \
saved adapters), so the bootstrap shown is {seed_level}; it is a cross-check, not the verdict."
        ),
        (false, false) => format!(
            "The bootstrap shown is {two_level} for {} and {seed_level} for {}, whose records (or their baseline's) lack \
per-example dev predictions (`heterolora study predictions` adds them from the runs' saved adapters). It is a \
cross-check, not the verdict.",
            two.join(", "),
            one.join(", ")
        ),
    }
}

impl StudyReport {
    /// The measured comparison with the equal-budget baselines, in sentences made from the
    /// numbers: paired difference, intervals, verdict, detectable effect and the seeds the
    /// paper's +1.6 would need (held against that target on MRPC only), what the proxies chose.
    pub fn summary_markdown(&self) -> String {
        let rows = self.rows();
        let metric = self.metric();
        let loss = self.loss_name();
        let mut s = String::new();
        let finished = self.records.len();
        let _ = writeln!(
            s,
            "{finished} child runs finished{}.",
            self.planned
                .map_or(String::new(), |p| format!(" of {p} planned"))
        );
        let _ = writeln!(
            s,
            "\n{}",
            method_note(&metric, loss, &bootstrap_note(&rows, &metric))
        );
        let missing: Vec<String> = rows
            .iter()
            .flat_map(|r| {
                r.seeds
                    .iter()
                    .zip(&r.losses)
                    .filter(|(_, l)| l.is_none())
                    .map(move |(seed, _)| format!("{} seed {seed}", r.method))
            })
            .collect();
        if !missing.is_empty() {
            let _ = writeln!(
                s,
                "\nDev {loss} at the last epoch is not recorded for {} of {finished} children ({}): their records keep it only at the best epoch, which was not the last; their {loss} comparisons use the other seeds.",
                missing.len(),
                missing.join(", ")
            );
        }
        let find = |n: &str| rows.iter().find(|r| r.method == n);
        let Some(base) = find(BASELINE) else {
            let _ = writeln!(
                s,
                "\nThe equal-budget baseline ({BASELINE}) has not finished yet: no comparison can be made."
            );
            self.choices_markdown(&mut s);
            return s;
        };
        let on_mrpc = self.records.iter().all(|r| r.task == "mrpc");
        let _ = writeln!(
            s,
            "\nEqual-budget baseline {BASELINE} ({} adapter parameters): {}.",
            base.budget,
            describe(base, &metric, loss)
        );
        let compare = |name: &str, label: &str, s: &mut String| {
            let Some(r) = find(name) else {
                if self.plans(name) {
                    let _ = writeln!(s, "- {label} ({name}): not finished yet.");
                }
                return;
            };
            let Some(c) = &r.comparison else {
                let _ = writeln!(
                    s,
                    "- {label} ({name}): no seed in common with its baseline yet."
                );
                return;
            };
            let _ = writeln!(
                s,
                "- {label} ({name}, {} adapter parameters) against {}: {}; {}: **{}**.{}",
                r.budget,
                c.baseline,
                describe(r, &metric, loss),
                c.numbers_sentence(),
                c.verdict_sentence(on_mrpc),
                c.loss_sentence(loss)
                    .map_or(String::new(), |l| format!(" {}.", upper_first(&l))),
            );
        };
        let _ = writeln!(s, "\nHeteroLoRA against the equal-budget baseline:");
        compare("static-grad-norm", "static HeteroLoRA, grad-norm", &mut s);
        compare("dynamic-grad-norm", "dynamic HeteroLoRA, grad-norm", &mut s);
        compare("random", "random allocation (constant proxy)", &mut s);
        compare(
            "hetero-ranks-w0-grad-spectrum",
            "heterogeneous ranks",
            &mut s,
        );
        if let Some(r8) = find("uniform-r8") {
            let _ = writeln!(
                s,
                "- The 4x-budget reference uniform-r8 ({} adapter parameters): {}{}.",
                r8.budget,
                describe(r8, &metric, loss),
                r8.comparison.as_ref().map_or(String::new(), |c| format!(
                    "; {}; {}",
                    c.numbers_sentence(),
                    c.verdict().phrase()
                ))
            );
        }
        let statics: Vec<&MethodRow> = rows.iter().filter(|r| r.family == "static").collect();
        if let Some(best) = statics.iter().max_by(|a, b| a.mean.total_cmp(&b.mean)) {
            // Proxies that enable the same slots train identically: name every one at the top.
            let tied: Vec<&str> = statics
                .iter()
                .filter(|r| r.values == best.values)
                .map(|r| r.method.as_str())
                .collect();
            let who = if tied.len() > 1 {
                format!("{} (tied, same per-seed results)", tied.join(", "))
            } else {
                best.method.clone()
            };
            let _ = writeln!(
                s,
                "- Best static proxy of the {} measured (by last-epoch mean): {who} at {:.2} ± {:.2}{}; picked after the fact, so this difference is optimistic.",
                statics.len(),
                best.mean,
                best.std,
                best.comparison.as_ref().map_or(String::new(), |c| format!(
                    ", {}; {}",
                    c.numbers_sentence(),
                    c.verdict().phrase()
                ))
            );
        }
        // The shortcut methods spend about 3x the q,v budget: their baseline is uniform r = 2 over
        // the same LoRA + shortcut slots, not the q,v one.
        let sc_methods = [
            (
                "sc-dynamic-combined",
                "dynamic HeteroLoRA with shortcuts, combined",
            ),
            (
                "sc-dynamic-separated",
                "dynamic HeteroLoRA with shortcuts, separated",
            ),
        ];
        if sc_methods.iter().any(|(m, _)| find(m).is_some()) {
            match find(SC_BASELINE) {
                Some(sc) => {
                    let _ = writeln!(
                        s,
                        "\nIn the LoRA + shortcut space, against its uniform baseline {SC_BASELINE} ({} adapter parameters): {}:",
                        sc.budget,
                        describe(sc, &metric, loss)
                    );
                    for (m, label) in sc_methods {
                        compare(m, label, &mut s);
                    }
                }
                None => {
                    let _ = writeln!(
                        s,
                        "\nThe LoRA + shortcut baseline ({SC_BASELINE}) has not finished yet: the shortcut methods are not compared."
                    );
                }
            }
        }
        let significant: Vec<&str> = rows
            .iter()
            .filter(|r| {
                r.comparison
                    .as_ref()
                    .is_some_and(|c| matches!(c.verdict(), Verdict::Better | Verdict::Worse))
            })
            .map(|r| r.method.as_str())
            .collect();
        let _ = writeln!(
            s,
            "\nSignificant differences (95% t interval excluding 0): {}.",
            if significant.is_empty() {
                "none".to_string()
            } else {
                significant.join(", ")
            }
        );
        self.choices_markdown(&mut s);
        s
    }

    /// Which slots each scored method enabled, per seed; blind proxies are named.
    fn choices_markdown(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "\nWhat the proxies chose (slots enabled; L<layer>.<kind>):"
        );
        let mut any = false;
        for r in self.rows() {
            let recs: Vec<&ChildRecord> = {
                let mut v: Vec<&ChildRecord> = self
                    .records
                    .iter()
                    .filter(|x| x.method == r.method)
                    .collect();
                v.sort_by_key(|x| x.seed);
                v
            };
            if recs[0].family == "uniform" || recs[0].method == "sc-uniform-r2" {
                continue;
            }
            any = true;
            let mut parts = Vec::new();
            for rec in &recs {
                let chosen: Vec<String> = if let Some(times) = &rec.times_enabled {
                    let mut t: Vec<(&SlotId, &usize)> = times.iter().collect();
                    t.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                    t.iter()
                        .filter(|(_, &n)| n > 0)
                        .take(6)
                        .map(|(slot, n)| format!("{} {}/{}", short(slot), n, rec.num_reallocations))
                        .collect()
                } else {
                    // Top-k allocations are all r = 8: the rank is spelled out only when ranks differ.
                    let all_r8 = rec.allocation.ranks.values().all(|sr| sr.r == 8);
                    rec.allocation
                        .ranks
                        .iter()
                        .map(|(slot, sr)| {
                            if all_r8 {
                                short(slot)
                            } else {
                                format!("{} r{}", short(slot), sr.r)
                            }
                        })
                        .collect()
                };
                let blind = rec.scores.as_ref().is_some_and(is_flat) && rec.times_enabled.is_none();
                parts.push(format!(
                    "seed {}: {}{}",
                    rec.seed,
                    chosen.join(", "),
                    if blind && rec.method != "random" {
                        " (every slot scored the same: a random tie-break)"
                    } else {
                        ""
                    }
                ));
            }
            let what = if recs[0].times_enabled.is_some() {
                " (most often enabled over the re-allocations)"
            } else {
                ""
            };
            let _ = writeln!(s, "- {}{what}: {}", r.method, parts.join("; "));
        }
        if !any {
            let _ = writeln!(s, "- no scored method has finished yet.");
        }
    }
}

/// A method's own numbers: last-epoch metric, dev loss (`loss` names it), best epoch.
fn describe(r: &MethodRow, metric: &str, loss: &str) -> String {
    let loss = match (r.loss_mean, r.loss_std) {
        (Some(m), Some(sd)) => {
            let k = r.losses.iter().flatten().count();
            format!(
                ", dev {loss} {m:.3} ± {sd:.3} ({k} seed{})",
                if k == 1 { "" } else { "s" }
            )
        }
        _ => String::new(),
    };
    format!(
        "last-epoch {metric} {:.2} ± {:.2} over {} seed(s){loss}, best-epoch {metric} {:.2} ± {:.2}",
        r.mean, r.std, r.n, r.best_mean, r.best_std
    )
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or(String::new(), |f| {
        f.to_uppercase().collect::<String>() + c.as_str()
    })
}

pub(super) fn fmt_secs(s: f64) -> String {
    if !s.is_finite() {
        return "-".into();
    }
    if s >= 3600.0 {
        format!("{:.1} h", s / 3600.0)
    } else if s >= 60.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{s:.0} s")
    }
}
