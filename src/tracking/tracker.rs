//! [`Tracker`]: an owned, cloneable handle on one store; [`Experiment`]: an owned handle on one
//! experiment. Both are cheap to clone and hold no borrows, so they live across notebook cells.

use super::entities::{now_ms, ExperimentInfo, MetricPoint, RunData, RunInfo};
use super::history::MetricHistory;
use super::run::Run;
use super::schema::SchemaInfo;
use super::store;
use crate::{Error, Result};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

struct Inner {
    path: PathBuf,
    artifact_root: PathBuf,
    schema: SchemaInfo,
    conn: Mutex<Connection>,
}

/// A handle on one tracker store (an MLflow SQLite file).
///
/// ```no_run
/// use heterolora::tracking::{Tracker, RunStatus};
/// let tracker = Tracker::open_default()?;               // tracking/mlflow.db or $MLFLOW_TRACKING_URI
/// let mut run = tracker.start_run("mrpc", "lora-r8")?;
/// run.log_param("r", 8)?;
/// run.log_metric("loss", 0.42, 1)?;
/// run.end(RunStatus::Finished)?;
/// let table = tracker.search_runs(&["mrpc"], "params.r = '8' and metrics.loss < 1", &["metrics.loss"])?;
/// # Ok::<(), heterolora::Error>(())
/// ```
#[derive(Clone)]
pub struct Tracker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("path", &self.inner.path)
            .field("revision", &self.inner.schema.revision)
            .finish()
    }
}

impl Tracker {
    /// Open or create the store at a path or `sqlite:///` URI.
    pub fn open(path_or_uri: impl AsRef<str>) -> Result<Tracker> {
        let path = super::uri::parse(path_or_uri.as_ref())?;
        Self::open_path(&path)
    }

    /// Open or create the store at a file path.
    pub fn open_path(path: &Path) -> Result<Tracker> {
        let (conn, schema, artifact_root) = store::open(path)?;
        Ok(Tracker {
            inner: Arc::new(Inner {
                path: super::uri::absolute(path),
                artifact_root,
                schema,
                conn: Mutex::new(conn),
            }),
        })
    }

    /// The store named by `MLFLOW_TRACKING_URI`, else `tracking/mlflow.db`.
    pub fn open_default() -> Result<Tracker> {
        Self::open_path(&super::uri::resolve(None)?)
    }

    /// `explicit` if given, else as [`Tracker::open_default`] (the command line's `--tracking-uri`).
    pub fn open_or_default(explicit: Option<&str>) -> Result<Tracker> {
        Self::open_path(&super::uri::resolve(explicit)?)
    }

    /// The SQLite file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The URI that `mlflow ui --backend-store-uri` takes.
    pub fn tracking_uri(&self) -> String {
        super::uri::to_uri(&self.inner.path)
    }

    /// Where new experiments keep their artifacts (`<db dir>/artifacts`).
    pub fn artifact_root(&self) -> &Path {
        &self.inner.artifact_root
    }

    /// Schema facts of the file (revision; whether MLflow upgraded it).
    pub fn schema(&self) -> &SchemaInfo {
        &self.inner.schema
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable (every write is one
        // transaction that SQLite rolled back), so a poisoned lock is recovered.
        self.inner.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn write<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        store::write(&mut self.conn(), f)
    }

    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        store::read(&mut self.conn(), f)
    }

    // ---- experiments ---------------------------------------------------------------------------

    /// The experiment called `name`, created if it does not exist (MLflow's `set_experiment`).
    pub fn experiment(&self, name: &str) -> Result<Experiment> {
        let schema = &self.inner.schema;
        let root = &self.inner.artifact_root;
        let info = self.write(|c| store::get_or_create_experiment(c, schema, root, name))?;
        Ok(Experiment {
            tracker: self.clone(),
            info,
        })
    }

    /// An existing experiment by name or id (`"3"`); an error if there is none.
    pub fn get_experiment(&self, name_or_id: &str) -> Result<Experiment> {
        let schema = &self.inner.schema;
        let info = self.read(|c| {
            if let Some(e) = store::experiment_by_name(c, schema, name_or_id)? {
                return Ok(Some(e));
            }
            match name_or_id.parse::<i64>() {
                Ok(id) => store::experiment_by_id(c, id),
                Err(_) => Ok(None),
            }
        })?;
        let info = info.ok_or_else(|| {
            let known = self
                .list_experiments()
                .map(|v| v.into_iter().map(|e| e.name).collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            Error::Tracking(format!(
                "no experiment named or numbered `{name_or_id}` in {} (experiments: {known})",
                self.inner.path.display()
            ))
        })?;
        Ok(Experiment {
            tracker: self.clone(),
            info,
        })
    }

    /// Active experiments, by id.
    pub fn list_experiments(&self) -> Result<Vec<ExperimentInfo>> {
        let schema = &self.inner.schema;
        self.read(|c| store::list_experiments(c, schema))
    }

    // ---- runs ----------------------------------------------------------------------------------

    /// Start a run in experiment `experiment` (created if needed) named `run_name` (a generated
    /// name if empty). The run logs until [`Run::end`]; dropped without it, it is marked FAILED.
    pub fn start_run(&self, experiment: &str, run_name: &str) -> Result<Run> {
        self.experiment(experiment)?.start_run(run_name)
    }

    /// Re-open an existing run to log more (MLflow's `start_run(run_id=...)`): status back to RUNNING.
    pub fn resume_run(&self, run_id: &str) -> Result<Run> {
        let run_id = self.resolve_run_id(run_id)?;
        let schema = &self.inner.schema;
        let info = self.write(|c| {
            let info = store::run_info(c, &run_id)?;
            if info.lifecycle_stage != "active" {
                return Err(Error::Tracking(format!(
                    "run {run_id} is deleted; restore it before logging"
                )));
            }
            store::set_status(c, schema, &run_id, "RUNNING", None)?;
            Ok(info)
        })?;
        Ok(Run::attach(self.clone(), info))
    }

    /// A run's attributes, params, latest metrics and tags. Accepts a unique id prefix.
    pub fn get_run(&self, run_id: &str) -> Result<RunData> {
        let run_id = self.resolve_run_id(run_id)?;
        self.read(|c| store::run_data(c, &run_id))
    }

    /// A run's attributes only.
    pub fn run_info(&self, run_id: &str) -> Result<RunInfo> {
        let run_id = self.resolve_run_id(run_id)?;
        self.read(|c| store::run_info(c, &run_id))
    }

    /// The nested runs of `run_id` (those tagged `mlflow.parentRunId = run_id`), oldest first.
    pub fn child_runs(&self, run_id: &str) -> Result<Vec<String>> {
        let run_id = self.resolve_run_id(run_id)?;
        self.read(|c| store::child_run_ids(c, &run_id))
    }

    /// Set a run's status from outside its handle (e.g. mark a crashed run's leftover RUNNING row).
    pub fn set_terminated(&self, run_id: &str, status: super::RunStatus) -> Result<()> {
        let run_id = self.resolve_run_id(run_id)?;
        let schema = &self.inner.schema;
        let end = (status != super::RunStatus::Running).then(now_ms);
        self.write(|c| store::set_status(c, schema, &run_id, status.as_str(), end))
    }

    /// Every point of metric `key` of run `run_id`, ordered by step.
    pub fn metric_history(&self, run_id: &str, key: &str) -> Result<MetricHistory> {
        let run_id = self.resolve_run_id(run_id)?;
        let (points, keys) = self.read(|c| {
            let p = store::metric_history(c, &run_id, key)?;
            let keys = if p.is_empty() {
                store::metric_keys(c, &run_id)?
            } else {
                vec![]
            };
            Ok((p, keys))
        })?;
        if points.is_empty() {
            return Err(Error::Tracking(format!(
                "run {run_id} has no metric `{key}` (its metrics: {})",
                if keys.is_empty() {
                    "none".to_string()
                } else {
                    keys.join(", ")
                }
            )));
        }
        Ok(MetricHistory::new(run_id, key.to_string(), points))
    }

    /// The raw points of a metric (empty if never logged).
    pub fn metric_points(&self, run_id: &str, key: &str) -> Result<Vec<MetricPoint>> {
        self.read(|c| store::metric_history(c, run_id, key))
    }

    /// Files under a run's artifact directory, relative paths, sorted.
    pub fn list_artifacts(&self, run_id: &str) -> Result<Vec<String>> {
        let info = self.run_info(run_id)?;
        let dir = super::artifacts::local_dir(&info.artifact_uri)?;
        super::artifacts::list(&dir)
    }

    /// A full run id from an id or a unique prefix of at least 4 characters.
    pub fn resolve_run_id(&self, id: &str) -> Result<String> {
        let id = id.trim();
        if id.len() == 32 {
            return Ok(id.to_string());
        }
        if id.len() < 4 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::Tracking(format!(
                "`{id}` is not a run id: give the 32-hex-digit id or a unique prefix of at least 4 digits"
            )));
        }
        let found = self.read(|c| store::run_ids_with_prefix(c, id))?;
        match found.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(Error::Tracking(format!("no run id starts with `{id}`"))),
            many => Err(Error::Tracking(format!(
                "run id prefix `{id}` is ambiguous: {} ...",
                many.join(", ")
            ))),
        }
    }
}

/// An owned handle on one experiment.
#[derive(Clone, Debug)]
pub struct Experiment {
    tracker: Tracker,
    info: ExperimentInfo,
}

impl Experiment {
    pub fn experiment_id(&self) -> i64 {
        self.info.experiment_id
    }
    pub fn name(&self) -> &str {
        &self.info.name
    }
    pub fn info(&self) -> &ExperimentInfo {
        &self.info
    }
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Start a top-level run in this experiment.
    pub fn start_run(&self, run_name: &str) -> Result<Run> {
        Run::start(self.tracker.clone(), &self.info, run_name, None)
    }

    /// Runs of this experiment matching `filter`, ordered by `order_by` (see [`Tracker::search_runs`]).
    pub fn search_runs(&self, filter: &str, order_by: &[&str]) -> Result<super::RunTable> {
        let id = self.info.experiment_id.to_string();
        self.tracker.search_runs(&[id.as_str()], filter, order_by)
    }

    /// Set an experiment tag (e.g. `mlflow.note.content`, the description the UI shows).
    pub fn set_tag(&self, key: &str, value: &str) -> Result<()> {
        super::entities::validate_key("experiment tag", key)?;
        let id = self.info.experiment_id;
        self.tracker.write(|c| {
            c.execute(
                "INSERT INTO experiment_tags (\"key\", value, experiment_id) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (\"key\", experiment_id) DO UPDATE SET value = excluded.value",
                rusqlite::params![key, value, id],
            )?;
            Ok(())
        })
    }

    /// The experiment's tags (`mlflow.experimentKind`, `mlflow.note.content`, ...).
    pub fn tags(&self) -> Result<std::collections::BTreeMap<String, String>> {
        let id = self.info.experiment_id;
        self.tracker.read(|c| {
            let mut st = c.prepare(
                "SELECT \"key\", COALESCE(value, '') FROM experiment_tags WHERE experiment_id = ?1",
            )?;
            let rows = st.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })
    }
}
