//! Running a study: one parent run in the tracker, one child run per (method, seed), completed
//! children skipped, failed children reported without stopping the others.

use super::dynamic::DynamicHook;
use super::methods::Method;
use super::protocol::Protocol;
use super::record::{child_key, ChildRecord};
use super::source::{Loaded, StudySource};
use crate::adapters::ModelDims;
use crate::data::Task;
use crate::proxy::{self, dynamic::DynamicReallocator, Scores, ScoringData};
use crate::rng::Rng;
use crate::search::{Allocation, Budget};
use crate::tracking::{Run, RunLogger, RunStatus, Tracker};
use crate::train::{StopFlag, TrainResult, Trainer};
use crate::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Tag values that mark study runs in the tracker.
pub const KIND_PARENT: &str = "study";
pub const KIND_CHILD: &str = "study-child";

/// What a study is: task, protocol, methods, seeds, where it logs and writes.
#[derive(Debug, Clone)]
pub struct StudyConfig {
    /// Study name: the parent run's name and the prefix of every child key. Default: the task
    /// (`mrpc`) under the CPU protocol, `<task>-<protocol>` otherwise.
    pub name: String,
    pub task: Task,
    pub protocol: Protocol,
    pub methods: Vec<Method>,
    pub seeds: Vec<u64>,
    /// Tracker experiment (default `study-<task>`).
    pub experiment: String,
    /// Where the report and the committed child records go (default `results/<name>`).
    pub results_dir: PathBuf,
    /// Run order of the children.
    pub order: Order,
}

/// The order children run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Every method on the first seed, then every method on the next seed: a study cut short
    /// has compared all methods on the same seeds.
    #[default]
    SeedMajor,
    /// Every seed of the first method, then of the next.
    MethodMajor,
}

impl std::str::FromStr for Order {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "seed-major" | "seed" => Ok(Order::SeedMajor),
            "method-major" | "method" => Ok(Order::MethodMajor),
            _ => Err(Error::invalid("order", s, "`seed-major` or `method-major`")),
        }
    }
}

/// The study's default seeds (the reference's).
pub const SEEDS: [u64; 3] = [0, 13, 42];

impl StudyConfig {
    pub fn new(task: Task, protocol: Protocol) -> Self {
        let name = if protocol.name == "cpu" {
            task.name().to_string()
        } else {
            format!("{}-{}", task.name(), protocol.name)
        };
        StudyConfig {
            experiment: format!("study-{}", task.name()),
            results_dir: PathBuf::from("results").join(&name),
            name,
            task,
            methods: if protocol.name == "cpu" {
                Method::cpu_default()
            } else {
                Method::all()
            },
            protocol,
            seeds: SEEDS.to_vec(),
            order: Order::default(),
        }
    }
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
    pub fn methods(mut self, methods: Vec<Method>) -> Self {
        self.methods = methods;
        self
    }
    pub fn seeds(mut self, seeds: Vec<u64>) -> Self {
        self.seeds = seeds;
        self
    }
    pub fn experiment(mut self, e: impl Into<String>) -> Self {
        self.experiment = e.into();
        self
    }
    pub fn results_dir(mut self, d: impl Into<PathBuf>) -> Self {
        self.results_dir = d.into();
        self
    }

    /// Folder of the committed child records.
    pub fn children_dir(&self) -> PathBuf {
        self.results_dir.join("children")
    }

    pub fn check(&self) -> Result<()> {
        self.protocol.check()?;
        let ok = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        if self.name.is_empty() || !self.name.chars().all(ok) {
            return Err(Error::invalid(
                "study name",
                &self.name,
                "letters, digits, `-`, `_` or `.`",
            ));
        }
        if self.methods.is_empty() {
            return Err(Error::invalid("methods", "none", "at least one method"));
        }
        if self.seeds.is_empty() {
            return Err(Error::invalid("seeds", "none", "at least one seed"));
        }
        let mut s = self.seeds.clone();
        s.sort();
        s.dedup();
        if s.len() != self.seeds.len() {
            return Err(Error::invalid(
                "seeds",
                format!("{:?}", self.seeds),
                "distinct seeds",
            ));
        }
        Ok(())
    }
}

/// One planned child.
#[derive(Debug, Clone)]
pub struct ChildPlan {
    pub method: Method,
    pub seed: u64,
    pub key: String,
    pub budget: Budget,
    /// Already finished (in the tracker or in the committed records): will be skipped.
    pub done: bool,
}

/// The plan of a study: every child in run order, with budgets and what is already done.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub task: Task,
    pub protocol: Protocol,
    pub dims: ModelDims,
    pub children: Vec<ChildPlan>,
}

impl Plan {
    pub fn pending(&self) -> impl Iterator<Item = &ChildPlan> {
        self.children.iter().filter(|c| !c.done)
    }
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let done = self.children.iter().filter(|c| c.done).count();
        writeln!(
            f,
            "study `{}` on {} ({} layers, hidden {}), protocol {}",
            self.name,
            self.task.name(),
            self.dims.num_layers,
            self.dims.hidden_size,
            self.protocol.describe()
        )?;
        writeln!(
            f,
            "{} children, {done} already finished, {} to run (in this order):",
            self.children.len(),
            self.children.len() - done
        )?;
        let mut seen = BTreeSet::new();
        writeln!(
            f,
            "  {:<30} {:<14} {:>7} {:>6}  {:<28} seeds",
            "method", "space", "budget", "slots", "proxy"
        )?;
        for c in &self.children {
            if !seen.insert(c.method.name.clone()) {
                continue;
            }
            let seeds: Vec<String> = self
                .children
                .iter()
                .filter(|x| x.method.name == c.method.name)
                .map(|x| format!("{}{}", x.seed, if x.done { "(done)" } else { "" }))
                .collect();
            writeln!(
                f,
                "  {:<30} {:<14} {:>7} {:>6}  {:<28} {}",
                c.method.name,
                c.method.space.as_str(),
                c.budget.params,
                c.method.candidates(&self.dims).len(),
                format!(
                    "{}{}",
                    c.method.proxy.as_deref().unwrap_or("-"),
                    if c.method.dynamic { " (dynamic)" } else { "" }
                ),
                seeds.join(" ")
            )?;
            writeln!(f, "      {}; budget: {}", c.method.description, c.budget)?;
        }
        Ok(())
    }
}

/// The outcome of [`Study::run`].
#[derive(Debug, Clone, Default)]
pub struct StudyOutcome {
    pub parent_run_id: String,
    pub finished: Vec<String>,
    pub skipped: Vec<String>,
    pub failed: Vec<(String, String)>,
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
            let out = execute_method(
                m,
                loaded,
                &self.cfg.protocol,
                child.seed,
                &mut SameRun(&mut run),
                Some(self.stop.clone()),
            )?;
            let rec = out.record(&self.cfg, m, child, Some(run.run_id().to_string()));
            run.log_text(&serde_json::to_string_pretty(&rec)?, "study_child.json")?;
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

/// The phases a method runs through, each logged to a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Score,
    Search,
    Train,
}

/// Which run each phase logs to: one run for all (a study child), or one per phase
/// (`heterolora run`).
pub trait PhaseLoggers {
    fn logger(&mut self, phase: Phase) -> &mut dyn RunLogger;
}

/// Every phase to the same run.
pub struct SameRun<'a>(pub &'a mut dyn RunLogger);

impl PhaseLoggers for SameRun<'_> {
    fn logger(&mut self, _: Phase) -> &mut dyn RunLogger {
        &mut *self.0
    }
}

/// Forwards everything but `end` (and remembers the status asked for), so that the trainer's
/// end of a run does not end the study child that still has results to log.
pub struct NoEnd<'a> {
    inner: &'a mut dyn RunLogger,
    pub status: Option<RunStatus>,
}

impl<'a> NoEnd<'a> {
    pub fn new(inner: &'a mut dyn RunLogger) -> Self {
        NoEnd {
            inner,
            status: None,
        }
    }
}

impl RunLogger for NoEnd<'_> {
    fn log_params(&mut self, params: &[(String, String)]) -> Result<()> {
        self.inner.log_params(params)
    }
    fn log_metrics(&mut self, metrics: &[(String, f64)], step: i64) -> Result<()> {
        self.inner.log_metrics(metrics, step)
    }
    fn set_tags(&mut self, tags: &[(String, String)]) -> Result<()> {
        self.inner.set_tags(tags)
    }
    fn log_artifact(&mut self, local_path: &Path, artifact_dir: Option<&str>) -> Result<()> {
        self.inner.log_artifact(local_path, artifact_dir)
    }
    fn log_text(&mut self, text: &str, artifact_file: &str) -> Result<()> {
        self.inner.log_text(text, artifact_file)
    }
    fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }
    fn end(&mut self, status: RunStatus) -> Result<()> {
        self.status = Some(status);
        self.inner.flush()
    }
    fn run_id(&self) -> Option<String> {
        self.inner.run_id()
    }
}

/// What one method produced on one seed.
#[derive(Debug, Clone)]
pub struct MethodOutput {
    pub result: TrainResult,
    /// The allocation before training (static) or after the first re-allocation (dynamic).
    pub initial: Allocation,
    /// The allocation in force at the end.
    pub last: Allocation,
    pub scores: Option<Scores>,
    pub scoring_seconds: f64,
    pub budget: Budget,
    pub trainable_params: usize,
    pub times_enabled: Option<BTreeMap<crate::adapters::SlotId, usize>>,
    pub num_reallocations: usize,
}

impl MethodOutput {
    /// The report's record of this output.
    pub fn record(
        &self,
        cfg: &StudyConfig,
        m: &Method,
        child: &ChildPlan,
        run_id: Option<String>,
    ) -> ChildRecord {
        let r = &self.result;
        let metric = r.primary_metric.clone();
        ChildRecord {
            key: child.key.clone(),
            study: cfg.name.clone(),
            task: cfg.task.name().to_string(),
            protocol: cfg.protocol.name.clone(),
            protocol_settings: Some(cfg.protocol.clone()),
            method: m.name.clone(),
            family: m.family.clone(),
            seed: child.seed,
            status: r.status.as_str().to_string(),
            run_id,
            best_metric: r.best_metric,
            best_epoch: r.best_epoch,
            best_metrics: r.best_metrics().cloned().unwrap_or_default(),
            epoch_metrics: r
                .epoch_evals()
                .iter()
                .map(|e| e.metrics.get(&metric).copied().unwrap_or(f64::NAN))
                .collect(),
            metric,
            budget: self.budget.params,
            adapter_params: self.last.trainable_params(),
            trainable_params: self.trainable_params,
            wall_time_s: r.wall_time_s + self.scoring_seconds,
            scoring_seconds: self.scoring_seconds,
            allocation: if m.dynamic {
                self.last.clone()
            } else {
                self.initial.clone()
            },
            scores: self.scores.clone(),
            times_enabled: self.times_enabled.clone(),
            num_reallocations: self.num_reallocations,
            finished_at_ms: Some(now_ms()),
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Scores (if the method needs it), allocates, checks the budget and trains one method on one
/// seed: the body of a study child and of `heterolora run`.
pub fn execute_method(
    m: &Method,
    loaded: Loaded,
    protocol: &Protocol,
    seed: u64,
    loggers: &mut dyn PhaseLoggers,
    stop: Option<StopFlag>,
) -> Result<MethodOutput> {
    let Loaded {
        mut model,
        mut train,
        dev,
    } = loaded;
    if let Some(n) = protocol.limit_train {
        let n = n.min(train.len());
        train = train.select(&(0..n).collect::<Vec<_>>());
    }
    let dims = model.dims();
    let cfg = protocol.train_config(seed);
    let budget = m.budget(&dims)?;
    let cands = m.candidates(&dims);
    let mut scores = None;
    let mut scoring_seconds = 0.0;
    let mut hook = None;
    let mut log_handle = None;

    let initial = if m.dynamic {
        let topk = m.topk(seed)?.ok_or_else(|| Error::Config {
            field: "method".into(),
            reason: format!("dynamic method {} needs a top-k allocator", m.name),
        })?;
        let data = ScoringData::from_dataset(
            &train,
            protocol.scoring_batch_size,
            protocol.scoring_batches,
            model.device(),
        )?;
        let mut re = DynamicReallocator::new(
            protocol.dynamic_schedule(),
            topk,
            m.space.search_space(),
            seed,
        )?
        .with_proxy(proxy::by_name(m.proxy.as_deref().unwrap_or("grad-norm"))?)
        .with_num_batches(protocol.scoring_batches)
        .with_batches(data.batches);
        let spe = cfg.steps_per_epoch(train.len());
        let t0 = Instant::now();
        let a = re.reallocate(&mut model, 0, spe, Some(loggers.logger(Phase::Score)))?;
        scoring_seconds = t0.elapsed().as_secs_f64();
        scores = re.log.records.last().map(|r| r.scores.clone());
        let h = DynamicHook::new(re, true);
        log_handle = Some(h.log_handle());
        hook = Some(h);
        a
    } else if m.needs_scores() {
        let name = m.proxy.as_deref().unwrap_or("grad-norm");
        let data = ScoringData::from_dataset(
            &train,
            protocol.scoring_batch_size,
            protocol.scoring_batches,
            model.device(),
        )?;
        let p = proxy::by_name(name)?;
        let mut rng = Rng::derive(seed, "study.proxy");
        let t0 = Instant::now();
        let s = p.score(&mut model, &data.batches, &cands, &mut rng)?;
        scoring_seconds = t0.elapsed().as_secs_f64();
        let lg = loggers.logger(Phase::Score);
        lg.log_text(&s.to_json()?, "scores.json")?;
        let mut metrics: Vec<(String, f64)> = s
            .values
            .iter()
            .map(|(slot, v)| (format!("score.{slot}"), *v))
            .collect();
        metrics.push(("scoring_seconds".into(), scoring_seconds));
        lg.log_metrics(&metrics, 0)?;
        let a = m.allocate(&dims, Some(&s), seed)?;
        scores = Some(s);
        a
    } else {
        m.allocate(&dims, None, seed)?
    };

    let spent = initial.trainable_params();
    if spent > budget.params {
        return Err(Error::Budget(format!(
            "method {} allocated {spent} adapter parameters, over its budget of {budget}",
            m.name
        )));
    }
    {
        let lg = loggers.logger(Phase::Search);
        lg.log_text(&initial.to_json()?, "initial_allocation.json")?;
        lg.log_params(&[
            ("study.adapter_params".to_string(), spent.to_string()),
            ("study.budget_origin".to_string(), budget.origin.clone()),
        ])?;
    }

    let mut trainer = Trainer::new(model, initial.clone(), train, dev, cfg)?;
    if let Some(h) = hook {
        trainer = trainer.add_hook(Box::new(h));
    }
    if let Some(s) = stop {
        trainer = trainer.with_stop_flag(s);
    }
    let result = {
        let mut lg = NoEnd::new(loggers.logger(Phase::Train));
        trainer.fit(&mut lg)?
    };
    let (times_enabled, num_reallocations) = match log_handle {
        Some(h) => {
            let log = h.lock().map(|l| l.clone()).unwrap_or_default();
            (Some(log.times_enabled()), log.len())
        }
        None => (None, 0),
    };
    Ok(MethodOutput {
        last: trainer.allocation().clone(),
        trainable_params: trainer.model().trainable_params(),
        result,
        initial,
        scores,
        scoring_seconds,
        budget,
        times_enabled,
        num_reallocations,
    })
}

/// Writes a plan's budgets as text lines (for logs), e.g. `uniform-r2: 18432`.
pub fn budget_lines(plan: &Plan) -> String {
    let mut s = String::new();
    let mut seen = BTreeSet::new();
    for c in &plan.children {
        if seen.insert(&c.method.name) {
            let _ = writeln!(s, "{}: {}", c.method.name, c.budget);
        }
    }
    s
}
