//! [`ModelFolder`]: a model folder whose files were checked (`config.json`, `tokenizer.json`,
//! the safetensors weights, one file or shards), with its tokenizer; and [`encode_split`]: a
//! task's split read from the GLUE root and encoded with it. The asset half of the one loading
//! path every command and notebook takes ([`crate::model::AssetLoader`] adds the model).
//!
//! ```no_run
//! use heterolora::assets::{encode_split, ModelFolder};
//! use heterolora::data::{Split, Task};
//! # fn main() -> heterolora::Result<()> {
//! let folder = ModelFolder::open(ModelFolder::resolve(None))?;
//! let tok = folder.tokenizer(128)?;
//! let dev = encode_split(&tok, &heterolora::assets::glue_dir(), Task::Mrpc, Split::Dev, None)?;
//! # Ok(()) }
//! ```

use super::{resolve_model_dir, DEFAULT_MODEL, GLUE_DIR_ENV, MODEL_DIR_ENV};
use crate::data::pad::{self, DECODER_MODEL_TYPES};
use crate::data::{load_split, EncodedDataset, Split, Task, Tokenizer};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The weights of a model folder: one file, or the index of a sharded checkpoint.
pub const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "model.safetensors.index.json"];

/// A model folder with `config.json`, `tokenizer.json` and safetensors weights, and the
/// `model_type` its config names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFolder {
    pub dir: PathBuf,
    /// `config.json`'s `model_type` (`bert`, `opt`, `llama`, `qwen2`, ...), when it has one.
    pub model_type: Option<String>,
}

impl ModelFolder {
    /// The folder to use: `explicit` (`--model DIR`), else `$HETEROLORA_MODEL_DIR`, else the
    /// default model's folder under `datasets/models/`.
    pub fn resolve(explicit: Option<&Path>) -> PathBuf {
        resolve_model_dir(explicit, DEFAULT_MODEL)
    }

    /// Checks that `dir` holds a model: an error names the first missing file and the command
    /// that fetches the default model.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        let missing = |file: String| Error::Asset {
            what: format!("model {}", dir.display()),
            reason: format!("{file} does not exist"),
            hint: format!(
                "Run `heterolora fetch model {DEFAULT_MODEL}`, pass --model DIR or set \
                 {MODEL_DIR_ENV} to a folder with config.json, tokenizer.json and \
                 model.safetensors"
            ),
        };
        for f in ["config.json", "tokenizer.json"] {
            if !dir.join(f).is_file() {
                return Err(missing(dir.join(f).display().to_string()));
            }
        }
        if !WEIGHT_FILES.iter().any(|f| dir.join(f).is_file()) {
            return Err(missing(dir.join(WEIGHT_FILES[0]).display().to_string()));
        }
        let model_type = pad::read_config(&dir)?
            .as_ref()
            .and_then(pad::model_type)
            .map(str::to_string);
        Ok(ModelFolder { dir, model_type })
    }

    /// [`ModelFolder::resolve`] then [`ModelFolder::open`].
    pub fn find(explicit: Option<&Path>) -> Result<Self> {
        Self::open(Self::resolve(explicit))
    }

    /// Whether the model is a decoder (OPT, Llama, Qwen2) rather than a BERT encoder.
    pub fn is_decoder(&self) -> bool {
        self.model_type
            .as_deref()
            .is_some_and(|t| DECODER_MODEL_TYPES.contains(&t))
    }

    /// The folder's tokenizer truncating at `max_len`, padding with the model's pad id.
    pub fn tokenizer(&self, max_len: usize) -> Result<Tokenizer> {
        Tokenizer::from_model_dir(&self.dir, max_len)
    }
}

/// `task`'s `split` from the GLUE root `glue_dir`, encoded with `tok`; `limit` keeps its first
/// rows. A missing file is an error naming the fetch command.
pub fn encode_split(
    tok: &Tokenizer,
    glue_dir: &Path,
    task: Task,
    split: Split,
    limit: Option<usize>,
) -> Result<EncodedDataset> {
    check_split(glue_dir, task, split)?;
    let enc = tok.encode_dataset(&load_split(glue_dir, task, split)?)?;
    Ok(match limit {
        Some(n) if n < enc.len() => enc.select(&(0..n).collect::<Vec<_>>()),
        _ => enc,
    })
}

/// Fails, naming the fetch command, when `task`'s `split` file is not under `glue_dir`.
pub fn check_split(glue_dir: &Path, task: Task, split: Split) -> Result<()> {
    let p = glue_dir.join(task.dir_name()).join(split.file_name());
    if p.is_file() {
        return Ok(());
    }
    Err(Error::Asset {
        what: format!("GLUE {} {}", task.name(), split.name()),
        reason: format!("{} does not exist", p.display()),
        hint: format!(
            "Run `heterolora fetch glue {}`, or pass --glue DIR / set {GLUE_DIR_ENV}",
            task.name()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_needs_config_tokenizer_and_weights_one_file_or_shards() {
        let dir = tempfile::tempdir().unwrap();
        let err = ModelFolder::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("config.json") && err.contains("--model DIR"),
            "{err}"
        );
        std::fs::write(dir.path().join("config.json"), r#"{"model_type": "llama"}"#).unwrap();
        std::fs::write(dir.path().join("tokenizer.json"), "{}").unwrap();
        let err = ModelFolder::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("model.safetensors"), "{err}");
        std::fs::write(dir.path().join("model.safetensors.index.json"), "{}").unwrap();
        let f = ModelFolder::open(dir.path()).unwrap();
        assert_eq!(f.model_type.as_deref(), Some("llama"));
        assert!(f.is_decoder());
    }

    #[test]
    fn a_missing_split_names_the_fetch_command() {
        let dir = tempfile::tempdir().unwrap();
        let err = check_split(dir.path(), Task::Rte, Split::Train)
            .unwrap_err()
            .to_string();
        assert!(err.contains("heterolora fetch glue rte"), "{err}");
    }
}
