//! [`TrainJob`]: a whole fine-tuning run from names and paths: load the model (BERT or a decoder,
//! through [`AssetLoader`]) and the task's splits, apply the allocation, train, log. What
//! `heterolora train` runs, and a notebook's one-cell entry point:
//!
//! ```no_run
//! use heterolora::data::Task;
//! use heterolora::train::{TrainConfig, TrainJob};
//! use heterolora::tracking::MemoryLogger;
//! # fn main() -> heterolora::Result<()> {
//! let result = TrainJob::new(Task::Mrpc, "uniform:q,v:r=8")
//!     .config(TrainConfig::default().lr(1e-3).epochs(3).quiet(true))
//!     .run(&mut MemoryLogger::default())?;
//! result // shows a table of per-epoch dev metrics in evcxr
//! # ; Ok(()) }
//! ```

use super::checkpoint;
use super::config::TrainConfig;
use super::interrupt::{install_ctrlc, StopFlag};
use super::result::TrainResult;
use super::spec::parse_allocation;
use super::trainer::Trainer;
use crate::assets;
use crate::data::Task;
use crate::device::parse_device;
use crate::model::{AssetLoader, Classifier, HeadPooling};
use crate::search::Allocation;
use crate::train::logger::RunLogger;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The default base model.
pub const DEFAULT_MODEL: &str = "all-MiniLM-L6-v2";

/// An allocation given as a spec (`uniform:q,v:r=8`, a file path) or as a value.
#[derive(Debug, Clone)]
pub enum AllocationArg {
    Spec(String),
    Value(Allocation),
}

impl From<&str> for AllocationArg {
    fn from(s: &str) -> Self {
        AllocationArg::Spec(s.to_string())
    }
}
impl From<String> for AllocationArg {
    fn from(s: String) -> Self {
        AllocationArg::Spec(s)
    }
}
impl From<Allocation> for AllocationArg {
    fn from(a: Allocation) -> Self {
        AllocationArg::Value(a)
    }
}
impl From<&Allocation> for AllocationArg {
    fn from(a: &Allocation) -> Self {
        AllocationArg::Value(a.clone())
    }
}

/// A fine-tuning run described by task, allocation, config and paths.
#[derive(Debug, Clone)]
pub struct TrainJob {
    pub task: Task,
    pub allocation: AllocationArg,
    pub config: TrainConfig,
    /// Model folder; default: [`assets::model_dir`] of [`DEFAULT_MODEL`].
    pub model_dir: Option<PathBuf>,
    /// GLUE root; default: [`assets::glue_dir`].
    pub glue_dir: Option<PathBuf>,
    /// Checkpoints and adapters go here (`checkpoint/`, `best/`, `final/`).
    pub output: Option<PathBuf>,
    /// Continue from this checkpoint (or run output directory).
    pub resume: Option<PathBuf>,
    /// Install the Ctrl-C handler (the CLI does; a notebook usually should not).
    pub handle_ctrlc: bool,
    /// Limit the training split to its first N examples (quick trials, smoke tests).
    pub limit_train: Option<usize>,
    /// Limit the dev split to its first N examples (smoke tests only: metrics on part of dev
    /// are not comparable).
    pub limit_dev: Option<usize>,
    /// The tracker run a resumed checkpoint was logged to (to continue logging there).
    pub run_id: Option<String>,
}

impl TrainJob {
    pub fn new(task: Task, allocation: impl Into<AllocationArg>) -> Self {
        TrainJob {
            task,
            allocation: allocation.into(),
            config: TrainConfig::default(),
            model_dir: None,
            glue_dir: None,
            output: None,
            resume: None,
            handle_ctrlc: false,
            limit_train: None,
            limit_dev: None,
            run_id: None,
        }
    }

    /// A job that continues the run whose checkpoint (or output directory) is `dir`, with the
    /// checkpoint's task, allocation, config and model, writing to the same output directory.
    pub fn from_checkpoint(dir: impl AsRef<Path>) -> Result<Self> {
        let (ckpt, state) = checkpoint::load_state(dir.as_ref())?;
        let task: Task = state.task.parse()?;
        let output = ckpt.parent().map(Path::to_path_buf);
        let mut job = TrainJob::new(task, state.allocation.clone()).config(state.config.clone());
        if !state.model.is_empty() {
            job.model_dir = Some(PathBuf::from(&state.model));
        }
        job.output = output;
        job.resume = Some(ckpt);
        job.run_id = state.run_id.clone();
        Ok(job)
    }

    pub fn config(mut self, config: TrainConfig) -> Self {
        self.config = config;
        self
    }
    pub fn model_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.model_dir = Some(dir.into());
        self
    }
    pub fn glue_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.glue_dir = Some(dir.into());
        self
    }
    pub fn output(mut self, dir: impl Into<PathBuf>) -> Self {
        self.output = Some(dir.into());
        self
    }
    pub fn resume(mut self, dir: impl Into<PathBuf>) -> Self {
        self.resume = Some(dir.into());
        self
    }
    pub fn handle_ctrlc(mut self, on: bool) -> Self {
        self.handle_ctrlc = on;
        self
    }
    pub fn limit_train(mut self, n: Option<usize>) -> Self {
        self.limit_train = n;
        self
    }
    pub fn limit_dev(mut self, n: Option<usize>) -> Self {
        self.limit_dev = n;
        self
    }

    fn model_path(&self) -> PathBuf {
        assets::resolve_model_dir(self.model_dir.as_deref(), DEFAULT_MODEL)
    }

    /// What [`TrainJob::build`] loads: the task's splits (limited) and the model, on the
    /// configured device and precision, with the head seeded by the config's seed.
    pub fn loader(&self) -> Result<AssetLoader> {
        Ok(AssetLoader::new(self.task)
            .model_dir(Some(&self.model_path()))
            .glue_dir(self.glue_dir.as_deref())
            .max_len(self.config.max_len)
            .limit_train(self.limit_train)
            .limit_dev(self.limit_dev)
            .device(&parse_device(&self.config.device)?)
            .dtype(self.config.precision.dtype())
            .seed(self.config.seed))
    }

    /// Load the model (any backbone: BERT or a decoder, by the folder's `config.json`) and data
    /// and build the trainer (resumed when `resume` is set). A uniform allocation spec is read
    /// against the model's slot table, so grouped-query k/v maps and Llama's gate are sized
    /// right.
    pub fn build(&self) -> Result<Trainer<Classifier>> {
        self.config.check()?;
        let loaded = self.loader()?.load()?;
        let model_dir = loaded.model_dir().to_path_buf();
        let glue = loaded.glue_dir.clone();
        let (model, train, dev) = loaded.into_parts()?;
        let allocation = match &self.allocation {
            AllocationArg::Spec(s) => parse_allocation(s, &model.slot_table())?,
            AllocationArg::Value(a) => a.clone(),
        };
        let mut config = self.config.clone();
        if let Classifier::Decoder(m) = &model {
            // A decoder reads its last non-pad token; `cls`, the command line's default, is
            // BERT's read-out, so it means nothing here. Any other choice stays an error.
            if config.head == Some(HeadPooling::Cls) {
                config.head = None;
            } else if let Some(h) = config.head {
                return Err(Error::Config {
                    field: "head".into(),
                    reason: format!(
                        "a {} classifier reads the last non-pad token; --head {h} is BERT's",
                        m.architecture()
                    ),
                });
            }
        }
        let mut trainer = Trainer::new(model, allocation, train, dev, config)?
            .with_model_source(model_dir.display().to_string())
            .with_params(vec![
                ("model".to_string(), model_dir.display().to_string()),
                ("glue_dir".to_string(), glue.display().to_string()),
                (
                    "limit_train".to_string(),
                    self.limit_train
                        .map_or("none".to_string(), |n| n.to_string()),
                ),
            ]);
        if let Some(out) = &self.output {
            trainer = trainer.with_output_dir(out.clone());
        }
        if self.handle_ctrlc {
            trainer = trainer.with_stop_flag(install_ctrlc());
        }
        if let Some(dir) = &self.resume {
            trainer.resume_from(dir)?;
        }
        Ok(trainer)
    }

    /// Build and run, logging through `logger`. A failure to build (missing asset, bad
    /// allocation, unreadable checkpoint) also ends the run as failed, with the error as a tag.
    pub fn run(&self, logger: &mut dyn RunLogger) -> Result<TrainResult> {
        self.build_logged(logger)?.fit(logger)
    }

    /// Build and run with a stop flag the caller can set from another thread or cell.
    pub fn run_with_stop(&self, logger: &mut dyn RunLogger, stop: StopFlag) -> Result<TrainResult> {
        self.build_logged(logger)?.with_stop_flag(stop).fit(logger)
    }

    fn build_logged(&self, logger: &mut dyn RunLogger) -> Result<Trainer<Classifier>> {
        self.build().inspect_err(|e| {
            let _ = logger.set_tags(&[("error".to_string(), e.to_string())]);
            let _ = logger.end(crate::train::logger::RunStatus::Failed);
        })
    }
}
