//! [`DevPredictions`]: each dev example's prediction at the end of training, with its label, so
//! that a study can resample dev examples (the second level of its paired bootstrap) and
//! recompute any of the task's metrics on them.

use crate::data::{metrics, Task};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Per dev example, in the split's file order: the predicted class id (classification) or score
/// (STS-B), and the gold label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DevPredictions {
    pub predictions: Vec<f32>,
    pub labels: Vec<f32>,
}

impl DevPredictions {
    /// From row-major logits `[n, task.num_labels()]` (argmax for classification, the single
    /// output for STS-B) and the `n` gold labels.
    pub fn from_logits(task: Task, logits: &[f32], labels: &[f32]) -> Result<DevPredictions> {
        let k = task.num_labels();
        if logits.len() != labels.len() * k || labels.is_empty() {
            return Err(Error::invalid(
                "logits",
                format!("{} values", logits.len()),
                format!("{} x {k} for {} labels", labels.len(), labels.len()),
            ));
        }
        let predictions = if task.is_regression() {
            logits.to_vec()
        } else {
            metrics::argmax_rows(logits, k)
                .into_iter()
                .map(|c| c as f32)
                .collect()
        };
        Ok(DevPredictions {
            predictions,
            labels: labels.to_vec(),
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// One of the task's metrics (`accuracy`, `pearson`, ...) on these predictions; `None` for a
    /// name the task does not report.
    pub fn metric(&self, task: Task, name: &str) -> Option<f64> {
        metrics::named(task, name, &self.predictions, &self.labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predictions_are_the_argmax_or_the_score_and_give_the_metrics() {
        let d = DevPredictions::from_logits(
            Task::Mrpc,
            &[0.1, 0.9, 2.0, -1.0, 0.0, 0.5],
            &[1.0, 1.0, 1.0],
        )
        .unwrap();
        assert_eq!(d.predictions, vec![1.0, 0.0, 1.0]);
        assert_eq!(d.len(), 3);
        assert!((d.metric(Task::Mrpc, "accuracy").unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(d.metric(Task::Mrpc, "pearson"), None);
        let s =
            DevPredictions::from_logits(Task::Stsb, &[0.5, 2.0, 4.0], &[1.0, 2.5, 4.5]).unwrap();
        assert_eq!(s.predictions, vec![0.5, 2.0, 4.0]);
        assert!((s.metric(Task::Stsb, "pearson").unwrap() - 1.0).abs() < 1e-9);
        assert!(DevPredictions::from_logits(Task::Mrpc, &[0.1, 0.9, 2.0], &[1.0, 1.0]).is_err());
        assert!(DevPredictions::from_logits(Task::Stsb, &[], &[]).is_err());
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<DevPredictions>(&json).unwrap(), s);
    }
}
