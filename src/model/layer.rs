//! One post-LN BERT layer with its six LoRA slots and four shortcut slots.
//!
//! The data flow, including where the shortcuts enter, is documented in
//! [`crate::adapters::shortcut`].

use super::attention::BertSelfAttention;
use super::config::{BertConfig, HiddenAct};
use super::context::Ctx;
use super::nn::{LayerNorm, Linear};
use super::weights::{load_layer_norm, load_linear, WeightSource};
use crate::adapters::{ShortcutPlacement, SlotId, SlotKind};
use crate::Result;
use candle_core::{DType, Device, Tensor};

#[derive(Debug, Clone)]
pub struct BertLayer {
    pub attention: BertSelfAttention,
    /// `attention.output.LayerNorm`.
    pub attention_norm: LayerNorm,
    /// `intermediate.dense`.
    pub ffn_in: Linear,
    /// `output.dense`.
    pub ffn_out: Linear,
    /// `output.LayerNorm`.
    pub output_norm: LayerNorm,
    pub act: HiddenAct,
    pub eps: f64,
}

fn activation(act: HiddenAct, x: &Tensor) -> Result<Tensor> {
    Ok(match act {
        HiddenAct::Gelu => super::fused::gelu_erf(x)?,
        HiddenAct::GeluTanh => x.gelu()?,
        HiddenAct::Relu => x.relu()?,
        HiddenAct::Silu => x.silu()?,
    })
}

impl BertLayer {
    pub(crate) fn load(
        cfg: &BertConfig,
        layer: usize,
        src: &mut WeightSource,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let p = format!("encoder.layer.{layer}");
        let (h, i, eps, std) = (
            cfg.hidden_size,
            cfg.intermediate_size,
            cfg.layer_norm_eps,
            cfg.initializer_range,
        );
        Ok(BertLayer {
            attention: BertSelfAttention::load(cfg, &format!("{p}.attention"), src, dtype, device)?,
            attention_norm: load_layer_norm(
                src,
                &format!("{p}.attention.output.LayerNorm"),
                h,
                eps,
                dtype,
                device,
            )?,
            ffn_in: load_linear(
                src,
                &format!("{p}.intermediate.dense"),
                h,
                i,
                std,
                dtype,
                device,
            )?,
            ffn_out: load_linear(src, &format!("{p}.output.dense"), i, h, std, dtype, device)?,
            output_norm: load_layer_norm(
                src,
                &format!("{p}.output.LayerNorm"),
                h,
                eps,
                dtype,
                device,
            )?,
            act: cfg.hidden_act,
            eps,
        })
    }

    /// `x [b, s, hidden]` (layer input), `prev_ffn_input` (the previous layer's feed-forward input,
    /// `None` in layer 0) -> (layer output, this layer's feed-forward input), both `[b, s, hidden]`.
    pub(crate) fn forward(
        &self,
        layer: usize,
        x: &Tensor,
        prev_ffn_input: Option<&Tensor>,
        mask_bias: &Tensor,
        ctx: &mut Ctx,
    ) -> Result<(Tensor, Tensor)> {
        let slot = |k| SlotId::new(layer, k);
        let extra = ctx.placement == ShortcutPlacement::ExtraNorm;

        let attn = self.attention.forward(layer, x, mask_bias, ctx)?;
        let res1 = ctx
            .shortcut(slot(SlotKind::Residual1), x)?
            .expect("an identity shortcut always contributes");
        let sc2 = match prev_ffn_input {
            Some(p) if layer > 0 => ctx.shortcut(slot(SlotKind::Shortcut2), p)?,
            _ => None,
        };
        // InsideNorm: the cross-layer shortcuts join the residual sum inside the LayerNorm.
        // ExtraNorm (the authors'): they are added after it and the layer's own pretrained
        // LayerNorm (weight and bias) is applied once more, whether the shortcut is on or off, in
        // every layer that has the shortcut (shortcut2 from layer 1 on, shortcut1 everywhere).
        let mut residual = res1;
        if !extra {
            if let Some(s) = &sc2 {
                residual = (residual + s)?;
            }
        }
        let p = ctx.hidden_dropout;
        let mut h =
            self.attention_norm
                .forward_residual(&attn, &residual, p, ctx.rng.as_deref_mut())?;
        if extra && layer > 0 && prev_ffn_input.is_some() {
            let pre = match sc2 {
                Some(s) => (h + s)?,
                None => h,
            };
            h = self.attention_norm.forward(&pre)?;
        }

        let inter = activation(
            self.act,
            &ctx.linear(slot(SlotKind::FfnIn), &self.ffn_in, &h)?,
        )?;
        let f = ctx.linear(slot(SlotKind::FfnOut), &self.ffn_out, &inter)?;
        let res2 = ctx
            .shortcut(slot(SlotKind::Residual2), &h)?
            .expect("an identity shortcut always contributes");
        let sc1 = ctx.shortcut(slot(SlotKind::Shortcut1), x)?;
        let mut residual = res2;
        if !extra {
            if let Some(s) = &sc1 {
                residual = (residual + s)?;
            }
        }
        let mut out =
            self.output_norm
                .forward_residual(&f, &residual, p, ctx.rng.as_deref_mut())?;
        if extra {
            let pre = match sc1 {
                Some(s) => (out + s)?,
                None => out,
            };
            out = self.output_norm.forward(&pre)?;
        }
        Ok((out, h))
    }

    /// The frozen linear map of a LoRA slot kind; `None` for shortcut kinds.
    pub fn linear(&self, kind: SlotKind) -> Option<&Linear> {
        Some(match kind {
            SlotKind::Query => &self.attention.query,
            SlotKind::Key => &self.attention.key,
            SlotKind::Value => &self.attention.value,
            SlotKind::AttnOutput => &self.attention.output,
            SlotKind::FfnIn => &self.ffn_in,
            SlotKind::FfnOut => &self.ffn_out,
            _ => return None,
        })
    }

    pub(crate) fn linear_mut(&mut self, kind: SlotKind) -> Option<&mut Linear> {
        Some(match kind {
            SlotKind::Query => &mut self.attention.query,
            SlotKind::Key => &mut self.attention.key,
            SlotKind::Value => &mut self.attention.value,
            SlotKind::AttnOutput => &mut self.attention.output,
            SlotKind::FfnIn => &mut self.ffn_in,
            SlotKind::FfnOut => &mut self.ffn_out,
            _ => return None,
        })
    }

    pub fn params(&self) -> usize {
        self.attention.params()
            + self.attention_norm.params()
            + self.ffn_in.params()
            + self.ffn_out.params()
            + self.output_norm.params()
    }

    pub(crate) fn map(&self, f: &dyn Fn(&Tensor) -> Result<Tensor>) -> Result<Self> {
        Ok(BertLayer {
            attention: self.attention.map(f)?,
            attention_norm: self.attention_norm.map(f)?,
            ffn_in: self.ffn_in.map(f)?,
            ffn_out: self.ffn_out.map(f)?,
            output_norm: self.output_norm.map(f)?,
            act: self.act,
            eps: self.eps,
        })
    }
}
