//! `heterolora plot`: charts from files, written as SVG and PNG.
//!
//! ```text
//! heterolora plot allocation allocation.json --out plots/
//! heterolora plot scores scores.json --allocation allocation.json --out plots/
//! heterolora plot budget --experiment mrpc --metric best_dev_accuracy --out plots/
//! heterolora plot curves --experiment mrpc --filter "tags.heterolora.kind = 'train'" --out plots/
//! heterolora plot timeline --run 3f2a --out plots/
//! ```
//!
//! `budget`, `curves` and `timeline` read the run tracker (`--tracking-uri`, default
//! `tracking/mlflow.db` or `$MLFLOW_TRACKING_URI`).

use crate::notebook::charts::{self, BudgetColumns};
use crate::plot::{AllocationHeatmap, Figure, HeatmapColour, ScoreHeatmap};
use crate::proxy::Scores;
use crate::search::Allocation;
use crate::tracking::Tracker;
use crate::{Error, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct PlotArgs {
    #[command(subcommand)]
    pub chart: PlotChart,
}

/// Which files to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Svg,
    Png,
    Both,
}

/// Options every chart takes.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Directory for the output files (created if missing).
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Output file name without extension (default: the input's file stem).
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, value_enum, default_value = "both")]
    pub format: OutputFormat,
    /// Figure width in pixels.
    #[arg(long, default_value_t = 800)]
    pub width: u32,
    /// Figure height in pixels.
    #[arg(long, default_value_t = 500)]
    pub height: u32,
    /// Chart title (default: one that names the method or proxy).
    #[arg(long)]
    pub title: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PlotChart {
    /// Heat map of an allocation (layers by slot kind, coloured by rank) from its JSON file.
    Allocation {
        /// An allocation JSON file as written by `heterolora search`.
        file: PathBuf,
        /// Colour every enabled slot alike instead of by rank.
        #[arg(long)]
        on_off: bool,
        /// The model's config.json (or its folder), so that a decoder's parameters are counted
        /// with its map sizes (grouped-query k/v, Llama's gate); default: BERT-shaped maps.
        #[arg(long)]
        model_config: Option<PathBuf>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Heat map of one proxy's scores from its JSON file.
    Scores {
        /// A scores JSON file as written by `heterolora score`.
        file: PathBuf,
        /// Outline the slots this allocation enables.
        #[arg(long)]
        allocation: Option<PathBuf>,
        /// Colour scale: log10 of the scores (default: automatic).
        #[arg(long)]
        log: Option<bool>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// A dev metric against trainable adapter parameters, one line per method, from the
    /// finished training runs in the tracker.
    Budget {
        #[command(flatten)]
        runs: TrackedRuns,
        /// The metric on the y axis.
        #[arg(long, default_value = "best_dev_accuracy")]
        metric: String,
        /// Run-table column of the line label (default: tags.study.method, tags.sweep.method,
        /// or params.allocation.method with the proxy).
        #[arg(long)]
        method_column: Option<String>,
        /// Run-table column of the parameter count.
        #[arg(long, default_value = "params.allocation.adapter_params")]
        params_column: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Training curves (one panel per metric, one line per run) from the tracker.
    Curves {
        #[command(flatten)]
        runs: TrackedRuns,
        /// Run ids (or unique prefixes) to draw instead of searching the experiment.
        #[arg(long, value_delimiter = ',')]
        run: Vec<String>,
        /// Metrics, comma-separated (default: train_loss, dev_accuracy, dev_f1 where logged).
        #[arg(long, value_delimiter = ',')]
        metrics: Vec<String>,
        /// Exponential-moving-average weight in [0, 1) (0: raw curves).
        #[arg(long, default_value_t = 0.0)]
        smoothing: f64,
        /// Draw at most this many runs (the newest).
        #[arg(long, default_value_t = 8)]
        max_runs: usize,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Which slots were on at each re-allocation of a dynamic run (its reallocations.json).
    Timeline {
        /// Run id or unique prefix.
        #[arg(long)]
        run: String,
        /// Tracker database or sqlite:/// URI (default tracking/mlflow.db or $MLFLOW_TRACKING_URI).
        #[arg(long)]
        tracking_uri: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// Which tracked runs a chart reads.
#[derive(Debug, Args)]
pub struct TrackedRuns {
    /// Experiment name(s), comma-separated (e.g. the task, `mrpc`, or a study's name).
    #[arg(long, value_delimiter = ',', required = true)]
    pub experiment: Vec<String>,
    /// MLflow filter, e.g. "params.allocation.method = 'topk' and metrics.dev_accuracy > 0.7".
    #[arg(long, default_value = "")]
    pub filter: String,
    /// Tracker database or sqlite:/// URI (default tracking/mlflow.db or $MLFLOW_TRACKING_URI).
    #[arg(long)]
    pub tracking_uri: Option<String>,
}

impl TrackedRuns {
    fn open(&self) -> Result<(Tracker, Vec<&str>)> {
        let t = Tracker::open_or_default(self.tracking_uri.as_deref())?;
        Ok((t, self.experiment.iter().map(String::as_str).collect()))
    }
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::parse(path, e.line(), e.to_string()))
}

fn write(fig: &Figure, input: &Path, out: &OutputArgs) -> Result<Vec<PathBuf>> {
    let stem = input
        .file_stem()
        .map_or("plot".to_string(), |s| s.to_string_lossy().into_owned());
    write_named(fig, &stem, out)
}

fn write_named(fig: &Figure, default_stem: &str, out: &OutputArgs) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(&out.out).map_err(|e| Error::io(&out.out, e))?;
    let stem = out.name.clone().unwrap_or_else(|| default_stem.to_string());
    let mut written = Vec::new();
    if matches!(out.format, OutputFormat::Svg | OutputFormat::Both) {
        let p = out.out.join(format!("{stem}.svg"));
        fig.save_svg(&p)?;
        written.push(p);
    }
    if matches!(out.format, OutputFormat::Png | OutputFormat::Both) {
        let p = out.out.join(format!("{stem}.png"));
        fig.save_png(&p)?;
        written.push(p);
    }
    Ok(written)
}

/// Render the chart and write it; returns the files written.
pub fn run(args: PlotArgs) -> Result<Vec<PathBuf>> {
    match args.chart {
        PlotChart::Allocation {
            file,
            on_off,
            model_config,
            output,
        } => {
            let alloc: Allocation = read_json(&file)?;
            let mut chart = AllocationHeatmap::new(&alloc).size(output.width, output.height);
            if let Some(p) = &model_config {
                let cfg = match p.is_dir() {
                    true => p.join("config.json"),
                    false => p.clone(),
                };
                // BERT's maps are sized by the allocation's own dims.
                let t = crate::cli::search::slot_table_from_hf_config(&cfg)?;
                if t.architecture != crate::adapters::Architecture::Bert {
                    alloc.trainable_params_in(&t).map_err(|e| {
                        Error::invalid(
                            "model_config",
                            cfg.display(),
                            format!(
                                "the config of the model {} was made for: {e}",
                                file.display()
                            ),
                        )
                    })?;
                    chart = chart.slot_table(&t);
                }
            }
            if on_off {
                chart = chart.colour(HeatmapColour::OnOff);
            }
            if let Some(t) = &output.title {
                chart = chart.title(t);
            }
            write(&chart.render()?, &file, &output)
        }
        PlotChart::Scores {
            file,
            allocation,
            log,
            output,
        } => {
            let scores: Scores = read_json(&file)?;
            let mut chart = ScoreHeatmap::new(&scores).size(output.width, output.height);
            if let Some(a) = allocation {
                chart = chart.allocation(&read_json::<Allocation>(&a)?);
            }
            if let Some(l) = log {
                chart = chart.log_scale(l);
            }
            if let Some(t) = &output.title {
                chart = chart.title(t);
            }
            write(&chart.render()?, &file, &output)
        }
        PlotChart::Budget {
            runs,
            metric,
            method_column,
            params_column,
            output,
        } => {
            let (tracker, exps) = runs.open()?;
            let mut cols = BudgetColumns::for_metric(&metric);
            cols.method = method_column;
            cols.params = params_column;
            let mut chart = charts::budget(&tracker, &exps, &runs.filter, &cols)?
                .size(output.width, output.height);
            if let Some(t) = &output.title {
                chart = chart.title(t);
            }
            write_named(&chart.render()?, "budget", &output)
        }
        PlotChart::Curves {
            runs,
            run,
            metrics,
            smoothing,
            max_runs,
            output,
        } => {
            let (tracker, exps) = runs.open()?;
            let ids: Vec<String> = if run.is_empty() {
                let filter = if runs.filter.trim().is_empty() {
                    "tags.heterolora.kind = 'train'".to_string()
                } else {
                    runs.filter.clone()
                };
                let mut ids = tracker.search_runs(&exps, &filter, &[])?.run_ids();
                ids.truncate(max_runs.max(1));
                // Oldest first, so colours follow the order the runs were made in.
                ids.reverse();
                ids
            } else {
                run
            };
            if ids.is_empty() {
                return Err(Error::Tracking(format!(
                    "no run of {exps:?} matches `{}`",
                    runs.filter
                )));
            }
            let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let metric_refs: Vec<&str> = metrics.iter().map(String::as_str).collect();
            let mut chart = charts::curves(&tracker, &id_refs, &metric_refs)?
                .smoothing(smoothing)
                .size(output.width, output.height);
            if let Some(t) = &output.title {
                chart = chart.title(t);
            }
            write_named(&chart.render()?, "curves", &output)
        }
        PlotChart::Timeline {
            run,
            tracking_uri,
            output,
        } => {
            let tracker = Tracker::open_or_default(tracking_uri.as_deref())?;
            let mut chart = charts::timeline(&tracker, &run)?.size(output.width, output.height);
            if let Some(t) = &output.title {
                chart = chart.title(t);
            }
            write_named(&chart.render()?, "timeline", &output)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    #[test]
    fn plot_allocation_writes_svg_and_png_and_names_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let alloc = Allocation {
            dims: crate::adapters::ModelDims::MINILM_L6,
            candidates: crate::adapters::SearchSpace::lora_qv().slots(6),
            ranks: [(
                "layer.2.attention.value".parse().unwrap(),
                crate::search::SlotRank {
                    r: 8,
                    lora_alpha: 16.0,
                },
            )]
            .into(),
            method: "topk".into(),
            proxy: None,
            meta: Default::default(),
        };
        let file = dir.path().join("alloc.json");
        std::fs::write(&file, serde_json::to_string_pretty(&alloc).unwrap()).unwrap();
        let out = dir.path().join("out");
        let cli = Cli::try_parse_from([
            "heterolora",
            "plot",
            "allocation",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .unwrap();
        #[allow(irrefutable_let_patterns)]
        let crate::cli::Command::Plot(args) = cli.command
        else {
            panic!("not plot")
        };
        let written = run(args).unwrap();
        assert_eq!(written, [out.join("alloc.svg"), out.join("alloc.png")]);
        assert!(std::fs::read_to_string(&written[0])
            .unwrap()
            .contains("Allocation: topk"));

        // Scores with the allocation outlined, PNG only, under another name.
        let scores = Scores {
            proxy: "snip".into(),
            values: alloc
                .candidates
                .iter()
                .enumerate()
                .map(|(i, s)| (*s, i as f64))
                .collect(),
            rank_gains: None,
            num_batches: 2,
            seconds: 0.5,
        };
        let sfile = dir.path().join("scores.json");
        std::fs::write(&sfile, serde_json::to_string(&scores).unwrap()).unwrap();
        let cli = Cli::try_parse_from([
            "heterolora",
            "plot",
            "scores",
            sfile.to_str().unwrap(),
            "--allocation",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--format",
            "png",
            "--name",
            "s",
        ])
        .unwrap();
        #[allow(irrefutable_let_patterns)]
        let crate::cli::Command::Plot(args) = cli.command
        else {
            panic!("not plot")
        };
        assert_eq!(run(args).unwrap(), [out.join("s.png")]);

        std::fs::write(&file, "{\n  \"dims\": 3\n}").unwrap();
        let cli = Cli::try_parse_from(["heterolora", "plot", "allocation", file.to_str().unwrap()])
            .unwrap();
        #[allow(irrefutable_let_patterns)]
        let crate::cli::Command::Plot(args) = cli.command
        else {
            panic!("not plot")
        };
        let err = run(args).unwrap_err().to_string();
        assert!(err.contains("alloc.json:2:"), "{err}");
    }

    #[test]
    fn plot_budget_and_curves_from_the_tracker() {
        use crate::tracking::{RunStatus, Tracker};
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("mlflow.db");
        let t = Tracker::open_path(&db).unwrap();
        for (name, method, params, acc) in [
            ("u2", "uniform", 18432, 0.70),
            ("k8", "topk", 18432, 0.72),
            ("u4", "uniform", 36864, 0.71),
        ] {
            let mut r = t.start_run("exp", name).unwrap();
            r.set_tag("heterolora.kind", "train").unwrap();
            r.log_params(&[
                ("allocation.method", method.to_string()),
                ("allocation.adapter_params", params.to_string()),
            ])
            .unwrap();
            for s in 1..4 {
                r.log_metric("train_loss", 1.0 / s as f64, s).unwrap();
            }
            r.log_metric("best_dev_accuracy", acc, 3).unwrap();
            r.end(RunStatus::Finished).unwrap();
        }
        let out = dir.path().join("out");
        let parse = |args: &[&str]| {
            let mut v = vec!["heterolora", "plot"];
            v.extend_from_slice(args);
            match Cli::try_parse_from(v).unwrap().command {
                crate::cli::Command::Plot(a) => a,
                _ => panic!("not plot"),
            }
        };
        let (db_s, out_s) = (db.to_str().unwrap(), out.to_str().unwrap());
        let w = run(parse(&[
            "budget",
            "--experiment",
            "exp",
            "--tracking-uri",
            db_s,
            "--out",
            out_s,
        ]))
        .unwrap();
        assert_eq!(w, [out.join("budget.svg"), out.join("budget.png")]);
        let svg = std::fs::read_to_string(&w[0]).unwrap();
        assert!(svg.contains("uniform") && svg.contains("topk"));
        let w = run(parse(&[
            "curves",
            "--experiment",
            "exp",
            "--tracking-uri",
            db_s,
            "--out",
            out_s,
            "--format",
            "svg",
            "--metrics",
            "train_loss",
        ]))
        .unwrap();
        let svg = std::fs::read_to_string(&w[0]).unwrap();
        assert!(svg.contains("u2") && svg.contains("k8") && svg.contains("train loss"));
        // No finished run with the metric: an error naming the column.
        let e = run(parse(&[
            "budget",
            "--experiment",
            "exp",
            "--tracking-uri",
            db_s,
            "--metric",
            "dev_f1",
            "--out",
            out_s,
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("metrics.dev_f1"), "{e}");
        let e = run(parse(&[
            "timeline",
            "--run",
            "abcd",
            "--tracking-uri",
            db_s,
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("abcd"), "{e}");
    }

    #[test]
    fn plot_allocation_counts_a_decoder_with_its_config() {
        use crate::adapters::{SearchSpace, SlotTable};
        let dir = tempfile::tempdir().unwrap();
        let fixtures =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/decoders");
        // The llama fixture: hidden 32, q 32 -> 32, k/v 32 -> 16 (2 key-value heads), MLP 48.
        let t = SlotTable::llama(crate::adapters::Architecture::Llama, 2, 32, 48, 32, 16);
        let space = SearchSpace::parse_kinds("q,v,gate").unwrap();
        let alloc = Allocation::uniform(&space, &t, 2, 16.0).unwrap();
        let file = dir.path().join("alloc.json");
        std::fs::write(&file, serde_json::to_string_pretty(&alloc).unwrap()).unwrap();
        let plot = |extra: &[&str]| -> Result<String> {
            let out = dir.path().join("out");
            let mut a = vec!["heterolora", "plot", "allocation", file.to_str().unwrap()];
            a.extend(["--out", out.to_str().unwrap(), "--format", "svg"]);
            a.extend(extra);
            let crate::cli::Command::Plot(args) = Cli::try_parse_from(a).unwrap().command else {
                panic!("not plot")
            };
            let written = run(args)?;
            Ok(std::fs::read_to_string(&written[0]).unwrap())
        };
        // Per layer: q 2 * 64 + v 2 * 48 + gate 2 * 80 = 384; in all 768 (BERT-shaped: 832).
        let folder = fixtures.join("llama");
        let svg = plot(&["--model-config", folder.to_str().unwrap()]).unwrap();
        // SVG text sits on its own line.
        let shows = |svg: &str, n: &str| svg.contains(&format!("\n{n}\n"));
        assert!(shows(&svg, "768") && shows(&svg, "384"), "{svg}");
        let config = folder.join("config.json");
        assert_eq!(
            plot(&["--model-config", config.to_str().unwrap()]).unwrap(),
            svg
        );
        assert!(shows(&plot(&[]).unwrap(), "832"));
        // A config of a model without the allocation's slots is named.
        let opt = fixtures.join("opt_pre");
        let e = plot(&["--model-config", opt.to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("config.json") && e.contains("layer.0.gate"),
            "{e}"
        );
    }
}
