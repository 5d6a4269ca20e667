//! Multi-head self-attention with LoRA slots on query, key, value and the output projection
//! (Hugging Face's `BertSelfAttention` + `BertSelfOutput.dense`; the LayerNorm is in the layer).

use super::config::BertConfig;
use super::context::Ctx;
use super::fused;
use super::nn::Linear;
use super::weights::{load_linear, WeightSource};
use crate::adapters::{SlotId, SlotKind};
use crate::Result;
use candle_core::{DType, Device, Tensor};

#[derive(Debug, Clone)]
pub struct BertSelfAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    /// `attention.output.dense`.
    pub output: Linear,
    pub num_heads: usize,
    pub head_dim: usize,
}

impl BertSelfAttention {
    pub(crate) fn load(
        cfg: &BertConfig,
        prefix: &str,
        src: &mut WeightSource,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let h = cfg.hidden_size;
        let std = cfg.initializer_range;
        let mut lin =
            |name: &str| load_linear(src, &format!("{prefix}.{name}"), h, h, std, dtype, device);
        Ok(BertSelfAttention {
            query: lin("self.query")?,
            key: lin("self.key")?,
            value: lin("self.value")?,
            output: lin("output.dense")?,
            num_heads: cfg.num_attention_heads,
            head_dim: cfg.head_dim(),
        })
    }

    /// `x [b, s, hidden]`, `mask_bias [b, 1, 1, s]` (0 on tokens, large negative on pads) ->
    /// `AttnOutput(context) [b, s, hidden]`, before the hidden dropout, the residual and the
    /// LayerNorm (which the layer applies in one fused op).
    pub(crate) fn forward(
        &self,
        layer: usize,
        x: &Tensor,
        mask_bias: &Tensor,
        ctx: &mut Ctx,
    ) -> Result<Tensor> {
        let slot = |k| SlotId::new(layer, k);
        let q = ctx.linear(slot(SlotKind::Query), &self.query, x)?;
        let k = ctx.linear(slot(SlotKind::Key), &self.key, x)?;
        let v = ctx.linear(slot(SlotKind::Value), &self.value, x)?;
        let p = ctx.attention_dropout;
        let seed = ctx.dropout_seed(p);
        let context = fused::attention(&q, &k, &v, mask_bias, self.num_heads, p, seed)?;
        ctx.linear(slot(SlotKind::AttnOutput), &self.output, &context)
    }

    pub fn params(&self) -> usize {
        self.query.params() + self.key.params() + self.value.params() + self.output.params()
    }

    pub(crate) fn map(&self, f: &dyn Fn(&Tensor) -> Result<Tensor>) -> Result<Self> {
        Ok(BertSelfAttention {
            query: self.query.map(f)?,
            key: self.key.map(f)?,
            value: self.value.map(f)?,
            output: self.output.map(f)?,
            ..*self
        })
    }
}
