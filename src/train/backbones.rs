//! Fine-tuning steps on any backbone ([`Classifier`]): AdamW ([`super::AdamW`], PEFT-named
//! variables) over the enabled adapters and the head. The full [`super::Trainer`] (epochs,
//! evaluation, checkpoints, hooks) runs on BERT's classifier only; this is the loop body it would
//! share with decoders.

use super::clip::Grads;
use super::{AdamW, AdamWParams};
use crate::model::Classifier;
use crate::proxy::backbones::LabelledBatch;
use crate::rng::Rng;
use crate::{Error, Result};

/// Runs `steps` AdamW steps at learning rate `lr`, cycling through `batches` in order, in
/// training mode (dropout masks drawn from `seed`); returns the loss of each step.
pub fn train_steps(
    model: &Classifier,
    batches: &[LabelledBatch],
    steps: usize,
    lr: f64,
    seed: u64,
) -> Result<Vec<f32>> {
    if batches.is_empty() {
        return Err(Error::invalid("batches", 0, "at least one batch"));
    }
    let mut opt = AdamW::new(AdamWParams::default());
    let mut rng = Rng::derive(seed, "train");
    let vars = model.trainable_vars();
    let mut losses = Vec::with_capacity(steps);
    for step in 0..steps {
        let b = &batches[step % batches.len()];
        let logits = model.forward(
            &b.input_ids,
            b.token_type_ids.as_ref(),
            &b.attention_mask,
            Some(&mut rng),
        )?;
        let loss = model.loss(&logits, &b.labels)?;
        let value = loss.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?;
        if !value.is_finite() {
            return Err(Error::Training {
                step,
                reason: format!("loss is {value}"),
            });
        }
        let store = loss.backward()?;
        let grads: Grads = vars
            .iter()
            .filter_map(|(k, v)| store.get(v.as_tensor()).map(|g| (k.clone(), g.clone())))
            .collect();
        opt.step(&vars, &grads, lr)?;
        losses.push(value);
    }
    Ok(losses)
}
