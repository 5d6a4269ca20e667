//! `heterolora runs ...` against a store written through the API.

use heterolora::tracking::{RunStatus, Tracker};
use std::process::Command;

fn heterolora(db: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_heterolora"))
        .arg("runs")
        .arg("--tracking-uri")
        .arg(format!("sqlite:///{}", db.display()))
        .args(args)
        .env_remove("MLFLOW_TRACKING_URI")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn list_show_compare_export_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mlflow.db");
    let t = Tracker::open_path(&db).unwrap();
    let mut ids = Vec::new();
    for (r, acc) in [(4, 0.7), (8, 0.9)] {
        let mut run = t.start_run("cli", &format!("rank-{r}")).unwrap();
        run.log_param("r", r).unwrap();
        run.log_metric("acc", acc, 3).unwrap();
        run.log_text("x", "notes.txt").unwrap();
        ids.push(run.run_id().to_string());
        run.end(RunStatus::Finished).unwrap();
    }

    let (ok, out, err) = heterolora(
        &db,
        &[
            "list",
            "-e",
            "cli",
            "-f",
            "metrics.acc > 0.8",
            "-o",
            "metrics.acc DESC",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("rank-8") && !out.contains("rank-4"), "{out}");

    let (ok, out, err) = heterolora(&db, &["show", &ids[0][..8]]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&ids[0])
            && out.contains("rank-4")
            && out.contains("notes.txt")
            && out.contains("0.7"),
        "{out}"
    );

    let (ok, out, err) = heterolora(&db, &["compare", &ids[0], &ids[1], "--diff"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("params.r") && out.contains("metrics.acc") && out.contains('*'),
        "{out}"
    );

    let csv = dir.path().join("out/runs.csv");
    let (ok, _, err) = heterolora(
        &db,
        &["export", "-e", "cli", "--output", csv.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(
        text.starts_with("run_id,run_name,experiment_id,status"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 3);
    let pq = dir.path().join("runs.parquet");
    let (ok, _, err) = heterolora(
        &db,
        &[
            "export",
            "-f",
            "params.r = '8'",
            "--output",
            pq.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let df = polars::prelude::ParquetReader::new(std::fs::File::open(&pq).unwrap());
    use polars::prelude::SerReader;
    let df = df.finish().unwrap();
    assert_eq!(df.height(), 1);
    assert!(df.column("metrics.acc").is_ok());

    let (ok, _, err) = heterolora(&db, &["list", "-f", "accuracy > 0.5"]);
    assert!(
        !ok && err.contains("unknown filter field `accuracy`"),
        "{err}"
    );
    let xlsx = db.with_file_name("runs.xlsx");
    let (ok, _, err) = heterolora(&db, &["export", "--output", &xlsx.to_string_lossy()]);
    assert!(!ok && err.contains(".csv or .parquet"), "{err}");
}

/// Like [`heterolora`], with the environment of a script: no `COLUMNS`, stdout not a terminal.
fn runs_cmd(db: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_heterolora"))
        .arg("runs")
        .arg("--tracking-uri")
        .arg(format!("sqlite:///{}", db.display()))
        .args(args)
        .env_remove("MLFLOW_TRACKING_URI")
        .env_remove("COLUMNS")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Six finished runs in two experiments, each with 14 params, 10 metrics and a long name, as a
/// study leaves them. Returns the run ids.
fn study_like_store(db: &std::path::Path) -> Vec<String> {
    let t = Tracker::open_path(db).unwrap();
    let mut ids = Vec::new();
    for i in 0..6 {
        let exp = if i < 4 { "mrpc" } else { "rte" };
        let name = format!("study-mrpc-static-grad-norm-top25-r8-seed{i}-with-a-long-suffix");
        let mut run = t.start_run(exp, &name).unwrap();
        let params: Vec<(String, String)> = (0..14)
            .map(|p| (format!("hyper_parameter_{p:02}"), format!("value-{i}-{p}")))
            .collect();
        run.log_params(&params).unwrap();
        for (k, v) in [
            ("best_dev_accuracy", 0.7 + i as f64 / 100.0),
            ("dev_accuracy", 0.69 + i as f64 / 100.0),
            ("dev_f1", 0.8),
            ("dev_loss", 0.51234567),
            ("train_loss", 0.4321),
            ("lr", 2e-3),
            ("grad_norm", 1.5),
            ("examples_per_sec", 17.25),
            ("adapter_params", 18432.0),
            ("wall_time_s", 437.8),
        ] {
            run.log_metric(k, v, 230).unwrap();
        }
        run.set_tag("method", "static").unwrap();
        ids.push(run.run_id().to_string());
        run.end(RunStatus::Finished).unwrap();
    }
    ids
}

#[test]
fn list_fits_100_columns_and_prints_json_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mlflow.db");
    let ids = study_like_store(&db);

    let (ok, out, err) = runs_cmd(&db, &["list"]);
    assert!(ok, "{err}");
    println!("{out}{err}");
    for line in out.lines() {
        assert!(
            line.chars().count() <= 100,
            "{} chars: {line}\n{out}",
            line.chars().count()
        );
    }
    assert_eq!(out.lines().count(), 7, "a header and six runs:\n{out}");
    let header = out.lines().next().unwrap();
    for col in [
        "run_id",
        "experiment",
        "run_name",
        "status",
        "start (UTC)",
        "duration",
        "best_dev_acc",
    ] {
        assert!(
            header.contains(col),
            "no `{col}` in the default header: {header}"
        );
    }
    assert!(
        !out.contains("hyper_parameter"),
        "params are not in the default view:\n{out}"
    );
    assert!(
        out.contains("FINISHED") && out.contains("study-mrpc") && out.contains(&ids[0][..8]),
        "{out}"
    );
    assert!(
        err.contains("--columns all"),
        "a hint says how to see more: {err}"
    );

    // JSON: one document, an object per run, raw values.
    let (ok, out, err) = runs_cmd(&db, &["list", "--format", "json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("stdout is one JSON document");
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 6);
    let got: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r["run_id"].as_str().unwrap()).collect();
    assert_eq!(got, ids.iter().map(String::as_str).collect());
    assert!(rows[0]["metrics.best_dev_accuracy"].is_f64(), "{}", rows[0]);
    assert!(rows[0]["start_time"].is_i64(), "{}", rows[0]);

    // CSV: a header, a row per run.
    let (ok, out, err) = runs_cmd(&db, &["list", "--format", "csv", "-e", "mrpc"]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("run_id,run_name,status,start_time,duration,"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 5, "{out}");

    // --columns in MLflow's names, a bare key, and `all`.
    let (ok, out, err) = runs_cmd(
        &db,
        &[
            "list",
            "--format",
            "csv",
            "--columns",
            "run_name,params.hyper_parameter_03,dev_f1,tags.method",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.starts_with("run_name,params.hyper_parameter_03,metrics.dev_f1,tags.method\n"),
        "{out}"
    );
    let (ok, out, err) = runs_cmd(&db, &["list", "--format", "json", "--columns", "all"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let first = v[0].as_object().unwrap();
    assert!(
        first.contains_key("params.hyper_parameter_13")
            && first.contains_key("metrics.lr")
            && first.contains_key("tags.method")
            && first.contains_key("artifact_uri"),
        "{out}"
    );
    let (ok, out, err) = runs_cmd(&db, &["list", "--columns", "all"]);
    assert!(ok && out.contains("hyper_parameter_13"), "{err}");

    let (ok, _, err) = runs_cmd(&db, &["list", "--columns", "run_name,accuracyy"]);
    assert!(
        !ok && err.contains("--columns")
            && err.contains("`accuracyy`")
            && err.contains("metrics.dev_f1"),
        "{err}"
    );
    let (ok, _, err) = runs_cmd(&db, &["list", "--format", "yaml"]);
    assert!(!ok && err.contains("yaml") && err.contains("json"), "{err}");
}

#[test]
fn show_compare_history_and_experiments_print_json_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mlflow.db");
    let ids = study_like_store(&db);

    let (ok, out, err) = runs_cmd(&db, &["show", &ids[1][..8], "--format", "json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["info"]["run_id"], ids[1].as_str());
    assert_eq!(v["params"]["hyper_parameter_00"], "value-1-0");
    assert_eq!(v["metrics"]["train_loss"]["step"], 230);
    let (ok, out, err) = runs_cmd(&db, &["show", &ids[1], "--format", "csv"]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("section,key,value,step\n") && out.contains("metric,train_loss,0.4321,230"),
        "{out}"
    );

    let (ok, out, err) = runs_cmd(
        &db,
        &["compare", &ids[0], &ids[1], "--diff", "--format", "json"],
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 2);
    let keys: Vec<&str> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&"metrics.best_dev_accuracy") && !keys.contains(&"metrics.dev_f1"),
        "{keys:?}"
    );
    let (ok, out, err) = runs_cmd(&db, &["compare", &ids[0], &ids[1], "--format", "csv"]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with(&format!("key,differs,{},{}\n", ids[0], ids[1])),
        "{out}"
    );

    let (ok, out, err) = runs_cmd(&db, &["history", &ids[2], "dev_loss", "--format", "json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["points"][0]["step"], 230);
    let (ok, out, err) = runs_cmd(&db, &["history", &ids[2], "dev_loss", "--format", "csv"]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("step,value,timestamp\n230,0.51234567,"),
        "{out}"
    );

    let (ok, out, err) = runs_cmd(&db, &["experiments", "--format", "json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Default", "mrpc", "rte"]);
}
