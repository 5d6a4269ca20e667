//! Fetch on first use: the commands that need the model and a GLUE task (`run`, `train`,
//! `score`, `search --proxy`, `study`, `bench train`) fetch what is missing from the default
//! locations themselves, so that `cargo run -- run --task mrpc` works on a fresh machine.
//!
//! The decision is [`plan`]: a folder the user named (`--model` / `--glue`, or
//! `HETEROLORA_MODEL_DIR` / `HETEROLORA_GLUE_DIR`) is used as it is and never written to; the
//! default folder under the datasets root is fetched into when its required files are missing.
//! The fetching is the code behind `heterolora fetch model` and `heterolora fetch glue <TASK>`
//! (pinned sources, every file verified), so an automatic fetch and a manual one leave the same
//! folder.

use super::manifest::{glue_manifest, model_spec};
use super::{
    datasets_root, fetch_glue, fetch_model, resolve_glue_dir, resolve_model_dir, GlueFetchOptions,
    ModelFetchOptions, DEFAULT_MODEL, GLUE_DIR_ENV, MODEL_DIR_ENV,
};
use crate::data::Task;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// What a command does about one asset folder before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssetPlan {
    /// The user named this folder: it is used as it is, whatever it holds (a missing file fails
    /// later with the file's name), and nothing is fetched into it.
    Given(PathBuf),
    /// The default folder holds every required file.
    Ready(PathBuf),
    /// The default folder is missing or incomplete: fetch into it first.
    Fetch(PathBuf),
}

impl AssetPlan {
    /// The folder the command reads, whatever the plan.
    pub fn dir(&self) -> &Path {
        match self {
            AssetPlan::Given(d) | AssetPlan::Ready(d) | AssetPlan::Fetch(d) => d,
        }
    }
}

/// The decision: a user-named folder wins and is never fetched into; otherwise the default
/// folder is fetched into unless `complete` says it is whole.
pub fn plan(
    given: Option<PathBuf>,
    default: PathBuf,
    complete: impl Fn(&Path) -> bool,
) -> AssetPlan {
    match given {
        Some(d) => AssetPlan::Given(d),
        None if complete(&default) => AssetPlan::Ready(default),
        None => AssetPlan::Fetch(default),
    }
}

/// Whether `dir` holds the model's required files (existence only: fetching verified them, and
/// hashing 90 MB at every start would cost more than it protects).
pub fn model_complete(name: &str, dir: &Path) -> bool {
    let required = model_spec(name).map(|s| s.required).unwrap_or_else(|_| {
        ["model.safetensors", "config.json", "tokenizer.json"]
            .map(String::from)
            .to_vec()
    });
    required.iter().all(|f| dir.join(f).is_file())
}

/// Whether the GLUE root `glue` holds every required file of `task` (existence only).
pub fn glue_complete(task: Task, glue: &Path) -> bool {
    let dir = glue.join(task.dir_name());
    glue_manifest()
        .files_for(task)
        .iter()
        .filter(|f| f.required)
        .all(|f| dir.join(&f.file).is_file())
}

fn env_set(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty())
}

/// The plan for model `name`: given when `explicit` is set or `HETEROLORA_MODEL_DIR` applies.
pub fn plan_model(explicit: Option<&Path>, name: &str) -> AssetPlan {
    let resolved = resolve_model_dir(explicit, name);
    let default = datasets_root().join("models").join(short_name(name));
    let given =
        (explicit.is_some() || (env_set(MODEL_DIR_ENV) && resolved != default)).then_some(resolved);
    plan(given, default, |d| model_complete(name, d))
}

/// The plan for `task`'s GLUE folder: given when `explicit` or `HETEROLORA_GLUE_DIR` is set.
pub fn plan_glue(explicit: Option<&Path>, task: Task) -> AssetPlan {
    let given = (explicit.is_some() || env_set(GLUE_DIR_ENV)).then(|| resolve_glue_dir(explicit));
    plan(given, datasets_root().join("glue"), |d| {
        glue_complete(task, d)
    })
}

fn short_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// Carries out `plan`: calls `fetch` only for [`AssetPlan::Fetch`], after printing `announce`
/// on stderr, and returns the folder to read.
pub fn ensure_with(
    plan: AssetPlan,
    announce: &str,
    fetch: impl FnOnce() -> Result<()>,
) -> Result<PathBuf> {
    if let AssetPlan::Fetch(_) = &plan {
        eprintln!("{announce}");
        fetch()?;
    }
    Ok(plan.dir().to_path_buf())
}

/// The model folder to read, fetching model `name` into `<datasets>/models/<name>/` first when
/// no folder was named and the default one is incomplete (the code of `heterolora fetch model`).
pub fn ensure_model(explicit: Option<&Path>, name: &str) -> Result<PathBuf> {
    let plan = plan_model(explicit, name);
    let announce = format!(
        "heterolora: fetching model {name} into {} (first use; pinned sources, sha256-verified)",
        plan.dir().display()
    );
    let models_root = plan
        .dir()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| datasets_root().join("models"));
    ensure_with(plan, &announce, || {
        let opts = ModelFetchOptions {
            models_root,
            progress: true,
            ..ModelFetchOptions::default()
        };
        let report = fetch_model(name, &opts).map_err(|e| Error::Asset {
            what: format!("fetching model {name} on first use"),
            reason: e.to_string(),
            hint: format!(
                "Or pass --model DIR (or set {MODEL_DIR_ENV}) to read a model folder as it is"
            ),
        })?;
        eprintln!("{report}");
        Ok(())
    })
}

/// The GLUE root to read, fetching `task` into `<datasets>/glue/<TASK>/` first when no folder
/// was named and the default one lacks it (the code of `heterolora fetch glue <TASK>`: the
/// official download, every file checked against `datasets/manifests/glue.json`).
pub fn ensure_glue(explicit: Option<&Path>, task: Task) -> Result<PathBuf> {
    let plan = plan_glue(explicit, task);
    let announce = format!(
        "heterolora: fetching GLUE {} into {} (first use; official download, checksums verified)",
        task.name(),
        plan.dir().join(task.dir_name()).display()
    );
    let dest = plan.dir().to_path_buf();
    ensure_with(plan, &announce, || {
        let opts = GlueFetchOptions {
            dest,
            // No folder was named (else the plan is Given): the source is the download.
            from: None,
            progress: true,
            ..GlueFetchOptions::default()
        };
        let reports = fetch_glue(&[task], &opts).map_err(|e| Error::Asset {
            what: format!("fetching GLUE {} on first use", task.name()),
            reason: e.to_string(),
            hint: format!(
                "Offline: `heterolora fetch glue {} --from DIR` copies it from a GLUE folder \
                 holding {}/, or pass --glue DIR (or set {GLUE_DIR_ENV}) to read such a folder \
                 as it is",
                task.name(),
                task.dir_name()
            ),
        })?;
        for r in &reports {
            eprintln!("{r}");
        }
        Ok(())
    })
}

/// [`ensure_model`] for the default model and, when `task` is given, [`ensure_glue`].
pub fn ensure_assets(
    model: Option<&Path>,
    glue: Option<&Path>,
    task: Option<Task>,
) -> Result<(PathBuf, Option<PathBuf>)> {
    let model = ensure_model(model, DEFAULT_MODEL)?;
    let glue = task.map(|t| ensure_glue(glue, t)).transpose()?;
    Ok((model, glue))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn touch(dir: &Path, files: &[&str]) {
        std::fs::create_dir_all(dir).unwrap();
        for f in files {
            std::fs::write(dir.join(f), b"x").unwrap();
        }
    }

    #[test]
    fn a_named_folder_is_used_as_it_is_and_never_fetched_into() {
        let tmp = tempfile::tempdir().unwrap();
        let named = tmp.path().join("mine");
        let default = tmp.path().join("models").join(DEFAULT_MODEL);
        // Even an empty or missing named folder is not fetched into.
        let p = plan(Some(named.clone()), default, |d| {
            model_complete(DEFAULT_MODEL, d)
        });
        assert_eq!(p, AssetPlan::Given(named.clone()));
        let called = Cell::new(false);
        let dir = ensure_with(p, "fetching", || {
            called.set(true);
            Ok(())
        })
        .unwrap();
        assert_eq!(dir, named);
        assert!(!called.get(), "a named folder must not be fetched into");
    }

    #[test]
    fn a_missing_default_model_is_fetched_and_a_complete_one_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let default = tmp.path().join("models").join(DEFAULT_MODEL);
        let complete = |d: &Path| model_complete(DEFAULT_MODEL, d);

        let p = plan(None, default.clone(), complete);
        assert_eq!(p, AssetPlan::Fetch(default.clone()));
        let calls = Cell::new(0);
        let dir = ensure_with(p, "fetching", || {
            calls.set(calls.get() + 1);
            touch(
                &default,
                &["model.safetensors", "config.json", "tokenizer.json"],
            );
            Ok(())
        })
        .unwrap();
        assert_eq!((dir, calls.get()), (default.clone(), 1));

        // Second start: everything is there, nothing is fetched.
        let p = plan(None, default.clone(), complete);
        assert_eq!(p, AssetPlan::Ready(default.clone()));
        ensure_with(p, "fetching", || panic!("must not fetch")).unwrap();

        // An incomplete folder (no weights) is fetched into again.
        std::fs::remove_file(default.join("model.safetensors")).unwrap();
        assert_eq!(
            plan(None, default.clone(), complete),
            AssetPlan::Fetch(default)
        );
    }

    #[test]
    fn glue_is_fetched_per_task_and_a_fetch_failure_propagates() {
        let tmp = tempfile::tempdir().unwrap();
        let glue = tmp.path().join("glue");
        touch(&glue.join("MRPC"), &["train.tsv", "dev.tsv", "test.tsv"]);
        let p = plan(None, glue.clone(), |d| glue_complete(Task::Mrpc, d));
        assert_eq!(p, AssetPlan::Ready(glue.clone()));
        // MRPC is there, RTE is not: only RTE is fetched.
        let p = plan(None, glue.clone(), |d| glue_complete(Task::Rte, d));
        assert_eq!(p, AssetPlan::Fetch(glue.clone()));
        let err = ensure_with(p, "fetching", || {
            Err(Error::Asset {
                what: "GLUE RTE".into(),
                reason: "offline".into(),
                hint: "Run `heterolora fetch glue rte --from DIR`".into(),
            })
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("heterolora fetch glue rte"),
            "{err}"
        );
    }

    #[test]
    fn explicit_folders_plan_as_given_through_the_public_functions() {
        let tmp = tempfile::tempdir().unwrap();
        let p = plan_model(Some(tmp.path()), DEFAULT_MODEL);
        assert_eq!(p, AssetPlan::Given(tmp.path().to_path_buf()));
        let p = plan_glue(Some(tmp.path()), Task::Mrpc);
        assert_eq!(p, AssetPlan::Given(tmp.path().to_path_buf()));
        // ensure_* with a named folder returns it without touching the network or the disk.
        assert_eq!(
            ensure_model(Some(tmp.path()), DEFAULT_MODEL).unwrap(),
            tmp.path()
        );
        assert_eq!(
            ensure_glue(Some(tmp.path()), Task::Rte).unwrap(),
            tmp.path()
        );
    }
}
