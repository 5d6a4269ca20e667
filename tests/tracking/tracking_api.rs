//! The tracker's API end to end on a temporary store: runs, params, metrics, tags, artifacts,
//! nested runs, search with MLflow filters, metric history, and the errors users meet.

use heterolora::tracking::{FlushPolicy, RunLogger, RunStatus, Tracker};
use std::path::PathBuf;

fn store() -> (tempfile::TempDir, Tracker) {
    let dir = tempfile::tempdir().unwrap();
    let t = Tracker::open_path(&dir.path().join("tracking/mlflow.db")).unwrap();
    (dir, t)
}

#[test]
fn logs_a_run_and_reads_it_back() {
    let (dir, t) = store();
    let mut run = t.start_run("mrpc", "lora-r8").unwrap();
    run.log_params(&[("r", 8), ("lora_alpha", 16)]).unwrap();
    run.log_param("r", 8).unwrap(); // same value again: fine
    run.set_tag("allocator", "greedy").unwrap();
    for step in 0..10 {
        run.log_metrics(
            &[
                ("loss", 1.0 / (step as f64 + 1.0)),
                ("acc", 0.5 + step as f64 * 0.04),
            ],
            step,
        )
        .unwrap();
    }
    run.log_text("hi", "notes/a.txt").unwrap();
    run.log_json(&serde_json::json!({"x": 1}), "alloc.json")
        .unwrap();
    let src = dir.path().join("cfg.toml");
    std::fs::write(&src, "r = 8").unwrap();
    run.log_artifact(&src, Some("config")).unwrap();
    let id = run.run_id().to_string();
    assert!(run.to_html().contains(&id) && run.to_html().contains("RUNNING"));
    run.end(RunStatus::Finished).unwrap();
    assert!(run.to_html().contains("FINISHED"));

    let got = t.get_run(&id).unwrap();
    assert_eq!(got.info.status, "FINISHED");
    assert!(got.info.end_time.unwrap() >= got.info.start_time);
    assert_eq!(got.info.run_name, "lora-r8");
    assert_eq!(got.params["r"], "8");
    assert_eq!(got.params["lora_alpha"], "16");
    assert_eq!(got.tags["allocator"], "greedy");
    assert_eq!(got.tags["mlflow.runName"], "lora-r8");
    assert_eq!(got.tags["mlflow.source.type"], "LOCAL");
    assert_eq!(got.metrics["loss"].step, 9);
    assert!((got.metrics["loss"].value - 0.1).abs() < 1e-12);
    let h = t.metric_history(&id, "acc").unwrap();
    assert_eq!(h.steps(), (0..10).collect::<Vec<_>>());
    assert!((h.values()[9] - 0.86).abs() < 1e-12);
    assert_eq!(h.to_dataframe().unwrap().shape(), (10, 3));
    assert_eq!(
        t.list_artifacts(&id).unwrap(),
        vec!["alloc.json", "config/cfg.toml", "notes/a.txt"]
    );
    // artifacts live where MLflow looks: <db dir>/artifacts/<experiment>/<run>/artifacts
    let exp = t.get_experiment("mrpc").unwrap();
    let want: PathBuf = dir
        .path()
        .join("tracking/artifacts")
        .join(exp.experiment_id().to_string())
        .join(&id)
        .join("artifacts");
    assert_eq!(PathBuf::from(&got.info.artifact_uri), want);
    assert!(want.join("notes/a.txt").exists());
    // short ids
    assert_eq!(t.get_run(&id[..6]).unwrap().info.run_id, id);
    // a second handle (another cell, another process) sees the same
    let t2 = Tracker::open_path(t.path()).unwrap();
    assert_eq!(t2.get_run(&id).unwrap().params.len(), 2);
}

#[test]
fn latest_metric_follows_mlflow_order_not_arrival() {
    let (_d, t) = store();
    let mut run = t.start_run("e", "r").unwrap();
    run.log_metric_at("m", 5.0, 10, 1000).unwrap();
    run.log_metric_at("m", 7.0, 3, 2000).unwrap(); // older step, logged later
    run.flush().unwrap();
    run.log_metric_at("m", 1.0, 2, 3000).unwrap(); // a separate batch, still older step
    let id = run.run_id().to_string();
    run.end(RunStatus::Finished).unwrap();
    let got = t.get_run(&id).unwrap();
    assert_eq!(got.metrics["m"].value, 5.0);
    assert_eq!(got.metrics["m"].step, 10);
    assert_eq!(t.metric_history(&id, "m").unwrap().steps(), vec![2, 3, 10]);
}

#[test]
fn nan_and_infinities_round_trip_as_mlflow_stores_them() {
    let (_d, t) = store();
    let mut run = t.start_run("e", "r").unwrap();
    run.log_metric("nan", f64::NAN, 0).unwrap();
    run.log_metric("pinf", f64::INFINITY, 0).unwrap();
    run.log_metric("ninf", f64::NEG_INFINITY, 0).unwrap();
    run.log_metric("nan_then_ok", f64::NAN, 0).unwrap();
    run.log_metric("nan_then_ok", 0.5, 1).unwrap();
    let id = run.run_id().to_string();
    run.end(RunStatus::Finished).unwrap();
    let got = t.get_run(&id).unwrap();
    assert!(got.metrics["nan"].value.is_nan());
    assert_eq!(got.metrics["pinf"].value, f64::INFINITY);
    assert_eq!(got.metrics["ninf"].value, f64::NEG_INFINITY);
    assert_eq!(got.metrics["nan_then_ok"].value, 0.5);
    assert!(t.metric_history(&id, "nan_then_ok").unwrap().values()[0].is_nan());
    // The stored rows are MLflow's encoding.
    let conn = rusqlite::Connection::open(t.path()).unwrap();
    let rows: Vec<(String, f64, bool)> = conn
        .prepare("SELECT key, value, is_nan FROM metrics WHERE run_uuid = ?1 AND key IN ('nan','pinf','ninf') ORDER BY key")
        .unwrap()
        .query_map([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        vec![
            ("nan".to_string(), 0.0, true),
            ("ninf".to_string(), -1.7976931348623157e308, false),
            ("pinf".to_string(), 1.7976931348623157e308, false)
        ]
    );
    // NaN matches no comparison; inf compares as the largest value.
    assert!(t
        .search_runs(&["e"], "metrics.nan < 1", &[])
        .unwrap()
        .is_empty());
    assert_eq!(
        t.search_runs(&["e"], "metrics.pinf > 1e300", &[])
            .unwrap()
            .len(),
        1
    );
    let table = t.search_runs(&["e"], "", &[]).unwrap();
    assert!(table.floats("metrics.nan")[0].unwrap().is_nan());
}

#[test]
fn nested_runs_and_search_with_filters_and_order() {
    let (_d, t) = store();
    let mut sweep = t.start_run("sweep-exp", "sweep").unwrap();
    let mut ids = Vec::new();
    for (r, acc) in [(4, 0.70), (8, 0.85), (16, 0.82), (32, 0.60)] {
        let mut c = sweep.start_child(&format!("r{r}")).unwrap();
        c.log_param("r", r).unwrap();
        c.log_param("optimizer", if r < 16 { "AdamW" } else { "adamw" })
            .unwrap();
        c.log_metric("acc", acc, 1).unwrap();
        ids.push(c.run_id().to_string());
        c.end(if r == 32 {
            RunStatus::Failed
        } else {
            RunStatus::Finished
        })
        .unwrap();
    }
    let other = t.start_run("other-exp", "x").unwrap();
    drop(other);
    let sweep_id = sweep.run_id().to_string();
    sweep.end(RunStatus::Finished).unwrap();
    assert_eq!(t.child_runs(&sweep_id).unwrap(), ids);

    let names = |f: &str, o: &[&str]| -> Vec<String> {
        t.search_runs(&["sweep-exp"], f, o)
            .unwrap()
            .strings("run_name")
            .into_iter()
            .map(|s| s.unwrap())
            .collect()
    };
    assert_eq!(
        names("metrics.acc > 0.8", &["metrics.acc DESC"]),
        vec!["r8", "r16"]
    );
    assert_eq!(
        names("metrics.acc >= 0.6 and params.r = '4'", &[]),
        vec!["r4"]
    );
    assert_eq!(
        names(
            "params.r != '4' and attributes.status = 'FINISHED'",
            &["metrics.acc"]
        ),
        vec!["r16", "r8"]
    );
    assert_eq!(
        names("params.optimizer LIKE 'Adam%'", &["params.r"]),
        vec!["r4", "r8"]
    ); // case-sensitive
    assert_eq!(
        names("params.optimizer ILIKE 'adam%'", &["metrics.acc ASC"]).len(),
        4
    );
    assert_eq!(names("attributes.status IN ('FAILED')", &[]), vec!["r32"]);
    assert_eq!(
        names(&format!("tags.mlflow.parentRunId = '{sweep_id}'"), &[]).len(),
        4
    );
    assert_eq!(names("attributes.run_name LIKE 'r1%'", &[]), vec!["r16"]);
    // runs without the sort key last; default order newest first
    let all = names("", &["metrics.acc DESC"]);
    assert_eq!(all, vec!["r8", "r16", "r4", "r32", "sweep"]);
    // all experiments when none named
    assert_eq!(t.search_runs(&[], "", &[]).unwrap().len(), 6);
    assert_eq!(
        t.search_runs_limit(&[], "", &["metrics.acc DESC"], Some(2))
            .unwrap()
            .run_ids(),
        ids[1..3].to_vec()
    );
    // MLflow's columns
    let table = t.search_runs(&["sweep-exp"], "", &[]).unwrap();
    let cols: Vec<String> = table
        .df()
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    for c in [
        "run_id",
        "experiment_id",
        "status",
        "artifact_uri",
        "start_time",
        "end_time",
        "metrics.acc",
        "params.r",
        "tags.mlflow.runName",
    ] {
        assert!(
            cols.contains(&c.to_string()),
            "missing column {c} in {cols:?}"
        );
    }
    assert!(table.to_html().contains("<table"));
    // dropped without end() -> FAILED
    let other_runs = t.search_runs(&["other-exp"], "", &[]).unwrap();
    assert_eq!(
        other_runs.strings("status"),
        vec![Some("FAILED".to_string())]
    );
    assert_eq!(
        other_runs.strings("tags.heterolora.end_reason"),
        vec![Some("dropped without end()".to_string())]
    );
}

#[test]
fn a_panicking_run_is_marked_failed_with_its_points_kept() {
    let (_d, t) = store();
    let t2 = t.clone();
    let id = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let id2 = id.clone();
    let res = std::thread::spawn(move || {
        let mut run = t2.start_run("e", "doomed").unwrap();
        *id2.lock().unwrap() = run.run_id().to_string();
        for s in 0..5 {
            run.log_metric("loss", 1.0, s).unwrap();
        }
        panic!("training diverged");
    })
    .join();
    assert!(res.is_err());
    let id = id.lock().unwrap().clone();
    let got = t.get_run(&id).unwrap();
    assert_eq!(got.info.status, "FAILED");
    assert_eq!(got.tags["heterolora.end_reason"], "panicked before end()");
    assert_eq!(t.metric_history(&id, "loss").unwrap().len(), 5);
}

#[test]
fn run_logger_trait_object_writes_through() {
    let (_d, t) = store();
    let run = t.start_run("e", "via-trait").unwrap();
    let mut logger: Box<dyn RunLogger> = Box::new(run);
    logger.log_param("lr", "0.001").unwrap();
    logger.log_metric("loss", 0.3, 7).unwrap();
    logger.set_tag("k", "v").unwrap();
    logger.log_text("{}", "a.json").unwrap();
    let id = logger.run_id().unwrap();
    logger.end(RunStatus::Killed).unwrap();
    drop(logger);
    let got = t.get_run(&id).unwrap();
    // A fresh file (revision 89d4b8295536) has no KILLED: stored as FAILED.
    assert_eq!(got.info.status, "FAILED");
    assert_eq!(got.metrics["loss"].step, 7);
    assert_eq!(got.params["lr"], "0.001");
}

#[test]
fn batching_holds_points_until_the_policy_says_write() {
    let (_d, t) = store();
    let mut run = t.start_run("e", "batched").unwrap();
    run.set_flush_policy(FlushPolicy {
        max_points: 100,
        max_interval: std::time::Duration::from_secs(3600),
    });
    for s in 0..99 {
        run.log_metric("m", s as f64, s).unwrap();
    }
    assert_eq!(run.pending_points(), 99);
    assert!(t.metric_points(run.run_id(), "m").unwrap().is_empty());
    run.log_metric("m", 99.0, 99).unwrap();
    assert_eq!(run.pending_points(), 0);
    assert_eq!(t.metric_points(run.run_id(), "m").unwrap().len(), 100);
    run.log_metric("m", 100.0, 100).unwrap();
    let id = run.run_id().to_string();
    run.finish().unwrap();
    assert_eq!(t.metric_history(&id, "m").unwrap().len(), 101);
}

#[test]
fn clear_errors_for_bad_input() {
    let (dir, t) = store();
    let mut run = t.start_run("e", "r").unwrap();
    run.log_param("lr", "0.001").unwrap();
    let e = run.log_param("lr", "0.01").unwrap_err().to_string();
    assert!(
        e.contains("`lr`") && e.contains("0.001") && e.contains("0.01") && e.contains("immutable"),
        "{e}"
    );
    let long = "k".repeat(300);
    let e = run.log_metric(&long, 1.0, 0).unwrap_err().to_string();
    assert!(e.contains("300 characters") && e.contains("250"), "{e}");
    assert!(run.log_param(&long, 1).is_err());
    assert!(run.set_tag(&long, 1).is_err());
    let e = t
        .search_runs(&["e"], "metrcs.acc > 1", &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown filter field `metrcs.acc`"), "{e}");
    let e = t
        .search_runs(&["e"], "attributes.accuracy > 1", &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown filter field `attributes.accuracy`") && e.contains("run_name"),
        "{e}"
    );
    let e = t.search_runs(&["nope"], "", &[]).unwrap_err().to_string();
    assert!(e.contains("no experiment named or numbered `nope`"), "{e}");
    let e = t
        .metric_history(run.run_id(), "acc")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no metric `acc`"), "{e}");
    assert!(run.log_text("x", "../escape.txt").is_err());
    run.end(RunStatus::Finished).unwrap();

    // A file that is not a tracker: plain text, another app's SQLite database.
    let txt = dir.path().join("notes.txt");
    std::fs::write(&txt, "hello, I am not a database, but I am long enough").unwrap();
    let e = Tracker::open_path(&txt).unwrap_err().to_string();
    assert!(
        e.contains("not a tracker store") && e.contains("notes.txt"),
        "{e}"
    );
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE cats (name TEXT)")
        .unwrap();
    let e = Tracker::open_path(&other).unwrap_err().to_string();
    assert!(
        e.contains("not an MLflow tracking store") && e.contains("cats"),
        "{e}"
    );
    let e = Tracker::open("postgresql://db/mlflow")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not supported"), "{e}");
}

#[test]
fn mlflow_tracking_uri_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("via-env.db");
    let uri = format!("sqlite:///{}", db.display());
    // Only this test touches the variable.
    std::env::set_var("MLFLOW_TRACKING_URI", &uri);
    let t = Tracker::open_default();
    std::env::remove_var("MLFLOW_TRACKING_URI");
    let t = t.unwrap();
    assert_eq!(t.path(), db.as_path());
    assert_eq!(t.tracking_uri(), format!("sqlite:///{}", db.display()));
    assert!(db.exists());
}

#[test]
fn handles_can_move_between_threads_and_cells() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync + Clone>() {}
    send::<heterolora::tracking::Run>();
    send_sync::<Tracker>();
    send_sync::<heterolora::tracking::Experiment>();
    // Several threads share one tracker (one connection behind a mutex).
    let (_d, t) = store();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let t = t.clone();
            std::thread::spawn(move || {
                let mut run = t.start_run("threads", &format!("t{i}")).unwrap();
                for s in 0..100 {
                    run.log_metric("m", s as f64, s).unwrap();
                }
                run.end(RunStatus::Finished).unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let table = t.search_runs(&["threads"], "metrics.m = 99", &[]).unwrap();
    assert_eq!(table.len(), 4);
}
