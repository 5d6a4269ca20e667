//! `heterolora study --jobs N` and `--emit slurm` on the real model with a smoke protocol (32
//! training examples, one epoch, 32 tokens): every child trained exactly once, the parent closed,
//! the Slurm scripts valid with one child per array task, run here through bash as Slurm would.

use heterolora::tracking::Tracker;
use std::path::{Path, PathBuf};
use std::process::Command;

fn heterolora() -> Command {
    Command::new(env!("CARGO_BIN_EXE_heterolora"))
}

fn asset(env: &str, rel: &str) -> PathBuf {
    let p = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(rel));
    assert!(
        p.is_dir(),
        "this test needs {} (run `bash scripts/test.sh`, which fetches it, or set {env})",
        p.display()
    );
    p
}

/// The smoke study's options, logging to `dir`.
fn study_args(dir: &Path) -> Vec<String> {
    [
        "study",
        "--task",
        "mrpc",
        "--methods",
        "uniform-r2,random",
        "--seeds",
        "0",
        "--name",
        "smoke",
        "--limit-train",
        "32",
        "--epochs",
        "1",
        "--max-len",
        "32",
        "--claim-settle-ms",
        "100",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        "--tracking-uri".into(),
        dir.join("mlflow.db").display().to_string(),
        "--results".into(),
        dir.join("results").display().to_string(),
    ])
    .collect()
}

fn cmd(dir: &Path) -> Command {
    let mut c = heterolora();
    c.current_dir(dir)
        .env(
            "HETEROLORA_MODEL_DIR",
            asset("HETEROLORA_MODEL_DIR", "datasets/models/all-MiniLM-L6-v2"),
        )
        .env(
            "HETEROLORA_GLUE_DIR",
            asset("HETEROLORA_GLUE_DIR", "datasets/glue"),
        )
        .env_remove("MLFLOW_TRACKING_URI");
    c
}

fn ok(out: std::process::Output) -> (String, String) {
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "status {:?}\n{o}\n{e}", out.status);
    (o, e)
}

/// Statuses of the runs of child `key`.
fn statuses(dir: &Path, key: &str) -> Vec<String> {
    let t = Tracker::open_path(&dir.join("mlflow.db")).unwrap();
    t.search_runs(&["study-mrpc"], &format!("tags.`study.key` = '{key}'"), &[])
        .unwrap()
        .strings("status")
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect()
}

fn parent_status(dir: &Path) -> String {
    let t = Tracker::open_path(&dir.join("mlflow.db")).unwrap();
    let p = t
        .search_runs(&["study-mrpc"], "tags.`heterolora.kind` = 'study'", &[])
        .unwrap();
    assert_eq!(p.len(), 1, "one parent run");
    p.strings("status")[0].clone().unwrap_or_default()
}

fn finished(dir: &Path, key: &str) -> usize {
    statuses(dir, key)
        .iter()
        .filter(|s| *s == "FINISHED")
        .count()
}

#[test]
fn jobs_run_children_in_parallel_workers_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_, err) = ok(cmd(dir.path())
        .args(study_args(dir.path()))
        .args(["--jobs", "2"])
        .output()
        .unwrap());
    assert!(err.contains("2 worker(s)"), "{err}");
    assert!(err.contains("[w0] ") && err.contains("[w1] "), "{err}");
    for key in ["smoke/uniform-r2/seed0", "smoke/random/seed0"] {
        assert_eq!(finished(dir.path(), key), 1, "{key}: {err}");
    }
    assert_eq!(parent_status(dir.path()), "FINISHED");
    assert!(dir.path().join("results/table.md").is_file());

    // Nothing left: a second --jobs run trains nothing.
    let (_, err) = ok(cmd(dir.path())
        .args(study_args(dir.path()))
        .args(["--jobs", "2", "--no-report"])
        .output()
        .unwrap());
    for key in ["smoke/uniform-r2/seed0", "smoke/random/seed0"] {
        assert_eq!(statuses(dir.path(), key), vec!["FINISHED"], "{key}: {err}");
    }
}

#[test]
fn slurm_scripts_run_one_child_per_array_task() {
    let dir = tempfile::tempdir().unwrap();
    let slurm = dir.path().join("slurm");
    let (out, _) = ok(cmd(dir.path())
        .args(study_args(dir.path()))
        .args([
            "--emit",
            "slurm",
            "--cpus-per-task",
            "2",
            "--mem",
            "4G",
            "--time",
            "00:20:00",
        ])
        .arg("--slurm-dir")
        .arg(&slurm)
        .output()
        .unwrap());
    assert!(out.contains("2 array task(s)"), "{out}");
    let script = std::fs::read_to_string(slurm.join("study.sbatch")).unwrap();
    for line in [
        "#SBATCH --array=0-1",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --mem=4G",
        "#SBATCH --time=00:20:00",
    ] {
        assert!(script.lines().any(|l| l == line), "{line}:\n{script}");
    }
    for f in ["study.sbatch", "report.sbatch", "submit.sh"] {
        let st = Command::new("bash")
            .arg("-n")
            .arg(slurm.join(f))
            .status()
            .unwrap();
        assert!(st.success(), "bash -n {f}");
    }
    // Nothing trained yet; the parent is open for the tasks.
    assert_eq!(parent_status(dir.path()), "RUNNING");
    assert!(statuses(dir.path(), "smoke/uniform-r2/seed0").is_empty());

    let task = |i: Option<usize>| {
        let mut c = Command::new("bash");
        c.arg(slurm.join("study.sbatch"))
            .env_remove("MLFLOW_TRACKING_URI");
        if let Some(i) = i {
            c.env("SLURM_ARRAY_TASK_ID", i.to_string());
        }
        c.output().unwrap()
    };
    // Outside Slurm without a task id: a clear refusal.
    let out = task(None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SLURM_ARRAY_TASK_ID"));

    // Task 1 trains the second child of the plan, and only it; run again, it skips it.
    ok(task(Some(1)));
    assert_eq!(finished(dir.path(), "smoke/random/seed0"), 1);
    assert!(statuses(dir.path(), "smoke/uniform-r2/seed0").is_empty());
    let (_, err) = ok(task(Some(1)));
    assert!(
        err.contains("skipped as done") || err.contains("1 skipped"),
        "{err}"
    );
    assert_eq!(statuses(dir.path(), "smoke/random/seed0"), vec!["FINISHED"]);
    assert_eq!(parent_status(dir.path()), "RUNNING");

    // The last task closes the parent; the report job writes the tables.
    ok(task(Some(0)));
    assert_eq!(finished(dir.path(), "smoke/uniform-r2/seed0"), 1);
    assert_eq!(parent_status(dir.path()), "FINISHED");
    let out = Command::new("bash")
        .arg(slurm.join("report.sbatch"))
        .env_remove("MLFLOW_TRACKING_URI")
        .output()
        .unwrap();
    ok(out);
    assert!(dir.path().join("results/table.md").is_file());

    // A finished study has nothing to submit.
    let (out, _) = ok(cmd(dir.path())
        .args(study_args(dir.path()))
        .args(["--emit", "slurm"])
        .arg("--slurm-dir")
        .arg(&slurm)
        .output()
        .unwrap());
    assert!(out.contains("nothing to submit"), "{out}");
}

#[test]
fn worker_options_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let out = cmd(dir.path())
        .args(study_args(dir.path()))
        .args(["--jobs", "2", "--worker"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("give one of them"));
    let out = cmd(dir.path())
        .args(study_args(dir.path()))
        .args(["--emit", "pbs"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("only scheduler supported is `slurm`"));
    // A worker of a study that was never started names what to do.
    let out = cmd(dir.path())
        .args(study_args(dir.path()))
        .args(["--worker"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no parent run"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn stop_after_checkpoints_the_child_and_the_next_run_continues_it() {
    let dir = tempfile::tempdir().unwrap();
    // Batch 8 on 160 pairs for 2 epochs: 40 steps, far more than a second's work (loading the
    // model alone takes longer), so the time limit stops the child in training.
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = [
            "study",
            "--task",
            "mrpc",
            "--protocol",
            "paper",
            "--methods",
            "uniform-r2",
            "--seeds",
            "0",
            "--name",
            "smoke",
            "--limit-train",
            "160",
            "--epochs",
            "2",
            "--max-len",
            "32",
            "--no-report",
        ]
        .map(String::from)
        .to_vec();
        a.extend([
            "--tracking-uri".into(),
            dir.path().join("mlflow.db").display().to_string(),
            "--results".into(),
            dir.path().join("results").display().to_string(),
        ]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let out = cmd(dir.path())
        .args(args(&["--stop-after", "1s"]))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("time limit"), "{err}");
    let ckpt = dir.path().join("results/checkpoints/uniform-r2-seed0");
    assert!(ckpt.join("checkpoint/state.json").is_file(), "{err}");
    assert!(!dir
        .path()
        .join("results/children/uniform-r2-seed0.json")
        .exists());
    assert!(err.contains("stopped by request"), "{err}");
    // KILLED, or FAILED in a store whose schema predates KILLED (as MLflow creates them).
    let st = statuses(dir.path(), "smoke/uniform-r2/seed0");
    assert!(st == ["KILLED"] || st == ["FAILED"], "{st:?}");

    let (_, err) = ok(cmd(dir.path()).args(args(&[])).output().unwrap());
    let rec = heterolora::study::ChildRecord::load(
        &dir.path().join("results/children/uniform-r2-seed0.json"),
    )
    .unwrap();
    let at = rec
        .resumed_at_step
        .unwrap_or_else(|| panic!("not resumed: {err}"));
    assert!((1..40).contains(&at), "resumed at step {at}");
    assert_eq!(rec.epoch_metrics.len(), 2);
    assert!(!ckpt.exists(), "the finished child's checkpoint is removed");
}
