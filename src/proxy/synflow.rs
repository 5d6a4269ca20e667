//! SynFlow (Tanaka et al. 2020) on adapter factors: in a copy of the model with every weight
//! (base, adapters, head) replaced by its absolute value and all-ones input embeddings (fed to the
//! first layer, over one scoring batch's shape and mask), score = sum |A * dR/dA| + sum |B * dR/dB|.
//!
//! - [`SynFlowTarget::Loss`] (`synflow`): R = the task loss on the batch's labels, as the
//!   reference code does, in the model's dtype.
//! - [`SynFlowTarget::OutputSum`] (`synflow-sum`): R = the sum of the logits, in float64, as the
//!   original SynFlow.
//!
//! With a fresh adapter (B = 0) both products vanish exactly: SynFlow scores every fresh slot 0.
//! Our BERT is post-LN, so LayerNorm re-centres the all-ones signal; SynFlow's conservation
//! argument (for ReLU networks without normalisation) does not hold here, as in the reference.
//!
//! BERT only (it feeds all-ones embeddings through BERT's encoder): on a decoder,
//! [`super::score_on`] returns an [`crate::Error::Config`] naming the architecture.

use super::engine::{check_inputs, working_copy};
use super::target::{bert_only, Scorable};
use super::{abs_dot, FreshAdapters, Proxy, Scores};
use crate::adapters::SlotId;
use crate::data::Batch;
use crate::rng::Rng;
use crate::Result;
use candle_core::{DType, Tensor};
use std::collections::BTreeMap;
use std::time::Instant;

/// What SynFlow differentiates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SynFlowTarget {
    /// The task loss (the reference's form).
    #[default]
    Loss,
    /// The sum of the outputs, in float64 (the original form).
    OutputSum,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SynFlow {
    pub target: SynFlowTarget,
    pub fresh: FreshAdapters,
}

impl Proxy for SynFlow {
    fn name(&self) -> String {
        match self.target {
            SynFlowTarget::Loss => "synflow".into(),
            SynFlowTarget::OutputSum => "synflow-sum".into(),
        }
    }

    fn score(
        &self,
        model: &mut dyn Scorable,
        batches: &[Batch],
        slots: &[SlotId],
        _rng: &mut Rng,
    ) -> Result<Scores> {
        let model = bert_only(model, &self.name())?;
        check_inputs(&*model, batches, slots)?;
        let start = Instant::now();
        let work = working_copy(model, slots, &self.fresh)?;
        let abs = match self.target {
            SynFlowTarget::Loss => work.map_weights(|t| Ok(t.abs()?))?,
            SynFlowTarget::OutputSum => work.to_dtype(DType::F64)?.map_weights(|t| Ok(t.abs()?))?,
        };
        let batch = &batches[0];
        let (b, s) = batch.input_ids.dims2()?;
        let h = abs.config().hidden_size;
        let ones = Tensor::ones((b, s, h), abs.dtype(), abs.device())?;
        let logits = abs.forward_embeds(&ones, &batch.attention_mask, None)?;
        let r = match self.target {
            SynFlowTarget::Loss => abs.loss(&logits, &batch.labels)?,
            SynFlowTarget::OutputSum => logits.sum_all()?,
        };
        let grads = r.backward()?;
        let mut values = BTreeMap::new();
        for &slot in slots {
            let (a, bv) = abs.lora_factors(slot).expect("working copy has every slot");
            let mut v = 0.0;
            for f in [&a, &bv] {
                if let Some(g) = grads.get(f.as_tensor()) {
                    v += abs_dot(f.as_tensor(), g)?;
                }
            }
            values.insert(slot, v);
        }
        Ok(Scores {
            proxy: self.name(),
            values,
            rank_gains: None,
            num_batches: 1,
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}
