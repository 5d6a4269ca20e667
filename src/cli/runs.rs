//! `heterolora runs list|show|compare|export|history|experiments`: query the tracker store.

use crate::tracking::display::{fmt_float, fmt_time_ms};
use crate::tracking::{RunData, RunTable, Tracker};
use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use polars::prelude::*;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Tracker store: a path or sqlite:/// URI (default tracking/mlflow.db)
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
    Experiments,
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
    /// Columns to show (comma-separated, e.g. run_id,metrics.acc,params.r); default: a summary
    #[arg(short, long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Also show tags.* columns
    #[arg(long)]
    pub tags: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Run id (or a unique prefix of at least 4 hex digits)
    pub run_id: String,
    /// Also show MLflow's system tags (mlflow.*)
    #[arg(long)]
    pub all_tags: bool,
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
}

pub fn run(args: RunsArgs) -> anyhow::Result<()> {
    let tracker = Tracker::open_or_default(args.tracking_uri.as_deref())?;
    match args.command {
        RunsCommand::List(a) => list(&tracker, &a),
        RunsCommand::Show(a) => show(&tracker, &a),
        RunsCommand::Compare(a) => compare(&tracker, &a),
        RunsCommand::Export(a) => export(&tracker, &a),
        RunsCommand::History(a) => {
            let h = tracker.metric_history(&a.run_id, &a.key)?;
            print!("{h}");
            Ok(())
        }
        RunsCommand::Experiments => {
            for e in tracker.list_experiments()? {
                println!(
                    "{:>4}  {:<30}  {}",
                    e.experiment_id, e.name, e.artifact_location
                );
            }
            Ok(())
        }
    }
}

/// Polars prints at most a few columns and rows by default: widen it for a terminal listing,
/// unless the user chose.
fn widen_polars_display(rows: usize) {
    for (k, v) in [
        ("POLARS_FMT_MAX_COLS", "30".to_string()),
        ("POLARS_FMT_MAX_ROWS", rows.to_string()),
        ("POLARS_FMT_STR_LEN", "48".to_string()),
        ("POLARS_FMT_TABLE_ROUNDED_CORNERS", "1".to_string()),
        ("POLARS_FMT_TABLE_HIDE_COLUMN_DATA_TYPES", "1".to_string()),
        (
            "POLARS_FMT_TABLE_HIDE_DATAFRAME_SHAPE_INFORMATION",
            "1".to_string(),
        ),
        (
            "POLARS_TABLE_WIDTH",
            std::env::var("COLUMNS").unwrap_or_else(|_| "240".to_string()),
        ),
    ] {
        if std::env::var_os(k).is_none() {
            std::env::set_var(k, v);
        }
    }
}

/// The summary view of a run table: short ids, readable times, no artifact URI.
pub fn summary(table: &RunTable, with_tags: bool) -> crate::Result<DataFrame> {
    let df = table.df();
    let n = df.height();
    let ids: Vec<String> = table
        .run_ids()
        .iter()
        .map(|s| s.chars().take(8).collect())
        .collect();
    let start: Vec<Option<String>> = match df.column("start_time")?.i64() {
        Ok(ca) => ca.iter().map(|v| v.map(fmt_time_ms)).collect(),
        Err(_) => vec![None; n],
    };
    let mut cols = vec![
        Column::new("run_id".into(), ids),
        df.column("run_name")?.clone(),
        df.column("status")?.clone(),
        Column::new("start_time (UTC)".into(), start),
    ];
    if table
        .strings("experiment_id")
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        > 1
    {
        cols.insert(1, df.column("experiment_id")?.clone());
    }
    for c in df.columns() {
        let name = c.name().as_str();
        if name.starts_with("metrics.")
            || name.starts_with("params.")
            || (with_tags && name.starts_with("tags."))
        {
            cols.push(c.clone());
        }
    }
    Ok(DataFrame::new(n, cols)?)
}

fn list(t: &Tracker, a: &ListArgs) -> anyhow::Result<()> {
    let table = a.search.search(t)?;
    widen_polars_display(table.len().max(1));
    let df = if a.columns.is_empty() {
        summary(&table, a.tags)?
    } else {
        let cols: Vec<&str> = a.columns.iter().map(|s| s.trim()).collect();
        table
            .select(&cols)
            .with_context(|| format!("choose columns among: {:?}", table.df().get_column_names()))?
            .into_df()
    };
    println!("{df}");
    Ok(())
}

fn show(t: &Tracker, a: &ShowArgs) -> anyhow::Result<()> {
    let run = t.get_run(&a.run_id)?;
    let i = &run.info;
    println!("run        {}  ({})", i.run_id, i.run_name);
    println!("experiment {}", i.experiment_id);
    println!("status     {}", i.status);
    println!("user       {}", i.user_id);
    println!("start      {} UTC", fmt_time_ms(i.start_time));
    if let Some(e) = i.end_time {
        println!(
            "end        {} UTC ({:.1} s)",
            fmt_time_ms(e),
            (e - i.start_time) as f64 / 1000.0
        );
    }
    if let Some(p) = run.parent_run_id() {
        println!("parent     {p}");
    }
    println!("artifacts  {}", i.artifact_uri);
    println!("\nparams ({})", run.params.len());
    for (k, v) in &run.params {
        println!("  {k:<32} {v}");
    }
    println!("\nmetrics ({}; latest value)", run.metrics.len());
    for (k, p) in &run.metrics {
        println!("  {k:<32} {:<12} step {}", fmt_float(p.value), p.step);
    }
    let tags: Vec<_> = run
        .tags
        .iter()
        .filter(|(k, _)| a.all_tags || !k.starts_with("mlflow."))
        .collect();
    println!("\ntags ({})", tags.len());
    for (k, v) in tags {
        println!("  {k:<32} {v}");
    }
    let arts = t.list_artifacts(&i.run_id)?;
    println!("\nartifact files ({})", arts.len());
    for f in arts {
        println!("  {f}");
    }
    let kids = t.child_runs(&i.run_id)?;
    if !kids.is_empty() {
        println!("\nchild runs ({})", kids.len());
        for k in kids {
            let c = t.run_info(&k)?;
            println!("  {}  {:<24} {}", c.run_id, c.run_name, c.status);
        }
    }
    Ok(())
}

/// Rows `params.<k>` and `metrics.<k>`, one column per run (named by run name and short id),
/// and a `differs` column.
pub fn compare_frame(runs: &[RunData]) -> crate::Result<DataFrame> {
    let mut keys: Vec<String> = Vec::new();
    for r in runs {
        keys.extend(r.params.keys().map(|k| format!("params.{k}")));
        keys.extend(r.metrics.keys().map(|k| format!("metrics.{k}")));
    }
    keys.sort();
    keys.dedup();
    // params before metrics
    keys.sort_by_key(|k| !k.starts_with("params."));
    let cell = |r: &RunData, key: &str| -> Option<String> {
        if let Some(k) = key.strip_prefix("params.") {
            r.params.get(k).cloned()
        } else {
            let k = key.strip_prefix("metrics.").unwrap_or(key);
            r.metrics.get(k).map(|p| fmt_float(p.value))
        }
    };
    let mut cols = vec![Column::new("key".into(), keys.clone())];
    let mut differs = vec![false; keys.len()];
    for (j, key) in keys.iter().enumerate() {
        let vals: Vec<Option<String>> = runs.iter().map(|r| cell(r, key)).collect();
        differs[j] = vals.windows(2).any(|w| w[0] != w[1]);
    }
    cols.push(Column::new(
        "differs".into(),
        differs
            .iter()
            .map(|d| if *d { "*" } else { "" })
            .collect::<Vec<_>>(),
    ));
    let mut seen = std::collections::HashSet::new();
    for r in runs {
        let mut name = format!(
            "{} ({})",
            r.info.run_name,
            &r.info.run_id[..8.min(r.info.run_id.len())]
        );
        while !seen.insert(name.clone()) {
            name.push('\'');
        }
        let vals: Vec<Option<String>> = keys.iter().map(|k| cell(r, k)).collect();
        cols.push(Column::new(name.into(), vals));
    }
    Ok(DataFrame::new(keys.len(), cols)?)
}

fn compare(t: &Tracker, a: &CompareArgs) -> anyhow::Result<()> {
    let ids: Vec<String> = if a.run_ids.is_empty() {
        a.search.search(t)?.run_ids()
    } else {
        a.run_ids.clone()
    };
    if ids.len() < 2 {
        bail!("compare needs at least two runs (give run ids, or a filter matching several runs); got {}", ids.len());
    }
    let runs: Vec<RunData> = ids
        .iter()
        .map(|id| t.get_run(id))
        .collect::<crate::Result<_>>()?;
    let mut df = compare_frame(&runs)?;
    if a.diff {
        let mask = df.column("differs")?.str()?.equal("*");
        df = df.filter(&mask)?;
    }
    widen_polars_display(df.height().max(1));
    println!("{df}");
    Ok(())
}

fn export(t: &Tracker, a: &ExportArgs) -> anyhow::Result<()> {
    let mut df = a.search.search(t)?.into_df();
    let format = match a.format {
        Some(f) => f,
        None => match a.output.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()) {
            Some(e) if e == "parquet" || e == "pq" => ExportFormat::Parquet,
            Some(e) if e == "csv" => ExportFormat::Csv,
            _ if a.output.as_os_str() == "-" => ExportFormat::Csv,
            _ => bail!(
                "cannot tell the format of `{}` from its extension: use .csv or .parquet, or --format csv|parquet",
                a.output.display()
            ),
        },
    };
    if a.output.as_os_str() == "-" {
        if matches!(format, ExportFormat::Parquet) {
            bail!("Parquet cannot be written to stdout: give a file with --output");
        }
        CsvWriter::new(std::io::stdout().lock()).finish(&mut df)?;
        return Ok(());
    }
    if let Some(dir) = a.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file = std::fs::File::create(&a.output)
        .with_context(|| format!("creating {}", a.output.display()))?;
    match format {
        ExportFormat::Csv => CsvWriter::new(file).finish(&mut df)?,
        ExportFormat::Parquet => {
            ParquetWriter::new(file).finish(&mut df)?;
        }
    }
    eprintln!(
        "wrote {} run(s) x {} column(s) to {}",
        df.height(),
        df.width(),
        a.output.display()
    );
    Ok(())
}
