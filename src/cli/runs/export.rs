//! `heterolora runs export`: the runs matching a search, with all of MLflow's columns, to a CSV
//! or Parquet file (or CSV on stdout).

use super::{ExportArgs, ExportFormat};
use crate::tracking::Tracker;
use anyhow::{bail, Context};
use polars::prelude::*;

pub fn export(t: &Tracker, a: &ExportArgs) -> anyhow::Result<()> {
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
