//! [`Run`]: an owned handle on one active run.
//!
//! Params and tags are written at once (so that a changed param fails where it was logged).
//! Metric points are buffered and written in one transaction per batch ([`FlushPolicy`]: 1,000
//! points or one second by default), so logging every training step costs a `Vec::push`. A run
//! dropped without [`Run::end`] (an early `?`, a panic) flushes its points and is marked FAILED
//! with the reason in the tag `heterolora.end_reason`.
//!
//! On a tracking server the same calls become REST requests ([`super::rest::remote_run`]): sent
//! at once (metrics at each flush, in log-batches), or spooled to a local file while the server
//! is away, so a run never stops for its tracker.

use super::artifacts;
use super::entities::{
    now_ms, validate_key, validate_value, ExperimentInfo, MetricPoint, RunInfo,
    MAX_PARAM_VALUE_LEN, MAX_TAG_VALUE_LEN,
};
use super::logger::{RunLogger, RunStatus};
use super::rest::remote_run::RemoteRun;
use super::store::{self, NewRun};
use super::tags;
use super::tracker::{Experiment, Tracker};
use crate::{Error, Result};
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// When buffered metric points are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushPolicy {
    /// Write once this many points are buffered (1 writes every point at once).
    pub max_points: usize,
    /// Write at the first log call this long after the last write.
    pub max_interval: Duration,
}

impl Default for FlushPolicy {
    fn default() -> Self {
        FlushPolicy {
            max_points: 1000,
            max_interval: Duration::from_secs(1),
        }
    }
}

impl FlushPolicy {
    /// Write every point immediately (slow; for tests and crash-sensitive logging).
    pub fn immediate() -> Self {
        FlushPolicy {
            max_points: 1,
            max_interval: Duration::ZERO,
        }
    }
}

/// An active run. Implements [`RunLogger`]; the inherent methods are the same in MLflow's words
/// with friendlier argument types (`log_param("r", 8)`).
pub struct Run {
    tracker: Tracker,
    info: RunInfo,
    pending: Vec<(String, MetricPoint)>,
    policy: FlushPolicy,
    last_flush: Instant,
    ended: bool,
    /// The run's writer on a tracking server (`None` for a SQLite store).
    remote: Option<RemoteRun>,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("run_id", &self.info.run_id)
            .field("run_name", &self.info.run_name)
            .field("experiment_id", &self.info.experiment_id)
            .field("pending_points", &self.pending.len())
            .field("ended", &self.ended)
            .finish()
    }
}

fn user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// The git commit of the current directory's repository, looked up once per process.
fn git_commit() -> Option<String> {
    static COMMIT: OnceLock<Option<String>> = OnceLock::new();
    COMMIT
        .get_or_init(|| {
            let out = std::process::Command::new("git")
                .args(["rev-parse", "HEAD"])
                .stderr(std::process::Stdio::null())
                .output()
                .ok()?;
            let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
            (out.status.success() && s.len() == 40).then_some(s)
        })
        .clone()
}

/// MLflow's system tags of a new run.
fn system_tags(run_name: &str, user: &str, parent: Option<&str>) -> Vec<(String, String)> {
    let source_name = std::env::args().next().unwrap_or_default();
    let mut system: Vec<(String, String)> = vec![
        (tags::RUN_NAME.into(), run_name.to_string()),
        (tags::USER.into(), user.to_string()),
        (tags::SOURCE_NAME.into(), source_name),
        (tags::SOURCE_TYPE.into(), "LOCAL".into()),
    ];
    if let Some(c) = git_commit() {
        system.push((tags::SOURCE_GIT_COMMIT.into(), c));
    }
    if let Some(p) = parent {
        system.push((tags::PARENT_RUN_ID.into(), p.to_string()));
    }
    system
}

fn generated_name(run_id: &str) -> String {
    format!("run-{}", &run_id[..8])
}

impl Run {
    pub(crate) fn start(
        tracker: Tracker,
        exp: &ExperimentInfo,
        run_name: &str,
        parent: Option<&str>,
    ) -> Result<Run> {
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let run_name = match run_name.trim() {
            "" => generated_name(&run_id),
            n => n.to_string(),
        };
        if run_name.chars().count() > 250 {
            return Err(Error::Tracking(format!(
                "run name `{}...` is longer than MLflow's 250 characters",
                run_name.chars().take(40).collect::<String>()
            )));
        }
        if let Some(server) = tracker.server() {
            let (user, start_time) = (user(), now_ms());
            let system = system_tags(&run_name, &user, parent);
            let info = server.create_run(exp.experiment_id, &run_name, start_time, &system)?;
            return Run::attach(tracker, info);
        }
        let artifact_uri = match artifacts::local_dir(&exp.artifact_location) {
            Ok(dir) => dir
                .join(&run_id)
                .join("artifacts")
                .to_string_lossy()
                .into_owned(),
            Err(_) => format!(
                "{}/{run_id}/artifacts",
                exp.artifact_location.trim_end_matches('/')
            ),
        };
        let user = user();
        let source_name = std::env::args().next().unwrap_or_default();
        let start_time = now_ms();
        let system = system_tags(&run_name, &user, parent);
        let new = NewRun {
            run_id: &run_id,
            run_name: &run_name,
            experiment_id: exp.experiment_id,
            user: &user,
            source_name: &source_name,
            source_type: "LOCAL",
            start_time,
            artifact_uri: &artifact_uri,
        };
        tracker.write(|c| {
            store::insert_run(c, &new)?;
            store::set_tags(c, &run_id, &system)
        })?;
        let info = RunInfo {
            run_id,
            run_name,
            experiment_id: exp.experiment_id,
            user_id: user,
            status: "RUNNING".into(),
            start_time,
            end_time: None,
            artifact_uri,
            lifecycle_stage: "active".into(),
        };
        Run::attach(tracker, info)
    }

    pub(crate) fn attach(tracker: Tracker, info: RunInfo) -> Result<Run> {
        Self::attach_with_params(tracker, info, Default::default())
    }

    /// `params`: those the run already has on a server (kept immutable).
    pub(crate) fn attach_with_params(
        tracker: Tracker,
        info: RunInfo,
        params: std::collections::BTreeMap<String, String>,
    ) -> Result<Run> {
        let remote = match tracker.server() {
            Some(s) => Some(RemoteRun::new(s, &info, params)?),
            None => None,
        };
        Ok(Run {
            tracker,
            info,
            pending: Vec::new(),
            policy: FlushPolicy::default(),
            last_flush: Instant::now(),
            ended: false,
            remote,
        })
    }

    /// A nested run in the same experiment, tagged `mlflow.parentRunId` = this run (a sweep's
    /// trial). The MLflow UI shows it under its parent.
    pub fn start_child(&self, run_name: &str) -> Result<Run> {
        let id = self.info.experiment_id;
        let exp = self.tracker.experiment_by_id(id)?.ok_or_else(|| {
            Error::Tracking(format!(
                "experiment {id} of run {} is gone",
                self.info.run_id
            ))
        })?;
        Run::start(
            self.tracker.clone(),
            &exp,
            run_name,
            Some(&self.info.run_id),
        )
    }

    pub fn run_id(&self) -> &str {
        &self.info.run_id
    }
    pub fn run_name(&self) -> &str {
        &self.info.run_name
    }
    pub fn experiment_id(&self) -> i64 {
        self.info.experiment_id
    }
    pub fn info(&self) -> &RunInfo {
        &self.info
    }
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }
    /// The run's artifact URI as stored (a local absolute path; on a server, MLflow's
    /// `mlflow-artifacts:/...`).
    pub fn artifact_uri(&self) -> &str {
        &self.info.artifact_uri
    }
    /// The local artifact directory. On a tracking server: the run's local folder, where
    /// artifacts are written before their upload (files put there directly are not uploaded).
    pub fn artifact_dir(&self) -> Result<PathBuf> {
        match &self.remote {
            Some(r) => Ok(r.local_dir().to_path_buf()),
            None => artifacts::local_dir(&self.info.artifact_uri),
        }
    }

    /// On a tracking server: whether requests wait in the run's spool (the server stopped
    /// answering), and where.
    pub fn spooled(&self) -> Option<PathBuf> {
        self.remote
            .as_ref()
            .filter(|r| r.is_offline())
            .map(|r| r.spool_path().to_path_buf())
    }

    /// Change when buffered metric points are written.
    pub fn set_flush_policy(&mut self, policy: FlushPolicy) {
        self.policy = policy;
    }

    // ---- params and tags ---------------------------------------------------------------------

    /// Log a param; logging the same key again with another value is an error (MLflow's rule).
    pub fn log_param(&mut self, key: &str, value: impl Display) -> Result<()> {
        self.write_params(&[(key.to_string(), value.to_string())])
    }

    /// Log several params at once: `run.log_params(&[("r", 8), ("lora_alpha", 16)])`.
    pub fn log_params<K: AsRef<str>, V: Display>(&mut self, params: &[(K, V)]) -> Result<()> {
        let owned: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.as_ref().to_string(), v.to_string()))
            .collect();
        self.write_params(&owned)
    }

    fn write_params(&mut self, params: &[(String, String)]) -> Result<()> {
        if let Some(r) = &mut self.remote {
            for (k, v) in params {
                validate_key("param", k)?;
                validate_value("param", k, v, MAX_PARAM_VALUE_LEN)?;
            }
            return r.log_params(params);
        }
        let id = self.info.run_id.clone();
        self.tracker.write(|c| store::log_params(c, &id, params))
    }

    pub fn set_tag(&mut self, key: &str, value: impl Display) -> Result<()> {
        self.write_tags(&[(key.to_string(), value.to_string())])
    }

    pub fn set_tags<K: AsRef<str>, V: Display>(&mut self, tags: &[(K, V)]) -> Result<()> {
        let owned: Vec<(String, String)> = tags
            .iter()
            .map(|(k, v)| (k.as_ref().to_string(), v.to_string()))
            .collect();
        self.write_tags(&owned)
    }

    fn write_tags(&mut self, tags: &[(String, String)]) -> Result<()> {
        if let Some(r) = &mut self.remote {
            for (k, v) in tags {
                validate_key("tag", k)?;
                validate_value("tag", k, v, MAX_TAG_VALUE_LEN)?;
            }
            r.set_tags(tags)?;
        } else {
            let id = self.info.run_id.clone();
            self.tracker.write(|c| store::set_tags(c, &id, tags))?;
        }
        if let Some((_, name)) = tags.iter().rev().find(|(k, _)| k == tags::RUN_NAME) {
            self.info.run_name = name.clone();
        }
        Ok(())
    }

    /// The run's description (markdown, shown by the MLflow UI).
    pub fn set_note(&mut self, markdown: &str) -> Result<()> {
        self.set_tag(tags::NOTE, markdown)
    }

    // ---- metrics -----------------------------------------------------------------------------

    /// Log `value` of metric `key` at `step`, timestamped now. NaN and infinities are accepted
    /// and stored as MLflow stores them.
    pub fn log_metric(&mut self, key: &str, value: f64, step: i64) -> Result<()> {
        self.log_metric_at(key, value, step, now_ms())
    }

    /// Log a metric point with an explicit timestamp (epoch milliseconds).
    pub fn log_metric_at(
        &mut self,
        key: &str,
        value: f64,
        step: i64,
        timestamp: i64,
    ) -> Result<()> {
        validate_key("metric", key)?;
        self.pending.push((
            key.to_string(),
            MetricPoint {
                value,
                timestamp,
                step,
            },
        ));
        self.maybe_flush()
    }

    /// Log several metrics at the same step: `run.log_metrics(&[("loss", 0.3), ("acc", 0.9)], 10)`.
    pub fn log_metrics<K: AsRef<str>>(&mut self, metrics: &[(K, f64)], step: i64) -> Result<()> {
        let timestamp = now_ms();
        for (k, _) in metrics {
            validate_key("metric", k.as_ref())?;
        }
        self.pending.extend(metrics.iter().map(|(k, v)| {
            (
                k.as_ref().to_string(),
                MetricPoint {
                    value: *v,
                    timestamp,
                    step,
                },
            )
        }));
        self.maybe_flush()
    }

    fn maybe_flush(&mut self) -> Result<()> {
        if self.pending.len() >= self.policy.max_points.max(1)
            || self.last_flush.elapsed() >= self.policy.max_interval
        {
            self.flush_points(false)?;
        }
        Ok(())
    }

    /// Write buffered metric points now (one transaction; on a server, log-batch requests of at
    /// most 1,000 points, then a wait until everything logged is sent, or spooled if the server
    /// is away, after a try to send the spool). Returns how many points were written.
    pub fn flush(&mut self) -> Result<usize> {
        self.flush_points(true)
    }

    fn flush_points(&mut self, explicit: bool) -> Result<usize> {
        self.last_flush = Instant::now();
        let n = self.pending.len();
        if n > 0 {
            let points = &self.pending;
            match &mut self.remote {
                Some(r) => r.log_metrics(points)?,
                None => {
                    let id = self.info.run_id.clone();
                    self.tracker.write(|c| store::log_metrics(c, &id, points))?;
                }
            }
            self.pending.clear();
        }
        // On a server, an explicit flush waits until everything is sent or spooled.
        if let (true, Some(r)) = (explicit, &mut self.remote) {
            r.flush()?;
        }
        Ok(n)
    }

    /// Number of metric points buffered and not yet written.
    pub fn pending_points(&self) -> usize {
        self.pending.len()
    }

    // ---- artifacts ---------------------------------------------------------------------------

    /// Copy a local file (or a directory, recursively) into the run's artifacts, under
    /// `artifact_path` if given. Returns where it was stored.
    pub fn log_artifact(
        &mut self,
        local_path: impl AsRef<Path>,
        artifact_path: Option<&str>,
    ) -> Result<PathBuf> {
        let dest = artifacts::copy(&self.artifact_dir()?, local_path.as_ref(), artifact_path)?;
        if let Some(r) = &mut self.remote {
            r.upload(&dest)?;
        }
        Ok(dest)
    }

    /// Write `text` as the artifact `artifact_file` (e.g. `notes/summary.md`).
    pub fn log_text(&mut self, text: &str, artifact_file: &str) -> Result<PathBuf> {
        let dest = artifacts::write(&self.artifact_dir()?, artifact_file, text.as_bytes())?;
        if let Some(r) = &mut self.remote {
            r.upload(&dest)?;
        }
        Ok(dest)
    }

    /// Write `value` as pretty JSON to the artifact `artifact_file` (e.g. `allocation.json`).
    pub fn log_json<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
        artifact_file: &str,
    ) -> Result<PathBuf> {
        let text = serde_json::to_string_pretty(value)?;
        self.log_text(&text, artifact_file)
    }

    /// Relative paths of the run's artifacts.
    pub fn list_artifacts(&self) -> Result<Vec<String>> {
        if self.remote.is_some() {
            return self.tracker.list_artifacts(&self.info.run_id);
        }
        artifacts::list(&self.artifact_dir()?)
    }

    // ---- end ---------------------------------------------------------------------------------

    /// Flush and set the final status (FINISHED, FAILED or KILLED; KILLED is stored as FAILED in
    /// files MLflow has not upgraded, whose schema does not allow it).
    pub fn end(&mut self, status: RunStatus) -> Result<()> {
        if status == RunStatus::Running {
            return Err(Error::Tracking(
                "end() needs a final status: Finished, Failed or Killed".into(),
            ));
        }
        self.flush()?;
        self.set_status(status)?;
        self.ended = true;
        if let Some(r) = &mut self.remote {
            r.flush()?;
        }
        Ok(())
    }

    /// `end(RunStatus::Finished)`.
    pub fn finish(mut self) -> Result<()> {
        self.end(RunStatus::Finished)
    }

    fn set_status(&mut self, status: RunStatus) -> Result<()> {
        let id = self.info.run_id.clone();
        let end = now_ms();
        if let Some(r) = &mut self.remote {
            r.set_status(status.as_str(), Some(end))?;
        } else {
            let schema = self.tracker.schema().clone();
            self.tracker
                .write(|c| store::set_status(c, &schema, &id, status.as_str(), Some(end)))?;
        }
        self.info.status = status.as_str().to_string();
        self.info.end_time = Some(end);
        Ok(())
    }

    /// Whether [`Run::end`] has been called.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// A one-line HTML summary: name, id, status, experiment, where its artifacts are.
    pub fn to_html(&self) -> String {
        use super::display::escape;
        format!(
            "<div style=\"font-size:12px\"><b>{}</b> <code>{}</code> {} in experiment {} \
             ({} buffered point(s)); artifacts: <code>{}</code>; view with <code>mlflow ui --backend-store-uri {}</code></div>",
            escape(&self.info.run_name),
            escape(&self.info.run_id),
            escape(if self.ended { &self.info.status } else { "RUNNING" }),
            self.info.experiment_id,
            self.pending.len(),
            escape(&self.info.artifact_uri),
            escape(&self.tracker.tracking_uri()),
        )
    }

    /// Rich notebook output (evcxr).
    pub fn evcxr_display(&self) {
        super::display::emit_html(&self.to_html());
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            eprintln!(
                "tracker: run {}: could not write {} buffered metric points: {e}",
                self.info.run_id,
                self.pending.len()
            );
        }
        if self.ended {
            return;
        }
        let reason = if std::thread::panicking() {
            "panicked before end()"
        } else {
            "dropped without end()"
        };
        let id = self.info.run_id.clone();
        let schema = self.tracker.schema().clone();
        let end = now_ms();
        if let Some(r) = &mut self.remote {
            let res = r
                .set_tags(&[(tags::END_REASON.to_string(), reason.to_string())])
                .and_then(|_| r.set_status("FAILED", Some(end)));
            if let Err(e) = res {
                eprintln!("tracker: run {id}: could not mark it FAILED: {e}");
            }
            return;
        }
        let res = self.tracker.write(|c| {
            store::set_tags(
                c,
                &id,
                &[(tags::END_REASON.to_string(), reason.to_string())],
            )?;
            store::set_status(c, &schema, &id, "FAILED", Some(end))
        });
        if let Err(e) = res {
            eprintln!("tracker: run {id}: could not mark it FAILED: {e}");
        }
    }
}

impl RunLogger for Run {
    fn log_params(&mut self, params: &[(String, String)]) -> Result<()> {
        self.write_params(params)
    }
    fn log_metrics(&mut self, metrics: &[(String, f64)], step: i64) -> Result<()> {
        Run::log_metrics(self, metrics, step)
    }
    fn set_tags(&mut self, tags: &[(String, String)]) -> Result<()> {
        self.write_tags(tags)
    }
    fn log_artifact(&mut self, local_path: &Path, artifact_dir: Option<&str>) -> Result<()> {
        Run::log_artifact(self, local_path, artifact_dir).map(|_| ())
    }
    fn log_text(&mut self, text: &str, artifact_file: &str) -> Result<()> {
        Run::log_text(self, text, artifact_file).map(|_| ())
    }
    fn flush(&mut self) -> Result<()> {
        Run::flush(self).map(|_| ())
    }
    fn end(&mut self, status: RunStatus) -> Result<()> {
        Run::end(self, status)
    }
    fn run_id(&self) -> Option<String> {
        Some(self.info.run_id.clone())
    }
}

// Runs are started from the tracker and its experiments, but defined here so that the tracker
// does not depend on the run (one-way: run on top of tracker).
impl Tracker {
    /// Start a run in experiment `experiment` (created if needed) named `run_name` (a generated
    /// name if empty). The run logs until [`Run::end`]; dropped without it, it is marked FAILED.
    pub fn start_run(&self, experiment: &str, run_name: &str) -> Result<Run> {
        self.experiment(experiment)?.start_run(run_name)
    }

    /// Re-open an existing run to log more (MLflow's `start_run(run_id=...)`): status back to RUNNING.
    pub fn resume_run(&self, run_id: &str) -> Result<Run> {
        let run_id = self.resolve_run_id(run_id)?;
        if let Some(r) = self.server() {
            let data = r.run_data(&run_id)?;
            if data.info.lifecycle_stage != "active" {
                return Err(Error::Tracking(format!(
                    "run {run_id} is deleted; restore it before logging"
                )));
            }
            r.update_run(&run_id, "RUNNING", None)?;
            let mut info = data.info;
            info.status = "RUNNING".into();
            return Run::attach_with_params(self.clone(), info, data.params);
        }
        let schema = &self.sqlite()?.schema;
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
        Run::attach(self.clone(), info)
    }
}

impl Experiment {
    /// Start a top-level run in this experiment.
    pub fn start_run(&self, run_name: &str) -> Result<Run> {
        Run::start(self.tracker.clone(), &self.info, run_name, None)
    }
}
