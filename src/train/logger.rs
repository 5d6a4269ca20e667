//! [`RunLogger`]: the small interface every run (training, scoring, search) writes through.
//!
//! The SQLite tracker implements it; [`MemoryLogger`] records in memory (tests, dry runs) and
//! [`NullLogger`] drops everything.

use crate::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How a run ended, in MLflow's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunStatus {
    Running,
    Finished,
    Failed,
    /// Stopped by the user (Ctrl-C). Stored as FAILED on schemas that do not know KILLED.
    Killed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }
}

/// Where a run's params, metrics, tags and artifacts go.
pub trait RunLogger {
    /// Log parameters; a key logged twice with another value is an error (MLflow's rule).
    fn log_params(&mut self, params: &[(String, String)]) -> Result<()>;
    /// Log metric values at `step`.
    fn log_metrics(&mut self, metrics: &[(String, f64)], step: i64) -> Result<()>;
    fn set_tags(&mut self, tags: &[(String, String)]) -> Result<()>;
    /// Copy a local file into the run's artifacts, under `artifact_dir` if given.
    fn log_artifact(&mut self, local_path: &Path, artifact_dir: Option<&str>) -> Result<()>;
    /// Write `text` as the artifact `artifact_file` (a relative path such as `allocation.json`).
    fn log_text(&mut self, text: &str, artifact_file: &str) -> Result<()>;
    /// Flush buffered writes.
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    /// End the run with `status`.
    fn end(&mut self, status: RunStatus) -> Result<()>;
    /// The run id, if the logger has one.
    fn run_id(&self) -> Option<String> {
        None
    }

    fn log_param(&mut self, key: &str, value: &str) -> Result<()> {
        self.log_params(&[(key.to_string(), value.to_string())])
    }
    fn log_metric(&mut self, key: &str, value: f64, step: i64) -> Result<()> {
        self.log_metrics(&[(key.to_string(), value)], step)
    }
    fn set_tag(&mut self, key: &str, value: &str) -> Result<()> {
        self.set_tags(&[(key.to_string(), value.to_string())])
    }
}

/// Drops everything.
#[derive(Debug, Default, Clone)]
pub struct NullLogger;

impl RunLogger for NullLogger {
    fn log_params(&mut self, _: &[(String, String)]) -> Result<()> {
        Ok(())
    }
    fn log_metrics(&mut self, _: &[(String, f64)], _: i64) -> Result<()> {
        Ok(())
    }
    fn set_tags(&mut self, _: &[(String, String)]) -> Result<()> {
        Ok(())
    }
    fn log_artifact(&mut self, _: &Path, _: Option<&str>) -> Result<()> {
        Ok(())
    }
    fn log_text(&mut self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    fn end(&mut self, _: RunStatus) -> Result<()> {
        Ok(())
    }
}

/// Records everything in memory, for tests and dry runs.
#[derive(Debug, Default, Clone)]
pub struct MemoryLogger {
    pub params: Vec<(String, String)>,
    /// (key, value, step)
    pub metrics: Vec<(String, f64, i64)>,
    pub tags: Vec<(String, String)>,
    /// (artifact path, source file if copied)
    pub artifacts: Vec<(String, Option<PathBuf>)>,
    pub texts: Vec<(String, String)>,
    pub status: Option<RunStatus>,
}

impl MemoryLogger {
    /// The (step, value) history of metric `key`.
    pub fn history(&self, key: &str) -> Vec<(i64, f64)> {
        self.metrics
            .iter()
            .filter(|(k, _, _)| k == key)
            .map(|(_, v, s)| (*s, *v))
            .collect()
    }
}

impl RunLogger for MemoryLogger {
    fn log_params(&mut self, params: &[(String, String)]) -> Result<()> {
        for (k, v) in params {
            if let Some((_, old)) = self.params.iter().find(|(ok, _)| ok == k) {
                if old != v {
                    return Err(crate::Error::Tracking(format!(
                        "param `{k}` was already logged as `{old}`; params are immutable, cannot change it to `{v}`"
                    )));
                }
                continue;
            }
            self.params.push((k.clone(), v.clone()));
        }
        Ok(())
    }
    fn log_metrics(&mut self, metrics: &[(String, f64)], step: i64) -> Result<()> {
        self.metrics
            .extend(metrics.iter().map(|(k, v)| (k.clone(), *v, step)));
        Ok(())
    }
    fn set_tags(&mut self, tags: &[(String, String)]) -> Result<()> {
        for (k, v) in tags {
            self.tags.retain(|(ok, _)| ok != k);
            self.tags.push((k.clone(), v.clone()));
        }
        Ok(())
    }
    fn log_artifact(&mut self, local_path: &Path, artifact_dir: Option<&str>) -> Result<()> {
        let name = local_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = match artifact_dir {
            Some(d) => format!("{d}/{name}"),
            None => name,
        };
        self.artifacts.push((path, Some(local_path.to_path_buf())));
        Ok(())
    }
    fn log_text(&mut self, text: &str, artifact_file: &str) -> Result<()> {
        self.artifacts.push((artifact_file.to_string(), None));
        self.texts
            .push((artifact_file.to_string(), text.to_string()));
        Ok(())
    }
    fn end(&mut self, status: RunStatus) -> Result<()> {
        self.status = Some(status);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_logger_keeps_params_immutable_and_records_history() {
        let mut l = MemoryLogger::default();
        l.log_param("lr", "0.001").unwrap();
        l.log_param("lr", "0.001").unwrap();
        assert!(l.log_param("lr", "0.01").is_err());
        l.log_metric("loss", 1.0, 0).unwrap();
        l.log_metric("loss", 0.5, 1).unwrap();
        assert_eq!(l.history("loss"), vec![(0, 1.0), (1, 0.5)]);
        l.end(RunStatus::Failed).unwrap();
        assert_eq!(l.status, Some(RunStatus::Failed));
    }
}
