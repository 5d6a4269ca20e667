//! `heterolora runs compare`: params and latest metrics of several runs side by side, the keys
//! whose values differ marked, as a table, JSON or CSV.

use super::CompareArgs;
use crate::cli::output::{
    csv_document, csv_float, json_number, print_json, print_stdout, OutputFormat,
};
use crate::display::{TextColumn, TextTable};
use crate::tracking::display::fmt_float;
use crate::tracking::{RunData, Tracker};
use anyhow::bail;
use serde_json::{json, Value};

/// The keys compared: `params.<k>` then `metrics.<k>`, each sorted.
fn keys(runs: &[RunData]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for r in runs {
        keys.extend(r.params.keys().map(|k| format!("params.{k}")));
        keys.extend(r.metrics.keys().map(|k| format!("metrics.{k}")));
    }
    keys.sort();
    keys.dedup();
    keys.sort_by_key(|k| !k.starts_with("params."));
    keys
}

/// A run's value of `key` as text (metrics to 4 significant digits when `short`).
fn cell(r: &RunData, key: &str, short: bool) -> Option<String> {
    if let Some(k) = key.strip_prefix("params.") {
        return r.params.get(k).cloned();
    }
    let k = key.strip_prefix("metrics.").unwrap_or(key);
    r.metrics.get(k).map(|p| {
        if short {
            fmt_float(p.value)
        } else {
            csv_float(p.value)
        }
    })
}

fn differs(runs: &[RunData], key: &str) -> bool {
    let vals: Vec<Option<String>> = runs.iter().map(|r| cell(r, key, false)).collect();
    vals.windows(2).any(|w| w[0] != w[1])
}

/// Column titles: run name and short id, made unique.
fn run_titles(runs: &[RunData]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    runs.iter()
        .map(|r| {
            let mut name = format!(
                "{} ({})",
                r.info.run_name,
                &r.info.run_id[..8.min(r.info.run_id.len())]
            );
            while !seen.insert(name.clone()) {
                name.push('\'');
            }
            name
        })
        .collect()
}

pub fn compare(t: &Tracker, a: &CompareArgs) -> anyhow::Result<()> {
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
    let keys: Vec<String> = keys(&runs)
        .into_iter()
        .filter(|k| !a.diff || differs(&runs, k))
        .collect();
    match a.format {
        OutputFormat::Table => {
            let mut cols = vec![
                TextColumn::new("key", keys.clone()),
                TextColumn::new(
                    "differs",
                    keys.iter()
                        .map(|k| if differs(&runs, k) { "*" } else { "" }.to_string())
                        .collect(),
                ),
            ];
            for (r, title) in runs.iter().zip(run_titles(&runs)) {
                let vals = keys
                    .iter()
                    .map(|k| cell(r, k, true).unwrap_or_default())
                    .collect();
                cols.push(TextColumn::new(title, vals).max_width(32));
            }
            print_stdout(&TextTable::new(cols).render(None).text)
        }
        OutputFormat::Json => print_json(&to_json(&runs, &keys)),
        OutputFormat::Csv => {
            let mut header = vec!["key".to_string(), "differs".to_string()];
            header.extend(runs.iter().map(|r| r.info.run_id.clone()));
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    let mut row = vec![k.clone(), differs(&runs, k).to_string()];
                    row.extend(runs.iter().map(|r| cell(r, k, false).unwrap_or_default()));
                    row
                })
                .collect();
            print_stdout(&csv_document(&header, &rows))
        }
    }
}

/// `{"runs": [{run_id, run_name}], "rows": [{key, differs, values: [one per run]}]}`; metric
/// values are numbers, params strings, absent values null.
fn to_json(runs: &[RunData], keys: &[String]) -> Value {
    let rows: Vec<Value> = keys
        .iter()
        .map(|k| {
            let values: Vec<Value> = runs
                .iter()
                .map(|r| match k.strip_prefix("metrics.") {
                    Some(m) => r
                        .metrics
                        .get(m)
                        .map_or(Value::Null, |p| json_number(p.value)),
                    None => cell(r, k, false).map_or(Value::Null, Value::String),
                })
                .collect();
            json!({"key": k, "differs": differs(runs, k), "values": values})
        })
        .collect();
    json!({
        "runs": runs.iter().map(|r| json!({"run_id": r.info.run_id, "run_name": r.info.run_name})).collect::<Vec<_>>(),
        "rows": rows,
    })
}
