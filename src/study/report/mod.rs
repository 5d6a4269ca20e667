//! The study's report, generated from the tracker (and the committed child records): a results
//! table (mean and standard deviation over seeds of the best-epoch dev metric, parameters, wall
//! time), the accuracy-against-budget plot, allocation and score heat maps, and a summary whose
//! sentences are written by code from the measured numbers.

use super::config::{StudyConfig, KIND_CHILD};
use super::methods::Method;
use super::record::ChildRecord;
use crate::adapters::SlotId;
use crate::display::dataframe::frame_table;
use crate::display::html::emit_evcxr;
use crate::proxy::Scores;
use crate::tracking::{artifacts, Tracker};
use crate::{Error, Result};
use polars::prelude::{Column, CsvWriter, DataFrame, SerWriter};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

mod figures;
mod summary;

/// The method every other is compared with.
pub const BASELINE: &str = "uniform-r2";
/// The baseline of the LoRA + shortcut methods: uniform r = 2 over the same slots.
pub const SC_BASELINE: &str = "sc-uniform-r2";
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

#[cfg(test)]
mod tests;
