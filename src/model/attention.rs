//! Multi-head self-attention with LoRA slots on query, key, value and the output projection
//! (Hugging Face's `BertSelfAttention` + `BertSelfOutput.dense`; the LayerNorm is in the layer).

use super::config::BertConfig;
use super::context::Ctx;
use super::nn::{softmax_last, Linear};
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
    /// `Dropout(AttnOutput(context)) [b, s, hidden]`, before the residual and LayerNorm.
    pub(crate) fn forward(
        &self,
        layer: usize,
        x: &Tensor,
        mask_bias: &Tensor,
        ctx: &mut Ctx,
    ) -> Result<Tensor> {
        let (b, s, hidden) = x.dims3()?;
        let slot = |k| SlotId::new(layer, k);
        // [b, s, hidden] -> [b, heads, s, head_dim]
        let split = |t: Tensor| -> Result<Tensor> {
            Ok(t.reshape((b, s, self.num_heads, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let q = split(ctx.linear(slot(SlotKind::Query), &self.query, x)?)?;
        let k = split(ctx.linear(slot(SlotKind::Key), &self.key, x)?)?;
        let v = split(ctx.linear(slot(SlotKind::Value), &self.value, x)?)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        // [b, heads, s, s]
        let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(mask_bias)?;
        let probs = softmax_last(&scores)?;
        let p = ctx.attention_dropout;
        let probs = ctx.dropout(&probs, p)?;
        // [b, heads, s, head_dim] -> [b, s, hidden]
        let context = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, s, hidden))?;
        let out = ctx.linear(slot(SlotKind::AttnOutput), &self.output, &context)?;
        let p = ctx.hidden_dropout;
        ctx.dropout(&out, p)
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
