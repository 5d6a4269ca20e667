//! The `run` and `study` commands' checks that need no training: a missing model or GLUE split
//! is a clear error naming the fetch command, before any run is created; `study --dry-run`
//! prints the plan with exact MiniLM budgets (from the model's config.json alone).

use std::path::Path;
use std::process::Command;

fn heterolora() -> Command {
    Command::new(env!("CARGO_BIN_EXE_heterolora"))
}

#[test]
fn run_without_the_model_names_the_fetch_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = heterolora()
        .current_dir(dir.path())
        .args(["run", "--task", "mrpc", "--tracking-uri"])
        .arg(dir.path().join("mlflow.db"))
        .env("HETEROLORA_MODEL_DIR", dir.path().join("no-model"))
        .env("HETEROLORA_GLUE_DIR", dir.path().join("no-glue"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("heterolora fetch model"), "{err}");
    // Nothing was tracked for a run that could not start.
    assert!(!dir.path().join("mlflow.db").exists(), "{err}");
}

#[test]
fn run_without_the_data_names_the_glue_fetch_command() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/models/all-MiniLM-L6-v2");
    let model = std::env::var_os("HETEROLORA_MODEL_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or(model);
    assert!(
        model.join("config.json").is_file(),
        "this test needs the model: run `heterolora fetch model all-MiniLM-L6-v2` (or set HETEROLORA_MODEL_DIR)"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = heterolora()
        .current_dir(dir.path())
        .args(["run", "--task", "rte", "--tracking-uri"])
        .arg(dir.path().join("mlflow.db"))
        .env("HETEROLORA_MODEL_DIR", &model)
        .env("HETEROLORA_GLUE_DIR", dir.path().join("no-glue"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("heterolora fetch glue rte"), "{err}");

    // The default plan: the four core methods on seeds 0-4 under cpu6, named after the task.
    let text = dry_run(dir.path(), &model, &[]);
    assert!(text.contains("study `mrpc` on mrpc"), "{text}");
    assert!(text.contains("protocol cpu6: 6 epochs"), "{text}");
    assert!(text.contains("20 children, 0 already finished"), "{text}");
    for method in [
        "uniform-r2",
        "static-grad-norm",
        "random",
        "dynamic-grad-norm",
    ] {
        let line = plan_line(&text, method);
        assert!(
            line.contains("18432") && line.ends_with("0 1 2 3 4"),
            "{line}"
        );
    }
    assert!(!text.contains("uniform-r8"), "{text}");

    // The dry run needs only config.json: exact budgets of the first study's 12-method list.
    let text = dry_run(dir.path(), &model, &["--protocol", "cpu", "--seeds", "0"]);
    assert!(text.contains("12 children, 0 already finished"), "{text}");
    for (method, budget) in [
        ("uniform-r2", "18432"),
        ("static-grad-norm", "18432"),
        ("uniform-r8", "73728"),
        ("sc-uniform-r2", "53760"),
        ("sc-dynamic-combined", "55296"),
    ] {
        let line = plan_line(&text, method);
        assert!(line.contains(budget), "{line}");
    }
}

/// `heterolora study --task mrpc --dry-run` with `extra` arguments, in `dir` with only the model;
/// its stdout (the plan). Fails on a non-zero exit.
fn dry_run(dir: &Path, model: &Path, extra: &[&str]) -> String {
    let out = heterolora()
        .current_dir(dir)
        .args(["study", "--task", "mrpc", "--dry-run"])
        .args(extra)
        .arg("--tracking-uri")
        .arg(dir.join("mlflow.db"))
        .env("HETEROLORA_MODEL_DIR", model)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The plan's line of `method`.
fn plan_line<'t>(plan: &'t str, method: &str) -> &'t str {
    plan.lines()
        .find(|l| l.trim_start().starts_with(&format!("{method} ")))
        .unwrap_or_else(|| panic!("{method} missing from\n{plan}"))
}
