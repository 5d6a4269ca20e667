//! Evaluation on the dev split, and its logging (best epoch, best adapters).

use super::Trainer;
use crate::data::metrics;
use crate::tracking::RunLogger;
use crate::train::progress::Progress;
use crate::train::result::EvalRecord;
use crate::Result;
use candle_core::DType;
use std::collections::BTreeMap;

impl Trainer {
    /// Metrics of the current model on the dev split: the task's metrics and `loss`.
    pub fn evaluate(&self) -> Result<BTreeMap<String, f64>> {
        let k = self.task.num_labels();
        let n = self.dev_labels.len();
        let mut logits_all = vec![0f32; n * k];
        let mut loss_sum = 0f64;
        for batch in &self.dev_batches {
            let logits = self.model.forward(
                &batch.input_ids,
                &batch.token_type_ids,
                &batch.attention_mask,
                None,
            )?;
            let loss = self.model.loss(&logits, &batch.labels)?;
            loss_sum += loss.to_dtype(DType::F32)?.to_scalar::<f32>()? as f64 * batch.size() as f64;
            let rows = logits.to_dtype(DType::F32)?.to_vec2::<f32>()?;
            for (row, &i) in rows.iter().zip(&batch.indices) {
                logits_all[i * k..(i + 1) * k].copy_from_slice(row);
            }
        }
        let m = metrics::compute_from_logits(self.task, &logits_all, &self.dev_labels)?;
        let mut out: BTreeMap<String, f64> = m.values.clone();
        out.insert("loss".to_string(), loss_sum / n as f64);
        Ok(out)
    }

    pub(super) fn evaluate_and_log(
        &mut self,
        logger: &mut dyn RunLogger,
        progress: &Progress,
        epoch_end: bool,
    ) -> Result<()> {
        let metrics = self.evaluate()?;
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
