//! `heterolora plot`: charts from files, written as SVG and PNG.
//!
//! ```text
//! heterolora plot allocation allocation.json --out plots/
//! heterolora plot scores scores.json --allocation allocation.json --out plots/
//! ```

use crate::plot::{AllocationHeatmap, Figure, HeatmapColour, ScoreHeatmap};
use crate::proxy::Scores;
use crate::search::Allocation;
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
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::parse(path, e.line(), e.to_string()))
}

fn write(fig: &Figure, input: &Path, out: &OutputArgs) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(&out.out).map_err(|e| Error::io(&out.out, e))?;
    let stem = out.name.clone().unwrap_or_else(|| {
        input
            .file_stem()
            .map_or("plot".to_string(), |s| s.to_string_lossy().into_owned())
    });
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
            output,
        } => {
            let alloc: Allocation = read_json(&file)?;
            let mut chart = AllocationHeatmap::new(&alloc).size(output.width, output.height);
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
}
