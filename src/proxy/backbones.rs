//! `grad-norm` on any backbone ([`Classifier`]: BERT or a decoder), the first proxy that scores
//! decoders.
//!
//! The proxy engine ([`super::engine`]) is written against BERT's
//! [`crate::model::SequenceClassifier`] and its [`crate::data::Batch`] (probes, fresh-adapter
//! policies, tracked runs); until it takes a [`Classifier`], decoders get the proxy the method
//! ranks by, computed the same way: ||dL/dA||_F + ||dL/dB||_F of each slot's adapter, gradients of
//! the task loss summed over the batches, with a fresh adapter (rank `r`, B = 0) on every slot
//! that has none. The caller's model is not changed.

use super::{fro, Scores};
use crate::adapters::SlotId;
use crate::model::Classifier;
use crate::{Error, Result};
use candle_core::Tensor;
use std::collections::BTreeMap;
use std::time::Instant;

/// One labelled batch: `input_ids`, `attention_mask` `[b, s]`, `labels` `[b]`, and token types
/// for BERT (`None`: zeros; decoders ignore them).
#[derive(Debug, Clone)]
pub struct LabelledBatch {
    pub input_ids: Tensor,
    pub token_type_ids: Option<Tensor>,
    pub attention_mask: Tensor,
    pub labels: Tensor,
}

/// grad-norm scores of `slots` on `batches`; slots without an adapter get a fresh one of rank `r`
/// and alpha `lora_alpha` on a copy of the model.
pub fn grad_norm_scores(
    model: &Classifier,
    batches: &[LabelledBatch],
    slots: &[SlotId],
    r: usize,
    lora_alpha: f64,
) -> Result<Scores> {
    if batches.is_empty() || slots.is_empty() {
        return Err(Error::invalid(
            "scoring input",
            format!("{} batches, {} slots", batches.len(), slots.len()),
            "at least one batch and one slot",
        ));
    }
    let start = Instant::now();
    // A clone shares the existing adapters' variables, which are only read here.
    let mut m = model.clone();
    for &s in slots {
        match m.adapter(s) {
            Some(_) => m.set_enabled(s, true)?,
            None => m.add_slot(s, r, lora_alpha)?,
        }
    }
    let mut sums: BTreeMap<SlotId, (Tensor, Tensor)> = BTreeMap::new();
    for b in batches {
        let logits = m.forward(
            &b.input_ids,
            b.token_type_ids.as_ref(),
            &b.attention_mask,
            None,
        )?;
        let grads = m.loss(&logits, &b.labels)?.backward()?;
        for &s in slots {
            let ad = m.adapter(s).expect("added above");
            let zero_or = |v: &candle_core::Var| -> Result<Tensor> {
                Ok(match grads.get(v.as_tensor()) {
                    Some(g) => g.clone(),
                    None => v.zeros_like()?,
                })
            };
            let (ga, gb) = (zero_or(&ad.a)?, zero_or(&ad.b)?);
            let e = match sums.remove(&s) {
                Some((a, b)) => ((a + ga)?, (b + gb)?),
                None => (ga, gb),
            };
            sums.insert(s, e);
        }
    }
    let mut values = BTreeMap::new();
    for (s, (ga, gb)) in sums {
        let v = fro(&ga)? + fro(&gb)?;
        if !v.is_finite() {
            return Err(Error::Other(format!(
                "grad-norm gave slot {s} the non-finite score {v}"
            )));
        }
        values.insert(s, v);
    }
    Ok(Scores {
        proxy: "grad-norm".into(),
        values,
        rank_gains: None,
        num_batches: batches.len(),
        seconds: start.elapsed().as_secs_f64(),
    })
}
