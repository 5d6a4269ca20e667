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
    let (ok, _, err) = heterolora(&db, &["export", "--output", "/tmp/runs.xlsx"]);
    assert!(!ok && err.contains(".csv or .parquet"), "{err}");
}
