//! `heterolora study`: the budget-matched comparison of allocation methods over seeds
//! (resumable), `heterolora study report`: its tables and plots from the tracker.

use crate::data::Task;
use crate::study::{
    AssetSource, ClaimPolicy, Method, Protocol, Study, StudyConfig, StudyOutcome, StudyReport,
};
use crate::tracking::Tracker;
use crate::train::install_ctrlc;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// Run the study (children already finished are skipped), or print its plan with --dry-run.
///
/// Examples:
///   heterolora study --task mrpc --dry-run
///   nohup heterolora study --task mrpc > study-mrpc.log 2>&1 &
///   heterolora study --task mrpc --methods uniform-r2,static-grad-norm --seeds 0
///   heterolora study --task mrpc --protocol paper --jobs 4          # four children at a time
///   heterolora study --task mrpc --protocol paper --emit slurm --gpus-per-task 1 --partition gpu
///   heterolora study report --task mrpc
///
/// Several processes may work on one study at once (`--jobs`, Slurm array tasks, two shells):
/// each child is claimed in the tracker before it trains, so none is trained twice.
#[derive(Debug, Args)]
pub struct StudyArgs {
    #[command(subcommand)]
    pub action: Option<StudyAction>,
    #[command(flatten)]
    pub opts: StudyOpts,
    /// Print the plan (methods, exact budgets, seeds, what is already done) and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not write the report after the run.
    #[arg(long)]
    pub no_report: bool,
    /// Run this many children at once, each in its own worker process with cores/N threads.
    #[arg(long, short = 'j', default_value_t = 1)]
    pub jobs: usize,
    /// Stop after this much wall time (`90s`, `25m`, `2h30m`; a bare number is seconds), as
    /// Ctrl-C would: the child in training saves a checkpoint at its next step and continues
    /// from it next time (see results/<study>/checkpoints/).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub stop_after: Option<Duration>,
    /// Write a Slurm job array (one task per pending child) and a report job instead of
    /// training: `slurm` is the only value.
    #[arg(long, value_name = "slurm")]
    pub emit: Option<String>,
    #[command(flatten)]
    pub slurm: SlurmArgs,
    #[command(flatten)]
    pub worker: WorkerArgs,
}

#[derive(Debug, Subcommand)]
pub enum StudyAction {
    /// Write results/<study>/ (table.md, table.csv, runs.csv, summary.md, plots) from the tracker
    /// and the committed child records.
    Report(StudyOpts),
    /// Add each dev example's prediction to the committed child records that lack them (written
    /// before records kept them), from the final adapters their runs saved in the tracker; the
    /// report then resamples dev examples too (its two-level bootstrap).
    Predictions(StudyOpts),
    /// List the methods (name, family, space, allocator, proxy).
    Methods,
}

#[derive(Debug, Args, Clone)]
pub struct StudyOpts {
    /// GLUE task (mrpc, rte, sst2, cola, stsb, qnli, wnli).
    #[arg(long, default_value = "mrpc")]
    pub task: String,
    /// `cpu6` (6 epochs, chosen by the pilot in results/pilot/), `cpu` (2 epochs, the first
    /// study's) or `paper` (the authors' 20 epochs at batch 8, for a GPU).
    #[arg(long, default_value = Protocol::DEFAULT)]
    pub protocol: String,
    /// Methods, families, `default` (the protocol's list: under cpu6 the four core methods
    /// uniform-r2, static-grad-norm, random, dynamic-grad-norm, also named `core`; 12 under cpu;
    /// all under paper) or `all` (comma-separated); see `heterolora study methods`.
    #[arg(long, alias = "only", value_delimiter = ',', default_value = "default")]
    pub methods: Vec<String>,
    /// `seed-major` (every method on seed 0 first) or `method-major`.
    #[arg(long, default_value = "seed-major")]
    pub order: String,
    /// Seeds (comma-separated; default 0,1,2,3,4 under cpu6, 0,13,42 under cpu and paper).
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<u64>>,
    /// Study name (default: the task under cpu6, `<task>-<protocol>` otherwise).
    #[arg(long)]
    pub name: Option<String>,
    /// Override the protocol's epochs (a changed protocol needs a new --name).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Override the protocol's learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Override the protocol's token limit.
    #[arg(long)]
    pub max_len: Option<usize>,
    /// Override the protocol's classifier read-out: `cls` ([CLS] through the pooler) or `mean`
    /// (the mean over tokens).
    #[arg(long)]
    pub head: Option<String>,
    /// Train on the first N training examples only (smoke tests).
    #[arg(long)]
    pub limit_train: Option<usize>,
    /// Override the protocol's device (cpu, cuda, cuda:N, auto).
    #[arg(long)]
    pub device: Option<String>,
    /// Override the protocol's precision: f32, or bf16 (bf16 frozen model, f32 adapters, head
    /// and loss: for GPUs; slower on the CPU). A bf16 study is a different protocol: it does not
    /// continue an f32 study's children.
    #[arg(long)]
    pub precision: Option<String>,
    #[command(flatten)]
    pub assets: crate::cli::assets::AssetArgs,
    /// Tracker store (path or sqlite:/// URI); default $MLFLOW_TRACKING_URI, else tracking/mlflow.db.
    #[arg(long)]
    pub tracking_uri: Option<String>,
    /// Where the report and the committed child records go (default results/<study>).
    #[arg(long)]
    pub results: Option<PathBuf>,
}

/// Resources of the Slurm array tasks (`--emit slurm`).
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Slurm (--emit slurm)")]
pub struct SlurmArgs {
    /// CPU cores per task (also its thread count).
    #[arg(long, default_value_t = 4)]
    pub cpus_per_task: usize,
    /// Memory per task.
    #[arg(long, default_value = "16G")]
    pub mem: String,
    /// Time limit per task (a task past it is killed; its child is retried once its claim is stale).
    #[arg(long, default_value = "04:00:00")]
    pub time: String,
    /// GPUs per task (use with --device cuda).
    #[arg(long, default_value_t = 0)]
    pub gpus_per_task: usize,
    /// Slurm partition (`#SBATCH --partition`); the cluster's default when not given.
    #[arg(long)]
    pub partition: Option<String>,
    /// Slurm account to charge (`#SBATCH --account`).
    #[arg(long)]
    pub account: Option<String>,
    /// At most this many tasks at once (the `%N` of `--array`).
    #[arg(long)]
    pub max_parallel: Option<usize>,
    /// Where the scripts go [default: slurm/<study>].
    #[arg(long)]
    pub slurm_dir: Option<PathBuf>,
}

/// Running as one worker of a study started elsewhere.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Workers")]
pub struct WorkerArgs {
    /// Run as one more worker of an existing study: claim and train pending children, leave the
    /// parent run to the others (closing it when every child is done).
    #[arg(long)]
    pub worker: bool,
    /// The study's parent run (default: the newest parent run of this study).
    #[arg(long, requires = "worker")]
    pub parent_run: Option<String>,
    /// Train only the child at this index of the plan (a Slurm array task's `$SLURM_ARRAY_TASK_ID`).
    #[arg(long, requires = "worker")]
    pub child_index: Option<usize>,
    /// A child claimed by a worker that has not shown a sign of life for this many minutes is
    /// taken over (a claim from a dead process on this host is taken over at once).
    #[arg(long, default_value_t = 60)]
    pub stale_after_min: u64,
    /// Milliseconds between writing a claim and reading the competing ones.
    #[arg(long, default_value_t = 1000, hide = true)]
    pub claim_settle_ms: u64,
}

impl WorkerArgs {
    pub(super) fn policy(&self) -> ClaimPolicy {
        ClaimPolicy {
            settle: Duration::from_millis(self.claim_settle_ms),
            stale_after: Duration::from_secs(self.stale_after_min * 60),
            ..ClaimPolicy::default()
        }
    }

    pub(super) fn to_args(&self) -> Vec<String> {
        vec![
            "--stale-after-min".into(),
            self.stale_after_min.to_string(),
            "--claim-settle-ms".into(),
            self.claim_settle_ms.to_string(),
        ]
    }
}

impl StudyOpts {
    /// The study configuration these options describe.
    pub fn config(&self) -> anyhow::Result<StudyConfig> {
        let task: Task = self.task.parse()?;
        let mut p = Protocol::by_name(&self.protocol)?;
        if let Some(e) = self.epochs {
            p.epochs = e;
        }
        if let Some(lr) = self.lr {
            p.lr = lr;
        }
        if let Some(m) = self.max_len {
            p.max_len = m;
        }
        if let Some(h) = &self.head {
            p.head = h.parse()?;
        }
        if let Some(d) = &self.device {
            p.device = d.clone();
        }
        if let Some(x) = &self.precision {
            p.precision = x.parse()?;
        }
        p.limit_train = self.limit_train.or(p.limit_train);
        p.check()?;
        let mut cfg = StudyConfig::new(task, p);
        if let Some(seeds) = &self.seeds {
            cfg = cfg.seeds(seeds.clone());
        }
        if !self.methods.iter().all(|m| m.trim() == "default") {
            cfg = cfg.methods(Method::select(&self.methods)?);
        }
        cfg.order = self.order.parse()?;
        if let Some(n) = &self.name {
            cfg = cfg.name(n.clone());
            cfg.results_dir = PathBuf::from("results").join(n);
        }
        if let Some(r) = &self.results {
            cfg = cfg.results_dir(r.clone());
        }
        cfg.check()?;
        Ok(cfg)
    }

    /// These options as command-line arguments (what `--jobs` and `--emit slurm` hand their
    /// workers): every option that was given, none of the worker or Slurm ones.
    pub fn to_args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "--task".into(),
            self.task.clone(),
            "--protocol".into(),
            self.protocol.clone(),
            "--methods".into(),
            self.methods.join(","),
            "--order".into(),
            self.order.clone(),
        ];
        if let Some(seeds) = &self.seeds {
            a.push("--seeds".into());
            a.push(
                seeds
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        let mut opt = |flag: &str, v: Option<String>| {
            if let Some(v) = v {
                a.push(flag.into());
                a.push(v);
            }
        };
        opt("--name", self.name.clone());
        opt("--epochs", self.epochs.map(|v| v.to_string()));
        opt("--lr", self.lr.map(|v| v.to_string()));
        opt("--max-len", self.max_len.map(|v| v.to_string()));
        opt("--head", self.head.clone());
        opt("--limit-train", self.limit_train.map(|v| v.to_string()));
        opt("--device", self.device.clone());
        opt("--precision", self.precision.clone());
        opt(
            "--model",
            self.assets.model.as_ref().map(|p| p.display().to_string()),
        );
        opt(
            "--glue",
            self.assets.glue.as_ref().map(|p| p.display().to_string()),
        );
        opt("--tracking-uri", self.tracking_uri.clone());
        opt(
            "--results",
            self.results.as_ref().map(|p| p.display().to_string()),
        );
        a
    }

    /// The command line that reproduces these options (recorded in the report).
    pub fn command(&self, report: bool) -> String {
        let mut c = format!(
            "heterolora study{} --task {}",
            if report { " report" } else { "" },
            self.task
        );
        if self.protocol != Protocol::DEFAULT {
            c += &format!(" --protocol {}", self.protocol);
        }
        if let Some(n) = &self.name {
            c += &format!(" --name {n}");
        }
        if let Some(r) = &self.results {
            c += &format!(" --results {}", r.display());
        }
        c
    }
}

impl StudyArgs {
    /// Whether this invocation runs as, or starts, several workers (`--jobs`, `--emit`,
    /// `--worker`): [`super::study_workers`] runs it.
    pub fn parallel(&self) -> bool {
        self.action.is_none() && (self.emit.is_some() || self.jobs > 1 || self.worker.worker)
    }
}

/// Run `heterolora study` in this process (see [`StudyArgs::parallel`] for the rest).
pub fn run(args: StudyArgs) -> anyhow::Result<()> {
    match args.action {
        Some(StudyAction::Methods) => {
            let cpu: Vec<String> = Method::cpu_default().into_iter().map(|m| m.name).collect();
            for m in Method::all() {
                println!(
                    "{:<30} {:<4} {:<14} {:<14} {:<18} {}",
                    m.name,
                    if cpu.contains(&m.name) { "cpu" } else { "" },
                    m.family,
                    m.space.as_str(),
                    m.proxy.as_deref().unwrap_or("-"),
                    m.description
                );
            }
            Ok(())
        }
        Some(StudyAction::Report(opts)) => report(&opts),
        Some(StudyAction::Predictions(opts)) => predictions(&opts),
        None => {
            let cfg = args.opts.config()?;
            let tracker = Tracker::open_or_default(args.opts.tracking_uri.as_deref())?;
            let source = AssetSource::new(
                args.opts.assets.model.as_deref(),
                args.opts.assets.glue.as_deref(),
            );
            let mut study = Study::new(cfg, tracker, Box::new(source));
            let plan = study.plan()?;
            println!("{plan}");
            if args.dry_run {
                return Ok(());
            }
            study.stop = install_ctrlc();
            if let Some(d) = args.stop_after {
                study.stop.stop_after(d);
            }
            eprintln!("tracker: {}", study.tracker.path().display());
            let out = study.run(&mut |line| eprintln!("{line}"))?;
            // Ctrl-C: the stopped child continues from its checkpoint next time; the shell sees status 130.
            let stopped = out.stopped.is_some() || study.stop.is_set();
            finish(&args, &study, &out, stopped)
        }
    }
}

/// The end of a study run in any mode: the counts, the report (unless `--no-report`), then exit
/// status 130 after Ctrl-C or an error listing the failed children.
pub(super) fn finish(
    args: &StudyArgs,
    study: &Study,
    out: &StudyOutcome,
    stopped: bool,
) -> anyhow::Result<()> {
    eprintln!(
        "study {} (parent run {}): {} finished here, {} skipped as done, {} held by other workers, {} failed",
        study.cfg.name,
        out.parent_run_id,
        out.finished.len(),
        out.skipped.len(),
        out.busy.len(),
        out.failed.len()
    );
    if !args.no_report {
        report(&args.opts)?;
    }
    if stopped {
        return Err(crate::Error::Interrupted.into());
    }
    fail_listing("child run(s) failed (rerun to retry them)", &out.failed)
}

/// A wall-time span: `90`, `90s`, `25m`, `2h`, `2h30m`, `1h5m30s` (a bare number is seconds).
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = || {
        format!("`{text}` is not a duration: write seconds (`420`) or a sum of `<n>h`, `<n>m`, `<n>s` (`2h30m`)")
    };
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = t.parse::<f64>() {
        return (secs.is_finite() && secs > 0.0)
            .then(|| Duration::from_secs_f64(secs))
            .ok_or_else(bad);
    }
    let mut total = 0f64;
    let mut number = String::new();
    for c in t.chars() {
        match c {
            '0'..='9' | '.' => number.push(c),
            'h' | 'm' | 's' => {
                let n: f64 = number.parse().map_err(|_| bad())?;
                total += n * match c {
                    'h' => 3600.0,
                    'm' => 60.0,
                    _ => 1.0,
                };
                number.clear();
            }
            _ => return Err(bad()),
        }
    }
    if !(number.is_empty() && total.is_finite() && total > 0.0) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(total))
}

/// An error listing `failed` (key: reason) under `what`, or Ok when nothing failed.
fn fail_listing(what: &str, failed: &[(String, String)]) -> anyhow::Result<()> {
    if failed.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = failed.iter().map(|(k, e)| format!("{k}: {e}")).collect();
    anyhow::bail!("{} {what}:\n{}", failed.len(), list.join("\n"))
}

fn predictions(opts: &StudyOpts) -> anyhow::Result<()> {
    let cfg = opts.config()?;
    let tracker = Tracker::open_or_default(opts.tracking_uri.as_deref())?;
    let source = AssetSource::new(opts.assets.model.as_deref(), opts.assets.glue.as_deref());
    let mut study = Study::new(cfg, tracker, Box::new(source));
    let out = study.add_dev_predictions(&mut |line| eprintln!("{line}"))?;
    println!(
        "study {}: dev predictions added to {} record(s), {} had them, {} left without",
        study.cfg.name,
        out.added.len(),
        out.present.len(),
        out.failed.len()
    );
    if !out.added.is_empty() {
        println!("next: {}", opts.command(true));
    }
    fail_listing("record(s) left without dev predictions", &out.failed)
}

pub(super) fn report(opts: &StudyOpts) -> anyhow::Result<()> {
    let cfg = opts.config()?;
    let tracker = Tracker::open_or_default(opts.tracking_uri.as_deref())?;
    let rep = StudyReport::collect(Some(&tracker), &cfg)?;
    for n in &rep.notes {
        eprintln!("note: {n}");
    }
    let mut files = rep.write(
        &cfg.results_dir,
        &opts.command(true),
        &rep.protocol_line(&cfg.protocol),
    )?;
    files.extend(crate::plot::study::write_study_plots(
        &rep,
        &cfg.results_dir,
    )?);
    println!("{}", rep.table_markdown());
    println!("{}", rep.summary_markdown());
    println!(
        "wrote {} files under {}",
        files.len(),
        cfg.results_dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_parse_as_written() {
        let s = |t: &str| parse_duration(t).map(|d| d.as_secs_f64());
        assert_eq!(s("420"), Ok(420.0));
        assert_eq!(s("90s"), Ok(90.0));
        assert_eq!(s("25m"), Ok(1500.0));
        assert_eq!(s("2h30m"), Ok(9000.0));
        assert_eq!(s(" 1h5m30s "), Ok(3930.0));
        assert_eq!(s("1.5h"), Ok(5400.0));
        assert_eq!(parse_duration("150m").unwrap(), Duration::from_secs(9000));
        for bad in ["", "0", "-5", "5x", "m", "2h30", "1e400", "0m"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("not a duration"), "{bad}: {e}");
        }
    }
}
