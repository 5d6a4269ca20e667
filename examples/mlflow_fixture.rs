//! Writes a tracker store for the MLflow compatibility check, and re-checks it after MLflow has
//! opened (and upgraded) it.
//!
//! ```text
//! cargo run --example mlflow_fixture -- write   target/mlflow-check/mlflow.db   # + expected.json beside it
//! python tests/mlflow_check.py                  target/mlflow-check/mlflow.db   # MLflow reads (and upgrades) it
//! cargo run --example mlflow_fixture -- recheck target/mlflow-check/mlflow.db   # we still read and write it
//! python tests/mlflow_check.py --after-recheck  target/mlflow-check/mlflow.db   # MLflow sees what we wrote
//! ```

use heterolora::tracking::{RunStatus, Tracker};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [mode, db] if mode == "write" => write(Path::new(db)),
        [mode, db] if mode == "recheck" => recheck(Path::new(db)),
        _ => Err("usage: mlflow_fixture write|recheck <db path>".into()),
    }
}

fn expected_path(db: &Path) -> PathBuf {
    db.with_file_name("expected.json")
}

pub fn write(db: &Path) -> Res<()> {
    if db.exists() {
        std::fs::remove_file(db)?;
    }
    for ext in ["-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{ext}", db.display()));
        if p.exists() {
            std::fs::remove_file(p)?;
        }
    }
    let artifacts = db.with_file_name("artifacts");
    if artifacts.exists() {
        std::fs::remove_dir_all(&artifacts)?;
    }
    let tracker = Tracker::open_path(db)?;
    let exp = tracker.experiment("mlflow-check")?;
    let mut sweep = exp.start_run("budget-sweep")?;
    sweep.log_param("budget", 50_000)?;
    sweep.set_note("A sweep over LoRA ranks, written by `mlflow_fixture`.")?;
    let mut runs = Vec::new();
    for (i, r) in [4, 8, 16].into_iter().enumerate() {
        let mut trial = sweep.start_child(&format!("r{r}"))?;
        trial.log_params(&[("r", r.to_string()), ("lora_alpha", (2 * r).to_string())])?;
        trial.set_tag("allocator", "greedy")?;
        let mut acc = Vec::new();
        for step in 0..5 {
            let v = 0.6 + 0.05 * step as f64 + 0.01 * i as f64;
            trial.log_metric_at("acc", v, step, 1_700_000_000_000 + step * 1000)?;
            acc.push(
                json!({"step": step, "value": v, "timestamp": 1_700_000_000_000i64 + step * 1000}),
            );
        }
        trial.log_metric("loss", 0.5 / (i as f64 + 1.0), 4)?;
        trial.log_json(
            &json!({"r": r, "slots": ["layer.0.attention.value"]}),
            "allocation.json",
        )?;
        trial.log_text("hello from heterolora\n", "notes/readme.txt")?;
        let id = trial.run_id().to_string();
        trial.end(RunStatus::Finished)?;
        runs.push(json!({
            "run_id": id, "run_name": format!("r{r}"), "r": r.to_string(), "lora_alpha": (2 * r).to_string(),
            "acc_history": acc, "acc_latest": acc.last().unwrap()["value"].clone(),
            "loss": 0.5 / (i as f64 + 1.0), "status": "FINISHED",
            "artifacts": ["allocation.json", "notes/readme.txt"],
        }));
    }
    // Non-finite values: NaN and +inf as MLflow stores them.
    let mut odd = exp.start_run("non-finite")?;
    odd.log_metric("nan_metric", f64::NAN, 0)?;
    odd.log_metric("inf_metric", f64::INFINITY, 0)?;
    odd.log_metric("neg_inf_metric", f64::NEG_INFINITY, 0)?;
    let odd_id = odd.run_id().to_string();
    odd.end(RunStatus::Failed)?;
    let sweep_id = sweep.run_id().to_string();
    sweep.end(RunStatus::Finished)?;
    let expected = json!({
        "experiment": "mlflow-check",
        "experiment_id": exp.experiment_id().to_string(),
        "sweep_run_id": sweep_id,
        "trials": runs,
        "non_finite_run_id": odd_id,
        "filter": "metrics.acc > 0.8 and params.r = '16'",
        "filter_matches": [runs[2]["run_id"].clone()],
    });
    std::fs::write(expected_path(db), serde_json::to_string_pretty(&expected)?)?;
    println!(
        "wrote {} ({} runs) and {}",
        db.display(),
        5,
        expected_path(db).display()
    );
    Ok(())
}

pub fn recheck(db: &Path) -> Res<()> {
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(expected_path(db))?)?;
    let tracker = Tracker::open_path(db)?;
    let schema = tracker.schema().clone();
    if !schema.upgraded() {
        return Err(format!(
            "{} is still at our revision {}: run the MLflow check first",
            db.display(),
            schema.revision
        )
        .into());
    }
    println!(
        "opened MLflow-upgraded store at revision {} (KILLED allowed: {})",
        schema.revision, schema.status_killed
    );
    // Reads: same runs, params, latest metrics, histories, artifacts.
    let table =
        tracker.search_runs(&["mlflow-check"], expected["filter"].as_str().unwrap(), &[])?;
    let want: Vec<String> = expected["filter_matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    check(
        table.run_ids() == want,
        format!("filter matched {:?}, expected {want:?}", table.run_ids()),
    )?;
    for t in expected["trials"].as_array().unwrap() {
        let id = t["run_id"].as_str().unwrap();
        let run = tracker.get_run(id)?;
        check(
            run.params["r"] == t["r"].as_str().unwrap(),
            format!("param r of {id}"),
        )?;
        check(
            run.info.status == "FINISHED",
            format!("status of {id}: {}", run.info.status),
        )?;
        check(
            (run.metrics["acc"].value - t["acc_latest"].as_f64().unwrap()).abs() < 1e-12,
            format!("latest acc of {id}"),
        )?;
        let h = tracker.metric_history(id, "acc")?;
        check(
            h.len() == t["acc_history"].as_array().unwrap().len(),
            format!("acc history of {id}"),
        )?;
        let arts = tracker.list_artifacts(id)?;
        check(
            arts == ["allocation.json", "notes/readme.txt"],
            format!("artifacts of {id}: {arts:?}"),
        )?;
    }
    let odd = tracker.get_run(expected["non_finite_run_id"].as_str().unwrap())?;
    check(
        odd.metrics["nan_metric"].value.is_nan(),
        "NaN after upgrade".into(),
    )?;
    check(
        odd.metrics["inf_metric"].value == f64::INFINITY,
        "inf after upgrade".into(),
    )?;
    // Writes on the upgraded file: a new experiment (workspace column), a run, KILLED status.
    let mut run = tracker.start_run("after-upgrade", "written-after-upgrade")?;
    run.log_param("phase", "recheck")?;
    for step in 0..10 {
        run.log_metric("acc", 0.9 + 0.001 * step as f64, step)?;
    }
    run.log_text("written after MLflow upgraded the file\n", "after.txt")?;
    let id = run.run_id().to_string();
    run.end(RunStatus::Killed)?;
    let back = tracker.get_run(&id)?;
    let want_status = if schema.status_killed {
        "KILLED"
    } else {
        "FAILED"
    };
    check(
        back.info.status == want_status,
        format!("status {} != {want_status}", back.info.status),
    )?;
    check(
        tracker.metric_history(&id, "acc")?.len() == 10,
        "history after upgrade".into(),
    )?;
    let found = tracker.search_runs(
        &["after-upgrade"],
        "params.phase = 'recheck' and metrics.acc >= 0.909",
        &[],
    )?;
    check(
        found.run_ids() == [id.clone()],
        format!("search after upgrade: {:?}", found.run_ids()),
    )?;
    let mut exp = expected.clone();
    exp["after_upgrade_run_id"] = json!(id);
    exp["after_upgrade_status"] = json!(want_status);
    std::fs::write(expected_path(db), serde_json::to_string_pretty(&exp)?)?;
    println!("recheck ok: read every expected run and wrote run {id} into the upgraded store");
    Ok(())
}

fn check(ok: bool, what: String) -> Res<()> {
    if ok {
        Ok(())
    } else {
        Err(format!("recheck failed: {what}").into())
    }
}
