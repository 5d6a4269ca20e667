//! The tracker on a file MLflow has upgraded and written to (no Python needed: the file is
//! rebuilt from `tests/fixtures/mlflow-3.17.2-upgraded.sql`, a dump of such a file).
//! The live version of this check is `tests/mlflow_check.py` (see the README's tracker section).

use heterolora::tracking::{RunStatus, Tracker};

const DUMP: &str = include_str!("../fixtures/mlflow-3.17.2-upgraded.sql");
const MLFLOW_RUN: &str = "538c88e0fe7c41239c6b000556453bc6";

fn upgraded_store() -> (tempfile::TempDir, Tracker) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mlflow.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    // The dump inserts rows table by table in name order, before the tables they reference exist.
    conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    conn.execute_batch(DUMP).unwrap();
    drop(conn);
    let t = Tracker::open_path(&db).unwrap();
    (dir, t)
}

#[test]
fn reads_runs_that_mlflow_wrote_into_an_upgraded_file() {
    let (_d, t) = upgraded_store();
    let s = t.schema();
    assert!(s.upgraded());
    assert_eq!(s.revision, "dc11669786a5");
    assert!(s.status_killed);
    assert!(s.experiment_extra.contains("workspace"));
    let run = t.get_run(MLFLOW_RUN).unwrap();
    assert_eq!(run.info.run_name, "mlflow-run");
    assert_eq!(run.info.status, "FINISHED");
    assert_eq!(run.params["r"], "8");
    assert_eq!(run.tags["source"], "mlflow");
    assert!((run.metrics["acc"].value - 0.9).abs() < 1e-12);
    assert_eq!(run.metrics["acc"].step, 2);
    assert!(run.metrics["nan_metric"].value.is_nan());
    let h = t.metric_history(MLFLOW_RUN, "acc").unwrap();
    assert_eq!(h.steps(), vec![0, 1, 2]);
    assert_eq!(
        h.timestamps(),
        vec![1_700_000_000_000, 1_700_000_000_001, 1_700_000_000_002]
    );
    let found = t
        .search_runs(
            &["written-by-mlflow"],
            "metrics.acc > 0.85 and params.optimizer = 'adamw'",
            &[],
        )
        .unwrap();
    assert_eq!(found.run_ids(), vec![MLFLOW_RUN.to_string()]);
}

#[test]
fn writes_experiments_and_runs_into_an_upgraded_file() {
    let (_d, t) = upgraded_store();
    // Our index made redundant by MLflow's was dropped, the old ones replaced, the covering ones made.
    let conn = rusqlite::Connection::open(t.path()).unwrap();
    let idx: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'hl_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        idx,
        vec![
            "hl_idx_latest_metrics_cover",
            "hl_idx_latest_metrics_key_value",
            "hl_idx_params_cover",
            "hl_idx_params_key_value",
            "hl_idx_runs_experiment",
            "hl_idx_tags_cover"
        ]
    );

    let mut run = t.start_run("created-after-upgrade", "ours").unwrap();
    run.log_params(&[("r", 16)]).unwrap();
    for s in 0..20 {
        run.log_metric("acc", 0.5 + s as f64 / 100.0, s).unwrap();
    }
    run.log_text("x", "a.txt").unwrap();
    let id = run.run_id().to_string();
    run.end(RunStatus::Killed).unwrap();
    let got = t.get_run(&id).unwrap();
    assert_eq!(
        got.info.status, "KILLED",
        "the upgraded schema allows KILLED"
    );
    assert_eq!(t.metric_history(&id, "acc").unwrap().len(), 20);
    assert_eq!(t.list_artifacts(&id).unwrap(), vec!["a.txt"]);
    // The new experiment got MLflow's newer columns.
    let (ws, created): (String, Option<i64>) = conn
        .query_row(
            "SELECT workspace, creation_time FROM experiments WHERE name = 'created-after-upgrade'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(ws, "default");
    assert!(created.unwrap() > 1_700_000_000_000);
    // And a run in MLflow's own experiment, next to MLflow's run.
    let mut r2 = t.start_run("written-by-mlflow", "ours-too").unwrap();
    r2.log_metric("acc", 0.95, 0).unwrap();
    r2.end(RunStatus::Finished).unwrap();
    let all = t
        .search_runs(&["written-by-mlflow"], "", &["metrics.acc DESC"])
        .unwrap();
    assert_eq!(
        all.strings("run_name"),
        vec![Some("ours-too".into()), Some("mlflow-run".into())]
    );
}
