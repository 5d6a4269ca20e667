//! [`Scores`]: one proxy's score per slot.

use crate::adapters::SlotId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The scores one proxy gave every candidate slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Proxy name (`grad-norm`, `snip`, `synflow`, `w0-grad-spectrum`, ...).
    pub proxy: String,
    pub values: BTreeMap<SlotId, f64>,
    /// For proxies that can say what each extra rank is worth: per slot, the score gained by
    /// ranks 1..=len (cumulative, non-decreasing). Used by the heterogeneous-rank allocator.
    #[serde(default)]
    pub rank_gains: Option<BTreeMap<SlotId, Vec<f64>>>,
    /// Training batches the scores were computed on.
    pub num_batches: usize,
    /// Wall time of the scoring, seconds.
    pub seconds: f64,
}

impl Scores {
    /// Pretty JSON (what `heterolora score` writes and `heterolora search --scores` reads).
    pub fn to_json(&self) -> crate::Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    pub fn from_json(json: &str) -> crate::Result<Scores> {
        Ok(serde_json::from_str(json)?)
    }

    /// Writes the JSON to `path`.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> crate::Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_json()? + "\n").map_err(|e| crate::Error::io(path, e))
    }

    /// Reads a scores JSON; errors name the file and the line.
    pub fn load(path: impl AsRef<std::path::Path>) -> crate::Result<Scores> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| crate::Error::io(path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| crate::Error::parse(path, e.line(), format!("not a scores JSON: {e}")))
    }
}
