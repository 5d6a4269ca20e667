//! `heterolora search` end to end: the binary reads a scores file, writes an allocation, prints
//! its table, and fails with a clear message on bad input.

use heterolora::adapters::SearchSpace;
use heterolora::proxy::Scores;
use heterolora::search::Allocation;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_heterolora"))
}

#[test]
fn search_writes_an_allocation_and_rejects_bad_budgets() {
    let dir = tempfile::tempdir().unwrap();
    let slots = SearchSpace::lora_qv_shortcuts().slots(6);
    let scores = Scores {
        proxy: "grad-norm".into(),
        values: slots
            .iter()
            .enumerate()
            .map(|(i, s)| (*s, (i % 7) as f64 + 0.5))
            .collect(),
        rank_gains: None,
        num_batches: 32,
        seconds: 0.5,
    };
    let sp = dir.path().join("scores.json");
    scores.save(&sp).unwrap();
    let out = dir.path().join("alloc.json");
    let o = bin()
        .args(["search", "--scores"])
        .arg(&sp)
        .args([
            "--method",
            "heterogeneous",
            "--budget",
            "uniform:r=2",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.starts_with("heterogeneous on grad-norm"), "{stdout}");
    assert!(
        stdout.contains("uniform r=2 on the same candidates"),
        "{stdout}"
    );
    let a = Allocation::load(&out).unwrap();
    assert!(a.trainable_params() <= 35 * 2 * 768);
    assert_eq!(a.method, "heterogeneous");

    let o = bin()
        .args(["search", "--scores"])
        .arg(&sp)
        .args(["--method", "heterogeneous", "--budget", "700", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("700") && err.contains("rank-1") && err.contains("768"),
        "{err}"
    );
}

/// `--format json|csv`: one document on stdout, the notes on stderr.
#[test]
fn search_prints_json_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let slots = SearchSpace::lora_qv().slots(6);
    let scores = Scores {
        proxy: "grad-norm".into(),
        values: slots
            .iter()
            .enumerate()
            .map(|(i, s)| (*s, i as f64))
            .collect(),
        rank_gains: None,
        num_batches: 32,
        seconds: 0.5,
    };
    let sp = dir.path().join("scores.json");
    scores.save(&sp).unwrap();
    let out = dir.path().join("alloc.json");
    let run = |format: &str| {
        let o = bin()
            .args(["search", "--method", "topk", "--format", format, "--scores"])
            .arg(&sp)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{stdout}\n{stderr}");
        (stdout, stderr)
    };
    let (stdout, stderr) = run("json");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(v["allocation"]["method"], "topk");
    assert_eq!(v["summary"]["enabled"], 3);
    assert!(stderr.contains("wrote"), "{stderr}");
    let (stdout, _) = run("csv");
    assert!(stdout.starts_with("slot,r,lora_alpha\n"), "{stdout}");
    assert_eq!(stdout.lines().count(), 13, "{stdout}");
    assert_eq!(
        stdout.lines().filter(|l| l.contains(",8,")).count(),
        3,
        "{stdout}"
    );
}
