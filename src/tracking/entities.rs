//! MLflow's entities (experiment, run info, metric point) and its validation rules.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest key MLflow accepts (params, metrics, tags).
pub const MAX_KEY_LEN: usize = 250;
/// Longest param value MLflow accepts.
pub const MAX_PARAM_VALUE_LEN: usize = 6000;
/// Longest tag value MLflow accepts.
pub const MAX_TAG_VALUE_LEN: usize = 8000;
/// Longest experiment name (the column is VARCHAR(256)).
pub const MAX_EXPERIMENT_NAME_LEN: usize = 256;

/// An experiment row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExperimentInfo {
    pub experiment_id: i64,
    pub name: String,
    pub artifact_location: String,
    pub lifecycle_stage: String,
}

/// A run's attributes (MLflow's `RunInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run_id: String,
    pub run_name: String,
    pub experiment_id: i64,
    pub user_id: String,
    pub status: String,
    /// Epoch milliseconds.
    pub start_time: i64,
    /// Epoch milliseconds; `None` while running.
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub lifecycle_stage: String,
}

/// One logged metric value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    pub value: f64,
    /// Epoch milliseconds.
    pub timestamp: i64,
    pub step: i64,
}

/// A run with its params, latest metrics and tags (MLflow's `Run`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunData {
    pub info: RunInfo,
    pub params: BTreeMap<String, String>,
    /// Latest value of each metric (MLflow's rule: greatest (step, timestamp, value)).
    pub metrics: BTreeMap<String, MetricPoint>,
    pub tags: BTreeMap<String, String>,
}

impl RunData {
    /// The parent run of a nested run (tag `mlflow.parentRunId`).
    pub fn parent_run_id(&self) -> Option<&str> {
        self.tags
            .get(super::tags::PARENT_RUN_ID)
            .map(|s| s.as_str())
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How MLflow stores a float: NaN as (0, is_nan = 1), +-inf as +-f64::MAX.
pub fn encode_value(v: f64) -> (f64, bool) {
    if v.is_nan() {
        (0.0, true)
    } else if v == f64::INFINITY {
        (f64::MAX, false)
    } else if v == f64::NEG_INFINITY {
        (f64::MIN, false)
    } else {
        (v, false)
    }
}

/// The inverse of [`encode_value`]: +-f64::MAX reads back as +-inf (what was logged; MLflow's
/// Python client shows the stored +-1.7976931348623157e308).
pub fn decode_value(v: f64, is_nan: bool) -> f64 {
    if is_nan {
        f64::NAN
    } else if v == f64::MAX {
        f64::INFINITY
    } else if v == f64::MIN {
        f64::NEG_INFINITY
    } else {
        v
    }
}

/// MLflow's key rule: 1..=250 characters of letters, digits, `_ - . / ` and space, not a path
/// that climbs (`..`) or starts with `/`.
pub fn validate_key(kind: &str, key: &str) -> Result<()> {
    let n = key.chars().count();
    if n == 0 {
        return Err(Error::Tracking(format!("{kind} key is empty")));
    }
    if n > MAX_KEY_LEN {
        let head: String = key.chars().take(40).collect();
        return Err(Error::Tracking(format!(
            "{kind} key `{head}...` is {n} characters long; MLflow allows at most {MAX_KEY_LEN}"
        )));
    }
    if let Some(c) = key
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ' ')))
    {
        return Err(Error::Tracking(format!(
            "{kind} key `{key}` contains `{c}`; MLflow keys may contain only letters, digits, \
             underscores, dashes, periods, spaces and slashes"
        )));
    }
    if key.starts_with('/') || key.split('/').any(|p| p == "..") {
        return Err(Error::Tracking(format!(
            "{kind} key `{key}` must be a relative name without `..` components"
        )));
    }
    Ok(())
}

/// Length check of a param or tag value.
pub fn validate_value(kind: &str, key: &str, value: &str, max: usize) -> Result<()> {
    let n = value.chars().count();
    if n > max {
        return Err(Error::Tracking(format!(
            "{kind} `{key}`: value is {n} characters long; MLflow allows at most {max}"
        )));
    }
    Ok(())
}

/// Run statuses MLflow knows.
pub const STATUSES: &[&str] = &["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_encode_like_mlflow_and_round_trip() {
        assert_eq!(encode_value(f64::NAN), (0.0, true));
        assert_eq!(encode_value(f64::INFINITY), (1.7976931348623157e308, false));
        assert_eq!(
            encode_value(f64::NEG_INFINITY),
            (-1.7976931348623157e308, false)
        );
        assert!(decode_value(0.0, true).is_nan());
        assert_eq!(decode_value(f64::MAX, false), f64::INFINITY);
        assert_eq!(decode_value(f64::MIN, false), f64::NEG_INFINITY);
        assert_eq!(decode_value(0.25, false), 0.25);
    }

    #[test]
    fn keys_follow_mlflow_rules() {
        validate_key("metric", "eval/acc_1 x.y-z").unwrap();
        let long = "k".repeat(251);
        let e = validate_key("param", &long).unwrap_err().to_string();
        assert!(e.contains("251 characters") && e.contains("250"), "{e}");
        validate_key("param", &"k".repeat(250)).unwrap();
        assert!(validate_key("tag", "a;b")
            .unwrap_err()
            .to_string()
            .contains("`;`"));
        assert!(validate_key("tag", "../x").is_err());
        assert!(validate_key("tag", "").is_err());
        assert!(validate_value("param", "p", &"v".repeat(6001), MAX_PARAM_VALUE_LEN).is_err());
    }
}
