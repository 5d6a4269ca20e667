//! `heterolora runs list|show|compare|export|history|experiments|sync`: query the tracker store
//! (`sync`: send what runs on a tracking server spooled while it was away).
//!
//! The arguments live here, each subcommand in its own file. Every command that prints results
//! takes `--format table|json|csv` ([`OutputFormat`]); `export` writes files instead.

pub mod columns;
mod compare;
mod export;
mod history;
pub mod list;
mod show;
mod sync;

use crate::cli::output::OutputFormat;
use crate::tracking::{RunTable, Tracker};
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Tracker store: a path, sqlite:/// URI or MLflow server http(s)://host:port (default tracking/mlflow.db)
    #[arg(long, global = true, env = "MLFLOW_TRACKING_URI")]
    pub tracking_uri: Option<String>,
    #[command(subcommand)]
    pub command: RunsCommand,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List runs matching a filter, newest first (or by --order-by)
    List(ListArgs),
    /// Everything about one run: attributes, params, latest metrics, tags, artifacts, children
    Show(ShowArgs),
    /// Params and latest metrics of several runs side by side; differing params marked `*`
    Compare(CompareArgs),
    /// Write the runs matching a filter to CSV or Parquet (all of MLflow's columns)
    Export(ExportArgs),
    /// Every point of one metric of one run
    History(HistoryArgs),
    /// List the experiments
    Experiments(ExperimentsArgs),
    /// Send what runs on an MLflow tracking server spooled while it did not answer (metrics,
    /// params, tags, artifacts, final status)
    Sync,
}

/// Which runs: MLflow's search arguments.
#[derive(Debug, Args, Clone)]
pub struct SearchArgs {
    /// Experiment name or id (repeatable; default: all experiments)
    #[arg(short = 'e', long = "experiment")]
    pub experiments: Vec<String>,
    /// MLflow filter, e.g. "metrics.acc > 0.8 and params.r = '8'"
    #[arg(short, long, default_value = "")]
    pub filter: String,
    /// Sort key, e.g. "metrics.acc DESC" (repeatable)
    #[arg(short = 'o', long = "order-by")]
    pub order_by: Vec<String>,
    /// At most this many runs
    #[arg(short = 'n', long)]
    pub max_results: Option<usize>,
}

impl SearchArgs {
    fn search(&self, t: &Tracker) -> crate::Result<RunTable> {
        let e: Vec<&str> = self.experiments.iter().map(|s| s.as_str()).collect();
        let o: Vec<&str> = self.order_by.iter().map(|s| s.as_str()).collect();
        t.search_runs_limit(&e, &self.filter, &o, self.max_results)
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub search: SearchArgs,
    /// Columns, comma-separated, as MLflow names them: run_name,status,duration,params.r,
    /// metrics.dev_f1,tags.method (a bare key is looked up among metrics, params and tags), or
    /// `all`. Default: run, name, status, start, duration and the main metrics, fitting the
    /// terminal (100 characters when it cannot be told)
    #[arg(short, long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Also show the tags.* columns (but MLflow's own mlflow.*)
    #[arg(long)]
    pub tags: bool,
    /// table (for people), json (an array of run objects) or csv (a header, a row per run)
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Run id (or a unique prefix of at least 4 hex digits)
    pub run_id: String,
    /// Also show MLflow's system tags (mlflow.*)
    #[arg(long)]
    pub all_tags: bool,
    /// table, json (one object: info, params, metrics, tags, artifacts, children) or csv
    /// (section,key,value,step rows)
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Run ids (or unique prefixes); with none, the runs matching the search options
    pub run_ids: Vec<String>,
    #[command(flatten)]
    pub search: SearchArgs,
    /// Show only the params and metrics whose values differ
    #[arg(long)]
    pub diff: bool,
    /// table, json ({"runs": [..], "rows": [{key, differs, values}]}) or csv (a column per run id)
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Parquet,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub search: SearchArgs,
    /// Output file, .csv or .parquet (`-` writes CSV to stdout)
    #[arg(long)]
    pub output: PathBuf,
    /// File format (default: from the output's extension)
    #[arg(long, value_enum)]
    pub format: Option<ExportFormat>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Run id (or a unique prefix)
    pub run_id: String,
    /// Metric key
    pub key: String,
    /// table, json ({run_id, key, points: [{step, value, timestamp}]}) or csv (step,value,timestamp)
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ExperimentsArgs {
    /// table, json or csv
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

pub fn run(args: RunsArgs) -> anyhow::Result<()> {
    let tracker = Tracker::open_or_default(args.tracking_uri.as_deref())?;
    match args.command {
        RunsCommand::List(a) => list::list(&tracker, &a),
        RunsCommand::Show(a) => show::show(&tracker, &a),
        RunsCommand::Compare(a) => compare::compare(&tracker, &a),
        RunsCommand::Export(a) => export::export(&tracker, &a),
        RunsCommand::History(a) => history::history(&tracker, &a),
        RunsCommand::Experiments(a) => history::experiments(&tracker, &a),
        RunsCommand::Sync => sync::sync(&tracker),
    }
}
