//! Checkpoints: everything a run needs to continue exactly where it stopped.
//!
//! A checkpoint is a directory with three files:
//! - `state.json`: [`CheckpointState`]: config, allocation, step, data position (epoch and
//!   micro-batch within it), the dropout RNG, evaluations and loss history so far, hook states;
//! - `adapters.safetensors`: every adapter variable that exists (enabled or not) and the head,
//!   by variable name;
//! - `optimizer.safetensors`: AdamW moments and step counts ([`super::optim::AdamW::save`]).
//!
//! Data order needs no saving: the batcher's order is a pure function of (seed, epoch), so the
//! position is enough. A checkpoint is written to a sibling `*.tmp` directory and renamed into
//! place, so an interruption while writing leaves the previous checkpoint intact.

use super::config::TrainConfig;
use super::optim::AdamW;
use super::result::EvalRecord;
use crate::adapters::SlotId;
use crate::rng::Rng;
use crate::search::Allocation;
use crate::{Error, Result};
use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Format version of `state.json`.
pub const CHECKPOINT_VERSION: u32 = 1;

/// A created adapter as a checkpoint records it, so that a resumed model has the same set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterRecord {
    pub slot: SlotId,
    pub r: usize,
    pub lora_alpha: f64,
    pub enabled: bool,
}

/// The training loop's position and history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    pub version: u32,
    /// GLUE task name (`MRPC`).
    pub task: String,
    pub config: TrainConfig,
    /// The allocation in force at the checkpoint (a dynamic hook may have changed it).
    pub allocation: Allocation,
    /// Optimiser steps done.
    pub step: usize,
    /// 0-based epoch in progress.
    pub epoch: usize,
    /// Micro-batches of `epoch` already consumed.
    pub micro_in_epoch: usize,
    pub examples_seen: usize,
    /// The dropout stream, exactly where the next step will draw from it.
    pub dropout_rng: Rng,
    pub evals: Vec<EvalRecord>,
    pub loss_history: Vec<(usize, f64, f64)>,
    pub best_epoch: Option<usize>,
    pub best_metric: Option<f64>,
    /// Sum and count of step losses since the last evaluation.
    pub loss_since_eval: (f64, usize),
    /// Seconds spent in training steps, and in the whole run, before the checkpoint.
    pub train_time_s: f64,
    pub wall_time_s: f64,
    /// Serialised state of each hook, by hook name.
    #[serde(default)]
    pub hooks: BTreeMap<String, serde_json::Value>,
    /// The tracker run that wrote the checkpoint.
    #[serde(default)]
    pub run_id: Option<String>,
    /// Whether the run had completed all its steps.
    #[serde(default)]
    pub finished: bool,
    /// Every adapter the model had created (enabled or not), recreated on resume.
    #[serde(default)]
    pub adapters: Vec<AdapterRecord>,
    /// Where the base model came from (a directory), for `--resume` without `--model`.
    #[serde(default)]
    pub model: String,
}

pub const STATE_FILE: &str = "state.json";
pub const ADAPTERS_FILE: &str = "adapters.safetensors";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";

/// Write a checkpoint of `state`, the variables `vars` and the optimiser into `dir`, atomically.
pub fn save(
    dir: &Path,
    state: &CheckpointState,
    vars: &[(String, Var)],
    opt: &AdamW,
) -> Result<()> {
    let tmp = sibling(dir, "tmp");
    let old = sibling(dir, "old");
    for d in [&tmp, &old] {
        if d.exists() {
            std::fs::remove_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
    }
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let tensors: HashMap<String, Tensor> = vars
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
        .collect();
    let adapters = tmp.join(ADAPTERS_FILE);
    candle_core::safetensors::save(&tensors, &adapters).map_err(|e| {
        Error::Other(format!(
            "{}: cannot write adapters: {e}",
            adapters.display()
        ))
    })?;
    opt.save(&tmp.join(OPTIMIZER_FILE))?;
    let json = serde_json::to_string_pretty(state)?;
    let state_path = tmp.join(STATE_FILE);
    std::fs::write(&state_path, json).map_err(|e| Error::io(&state_path, e))?;
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(|e| Error::io(dir, e))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    Ok(())
}

/// Read the state of the checkpoint in `dir` (a checkpoint directory, or a run output directory
/// holding one in `checkpoint/`).
pub fn load_state(dir: &Path) -> Result<(PathBuf, CheckpointState)> {
    let dir = resolve(dir)?;
    let path = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let state: CheckpointState = serde_json::from_str(&text).map_err(|e| {
        Error::parse(
            &path,
            e.line(),
            format!("not a heterolora checkpoint state: {e}"),
        )
    })?;
    if state.version != CHECKPOINT_VERSION {
        return Err(Error::parse(
            &path,
            1,
            format!(
                "checkpoint version {} but this build reads version {CHECKPOINT_VERSION}",
                state.version
            ),
        ));
    }
    Ok((dir, state))
}

/// Copy the saved variables into `vars` (by name) and restore `opt`. Every variable of `vars`
/// must be in the checkpoint with the same shape; extra saved tensors are an error too, since
/// they mean the model was built with another allocation or head.
pub fn restore(dir: &Path, vars: &[(String, Var)], opt: &mut AdamW, device: &Device) -> Result<()> {
    let path = dir.join(ADAPTERS_FILE);
    let saved = candle_core::safetensors::load(&path, device)
        .map_err(|e| Error::Other(format!("{}: cannot read adapters: {e}", path.display())))?;
    for (name, var) in vars {
        let t = saved.get(name).ok_or_else(|| Error::MissingWeight {
            name: name.clone(),
            source_name: path.display().to_string(),
        })?;
        if t.dims() != var.dims() {
            return Err(Error::Shape {
                name: name.clone(),
                expected: var.dims().to_vec(),
                actual: t.dims().to_vec(),
            });
        }
        var.set(&t.to_dtype(var.dtype())?)?;
    }
    if let Some(extra) = saved.keys().find(|k| !vars.iter().any(|(n, _)| n == *k)) {
        return Err(Error::parse(
            &path,
            0,
            format!("holds `{extra}`, which the model does not have: the checkpoint was made with another allocation or model"),
        ));
    }
    opt.load(&dir.join(OPTIMIZER_FILE), device)
}

/// The checkpoint directory in `dir` (a checkpoint directory, or a run output directory holding
/// one in `checkpoint/`), if there is one.
pub fn locate(dir: &Path) -> Option<PathBuf> {
    resolve(dir).ok()
}

fn resolve(dir: &Path) -> Result<PathBuf> {
    if dir.join(STATE_FILE).is_file() {
        return Ok(dir.to_path_buf());
    }
    let nested = dir.join("checkpoint");
    if nested.join(STATE_FILE).is_file() {
        return Ok(nested);
    }
    Err(Error::Asset {
        what: format!("checkpoint {}", dir.display()),
        reason: format!("no {STATE_FILE} in it or in its checkpoint/ folder"),
        hint: "pass the --output directory of the run to resume, or its checkpoint/ folder".into(),
    })
}

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".into());
    dir.with_file_name(format!("{name}.{suffix}"))
}
