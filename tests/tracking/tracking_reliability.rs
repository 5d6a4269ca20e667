//! Reliability: several processes writing one store at once, and a writer killed with SIGKILL.
//!
//! The child processes are this test binary itself, re-run with `HL_TRACKER_ROLE` naming what it
//! should do (`helper_process_role` is a no-op in a normal test run).

use heterolora::tracking::{FlushPolicy, RunStatus, Tracker};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

const ROLE: &str = "HL_TRACKER_ROLE";
const DB: &str = "HL_TRACKER_DB";
const WRITER: &str = "HL_TRACKER_WRITER";
const POINTS: i64 = 1000;

fn child(role: &str, db: &Path, writer: usize) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        // The full test path: this file is a module of the `tracking` test binary.
        concat!(module_path!(), "::helper_process_role")
            .split_once("::")
            .unwrap()
            .1,
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ROLE, role)
    .env(DB, db)
    .env(WRITER, writer.to_string());
    c
}

/// The child side. Roles: `writer` (1,000 points, each in its own transaction, then FINISHED)
/// and `endless` (writes forever, printing `committed <n>` after each flush, until killed).
#[test]
fn helper_process_role() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let db = std::env::var(DB).unwrap();
    let w: usize = std::env::var(WRITER).unwrap().parse().unwrap();
    let t = Tracker::open_path(Path::new(&db)).unwrap();
    let mut run = t.start_run("reliability", &format!("writer-{w}")).unwrap();
    run.log_param("writer", w).unwrap();
    match role.as_str() {
        "writer" => {
            // The worst case for lock contention: every point is its own write transaction.
            run.set_flush_policy(FlushPolicy::immediate());
            for step in 0..POINTS {
                run.log_metric("m", (w as i64 * POINTS + step) as f64, step)
                    .unwrap();
            }
            run.end(RunStatus::Finished).unwrap();
            println!("writer {w} done");
        }
        "endless" => {
            run.set_flush_policy(FlushPolicy {
                max_points: usize::MAX,
                max_interval: std::time::Duration::from_secs(3600),
            });
            let mut out = std::io::stdout();
            for step in 0.. {
                run.log_metric("m", step as f64, step).unwrap();
                if step % 50 == 49 {
                    run.flush().unwrap();
                    writeln!(out, "committed {}", step + 1).unwrap();
                    out.flush().unwrap();
                }
            }
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn four_processes_writing_at_once_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // The store does not exist yet: the four processes also race to create it.
    let db = dir.path().join("mlflow.db");
    let children: Vec<_> = (0..4)
        .map(|w| {
            child("writer", &db, w)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (w, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "writer {w} failed:\n{stdout}\n{stderr}"
        );
        assert!(
            !stderr.contains("locked") && !stdout.contains("locked"),
            "writer {w}: {stderr}"
        );
        assert!(
            stdout.contains(&format!("writer {w} done")),
            "writer {w}: {stdout}"
        );
    }
    let t = Tracker::open_path(&db).unwrap();
    let table = t
        .search_runs(&["reliability"], "", &["params.writer"])
        .unwrap();
    assert_eq!(table.len(), 4);
    assert_eq!(
        table.strings("status"),
        vec![Some("FINISHED".to_string()); 4]
    );
    for (w, id) in table.run_ids().iter().enumerate() {
        let h = t.metric_history(id, "m").unwrap();
        assert_eq!(h.len(), POINTS as usize, "writer {w} lost points");
        assert_eq!(h.steps(), (0..POINTS).collect::<Vec<_>>());
        let want: Vec<f64> = (0..POINTS)
            .map(|s| (w as i64 * POINTS + s) as f64)
            .collect();
        assert_eq!(h.values(), want);
        assert_eq!(t.get_run(id).unwrap().metrics["m"].step, POINTS - 1);
    }
    // Exactly one experiment was created despite the race.
    let n = t
        .list_experiments()
        .unwrap()
        .iter()
        .filter(|e| e.name == "reliability")
        .count();
    assert_eq!(n, 1);
}

#[test]
fn a_writer_killed_mid_run_leaves_a_usable_file_with_every_committed_point() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mlflow.db");
    let mut c = child("endless", &db, 7)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut committed = 0usize;
    let mut lines = BufReader::new(c.stdout.take().unwrap()).lines();
    while committed < 2000 {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(n) = line.strip_prefix("committed ") {
                    committed = n.trim().parse().unwrap();
                }
            }
            _ => panic!("writer exited before it was killed (after {committed} points)"),
        }
    }
    c.kill().unwrap(); // SIGKILL on unix: no destructor, no flush, possibly mid-transaction
    let status = c.wait().unwrap();
    assert!(!status.success());

    let conn = rusqlite::Connection::open(&db).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    drop(conn);
    let t = Tracker::open_path(&db).unwrap();
    let table = t.search_runs(&["reliability"], "", &[]).unwrap();
    assert_eq!(table.len(), 1);
    // The process could not mark its run: it stays RUNNING (visible as such in MLflow).
    assert_eq!(table.strings("status"), vec![Some("RUNNING".to_string())]);
    let id = &table.run_ids()[0];
    let h = t.metric_history(id, "m").unwrap();
    assert!(
        h.len() >= committed,
        "only {} of {committed} committed points survived",
        h.len()
    );
    assert_eq!(h.len() % 50, 0, "a batch was half-written");
    assert_eq!(h.steps(), (0..h.len() as i64).collect::<Vec<_>>());
    // The file stays writable: mark the orphan and keep logging elsewhere.
    t.set_terminated(id, RunStatus::Failed).unwrap();
    let mut r = t.start_run("reliability", "after-crash").unwrap();
    r.log_metric("m", 1.0, 0).unwrap();
    r.end(RunStatus::Finished).unwrap();
    assert_eq!(t.get_run(id).unwrap().info.status, "FAILED");
}
