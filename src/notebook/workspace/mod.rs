//! [`Workspace`]: a model, a task's data and a tracker behind one owned handle, so that a whole
//! experiment (score, search, train, query, plot) is a few notebook cells.

use super::paths::{display_path, space_name};
use super::predictions::PredictionReport;
use super::scoreset::ScoreSet;
use super::settings::Settings;
use super::sweep::{Sweep, SweepTrial};
use crate::adapters::{ModelDims, SearchSpace, SlotId, SlotSizes, SlotTable};
use crate::assets::{self, ModelFolder};
use crate::data::{load_split, Split, Task};
use crate::model::{AdaptedClassifier, AssetLoader, Classifier};
use crate::predict::{self, Which};
use crate::proxy::{self, FreshAdapters, Proxy, Scores, ScoringData};
use crate::rng::Rng;
use crate::search::{
    Allocation, BudgetSpec, DynamicSchedule, HeterogeneousParams, TopKParams, UniformParams,
};
use crate::tracking::{Run, RunLogger, RunStatus, Tracker};
use crate::train::dynamic::DynamicReallocator;
use crate::train::job::DEFAULT_MODEL as DEFAULT_MODEL_NAME;
use crate::train::{TrainConfig, TrainJob, TrainResult};
use crate::{Error, Result};
use candle_core::Device;
use std::path::{Path, PathBuf};
use std::time::Instant;

mod views;
pub use views::HtmlPreview;

/// The base model, a GLUE task's scoring batches and a tracker experiment.
///
/// Everything it returns is owned ([`Scores`], [`Allocation`], [`TrainResult`], [`RunTable`],
/// [`Figure`]), so results can be kept in notebook variables across cells, and each displays
/// itself. Every scoring and training run is logged to the tracker under [`Workspace::experiment`].
///
/// ```no_run
/// use heterolora::prelude::*;
/// # fn main() -> heterolora::Result<()> {
/// let mut ws = Workspace::open(Task::Mrpc, Settings::quick())?
///     .with_tracker("tracking/mlflow.db")?
///     .with_experiment("mrpc-notebook")?;
/// let space = SearchSpace::lora_qv();
/// let scores = ws.score("grad-norm", &space)?;
/// let alloc = ws.top_k(&space, &scores, 0.25, 8)?;
/// let result = ws.train("topk", &alloc, ws.train_config())?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Workspace {
    task: Task,
    settings: Settings,
    model_dir: PathBuf,
    glue_dir: PathBuf,
    device: Device,
    model: Classifier,
    scoring: ScoringData,
    num_train: usize,
    tracker: Tracker,
    experiment: String,
    load_seconds: f64,
}

impl Workspace {
    /// MRPC on all-MiniLM-L6-v2 with [`Settings::quick`], tracked in the default store.
    pub fn mrpc() -> Result<Workspace> {
        Workspace::open(Task::Mrpc, Settings::quick())
    }

    /// Load the default model (from `datasets/models/`, `$HETEROLORA_MODEL_DIR`) with `task`'s
    /// head, and the scoring batches of its training split (from `datasets/glue/`,
    /// `$HETEROLORA_GLUE_DIR`). A missing asset is an error that names the `heterolora fetch`
    /// command to run. The tracker is the default store (`tracking/mlflow.db` below the working
    /// directory, or `$MLFLOW_TRACKING_URI`) unless [`Settings::tracking`] names one; the
    /// experiment is the task's name.
    pub fn open(task: Task, settings: Settings) -> Result<Workspace> {
        let model_dir = assets::resolve_model_dir(None, DEFAULT_MODEL_NAME);
        let glue_dir = assets::resolve_glue_dir(None);
        Workspace::open_from(task, settings, model_dir, glue_dir)
    }

    /// As [`Workspace::open`] with explicit model and GLUE folders.
    pub fn open_from(
        task: Task,
        settings: Settings,
        model_dir: impl Into<PathBuf>,
        glue_dir: impl Into<PathBuf>,
    ) -> Result<Workspace> {
        let t0 = Instant::now();
        crate::device::tune_allocator();
        settings.check()?;
        let device = crate::device::parse_device(&settings.device)?;
        let (model_dir, glue_dir): (PathBuf, PathBuf) = (model_dir.into(), glue_dir.into());
        let loaded = AssetLoader::new(task)
            .model_dir(Some(&model_dir))
            .glue_dir(Some(&glue_dir))
            .max_len(settings.max_len)
            .splits(true, false)
            .device(&device)
            .dtype(settings.precision.dtype())
            .seed(settings.seed)
            .load()?;
        let enc = loaded.train()?;
        let num_train = settings.train_limit.map_or(enc.len(), |n| n.min(enc.len()));
        let scoring = ScoringData::from_dataset(
            enc,
            settings.score_batch_size,
            settings.score_batches,
            &device,
        )?;
        let model_dir = loaded.model_dir().to_path_buf();
        let glue_dir = loaded.glue_dir.clone();
        let mut model = loaded.model.expect("the loader builds the model");
        if let Classifier::Encoder(m) = &mut model {
            // A decoder's head reads its last non-pad token: the setting is BERT's.
            m.set_head_pooling(settings.head);
        }
        // Opening creates the store, so the default one is opened only when none is named.
        let tracker = Tracker::open_or_default(settings.tracking.as_deref())?;
        Ok(Workspace {
            task,
            experiment: task.name().to_string(),
            settings,
            model_dir,
            glue_dir,
            device,
            model,
            scoring,
            num_train,
            tracker,
            load_seconds: t0.elapsed().as_secs_f64(),
        })
    }

    /// Log to the store at `path_or_uri` (created if missing) instead of the default one.
    pub fn with_tracker(mut self, path_or_uri: &str) -> Result<Workspace> {
        self.tracker = Tracker::open(path_or_uri)?;
        Ok(self)
    }

    /// Log under this experiment (created if missing).
    pub fn with_experiment(mut self, name: &str) -> Result<Workspace> {
        self.tracker.experiment(name)?;
        self.experiment = name.to_string();
        Ok(self)
    }

    pub fn task(&self) -> Task {
        self.task
    }
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
    pub fn dims(&self) -> ModelDims {
        self.model.dims()
    }
    /// The model's slot kinds and the sizes of their maps (a decoder's grouped-query k/v and
    /// gate included): what allocations are sized with.
    pub fn slot_table(&self) -> SlotTable {
        self.model.slot_table()
    }
    pub fn device(&self) -> &Device {
        &self.device
    }
    /// The base model (BERT or a decoder) with the task's (untrained) head; displays its
    /// parameter table.
    pub fn model(&self) -> &Classifier {
        &self.model
    }
    pub fn scoring_data(&self) -> &ScoringData {
        &self.scoring
    }
    /// A handle on the tracker (cheap to clone, shared with this workspace).
    pub fn tracker(&self) -> Tracker {
        self.tracker.clone()
    }
    pub fn experiment(&self) -> &str {
        &self.experiment
    }

    /// The training split's first rows as a table (`n` rows).
    pub fn examples(&self, split: Split, n: usize) -> Result<HtmlPreview> {
        let mut ds = load_split(&self.glue_dir, self.task, split)?;
        ds.path = PathBuf::from(display_path(&ds.path));
        Ok(HtmlPreview(ds.head_html(n)))
    }

    /// The model folder this workspace loaded.
    pub fn model_dir(&self) -> &Path {
        &self.model_dir
    }
    /// The GLUE folder this workspace reads.
    pub fn glue_dir(&self) -> &Path {
        &self.glue_dir
    }

    /// The training configuration of the settings (change it with its setters).
    pub fn train_config(&self) -> TrainConfig {
        self.settings.train_config()
    }

    /// Candidate slots of `space` in this model (on a decoder, the kinds it has; `all` takes
    /// Llama's gate).
    pub fn slots(&self, space: &SearchSpace) -> Vec<SlotId> {
        match self.model {
            Classifier::Encoder(_) => space.slots(self.dims().num_layers),
            Classifier::Decoder(_) => self.slot_table().slots(space),
        }
    }

    // ---- scoring ------------------------------------------------------------------------------

    /// Score `space` with one proxy by name (`grad-norm`, `snip`, `fisher`, ...; see
    /// [`proxy::NAMES`]). Logged as a tracker run `score-<proxy>`.
    pub fn score(&mut self, proxy_name: &str, space: &SearchSpace) -> Result<Scores> {
        let set = self.score_many(&[proxy_name], space)?;
        set.get(proxy_name)
    }

    /// Score `space` with several proxies sharing one gradient pass.
    pub fn score_many(&mut self, proxy_names: &[&str], space: &SearchSpace) -> Result<ScoreSet> {
        let proxies: Vec<Box<dyn Proxy>> = proxy_names
            .iter()
            .map(|n| proxy::by_name(n))
            .collect::<Result<_>>()?;
        let refs: Vec<&dyn Proxy> = proxies.iter().map(|p| p.as_ref()).collect();
        self.score_with(&refs, space)
    }

    /// Score `space` with proxy values (built-in with custom settings, or your own
    /// [`Proxy`] implementation).
    pub fn score_with(&mut self, proxies: &[&dyn Proxy], space: &SearchSpace) -> Result<ScoreSet> {
        if proxies.is_empty() {
            return Err(Error::invalid("proxies", "none", "at least one proxy"));
        }
        let names: Vec<String> = proxies.iter().map(|p| p.name()).collect();
        let slots = self.slots(space);
        let fresh = FreshAdapters {
            r: self.settings.fresh_r,
            ..FreshAdapters::default()
        };
        let mut run = self
            .tracker
            .start_run(&self.experiment, &format!("score-{}", names.join("+")))?;
        run.log_params(&[
            ("command", "score".to_string()),
            ("task", self.task.name().to_string()),
            ("proxy", names.join(",")),
            ("space", space_name(space)),
            ("num_batches", self.scoring.len().to_string()),
            ("batch_size", self.scoring.batch_size.to_string()),
            ("max_len", self.settings.max_len.to_string()),
            ("fresh_r", fresh.r.to_string()),
            ("seed", self.settings.seed.to_string()),
        ])?;
        run.set_tag("heterolora.kind", "score")?;
        let mut rng = Rng::derive(self.settings.seed, "proxy");
        let scored = proxy::score_all(
            proxies,
            &mut self.model,
            &self.scoring.batches,
            &slots,
            &fresh,
            &mut rng,
        );
        let all = match scored {
            Ok(s) => s,
            Err(e) => {
                let _ = run.set_tag("error", e.to_string());
                run.end(RunStatus::Failed)?;
                return Err(e);
            }
        };
        for s in &all {
            run.log_scores(s)?;
        }
        run.end(RunStatus::Finished)?;
        Ok(ScoreSet::new(all))
    }

    // ---- allocation ---------------------------------------------------------------------------

    /// What allocators size slots with: BERT's dims as they always were, a decoder's slot
    /// table.
    fn sizes(&self) -> Sizes {
        match self.model {
            Classifier::Encoder(_) => Sizes::Bert(self.dims()),
            Classifier::Decoder(_) => Sizes::Table(self.slot_table()),
        }
    }

    /// Exact adapter parameters of `alloc` on this model.
    pub fn adapter_params(&self, alloc: &Allocation) -> usize {
        match self.model {
            Classifier::Encoder(_) => alloc.trainable_params(),
            Classifier::Decoder(_) => alloc
                .trainable_params_in(&self.slot_table())
                .unwrap_or_else(|_| alloc.trainable_params()),
        }
    }

    /// Rank `r` on every slot of `space` (the equal-budget baseline).
    pub fn uniform(&self, space: &SearchSpace, r: usize) -> Result<Allocation> {
        UniformParams::new()
            .lora_alpha_rule(self.settings.lora_alpha)
            .r(r)
            .check()?
            .allocate(space, &self.sizes())
    }

    /// The paper's static top-k: the fraction `p` of slots with the best scores, at rank `r`.
    pub fn top_k(
        &self,
        space: &SearchSpace,
        scores: &Scores,
        p: f64,
        r: usize,
    ) -> Result<Allocation> {
        TopKParams::new()
            .lora_alpha_rule(self.settings.lora_alpha)
            .p(p)
            .r(r)
            .seed(self.settings.seed)
            .check()?
            .allocate(space, &self.sizes(), scores)
    }

    /// A rank per slot from `ranks` (0 included or not) maximising the summed score under
    /// `budget` (`"uniform:r=2"`, `"top:p=0.25,r=8"` or a parameter count).
    pub fn heterogeneous(
        &self,
        space: &SearchSpace,
        scores: &Scores,
        ranks: &[usize],
        budget: &str,
    ) -> Result<Allocation> {
        let budget: BudgetSpec = budget.parse()?;
        HeterogeneousParams::new()
            .lora_alpha_rule(self.settings.lora_alpha)
            .ranks(ranks.to_vec())
            .budget(budget)
            .seed(self.settings.seed)
            .check()?
            .allocate(space, &self.sizes(), scores)
    }

    // ---- training -----------------------------------------------------------------------------

    fn job(&self, alloc: &Allocation, cfg: TrainConfig) -> TrainJob {
        TrainJob::new(self.task, alloc)
            .config(cfg)
            .model_dir(&self.model_dir)
            .glue_dir(&self.glue_dir)
            .limit_train(Some(self.num_train))
            .limit_dev(self.settings.dev_limit)
    }

    /// Fine-tune `alloc` from the pretrained model as a tracker run named `run_name`, with
    /// progress lines on stderr. The model of this workspace is not changed.
    pub fn train(
        &self,
        run_name: &str,
        alloc: &Allocation,
        cfg: TrainConfig,
    ) -> Result<TrainResult> {
        let mut run = self.tracker.start_run(&self.experiment, run_name)?;
        self.job(alloc, cfg).run(&mut run)
    }

    /// HeteroLoRA's dynamic variant: train with the top-k (`p`, rank `r`) of `space` re-chosen
    /// during training. At every point of `schedule` ([`DynamicSchedule::default`]: every 0.2
    /// epoch and at each epoch start) every candidate slot is switched on, rescored with
    /// grad-norm on the current weights (this workspace's scoring batches) and only the top k
    /// stay on; switched-off adapters keep their weights. Training starts from the top-k of
    /// `scores` (same budget); the step-0 re-allocation rescored it on the initial weights.
    /// Every re-allocation is logged (`realloc.*` metrics and the `reallocations.json` artifact:
    /// [`Workspace::timeline`] draws it).
    // One call per notebook cell: the method's knobs as plain arguments, like `top_k`'s.
    #[allow(clippy::too_many_arguments)]
    pub fn train_dynamic(
        &self,
        run_name: &str,
        space: &SearchSpace,
        scores: &Scores,
        p: f64,
        r: usize,
        schedule: DynamicSchedule,
        cfg: TrainConfig,
    ) -> Result<TrainResult> {
        let initial = self.top_k(space, scores, p, r)?;
        let topk = TopKParams::new()
            .lora_alpha_rule(self.settings.lora_alpha)
            .p(p)
            .r(r)
            .seed(self.settings.seed)
            .check()?;
        let mut re = DynamicReallocator::new(schedule, topk, space.clone(), self.settings.seed)?
            .with_batches(self.scoring.batches.clone());
        re.num_batches = self.scoring.len();
        let mut run = self.tracker.start_run(&self.experiment, run_name)?;
        run.set_tag("heterolora.dynamic", "true")?;
        run.set_tag(
            "heterolora.dynamic.schedule",
            format!(
                "every {}{}, grad-norm on {} batches of {}",
                schedule.every,
                if schedule.at_epoch_start {
                    " and at each epoch start"
                } else {
                    ""
                },
                self.scoring.len(),
                self.scoring.batch_size
            ),
        )?;
        let trainer = match self.job(&initial, cfg).build() {
            Ok(t) => t,
            Err(e) => {
                let _ = run.set_tag("error", e.to_string());
                run.end(RunStatus::Failed)?;
                return Err(e);
            }
        };
        trainer.add_hook(Box::new(re)).fit(&mut run)
    }

    // ---- saved adapters and predictions -------------------------------------------------------

    /// The folder of a training run's saved adapters (PEFT format: `adapter_config.json`,
    /// `adapter_model.safetensors` with the classification head) in the tracker's artifacts:
    /// `final` (end of training, the artifact folder `adapters/`) or `best` (best epoch,
    /// `best_adapters/`, logged only when the run had an output folder).
    pub fn saved_adapters(&self, run_id: &str, which: Which) -> Result<PathBuf> {
        let id = self.tracker.resolve_run_id(run_id)?;
        let info = self.tracker.run_info(&id)?;
        let folder = match which {
            Which::Final => "adapters",
            Which::Best => "best_adapters",
        };
        let files: Vec<String> = self
            .tracker
            .list_artifacts(&id)?
            .into_iter()
            .filter(|f| f.starts_with(&format!("{folder}/")))
            .collect();
        if files.is_empty() {
            return Err(Error::Tracking(format!(
                "run {id} ({}) has no `{folder}/` artifacts: only training runs save adapters",
                info.run_name
            )));
        }
        // Every file is fetched (a no-op for a local store); they share one folder.
        let mut dir = None;
        for f in &files {
            let local = self.tracker.artifact_file(&id, &info.artifact_uri, f)?;
            dir = local.parent().map(Path::to_path_buf);
        }
        let dir = dir.ok_or_else(|| Error::Tracking(format!("run {id}: no `{folder}/` folder")))?;
        predict::resolve_adapter_dir(&dir, which)
    }

    /// A fresh base model with the adapters and classification head saved in `adapter_dir` (a
    /// PEFT folder, e.g. from [`Workspace::saved_adapters`]), on this workspace's device, with
    /// its head read-out.
    pub fn load_adapters(&self, adapter_dir: impl AsRef<Path>) -> Result<Classifier> {
        let mut model = predict::load_model(
            &self.model_dir,
            adapter_dir.as_ref(),
            self.task,
            &self.device,
        )?;
        if let Classifier::Encoder(m) = &mut model {
            m.set_head_pooling(self.settings.head);
        }
        Ok(model)
    }

    /// `model`'s predictions on `split` (the dev split limited as the settings say, so that the
    /// metrics equal the ones training logged), with the confusion matrix and the `max_errors`
    /// most confident mistakes.
    pub fn predict<M: AdaptedClassifier>(
        &self,
        model: &M,
        split: Split,
        max_errors: usize,
    ) -> Result<PredictionReport> {
        let mut ds = load_split(&self.glue_dir, self.task, split)?;
        let limit = match split {
            Split::Dev => self.settings.dev_limit,
            Split::Train => self.settings.train_limit,
            _ => None,
        };
        if let Some(n) = limit {
            ds.examples.truncate(n);
        }
        let enc = ModelFolder::open(&self.model_dir)?
            .tokenizer(self.settings.max_len)?
            .encode_dataset(&ds)?;
        let preds = predict::predict(model, &enc, predict::EVAL_BATCH_SIZE)?;
        PredictionReport::new(format!("{} {}", self.task, split), &ds, &preds, max_errors)
    }

    /// As [`Workspace::train`], logging to `logger` (a child run of a sweep, a
    /// [`crate::tracking::MemoryLogger`], ...).
    pub fn train_with(
        &self,
        alloc: &Allocation,
        cfg: TrainConfig,
        logger: &mut dyn RunLogger,
    ) -> Result<TrainResult> {
        self.job(alloc, cfg).run(logger)
    }

    /// Train every trial as a child run of a parent run `name` (MLflow's nested runs), one after
    /// the other. A failed trial is recorded (its run ends FAILED with the error as a tag) and the
    /// sweep goes on; the parent ends FINISHED when every trial finished.
    pub fn sweep(&self, name: &str, trials: Vec<SweepTrial>) -> Result<Sweep> {
        let mut parent = self.tracker.start_run(&self.experiment, name)?;
        parent.set_tag("heterolora.kind", "sweep")?;
        parent.log_param("num_trials", trials.len())?;
        let table = matches!(self.model, Classifier::Decoder(_)).then(|| self.slot_table());
        let mut sweep = Sweep::new(parent.run_id().to_string(), name.to_string()).with_table(table);
        let mut all_ok = true;
        let total = trials.len();
        for (i, trial) in trials.into_iter().enumerate() {
            eprintln!(
                "trial {}/{}: {} ({} adapter parameters)",
                i + 1,
                total,
                trial.name,
                self.adapter_params(&trial.allocation)
            );
            let mut child: Run = parent.start_child(&trial.name)?;
            child.set_tag("sweep.trial", &trial.name)?;
            child.set_tag("sweep.method", &trial.method)?;
            let res = self.train_with(&trial.allocation, trial.config.clone(), &mut child);
            if res.is_err() {
                all_ok = false;
            }
            sweep.push(trial, res.map_err(|e| e.to_string()));
        }
        parent.end(if all_ok {
            RunStatus::Finished
        } else {
            RunStatus::Failed
        })?;
        Ok(sweep)
    }
}

/// What a workspace sizes allocations with: BERT's dims, as they always were, or a decoder's slot
/// table (grouped-query k/v maps, the gate).
enum Sizes {
    Bert(ModelDims),
    Table(SlotTable),
}

impl SlotSizes for Sizes {
    fn model_dims(&self) -> ModelDims {
        match self {
            Sizes::Bert(d) => d.model_dims(),
            Sizes::Table(t) => SlotSizes::model_dims(t),
        }
    }
    fn candidates(&self, space: &SearchSpace) -> Result<Vec<SlotId>> {
        match self {
            Sizes::Bert(d) => d.candidates(space),
            Sizes::Table(t) => t.candidates(space),
        }
    }
    fn slot_params(&self, slot: SlotId, r: usize) -> usize {
        match self {
            Sizes::Bert(d) => d.slot_params(slot, r),
            Sizes::Table(t) => t.slot_params(slot, r),
        }
    }
    fn kind_dims(&self, kind: crate::adapters::SlotKind) -> (usize, usize) {
        match self {
            Sizes::Bert(d) => d.kind_dims(kind),
            Sizes::Table(t) => t.kind_dims(kind),
        }
    }
}
