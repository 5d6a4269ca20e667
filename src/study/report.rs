//! The study's report, generated from the tracker (and the committed child records): a results
//! table (mean and standard deviation over seeds of the best-epoch dev metric, parameters, wall
//! time), the accuracy-against-budget plot, allocation and score heat maps, and a summary whose
//! sentences are written by code from the measured numbers.

use super::methods::Method;
use super::record::ChildRecord;
use super::runner::{StudyConfig, KIND_CHILD};
use crate::adapters::SlotId;
use crate::display::dataframe::frame_table;
use crate::display::html::emit_evcxr;
use crate::plot::{AllocationHeatmap, BudgetPlot, BudgetPoint, ScoreHeatmap};
use crate::proxy::Scores;
use crate::tracking::{artifacts, Tracker};
use crate::{Error, Result};
use polars::prelude::{Column, CsvWriter, DataFrame, SerWriter};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The method every other is compared with.
pub const BASELINE: &str = "uniform-r2";
/// The paper's claimed gain on MRPC, in points.
pub const PAPER_GAIN: f64 = 1.6;

/// One method's results over its seeds (metric values in points, i.e. x100).
#[derive(Debug, Clone, PartialEq)]
pub struct MethodRow {
    pub method: String,
    pub family: String,
    pub n: usize,
    pub seeds: Vec<u64>,
    pub values: Vec<f64>,
    pub mean: f64,
    /// Sample standard deviation (n - 1); 0 for one seed.
    pub std: f64,
    /// mean - baseline mean, when both exist.
    pub delta: Option<f64>,
    pub budget: usize,
    pub adapter_params: f64,
    pub trainable_params: f64,
    pub wall_time_s: f64,
}

/// Every finished child of a study, and the tables, plots and summary made from them.
#[derive(Debug, Clone)]
pub struct StudyReport {
    pub name: String,
    pub records: Vec<ChildRecord>,
    /// Children the study plans (methods x seeds), for "k of n finished".
    pub planned: Option<usize>,
    /// Notes gathered while collecting (unreadable artifacts, ...).
    pub notes: Vec<String>,
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    let std = if n > 1 {
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    (mean, std)
}

fn short(slot: &SlotId) -> String {
    format!("L{}.{}", slot.layer, slot.kind.short())
}

impl StudyReport {
    /// Finished children of the study `cfg.name`: from the tracker (`search_runs` on the child
    /// tags, details from each run's `study_child.json`), completed by the committed records in
    /// `cfg.results_dir/children` for children the tracker does not have.
    pub fn collect(tracker: Option<&Tracker>, cfg: &StudyConfig) -> Result<StudyReport> {
        let mut by_key: BTreeMap<String, ChildRecord> = BTreeMap::new();
        let mut notes = Vec::new();
        if let Some(t) = tracker {
            let exists = t
                .list_experiments()?
                .iter()
                .any(|e| e.name == cfg.experiment);
            if exists {
                let runs = t.search_runs(
                    &[cfg.experiment.as_str()],
                    &format!(
                        "tags.`heterolora.kind` = '{KIND_CHILD}' and tags.`study.name` = '{}' and attributes.status = 'FINISHED'",
                        cfg.name
                    ),
                    &[],
                )?;
                let ids = runs.run_ids();
                let uris = runs.strings("artifact_uri");
                let keys = runs.strings("tags.study.key");
                // Newest first: the first record of a key wins.
                for ((id, uri), key) in ids.iter().zip(uris).zip(keys) {
                    let Some(key) = key else { continue };
                    if by_key.contains_key(&key) {
                        continue;
                    }
                    let path = uri
                        .as_deref()
                        .ok_or_else(|| Error::Tracking(format!("run {id} has no artifact uri")))
                        .and_then(artifacts::local_dir)
                        .map(|d| d.join("study_child.json"));
                    match path.and_then(|p| ChildRecord::load(&p)) {
                        Ok(rec) => {
                            by_key.insert(key, rec);
                        }
                        Err(e) => notes.push(format!("run {id} ({key}): {e}")),
                    }
                }
            }
        }
        for rec in ChildRecord::load_dir(&cfg.children_dir())? {
            if rec.study == cfg.name && rec.status == "FINISHED" {
                by_key.entry(rec.key.clone()).or_insert(rec);
            }
        }
        Ok(StudyReport {
            name: cfg.name.clone(),
            records: by_key.into_values().collect(),
            planned: Some(cfg.methods.len() * cfg.seeds.len()),
            notes,
        })
    }

    /// The primary metric's name (`accuracy` for MRPC).
    pub fn metric(&self) -> String {
        self.records
            .first()
            .map(|r| r.metric.clone())
            .unwrap_or_else(|| "accuracy".into())
    }

    /// One row per method, in the study's priority order (methods outside it last, by name).
    pub fn rows(&self) -> Vec<MethodRow> {
        let order: Vec<String> = Method::all().into_iter().map(|m| m.name).collect();
        let mut names: Vec<String> = self
            .records
            .iter()
            .map(|r| r.method.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        names.sort_by_key(|n| {
            (
                order.iter().position(|o| o == n).unwrap_or(usize::MAX),
                n.clone(),
            )
        });
        let mut rows: Vec<MethodRow> = names
            .iter()
            .map(|name| {
                let mut recs: Vec<&ChildRecord> =
                    self.records.iter().filter(|r| &r.method == name).collect();
                recs.sort_by_key(|r| r.seed);
                let values: Vec<f64> = recs
                    .iter()
                    .map(|r| r.best_metric.unwrap_or(f64::NAN) * 100.0)
                    .collect();
                let (mean, std) = mean_std(&values);
                let avg = |f: &dyn Fn(&ChildRecord) -> f64| {
                    recs.iter().map(|r| f(r)).sum::<f64>() / recs.len() as f64
                };
                MethodRow {
                    method: name.clone(),
                    family: recs[0].family.clone(),
                    n: recs.len(),
                    seeds: recs.iter().map(|r| r.seed).collect(),
                    values,
                    mean,
                    std,
                    delta: None,
                    budget: recs[0].budget,
                    adapter_params: avg(&|r| r.adapter_params as f64),
                    trainable_params: avg(&|r| r.trainable_params as f64),
                    wall_time_s: avg(&|r| r.wall_time_s),
                }
            })
            .collect();
        if let Some(base) = rows.iter().find(|r| r.method == BASELINE).map(|r| r.mean) {
            for r in rows.iter_mut() {
                r.delta = Some(r.mean - base);
            }
        }
        rows
    }

    /// The results table as a polars frame.
    pub fn table(&self) -> Result<DataFrame> {
        let rows = self.rows();
        let metric = self.metric();
        let n = rows.len();
        let cols = vec![
            Column::new(
                "method".into(),
                rows.iter().map(|r| r.method.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "family".into(),
                rows.iter().map(|r| r.family.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "seeds".into(),
                rows.iter().map(|r| r.n as u32).collect::<Vec<_>>(),
            ),
            Column::new(
                format!("{metric}_mean").into(),
                rows.iter().map(|r| r.mean).collect::<Vec<_>>(),
            ),
            Column::new(
                format!("{metric}_std").into(),
                rows.iter().map(|r| r.std).collect::<Vec<_>>(),
            ),
            Column::new(
                format!("delta_vs_{BASELINE}").into(),
                rows.iter().map(|r| r.delta).collect::<Vec<_>>(),
            ),
            Column::new(
                "budget".into(),
                rows.iter().map(|r| r.budget as u64).collect::<Vec<_>>(),
            ),
            Column::new(
                "adapter_params".into(),
                rows.iter().map(|r| r.adapter_params).collect::<Vec<_>>(),
            ),
            Column::new(
                "trainable_params".into(),
                rows.iter().map(|r| r.trainable_params).collect::<Vec<_>>(),
            ),
            Column::new(
                "wall_time_s".into(),
                rows.iter().map(|r| r.wall_time_s).collect::<Vec<_>>(),
            ),
        ];
        Ok(DataFrame::new(n, cols)?)
    }

    /// One row per finished child (what `runs.csv` holds).
    pub fn runs_frame(&self) -> Result<DataFrame> {
        let r = &self.records;
        let cols = vec![
            Column::new(
                "key".into(),
                r.iter().map(|x| x.key.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "method".into(),
                r.iter().map(|x| x.method.clone()).collect::<Vec<_>>(),
            ),
            Column::new("seed".into(), r.iter().map(|x| x.seed).collect::<Vec<_>>()),
            Column::new(
                "metric".into(),
                r.iter().map(|x| x.metric.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "best".into(),
                r.iter().map(|x| x.best_metric).collect::<Vec<_>>(),
            ),
            Column::new(
                "best_epoch".into(),
                r.iter()
                    .map(|x| x.best_epoch.map(|e| e as u32))
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "f1_at_best".into(),
                r.iter()
                    .map(|x| x.best_metrics.get("f1").copied())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "epoch_metrics".into(),
                r.iter()
                    .map(|x| {
                        x.epoch_metrics
                            .iter()
                            .map(|v| format!("{v:.4}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "budget".into(),
                r.iter().map(|x| x.budget as u64).collect::<Vec<_>>(),
            ),
            Column::new(
                "adapter_params".into(),
                r.iter()
                    .map(|x| x.adapter_params as u64)
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "wall_time_s".into(),
                r.iter().map(|x| x.wall_time_s).collect::<Vec<_>>(),
            ),
            Column::new(
                "enabled".into(),
                r.iter().map(|x| x.enabled_string()).collect::<Vec<_>>(),
            ),
            Column::new(
                "run_id".into(),
                r.iter().map(|x| x.run_id.clone()).collect::<Vec<_>>(),
            ),
        ];
        Ok(DataFrame::new(r.len(), cols)?)
    }

    /// The results table in Markdown (values in points: metric x 100).
    pub fn table_markdown(&self) -> String {
        let metric = self.metric();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| method | seeds | {metric} (mean ± std) | Δ vs {BASELINE} | per seed | budget | adapter params | trainable params | wall time |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
        for r in self.rows() {
            let per_seed: Vec<String> = r
                .seeds
                .iter()
                .zip(&r.values)
                .map(|(s, v)| format!("{s}: {v:.2}"))
                .collect();
            let _ = writeln!(
                s,
                "| {} | {} | {:.2} ± {:.2} | {} | {} | {} | {:.0} | {:.0} | {} |",
                r.method,
                r.n,
                r.mean,
                r.std,
                r.delta.map_or("-".into(), |d| format!("{d:+.2}")),
                per_seed.join(", "),
                r.budget,
                r.adapter_params,
                r.trainable_params,
                fmt_secs(r.wall_time_s),
            );
        }
        s
    }

    /// The measured comparison with the equal-budget baseline, in sentences made from the
    /// numbers: gap, seed spread, the paper's +1.6 target, and what the proxies chose.
    pub fn summary_markdown(&self) -> String {
        let rows = self.rows();
        let metric = self.metric();
        let mut s = String::new();
        let finished = self.records.len();
        let _ = writeln!(
            s,
            "{finished} child runs finished{}.",
            self.planned
                .map_or(String::new(), |p| format!(" of {p} planned"))
        );
        let find = |n: &str| rows.iter().find(|r| r.method == n);
        let Some(base) = find(BASELINE) else {
            let _ = writeln!(
                s,
                "\nThe equal-budget baseline ({BASELINE}) has not finished yet: no comparison can be made."
            );
            self.choices_markdown(&mut s);
            return s;
        };
        let _ = writeln!(
            s,
            "\nEqual-budget baseline {BASELINE} ({} adapter parameters): {metric} {:.2} ± {:.2} over {} seed(s).",
            base.budget, base.mean, base.std, base.n
        );
        let compare = |name: &str, label: &str, s: &mut String| {
            let Some(r) = find(name) else {
                let _ = writeln!(s, "- {label} ({name}): not finished yet.");
                return;
            };
            let d = r.mean - base.mean;
            let spread = r.std.max(base.std);
            let verdict = if d > 0.0 {
                "beat"
            } else if d < 0.0 {
                "fell behind"
            } else {
                "tied"
            };
            let gap_vs_spread = if r.n < 2 || base.n < 2 {
                "too few seeds to compare the gap with the spread over seeds".to_string()
            } else if d.abs() > spread {
                format!("the gap is larger than the spread over seeds (largest std {spread:.2})")
            } else {
                format!(
                    "the gap is within the spread over seeds (largest std {spread:.2}), so it is not a reliable difference"
                )
            };
            let target = if d >= PAPER_GAIN {
                format!("reaching the paper's +{PAPER_GAIN}")
            } else {
                format!("short of the paper's +{PAPER_GAIN}")
            };
            let _ = writeln!(
                s,
                "- {label} ({name}, {} adapter parameters): {:.2} ± {:.2} over {} seed(s): it {verdict} the baseline by {:.2} points ({:+.2}); {gap_vs_spread}; {target}.",
                r.budget, r.mean, r.std, r.n, d.abs(), d
            );
        };
        let _ = writeln!(s, "\nHeteroLoRA against the equal-budget baseline:");
        compare("static-grad-norm", "static HeteroLoRA, grad-norm", &mut s);
        compare("dynamic-grad-norm", "dynamic HeteroLoRA, grad-norm", &mut s);
        compare("random", "random allocation (constant proxy)", &mut s);
        compare(
            "sc-dynamic-combined",
            "dynamic HeteroLoRA with shortcuts, combined",
            &mut s,
        );
        compare(
            "sc-dynamic-separated",
            "dynamic HeteroLoRA with shortcuts, separated",
            &mut s,
        );
        compare(
            "hetero-ranks-w0-grad-spectrum",
            "heterogeneous ranks",
            &mut s,
        );
        if let Some(r8) = find("uniform-r8") {
            let _ = writeln!(
                s,
                "- The 4x-budget reference uniform-r8 ({} adapter parameters): {:.2} ± {:.2} ({:+.2} vs the baseline).",
                r8.budget,
                r8.mean,
                r8.std,
                r8.mean - base.mean
            );
        }
        let statics: Vec<&MethodRow> = rows.iter().filter(|r| r.family == "static").collect();
        if let Some(best) = statics.iter().max_by(|a, b| {
            a.mean
                .partial_cmp(&b.mean)
                .unwrap_or(std::cmp::Ordering::Equal)
        }) {
            let _ = writeln!(
                s,
                "- Best static proxy of the {} measured: {} at {:.2} ± {:.2} ({:+.2}); picked after the fact, so this gap is optimistic.",
                statics.len(),
                best.method,
                best.mean,
                best.std,
                best.mean - base.mean
            );
        }
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

    /// Writes table.md, table.csv, runs.csv, summary.md, budget.svg and the heat maps under
    /// `dir`; `command` is recorded as the command that made them. Returns the files written.
    pub fn write(&self, dir: &Path, command: &str, protocol: &str) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut written = Vec::new();
        let mut put = |name: &str, text: String| -> Result<()> {
            let p = dir.join(name);
            std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
            written.push(p);
            Ok(())
        };
        let header = format!(
            "<!-- generated by `{command}`; do not edit -->\n\n# Study `{}`: results\n\nProtocol: {protocol}\n\n",
            self.name
        );
        put("table.md", format!("{header}{}", self.table_markdown()))?;
        put(
            "summary.md",
            format!(
                "{header}{}\n{}",
                self.summary_markdown(),
                self.table_markdown()
            ),
        )?;
        let mut csv = |name: &str, mut df: DataFrame| -> Result<()> {
            let p = dir.join(name);
            let f = std::fs::File::create(&p).map_err(|e| Error::io(&p, e))?;
            CsvWriter::new(f).finish(&mut df)?;
            written.push(p);
            Ok(())
        };
        csv("table.csv", self.table()?)?;
        csv("runs.csv", self.runs_frame()?)?;
        written.extend(self.write_plots(dir)?);
        Ok(written)
    }

    /// The budget plot and heat maps (allocation per scored child, scores with the allocation
    /// outlined, and per method how often each slot was chosen over seeds).
    pub fn write_plots(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        if self.records.is_empty() {
            return Ok(out);
        }
        let metric = self.metric();
        let points: Vec<BudgetPoint> = self
            .records
            .iter()
            .filter_map(|r| {
                r.best_metric.map(|m| {
                    BudgetPoint::new(r.method.clone(), r.adapter_params, m * 100.0, r.seed)
                })
            })
            .collect();
        if !points.is_empty() {
            let fig = BudgetPlot::new(points)
                .metric_name(format!("dev {metric} (best epoch, x100)"))
                .title(format!(
                    "{}: dev {metric} against adapter parameters",
                    self.name
                ))
                .size(1000, 600)
                .render()?;
            let p = dir.join("budget.svg");
            fig.save_svg(&p)?;
            out.push(p);
        }
        for sub in ["alloc", "scores", "chosen"] {
            let d = dir.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        }
        for r in &self.records {
            if r.family == "uniform" || r.method == "sc-uniform-r2" {
                continue;
            }
            let stem = format!("{}-seed{}", r.method, r.seed);
            if let Ok(fig) = AllocationHeatmap::new(&r.allocation)
                .title(format!("{} seed {}: allocation", r.method, r.seed))
                .render()
            {
                let p = dir.join("alloc").join(format!("{stem}.svg"));
                fig.save_svg(&p)?;
                out.push(p);
            }
            if let Some(sc) = &r.scores {
                if !is_flat(sc) {
                    if let Ok(fig) = ScoreHeatmap::new(sc)
                        .allocation(&r.allocation)
                        .title(format!("{} seed {}: {} scores", r.method, r.seed, sc.proxy))
                        .render()
                    {
                        let p = dir.join("scores").join(format!("{stem}.svg"));
                        fig.save_svg(&p)?;
                        out.push(p);
                    }
                }
            }
        }
        for (method, freq) in self.selection_frequency() {
            if let Ok(fig) = ScoreHeatmap::new(&freq)
                .log_scale(false)
                .title(format!(
                    "{method}: fraction of seeds (dynamic: of re-allocations) enabling each slot"
                ))
                .render()
            {
                let p = dir.join("chosen").join(format!("{method}.svg"));
                fig.save_svg(&p)?;
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Per scored method: the fraction of its seeds (dynamic: of all re-allocations) that
    /// enabled each candidate slot, as a [`Scores`] for the heat map.
    pub fn selection_frequency(&self) -> BTreeMap<String, Scores> {
        let mut out = BTreeMap::new();
        for r in self.rows() {
            let recs: Vec<&ChildRecord> = self
                .records
                .iter()
                .filter(|x| x.method == r.method)
                .collect();
            if recs[0].family == "uniform" || recs[0].method == "sc-uniform-r2" {
                continue;
            }
            let mut values: BTreeMap<SlotId, f64> = recs[0]
                .allocation
                .candidates
                .iter()
                .map(|s| (*s, 0.0))
                .collect();
            let mut total = 0.0;
            for rec in &recs {
                match &rec.times_enabled {
                    Some(t) => {
                        total += rec.num_reallocations as f64;
                        for (s, n) in t {
                            *values.entry(*s).or_default() += *n as f64;
                        }
                    }
                    None => {
                        total += 1.0;
                        for s in rec.allocation.ranks.keys() {
                            *values.entry(*s).or_default() += 1.0;
                        }
                    }
                }
            }
            if total > 0.0 {
                for v in values.values_mut() {
                    *v /= total;
                }
            }
            out.insert(
                r.method.clone(),
                Scores {
                    proxy: format!("{} selection frequency", r.method),
                    values,
                    rank_gains: None,
                    num_batches: 0,
                    seconds: 0.0,
                },
            );
        }
        out
    }

    /// The table and summary as HTML (notebooks).
    pub fn to_html(&self) -> String {
        let table = match self.table() {
            Ok(df) => frame_table(&df, 50).to_html(),
            Err(e) => format!(
                "<p>table unavailable: {}</p>",
                crate::display::html::escape(&e.to_string())
            ),
        };
        format!(
            "<div><h4>Study {}</h4>{table}<pre>{}</pre></div>",
            crate::display::html::escape(&self.name),
            crate::display::html::escape(&self.summary_markdown())
        )
    }

    pub fn evcxr_display(&self) {
        emit_evcxr(&[("text/html", &self.to_html())]);
    }
}

/// Whether every score is the same (a proxy blind on fresh adapters).
pub fn is_flat(s: &Scores) -> bool {
    let mut it = s.values.values();
    match it.next() {
        Some(first) => it.all(|v| v == first),
        None => true,
    }
}

fn fmt_secs(s: f64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(method: &str, family: &str, seed: u64, acc: f64) -> ChildRecord {
        let m = Method::all()
            .into_iter()
            .find(|m| m.name == method)
            .unwrap();
        let dims = crate::adapters::ModelDims::MINILM_L6;
        let cands = m.candidates(&dims);
        let scores = Scores {
            proxy: "grad-norm".into(),
            values: cands
                .iter()
                .enumerate()
                .map(|(i, s)| (*s, i as f64))
                .collect(),
            rank_gains: None,
            num_batches: 1,
            seconds: 0.0,
        };
        let alloc = m
            .allocate(&dims, m.needs_scores().then_some(&scores), seed)
            .unwrap();
        ChildRecord {
            key: format!("t/{method}/seed{seed}"),
            study: "t".into(),
            task: "mrpc".into(),
            protocol: "cpu".into(),
            protocol_settings: None,
            method: method.into(),
            family: family.into(),
            seed,
            status: "FINISHED".into(),
            run_id: None,
            metric: "accuracy".into(),
            best_metric: Some(acc),
            best_epoch: Some(1),
            best_metrics: BTreeMap::new(),
            epoch_metrics: vec![acc],
            budget: 18_432,
            adapter_params: alloc.trainable_params(),
            trainable_params: alloc.trainable_params() + 770,
            wall_time_s: 600.0,
            scoring_seconds: 0.0,
            allocation: alloc,
            scores: m.needs_scores().then_some(scores),
            times_enabled: None,
            num_reallocations: 0,
            finished_at_ms: None,
        }
    }

    #[test]
    fn summary_sentences_follow_the_numbers() {
        // Baseline 80 +- 1; static grad-norm 83 +- 1: a gap of +3 beyond the spread, above +1.6.
        let mut records = vec![];
        for (seed, b, h) in [(0, 0.79, 0.82), (13, 0.80, 0.83), (42, 0.81, 0.84)] {
            records.push(rec("uniform-r2", "uniform", seed, b));
            records.push(rec("static-grad-norm", "static", seed, h));
        }
        records.push(rec("random", "random", 0, 0.795));
        let rep = StudyReport {
            name: "t".into(),
            records,
            planned: Some(36),
            notes: vec![],
        };
        let rows = rep.rows();
        assert_eq!(rows[0].method, "uniform-r2");
        assert!((rows[0].mean - 80.0).abs() < 1e-9 && (rows[0].std - 1.0).abs() < 1e-9);
        assert!((rows[1].delta.unwrap() - 3.0).abs() < 1e-9);
        let s = rep.summary_markdown();
        assert!(s.contains("7 child runs finished of 36 planned"), "{s}");
        assert!(
            s.contains(
                "it beat the baseline by 3.00 points (+3.00); the gap is larger than the spread"
            ),
            "{s}"
        );
        assert!(s.contains("reaching the paper's +1.6"), "{s}");
        assert!(s.contains("dynamic-grad-norm): not finished yet"), "{s}");
        assert!(s.contains("too few seeds"), "{s}");
        // grad-norm scores rise with the slot index: the top 3 of 12 are layer 5 q, v and layer 4 v.
        assert!(s.contains("seed 0: L4.v, L5.q, L5.v"), "{s}");
        let md = rep.table_markdown();
        assert!(
            md.contains("| static-grad-norm | 3 | 83.00 ± 1.00 | +3.00 |"),
            "{md}"
        );
        let df = rep.table().unwrap();
        assert_eq!(df.height(), 3);
        // Within the spread: a +0.5 gap with std 1 is called unreliable.
        let mut r2 = rep.clone();
        for r in r2
            .records
            .iter_mut()
            .filter(|r| r.method == "static-grad-norm")
        {
            r.best_metric = Some(r.best_metric.unwrap() - 0.025);
        }
        let s2 = r2.summary_markdown();
        assert!(
            s2.contains("by 0.50 points (+0.50); the gap is within the spread"),
            "{s2}"
        );
        assert!(
            s2.contains("it fell behind the baseline by 0.50 points (-0.50)"),
            "{s2}"
        );
        assert!(s2.contains("short of the paper's +1.6"), "{s2}");
    }

    #[test]
    fn sample_std_and_flat_scores() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0]);
        assert_eq!(m, 2.0);
        assert!((s - 1.0).abs() < 1e-12);
        assert_eq!(mean_std(&[5.0]), (5.0, 0.0));
        let flat = Scores {
            proxy: "snip".into(),
            values: [(SlotId::new(0, crate::adapters::SlotKind::Query), 0.0)].into(),
            rank_gains: None,
            num_batches: 1,
            seconds: 0.0,
        };
        assert!(is_flat(&flat));
        assert_eq!(fmt_secs(90.0), "1.5 min");
    }
}
