//! [`RestStore`]: the tracking server's experiments, runs, histories and artifact listings as the
//! same entities the SQLite store returns.

use super::client::{CallError, Client};
use crate::tracking::entities::{ExperimentInfo, MetricPoint, RunData, RunInfo};
use crate::tracking::schema::SchemaInfo;
use crate::tracking::tags;
use crate::{Error, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An MLflow tracking server and the local folder of its runs.
#[derive(Debug)]
pub struct RestStore {
    client: Client,
    root: PathBuf,
    schema: SchemaInfo,
}

/// A metric point as MLflow's JSON has it (NaN and infinities as strings).
pub fn metric_json(key: &str, p: &MetricPoint) -> Value {
    let v = if p.value.is_nan() {
        json!("NaN")
    } else if p.value == f64::INFINITY {
        json!("Infinity")
    } else if p.value == f64::NEG_INFINITY {
        json!("-Infinity")
    } else {
        json!(p.value)
    };
    json!({"key": key, "value": v, "timestamp": p.timestamp, "step": p.step})
}

/// A metric value from MLflow's JSON (a number, or "NaN"/"Infinity"/"-Infinity").
pub fn metric_value(v: &Value) -> f64 {
    match v {
        // MLflow stores +-inf as +-f64::MAX; read back as what was logged, as the SQLite store does.
        Value::Number(n) => {
            crate::tracking::entities::decode_value(n.as_f64().unwrap_or(f64::NAN), false)
        }
        Value::String(s) => match s.as_str() {
            "Infinity" | "inf" => f64::INFINITY,
            "-Infinity" | "-inf" => f64::NEG_INFINITY,
            other => other.parse().unwrap_or(f64::NAN),
        },
        _ => f64::NAN,
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn string(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn experiment_from(v: &Value) -> Result<ExperimentInfo> {
    let id = int(&v["experiment_id"]).ok_or_else(|| {
        Error::Tracking(format!(
            "the server's experiment id {} is not a number; heterolora needs MLflow's numeric ids",
            v["experiment_id"]
        ))
    })?;
    Ok(ExperimentInfo {
        experiment_id: id,
        name: string(&v["name"]),
        artifact_location: string(&v["artifact_location"]),
        lifecycle_stage: v["lifecycle_stage"]
            .as_str()
            .unwrap_or("active")
            .to_string(),
    })
}

/// A run's attributes from its JSON `info`.
pub fn run_info_from(i: &Value) -> RunInfo {
    RunInfo {
        run_id: i["run_id"]
            .as_str()
            .or(i["run_uuid"].as_str())
            .unwrap_or_default()
            .to_string(),
        run_name: string(&i["run_name"]),
        experiment_id: int(&i["experiment_id"]).unwrap_or(0),
        user_id: string(&i["user_id"]),
        status: string(&i["status"]),
        start_time: int(&i["start_time"]).unwrap_or(0),
        end_time: int(&i["end_time"]),
        artifact_uri: string(&i["artifact_uri"]),
        lifecycle_stage: i["lifecycle_stage"]
            .as_str()
            .unwrap_or("active")
            .to_string(),
    }
}

fn pairs(v: &Value) -> BTreeMap<String, String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|p| (string(&p["key"]), string(&p["value"])))
                .collect()
        })
        .unwrap_or_default()
}

/// A run (info, params, latest metrics, tags) from its JSON.
pub fn run_data_from(r: &Value) -> RunData {
    let d = &r["data"];
    let metrics = d["metrics"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    (
                        string(&m["key"]),
                        MetricPoint {
                            value: metric_value(&m["value"]),
                            timestamp: int(&m["timestamp"]).unwrap_or(0),
                            step: int(&m["step"]).unwrap_or(0),
                        },
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    RunData {
        info: run_info_from(&r["info"]),
        params: pairs(&d["params"]),
        metrics,
        tags: pairs(&d["tags"]),
    }
}

impl RestStore {
    /// The server at `url`; local files under `root` (default [`super::local_dir`]).
    pub fn new(url: &str, root: Option<&Path>) -> RestStore {
        let root = root
            .map(Path::to_path_buf)
            .unwrap_or_else(|| super::local_dir(url));
        RestStore {
            client: Client::new(url),
            root: crate::tracking::uri::absolute(&root),
            schema: SchemaInfo {
                revision: "mlflow-server".into(),
                status_killed: true,
                experiment_extra: Default::default(),
            },
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
    pub fn url(&self) -> &str {
        self.client.base()
    }
    /// Where the spool files and local artifact copies live.
    pub fn local_root(&self) -> &Path {
        &self.root
    }
    pub(crate) fn schema(&self) -> &SchemaInfo {
        &self.schema
    }
    /// The run's local artifact folder (written before each upload; checkpoints stay here).
    pub fn local_artifact_dir(&self, run_id: &str) -> PathBuf {
        self.root.join("artifacts").join(run_id).join("artifacts")
    }
    /// The run's spool file.
    pub fn spool_path(&self, run_id: &str) -> PathBuf {
        self.root.join("spool").join(format!("{run_id}.jsonl"))
    }

    fn raw(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> std::result::Result<Value, CallError> {
        self.client
            .call(method, path, query, body, self.client.retry)
    }

    pub(crate) fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        self.raw("GET", path, query, None)
            .map_err(|e| self.client.error(&format!("GET {path}"), e))
    }

    pub(crate) fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.raw("POST", path, &[], Some(&body))
            .map_err(|e| self.client.error(&format!("POST {path}"), e))
    }

    // ---- experiments ---------------------------------------------------------------------------

    pub fn experiment_by_name(&self, name: &str) -> Result<Option<ExperimentInfo>> {
        match self.raw(
            "GET",
            "experiments/get-by-name",
            &[("experiment_name", name)],
            None,
        ) {
            Ok(v) => experiment_from(&v["experiment"]).map(Some),
            Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => Ok(None),
            Err(e) => Err(self.client.error("GET experiments/get-by-name", e)),
        }
    }

    pub fn experiment_by_id(&self, id: i64) -> Result<Option<ExperimentInfo>> {
        let id = id.to_string();
        match self.raw("GET", "experiments/get", &[("experiment_id", &id)], None) {
            Ok(v) => experiment_from(&v["experiment"]).map(Some),
            Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => Ok(None),
            Err(e) => Err(self.client.error("GET experiments/get", e)),
        }
    }

    /// The active experiment `name`, created (tagged as model training) if missing.
    pub fn get_or_create_experiment(&self, name: &str) -> Result<ExperimentInfo> {
        let name = name.trim();
        if let Some(e) = self.experiment_by_name(name)? {
            if e.lifecycle_stage == "deleted" {
                return Err(Error::Tracking(format!(
                    "experiment `{name}` (id {}) is deleted on {}; restore it or choose another name",
                    e.experiment_id,
                    self.url()
                )));
            }
            if !self
                .experiment_tags(e.experiment_id)?
                .contains_key(tags::EXPERIMENT_KIND)
            {
                self.set_experiment_tag(
                    e.experiment_id,
                    tags::EXPERIMENT_KIND,
                    tags::EXPERIMENT_KIND_MODEL_TRAINING,
                )?;
            }
            return Ok(e);
        }
        let body = json!({"name": name, "tags": [
            {"key": tags::EXPERIMENT_KIND, "value": tags::EXPERIMENT_KIND_MODEL_TRAINING}]});
        match self.raw("POST", "experiments/create", &[], Some(&body)) {
            Ok(_) => {}
            // Created by another worker meanwhile.
            Err(e) if e.code() == Some("RESOURCE_ALREADY_EXISTS") => {}
            Err(e) => return Err(self.client.error("POST experiments/create", e)),
        }
        self.experiment_by_name(name)?.ok_or_else(|| {
            Error::Tracking(format!(
                "experiment `{name}` was created on {} but cannot be read back",
                self.url()
            ))
        })
    }

    /// Active experiments, by id.
    pub fn list_experiments(&self) -> Result<Vec<ExperimentInfo>> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let mut body = json!({"max_results": 1000, "view_type": "ACTIVE_ONLY"});
            if !token.is_empty() {
                body["page_token"] = json!(token);
            }
            let v = self.post("experiments/search", body)?;
            for e in v["experiments"].as_array().into_iter().flatten() {
                out.push(experiment_from(e)?);
            }
            match v["next_page_token"].as_str() {
                Some(t) if !t.is_empty() => token = t.to_string(),
                _ => break,
            }
        }
        out.sort_by_key(|e| e.experiment_id);
        Ok(out)
    }

    pub fn experiment_tags(&self, id: i64) -> Result<BTreeMap<String, String>> {
        let v = self.get("experiments/get", &[("experiment_id", &id.to_string())])?;
        Ok(pairs(&v["experiment"]["tags"]))
    }

    pub fn set_experiment_tag(&self, id: i64, key: &str, value: &str) -> Result<()> {
        self.post(
            "experiments/set-experiment-tag",
            json!({"experiment_id": id.to_string(), "key": key, "value": value}),
        )
        .map(|_| ())
    }

    // ---- runs ----------------------------------------------------------------------------------

    pub fn create_run(
        &self,
        experiment_id: i64,
        run_name: &str,
        start_time: i64,
        tags: &[(String, String)],
    ) -> Result<RunInfo> {
        let tags: Vec<Value> = tags
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        let v = self.post(
            "runs/create",
            json!({"experiment_id": experiment_id.to_string(), "run_name": run_name,
                   "start_time": start_time, "tags": tags}),
        )?;
        Ok(run_info_from(&v["run"]["info"]))
    }

    pub fn run_data(&self, run_id: &str) -> Result<RunData> {
        match self.raw("GET", "runs/get", &[("run_id", run_id)], None) {
            Ok(v) => Ok(run_data_from(&v["run"])),
            Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => Err(Error::Tracking(format!(
                "no run with id `{run_id}` on {}",
                self.url()
            ))),
            Err(e) => Err(self.client.error("GET runs/get", e)),
        }
    }

    pub fn update_run(&self, run_id: &str, status: &str, end_time: Option<i64>) -> Result<()> {
        let mut body = json!({"run_id": run_id, "status": status});
        if let Some(t) = end_time {
            body["end_time"] = json!(t);
        }
        self.post("runs/update", body).map(|_| ())
    }

    /// Every point of `key`, by step then timestamp (all pages).
    pub fn metric_history(&self, run_id: &str, key: &str) -> Result<Vec<MetricPoint>> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let mut q = vec![
                ("run_id", run_id),
                ("metric_key", key),
                ("max_results", "25000"),
            ];
            if !token.is_empty() {
                q.push(("page_token", token.as_str()));
            }
            let v = self.get("metrics/get-history", &q)?;
            for m in v["metrics"].as_array().into_iter().flatten() {
                out.push(MetricPoint {
                    value: metric_value(&m["value"]),
                    timestamp: int(&m["timestamp"]).unwrap_or(0),
                    step: int(&m["step"]).unwrap_or(0),
                });
            }
            match v["next_page_token"].as_str() {
                Some(t) if !t.is_empty() => token = t.to_string(),
                _ => break,
            }
        }
        out.sort_by_key(|p| (p.step, p.timestamp));
        Ok(out)
    }

    // ---- artifacts -----------------------------------------------------------------------------

    /// The path of a run's artifact folder under the server's artifact proxy.
    pub fn proxy_path(&self, artifact_uri: &str) -> Result<String> {
        let rest = if let Some(r) = artifact_uri.strip_prefix("mlflow-artifacts:") {
            match r.strip_prefix("//") {
                Some(hosted) => hosted.split_once('/').map(|x| x.1).unwrap_or(""),
                None => r,
            }
        } else if let Some((_, r)) = artifact_uri.split_once("/api/2.0/mlflow-artifacts/artifacts/")
        {
            r
        } else {
            return Err(Error::Tracking(format!(
                "artifact location `{artifact_uri}` is not served by {}'s artifact proxy: start the server \
                 with --serve-artifacts (MLflow's default) and log in an experiment created under it",
                self.url()
            )));
        };
        Ok(rest.trim_matches('/').to_string())
    }

    /// Files under the run's artifacts, relative paths, sorted.
    pub fn list_artifacts(&self, info: &RunInfo) -> Result<Vec<String>> {
        let base = self.proxy_path(&info.artifact_uri)?;
        let mut out = Vec::new();
        let mut todo = vec![String::new()];
        while let Some(sub) = todo.pop() {
            let at = if sub.is_empty() {
                base.clone()
            } else {
                format!("{base}/{sub}")
            };
            for (p, dir) in self.client.list_artifacts(&at)? {
                let name = p.rsplit('/').next().unwrap_or(&p);
                let rel = if sub.is_empty() {
                    name.to_string()
                } else {
                    format!("{sub}/{name}")
                };
                if dir {
                    todo.push(rel);
                } else {
                    out.push(rel);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Download artifact `rel` of the run into its local artifact folder; returns the file.
    pub fn download_artifact(&self, info: &RunInfo, rel: &str) -> Result<PathBuf> {
        let rel_path = crate::tracking::artifacts::check_relative(rel)?;
        let dest = self.local_artifact_dir(&info.run_id).join(rel_path);
        let proxy = format!("{}/{rel}", self.proxy_path(&info.artifact_uri)?);
        self.client.get_artifact(&proxy, &dest)?;
        Ok(dest)
    }
}
