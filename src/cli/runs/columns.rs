//! The columns of `runs list`: which ones (`--columns`, or a readable default), and their values.
//!
//! A search returns every attribute, param, metric and tag of every run (31 columns on a study's
//! runs): far too many for a terminal. The default view is the run, its state, when and how long,
//! and the few metrics people look at first; `--columns` names more in MLflow's own spelling
//! (`params.r`, `metrics.dev_f1`, `tags.method`, `status`), and `--columns all` asks for all.

use crate::tracking::RunTable;
use anyhow::bail;
use polars::prelude::AnyValue;
use std::collections::BTreeMap;

/// Columns computed here rather than stored: the run's wall time and its experiment's name.
pub const DURATION: &str = "duration";
pub const EXPERIMENT: &str = "experiment";

/// The primary dev metric of each kind of task (accuracy; Matthews correlation for CoLA;
/// Pearson for STS-B): the best epoch's value when runs logged one, else the last.
const PRIMARY_METRICS: &[&[&str]] = &[
    &["best_dev_accuracy", "best_dev_matthews", "best_dev_pearson"],
    &["dev_accuracy", "dev_matthews", "dev_pearson"],
];
/// Shown after the primary metric when some run has them.
const LOSSES: &[&str] = &["dev_loss", "train_loss"];

/// One value of one run.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Float(f64),
    /// Epoch milliseconds (`start_time`, `end_time`).
    Time(i64),
    /// Seconds (the `duration` column).
    Seconds(f64),
}

/// One column of values, one per run, in table order.
#[derive(Debug, Clone, PartialEq)]
pub struct RunColumn {
    /// The column's name as `--columns` spells it (`metrics.dev_loss`, `status`, `duration`).
    pub name: String,
    pub cells: Vec<Cell>,
}

/// The default columns: run, experiment (when the runs span several), name, status, start,
/// duration, then the primary dev metric and the losses that some run has (the table leaves
/// out from the right what does not fit).
pub fn default_columns(table: &RunTable) -> Vec<String> {
    let mut cols = vec!["run_id".to_string()];
    let experiments: std::collections::BTreeSet<_> =
        table.strings("experiment_id").into_iter().collect();
    if experiments.len() > 1 {
        cols.push(EXPERIMENT.into());
    }
    cols.extend(["run_name", "status", "start_time", DURATION].map(String::from));
    let present = |m: &str| {
        table
            .floats(&format!("metrics.{m}"))
            .iter()
            .any(Option::is_some)
    };
    if let Some(primary) = PRIMARY_METRICS
        .iter()
        .map(|group| group.iter().filter(|m| present(m)).collect::<Vec<_>>())
        .find(|found| !found.is_empty())
    {
        cols.extend(primary.iter().map(|m| format!("metrics.{m}")));
    }
    cols.extend(
        LOSSES
            .iter()
            .filter(|m| present(m))
            .map(|m| format!("metrics.{m}")),
    );
    cols
}

/// Every column: the attributes, the computed ones, then metrics, params and tags.
pub fn all_columns(table: &RunTable) -> Vec<String> {
    let mut cols = Vec::new();
    for name in table.df().get_column_names() {
        let name = name.to_string();
        let is_end = name == "end_time";
        if name == "experiment_id" {
            cols.push(name);
            cols.push(EXPERIMENT.into());
            continue;
        }
        cols.push(name);
        if is_end {
            cols.push(DURATION.into());
        }
    }
    cols
}

/// MLflow's prefixes and their aliases (as its filter grammar accepts them), to the column
/// group they name.
fn canonical(spec: &str) -> String {
    for (aliases, group) in [
        (&["metrics.", "metric."][..], "metrics."),
        (
            &["params.", "param.", "parameters.", "parameter."][..],
            "params.",
        ),
        (&["tags.", "tag."][..], "tags."),
        (&["attributes.", "attribute.", "attr.", "run."][..], ""),
    ] {
        for a in aliases {
            if let Some(rest) = spec.strip_prefix(a) {
                return format!("{group}{rest}");
            }
        }
    }
    spec.to_string()
}

/// The columns named by `--columns` (`all`, or names in MLflow's form; a bare key is looked up
/// among metrics, params and tags). An unknown or ambiguous name is an error that lists the
/// columns there are.
pub fn resolve(table: &RunTable, specs: &[String]) -> anyhow::Result<Vec<String>> {
    let all = all_columns(table);
    let mut out = Vec::new();
    for spec in specs.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if spec.eq_ignore_ascii_case("all") {
            out.extend(all.iter().cloned());
            continue;
        }
        let name = canonical(spec);
        if all.contains(&name) {
            out.push(name);
            continue;
        }
        let matches: Vec<&String> = ["metrics.", "params.", "tags."]
            .iter()
            .map(|g| format!("{g}{name}"))
            .filter_map(|n| all.iter().find(|c| **c == n))
            .collect();
        match matches.as_slice() {
            [one] => out.push((*one).clone()),
            [] => bail!(
                "--columns: no column `{spec}` in these runs; choose among: {} (or `all`)",
                all.join(", ")
            ),
            several => bail!(
                "--columns: `{spec}` is ambiguous: say which of {}",
                several
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
    if out.is_empty() {
        bail!("--columns is empty: name columns, e.g. --columns run_name,metrics.dev_accuracy, or --columns all");
    }
    out.dedup();
    Ok(out)
}

fn cell(v: AnyValue) -> Cell {
    match v {
        AnyValue::Null => Cell::Null,
        AnyValue::Float64(f) => Cell::Float(f),
        AnyValue::Float32(f) => Cell::Float(f as f64),
        AnyValue::String(s) => Cell::Text(s.to_string()),
        AnyValue::StringOwned(s) => Cell::Text(s.to_string()),
        other => Cell::Text(other.to_string()),
    }
}

/// The values of the columns `names` (as [`resolve`] or [`default_columns`] give them);
/// `experiments` maps experiment ids to names.
pub fn values(
    table: &RunTable,
    names: &[String],
    experiments: &BTreeMap<String, String>,
) -> anyhow::Result<Vec<RunColumn>> {
    let df = table.df();
    let times = |name: &str| -> Vec<Option<i64>> {
        match df.column(name).and_then(|c| c.i64().cloned()) {
            Ok(ca) => ca.iter().collect(),
            Err(_) => vec![None; table.len()],
        }
    };
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let cells = match name.as_str() {
            "start_time" | "end_time" => times(name)
                .into_iter()
                .map(|t| t.map_or(Cell::Null, Cell::Time))
                .collect(),
            DURATION => times("start_time")
                .into_iter()
                .zip(times("end_time"))
                .map(|(s, e)| match (s, e) {
                    (Some(s), Some(e)) => Cell::Seconds((e - s) as f64 / 1000.0),
                    _ => Cell::Null,
                })
                .collect(),
            EXPERIMENT => table
                .strings("experiment_id")
                .into_iter()
                .map(|id| match id {
                    Some(id) => Cell::Text(experiments.get(&id).cloned().unwrap_or(id)),
                    None => Cell::Null,
                })
                .collect(),
            _ => {
                let col = df.column(name)?;
                (0..table.len())
                    .map(|i| col.get(i).map(cell).unwrap_or(Cell::Null))
                    .collect()
            }
        };
        out.push(RunColumn {
            name: name.clone(),
            cells,
        });
    }
    Ok(out)
}
