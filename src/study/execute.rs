//! One method on one seed: score (if the method needs it), allocate, check the budget, train.
//! The body of a study child and of `heterolora run`.

use super::config::StudyConfig;
use super::dynamic::DynamicHook;
use super::methods::Method;
use super::plan::ChildPlan;
use super::protocol::Protocol;
use super::record::ChildRecord;
use super::source::Loaded;
use crate::proxy::{self, Scores, ScoringData};
use crate::rng::Rng;
use crate::search::{Allocation, Budget};
use crate::tracking::entities::now_ms;
use crate::tracking::{RunLogger, RunStatus};
use crate::train::dynamic::DynamicReallocator;
use crate::train::{DevPredictions, StopFlag, TrainHook, TrainResult, Trainer};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

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
    /// Each dev example's prediction at the end of a finished run (the report's per-example
    /// bootstrap); `None` when training stopped early or the evaluation failed.
    pub dev: Option<DevPredictions>,
    /// The optimiser step training continued from, when it resumed from a checkpoint.
    pub resumed_at_step: Option<usize>,
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
            last_metrics: r
                .epoch_evals()
                .last()
                .map(|e| e.metrics.clone())
                .unwrap_or_default(),
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
            dev_predictions: self.dev.clone(),
            resumed_at_step: self.resumed_at_step,
        }
    }
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
    prepare_method(m, loaded, protocol, seed, loggers)?.train(
        loggers,
        stop,
        &mut TrainExtras::default(),
    )
}

/// What a study adds to a child's training beyond the method and protocol.
#[derive(Default)]
pub struct TrainExtras {
    /// Keep the child's checkpoint (and its best and final adapters) in this folder, and continue
    /// from the checkpoint found there: a child stopped by Ctrl-C, a time limit or a killed
    /// process resumes where it stopped instead of starting over.
    pub checkpoint_dir: Option<std::path::PathBuf>,
    /// More hooks on the trainer (after the dynamic one).
    pub hooks: Vec<Box<dyn TrainHook>>,
}

/// A method scored and allocated on one seed, not trained yet: what a study compares with the
/// children already finished before it spends the training (see [`Prepared::train`]).
pub struct Prepared {
    model: crate::model::SequenceClassifier,
    train: crate::data::EncodedDataset,
    dev: crate::data::EncodedDataset,
    cfg: crate::train::TrainConfig,
    hook: Option<DynamicHook>,
    log_handle: Option<std::sync::Arc<std::sync::Mutex<crate::search::ReallocationLog>>>,
    /// The allocation training would start from (static: the one it keeps).
    pub initial: Allocation,
    pub scores: Option<Scores>,
    pub scoring_seconds: f64,
    pub budget: Budget,
}

/// Scores (if the method needs it), allocates and checks the budget; logs the scores and the
/// initial allocation. Training is [`Prepared::train`].
pub fn prepare_method(
    m: &Method,
    loaded: Loaded,
    protocol: &Protocol,
    seed: u64,
    loggers: &mut dyn PhaseLoggers,
) -> Result<Prepared> {
    let Loaded {
        mut model,
        mut train,
        dev,
    } = loaded;
    // The protocol's alpha convention, head and precision hold for scoring as for training.
    let m = &protocol.apply(m);
    let dtype = protocol.precision.dtype();
    if model.dtype() != dtype {
        model = model.to_dtype(dtype)?;
    }
    model.set_head_pooling(protocol.head);
    if let Some(n) = protocol.limit_train {
        let n = n.min(train.len());
        train = train.select(&(0..n).collect::<Vec<_>>());
    }
    let dims = model.dims();
    let cfg = protocol.train_config(seed);
    // Proxies score the model that training starts from: a regression head at the targets' mean.
    if cfg.mean_init && model.num_labels() == 1 {
        crate::train::start_at_target_mean(&model, &train)?;
    }
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
        let data = scoring_data(&train, protocol, model.device())?;
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
        let data = scoring_data(&train, protocol, model.device())?;
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

    Ok(Prepared {
        model,
        train,
        dev,
        cfg,
        hook,
        log_handle,
        initial,
        scores,
        scoring_seconds,
        budget,
    })
}

impl Prepared {
    /// Trains the prepared allocation (re-allocating on the way for dynamic methods), from the
    /// checkpoint in `extras.checkpoint_dir` when there is one.
    pub fn train(
        self,
        loggers: &mut dyn PhaseLoggers,
        stop: Option<StopFlag>,
        extras: &mut TrainExtras,
    ) -> Result<MethodOutput> {
        let Prepared {
            model,
            train,
            dev,
            cfg,
            hook,
            log_handle,
            initial,
            scores,
            scoring_seconds,
            budget,
        } = self;
        let dynamic = hook.is_some();
        let mut trainer = Trainer::new(model, initial.clone(), train, dev, cfg)?;
        if let Some(h) = hook {
            trainer = trainer.add_hook(Box::new(h));
        }
        for h in std::mem::take(&mut extras.hooks) {
            trainer = trainer.add_hook(h);
        }
        if let Some(s) = stop {
            trainer = trainer.with_stop_flag(s);
        }
        let mut resumed_at_step = None;
        if let Some(dir) = &extras.checkpoint_dir {
            trainer = trainer
                .with_output_dir(dir)
                .with_resume_hint("the same study command continues from it");
            if crate::train::checkpoint::locate(dir).is_some() {
                trainer.resume_from(dir)?;
                // A static method's checkpoint must hold the allocation the method chose now: one
                // of another allocation (the proxy or the allocator changed since) would train
                // something the record would not describe. Dynamic methods change their
                // allocation on the way, so theirs is taken as saved.
                if !dynamic && trainer.allocation().ranks != initial.ranks {
                    return Err(another_allocation(dir, trainer.allocation(), &initial));
                }
                resumed_at_step = Some(trainer.state().step);
            }
        }
        let result = {
            let mut lg = NoEnd::new(loggers.logger(Phase::Train));
            trainer.fit(&mut lg)?
        };
        // From the final evaluation's logits; a failure here costs the per-example record, not
        // the finished run.
        let dev = match result.status {
            RunStatus::Finished => match trainer.final_dev_predictions() {
                Ok(d) => Some(d),
                Err(e) => {
                    eprintln!("warning: no per-example dev predictions recorded: {e}");
                    None
                }
            },
            _ => None,
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
            dev,
            resumed_at_step,
        })
    }
}

/// The refusal of a static child's checkpoint `saved` that is not the allocation `chosen` now.
fn another_allocation(dir: &Path, saved: &Allocation, chosen: &Allocation) -> Error {
    let slots = |a: &Allocation| {
        a.ranks
            .iter()
            .map(|(slot, r)| format!("{slot} r={}", r.r))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Error::Config {
        field: "checkpoint".into(),
        reason: format!(
            "{} holds a run of another allocation ({}) than the method chooses now ({}); \
             delete that folder to train the child from the start",
            dir.display(),
            slots(saved),
            slots(chosen),
        ),
    }
}

/// The batches proxies score on: the first `scoring_batches` training batches, unshuffled.
fn scoring_data(
    train: &crate::data::EncodedDataset,
    protocol: &Protocol,
    device: &candle_core::Device,
) -> Result<ScoringData> {
    ScoringData::from_dataset(
        train,
        protocol.scoring_batch_size,
        protocol.scoring_batches,
        device,
    )
}
