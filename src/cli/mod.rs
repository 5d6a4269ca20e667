//! The `heterolora` command line. One file per subcommand; `main.rs` only calls [`run`].

use clap::{Parser, Subcommand};

pub mod assets;
pub mod bench;
pub mod fetch;
pub mod info;
pub mod output;
pub mod plot;
pub mod predict;
pub mod run;
pub mod runs;
pub mod score;
pub mod search;
pub mod search_output;
pub mod study;
pub mod study_workers;
pub mod train;

#[derive(Debug, Parser)]
#[command(
    name = "heterolora",
    version,
    about = "HeteroLoRA: spend a LoRA parameter budget where it matters"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The main job: one HeteroLoRA run (score, allocate, fine-tune), tracked as one parent run.
    Run(run::RunArgs),
    /// The budget-matched comparison of methods over seeds, resumable; `study report` writes results/.
    Study(study::StudyArgs),
    /// Fetch and verify the model or the GLUE data.
    Fetch(fetch::FetchArgs),
    /// Dataset statistics (rows, label balance, token lengths) and model statistics.
    Info(info::InfoArgs),
    /// Score every candidate adapter slot with zero-cost proxies.
    Score(score::ScoreArgs),
    /// Turn proxy scores into an allocation (uniform, top-k, heterogeneous ranks, or a manual spec).
    Search(search::SearchArgs),
    /// Fine-tune an adapter allocation on a GLUE task (logged to the tracker).
    Train(train::TrainArgs),
    /// Score a GLUE-format TSV with saved adapters: metrics with labels, a GLUE submission file
    /// without.
    #[command(alias = "eval")]
    Predict(predict::PredictArgs),
    /// Query the run tracker (the MLflow-compatible SQLite store or an MLflow server): list, show, compare, export, history, sync.
    Runs(runs::RunsArgs),
    /// Draw charts as SVG and PNG: allocation and score heat maps from JSON files; budget plots,
    /// training curves and re-allocation timelines from the tracker.
    Plot(plot::PlotArgs),
    /// Benchmarks (training step throughput and memory).
    Bench(bench::BenchArgs),
}

/// The exit status of a command that ended with `err`: 130 (the shell's 128 + SIGINT) when the
/// user stopped it with Ctrl-C, so scripts can tell an interrupt from a failure; 1 otherwise.
pub fn exit_status(err: &anyhow::Error) -> u8 {
    match err.downcast_ref::<crate::Error>() {
        Some(crate::Error::Interrupted) => 130,
        _ => 1,
    }
}

/// Fetch on first use for `train` and `study` (whose files only read the folders): the default
/// model and the task's GLUE data are fetched into `datasets/` when missing and no folder was
/// named. `run`, `score`, `search --proxy` and `bench train` do the same in their own files.
fn fetch_on_first_use(command: &Command) -> anyhow::Result<()> {
    match command {
        Command::Train(a) if a.resume.is_none() => {
            let task = a.task.as_deref().map(str::parse).transpose()?;
            a.assets.ensure(task)?;
        }
        Command::Study(a) if a.action.is_none() => {
            // A dry run reads only the model's config.json.
            let task = (!a.dry_run).then(|| a.opts.task.parse()).transpose()?;
            a.opts.assets.ensure(task)?;
        }
        _ => {}
    }
    Ok(())
}

/// Run the command line with the process arguments.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    fetch_on_first_use(&cli.command)?;
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Study(args) if args.parallel() => study_workers::run(args),
        Command::Study(args) => study::run(args),
        Command::Fetch(args) => fetch::run(args),
        Command::Info(args) => info::run(args),
        Command::Score(args) => score::run(args),
        Command::Search(args) => search::run(args),
        Command::Train(args) => train::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Runs(args) => runs::run(args),
        Command::Plot(args) => {
            for path in plot::run(args)? {
                println!("wrote {}", path.display());
            }
            Ok(())
        }
        Command::Bench(args) => bench::run(args),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ctrl_c_exits_130_and_failures_1() {
        let interrupted: anyhow::Error = crate::Error::Interrupted.into();
        assert_eq!(super::exit_status(&interrupted), 130);
        let wrapped = interrupted.context("while training");
        assert_eq!(super::exit_status(&wrapped), 130);
        assert_eq!(super::exit_status(&anyhow::anyhow!("bad flag")), 1);
        let other: anyhow::Error = crate::Error::Tracking("x".into()).into();
        assert_eq!(super::exit_status(&other), 1);
    }
}
