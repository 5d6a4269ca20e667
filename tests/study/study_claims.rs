//! Several workers on one study (tiny random BERT, synthetic pairs): two workers started at the
//! same moment train every child exactly once; a claim left by a dead worker is taken over; a live
//! worker's claim is respected; the worker options are checked.

use crate::study_util;

use heterolora::study::claim::{TAG_CLAIM_MS, TAG_HEARTBEAT_MS, TAG_WORKER};
use heterolora::study::{Study, StudyConfig, Worker, KIND_CHILD};
use heterolora::tracking::{RunStatus, Tracker};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;
use study_util::*;

fn cfg(dir: &Path) -> StudyConfig {
    config(dir, "uniform-r2,static-grad-norm", vec![0, 13])
}

fn worker_study(dir: &Path) -> Study {
    let mut s = study(dir, cfg(dir), vec![]);
    // Long enough for claims written by two threads in the same instant to see each other.
    s.claims.settle = Duration::from_millis(300);
    s
}

/// (status, worker tag) of every child run of `key`.
fn runs_of(tracker: &Tracker, key: &str) -> Vec<(String, Option<String>)> {
    let t = tracker
        .search_runs(
            &["study-mrpc"],
            &format!("tags.`study.key` = '{key}' and tags.`heterolora.kind` = '{KIND_CHILD}'"),
            &[],
        )
        .unwrap();
    t.strings("status")
        .into_iter()
        .map(Option::unwrap_or_default)
        .zip(t.strings(&format!("tags.{TAG_WORKER}")))
        .collect()
}

#[test]
fn two_workers_at_once_train_every_child_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = worker_study(dir.path());
    let plan = first.plan().unwrap();
    let mut parent = first.open_parent().unwrap();
    let parent_id = parent.run_id().to_string();
    // As `--emit slurm` leaves it: open, its children to be run by workers.
    parent.end(RunStatus::Killed).unwrap();
    let tracker = first.tracker.clone();
    tracker
        .set_terminated(&parent_id, RunStatus::Running)
        .unwrap();

    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (d, id, b) = (dir.path().to_path_buf(), parent_id.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut s = worker_study(&d);
                b.wait();
                s.run_worker(&id, None, &mut |_| {}).unwrap()
            })
        })
        .collect();
    let outs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();

    let a: BTreeSet<_> = outs[0].finished.iter().cloned().collect();
    let b: BTreeSet<_> = outs[1].finished.iter().cloned().collect();
    assert!(a.is_disjoint(&b), "trained twice: {a:?} and {b:?}");
    let all: BTreeSet<_> = plan.children.iter().map(|c| c.key.clone()).collect();
    assert_eq!(&a | &b, all, "every child trained by one of them");
    assert!(outs.iter().all(|o| o.failed.is_empty()));

    for key in &all {
        let runs = runs_of(&tracker, key);
        let finished = runs.iter().filter(|(s, _)| s == "FINISHED").count();
        assert_eq!(finished, 1, "{key}: {runs:?}");
        // Any other run of the key is a claim that lost, ended KILLED (stored as FAILED in files
        // MLflow has not upgraded).
        assert!(
            runs.iter()
                .all(|(s, _)| s == "FINISHED" || s == "KILLED" || s == "FAILED"),
            "{key}: {runs:?}"
        );
    }
    // The worker that saw the last child finish closed the parent.
    assert_eq!(tracker.run_info(&parent_id).unwrap().status, "FINISHED");
    let mut s = worker_study(dir.path());
    let again = s.run_worker(&parent_id, None, &mut |_| {}).unwrap();
    assert_eq!(again.skipped.len(), 4);
}

/// Writes a RUNNING claim on `key` as `worker` would, `age_ms` ago.
fn fake_claim(
    tracker: &Tracker,
    parent_id: &str,
    key: &str,
    worker: &Worker,
    age_ms: i64,
) -> String {
    let mut run = tracker.start_run("study-mrpc", "someone-else").unwrap();
    let at = (heterolora::tracking::entities::now_ms() - age_ms).to_string();
    run.set_tags(&[
        ("mlflow.parentRunId", parent_id),
        ("heterolora.kind", KIND_CHILD),
        ("study.key", key),
        (TAG_WORKER, worker.id().as_str()),
        (TAG_CLAIM_MS, at.as_str()),
        (TAG_HEARTBEAT_MS, at.as_str()),
    ])
    .unwrap();
    let id = run.run_id().to_string();
    run.flush().unwrap();
    // Leave it RUNNING, as a worker that was killed leaves it.
    std::mem::forget(run);
    id
}

#[test]
fn claims_of_dead_workers_are_taken_over_and_live_ones_respected() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = worker_study(dir.path());
    s.claims.settle = Duration::from_millis(20);
    let plan = s.plan().unwrap();
    let mut parent = s.open_parent().unwrap();
    let parent_id = parent.run_id().to_string();
    parent.flush().unwrap();
    let tracker = s.tracker.clone();

    // Child 0: held by a process of this host that has exited: taken over at once.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead = Worker {
        pid: gone.id(),
        ..Worker::current()
    };
    gone.wait().unwrap();
    let stale = fake_claim(&tracker, &parent_id, &plan.children[0].key, &dead, 0);
    // Child 1: held by a live worker (this process, another token): left alone.
    let live = Worker::current();
    let held = fake_claim(&tracker, &parent_id, &plan.children[1].key, &live, 0);
    // Child 2: held by a worker on another host that has been silent past the stale time.
    let remote = Worker {
        host: "elsewhere.example".into(),
        ..Worker::current()
    };
    let old = s.claims.stale_after.as_millis() as i64 + 60_000;
    let silent = fake_claim(&tracker, &parent_id, &plan.children[2].key, &remote, old);

    for i in 0..3 {
        let out = s.run_worker(&parent_id, Some(i), &mut |_| {}).unwrap();
        match i {
            0 | 2 => assert_eq!(out.finished, vec![plan.children[i].key.clone()]),
            _ => {
                assert!(out.finished.is_empty());
                assert_eq!(out.busy, vec![(plan.children[1].key.clone(), held.clone())]);
            }
        }
    }
    for id in [&stale, &silent] {
        let st = tracker.run_info(id).unwrap().status;
        assert!(st == "KILLED" || st == "FAILED", "{id}: {st}");
    }
    assert_eq!(tracker.run_info(&held).unwrap().status, "RUNNING");
    // Not every child is done: the parent stays open.
    assert_ne!(tracker.run_info(&parent_id).unwrap().status, "FINISHED");

    // Options that cannot be right are refused with the field named.
    let e = s.run_worker(&parent_id, Some(99), &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("child-index"), "{e}");
    let other = tracker.start_run("study-mrpc", "not-a-parent").unwrap();
    let e = s.run_worker(other.run_id(), None, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("parent-run"), "{e}");
}
