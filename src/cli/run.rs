//! `heterolora run`: the main job. One HeteroLoRA run with sensible defaults on the default model
//! and data: score the q,v modules with a proxy, keep the top 25% at r = 8, train under the CPU
//! protocol, and log it all as one parent run with `score`, `search` and `train` children.

use crate::data::Task;
use crate::study::execute::{Phase, PhaseLoggers};
use crate::study::{execute_method, AssetSource, Method, Protocol, StudySource};
use crate::tracking::{Run, RunLogger, RunStatus, Tracker};
use crate::train::install_ctrlc;
use clap::Args;
use std::time::Instant;

/// One HeteroLoRA run: score q,v with a proxy, top 25% at r = 8, train, report.
///
/// Examples:
///   heterolora run --task mrpc
///   heterolora run --task mrpc --quick
///   heterolora run --task rte --proxy snip-w0 --epochs 3 --seed 13
#[derive(Debug, Args)]
pub struct RunArgs {
    /// GLUE task (mrpc, rte, sst2, cola, stsb, ...).
    #[arg(long, default_value = "mrpc")]
    pub task: String,
    /// Scoring proxy (grad-norm is not blind on fresh adapters, where B = 0).
    #[arg(long, default_value = "grad-norm")]
    pub proxy: String,
    /// Fraction of the q,v modules to enable.
    #[arg(long, default_value_t = 0.25)]
    pub p: f64,
    /// Rank of every enabled module.
    #[arg(long, default_value_t = 8)]
    pub r: usize,
    /// Re-score and re-allocate during training (dynamic HeteroLoRA) instead of once before.
    #[arg(long)]
    pub dynamic: bool,
    /// Epochs (default: the protocol's).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// A smoke run: 1 epoch on the first 512 training examples (full dev split).
    #[arg(long)]
    pub quick: bool,
    /// Learning rate (default: the protocol's).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Token limit per example.
    #[arg(long)]
    pub max_len: Option<usize>,
    /// Train on the first N training examples only.
    #[arg(long)]
    pub limit_train: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// `cpu6` (6 epochs at lr 2e-3, the pilot's choice: a model that learns in a few minutes on
    /// 2 cores), `cpu` (2 epochs) or `paper` (20 epochs, batch 8, lr 2e-4: for a GPU).
    #[arg(long, default_value = "cpu6")]
    pub protocol: String,
    /// Device (cpu, cuda, cuda:N, auto); default: the protocol's.
    #[arg(long)]
    pub device: Option<String>,
    /// f32 (default) or bf16 (bf16 frozen model, f32 adapters, head and loss: for GPUs).
    #[arg(long)]
    pub precision: Option<String>,
    #[command(flatten)]
    pub assets: crate::cli::assets::AssetArgs,
    /// Tracker store (path or sqlite:/// URI); default $MLFLOW_TRACKING_URI, else tracking/mlflow.db.
    #[arg(long)]
    pub tracking_uri: Option<String>,
    /// Tracker experiment (default: the task).
    #[arg(long)]
    pub experiment: Option<String>,
}

impl RunArgs {
    /// The protocol with this command's overrides.
    pub fn protocol(&self) -> anyhow::Result<Protocol> {
        let mut p = Protocol::by_name(&self.protocol)?;
        if self.quick {
            p.epochs = 1;
            p.limit_train = Some(512);
        }
        if let Some(e) = self.epochs {
            p.epochs = e;
        }
        if let Some(lr) = self.lr {
            p.lr = lr;
        }
        if let Some(m) = self.max_len {
            p.max_len = m;
        }
        if let Some(n) = self.limit_train {
            p.limit_train = Some(n);
        }
        if let Some(d) = &self.device {
            p.device = d.clone();
        }
        if let Some(x) = &self.precision {
            p.precision = x.parse()?;
        }
        p.check()?;
        Ok(p)
    }
}

/// One child run per phase under the parent.
struct PhaseRuns {
    score: Run,
    search: Run,
    train: Run,
}

impl PhaseLoggers for PhaseRuns {
    fn logger(&mut self, phase: Phase) -> &mut dyn RunLogger {
        match phase {
            Phase::Score => &mut self.score,
            Phase::Search => &mut self.search,
            Phase::Train => &mut self.train,
        }
    }
}

/// Run `heterolora run`.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let task: Task = args.task.parse()?;
    let protocol = args.protocol()?;
    crate::proxy::by_name(&args.proxy)?;
    let method = Method::heterolora(&args.proxy, args.p, args.r, args.dynamic);
    // On a fresh machine: fetch the model and the task's data into datasets/ (one line each).
    args.assets.ensure(Some(task))?;
    let mut source = AssetSource::new(args.assets.model.as_deref(), args.assets.glue.as_deref());
    // Missing assets fail here, naming the fetch command, before any run is created.
    source.check(task)?;
    // So is a device that cannot be opened.
    crate::device::parse_device(&protocol.device)?;
    let dims = source.dims()?;
    let budget = method.budget(&dims)?;
    let tracker = Tracker::open_or_default(args.tracking_uri.as_deref())?;
    let experiment = args
        .experiment
        .clone()
        .unwrap_or_else(|| task.name().to_string());
    let mut parent = tracker
        .experiment(&experiment)?
        .start_run(&format!("run-{}-seed{}", method.name, args.seed))?;
    parent.set_tags(&[
        ("heterolora.kind", "run"),
        ("run.method", method.name.as_str()),
        ("run.proxy", args.proxy.as_str()),
    ])?;
    parent.log_params(&protocol.to_params())?;
    parent.log_params(&[
        ("task", task.name().to_string()),
        ("seed", args.seed.to_string()),
        ("p", args.p.to_string()),
        ("r", args.r.to_string()),
        ("dynamic", args.dynamic.to_string()),
        ("budget", budget.params.to_string()),
    ])?;
    eprintln!(
        "heterolora run: {} on {}; {}\nbudget {budget} (same as uniform r = 2 on every q,v module when p = 0.25, r = 8)\ntracker run {} in {}",
        method.description,
        task.name(),
        protocol.describe(),
        parent.run_id(),
        tracker.path().display()
    );
    let started = Instant::now();
    let mut phases = PhaseRuns {
        score: parent.start_child("score")?,
        search: parent.start_child("search")?,
        train: parent.start_child("train")?,
    };
    let stop = install_ctrlc();
    let outcome = source
        .load(task, protocol.max_len, &protocol.device, args.seed)
        .and_then(|loaded| {
            execute_method(
                &method,
                loaded,
                &protocol,
                args.seed,
                &mut phases,
                Some(stop),
            )
        });
    let out = match outcome {
        Ok(o) => o,
        Err(e) => {
            for r in [
                &mut phases.score,
                &mut phases.search,
                &mut phases.train,
                &mut parent,
            ] {
                if !r.is_ended() {
                    let _ = r.set_tag("error", e.to_string());
                    let _ = r.end(RunStatus::Failed);
                }
            }
            return Err(e.into());
        }
    };
    let status = out.result.status;
    phases.score.end(RunStatus::Finished)?;
    phases.search.end(RunStatus::Finished)?;
    phases.train.end(status)?;
    let metric = out.result.primary_metric.clone();
    if let Some(best) = out.result.best_metrics() {
        let m: Vec<(String, f64)> = best
            .iter()
            .map(|(k, v)| (format!("best_dev_{k}"), *v))
            .collect();
        parent.log_metrics(&m, 0)?;
    }
    parent.log_metrics(
        &[
            ("adapter_params", out.last.trainable_params() as f64),
            ("trainable_params", out.trainable_params as f64),
            ("wall_time_s", started.elapsed().as_secs_f64()),
        ],
        0,
    )?;
    parent.log_text(&out.initial.to_json()?, "allocation.json")?;
    if let Some(s) = &out.scores {
        parent.log_text(&s.to_json()?, "scores.json")?;
    }
    parent.end(status)?;

    if let Some(s) = &out.scores {
        println!("{s}");
    }
    println!("{}", out.initial);
    match (out.result.best_epoch, out.result.best_metrics()) {
        (Some(e), Some(m)) => {
            let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
            println!(
                "best epoch {e} of {}: dev {}",
                protocol.epochs,
                parts.join(", ")
            );
        }
        _ => println!("no completed epoch: no dev {metric} to report"),
    }
    println!(
        "{} adapter parameters (budget {}), {} trainable with the head; wall time {:.0} s",
        out.last.trainable_params(),
        budget.params,
        out.trainable_params,
        started.elapsed().as_secs_f64()
    );
    println!(
        "tracked as run {} (children score {}, search {}, train {}) in {}\nartifacts: {}",
        parent.run_id(),
        phases.score.run_id(),
        phases.search.run_id(),
        phases.train.run_id(),
        tracker.path().display(),
        parent.artifact_dir()?.display()
    );
    if status == RunStatus::Killed {
        eprintln!("interrupted at step {}", out.result.steps);
        return Err(crate::Error::Interrupted.into());
    }
    Ok(())
}
