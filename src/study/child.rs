//! One study child: claimed run in hand, it is scored and allocated, compared with the finished
//! children of its seed (a twin is recorded, not trained), then trained from its checkpoint if it
//! has one, recorded, and its checkpoint removed.

use super::claim::Heartbeat;
use super::config::KIND_CHILD;
use super::execute::{prepare_method, SameRun, TrainExtras};
use super::plan::ChildPlan;
use super::record::ChildRecord;
use super::report::StudyReport;
use super::runner::Study;
use super::twin::{find_twin, twin_record};
use crate::tracking::{Run, RunStatus};
use crate::{Error, Result};

impl Study {
    /// Trains (or records as a twin) one child on its claimed run.
    pub(super) fn run_child(&mut self, mut run: Run, child: &ChildPlan) -> Result<ChildRecord> {
        let m = &child.method;
        let every = self.claims.heartbeat_every;
        let tags = [
            ("heterolora.kind", KIND_CHILD.to_string()),
            ("study.name", self.cfg.name.clone()),
            ("study.key", child.key.clone()),
            ("study.method", m.name.clone()),
            ("study.family", m.family.clone()),
            ("study.seed", child.seed.to_string()),
            ("study.task", self.cfg.task.name().to_string()),
            ("study.protocol", self.cfg.protocol.name.clone()),
            ("study.dynamic", m.dynamic.to_string()),
        ];
        let res = (|| -> Result<ChildRecord> {
            run.set_tags(&tags)?;
            run.log_params(&[
                ("study.space", m.space.as_str().to_string()),
                ("study.allocator", serde_json::to_string(&m.allocator)?),
                ("study.budget", child.budget.params.to_string()),
            ])?;
            let loaded = self.source.load(
                self.cfg.task,
                self.cfg.protocol.max_len,
                &self.cfg.protocol.device,
                child.seed,
            )?;
            let prepared = prepare_method(
                m,
                loaded,
                &self.cfg.protocol,
                child.seed,
                &mut SameRun(&mut Heartbeat::new(&mut run, every)),
            )?;
            if !m.dynamic {
                let finished = StudyReport::collect(Some(&self.tracker), &self.cfg)?.records;
                if let Some(twin) =
                    find_twin(&finished, &self.cfg, &m.name, child.seed, &prepared.initial)
                {
                    let rec = twin_record(
                        twin,
                        &self.cfg,
                        m,
                        child,
                        &prepared,
                        Some(run.run_id().to_string()),
                    );
                    log_record(&mut run, &rec)?;
                    run.set_tags(&[
                        ("study.twin_of", rec.twin_of().unwrap_or_default()),
                        ("study.twin_run", twin.run_id.as_deref().unwrap_or("")),
                    ])?;
                    rec.save_in(&self.cfg.children_dir())?;
                    self.drop_checkpoint(child);
                    return Ok(rec);
                }
            }
            let mut extras = TrainExtras {
                checkpoint_dir: Some(self.cfg.checkpoint_dir(&child.method.name, child.seed)),
                hooks: self
                    .child_hooks
                    .as_mut()
                    .map(|f| f(child))
                    .unwrap_or_default(),
            };
            let out = prepared.train(
                &mut SameRun(&mut Heartbeat::new(&mut run, every)),
                Some(self.stop.clone()),
                &mut extras,
            )?;
            if let Some(step) = out.resumed_at_step {
                run.set_tag("study.resumed_at_step", step.to_string())?;
            }
            let rec = out.record(&self.cfg, m, child, Some(run.run_id().to_string()));
            log_record(&mut run, &rec)?;
            if out.result.status != RunStatus::Finished {
                return Err(Error::Other(format!(
                    "{} stopped before the end ({})",
                    child.key,
                    out.result.status.as_str()
                )));
            }
            rec.save_in(&self.cfg.children_dir())?;
            // The record holds the results and the tracker the adapters: the checkpoint has
            // served its purpose.
            self.drop_checkpoint(child);
            Ok(rec)
        })();
        match res {
            Ok(rec) => {
                run.end(RunStatus::Finished)?;
                Ok(rec)
            }
            Err(e) => {
                let _ = run.set_tag("error", e.to_string());
                let status = if self.stop.is_set() {
                    RunStatus::Killed
                } else {
                    RunStatus::Failed
                };
                let _ = run.end(status);
                Err(e)
            }
        }
    }

    /// Removes a finished child's checkpoint folder (and the study's checkpoint folder once it
    /// is empty). A failure only leaves files behind, so it is a warning.
    fn drop_checkpoint(&self, child: &ChildPlan) {
        let dir = self.cfg.checkpoint_dir(&child.method.name, child.seed);
        if dir.exists() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                eprintln!(
                    "warning: cannot remove the finished child's checkpoint {}: {e}",
                    dir.display()
                );
            }
        }
        if let Some(parent) = dir.parent() {
            // Only succeeds when empty.
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// Logs a child's record to its run: the `study_child.json` artifact the report reads, and the
/// headline numbers as metrics.
fn log_record(run: &mut Run, rec: &ChildRecord) -> Result<()> {
    // The trainer tags the run it trains `heterolora.kind = train`; a study child is found by
    // its own kind (completed children, the report's tracker side).
    run.set_tag("heterolora.kind", KIND_CHILD)?;
    run.log_text(&serde_json::to_string_pretty(rec)?, "study_child.json")?;
    run.log_metrics(
        &[
            (
                format!("study.best_dev_{}", rec.metric),
                rec.best_metric.unwrap_or(f64::NAN),
            ),
            (
                "study.adapter_params".to_string(),
                rec.adapter_params as f64,
            ),
            ("study.budget".to_string(), rec.budget as f64),
            ("study.wall_time_s".to_string(), rec.wall_time_s),
        ],
        0,
    )?;
    Ok(())
}
