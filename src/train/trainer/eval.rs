//! Evaluation on the dev split, and its logging (best epoch, best adapters).

use super::Trainer;
use crate::data::metrics;
use crate::model::AdaptedClassifier;
use crate::train::dev_predictions::DevPredictions;
use crate::train::logger::RunLogger;
use crate::train::progress::Progress;
use crate::train::result::EvalRecord;
use crate::Result;
use std::collections::BTreeMap;

impl<M: AdaptedClassifier> Trainer<M> {
    /// Metrics of the current model on the dev split: the task's metrics and `loss`.
    pub fn evaluate(&self) -> Result<BTreeMap<String, f64>> {
        Ok(self.evaluate_with_logits()?.0)
    }

    /// [`Trainer::evaluate`]'s metrics and the dev logits they came from (file order).
    fn evaluate_with_logits(&self) -> Result<(BTreeMap<String, f64>, Vec<f32>)> {
        let n = self.dev_labels.len();
        let out = self.model.eval_batches(&self.dev_batches, n, true)?;
        let m = metrics::compute_from_logits(self.task, &out.logits, &self.dev_labels)?;
        let mut values: BTreeMap<String, f64> = m.values.clone();
        values.insert("loss".to_string(), out.loss.unwrap_or(f64::NAN));
        Ok((values, out.logits))
    }

    /// Each dev example's prediction by the current model, with its label, in file order.
    pub fn dev_predictions(&self) -> Result<DevPredictions> {
        let n = self.dev_labels.len();
        let out = self.model.eval_batches(&self.dev_batches, n, false)?;
        DevPredictions::from_logits(self.task, &out.logits, &self.dev_labels)
    }

    /// Each dev example's prediction when training ended: from the logits of the evaluation that
    /// [`Trainer::fit`] ran after the final step, without another pass over dev; when this
    /// session did not evaluate after the final step (not trained to the end, or resumed from a
    /// checkpoint written after it), the same as [`Trainer::dev_predictions`]. The model is not
    /// changed by the trainer after that evaluation; a caller who changes its adapters through
    /// [`Trainer::model`] wants [`Trainer::dev_predictions`] instead.
    pub fn final_dev_predictions(&self) -> Result<DevPredictions> {
        match &self.final_dev_logits {
            Some(logits) => DevPredictions::from_logits(self.task, logits, &self.dev_labels),
            None => self.dev_predictions(),
        }
    }

    pub(super) fn evaluate_and_log(
        &mut self,
        logger: &mut dyn RunLogger,
        progress: &Progress,
        epoch_end: bool,
    ) -> Result<()> {
        let (metrics, logits) = self.evaluate_with_logits()?;
        self.final_dev_logits = (self.st.step == self.total_steps()).then_some(logits);
        let (sum, count) = self.st.loss_since_eval;
        let train_loss = if count > 0 {
            sum / count as f64
        } else {
            f64::NAN
        };
        self.st.loss_since_eval = (0.0, 0);
        let step = self.st.step;
        let epoch = self.st.epoch + 1;
        let mut logged: Vec<(String, f64)> = metrics
            .iter()
            .map(|(k, v)| (format!("dev_{k}"), *v))
            .collect();
        if epoch_end {
            logged.push(("epoch".to_string(), epoch as f64));
            logged.push(("epoch_train_loss".to_string(), train_loss));
        }
        logger.log_metrics(&logged, step as i64)?;
        let primary = self.task.primary_metric();
        let value = metrics.get(primary).copied().unwrap_or(f64::NAN);
        let mut improved = false;
        if epoch_end && value.is_finite() && self.st.best_metric.is_none_or(|b| value > b) {
            self.st.best_metric = Some(value);
            self.st.best_epoch = Some(epoch);
            improved = true;
        }
        let shown: Vec<String> = metrics.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
        progress.println(&format!(
            "{} {epoch} step {step}: train loss {train_loss:.4}, dev {}{}",
            if epoch_end { "epoch" } else { "(epoch" },
            shown.join(", "),
            if improved { "  (best so far)" } else { "" }
        ));
        self.st.evals.push(EvalRecord {
            epoch,
            step,
            epoch_end,
            train_loss,
            metrics,
            elapsed_s: self.st.wall_time_s,
        });
        if improved {
            if let Some(dir) = &self.output_dir {
                self.model.save_adapters(&dir.join("best"))?;
            }
        }
        Ok(())
    }
}
