//! `heterolora runs show`: everything about one run (attributes, params, latest metrics, tags,
//! artifact files, child runs) as text, JSON or CSV.

use super::ShowArgs;
use crate::cli::output::{
    csv_document, csv_float, json_number, print_json, print_stdout, OutputFormat,
};
use crate::tracking::display::{fmt_float, fmt_time_ms};
use crate::tracking::{RunData, RunInfo, Tracker};
use serde_json::{json, Map, Value};

/// What `show` gathers about a run: the run, its artifact files and its children.
struct Shown {
    run: RunData,
    artifacts: Vec<String>,
    children: Vec<RunInfo>,
}

pub fn show(t: &Tracker, a: &ShowArgs) -> anyhow::Result<()> {
    let run = t.get_run(&a.run_id)?;
    let artifacts = t.list_artifacts(&run.info.run_id)?;
    let children = t
        .child_runs(&run.info.run_id)?
        .iter()
        .map(|k| t.run_info(k))
        .collect::<crate::Result<Vec<_>>>()?;
    let mut s = Shown {
        run,
        artifacts,
        children,
    };
    if !a.all_tags {
        s.run.tags.retain(|k, _| !k.starts_with("mlflow."));
    }
    match a.format {
        OutputFormat::Table => print_stdout(&text(&s)),
        OutputFormat::Json => print_json(&to_json(&s)),
        OutputFormat::Csv => print_stdout(&to_csv(&s)),
    }
}

fn text(s: &Shown) -> String {
    let (run, i) = (&s.run, &s.run.info);
    let mut o = String::new();
    let mut line = |l: String| {
        o.push_str(&l);
        o.push('\n');
    };
    line(format!("run        {}  ({})", i.run_id, i.run_name));
    line(format!("experiment {}", i.experiment_id));
    line(format!("status     {}", i.status));
    line(format!("user       {}", i.user_id));
    line(format!("start      {} UTC", fmt_time_ms(i.start_time)));
    if let Some(e) = i.end_time {
        line(format!(
            "end        {} UTC ({:.1} s)",
            fmt_time_ms(e),
            (e - i.start_time) as f64 / 1000.0
        ));
    }
    if let Some(p) = run.parent_run_id() {
        line(format!("parent     {p}"));
    }
    line(format!("artifacts  {}", i.artifact_uri));
    line(format!("\nparams ({})", run.params.len()));
    for (k, v) in &run.params {
        line(format!("  {k:<32} {v}"));
    }
    line(format!("\nmetrics ({}; latest value)", run.metrics.len()));
    for (k, p) in &run.metrics {
        line(format!(
            "  {k:<32} {:<12} step {}",
            fmt_float(p.value),
            p.step
        ));
    }
    line(format!("\ntags ({})", run.tags.len()));
    for (k, v) in &run.tags {
        line(format!("  {k:<32} {v}"));
    }
    line(format!("\nartifact files ({})", s.artifacts.len()));
    for f in &s.artifacts {
        line(format!("  {f}"));
    }
    if !s.children.is_empty() {
        line(format!("\nchild runs ({})", s.children.len()));
        for c in &s.children {
            line(format!("  {}  {:<24} {}", c.run_id, c.run_name, c.status));
        }
    }
    o
}

/// `{"info": .., "params": {..}, "metrics": {key: {value, step, timestamp}}, "tags": {..},
/// "artifacts": [..], "children": [{run_id, run_name, status}]}`.
fn to_json(s: &Shown) -> Value {
    let metrics: Map<String, Value> = s
        .run
        .metrics
        .iter()
        .map(|(k, p)| {
            (
                k.clone(),
                json!({"value": json_number(p.value), "step": p.step, "timestamp": p.timestamp}),
            )
        })
        .collect();
    let mut info = serde_json::to_value(&s.run.info).unwrap_or(Value::Null);
    if let Some(obj) = info.as_object_mut() {
        obj.insert("parent_run_id".into(), json!(s.run.parent_run_id()));
    }
    json!({
        "info": info,
        "params": s.run.params,
        "metrics": metrics,
        "tags": s.run.tags,
        "artifacts": s.artifacts,
        "children": s.children.iter().map(|c| json!({
            "run_id": c.run_id, "run_name": c.run_name, "status": c.status
        })).collect::<Vec<_>>(),
    })
}

/// One row per fact: `section,key,value,step` (step only for metrics).
fn to_csv(s: &Shown) -> String {
    let i = &s.run.info;
    let row = |sec: &str, k: &str, v: String, step: String| vec![sec.into(), k.into(), v, step];
    let mut rows = vec![
        row("info", "run_id", i.run_id.clone(), String::new()),
        row("info", "run_name", i.run_name.clone(), String::new()),
        row(
            "info",
            "experiment_id",
            i.experiment_id.to_string(),
            String::new(),
        ),
        row("info", "status", i.status.clone(), String::new()),
        row("info", "user_id", i.user_id.clone(), String::new()),
        row(
            "info",
            "start_time",
            i.start_time.to_string(),
            String::new(),
        ),
        row(
            "info",
            "end_time",
            i.end_time.map(|e| e.to_string()).unwrap_or_default(),
            String::new(),
        ),
        row(
            "info",
            "artifact_uri",
            i.artifact_uri.clone(),
            String::new(),
        ),
    ];
    if let Some(p) = s.run.parent_run_id() {
        rows.push(row("info", "parent_run_id", p.to_string(), String::new()));
    }
    for (k, v) in &s.run.params {
        rows.push(row("param", k, v.clone(), String::new()));
    }
    for (k, p) in &s.run.metrics {
        rows.push(row("metric", k, csv_float(p.value), p.step.to_string()));
    }
    for (k, v) in &s.run.tags {
        rows.push(row("tag", k, v.clone(), String::new()));
    }
    for f in &s.artifacts {
        rows.push(row("artifact", f, String::new(), String::new()));
    }
    for c in &s.children {
        rows.push(row("child", &c.run_id, c.run_name.clone(), String::new()));
    }
    csv_document(&["section", "key", "value", "step"], &rows)
}
