//! What a trainer writes and reads back: checkpoints, resuming, the final adapters as artifacts.

use super::Trainer;
use crate::model::AdaptedClassifier;
use crate::train::checkpoint::{self, AdapterRecord};
use crate::train::logger::RunLogger;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

impl<M: AdaptedClassifier> Trainer<M> {
    /// Continue from the checkpoint in `dir` (a checkpoint directory or a run's output
    /// directory): adapters, head, optimiser, step, data position, RNG, history, hook states.
    /// The trainer must have been built with the same config and allocation as the checkpoint's
    /// run; anything else is an error naming the difference.
    pub fn resume_from(&mut self, dir: &Path) -> Result<()> {
        let (ckpt_dir, state) = checkpoint::load_state(dir)?;
        if state.task != self.task.name() {
            return Err(Error::Config {
                field: "task".into(),
                reason: format!(
                    "the checkpoint is for {}, this run is {}",
                    state.task, self.task
                ),
            });
        }
        if state.config != self.cfg {
            let ours = self.cfg.to_params();
            let diff: Vec<String> = state
                .config
                .to_params()
                .into_iter()
                .zip(ours)
                .filter(|(a, b)| a.1 != b.1)
                .map(|(a, b)| format!("{} = {} in the checkpoint, {} now", a.0, a.1, b.1))
                .collect();
            if !diff.is_empty() {
                return Err(Error::Config {
                    field: "resume".into(),
                    reason: format!(
                        "the run's config differs from the checkpoint's: {}. Resume with the checkpoint's settings",
                        diff.join("; ")
                    ),
                });
            }
        }
        // Recreate every adapter the checkpoint had (a hook may have created more than the
        // initial allocation), then put the checkpoint's allocation in force.
        for a in &state.adapters {
            if self.model.slot_rank(a.slot) != Some((a.r, a.lora_alpha)) {
                self.model.add_slot(a.slot, a.r, a.lora_alpha)?;
            }
        }
        self.model.apply_allocation(&state.allocation)?;
        for a in &state.adapters {
            self.model.set_enabled(a.slot, a.enabled)?;
        }
        let vars = self.model.adapter_vars();
        checkpoint::restore(&ckpt_dir, &vars, &mut self.opt, &self.device)?;
        for hook in self.hooks.iter_mut() {
            if let Some(s) = state.hooks.get(hook.name()) {
                hook.load_state(s.clone())?;
            }
        }
        self.allocation = state.allocation.clone();
        self.vars = self.model.trainable_vars();
        self.st = state;
        self.resumed_from = Some(ckpt_dir);
        Ok(())
    }

    pub(super) fn checkpoint_dir(&self) -> Option<PathBuf> {
        self.output_dir.as_ref().map(|d| d.join("checkpoint"))
    }

    /// Write a checkpoint now (into `<output>/checkpoint`); a no-op without an output directory.
    pub fn save_checkpoint(&mut self) -> Result<()> {
        let Some(dir) = self.checkpoint_dir() else {
            return Ok(());
        };
        self.st.adapters = self
            .model
            .adapter_slots()
            .into_iter()
            .filter_map(|slot| {
                let (r, lora_alpha) = self.model.slot_rank(slot)?;
                Some(AdapterRecord {
                    slot,
                    r,
                    lora_alpha,
                    enabled: self.model.is_enabled(slot),
                })
            })
            .collect();
        self.st.allocation = self.allocation.clone();
        self.st.hooks = self
            .hooks
            .iter()
            .map(|h| (h.name().to_string(), h.state()))
            .collect();
        checkpoint::save(&dir, &self.st, &self.model.adapter_vars(), &self.opt)
    }

    pub(super) fn finish_artifacts(&mut self, logger: &mut dyn RunLogger) -> Result<()> {
        let (dir, temporary) = match &self.output_dir {
            Some(d) => (d.join("final"), false),
            None => (
                std::env::temp_dir().join(format!("heterolora-final-{}", uuid::Uuid::new_v4())),
                true,
            ),
        };
        self.model.save_adapters(&dir)?;
        log_dir(logger, &dir, "adapters")?;
        if let Some(out) = &self.output_dir {
            let best = out.join("best");
            if best.is_dir() {
                log_dir(logger, &best, "best_adapters")?;
            }
        }
        if temporary {
            let _ = std::fs::remove_dir_all(&dir);
        }
        Ok(())
    }
}

fn log_dir(logger: &mut dyn RunLogger, dir: &Path, artifact_dir: &str) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    for p in entries {
        logger.log_artifact(&p, Some(artifact_dir))?;
    }
    Ok(())
}
