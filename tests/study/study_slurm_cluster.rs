//! A two-child study through a real Slurm: a single-node cluster started on this machine from
//! Debian's packages (`scripts/slurm-local.sh`, which installs slurm-wlm and munge when it runs as
//! root with apt), the array submitted with `sbatch --wait`, then the report job.
//!
//! Set `HETEROLORA_TEST_SLURM=0` to leave this test out on a machine where Slurm cannot be
//! installed (it then passes without running and says so).

use heterolora::tracking::Tracker;
use std::path::{Path, PathBuf};
use std::process::Command;

fn asset(env: &str, rel: &str) -> PathBuf {
    std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
}

fn slurm_conf() -> String {
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm-local.sh"))
        .arg("start")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "could not start a local Slurm (scripts/slurm-local.sh start); set HETEROLORA_TEST_SLURM=0 \
         to leave this test out where Slurm cannot be installed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_study_runs_as_a_slurm_job_array() {
    if std::env::var("HETEROLORA_TEST_SLURM").as_deref() == Ok("0") {
        eprintln!("HETEROLORA_TEST_SLURM=0: the Slurm cluster test is left out");
        return;
    }
    let conf = slurm_conf();
    let dir = tempfile::tempdir().unwrap();
    let slurm = dir.path().join("slurm");
    let db = dir.path().join("mlflow.db");
    let out = Command::new(env!("CARGO_BIN_EXE_heterolora"))
        .current_dir(dir.path())
        .env(
            "HETEROLORA_MODEL_DIR",
            asset("HETEROLORA_MODEL_DIR", "datasets/models/all-MiniLM-L6-v2"),
        )
        .env(
            "HETEROLORA_GLUE_DIR",
            asset("HETEROLORA_GLUE_DIR", "datasets/glue"),
        )
        .env_remove("MLFLOW_TRACKING_URI")
        .args([
            "study",
            "--task",
            "mrpc",
            "--methods",
            "uniform-r2,random",
            "--seeds",
            "0",
            "--name",
            "slurm-smoke",
            "--limit-train",
            "32",
            "--epochs",
            "1",
            "--max-len",
            "32",
            "--emit",
            "slurm",
            "--cpus-per-task",
            "1",
            "--mem",
            "3G",
            "--time",
            "00:15:00",
        ])
        .arg("--tracking-uri")
        .arg(&db)
        .arg("--results")
        .arg(dir.path().join("results"))
        .arg("--slurm-dir")
        .arg(&slurm)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let sbatch = |script: &str| {
        let out = Command::new("sbatch")
            .env("SLURM_CONF", &conf)
            .env(
                "HETEROLORA_MODEL_DIR",
                asset("HETEROLORA_MODEL_DIR", "datasets/models/all-MiniLM-L6-v2"),
            )
            .env(
                "HETEROLORA_GLUE_DIR",
                asset("HETEROLORA_GLUE_DIR", "datasets/glue"),
            )
            .env_remove("MLFLOW_TRACKING_URI")
            .arg("--wait")
            .arg(slurm.join(script))
            .output()
            .unwrap();
        let logs: Vec<String> = std::fs::read_dir(slurm.join("logs"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| {
                        format!(
                            "== {}\n{}",
                            e.path().display(),
                            std::fs::read_to_string(e.path()).unwrap_or_default()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            out.status.success(),
            "sbatch --wait {script}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            logs.join("\n")
        );
        logs
    };
    let logs = sbatch("study.sbatch");
    // One log per array task, each training exactly one child.
    let task_logs: Vec<&String> = logs.iter().filter(|l| l.contains("-train-")).collect();
    assert_eq!(task_logs.len(), 2, "{logs:?}");
    for l in &task_logs {
        assert_eq!(l.matches(" finished: best").count(), 1, "{l}");
    }
    let t = Tracker::open_path(&db).unwrap();
    for key in ["slurm-smoke/uniform-r2/seed0", "slurm-smoke/random/seed0"] {
        let st = t
            .search_runs(&["study-mrpc"], &format!("tags.`study.key` = '{key}'"), &[])
            .unwrap()
            .strings("status");
        assert_eq!(
            st.iter()
                .filter(|s| s.as_deref() == Some("FINISHED"))
                .count(),
            1,
            "{key}: {st:?}"
        );
    }
    let parent = t
        .search_runs(&["study-mrpc"], "tags.`heterolora.kind` = 'study'", &[])
        .unwrap();
    assert_eq!(parent.strings("status"), vec![Some("FINISHED".to_string())]);

    sbatch("report.sbatch");
    assert!(dir.path().join("results/table.md").is_file());
}
