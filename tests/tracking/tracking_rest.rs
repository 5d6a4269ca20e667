//! The tracker on a real MLflow tracking server (`mlflow server` from `.venv`, on a free loopback
//! port): a short training and a two-child study logged through the REST backend are read back
//! by MLflow's own Python client (params, full metric histories, artifacts, statuses); the
//! report reads the children's artifacts back from the server; and `search_runs` with a filter
//! gives the same frame as the SQLite store for the same runs.

use crate::study_util;
use crate::tracking_rest_util;

use heterolora::study::{Study, StudyReport};
use heterolora::tracking::{MemoryLogger, RunStatus, Tracker};
use polars::prelude::*;
use serde_json::json;
use study_util::{config, Tiny};
use tracking_rest_util::*;

/// A tiny training logged to `run` the way `heterolora train` does (output in the run's artifact
/// folder); returns everything the trainer logged.
pub fn train_tiny(run: &mut heterolora::tracking::Run) -> MemoryLogger {
    let mut t = tiny_trainer(run.artifact_dir().unwrap());
    let mut tee = Tee {
        mem: MemoryLogger::default(),
        inner: run,
    };
    let r = t.fit(&mut tee).unwrap();
    assert_eq!(r.status, RunStatus::Finished);
    tee.mem
}

/// The same runs in any store: 4 runs with params, tags and metric histories (one NaN).
fn log_fixture(t: &Tracker) {
    for (i, (r, acc)) in [(8, 0.91), (8, 0.62), (2, 0.97), (8, f64::NAN)]
        .iter()
        .enumerate()
    {
        let mut run = t.start_run("compare", &format!("run-{i}")).unwrap();
        run.log_params(&[("r", r.to_string()), ("method", format!("m{}", i % 2))])
            .unwrap();
        run.set_tag("heterolora.kind", "fixture").unwrap();
        for s in 0..5 {
            run.log_metrics(
                &[
                    ("acc", acc - 0.01 * (4 - s) as f64),
                    ("loss", 1.0 / (s + 1) as f64),
                ],
                s,
            )
            .unwrap();
        }
        run.end(RunStatus::Finished).unwrap();
        // Distinct start times: the default order (newest first) then has no ties that the
        // stores' random run ids would break differently.
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A frame without the columns that name the store (ids, artifact locations, times).
fn comparable(df: &DataFrame) -> DataFrame {
    df.drop_many([
        "run_id",
        "experiment_id",
        "artifact_uri",
        "start_time",
        "end_time",
    ])
}

#[test]
fn training_and_a_study_on_a_server_read_back_by_mlflow_and_search_like_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let server = MlflowServer::start(&tmp.path().join("server"));
    let tracker = Tracker::open_server(&server.url(), Some(&tmp.path().join("local")));
    assert!(tracker.is_remote());

    // 1. A short training.
    let mut run = tracker.start_run("tiny-train", "train-tiny").unwrap();
    run.log_params(&[("allocation", "uniform:q,v:r=4")])
        .unwrap();
    let run_id = run.run_id().to_string();
    let mut mem = train_tiny(&mut run);
    mem.params
        .push(("allocation".into(), "uniform:q,v:r=4".into()));
    assert!(run.spooled().is_none(), "the server answered every request");
    drop(run);
    assert!(mem.history("train_loss").len() >= 10);
    assert!(mem
        .artifacts
        .iter()
        .any(|(p, _)| p.starts_with("adapters/")));
    // Ours reads the same back.
    let h = tracker.metric_history(&run_id, "train_loss").unwrap();
    assert_eq!(h.len(), mem.history("train_loss").len());
    let listed = tracker.list_artifacts(&run_id).unwrap();
    for (p, _) in &mem.artifacts {
        assert!(listed.contains(p), "{p} not in {listed:?}");
    }

    // 2. A two-child study (2 methods x 1 seed).
    let cfg = config(tmp.path(), "uniform-r2,static-grad-norm", vec![0]);
    let mut study = Study::new(
        cfg.clone(),
        tracker.clone(),
        Box::new(Tiny { fail_seeds: vec![] }),
    );
    let out = study.run(&mut |_| {}).unwrap();
    assert_eq!(out.finished.len(), 2, "{:?}", out.failed);
    let children = tracker.child_runs(&out.parent_run_id).unwrap();
    assert_eq!(children.len(), 2);
    // The report reads each child's study_child.json back from the server.
    let rep = StudyReport::collect(Some(&tracker), &cfg).unwrap();
    assert!(rep.notes.is_empty(), "{:?}", rep.notes);
    assert_eq!(rep.records.len(), 2);
    // A second invocation finds both children finished on the server.
    let out2 = Study::new(
        cfg.clone(),
        tracker.clone(),
        Box::new(Tiny { fail_seeds: vec![] }),
    )
    .run(&mut |_| {})
    .unwrap();
    assert_eq!((out2.skipped.len(), out2.finished.len()), (2, 0));

    let mut expect = vec![expect_from(&run_id, &mem, "FINISHED")];
    for c in &children {
        let d = tracker.get_run(c).unwrap();
        let mut metrics = serde_json::Map::new();
        for k in d.metrics.keys() {
            let pts: Vec<_> = tracker
                .metric_points(c, k)
                .unwrap()
                .iter()
                .map(|p| json!([p.step, num(p.value)]))
                .collect();
            metrics.insert(k.clone(), json!(pts));
        }
        assert!(
            d.metrics.contains_key("train_loss"),
            "{:?}",
            d.metrics.keys()
        );
        expect.push(
            json!({"run_id": c, "status": "FINISHED", "params": d.params,
            "tags": {"mlflow.parentRunId": out.parent_run_id},
            "metrics": metrics, "artifacts": ["study_child.json", "train_result.json"]}),
        );
    }
    expect.push(json!({"run_id": out.parent_run_id, "status": "FINISHED"}));
    let said = mlflow_check(&server.url(), tmp.path(), expect);
    eprintln!("{said}");

    // 3. search_runs: the same frame from the server as from a SQLite store.
    let sqlite = Tracker::open_path(&tmp.path().join("mlflow.db")).unwrap();
    log_fixture(&sqlite);
    log_fixture(&tracker);
    for (filter, order) in [
        (
            "metrics.acc > 0.5 and params.r = '8'",
            vec!["metrics.acc DESC"],
        ),
        (
            "tags.`heterolora.kind` = 'fixture'",
            vec!["params.method ASC", "metrics.acc DESC"],
        ),
        (
            "attributes.run_name IN ('run-1', 'run-3') and metrics.loss < 0.5",
            vec![],
        ),
    ] {
        let a = sqlite.search_runs(&["compare"], filter, &order).unwrap();
        let b = tracker.search_runs(&["compare"], filter, &order).unwrap();
        assert!(!a.is_empty(), "{filter}");
        let (a, b) = (comparable(a.df()), comparable(b.df()));
        assert_eq!(a.get_column_names(), b.get_column_names(), "{filter}");
        for (ca, cb) in a.columns().iter().zip(b.columns()) {
            assert!(
                ca.as_materialized_series()
                    .equals_missing(cb.as_materialized_series()),
                "{filter}: column {} differs:\nSQLite {ca:?}\nserver {cb:?}",
                ca.name()
            );
        }
    }
    // Our grammar's errors come before anything is sent.
    let e = tracker
        .search_runs(&["compare"], "metrics.acc > 1 or params.r = '2'", &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("OR is not supported"), "{e}");
    // A 4xx from the server is an error that names the server.
    let e = tracker
        .resume_run("0123456789abcdef0123456789abcdef")
        .unwrap_err()
        .to_string();
    assert!(e.contains(&server.url()) && e.contains("no run"), "{e}");
}
