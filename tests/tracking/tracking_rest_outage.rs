//! Nothing is lost when the tracking server goes away: a training whose server is stopped
//! mid-run keeps training and ends, spooling what it could not send; a second run whose server
//! comes back sends its spool at its next flush; `heterolora runs sync` sends the first run's
//! spool (its end status included) after the server is restarted on the same store and port;
//! MLflow's Python client then finds every logged point, param, tag, artifact and final status.

use crate::tracking_rest_util;

use heterolora::model::SequenceClassifier;
use heterolora::search::Allocation;
use heterolora::tracking::{MemoryLogger, RunStatus, Tracker};
use heterolora::train::{HookState, TrainHook};
use serde_json::json;
use std::process::Command;
use std::sync::{Arc, Mutex};
use tracking_rest_util::*;

/// Stops the server before optimiser step `at`.
struct StopServerAt {
    at: usize,
    server: Arc<Mutex<MlflowServer>>,
}

impl TrainHook for StopServerAt {
    fn name(&self) -> &str {
        "stop_server"
    }
    fn before_step(
        &mut self,
        _model: &mut SequenceClassifier,
        state: &mut HookState<'_>,
    ) -> heterolora::Result<Option<Allocation>> {
        if state.step == self.at {
            self.server.lock().unwrap().stop();
        }
        Ok(None)
    }
}

#[test]
fn a_run_keeps_training_while_the_server_is_away_and_sync_sends_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("local");
    let server = Arc::new(Mutex::new(MlflowServer::start(&tmp.path().join("server"))));
    let url = server.lock().unwrap().url();
    let tracker = Tracker::open_server(&url, Some(&local));

    // Run B: logs while the server is up.
    let mut b = tracker.start_run("outage", "manual").unwrap();
    b.log_params(&[("p1", "one")]).unwrap();
    let mut b_points = vec![];
    for s in 0..3 {
        b.log_metric("loss", 1.0 / (s + 1) as f64, s).unwrap();
        b_points.push(json!([s, 1.0 / (s + 1) as f64]));
    }
    b.flush().unwrap();
    assert!(b.spooled().is_none());

    // Run A: a tiny training; the server stops before its 4th step; it trains to the end.
    let mut a = tracker.start_run("outage", "train-tiny").unwrap();
    let a_id = a.run_id().to_string();
    let mut trainer = tiny_trainer(a.artifact_dir().unwrap()).add_hook(Box::new(StopServerAt {
        at: 3,
        server: server.clone(),
    }));
    let mut tee = Tee {
        mem: MemoryLogger::default(),
        inner: &mut a,
    };
    let result = trainer.fit(&mut tee).unwrap();
    let mem_a = tee.mem;
    assert_eq!(result.status, RunStatus::Finished);
    assert!(
        result.steps > 3,
        "trained past the outage: {} steps",
        result.steps
    );
    let spool_a = a
        .spooled()
        .expect("run A spooled what the stopped server missed");
    assert!(spool_a.is_file());
    drop(a); // releases the spool's lock, as a finished process would

    // Run B logs during the outage too: spooled, no error.
    b.log_params(&[("p2", "two")]).unwrap();
    b.set_tag("phase", "outage").unwrap();
    b.log_text("written while the server was away", "notes.txt")
        .unwrap();
    for s in 3..6 {
        b.log_metric("loss", 1.0 / (s + 1) as f64, s).unwrap();
        b_points.push(json!([s, 1.0 / (s + 1) as f64]));
    }
    b.log_metric("odd", f64::NAN, 5).unwrap();
    b.flush().unwrap();
    assert!(b.spooled().is_some());
    // A changed param is still refused where it is logged.
    assert!(b.log_params(&[("p1", "changed")]).is_err());

    // The server comes back on the same store and port: run B's next flush sends its spool.
    server.lock().unwrap().restart();
    b.log_metric("loss", 0.1, 6).unwrap();
    b_points.push(json!([6, 0.1]));
    b.flush().unwrap();
    assert!(b.spooled().is_none(), "run B's spool was sent at its flush");
    let b_id = b.run_id().to_string();
    b.end(RunStatus::Finished).unwrap();

    // Run A ended while the server was away: RUNNING there until the sync.
    assert_eq!(tracker.run_info(&a_id).unwrap().status, "RUNNING");
    let heterolora = env!("CARGO_BIN_EXE_heterolora");
    let sync = |expect_ok: bool| {
        let out = Command::new(heterolora)
            .args(["runs", "sync", "--tracking-uri", &url])
            .env("HETEROLORA_SPOOL_DIR", &local)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.success(), expect_ok, "{text}");
        text
    };
    let said = sync(true);
    assert!(said.contains(&format!("run {a_id}: sent")), "{said}");
    assert!(!spool_a.exists());
    assert_eq!(tracker.run_info(&a_id).unwrap().status, "FINISHED");
    assert!(sync(true).contains("nothing to sync"));

    let b_expect = json!({"run_id": b_id, "status": "FINISHED",
        "params": {"p1": "one", "p2": "two"}, "tags": {"phase": "outage"},
        "metrics": {"loss": b_points, "odd": [[5, "NaN"]]},
        "artifacts": ["notes.txt"],
        "artifact_texts": {"notes.txt": "written while the server was away"}});
    let a_expect = expect_from(&a_id, &mem_a, "FINISHED");
    let said = mlflow_check(&url, tmp.path(), vec![a_expect, b_expect]);
    eprintln!("{said}");

    // With the server gone, sync keeps the spool and says so (exit status 1).
    let mut c = tracker.start_run("outage", "left").unwrap();
    server.lock().unwrap().stop();
    c.log_metric("loss", 0.5, 0).unwrap();
    c.end(RunStatus::Finished).unwrap();
    drop(c);
    let said = sync(false);
    assert!(
        said.contains("did not answer") && said.contains("runs sync"),
        "{said}"
    );
}
