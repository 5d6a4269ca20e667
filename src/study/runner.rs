//! Running a study: one parent run in the tracker, one child run per (method, seed), completed
//! children skipped, failed children reported without stopping the others.

use super::claim::{claim, Claim, ClaimPolicy, Worker};
use super::config::{Order, StudyConfig, KIND_CHILD, KIND_PARENT};
use super::methods::Method;
use super::plan::{ChildPlan, Plan};
use super::record::{child_key, ChildRecord};
use super::source::StudySource;
use crate::tracking::{Run, RunStatus, Tracker};
use crate::train::{StopFlag, TrainHook};
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
    /// The child interrupted by a stop request (Ctrl-C), if any; it continues from its checkpoint next time.
    pub stopped: Option<String>,
    /// Children another live worker was training: (key, its run id).
    pub busy: Vec<(String, String)>,
}

/// A study bound to a tracker and a model/data source.
pub struct Study {
    pub cfg: StudyConfig,
    pub tracker: Tracker,
    pub source: Box<dyn StudySource>,
    /// Stops between (and, through the trainer, inside) children.
    pub stop: StopFlag,
    /// How this worker claims children (settle time, staleness).
    pub claims: ClaimPolicy,
    /// This worker, as its claims name it.
    pub worker: Worker,
    /// More training hooks for each child (progress display, custom stops), made per child.
    pub child_hooks: Option<ChildHooks>,
}

/// Makes the extra training hooks of one child ([`Study::child_hooks`]).
pub type ChildHooks = Box<dyn FnMut(&ChildPlan) -> Vec<Box<dyn TrainHook>>>;

impl Study {
    pub fn new(cfg: StudyConfig, tracker: Tracker, source: Box<dyn StudySource>) -> Self {
        Study {
            cfg,
            tracker,
            source,
            stop: StopFlag::new(),
            claims: ClaimPolicy::default(),
            worker: Worker::current(),
            child_hooks: None,
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

    /// The study's parent run: the existing one of this name (resumed) or a new one, tagged with
    /// the source, methods and seeds. `--jobs` and `--emit slurm` open it once and hand its id to
    /// the workers ([`Study::run_worker`]).
    pub fn open_parent(&mut self) -> Result<Run> {
        let mut parent = self.find_or_start_parent()?;
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
        Ok(parent)
    }

    fn find_or_start_parent(&self) -> Result<Run> {
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
                // Compared as settings, not text: a parent written before a field existed reads
                // that field's documented default (see `Protocol`).
                let same = match serde_json::from_str::<crate::study::Protocol>(p) {
                    Ok(prev) => prev == self.cfg.protocol,
                    Err(_) => p == &protocol_json,
                };
                if !same {
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

    /// Runs every pending child (in plan order), skipping finished ones and ones another worker
    /// holds; a failed child is reported through `on_event` and in the outcome, and the next one
    /// starts. Ends the parent run: FINISHED when every child is done.
    pub fn run(&mut self, on_event: &mut dyn FnMut(&str)) -> Result<StudyOutcome> {
        let plan = self.plan()?;
        self.source.check(self.cfg.task)?;
        // A device that cannot be opened fails here once, not in every child.
        crate::device::parse_device(&self.cfg.protocol.device)?;
        let mut parent = self.open_parent()?;
        let all: Vec<usize> = (0..plan.children.len()).collect();
        let id = parent.run_id().to_string();
        let out = self.run_children(&plan, &all, &id, &mut Some(&mut parent), on_event)?;
        self.close_parent(&plan, &mut parent, &out)?;
        Ok(out)
    }

    /// Runs as one of several workers of the study whose parent run is `parent_run_id` (opened by
    /// [`Study::open_parent`]): every pending child this worker can claim, or only child
    /// `only` (its index in the plan: a Slurm array task). The parent is left to the others
    /// unless this worker sees every child done: then it marks the parent FINISHED.
    pub fn run_worker(
        &mut self,
        parent_run_id: &str,
        only: Option<usize>,
        on_event: &mut dyn FnMut(&str),
    ) -> Result<StudyOutcome> {
        let plan = self.plan()?;
        let parent = self.tracker.get_run(parent_run_id)?;
        let name = parent.tags.get("study.name").map(String::as_str);
        if name != Some(self.cfg.name.as_str()) {
            return Err(Error::Config {
                field: "parent-run".into(),
                reason: format!(
                    "run {parent_run_id} is not the parent run of study `{}` (its study.name tag is {:?}); \
                     pass the id that `--jobs` or `--emit slurm` printed",
                    self.cfg.name, name
                ),
            });
        }
        let indices: Vec<usize> = match only {
            Some(i) if i >= plan.children.len() => {
                return Err(Error::Config {
                    field: "child-index".into(),
                    reason: format!(
                        "{i} is past the plan's last child ({} children, indices 0-{}); \
                         the study's methods, seeds or order differ from the ones the job was made with",
                        plan.children.len(),
                        plan.children.len().saturating_sub(1)
                    ),
                })
            }
            Some(i) => vec![i],
            None => (0..plan.children.len()).collect(),
        };
        if indices.iter().any(|&i| !plan.children[i].done) {
            self.source.check(self.cfg.task)?;
            crate::device::parse_device(&self.cfg.protocol.device)?;
        }
        let out = self.run_children(&plan, &indices, &parent.info.run_id, &mut None, on_event)?;
        if self.all_done(&plan)? {
            self.tracker
                .set_terminated(&out.parent_run_id, RunStatus::Finished)?;
        }
        Ok(out)
    }

    /// Whether every child of `plan` is finished now (in the tracker or the committed records).
    pub fn all_done(&self, plan: &Plan) -> Result<bool> {
        let done = self.completed_keys()?;
        Ok(plan.children.iter().all(|c| done.contains(&c.key)))
    }

    /// Tags and ends the parent after a run: FINISHED when every child is done (whoever trained
    /// it), FAILED when a child failed here, KILLED otherwise (stopped, or children left).
    pub fn close_parent(&self, plan: &Plan, parent: &mut Run, out: &StudyOutcome) -> Result<()> {
        let total = plan.children.len();
        let done = self.completed_keys()?;
        let completed = plan
            .children
            .iter()
            .filter(|c| done.contains(&c.key))
            .count();
        parent.set_tags(&[
            ("study.children", total.to_string()),
            ("study.completed", completed.to_string()),
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
        } else if completed == total {
            RunStatus::Finished
        } else {
            RunStatus::Killed
        };
        parent.end(status)
    }

    fn run_children(
        &mut self,
        plan: &Plan,
        indices: &[usize],
        parent_id: &str,
        parent: &mut Option<&mut Run>,
        on_event: &mut dyn FnMut(&str),
    ) -> Result<StudyOutcome> {
        let mut out = StudyOutcome {
            parent_run_id: parent_id.to_string(),
            ..Default::default()
        };
        let total = plan.children.len();
        for &i in indices {
            let child = &plan.children[i];
            if child.done {
                out.skipped.push(child.key.clone());
                continue;
            }
            if self.stop.is_set() {
                on_event(&format!("stopped before {}", child.key));
                break;
            }
            let claimed = claim(
                &self.tracker,
                &self.cfg.experiment,
                parent_id,
                &format!("{}-seed{}", child.method.name, child.seed),
                &child.key,
                &self.worker,
                &self.claims,
            )?;
            let run = match claimed {
                Claim::Won(run) => run,
                Claim::Done(by) => {
                    on_event(&format!(
                        "[{}/{total}] {} finished by another worker (run {by})",
                        i + 1,
                        child.key
                    ));
                    out.skipped.push(child.key.clone());
                    continue;
                }
                Claim::Busy(by, who) => {
                    on_event(&format!(
                        "[{}/{total}] {} is being trained by another worker ({who}, run {by}): skipped",
                        i + 1,
                        child.key
                    ));
                    out.busy.push((child.key.clone(), by));
                    continue;
                }
            };
            on_event(&format!("[{}/{total}] {} ...", i + 1, child.key));
            let t0 = Instant::now();
            match self.run_child(run, child) {
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
                        "[{}/{total}] {} stopped by request; it continues next time (from its checkpoint once training has begun)",
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
            if let Some(p) = parent.as_mut() {
                let _ = p.log_metrics(
                    &[
                        ("study.finished", out.finished.len() as f64),
                        ("study.failed", out.failed.len() as f64),
                    ],
                    i as i64,
                );
            }
        }
        Ok(out)
    }
}
