//! `heterolora runs history` and `runs experiments`: one metric's points, the experiments.

use super::{ExperimentsArgs, HistoryArgs};
use crate::cli::output::{
    csv_document, csv_float, json_number, print_json, print_stdout, OutputFormat,
};
use crate::tracking::Tracker;
use serde_json::json;

pub fn history(t: &Tracker, a: &HistoryArgs) -> anyhow::Result<()> {
    let h = t.metric_history(&a.run_id, &a.key)?;
    match a.format {
        OutputFormat::Table => print_stdout(&h.to_string()),
        OutputFormat::Json => print_json(&json!({
            "run_id": h.run_id,
            "key": h.key,
            "points": h.points.iter().map(|p| json!({
                "step": p.step, "value": json_number(p.value), "timestamp": p.timestamp
            })).collect::<Vec<_>>(),
        })),
        OutputFormat::Csv => {
            let rows: Vec<Vec<String>> = h
                .points
                .iter()
                .map(|p| {
                    vec![
                        p.step.to_string(),
                        csv_float(p.value),
                        p.timestamp.to_string(),
                    ]
                })
                .collect();
            print_stdout(&csv_document(&["step", "value", "timestamp"], &rows))
        }
    }
}

pub fn experiments(t: &Tracker, a: &ExperimentsArgs) -> anyhow::Result<()> {
    let exps = t.list_experiments()?;
    match a.format {
        OutputFormat::Table => {
            let mut o = String::new();
            for e in &exps {
                o.push_str(&format!(
                    "{:>4}  {:<30}  {}\n",
                    e.experiment_id, e.name, e.artifact_location
                ));
            }
            print_stdout(&o)
        }
        OutputFormat::Json => print_json(&serde_json::to_value(&exps)?),
        OutputFormat::Csv => {
            let rows: Vec<Vec<String>> = exps
                .iter()
                .map(|e| {
                    vec![
                        e.experiment_id.to_string(),
                        e.name.clone(),
                        e.artifact_location.clone(),
                        e.lifecycle_stage.clone(),
                    ]
                })
                .collect();
            let header = [
                "experiment_id",
                "name",
                "artifact_location",
                "lifecycle_stage",
            ];
            print_stdout(&csv_document(&header, &rows))
        }
    }
}
