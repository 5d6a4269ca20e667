//! Running a study: one parent run in the tracker, one child run per (method, seed), completed
//! children skipped, failed children reported without stopping the others.

use super::config::{Order, StudyConfig, KIND_CHILD, KIND_PARENT};
use super::execute::{prepare_method, SameRun};
use super::methods::Method;
use super::plan::{ChildPlan, Plan};
use super::record::{child_key, ChildRecord};
use super::report::StudyReport;
use super::source::StudySource;
use super::twin::{find_twin, twin_record};
use crate::tracking::{Run, RunStatus, Tracker};
use crate::train::StopFlag;
use crate::{Error, Result};
use std::collections::BTreeSet;
use std::time::Instant;

/// The outcome of [`Study::run`].
#[derive(Debug, Clone, Default)]
pub struct StudyOutcome {
    pub parent_run_id: String,
    pub finished: Vec<String>,
    pub skipped: Vec<String>,
    pub failed: Vec<(String, String)>,
    /// Children not trained because a finished child of the same seed and protocol had exactly
    /// their allocation: (key, the method trained). Also in `finished`.
    pub twins: Vec<(String, String)>,
    /// The child interrupted by a stop request (Ctrl-C), if any; it is retried next time.
    pub stopped: Option<String>,
}

/// A study bound to a tracker and a model/data source.
pub struct Study {
    pub cfg: StudyConfig,
    pub tracker: Tracker,
    pub source: Box<dyn StudySource>,
    /// Stops between (and, through the trainer, inside) children.
    pub stop: StopFlag,
}

impl Study {
    pub fn new(cfg: StudyConfig, tracker: Tracker, source: Box<dyn StudySource>) -> Self {
        Study {
            cfg,
            tracker,
            source,
            stop: StopFlag::new(),
        }
    }

    /// Keys of finished children: FINISHED child runs of this study in the tracker, and the
    /// committed records in `results/<name>/children/`.
    pub fn completed_keys(&self) -> Result<BTreeSet<String>> {
        let records: Vec<ChildRecord> = ChildRecord::load_dir(&self.cfg.children_dir())?
            .into_iter()
            .filter(|r| r.status == "FINISHED" && r.study == self.cfg.name)
            .collect();
        if let Some(r) = records.iter().find(|r| {
            r.protocol_settings
                .as_ref()
                .is_some_and(|p| p != &self.cfg.protocol)
        }) {
            return Err(Error::Config {
                field: "protocol".into(),
                reason: format!(
                    "{}: child `{}` of study `{}` was trained under another protocol ({}); \
                     continue it with the same settings, or name a new study with --name",
                    self.cfg.children_dir().display(),
                    r.key,
                    self.cfg.name,
                    serde_json::to_string(&r.protocol_settings).unwrap_or_default()
                ),
            });
        }
        let mut keys: BTreeSet<String> = records.into_iter().map(|r| r.key).collect();
        let exp = self.tracker.experiment(&self.cfg.experiment)?;
        let runs = exp.search_runs(
            &format!(
                "tags.`heterolora.kind` = '{KIND_CHILD}' and tags.`study.name` = '{}' and attributes.status = 'FINISHED'",
                self.cfg.name
            ),
            &[],
        )?;
        keys.extend(runs.strings("tags.study.key").into_iter().flatten());
        Ok(keys)
    }

    /// The plan: every (method, seed) in the configured order, with exact budgets.
    pub fn plan(&mut self) -> Result<Plan> {
        self.cfg.check()?;
        let dims = self.source.dims()?;
        let done = self.completed_keys()?;
        let mut pairs: Vec<(&Method, u64)> = Vec::new();
        match self.cfg.order {
            Order::MethodMajor => {
                for m in &self.cfg.methods {
                    pairs.extend(self.cfg.seeds.iter().map(|&s| (m, s)));
                }
            }
            Order::SeedMajor => {
                for &s in &self.cfg.seeds {
                    pairs.extend(self.cfg.methods.iter().map(|m| (m, s)));
                }
            }
        }
        let mut children = Vec::new();
        for (m, seed) in pairs {
            let key = child_key(&self.cfg.name, &m.name, seed);
            children.push(ChildPlan {
                method: m.clone(),
                seed,
                done: done.contains(&key),
                key,
                budget: m.budget(&dims)?,
            });
        }
        Ok(Plan {
            name: self.cfg.name.clone(),
            task: self.cfg.task,
            protocol: self.cfg.protocol.clone(),
            dims,
            children,
        })
    }

    /// The study's parent run: the existing one of this name (resumed) or a new one.
    fn parent_run(&self) -> Result<Run> {
        let exp = self.tracker.experiment(&self.cfg.experiment)?;
        let protocol_json = serde_json::to_string(&self.cfg.protocol)?;
        let found = exp.search_runs(
            &format!(
                "tags.`heterolora.kind` = '{KIND_PARENT}' and tags.`study.name` = '{}'",
                self.cfg.name
            ),
            &["attributes.start_time DESC"],
        )?;
        if let Some(id) = found.run_ids().first() {
            let prev = found.strings("tags.study.protocol_json");
            if let Some(Some(p)) = prev.first() {
                if p != &protocol_json {
                    return Err(Error::Config {
                        field: "protocol".into(),
                        reason: format!(
                            "study `{}` (run {id}) was started with another protocol ({p}); \
                             continue it with the same protocol or name a new study with --name",
                            self.cfg.name
                        ),
                    });
                }
            }
            return self.tracker.resume_run(id);
        }
        let mut run = exp.start_run(&format!("study-{}", self.cfg.name))?;
        run.set_tags(&[
            ("heterolora.kind", KIND_PARENT),
            ("study.name", self.cfg.name.as_str()),
            ("study.task", self.cfg.task.name()),
            ("study.protocol", self.cfg.protocol.name.as_str()),
            ("study.protocol_json", protocol_json.as_str()),
        ])?;
        run.log_params(&self.cfg.protocol.to_params())?;
        run.log_params(&[("task", self.cfg.task.name())])?;
        Ok(run)
    }

    /// Runs every pending child (in plan order), skipping finished ones; a failed child is
    /// reported through `on_event` and in the outcome, and the next one starts.
    pub fn run(&mut self, on_event: &mut dyn FnMut(&str)) -> Result<StudyOutcome> {
        let plan = self.plan()?;
        self.source.check(self.cfg.task)?;
        let mut parent = self.parent_run()?;
        parent.set_tags(&[
            ("study.source", self.source.describe()),
            (
                "study.methods",
                self.cfg
                    .methods
                    .iter()
                    .map(|m| m.name.clone())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (
                "study.seeds",
                self.cfg
                    .seeds
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ])?;
        let mut out = StudyOutcome {
            parent_run_id: parent.run_id().to_string(),
            ..Default::default()
        };
        let total = plan.children.len();
        for (i, child) in plan.children.iter().enumerate() {
            if child.done {
                out.skipped.push(child.key.clone());
                continue;
            }
            if self.stop.is_set() {
                on_event(&format!("stopped before {}", child.key));
                break;
            }
            on_event(&format!("[{}/{total}] {} ...", i + 1, child.key));
            let t0 = Instant::now();
            match self.run_child(&parent, child) {
                Ok(rec) if rec.twin_of().is_some() => {
                    let twin = rec.twin_of().unwrap_or_default().to_string();
                    on_event(&format!(
                        "[{}/{total}] {} has exactly the allocation {twin} trained on this seed: \
                         not trained, recorded as {twin}'s result",
                        i + 1,
                        child.key
                    ));
                    out.finished.push(child.key.clone());
                    out.twins.push((child.key.clone(), twin));
                }
                Ok(rec) => {
                    on_event(&format!(
                        "[{}/{total}] {} finished: best {} {:.4} at epoch {} ({} adapter params, {:.0} s)",
                        i + 1,
                        child.key,
                        rec.metric,
                        rec.best_metric.unwrap_or(f64::NAN),
                        rec.best_epoch.unwrap_or(0),
                        rec.adapter_params,
                        t0.elapsed().as_secs_f64()
                    ));
                    out.finished.push(child.key.clone());
                }
                Err(_) if self.stop.is_set() => {
                    on_event(&format!(
                        "[{}/{total}] {} stopped by request; it will run again next time",
                        i + 1,
                        child.key
                    ));
                    out.stopped = Some(child.key.clone());
                    break;
                }
                Err(e) => {
                    on_event(&format!("[{}/{total}] {} FAILED: {e}", i + 1, child.key));
                    out.failed.push((child.key.clone(), e.to_string()));
                }
            }
            let _ = parent.log_metrics(
                &[
                    ("study.finished", out.finished.len() as f64),
                    ("study.failed", out.failed.len() as f64),
                ],
                i as i64,
            );
        }
        let all_done = out.finished.len() + out.skipped.len() == total;
        parent.set_tags(&[
            ("study.children", total.to_string()),
            (
                "study.completed",
                (out.finished.len() + out.skipped.len()).to_string(),
            ),
            (
                "study.failed_children",
                out.failed
                    .iter()
                    .map(|(k, _)| k.clone())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ])?;
        let status = if !out.failed.is_empty() {
            RunStatus::Failed
        } else if all_done {
            RunStatus::Finished
        } else {
            RunStatus::Killed
        };
        parent.end(status)?;
        Ok(out)
    }

    fn run_child(&mut self, parent: &Run, child: &ChildPlan) -> Result<ChildRecord> {
        let m = &child.method;
        let mut run = parent.start_child(&format!("{}-seed{}", m.name, child.seed))?;
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
                &mut SameRun(&mut run),
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
                    return Ok(rec);
                }
            }
            let out = prepared.train(&mut SameRun(&mut run), Some(self.stop.clone()))?;
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
}

/// Logs a child's record to its run: the `study_child.json` artifact the report reads, and the
/// headline numbers as metrics.
fn log_record(run: &mut Run, rec: &ChildRecord) -> Result<()> {
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
