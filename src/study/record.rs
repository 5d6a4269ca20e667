//! [`ChildRecord`]: everything the report needs from one finished child run, kept as the
//! `study_child.json` artifact of the run and as `results/<study>/children/<method>-seed<seed>.json`
//! (committed), so that the report and the skip logic also work from a fresh clone without the
//! git-ignored tracker file.

use crate::adapters::SlotId;
use crate::proxy::Scores;
use crate::search::Allocation;
use crate::train::DevPredictions;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One child run of a study, as the report sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildRecord {
    /// `<study>/<method>/seed<seed>`: what the skip logic matches on.
    pub key: String,
    pub study: String,
    pub task: String,
    pub protocol: String,
    /// Every setting of the protocol the child trained under: a study resumed with other
    /// settings must not count this child as done (records written before this field: `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_settings: Option<crate::study::Protocol>,
    pub method: String,
    pub family: String,
    pub seed: u64,
    /// `FINISHED` (only finished children are recorded as results).
    pub status: String,
    pub run_id: Option<String>,
    /// The metric that picks the best epoch (`accuracy` on MRPC).
    pub metric: String,
    pub best_metric: Option<f64>,
    pub best_epoch: Option<usize>,
    /// Every dev metric at the best epoch (`accuracy`, `f1`, `loss`, ...).
    #[serde(default)]
    pub best_metrics: BTreeMap<String, f64>,
    /// The primary metric at the end of every epoch.
    #[serde(default)]
    pub epoch_metrics: Vec<f64>,
    /// Every dev metric at the end of the last epoch (`accuracy`, `loss`, ...): the study's
    /// primary numbers, as nothing is selected on the split they are reported on. Records
    /// written before this field have none; the report then takes `best_metrics` where the best
    /// epoch was the last one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub last_metrics: BTreeMap<String, f64>,
    /// What the method's allocator is held to (exact, from `search::Budget`).
    pub budget: usize,
    /// Adapter parameters of the allocation it trained (for dynamic methods: of the last one).
    pub adapter_params: usize,
    /// Every trainable parameter (adapters in force and the classifier head).
    pub trainable_params: usize,
    pub wall_time_s: f64,
    /// Seconds spent scoring before training (0 for uniform methods).
    #[serde(default)]
    pub scoring_seconds: f64,
    /// The allocation chosen before training (static) or the last one (dynamic).
    pub allocation: Allocation,
    /// The proxy scores the allocation was chosen from (static methods).
    #[serde(default)]
    pub scores: Option<Scores>,
    /// Dynamic methods: how many re-allocations enabled each slot, and how many there were.
    #[serde(default)]
    pub times_enabled: Option<BTreeMap<SlotId, usize>>,
    #[serde(default)]
    pub num_reallocations: usize,
    /// When it finished (RFC 3339-like UTC, from the run's end).
    #[serde(default)]
    pub finished_at_ms: Option<i64>,
    /// Each dev example's prediction at the end of training, with its label: the report
    /// resamples dev examples from them (records written before this field have none; `heterolora
    /// study predictions` adds them from the run's saved adapters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev_predictions: Option<DevPredictions>,
    /// The optimiser step the child's training last continued from, when it was stopped (Ctrl-C,
    /// `--stop-after`, a killed process) and resumed from its checkpoint; `None` when it trained
    /// in one go. Its wall time then sums the sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_at_step: Option<usize>,
}

/// The key in `allocation.meta` naming the method a child was not trained because of (its
/// twin, see [`crate::study::twin`]). Kept in the allocation's provenance rather than as a new
/// field, so that records stay constructible (and readable) exactly as before.
pub const TWIN_OF: &str = "twin_of";

impl ChildRecord {
    /// The record's file name: `<method>-seed<seed>.json`.
    pub fn file_name(&self) -> String {
        format!("{}-seed{}.json", self.method, self.seed)
    }

    pub fn save_in(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(self.file_name());
        let text = serde_json::to_string_pretty(self)? + "\n";
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        Ok(path)
    }

    pub fn load(path: &Path) -> Result<ChildRecord> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::parse(path, e.line(), format!("not a study child record: {e}")))
    }

    /// Every record in `dir` (`*.json`), sorted by file name; a missing folder gives none.
    pub fn load_dir(dir: &Path) -> Result<Vec<ChildRecord>> {
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        paths.iter().map(|p| ChildRecord::load(p)).collect()
    }

    /// The method whose finished child had exactly this allocation (same study, seed and
    /// protocol), when this child was not trained but took that child's metrics.
    pub fn twin_of(&self) -> Option<&str> {
        self.allocation.meta.get(TWIN_OF).map(String::as_str)
    }

    /// Whether the allocation changed during training (dynamic methods): such a child never
    /// has, and never is, a twin.
    pub fn is_dynamic(&self) -> bool {
        self.times_enabled.is_some() || self.num_reallocations > 0
    }

    /// The enabled slots as `layer.0.attention.query=8, ...`.
    pub fn enabled_string(&self) -> String {
        self.allocation
            .ranks
            .iter()
            .map(|(s, r)| format!("{s}={}", r.r))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The key of a child: `<study>/<method>/seed<seed>`.
pub fn child_key(study: &str, method: &str, seed: u64) -> String {
    format!("{study}/{method}/seed{seed}")
}
