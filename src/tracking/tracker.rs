//! [`Tracker`]: an owned, cloneable handle on one store; [`Experiment`]: an owned handle on one
//! experiment. Both are cheap to clone and hold no borrows, so they live across notebook cells.

use super::entities::{now_ms, ExperimentInfo, MetricPoint, RunData, RunInfo};
use super::history::MetricHistory;
use super::rest::RestStore;
use super::schema::SchemaInfo;
use super::store;
use super::uri::Location;
use crate::{Error, Result};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// A local SQLite store.
pub(crate) struct SqliteInner {
    path: PathBuf,
    artifact_root: PathBuf,
    pub(super) schema: SchemaInfo,
    conn: Mutex<Connection>,
}

/// Where the tracker writes: a local SQLite file or an MLflow tracking server.
pub(crate) enum Inner {
    Sqlite(SqliteInner),
    Rest {
        store: RestStore,
        /// The server URL as a path, for callers that print [`Tracker::path`].
        url_path: PathBuf,
    },
}

/// A handle on one tracker store: an MLflow SQLite file (the default) or an MLflow tracking
/// server (`http(s)://host:port`, through its REST API; see [`super::rest`]).
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
            .field("store", &self.tracking_uri())
            .field("revision", &self.schema().revision)
            .finish()
    }
}

impl Tracker {
    /// Open or create the store at a path or `sqlite:///` URI, or use the MLflow tracking
    /// server at an `http(s)://` URL.
    pub fn open(path_or_uri: impl AsRef<str>) -> Result<Tracker> {
        Self::open_location(super::uri::parse_location(path_or_uri.as_ref())?)
    }

    fn open_location(loc: Location) -> Result<Tracker> {
        match loc {
            Location::Sqlite(p) => Self::open_path(&p),
            Location::Server(url) => Ok(Self::open_server(&url, None)),
        }
    }

    /// Open or create the store at a file path.
    pub fn open_path(path: &Path) -> Result<Tracker> {
        let (conn, schema, artifact_root) = store::open(path)?;
        Ok(Tracker {
            inner: Arc::new(Inner::Sqlite(SqliteInner {
                path: super::uri::absolute(path),
                artifact_root,
                schema,
                conn: Mutex::new(conn),
            })),
        })
    }

    /// The MLflow tracking server at `url` (`http(s)://host:port`); its runs keep local files
    /// (spool, artifact copies) under `local_dir`, default [`super::rest::local_dir`]. Nothing is
    /// sent until the first call.
    pub fn open_server(url: &str, local_dir: Option<&Path>) -> Tracker {
        let url = url.trim().trim_end_matches('/');
        Tracker {
            inner: Arc::new(Inner::Rest {
                store: RestStore::new(url, local_dir),
                url_path: PathBuf::from(url),
            }),
        }
    }

    /// The store named by `MLFLOW_TRACKING_URI`, else `tracking/mlflow.db`.
    pub fn open_default() -> Result<Tracker> {
        Self::open_location(super::uri::resolve_location(None)?)
    }

    /// `explicit` if given, else as [`Tracker::open_default`] (the command line's `--tracking-uri`).
    pub fn open_or_default(explicit: Option<&str>) -> Result<Tracker> {
        Self::open_location(super::uri::resolve_location(explicit)?)
    }

    /// The SQLite file; for a tracking server, its URL (as a path, for printing).
    pub fn path(&self) -> &Path {
        match &*self.inner {
            Inner::Sqlite(s) => &s.path,
            Inner::Rest { url_path, .. } => url_path,
        }
    }

    /// The URI that `mlflow ui --backend-store-uri` takes, or the server's URL.
    pub fn tracking_uri(&self) -> String {
        match &*self.inner {
            Inner::Sqlite(s) => super::uri::to_uri(&s.path),
            Inner::Rest { store, .. } => store.url().to_string(),
        }
    }

    /// Where new experiments keep their artifacts (`<db dir>/artifacts`); for a server, the local
    /// folder of its runs' files (spool, artifact copies).
    pub fn artifact_root(&self) -> &Path {
        match &*self.inner {
            Inner::Sqlite(s) => &s.artifact_root,
            Inner::Rest { store, .. } => store.local_root(),
        }
    }

    /// Schema facts of the file (revision; whether MLflow upgraded it). For a server: revision
    /// `mlflow-server`.
    pub fn schema(&self) -> &SchemaInfo {
        match &*self.inner {
            Inner::Sqlite(s) => &s.schema,
            Inner::Rest { store, .. } => store.schema(),
        }
    }

    /// The tracking server behind this tracker, if it is one.
    pub fn server(&self) -> Option<&RestStore> {
        match &*self.inner {
            Inner::Rest { store, .. } => Some(store),
            Inner::Sqlite(_) => None,
        }
    }

    /// Whether this tracker logs to an MLflow tracking server.
    pub fn is_remote(&self) -> bool {
        self.server().is_some()
    }

    /// Send what runs on this server spooled while it was away (`heterolora runs sync`).
    pub fn sync(&self) -> Result<Vec<super::rest::SyncReport>> {
        match self.server() {
            Some(s) => super::rest::sync(s),
            None => Ok(vec![]),
        }
    }

    pub(super) fn sqlite(&self) -> Result<&SqliteInner> {
        match &*self.inner {
            Inner::Sqlite(s) => Ok(s),
            Inner::Rest { store, .. } => Err(Error::Tracking(format!(
                "this operation needs a local SQLite store; {} is a tracking server",
                store.url()
            ))),
        }
    }

    pub(crate) fn conn(&self) -> Result<MutexGuard<'_, Connection>> {
        // A panic while holding the lock leaves the connection usable (every write is one
        // transaction that SQLite rolled back), so a poisoned lock is recovered.
        Ok(self
            .sqlite()?
            .conn
            .lock()
            .unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn write<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        store::write(&mut *self.conn()?, f)
    }

    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        store::read(&mut *self.conn()?, f)
    }

    // ---- experiments ---------------------------------------------------------------------------

    /// The experiment called `name`, created if it does not exist (MLflow's `set_experiment`).
    pub fn experiment(&self, name: &str) -> Result<Experiment> {
        let info = match self.server() {
            Some(r) => r.get_or_create_experiment(name)?,
            None => {
                let sq = self.sqlite()?;
                let (schema, root) = (&sq.schema, &sq.artifact_root);
                self.write(|c| store::get_or_create_experiment(c, schema, root, name))?
            }
        };
        Ok(Experiment {
            tracker: self.clone(),
            info,
        })
    }

    /// An existing experiment by name or id (`"3"`); an error if there is none.
    pub fn get_experiment(&self, name_or_id: &str) -> Result<Experiment> {
        let info = match self.server() {
            Some(r) => match r.experiment_by_name(name_or_id)? {
                Some(e) => Some(e),
                None => match name_or_id.parse::<i64>() {
                    Ok(id) => r.experiment_by_id(id)?,
                    Err(_) => None,
                },
            },
            None => {
                let schema = &self.sqlite()?.schema;
                self.read(|c| {
                    if let Some(e) = store::experiment_by_name(c, schema, name_or_id)? {
                        return Ok(Some(e));
                    }
                    match name_or_id.parse::<i64>() {
                        Ok(id) => store::experiment_by_id(c, id),
                        Err(_) => Ok(None),
                    }
                })?
            }
        };
        let info = info.ok_or_else(|| {
            let known = self
                .list_experiments()
                .map(|v| v.into_iter().map(|e| e.name).collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            Error::Tracking(format!(
                "no experiment named or numbered `{name_or_id}` in {} (experiments: {known})",
                self.path().display()
            ))
        })?;
        Ok(Experiment {
            tracker: self.clone(),
            info,
        })
    }

    /// Active experiments, by id.
    pub fn list_experiments(&self) -> Result<Vec<ExperimentInfo>> {
        if let Some(r) = self.server() {
            return r.list_experiments();
        }
        let schema = &self.sqlite()?.schema;
        self.read(|c| store::list_experiments(c, schema))
    }

    /// An experiment by id (`None` if there is none).
    pub(crate) fn experiment_by_id(&self, id: i64) -> Result<Option<ExperimentInfo>> {
        match self.server() {
            Some(r) => r.experiment_by_id(id),
            None => self.read(|c| store::experiment_by_id(c, id)),
        }
    }

    // ---- runs ----------------------------------------------------------------------------------

    /// A run's attributes, params, latest metrics and tags. Accepts a unique id prefix.
    pub fn get_run(&self, run_id: &str) -> Result<RunData> {
        let run_id = self.resolve_run_id(run_id)?;
        match self.server() {
            Some(r) => r.run_data(&run_id),
            None => self.read(|c| store::run_data(c, &run_id)),
        }
    }

    /// A run's attributes only.
    pub fn run_info(&self, run_id: &str) -> Result<RunInfo> {
        let run_id = self.resolve_run_id(run_id)?;
        match self.server() {
            Some(r) => Ok(r.run_data(&run_id)?.info),
            None => self.read(|c| store::run_info(c, &run_id)),
        }
    }

    /// The nested runs of `run_id` (those tagged `mlflow.parentRunId = run_id`), oldest first.
    pub fn child_runs(&self, run_id: &str) -> Result<Vec<String>> {
        let run_id = self.resolve_run_id(run_id)?;
        match self.server() {
            Some(r) => r.child_run_ids(&run_id),
            None => self.read(|c| store::child_run_ids(c, &run_id)),
        }
    }

    /// Set a run's status from outside its handle (e.g. mark a crashed run's leftover RUNNING row).
    pub fn set_terminated(&self, run_id: &str, status: super::RunStatus) -> Result<()> {
        let run_id = self.resolve_run_id(run_id)?;
        let end = (status != super::RunStatus::Running).then(now_ms);
        if let Some(r) = self.server() {
            return r.update_run(&run_id, status.as_str(), end);
        }
        let schema = &self.sqlite()?.schema;
        self.write(|c| store::set_status(c, schema, &run_id, status.as_str(), end))
    }

    /// Every point of metric `key` of run `run_id`, ordered by step.
    pub fn metric_history(&self, run_id: &str, key: &str) -> Result<MetricHistory> {
        let run_id = self.resolve_run_id(run_id)?;
        let (points, keys) = if let Some(r) = self.server() {
            let p = r.metric_history(&run_id, key)?;
            let keys = if p.is_empty() {
                r.run_data(&run_id)?.metrics.into_keys().collect()
            } else {
                vec![]
            };
            (p, keys)
        } else {
            self.read(|c| {
                let p = store::metric_history(c, &run_id, key)?;
                let keys = if p.is_empty() {
                    store::metric_keys(c, &run_id)?
                } else {
                    vec![]
                };
                Ok((p, keys))
            })?
        };
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
        match self.server() {
            Some(r) => r.metric_history(run_id, key),
            None => self.read(|c| store::metric_history(c, run_id, key)),
        }
    }

    /// Files under a run's artifact directory, relative paths, sorted.
    pub fn list_artifacts(&self, run_id: &str) -> Result<Vec<String>> {
        let info = self.run_info(run_id)?;
        if let Some(r) = self.server() {
            return r.list_artifacts(&info);
        }
        let dir = super::artifacts::local_dir(&info.artifact_uri)?;
        super::artifacts::list(&dir)
    }

    /// A local file holding artifact `rel` of run `run_id`, whose artifact URI is
    /// `artifact_uri` (as `search_runs` gives it): the file itself in a SQLite store's artifact
    /// folder, or a copy downloaded from the server into the run's local folder.
    pub fn artifact_file(&self, run_id: &str, artifact_uri: &str, rel: &str) -> Result<PathBuf> {
        match self.server() {
            Some(r) => {
                let mut info = r.run_data(run_id)?.info;
                if !artifact_uri.is_empty() {
                    info.artifact_uri = artifact_uri.to_string();
                }
                r.download_artifact(&info, rel)
            }
            None => Ok(super::artifacts::local_dir(artifact_uri)?
                .join(super::artifacts::check_relative(rel)?)),
        }
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
        let found = match self.server() {
            Some(r) => r.run_ids_with_prefix(id)?,
            None => self.read(|c| store::run_ids_with_prefix(c, id))?,
        };
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
    pub(super) tracker: Tracker,
    pub(super) info: ExperimentInfo,
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

    /// Runs of this experiment matching `filter`, ordered by `order_by` (see [`Tracker::search_runs`]).
    pub fn search_runs(&self, filter: &str, order_by: &[&str]) -> Result<super::RunTable> {
        let id = self.info.experiment_id.to_string();
        self.tracker.search_runs(&[id.as_str()], filter, order_by)
    }

    /// Set an experiment tag (e.g. `mlflow.note.content`, the description the UI shows).
    pub fn set_tag(&self, key: &str, value: &str) -> Result<()> {
        super::entities::validate_key("experiment tag", key)?;
        let id = self.info.experiment_id;
        if let Some(r) = self.tracker.server() {
            return r.set_experiment_tag(id, key, value);
        }
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
        if let Some(r) = self.tracker.server() {
            return r.experiment_tags(id);
        }
        self.tracker.read(|c| {
            let mut st = c.prepare(
                "SELECT \"key\", COALESCE(value, '') FROM experiment_tags WHERE experiment_id = ?1",
            )?;
            let rows = st.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })
    }
}
