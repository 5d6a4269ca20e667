//! [`RemoteRun`]: what a [`Run`](crate::tracking::Run) on a tracking server does with its writes:
//! log-batch requests within MLflow's limits, status updates and artifact uploads, each through
//! the run's [`Sender`] (queued to its thread: sent, or spooled while the server is away).

use super::sender::Sender;
use super::spool::Request;
use super::store::{metric_json, RestStore};
use crate::tracking::entities::{MetricPoint, RunInfo};
use crate::{Error, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// MLflow's log-batch limits: metrics per request.
pub const MAX_METRICS_PER_BATCH: usize = 1000;
/// Params per request.
pub const MAX_PARAMS_PER_BATCH: usize = 100;
/// Tags per request.
pub const MAX_TAGS_PER_BATCH: usize = 100;

/// One run's writes to the server.
#[derive(Debug)]
pub struct RemoteRun {
    sender: Sender,
    run_id: String,
    /// The run's artifact folder under the server's artifact proxy (`<exp>/<run>/artifacts`).
    proxy_base: String,
    local_dir: PathBuf,
    /// Params logged so far (MLflow's immutability is checked here too, so that a changed
    /// param fails where it was logged even while the server is away).
    params: BTreeMap<String, String>,
}

impl RemoteRun {
    /// The writer of run `info` on `store`; `params` are those the run already has.
    pub fn new(
        store: &RestStore,
        info: &RunInfo,
        params: BTreeMap<String, String>,
    ) -> Result<RemoteRun> {
        Ok(RemoteRun {
            sender: Sender::new(store.client().clone(), store.spool_path(&info.run_id))?,
            run_id: info.run_id.clone(),
            proxy_base: store.proxy_path(&info.artifact_uri)?,
            local_dir: store.local_artifact_dir(&info.run_id),
            params,
        })
    }

    /// The run's local artifact folder.
    pub fn local_dir(&self) -> &Path {
        &self.local_dir
    }

    /// Whether requests wait in the spool.
    pub fn is_offline(&self) -> bool {
        self.sender.is_offline()
    }

    /// The run's spool file (exists only while requests wait there).
    pub fn spool_path(&self) -> &Path {
        self.sender.spool_path()
    }

    fn batch(&mut self, field: &str, items: Vec<Value>) -> Result<()> {
        self.sender.submit(Request::Api {
            path: "runs/log-batch".into(),
            body: json!({"run_id": self.run_id, field: items}),
        })
    }

    pub fn log_params(&mut self, params: &[(String, String)]) -> Result<()> {
        let mut new = Vec::new();
        for (k, v) in params {
            match self.params.get(k) {
                Some(old) if old == v => {}
                Some(old) => {
                    return Err(Error::Tracking(format!(
                        "param `{k}` of run {} was already logged with value `{old}`; params are immutable \
                         (MLflow's rule), so it cannot change to `{v}`. Log the new value under another key, or start a new run",
                        self.run_id
                    )))
                }
                None => new.push((k.clone(), v.clone())),
            }
        }
        for chunk in new.chunks(MAX_PARAMS_PER_BATCH) {
            let items = chunk
                .iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect();
            self.batch("params", items)?;
            self.params.extend(chunk.iter().cloned());
        }
        Ok(())
    }

    pub fn set_tags(&mut self, tags: &[(String, String)]) -> Result<()> {
        if let [(k, v)] = tags {
            return self.sender.submit(Request::Api {
                path: "runs/set-tag".into(),
                body: json!({"run_id": self.run_id, "key": k, "value": v}),
            });
        }
        for chunk in tags.chunks(MAX_TAGS_PER_BATCH) {
            let items = chunk
                .iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect();
            self.batch("tags", items)?;
        }
        Ok(())
    }

    pub fn log_metrics(&mut self, points: &[(String, MetricPoint)]) -> Result<()> {
        for chunk in points.chunks(MAX_METRICS_PER_BATCH) {
            let items = chunk.iter().map(|(k, p)| metric_json(k, p)).collect();
            self.batch("metrics", items)?;
        }
        Ok(())
    }

    pub fn set_status(&mut self, status: &str, end_time: Option<i64>) -> Result<()> {
        let mut body = json!({"run_id": self.run_id, "status": status});
        if let Some(t) = end_time {
            body["end_time"] = json!(t);
        }
        self.sender.submit(Request::Api {
            path: "runs/update".into(),
            body,
        })
    }

    /// Upload `local`, a file or folder inside the run's local artifact folder.
    pub fn upload(&mut self, local: &Path) -> Result<()> {
        let rel = local.strip_prefix(&self.local_dir).map_err(|_| {
            Error::Tracking(format!(
                "{} is not inside the run's artifact folder {}",
                local.display(),
                self.local_dir.display()
            ))
        })?;
        let rel = rel.to_string_lossy().replace('\\', "/");
        let files = if local.is_dir() {
            crate::tracking::artifacts::list(local)?
                .into_iter()
                .map(|f| format!("{rel}/{f}"))
                .collect()
        } else {
            vec![rel]
        };
        for f in files {
            self.sender.submit(Request::Artifact {
                path: format!("{}/{f}", self.proxy_base),
                file: self.local_dir.join(&f),
            })?;
        }
        Ok(())
    }

    /// Wait until everything logged is sent (trying the server again if it was away) or
    /// spooled; an error names the requests the server refused.
    pub fn flush(&mut self) -> Result<()> {
        self.sender.flush()
    }
}
