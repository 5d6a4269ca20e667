//! `heterolora score --format json|csv` on the real model and MRPC (needs `heterolora fetch`):
//! stdout is one document, the notes go to stderr.

use std::process::Command;

#[test]
fn score_prints_json_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let run = |format: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_heterolora"))
            .args([
                "score",
                "--task",
                "mrpc",
                "--proxy",
                "grad-norm",
                "--space",
                "v",
            ])
            .args([
                "--batches",
                "1",
                "--batch-size",
                "4",
                "--max-len",
                "32",
                "--no-track",
            ])
            .args(["--format", format, "--out"])
            .arg(dir.path().join("scores.json"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{stdout}\n{stderr}");
        (stdout, stderr)
    };
    let (stdout, stderr) = run("json");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(v["scores"][0]["proxy"], "grad-norm");
    assert_eq!(v["scores"][0]["values"].as_object().unwrap().len(), 6);
    assert!(v["run_id"].is_null());
    assert!(stderr.contains("wrote"), "{stderr}");
    let (stdout, _) = run("csv");
    assert!(
        stdout.starts_with("proxy,slot,score\ngrad-norm,"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 7, "{stdout}");
}
