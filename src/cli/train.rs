//! `heterolora train`: fine-tune an adapter allocation on a GLUE task.

use crate::data::Task;
use crate::tracking::{RunStatus, Tracker};
use crate::train::{Schedule, TrainConfig, TrainJob, TrainResult};
use clap::Args;
use std::path::PathBuf;

/// Fine-tune an adapter allocation on a GLUE task; every run is logged to the tracker.
///
/// The allocation stays fixed. Dynamic HeteroLoRA (re-scoring and re-allocating during training)
/// is `heterolora run --dynamic` (or a study's dynamic methods).
///
/// Examples:
///   heterolora train --task mrpc --allocation uniform:q,v:r=8 --lr 1e-3 --epochs 4 --output runs/mrpc-lora
///   heterolora train --task mrpc --allocation uniform:q,v:r=2 --lora-alpha-rule 2r --head mean
///   heterolora train --resume runs/mrpc-lora
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// GLUE task (mrpc, rte, sst2, cola, stsb, qnli, wnli).
    #[arg(long, required_unless_present = "resume")]
    pub task: Option<String>,
    /// `uniform:<kinds>[:r=<r>][:alpha=<a>][:layers=<i,..>]` (e.g. `uniform:q,v:r=8`) or an
    /// allocation JSON file.
    #[arg(long, required_unless_present = "resume")]
    pub allocation: Option<String>,
    #[command(flatten)]
    pub assets: crate::cli::assets::AssetArgs,
    /// Where checkpoints and adapters go (default: runs/train-<task>-<time>).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Continue the run whose output (or checkpoint) directory this is; the checkpoint's task,
    /// allocation and hyper-parameters are used.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Peak learning rate. With the default 6 epochs this is the study's `cpu6` recipe, which
    /// took uniform LoRA r = 2 on q,v to 77-80% MRPC dev accuracy over 5 seeds.
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Micro-batches per optimiser step.
    #[arg(long, default_value_t = 1)]
    pub grad_accum: usize,
    #[arg(long, default_value_t = 6)]
    pub epochs: usize,
    /// Optimiser-step budget (overrides --epochs).
    #[arg(long)]
    pub max_steps: Option<usize>,
    #[arg(long, default_value_t = 0.06)]
    pub warmup_ratio: f64,
    /// Warm-up in optimiser steps (overrides --warmup-ratio).
    #[arg(long)]
    pub warmup_steps: Option<usize>,
    /// constant or linear.
    #[arg(long, default_value = "linear")]
    pub schedule: String,
    /// Clip gradients to this global norm; 0 disables clipping.
    #[arg(long, default_value_t = 1.0)]
    pub clip_norm: f64,
    /// Also evaluate on dev every N optimiser steps (0: at epoch ends only).
    #[arg(long, default_value_t = 0)]
    pub eval_every: usize,
    #[arg(long, default_value_t = 64)]
    pub eval_batch_size: usize,
    #[arg(long, default_value_t = 10)]
    pub log_every: usize,
    #[arg(long, default_value_t = 128)]
    pub max_len: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value_t = 0.0)]
    pub lora_dropout: f64,
    /// LoRA alpha of a uniform --allocation that does not set `alpha`: `16` (the authors' value
    /// at every rank, the default) or a per-rank rule such as `2r` (scaling 2 at every rank).
    #[arg(long)]
    pub lora_alpha_rule: Option<String>,
    /// Classifier read-out: `cls` ([CLS] through the frozen pooler + tanh, Hugging Face's
    /// BertForSequenceClassification) or `mean` (mean over non-pad tokens, the read-out
    /// all-MiniLM-L6-v2 was trained with). Saved with the adapters.
    #[arg(long, default_value = "cls")]
    pub head: String,
    /// Start a regression head (STS-B) from a zero bias instead of the training targets' mean
    /// (the mean is the default: from zero, AdamW spends epochs walking the bias to it).
    #[arg(long)]
    pub no_mean_init: bool,
    /// auto (the GPU when the build has CUDA and one is visible, else the CPU), cpu, cuda or
    /// cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// f32, or bf16: the frozen model in bf16 with f32 adapters, head, LayerNorm statistics and
    /// loss (mixed precision for GPUs; slower than f32 on the CPU).
    #[arg(long, default_value = "f32")]
    pub precision: String,
    /// No progress bar: plain lines per evaluation (CI logs).
    #[arg(long)]
    pub quiet: bool,
    /// Also checkpoint every N optimiser steps (0: at epoch ends).
    #[arg(long, default_value_t = 0)]
    pub checkpoint_every: usize,
    /// Train on the first N training examples only (quick trials).
    #[arg(long)]
    pub limit_train: Option<usize>,
    /// Tracker store (path or sqlite:/// URI); default $MLFLOW_TRACKING_URI, else
    /// tracking/mlflow.db.
    #[arg(long)]
    pub tracking_uri: Option<String>,
    /// Tracker experiment (default: the task, e.g. `mrpc`).
    #[arg(long)]
    pub experiment: Option<String>,
    /// Run name (default: `train-<allocation>-seed<seed>`).
    #[arg(long)]
    pub run_name: Option<String>,
}

impl TrainArgs {
    fn config(&self) -> anyhow::Result<TrainConfig> {
        let schedule: Schedule = self.schedule.parse()?;
        let cfg = TrainConfig::default()
            .lr(self.lr)
            .weight_decay(self.weight_decay)
            .batch_size(self.batch_size)
            .grad_accum(self.grad_accum)
            .epochs(self.epochs)
            .max_steps(self.max_steps)
            .warmup_ratio(self.warmup_ratio)
            .warmup_steps(self.warmup_steps)
            .schedule(schedule)
            .clip_norm((self.clip_norm > 0.0).then_some(self.clip_norm))
            .eval_every(self.eval_every)
            .eval_batch_size(self.eval_batch_size)
            .log_every(self.log_every)
            .max_len(self.max_len)
            .seed(self.seed)
            .lora_dropout(self.lora_dropout)
            .head(Some(self.head.parse()?))
            .mean_init(!self.no_mean_init)
            .device(self.device.clone())
            .precision(self.precision.parse()?)
            .quiet(self.quiet)
            .checkpoint_every(self.checkpoint_every);
        cfg.check()?;
        Ok(cfg)
    }

    fn job(&self) -> anyhow::Result<TrainJob> {
        let mut job = match &self.resume {
            Some(dir) => {
                let mut job = TrainJob::from_checkpoint(dir)?;
                // Presentation flags may change on resume; the rest comes from the checkpoint.
                job.config.quiet = self.quiet;
                job
            }
            None => {
                let task: Task = self.task.as_deref().unwrap_or_default().parse()?;
                let mut alloc = self.allocation.clone().unwrap_or_default();
                if let Some(rule) = &self.lora_alpha_rule {
                    alloc = crate::train::spec::with_lora_alpha_rule(&alloc, rule.parse()?)?;
                }
                let mut job = TrainJob::new(task, alloc).config(self.config()?);
                job.output = self.output.clone();
                job
            }
        };
        if let Some(m) = &self.assets.model {
            job.model_dir = Some(m.clone());
        }
        if let Some(g) = &self.assets.glue {
            job.glue_dir = Some(g.clone());
        }
        if self.limit_train.is_some() {
            job.limit_train = self.limit_train;
        }
        job.handle_ctrlc = true;
        Ok(job)
    }
}

/// Run `heterolora train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let mut job = args.job()?;
    // A device that cannot be opened fails before a run is created.
    let device = crate::device::parse_device(&job.config.device)?;
    if device.is_cpu() && job.config.precision == crate::train::Precision::Bf16 {
        eprintln!(
            "note: bf16 on the CPU runs through candle's generic bf16 kernels, many times slower \
             than f32 (`heterolora bench train --precision bf16` measures it); it is meant for GPUs"
        );
    }
    let tracker = Tracker::open_or_default(args.tracking_uri.as_deref())?;
    let mut run = match &job.run_id {
        // A resumed run keeps logging to the run that wrote the checkpoint, when it still exists.
        Some(id) => match tracker.resume_run(id) {
            Ok(run) => run,
            Err(e) => {
                eprintln!("cannot continue tracker run {id} ({e}); logging to a new run");
                new_run(&tracker, &args, &job)?
            }
        },
        None => new_run(&tracker, &args, &job)?,
    };
    if job.output.is_none() {
        // Checkpoints and adapters live with the run's artifacts.
        job.output = Some(run.artifact_dir()?);
    }
    eprintln!(
        "tracker run {} in {} (output {})",
        run.run_id(),
        tracker.path().display(),
        job.output
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    let result = job.run(&mut run)?;
    print_summary(&job, &result);
    if result.status == RunStatus::Killed {
        eprintln!("interrupted at step {}", result.steps);
        return Err(crate::Error::Interrupted.into());
    }
    Ok(())
}

fn new_run(
    tracker: &Tracker,
    args: &TrainArgs,
    job: &TrainJob,
) -> anyhow::Result<crate::tracking::Run> {
    let experiment = args
        .experiment
        .clone()
        .unwrap_or_else(|| job.task.name().to_lowercase());
    let name = args.run_name.clone().unwrap_or_else(|| {
        let alloc = match &job.allocation {
            crate::train::AllocationArg::Spec(s) => s
                .rsplit('/')
                .next()
                .unwrap_or(s)
                .trim_end_matches(".json")
                .to_string(),
            crate::train::AllocationArg::Value(a) => a.method.clone(),
        };
        format!("train-{alloc}-seed{}", job.config.seed)
    });
    Ok(tracker.start_run(&experiment, &name)?)
}

fn print_summary(job: &TrainJob, result: &TrainResult) {
    print!("{result}");
    if let (Some(e), Some(m)) = (result.best_epoch, result.best_metric) {
        println!("best dev {} {:.4} at epoch {e}", result.primary_metric, m);
    }
    if let (Some(out), RunStatus::Finished) = (&job.output, result.status) {
        println!(
            "adapters: {}/final (best epoch: {}/best)",
            out.display(),
            out.display()
        );
    }
}
