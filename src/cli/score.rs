//! `heterolora score`: score every candidate slot with one or more zero-cost proxies.
//!
//! ```text
//! heterolora score --task mrpc --proxy grad-norm --space q,v --out scores.json
//! heterolora score --task mrpc --proxy grad-norm,snip,w0-grad-spectrum --space q,v,shortcuts --batches 32
//! ```
//!
//! Several proxies share one gradient pass; with more than one, each is written to
//! `<out stem>.<proxy>.json`. The run is logged to the tracker (experiment = the task) with the
//! scores as metrics `<proxy>.<slot>` and as JSON artifacts, unless `--no-track`.

use crate::adapters::{candidates_in, Architecture, SearchSpace, SlotId};
use crate::cli::output::OutputFormat;
use crate::data::Task;
use crate::model::{AdaptedClassifier, AssetLoader, Classifier};
use crate::proxy::{self, FreshAdapters, Proxy, Scores, ScoringData};
use crate::rng::Rng;
use crate::tracking::{RunStatus, Tracker};
use crate::{Error, Result};
use clap::Args;
use std::path::{Path, PathBuf};

/// Where the model and data come from and which batches are scored (shared with `search --proxy`).
#[derive(Debug, Clone, Args)]
pub struct ScoringOpts {
    /// GLUE task whose training split is scored on.
    #[arg(long, default_value = "mrpc")]
    pub task: String,
    /// N: how many batches from the start of the training split (unshuffled).
    #[arg(long, default_value_t = 32)]
    pub batches: usize,
    /// Examples per scoring batch.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Longest tokenised input.
    #[arg(long, default_value_t = 128)]
    pub max_len: usize,
    /// Rank of the fresh adapters scored on slots (PEFT init, B = 0).
    #[arg(long, default_value_t = 8)]
    pub fresh_r: usize,
    /// auto (the GPU when the build has CUDA and one is visible, else the CPU), cpu, cuda or
    /// cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// f32, or bf16 (the frozen model in bf16, adapters and head f32, as `train --precision`).
    #[arg(long, default_value = "f32")]
    pub precision: String,
    #[command(flatten)]
    pub assets: crate::cli::assets::AssetArgs,
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Proxy name(s), comma-separated: constant, grad-norm, snip, snip-w0, synflow, synflow-sum,
    /// fisher, jacob-cov, alpha-test, w0-grad-norm, w0-grad-spectrum.
    #[arg(long, default_value = "grad-norm")]
    pub proxy: String,
    /// Candidate slot kinds, e.g. q,v or q,v,shortcuts or all.
    #[arg(long, visible_alias = "kinds", default_value = "q,v")]
    pub space: String,
    /// Seed of the model's head and adapter initialisation and of the proxies' randomness.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub scoring: ScoringOpts,
    /// Where to write the scores JSON.
    #[arg(long, short, default_value = "scores.json")]
    pub out: PathBuf,
    /// Tracker database or sqlite:/// URI (default tracking/mlflow.db or $MLFLOW_TRACKING_URI).
    #[arg(long)]
    pub tracking_uri: Option<String>,
    /// Do not log a tracked run.
    #[arg(long)]
    pub no_track: bool,
    /// table, json ({"scores": [..], "files": [..], "run_id": ..}) or csv (proxy,slot,score)
    #[arg(long, value_enum, default_value_t)]
    pub format: crate::cli::output::OutputFormat,
}

/// The model (any backbone, with the task's head) and the scoring batches the options ask for.
pub fn load_for_scoring(opts: &ScoringOpts, seed: u64) -> Result<(Task, Classifier, ScoringData)> {
    let task: Task = opts.task.parse()?;
    let device = crate::device::parse_device(&opts.device)?;
    let precision: crate::train::Precision = opts.precision.parse()?;
    // On a fresh machine: fetch the model and the task's data into datasets/ first.
    opts.assets.ensure(Some(task))?;
    let loaded = AssetLoader::new(task)
        .model_dir(opts.assets.model.as_deref())
        .glue_dir(opts.assets.glue.as_deref())
        .max_len(opts.max_len)
        .splits(true, false)
        .device(&device)
        .dtype(precision.dtype())
        .seed(seed)
        .load()?;
    let sd = ScoringData::from_dataset(loaded.train()?, opts.batch_size, opts.batches, &device)?;
    let model = loaded.model.expect("the loader builds the model");
    Ok((task, model, sd))
}

/// The candidate slots of `space` on `model`: every kind it names that the model has (on a
/// decoder, `all` takes Llama's gate; a space with none of the model's kinds is an error).
pub fn candidate_slots<M: AdaptedClassifier>(
    model: &M,
    space: &SearchSpace,
) -> Result<Vec<SlotId>> {
    let table = model.slot_table();
    if table.architecture == Architecture::Bert {
        // BERT's slots as they always were: every kind of the space on every layer.
        return Ok(space.slots(table.num_layers));
    }
    candidates_in(space, &table)
}

/// Scores `space` with every proxy of the comma-separated `names` (one shared gradient pass),
/// on any backbone.
pub fn score_names<M: AdaptedClassifier>(
    names: &str,
    model: &mut M,
    data: &ScoringData,
    space: &SearchSpace,
    fresh: &FreshAdapters,
    seed: u64,
) -> Result<Vec<Scores>> {
    let proxies: Vec<Box<dyn Proxy>> = names
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(proxy::by_name)
        .collect::<Result<_>>()?;
    if proxies.is_empty() {
        return Err(Error::invalid("proxy", names, "at least one proxy name"));
    }
    let slots = candidate_slots(model, space)?;
    let refs: Vec<&dyn Proxy> = proxies.iter().map(|p| p.as_ref()).collect();
    let mut rng = Rng::derive(seed, "proxy");
    proxy::score_all(&refs, model, &data.batches, &slots, fresh, &mut rng)
}

/// `scores.json` for one proxy, `scores.<proxy>.json` for each of several.
pub fn out_path(out: &Path, proxy: &str, many: bool) -> PathBuf {
    if !many {
        return out.to_path_buf();
    }
    let stem = out.file_stem().and_then(|s| s.to_str()).unwrap_or("scores");
    let ext = out.extension().and_then(|s| s.to_str()).unwrap_or("json");
    out.with_file_name(format!("{stem}.{proxy}.{ext}"))
}

pub fn run(args: ScoreArgs) -> anyhow::Result<()> {
    let space = SearchSpace::parse_kinds(&args.space)?;
    let (task, mut model, sd) = load_for_scoring(&args.scoring, args.seed)?;
    let fresh = FreshAdapters {
        r: args.scoring.fresh_r,
        ..FreshAdapters::default()
    };
    let mut run = if args.no_track {
        None
    } else {
        let tracker = Tracker::open_or_default(args.tracking_uri.as_deref())?;
        let mut r = tracker.start_run(task.name(), &format!("score-{}", args.proxy))?;
        r.log_params(&[
            ("command", "score".to_string()),
            ("task", task.name().to_string()),
            ("proxy", args.proxy.clone()),
            ("space", args.space.clone()),
            ("num_batches", sd.len().to_string()),
            ("batch_size", args.scoring.batch_size.to_string()),
            ("max_len", args.scoring.max_len.to_string()),
            ("fresh_r", fresh.r.to_string()),
            ("seed", args.seed.to_string()),
        ])?;
        Some(r)
    };
    let result = score_names(&args.proxy, &mut model, &sd, &space, &fresh, args.seed);
    let all = match result {
        Ok(s) => s,
        Err(e) => {
            if let Some(r) = run.as_mut() {
                r.end(RunStatus::Failed)?;
            }
            return Err(e.into());
        }
    };
    let many = all.len() > 1;
    let mut report = String::new();
    let mut files = Vec::new();
    for s in &all {
        let path = out_path(&args.out, &s.proxy, many);
        s.save(&path)?;
        report.push_str(&format!(
            "{} on {} batches of {} ({:.2} s)\n{s}\nwrote {}\n\n",
            s.proxy,
            s.num_batches,
            task.name(),
            s.seconds,
            path.display()
        ));
        files.push(path);
        if let Some(r) = run.as_mut() {
            r.log_scores(s)?;
        }
    }
    let run_id = run.as_ref().map(|r| r.run_id().to_string());
    if let Some(mut r) = run {
        report.push_str(&format!("tracked run {}\n", r.run_id()));
        r.end(RunStatus::Finished)?;
    }
    print_scores(args.format, &all, &files, run_id.as_deref(), &report)
}

/// The scores in the chosen format; in JSON and CSV the notes (files written, tracked run) go
/// to stderr so that stdout is one document.
fn print_scores(
    format: OutputFormat,
    all: &[Scores],
    files: &[PathBuf],
    run_id: Option<&str>,
    report: &str,
) -> anyhow::Result<()> {
    use crate::cli::output::{csv_document, csv_float, print_json, print_stdout};
    if format.is_machine() {
        for f in files {
            eprintln!("wrote {}", f.display());
        }
        if let Some(id) = run_id {
            eprintln!("tracked run {id}");
        }
    }
    match format {
        OutputFormat::Table => print_stdout(report),
        OutputFormat::Json => print_json(&serde_json::json!({
            "scores": all.iter().map(serde_json::to_value).collect::<serde_json::Result<Vec<_>>>()?,
            "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "run_id": run_id,
        })),
        OutputFormat::Csv => {
            let rows: Vec<Vec<String>> = all
                .iter()
                .flat_map(|s| {
                    s.values
                        .iter()
                        .map(|(slot, v)| vec![s.proxy.clone(), slot.to_string(), csv_float(*v)])
                })
                .collect();
            print_stdout(&csv_document(&["proxy", "slot", "score"], &rows))
        }
    }
}
