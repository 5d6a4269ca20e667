//! Fetching and locating the model and the GLUE data, with checksums.
//!
//! Paths: the datasets root is `HETEROLORA_DATA_DIR`, else `datasets/` in the crate root (the
//! nearest folder above the working directory whose `Cargo.toml` is this crate's, then the
//! folder this crate was built from), else `./datasets`. Under it: `models/<name>/`,
//! `glue/<TASK>/` and `.cache/` (downloaded wheels and archives).
//!
//! Reading code finds assets through [`model_dir`] / [`glue_dir`], which honour
//! `HETEROLORA_MODEL_DIR` and `HETEROLORA_GLUE_DIR` first; [`require_model_dir`] and
//! [`require_glue_dir`] fail with the `heterolora fetch ...` command to run. Commands that
//! need them go through [`ensure_model`] / [`ensure_glue`], which fetch into the default folders
//! on first use (see [`ensure`]). A model folder's files are checked and its tokenizer and a
//! task's encoded splits come from [`ModelFolder`] and [`encode_split`].

pub mod checksum;
pub mod download;
pub mod ensure;
pub mod folder;
pub mod glue;
pub mod manifest;
pub mod model;
pub mod model_info;

pub use ensure::{ensure_assets, ensure_glue, ensure_model, AssetPlan};
pub use folder::{check_split, encode_split, ModelFolder};
pub use glue::{fetch_glue, GlueFetchOptions, GlueFetchReport};
pub use manifest::{glue_manifest, model_spec, ModelSpec};
pub use model::{fetch_model, ModelFetchOptions, ModelFetchReport, ModelSource};
pub use model_info::ModelInfo;

use crate::data::Task;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The model used when none is named.
pub const DEFAULT_MODEL: &str = "all-MiniLM-L6-v2";
pub const DATA_DIR_ENV: &str = "HETEROLORA_DATA_DIR";
pub const MODEL_DIR_ENV: &str = "HETEROLORA_MODEL_DIR";
pub const GLUE_DIR_ENV: &str = "HETEROLORA_GLUE_DIR";

/// What a fetch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchStatus {
    /// Everything was in place and verified; nothing was written.
    AlreadyPresent,
    Installed {
        source: String,
    },
    /// Files were missing or did not verify and were replaced.
    Repaired {
        source: String,
    },
}

impl std::fmt::Display for FetchStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchStatus::AlreadyPresent => f.write_str("already in place, verified, nothing to do"),
            FetchStatus::Installed { source } => write!(f, "installed from {source}"),
            FetchStatus::Repaired { source } => write!(f, "repaired from {source}"),
        }
    }
}

fn is_this_crate(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .map(|s| s.contains("name = \"heterolora\""))
        .unwrap_or(false)
}

/// The datasets root (see the module docs).
pub fn datasets_root() -> PathBuf {
    if let Some(d) = std::env::var_os(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    if let Some(root) = cwd.ancestors().find(|d| is_this_crate(d)) {
        return root.join("datasets");
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR"));
    if is_this_crate(built) {
        return built.join("datasets");
    }
    cwd.join("datasets")
}

/// The folder of model `name`: `HETEROLORA_MODEL_DIR` when set (for the default model, or when
/// its last component is `name`), else `<datasets root>/models/<name>`.
pub fn model_dir(name: &str) -> PathBuf {
    resolve_model_dir(None, name)
}

/// [`model_dir`] with an explicit folder taking precedence.
pub fn resolve_model_dir(explicit: Option<&Path>, name: &str) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(d) = std::env::var_os(MODEL_DIR_ENV).filter(|d| !d.is_empty()) {
        let d = PathBuf::from(d);
        let matches = name.eq_ignore_ascii_case(DEFAULT_MODEL)
            || d.file_name()
                .is_some_and(|n| n.to_string_lossy().eq_ignore_ascii_case(name));
        if matches {
            return d;
        }
    }
    let short = name.rsplit('/').next().unwrap_or(name);
    datasets_root().join("models").join(short)
}

/// The GLUE root (holding `<TASK>/` folders): `HETEROLORA_GLUE_DIR`, else `<datasets root>/glue`.
pub fn glue_dir() -> PathBuf {
    resolve_glue_dir(None)
}

/// [`glue_dir`] with an explicit folder taking precedence.
pub fn resolve_glue_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    match std::env::var_os(GLUE_DIR_ENV).filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => datasets_root().join("glue"),
    }
}

/// [`model_dir`], failing (with the fetch command to run) when `config.json`,
/// `tokenizer.json` or `model.safetensors` is missing.
pub fn require_model_dir(name: &str) -> Result<PathBuf> {
    let dir = model_dir(name);
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        if !dir.join(f).is_file() {
            return Err(Error::Asset {
                what: format!("model {name}"),
                reason: format!("{} does not exist", dir.join(f).display()),
                hint: format!(
                    "Run `heterolora fetch model {name}` (or set {MODEL_DIR_ENV} to a model folder)"
                ),
            });
        }
    }
    Ok(dir)
}

/// [`glue_dir`], failing (with the fetch command to run) when `task`'s dev split is missing.
pub fn require_glue_dir(task: Task) -> Result<PathBuf> {
    let dir = glue_dir();
    let dev = dir.join(task.dir_name()).join("dev.tsv");
    if !dev.is_file() {
        return Err(Error::Asset {
            what: format!("GLUE {task}"),
            reason: format!("{} does not exist", dev.display()),
            hint: format!(
                "Run `heterolora fetch glue {} --from DIR` (or set {GLUE_DIR_ENV} to a GLUE folder)",
                task.name()
            ),
        });
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_folders_win_and_the_root_is_a_datasets_folder() {
        let p = Path::new("/some/where");
        assert_eq!(resolve_model_dir(Some(p), DEFAULT_MODEL), p);
        assert_eq!(resolve_glue_dir(Some(p)), p);
        if std::env::var_os(DATA_DIR_ENV).is_none() {
            let root = datasets_root();
            assert!(root.ends_with("datasets"), "{}", root.display());
            assert!(root.parent().is_some_and(is_this_crate));
        }
        // An org/name hub id lands in a folder named after the model.
        if std::env::var_os(MODEL_DIR_ENV).is_none() {
            assert!(model_dir("org/some-model").ends_with("models/some-model"));
        }
        assert_eq!(
            FetchStatus::AlreadyPresent.to_string(),
            "already in place, verified, nothing to do"
        );
    }
}
