//! `heterolora predict` (alias `eval`): score a GLUE-format TSV with saved adapters. With gold
//! labels it prints (and tracks) the task's GLUE metrics; without (GLUE test files) it writes
//! the submission file the GLUE server takes.

use crate::cli::output::{json_number, print_json, print_stdout, OutputFormat};
use crate::data::{Split, Task};
use crate::device::parse_device;
use crate::predict::{self, Which, EVAL_BATCH_SIZE};
use crate::tracking::{RunStatus, Tracker};
use crate::train::job::DEFAULT_MODEL;
use clap::Args;
use std::path::PathBuf;

/// Score a GLUE-format TSV with saved adapters: metrics when it has labels, a GLUE submission
/// file when it has none.
///
/// ADAPTER is a folder with adapter files (ours, or PEFT's adapter_config.json +
/// adapter_model.safetensors with the classifier head), or a `heterolora train` output folder
/// (its final/ adapters, or best/ with --adapters best).
///
/// The base model: --model when given, else the folder the adapters' adapter_config.json names
/// (base_model_name_or_path, as a decoder's adapters record it) when it exists here, else the
/// default model (BERT's adapters name its hub id).
///
/// Examples:
///   heterolora predict runs/mrpc-lora --task mrpc                 # dev metrics
///   heterolora predict runs/mrpc-lora --task mrpc --file datasets/glue/MRPC/test.tsv
///   heterolora eval peft-out/ --task rte --file my-rte.tsv --format json
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Adapter folder, or a training run's output folder.
    pub adapter: PathBuf,
    /// GLUE task (mrpc, rte, sst2, cola, stsb, qnli, wnli).
    #[arg(long)]
    pub task: String,
    /// The TSV to score: the columns of the task's dev.tsv (labels: metrics) or test.tsv (no
    /// labels: a submission file) [default: the task's dev.tsv in the GLUE folder].
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// In a training run's folder: `final` (end of training) or `best` (best dev epoch).
    #[arg(long, default_value = "final")]
    pub adapters: String,
    #[command(flatten)]
    pub assets: crate::cli::assets::AssetArgs,
    /// Where the predictions go (`index<TAB>prediction`) [default for a file without labels:
    /// <TASK>.tsv, e.g. MRPC.tsv, the name the GLUE server expects; none with labels].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value_t = 128)]
    pub max_len: usize,
    #[arg(long, default_value_t = EVAL_BATCH_SIZE)]
    pub batch_size: usize,
    /// auto (the GPU when the build has CUDA and one is visible, else the CPU), cpu, cuda or
    /// cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Tracker store (path or sqlite:/// URI); default $MLFLOW_TRACKING_URI, else
    /// tracking/mlflow.db.
    #[arg(long)]
    pub tracking_uri: Option<String>,
    /// Tracker experiment (default: predict-<task>).
    #[arg(long)]
    pub experiment: Option<String>,
    /// Do not log a tracker run.
    #[arg(long)]
    pub no_track: bool,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

/// Run `heterolora predict`.
pub fn run(args: PredictArgs) -> anyhow::Result<()> {
    let task: Task = args.task.parse()?;
    let which: Which = args.adapters.parse()?;
    let adapter_dir = predict::resolve_adapter_dir(&args.adapter, which)?;
    // --model, else the base folder the adapters name (a decoder's), else the default model.
    let model_dir =
        predict::resolve_base_model(args.assets.model.as_deref(), &adapter_dir, || {
            crate::assets::resolve_model_dir(None, DEFAULT_MODEL)
        })?;
    let file = match &args.file {
        Some(f) => f.clone(),
        None => crate::assets::resolve_glue_dir(args.assets.glue.as_deref())
            .join(task.dir_name())
            .join(Split::Dev.file_name()),
    };
    let input = predict::read_tsv(task, &file)?;
    let labelled = input.is_labelled();
    let device = parse_device(&args.device)?;
    let model = predict::load_model(&model_dir, &adapter_dir, task, &device)?;
    let data = predict::encode(&model_dir, &input, args.max_len)?;
    let preds = predict::predict(&model, &data, args.batch_size)?;
    let metrics = match data.labels_f32() {
        Some(labels) if labelled => Some(preds.metrics(&labels)?),
        _ => None,
    };
    let out = args
        .out
        .clone()
        .or_else(|| (!labelled).then(|| PathBuf::from(format!("{}.tsv", task.dir_name()))));
    let submission = preds.submission_tsv(&input.ids);
    if let Some(p) = &out {
        if let Some(d) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d).map_err(|e| crate::Error::io(d, e))?;
        }
        std::fs::write(p, &submission).map_err(|e| crate::Error::io(p, e))?;
        eprintln!("wrote {} ({} predictions)", p.display(), preds.len());
    }

    let mut run_id = None;
    if !args.no_track {
        let tracker = Tracker::open_or_default(args.tracking_uri.as_deref())?;
        let exp = args
            .experiment
            .clone()
            .unwrap_or_else(|| format!("predict-{}", task.name()));
        let mut run = tracker.start_run(&exp, &format!("predict-{}", task.name()))?;
        run.set_tags(&[("heterolora.kind", "predict")])?;
        run.log_params(&[
            ("adapter", adapter_dir.display().to_string()),
            ("file", file.display().to_string()),
            ("task", task.name().to_string()),
            ("model", model_dir.display().to_string()),
            ("examples", preds.len().to_string()),
            ("labelled", labelled.to_string()),
            ("max_len", args.max_len.to_string()),
        ])?;
        if let Some(m) = &metrics {
            let logged: Vec<(String, f64)> = m.iter().map(|(k, v)| (k.clone(), *v)).collect();
            run.log_metrics(&logged, 0)?;
        }
        run.log_text(&submission, "predictions.tsv")?;
        run.end(RunStatus::Finished)?;
        eprintln!(
            "tracked run {} in {}",
            run.run_id(),
            tracker.path().display()
        );
        run_id = Some(run.run_id().to_string());
    }

    match args.format {
        OutputFormat::Json => print_json(&serde_json::json!({
            "task": task.name(),
            "adapter": adapter_dir.display().to_string(),
            "file": file.display().to_string(),
            "examples": preds.len(),
            "labelled": labelled,
            "metrics": metrics.as_ref().map(|m| m
                .iter()
                .map(|(k, v)| (k.clone(), json_number(*v)))
                .collect::<serde_json::Map<_, _>>()),
            "predictions": out.as_ref().map(|p| p.display().to_string()),
            "run_id": run_id,
        })),
        OutputFormat::Csv => {
            let rows: Vec<Vec<String>> = metrics
                .iter()
                .flatten()
                .map(|(k, v)| vec![k.clone(), crate::cli::output::csv_float(*v)])
                .collect();
            print_stdout(&crate::cli::output::csv_document(
                &["metric", "value"],
                &rows,
            ))
        }
        OutputFormat::Table => {
            let mut s = format!(
                "{} on {} ({} examples, adapters {})\n",
                task.name(),
                file.display(),
                preds.len(),
                adapter_dir.display()
            );
            match &metrics {
                Some(m) => {
                    for (k, v) in m {
                        s += &format!("  {k:<12} {v:.4}\n");
                    }
                }
                None => s += "  no labels in the file: predictions written for submission\n",
            }
            print_stdout(&s)
        }
    }
}
