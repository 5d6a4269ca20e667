//! Evaluation passes: logits of a dataset's examples over batches, without dropout (the trainer's
//! dev evaluation and `heterolora predict` share it, so both give the same numbers).

use super::{AdaptedClassifier, SequenceClassifier};
use crate::data::Batch;
use crate::Result;
use candle_core::DType;
use std::borrow::Borrow;

/// Logits of `n` examples, in example order.
#[derive(Debug, Clone)]
pub struct EvalLogits {
    /// `[n * k]`, row-major by example index (the batches' `indices`); `k` = the model's outputs.
    pub logits: Vec<f32>,
    /// The mean loss against the batches' labels, when asked for.
    pub loss: Option<f64>,
}

impl SequenceClassifier {
    /// Runs `batches` (evaluation mode) over a dataset of `n` examples and puts each row's logits
    /// at its example index; with `with_loss`, also the mean loss over the `n` examples.
    pub fn eval_logits<B: Borrow<Batch>>(
        &self,
        batches: impl IntoIterator<Item = B>,
        n: usize,
        with_loss: bool,
    ) -> Result<EvalLogits> {
        eval_logits_of(self, batches, n, with_loss)
    }
}

/// [`SequenceClassifier::eval_logits`] on any backbone.
pub(crate) fn eval_logits_of<M: AdaptedClassifier, B: Borrow<Batch>>(
    model: &M,
    batches: impl IntoIterator<Item = B>,
    n: usize,
    with_loss: bool,
) -> Result<EvalLogits> {
    let k = model.num_labels();
    let mut logits_all = vec![0f32; n * k];
    let mut loss_sum = 0f64;
    for batch in batches {
        let batch = batch.borrow();
        let logits = model.forward_batch(batch, None)?;
        if with_loss {
            let loss = model.loss(&logits, &batch.labels)?;
            loss_sum += loss.to_dtype(DType::F32)?.to_scalar::<f32>()? as f64 * batch.size() as f64;
        }
        let rows = logits.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        for (row, &i) in rows.iter().zip(&batch.indices) {
            logits_all[i * k..(i + 1) * k].copy_from_slice(row);
        }
    }
    Ok(EvalLogits {
        logits: logits_all,
        loss: with_loss.then(|| loss_sum / n as f64),
    })
}
