//! The Llama family (Touvron et al., *LLaMA*, arXiv 2302.13971) and Qwen2 as decoders with adapter
//! slots, mirroring transformers' `models/llama/modeling_llama.py` and `models/qwen2/modeling_qwen2.py`.
//!
//! Pre-norm layers with RMSNorm, rotary position embeddings (`rope_type: default`, `rope_theta`;
//! positions `0..s` whatever the padding, as transformers without `position_ids`), grouped-query
//! attention (`num_key_value_heads`), a SwiGLU MLP (`down(silu(gate(x)) * up(x))`), q/k/v biases
//! for Qwen2 (`attention_bias` for Llama). Dropout is left out: the backbone always computes the
//! evaluation-mode function (LoRA dropout still applies). Qwen2's sliding-window attention is not
//! supported (`use_sliding_window: true` is an error).
//!
//! Adapter slots per layer: LoRA on `q_proj`, `k_proj`, `v_proj`, `o_proj`, `up_proj` (kind
//! `intermediate`), `down_proj` (`output`), `gate_proj` (`gate`), and the four shortcuts, placed
//! as in pre-LN OPT ([`super::opt`]): `h = Attn(N1(x)) + S_r1(x) + S_sc2(p)`,
//! `out = MLP(N2(h)) + S_r2(h) + S_sc1(x)`.

use super::common::{
    attention, causal_mask_bias, embed, linears_params, load_linear_maybe_bias, load_rms_norm,
    run_layers, AttnShape, RmsNorm, Rotary,
};
use super::opt::shortcut_sum;
use crate::adapters::{Architecture, SlotId, SlotKind};
use crate::model::context::Ctx;
use crate::model::nn::Linear;
use crate::model::weights::{Init, WeightSource};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

/// `rope_parameters` of transformers 5 (`rope_theta` sat at the top level before).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RopeParameters {
    #[serde(default)]
    pub rope_type: Option<String>,
    #[serde(default)]
    pub rope_theta: Option<f64>,
}

/// The `config.json` of a Llama or Qwen2 model (fields of `transformers.LlamaConfig` /
/// `Qwen2Config`; unknown fields ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LlamaConfig {
    /// `llama` or `qwen2`.
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// `None` = `num_attention_heads` (no grouping).
    pub num_key_value_heads: Option<usize>,
    /// `None` = `hidden_size / num_attention_heads`.
    pub head_dim: Option<usize>,
    pub hidden_act: String,
    pub rms_norm_eps: f64,
    pub initializer_range: f64,
    pub rope_theta: Option<f64>,
    pub rope_parameters: Option<RopeParameters>,
    pub rope_scaling: Option<serde_json::Value>,
    /// Llama's bias on q/k/v/o; Qwen2 always has q/k/v biases.
    pub attention_bias: bool,
    pub mlp_bias: bool,
    pub use_sliding_window: bool,
    pub pad_token_id: Option<u32>,
}

impl Default for LlamaConfig {
    fn default() -> Self {
        LlamaConfig {
            model_type: "llama".into(),
            vocab_size: 32000,
            hidden_size: 4096,
            intermediate_size: 11008,
            num_hidden_layers: 32,
            num_attention_heads: 32,
            num_key_value_heads: None,
            head_dim: None,
            hidden_act: "silu".into(),
            rms_norm_eps: 1e-6,
            initializer_range: 0.02,
            rope_theta: None,
            rope_parameters: None,
            rope_scaling: None,
            attention_bias: false,
            mlp_bias: false,
            use_sliding_window: false,
            pad_token_id: None,
        }
    }
}

impl LlamaConfig {
    pub fn architecture(&self) -> Architecture {
        if self.model_type == "qwen2" {
            Architecture::Qwen2
        } else {
            Architecture::Llama
        }
    }
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }
    /// `rope_parameters.rope_theta`, else `rope_theta`, else 10000 (Llama) / 1e6 (Qwen2).
    pub fn theta(&self) -> f64 {
        self.rope_parameters
            .as_ref()
            .and_then(|r| r.rope_theta)
            .or(self.rope_theta)
            .unwrap_or(match self.architecture() {
                Architecture::Qwen2 => 1e6,
                _ => 10000.0,
            })
    }
    fn qkv_bias(&self) -> bool {
        self.architecture() == Architecture::Qwen2 || self.attention_bias
    }
    fn o_bias(&self) -> bool {
        self.architecture() != Architecture::Qwen2 && self.attention_bias
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, reason: String| {
            Err(Error::Config {
                field: field.into(),
                reason,
            })
        };
        if !matches!(self.model_type.as_str(), "llama" | "qwen2") {
            return bad(
                "model_type",
                format!("`{}` is not llama or qwen2", self.model_type),
            );
        }
        let (h, kv) = (self.num_attention_heads, self.kv_heads());
        if h == 0 || kv == 0 || h % kv != 0 {
            return bad(
                "num_key_value_heads",
                format!("{kv} does not divide num_attention_heads = {h}"),
            );
        }
        if self.head_dim() % 2 != 0 {
            return bad(
                "head_dim",
                format!("{} must be even for rotary embeddings", self.head_dim()),
            );
        }
        if self.hidden_act != "silu" {
            return bad(
                "hidden_act",
                format!("`{}` is not supported (only silu)", self.hidden_act),
            );
        }
        let rope_type = self
            .rope_parameters
            .as_ref()
            .and_then(|r| r.rope_type.clone());
        if rope_type.as_deref().is_some_and(|t| t != "default")
            || self.rope_scaling.as_ref().is_some_and(|v| !v.is_null())
        {
            return bad(
                "rope_parameters",
                "only rope_type `default` (no rope scaling) is supported".into(),
            );
        }
        if self.use_sliding_window {
            return bad(
                "use_sliding_window",
                "sliding-window attention is not supported".into(),
            );
        }
        Ok(())
    }
}

/// One Llama / Qwen2 decoder layer.
#[derive(Debug, Clone)]
pub struct LlamaLayer {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
    /// `input_layernorm`.
    pub attn_norm: RmsNorm,
    /// `post_attention_layernorm`.
    pub mlp_norm: RmsNorm,
    pub shape: AttnShape,
    pub rotary: Rotary,
}

impl LlamaLayer {
    fn load(
        cfg: &LlamaConfig,
        layer: usize,
        src: &mut WeightSource,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let p = format!("model.layers.{layer}");
        let (h, i, std) = (
            cfg.hidden_size,
            cfg.intermediate_size,
            cfg.initializer_range,
        );
        let (q_out, kv_out) = (
            cfg.num_attention_heads * cfg.head_dim(),
            cfg.kv_heads() * cfg.head_dim(),
        );
        let mut lin = |name: &str, d_in, d_out, bias| {
            load_linear_maybe_bias(
                src,
                &format!("{p}.{name}"),
                d_in,
                d_out,
                bias,
                std,
                dtype,
                device,
            )
        };
        let (qb, ob, mb) = (cfg.qkv_bias(), cfg.o_bias(), cfg.mlp_bias);
        let (q_proj, k_proj, v_proj, o_proj) = (
            lin("self_attn.q_proj", h, q_out, qb)?,
            lin("self_attn.k_proj", h, kv_out, qb)?,
            lin("self_attn.v_proj", h, kv_out, qb)?,
            lin("self_attn.o_proj", q_out, h, ob)?,
        );
        let (gate_proj, up_proj, down_proj) = (
            lin("mlp.gate_proj", h, i, mb)?,
            lin("mlp.up_proj", h, i, mb)?,
            lin("mlp.down_proj", i, h, mb)?,
        );
        let eps = cfg.rms_norm_eps;
        Ok(LlamaLayer {
            q_proj,
            k_proj,
            v_proj,
            o_proj,
            gate_proj,
            up_proj,
            down_proj,
            attn_norm: load_rms_norm(src, &format!("{p}.input_layernorm"), h, eps, dtype, device)?,
            mlp_norm: load_rms_norm(
                src,
                &format!("{p}.post_attention_layernorm"),
                h,
                eps,
                dtype,
                device,
            )?,
            shape: AttnShape {
                heads: cfg.num_attention_heads,
                kv_heads: cfg.kv_heads(),
                head_dim: cfg.head_dim(),
            },
            rotary: Rotary {
                theta: cfg.theta(),
                head_dim: cfg.head_dim(),
            },
        })
    }

    /// `x [b, s, hidden]`, `prev` (the previous layer's post-attention stream), `bias [b, 1, s, s]`
    /// -> (layer output, this layer's post-attention stream `h`).
    pub(crate) fn forward(
        &self,
        layer: usize,
        x: &Tensor,
        prev: Option<&Tensor>,
        bias: &Tensor,
        ctx: &mut Ctx,
    ) -> Result<(Tensor, Tensor)> {
        let slot = |k| SlotId::new(layer, k);
        let n = self.attn_norm.forward(x)?;
        let q = ctx.linear(slot(SlotKind::Query), &self.q_proj, &n)?;
        let k = ctx.linear(slot(SlotKind::Key), &self.k_proj, &n)?;
        let v = ctx.linear(slot(SlotKind::Value), &self.v_proj, &n)?;
        let scale = 1.0 / (self.shape.head_dim as f64).sqrt();
        let c = attention(&q, &k, &v, bias, &self.shape, scale, Some(&self.rotary))?;
        let a = ctx.linear(slot(SlotKind::AttnOutput), &self.o_proj, &c)?;
        let h = (a + shortcut_sum(ctx, layer, x, prev, true)?)?;
        let n = self.mlp_norm.forward(&h)?;
        let g = ctx.linear(slot(SlotKind::FfnGate), &self.gate_proj, &n)?;
        let u = ctx.linear(slot(SlotKind::FfnIn), &self.up_proj, &n)?;
        let f = ctx.linear(slot(SlotKind::FfnOut), &self.down_proj, &(g.silu()? * u)?)?;
        let out = (f + shortcut_sum(ctx, layer, &h, Some(x), false)?)?;
        Ok((out, h))
    }

    pub(crate) fn linear_mut(&mut self, kind: SlotKind) -> Option<&mut Linear> {
        Some(match kind {
            SlotKind::Query => &mut self.q_proj,
            SlotKind::Key => &mut self.k_proj,
            SlotKind::Value => &mut self.v_proj,
            SlotKind::AttnOutput => &mut self.o_proj,
            SlotKind::FfnIn => &mut self.up_proj,
            SlotKind::FfnOut => &mut self.down_proj,
            SlotKind::FfnGate => &mut self.gate_proj,
            _ => return None,
        })
    }

    pub fn params(&self) -> usize {
        linears_params(&[
            &self.q_proj,
            &self.k_proj,
            &self.v_proj,
            &self.o_proj,
            &self.gate_proj,
            &self.up_proj,
            &self.down_proj,
        ]) + self.attn_norm.params()
            + self.mlp_norm.params()
    }
}

/// A Llama / Qwen2 model (`model` of `*ForSequenceClassification`).
///
/// # Shapes
/// `input_ids`, `attention_mask` `[b, s]` -> last hidden state `[b, s, hidden]` (after `norm`).
#[derive(Debug, Clone)]
pub struct LlamaModel {
    pub cfg: LlamaConfig,
    /// `embed_tokens.weight` `[vocab, hidden]`.
    pub embed_tokens: Tensor,
    pub layers: Vec<LlamaLayer>,
    /// `norm`.
    pub norm: RmsNorm,
}

impl LlamaModel {
    pub(crate) fn load(
        cfg: &LlamaConfig,
        src: &mut WeightSource,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        cfg.validate()?;
        let h = cfg.hidden_size;
        let embed_tokens = src.get(
            "model.embed_tokens.weight",
            &[cfg.vocab_size, h],
            Init::Normal,
            cfg.initializer_range,
            dtype,
            device,
        )?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|l| LlamaLayer::load(cfg, l, src, dtype, device))
            .collect::<Result<_>>()?;
        let norm = load_rms_norm(src, "model.norm", h, cfg.rms_norm_eps, dtype, device)?;
        Ok(LlamaModel {
            cfg: cfg.clone(),
            embed_tokens,
            layers,
            norm,
        })
    }

    pub(crate) fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        ctx: &mut Ctx,
    ) -> Result<Tensor> {
        let x = embed(&self.embed_tokens, input_ids)?;
        let bias = causal_mask_bias(attention_mask, x.dtype())?;
        let x = run_layers(self.layers.len(), x, |l, x, prev| {
            self.layers[l].forward(l, x, prev, &bias, ctx)
        })?;
        self.norm.forward(&x)
    }

    pub(crate) fn linear_mut(&mut self, slot: SlotId) -> Option<&mut Linear> {
        self.layers.get_mut(slot.layer)?.linear_mut(slot.kind)
    }

    pub fn params(&self) -> usize {
        self.embed_tokens.elem_count()
            + self.norm.params()
            + self.layers.iter().map(|l| l.params()).sum::<usize>()
    }
}
