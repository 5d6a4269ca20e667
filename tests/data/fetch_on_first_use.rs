//! Fetch on first use, through the binary and offline: a complete default folder is used without
//! fetching, and a named folder is never fetched into (a missing file there is an error naming
//! it). The fetch itself is `heterolora fetch`'s code, tested in fetch_model.rs / fetch_glue.rs;
//! the decision is unit-tested in src/assets/ensure.rs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary in `cwd` with a datasets root of its own and no folder named by the environment.
fn heterolora(cwd: &Path, data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_heterolora"));
    c.current_dir(cwd)
        .env("HETEROLORA_DATA_DIR", data)
        .env_remove("HETEROLORA_MODEL_DIR")
        .env_remove("HETEROLORA_GLUE_DIR");
    c
}

fn real_model() -> PathBuf {
    let dir = std::env::var_os("HETEROLORA_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/models/all-MiniLM-L6-v2")
        });
    assert!(
        dir.join("config.json").is_file(),
        "this test needs the model: run `bash scripts/test.sh` or `heterolora fetch model`"
    );
    dir
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_complete_default_model_folder_is_used_without_fetching() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("datasets");
    let model = data.join("models/all-MiniLM-L6-v2");
    std::fs::create_dir_all(&model).unwrap();
    for entry in std::fs::read_dir(real_model()).unwrap() {
        let entry = entry.unwrap();
        std::os::unix::fs::symlink(entry.path(), model.join(entry.file_name())).unwrap();
    }
    let out = heterolora(tmp.path(), &data)
        .args(["study", "--task", "mrpc", "--dry-run", "--seeds", "0"])
        .arg("--tracking-uri")
        .arg(tmp.path().join("mlflow.db"))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("fetching"), "nothing to fetch, yet: {err}");
}

#[test]
fn named_folders_are_read_as_they_are_and_never_fetched_into() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("datasets");
    let (model, glue) = (tmp.path().join("my-model"), tmp.path().join("my-glue"));
    std::fs::create_dir_all(&model).unwrap();
    std::fs::create_dir_all(&glue).unwrap();
    let out = heterolora(tmp.path(), &data)
        .args(["run", "--task", "mrpc", "--model"])
        .arg(&model)
        .arg("--glue")
        .arg(&glue)
        .arg("--tracking-uri")
        .arg(tmp.path().join("mlflow.db"))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(!err.contains("fetching"), "{err}");
    assert!(
        err.contains("config.json"),
        "the error names the missing file: {err}"
    );
    assert!(
        err.contains("--model DIR"),
        "the error says what to do: {err}"
    );
    // Nothing was fetched: neither the default folders nor the named ones were written.
    assert!(!data.exists(), "{}", data.display());
    assert_eq!(std::fs::read_dir(&model).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(&glue).unwrap().count(), 0);
}
