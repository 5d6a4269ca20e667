//! Each dev example's prediction for children recorded without them: the adapters a child's run
//! saved at the end of training are loaded onto the base model, dev is evaluated in the
//! trainer's batches, and the prediction is kept only when it reproduces the recorded last-epoch
//! metric. The report's two-level bootstrap (seeds, then dev examples) needs them; children
//! trained since the field exists record them as they finish.

use super::record::ChildRecord;
use super::report::last_metric;
use super::runner::Study;
use crate::train::DevPredictions;
use crate::{Error, Result};
use std::path::PathBuf;

/// How far a recomputed metric may be from the recorded one (float noise, far below one
/// example's share of any dev set).
pub const TOLERANCE: f64 = 1e-5;

/// What [`Study::add_dev_predictions`] did, by child key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PredictionsOutcome {
    /// Records that now carry predictions (recomputed, or copied from the twin they name).
    pub added: Vec<String>,
    /// Records that already had them.
    pub present: Vec<String>,
    /// Records left without, and why (no run, no saved adapters, metric not reproduced).
    pub failed: Vec<(String, String)>,
}

impl Study {
    /// Adds dev predictions to the committed child records of this study that lack them
    /// (`results/<study>/children/`), from their runs' final adapters in the tracker; a child
    /// recorded as a twin takes its twin's. Each recomputed metric must match the record's
    /// last-epoch value within [`TOLERANCE`], else the record is left as it was.
    pub fn add_dev_predictions(&mut self, log: &mut dyn FnMut(&str)) -> Result<PredictionsOutcome> {
        let dir = self.cfg.children_dir();
        let mut records: Vec<ChildRecord> = ChildRecord::load_dir(&dir)?
            .into_iter()
            .filter(|r| r.study == self.cfg.name && r.status == "FINISHED")
            .collect();
        // Trained children first, so that their twins find the predictions to copy.
        records.sort_by_key(|r| r.twin_of().is_some());
        let mut out = PredictionsOutcome::default();
        for i in 0..records.len() {
            let key = records[i].key.clone();
            if records[i].dev_predictions.is_some() {
                out.present.push(key);
                continue;
            }
            let found = match records[i].twin_of() {
                Some(twin) => records
                    .iter()
                    .find(|r| r.method == twin && r.seed == records[i].seed)
                    .and_then(|r| r.dev_predictions.clone())
                    .ok_or_else(|| format!("its twin {twin} has no predictions")),
                None => self.recompute(&records[i]).map_err(|e| e.to_string()),
            };
            match found {
                Ok(d) => {
                    records[i].dev_predictions = Some(d);
                    let path = records[i].save_in(&dir)?;
                    log(&format!(
                        "{key}: dev predictions added to {}",
                        path.display()
                    ));
                    out.added.push(key);
                }
                Err(e) => {
                    log(&format!("{key}: no dev predictions: {e}"));
                    out.failed.push((key, e));
                }
            }
        }
        Ok(out)
    }

    /// The record's run's final adapters on a fresh model, evaluated on dev.
    fn recompute(&mut self, rec: &ChildRecord) -> Result<DevPredictions> {
        let run_id = rec.run_id.as_deref().ok_or_else(|| Error::Config {
            field: format!("{}: run_id", rec.file_name()),
            reason: "the record names no run, so there are no saved adapters to evaluate".into(),
        })?;
        let adapters = self.adapter_dir(run_id)?;
        let protocol = &self.cfg.protocol;
        let mut loaded =
            self.source
                .load(self.cfg.task, protocol.max_len, &protocol.device, rec.seed)?;
        loaded.model.set_head_pooling(protocol.head);
        loaded.model.load_adapters(&adapters)?;
        let labels = loaded.dev.labels_f32().ok_or_else(|| Error::Config {
            field: "dev split".into(),
            reason: "it has no labels".into(),
        })?;
        let batch = protocol.train_config(rec.seed).eval_batch_size;
        let p = crate::predict::predict(&loaded.model, &loaded.dev, batch)?;
        let d = DevPredictions::from_logits(self.cfg.task, &p.logits, &labels)?;
        let got = d.metric(self.cfg.task, &rec.metric);
        let want = last_metric(rec);
        match (got, want) {
            (Some(g), Some(w)) if (g - w).abs() <= TOLERANCE => Ok(d),
            (g, w) => Err(Error::Config {
                field: format!("{}: last_metrics.{}", rec.file_name(), rec.metric),
                reason: format!(
                    "the run's saved adapters give {} {}, the record says {}: not the model the \
                     record describes, so its predictions are not recorded",
                    rec.metric,
                    g.map_or("nothing".into(), |v| format!("{v:.6}")),
                    w.map_or("nothing".into(), |v| format!("{v:.6}"))
                ),
            }),
        }
    }

    /// A local folder holding the run's `adapters/` artifacts (downloaded from a tracking
    /// server when the store is remote).
    fn adapter_dir(&self, run_id: &str) -> Result<PathBuf> {
        let info = self.tracker.run_info(run_id)?;
        let files: Vec<String> = self
            .tracker
            .list_artifacts(run_id)?
            .into_iter()
            .filter(|f| f.starts_with("adapters/"))
            .collect();
        let mut dir = None;
        for f in &files {
            let p = self.tracker.artifact_file(run_id, &info.artifact_uri, f)?;
            dir = p.parent().map(|d| d.to_path_buf());
        }
        dir.ok_or_else(|| Error::Asset {
            what: format!("adapters of run {run_id}"),
            reason: "the run logged no adapters/ artifacts".into(),
            hint: "it was tracked elsewhere or its artifacts were removed; the child has to be trained again for per-example predictions".into(),
        })
    }
}
