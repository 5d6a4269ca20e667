//! The study's report, generated from the tracker (and the committed child records): a results
//! table (the last-epoch dev metric and dev cross-entropy over seeds, each method's paired
//! difference with its equal-budget baseline with a 95% t interval, a bootstrap interval and the
//! detectable effect; the best epoch only as a description; parameters, wall time), the
//! accuracy-against-budget plot, allocation and score heat maps, and a summary whose sentences
//! and verdicts are written by code from the measured numbers.

use super::config::{StudyConfig, KIND_CHILD};
use super::record::ChildRecord;
use crate::adapters::SlotId;
use crate::display::dataframe::frame_table;
use crate::display::html::emit_evcxr;
use crate::proxy::Scores;
use crate::tracking::Tracker;
use crate::{Error, Result};
use polars::prelude::{CsvWriter, DataFrame, SerWriter};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod compare;
mod frames;
mod rows;
mod selection;
mod summary;
mod table;
mod verdict;

pub use compare::{Comparison, Verdict};
pub use rows::{baseline_of, last_loss, last_metric, MethodRow};

/// The method every other is compared with.
pub const BASELINE: &str = "uniform-r2";
/// The baseline of the LoRA + shortcut methods: uniform r = 2 over the same slots.
pub const SC_BASELINE: &str = "sc-uniform-r2";
/// The paper's claimed gain on MRPC, in points.
pub const PAPER_GAIN: f64 = 1.6;

/// Every finished child of a study, and the tables, plots and summary made from them.
#[derive(Debug, Clone)]
pub struct StudyReport {
    pub name: String,
    pub records: Vec<ChildRecord>,
    /// Children the study plans (methods x seeds), for "k of n finished".
    pub planned: Option<usize>,
    /// The methods the study plans; a method outside it that has no record is not reported as
    /// "not finished yet" (empty: not known, every method is expected).
    pub methods: Vec<String>,
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
                        .and_then(|u| t.artifact_file(id, u, "study_child.json"));
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
                let tracked = by_key.entry(rec.key.clone()).or_insert(rec.clone());
                // Predictions added to the committed record after the run logged its own
                // (`heterolora study predictions`) complete the tracker's copy of the same run.
                if tracked.dev_predictions.is_none() && tracked.run_id == rec.run_id {
                    tracked.dev_predictions = rec.dev_predictions;
                }
            }
        }
        Ok(StudyReport {
            name: cfg.name.clone(),
            records: by_key.into_values().collect(),
            planned: Some(cfg.methods.len() * cfg.seeds.len()),
            methods: cfg.methods.iter().map(|m| m.name.clone()).collect(),
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

    /// Whether the study plans `method` (always, when the plan is not known).
    pub fn plans(&self, method: &str) -> bool {
        self.methods.is_empty() || self.methods.iter().any(|m| m == method)
    }

    /// The protocol the children ran under, from their records (what ran, not what the command
    /// line names today: the first MRPC study ran with `lora_alpha` = 2r, the default is now 16);
    /// `fallback`'s description when no record carries its settings.
    pub fn protocol_line(&self, fallback: &crate::study::Protocol) -> String {
        let mut seen: Vec<String> = Vec::new();
        for r in &self.records {
            if let Some(p) = &r.protocol_settings {
                let d = p.describe();
                if !seen.contains(&d) {
                    seen.push(d);
                }
            }
        }
        match seen.len() {
            0 => fallback.describe(),
            1 => seen.remove(0),
            n => format!("{n} protocols among the records: {}", seen.join("; ")),
        }
    }

    /// The dev loss the trainer records, in words: mean squared error for a regression task
    /// (STS-B), cross-entropy otherwise.
    pub fn loss_name(&self) -> &'static str {
        let regression = self.records.iter().any(|r| {
            r.task
                .parse::<crate::data::Task>()
                .is_ok_and(|t| t.is_regression())
        });
        if regression {
            "mean squared error"
        } else {
            "cross-entropy"
        }
    }

    /// The loss's short column label: `CE` or `MSE`.
    pub fn loss_short(&self) -> &'static str {
        if self.loss_name() == "cross-entropy" {
            "CE"
        } else {
            "MSE"
        }
    }

    /// Writes table.md, table.csv, runs.csv and summary.md under `dir`; `command` is recorded as
    /// the command that made them. Returns the files written. The figures are
    /// [`crate::plot::study::write_study_plots`]'s.
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
