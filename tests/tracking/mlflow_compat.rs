//! The real MLflow opens a store we wrote and sees the same runs, params, metrics, histories and
//! artifacts; after MLflow has upgraded the file in place, our code still reads and writes it.
//!
//! Needs a Python with mlflow: `.venv/bin/python` (what `.ci/run` makes from
//! `scripts/requirements-ci.txt`) or the interpreter named by `HETEROLORA_PYTHON`. The checks on
//! the Python side are in `tests/mlflow_check.py`; the store is written by the same code as
//! `cargo run --example mlflow_fixture`.

#[allow(dead_code)]
use crate::fixture;

use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> PathBuf {
    match std::env::var_os("HETEROLORA_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    }
}

fn mlflow_check(py: &Path, db: &Path, after_recheck: bool) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mlflow_check.py");
    let mut cmd = Command::new(py);
    cmd.arg(&script);
    if after_recheck {
        cmd.arg("--after-recheck");
    }
    let out = cmd.arg(db).output().expect("run tests/mlflow_check.py");
    assert!(
        out.status.success(),
        "tests/mlflow_check.py{} failed:\n{}\n{}",
        if after_recheck {
            " --after-recheck"
        } else {
            ""
        },
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn mlflow_reads_our_store_and_we_keep_working_on_its_upgrade() {
    let py = python();
    let has_mlflow = Command::new(&py)
        .args(["-c", "import mlflow"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        has_mlflow,
        "{} cannot import mlflow. Make the test environment with \
         `python3 -m venv .venv && .venv/bin/pip install -r scripts/requirements-ci.txt` \
         (as .ci/run does), or point HETEROLORA_PYTHON at a Python that has mlflow",
        py.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mlflow.db");
    fixture::write(&db).unwrap();
    mlflow_check(&py, &db, false);
    fixture::recheck(&db).unwrap();
    mlflow_check(&py, &db, true);
}
