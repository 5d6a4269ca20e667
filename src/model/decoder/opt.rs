//! OPT (Zhang et al., *OPT: Open Pre-trained Transformer Language Models*, arXiv 2205.01068) as a
//! decoder with adapter slots, mirroring transformers' `models/opt/modeling_opt.py`.
//!
//! Learned positions with OPT's offset of 2 taken from the attention mask (`cumsum(mask) * mask -
//! 1 + 2`, so left padding shifts nothing), optional `project_in` / `project_out` when
//! `word_embed_proj_dim != hidden_size` (OPT-350M), pre-LN (`do_layer_norm_before`, most sizes) or
//! post-LN (OPT-350M), biased q/k/v/out projections, `fc1` / `fc2` with ReLU. Dropout is left out:
//! this backbone always computes the evaluation-mode function (LoRA dropout still applies).
//!
//! Adapter slots per layer: LoRA on `q_proj`, `k_proj`, `v_proj`, `out_proj`, `fc1`, `fc2`, and the
//! four shortcuts. With input `x`, `p` the previous layer's post-attention residual stream:
//!
//! ```text
//! pre-LN:   h = Attn(LN1(x)) + S_r1(x) + S_sc2(p)        out = FFN(LN2(h)) + S_r2(h) + S_sc1(x)
//! post-LN:  h = LN1(Attn(x) + S_r1(x) + S_sc2(p))        out = LN2(FFN(h) + S_r2(h) + S_sc1(x))
//! ```
//!
//! so that a fresh shortcut (B = 0) is an exact no-op in both (see [`super`]).

use super::common::{
    attention, causal_mask_bias, embed, linears_params, load_linear_maybe_bias, run_layers,
    AttnShape,
};
use crate::adapters::{SlotId, SlotKind};
use crate::model::config::HiddenAct;
use crate::model::context::Ctx;
use crate::model::nn::{LayerNorm, Linear};
use crate::model::weights::{load_layer_norm, Init, WeightSource};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

/// OPT's `config.json` (fields and defaults of `transformers.OPTConfig`; unknown fields ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OptConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub ffn_dim: usize,
    pub max_position_embeddings: usize,
    pub do_layer_norm_before: bool,
    #[serde(rename = "_remove_final_layer_norm")]
    pub remove_final_layer_norm: bool,
    /// Width of the token embeddings and of the head's input; `None` = `hidden_size`.
    pub word_embed_proj_dim: Option<usize>,
    pub num_attention_heads: usize,
    pub activation_function: HiddenAct,
    pub init_std: f64,
    pub enable_bias: bool,
    pub layer_norm_elementwise_affine: bool,
    pub pad_token_id: Option<u32>,
}

impl Default for OptConfig {
    fn default() -> Self {
        OptConfig {
            vocab_size: 50272,
            hidden_size: 768,
            num_hidden_layers: 12,
            ffn_dim: 3072,
            max_position_embeddings: 2048,
            do_layer_norm_before: true,
            remove_final_layer_norm: false,
            word_embed_proj_dim: None,
            num_attention_heads: 12,
            activation_function: HiddenAct::Relu,
            init_std: 0.02,
            enable_bias: true,
            layer_norm_elementwise_affine: true,
            pad_token_id: Some(1),
        }
    }
}

impl OptConfig {
    pub fn word_embed_proj_dim(&self) -> usize {
        self.word_embed_proj_dim.unwrap_or(self.hidden_size)
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    pub fn validate(&self) -> Result<()> {
        if self.num_attention_heads == 0 || self.hidden_size % self.num_attention_heads != 0 {
            return Err(Error::Config {
                field: "num_attention_heads".into(),
                reason: format!(
                    "hidden_size {} is not divisible by {} heads",
                    self.hidden_size, self.num_attention_heads
                ),
            });
        }
        if !self.layer_norm_elementwise_affine {
            return Err(Error::Config {
                field: "layer_norm_elementwise_affine".into(),
                reason: "false is not supported".into(),
            });
        }
        Ok(())
    }
}

/// One OPT decoder layer.
#[derive(Debug, Clone)]
pub struct OptLayer {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub out_proj: Linear,
    /// `self_attn_layer_norm`.
    pub attn_norm: LayerNorm,
    pub fc1: Linear,
    pub fc2: Linear,
    /// The layer's `final_layer_norm` (around the feed-forward block).
    pub ffn_norm: LayerNorm,
    pub shape: AttnShape,
    pub pre_norm: bool,
    pub act: HiddenAct,
}

fn act(a: HiddenAct, x: &Tensor) -> Result<Tensor> {
    Ok(match a {
        HiddenAct::Relu => x.relu()?,
        HiddenAct::Gelu => x.gelu_erf()?,
        HiddenAct::GeluTanh => x.gelu()?,
        HiddenAct::Silu => x.silu()?,
    })
}

impl OptLayer {
    fn load(
        cfg: &OptConfig,
        layer: usize,
        src: &mut WeightSource,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let p = format!("model.decoder.layers.{layer}");
        let (h, f, std, bias) = (cfg.hidden_size, cfg.ffn_dim, cfg.init_std, cfg.enable_bias);
        let mut lin = |name: &str, i, o| {
            load_linear_maybe_bias(src, &format!("{p}.{name}"), i, o, bias, std, dtype, device)
        };
        let (q_proj, k_proj, v_proj, out_proj) = (
            lin("self_attn.q_proj", h, h)?,
            lin("self_attn.k_proj", h, h)?,
            lin("self_attn.v_proj", h, h)?,
            lin("self_attn.out_proj", h, h)?,
        );
        let (fc1, fc2) = (lin("fc1", h, f)?, lin("fc2", f, h)?);
        let mut norm =
            |name: &str| load_layer_norm(src, &format!("{p}.{name}"), h, 1e-5, dtype, device);
        Ok(OptLayer {
            q_proj,
            k_proj,
            v_proj,
            out_proj,
            attn_norm: norm("self_attn_layer_norm")?,
            fc1,
            fc2,
            ffn_norm: norm("final_layer_norm")?,
            shape: AttnShape {
                heads: cfg.num_attention_heads,
                kv_heads: cfg.num_attention_heads,
                head_dim: cfg.head_dim(),
            },
            pre_norm: cfg.do_layer_norm_before,
            act: cfg.activation_function,
        })
    }

    /// `x [b, s, hidden]`, `prev` (the previous layer's post-attention stream; `None` in layer 0),
    /// `bias [b, 1, s, s]` -> (layer output, this layer's post-attention stream `h`).
    pub(crate) fn forward(
        &self,
        layer: usize,
        x: &Tensor,
        prev: Option<&Tensor>,
        bias: &Tensor,
        ctx: &mut Ctx,
    ) -> Result<(Tensor, Tensor)> {
        let slot = |k| SlotId::new(layer, k);
        let a_in = if self.pre_norm {
            self.attn_norm.forward(x)?
        } else {
            x.clone()
        };
        let q = ctx.linear(slot(SlotKind::Query), &self.q_proj, &a_in)?;
        let k = ctx.linear(slot(SlotKind::Key), &self.k_proj, &a_in)?;
        let v = ctx.linear(slot(SlotKind::Value), &self.v_proj, &a_in)?;
        let scale = 1.0 / (self.shape.head_dim as f64).sqrt();
        let c = attention(&q, &k, &v, bias, &self.shape, scale, None)?;
        let a = ctx.linear(slot(SlotKind::AttnOutput), &self.out_proj, &c)?;
        let mut h = (a + shortcut_sum(ctx, layer, x, prev, true)?)?;
        if !self.pre_norm {
            h = self.attn_norm.forward(&h)?;
        }
        let f_in = if self.pre_norm {
            self.ffn_norm.forward(&h)?
        } else {
            h.clone()
        };
        let inter = act(
            self.act,
            &ctx.linear(slot(SlotKind::FfnIn), &self.fc1, &f_in)?,
        )?;
        let f = ctx.linear(slot(SlotKind::FfnOut), &self.fc2, &inter)?;
        let mut out = (f + shortcut_sum(ctx, layer, &h, Some(x), false)?)?;
        if !self.pre_norm {
            out = self.ffn_norm.forward(&out)?;
        }
        Ok((out, h))
    }

    pub(crate) fn linear_mut(&mut self, kind: SlotKind) -> Option<&mut Linear> {
        Some(match kind {
            SlotKind::Query => &mut self.q_proj,
            SlotKind::Key => &mut self.k_proj,
            SlotKind::Value => &mut self.v_proj,
            SlotKind::AttnOutput => &mut self.out_proj,
            SlotKind::FfnIn => &mut self.fc1,
            SlotKind::FfnOut => &mut self.fc2,
            _ => return None,
        })
    }

    pub fn params(&self) -> usize {
        linears_params(&[
            &self.q_proj,
            &self.k_proj,
            &self.v_proj,
            &self.out_proj,
            &self.fc1,
            &self.fc2,
        ]) + self.attn_norm.params()
            + self.ffn_norm.params()
    }
}

/// The residual term of one half of a decoder layer: `S_r1(x) + S_sc2(prev)` around attention
/// (`attn = true`, `other` = the previous layer's stream), `S_r2(h) + S_sc1(x)` around the
/// feed-forward block (`other` = the layer input). A disabled residual shortcut is the plain
/// residual, a disabled zero shortcut adds nothing.
pub(crate) fn shortcut_sum(
    ctx: &mut Ctx,
    layer: usize,
    main: &Tensor,
    other: Option<&Tensor>,
    attn: bool,
) -> Result<Tensor> {
    let (res, extra) = if attn {
        (SlotKind::Residual1, SlotKind::Shortcut2)
    } else {
        (SlotKind::Residual2, SlotKind::Shortcut1)
    };
    let mut r = ctx
        .shortcut(SlotId::new(layer, res), main)?
        .expect("an identity shortcut always contributes");
    if let Some(o) = other.filter(|_| extra.exists_in_layer(layer)) {
        if let Some(s) = ctx.shortcut(SlotId::new(layer, extra), o)? {
            r = (r + s)?;
        }
    }
    Ok(r)
}

/// OPT's decoder (`model.decoder` of `OPTForSequenceClassification`).
///
/// # Shapes
/// `input_ids`, `attention_mask` `[b, s]` -> last hidden state `[b, s, word_embed_proj_dim]`
/// (after `final_layer_norm` and `project_out` when present).
#[derive(Debug, Clone)]
pub struct OptDecoder {
    pub cfg: OptConfig,
    /// `embed_tokens.weight` `[vocab, word_embed_proj_dim]`.
    pub embed_tokens: Tensor,
    /// `embed_positions.weight` `[max_position_embeddings + 2, hidden]`.
    pub embed_positions: Tensor,
    pub project_in: Option<Linear>,
    pub project_out: Option<Linear>,
    pub final_layer_norm: Option<LayerNorm>,
    pub layers: Vec<OptLayer>,
}

/// OPT's learned positions start at index 2 (its embedding table keeps two leading rows).
const POSITION_OFFSET: i64 = 2;

impl OptDecoder {
    pub(crate) fn load(
        cfg: &OptConfig,
        src: &mut WeightSource,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        cfg.validate()?;
        let (h, w, std) = (cfg.hidden_size, cfg.word_embed_proj_dim(), cfg.init_std);
        let p = "model.decoder";
        let mut get = |name: &str, shape: &[usize]| {
            src.get(
                &format!("{p}.{name}"),
                shape,
                Init::Normal,
                std,
                dtype,
                device,
            )
        };
        let embed_tokens = get("embed_tokens.weight", &[cfg.vocab_size, w])?;
        let embed_positions = get(
            "embed_positions.weight",
            &[cfg.max_position_embeddings + 2, h],
        )?;
        let proj = w != h;
        let project_in = if proj {
            Some(load_linear_maybe_bias(
                src,
                &format!("{p}.project_in"),
                w,
                h,
                false,
                std,
                dtype,
                device,
            )?)
        } else {
            None
        };
        let project_out = if proj {
            Some(load_linear_maybe_bias(
                src,
                &format!("{p}.project_out"),
                h,
                w,
                false,
                std,
                dtype,
                device,
            )?)
        } else {
            None
        };
        let final_layer_norm = if cfg.do_layer_norm_before && !cfg.remove_final_layer_norm {
            Some(load_layer_norm(
                src,
                &format!("{p}.final_layer_norm"),
                h,
                1e-5,
                dtype,
                device,
            )?)
        } else {
            None
        };
        let layers = (0..cfg.num_hidden_layers)
            .map(|l| OptLayer::load(cfg, l, src, dtype, device))
            .collect::<Result<_>>()?;
        Ok(OptDecoder {
            cfg: cfg.clone(),
            embed_tokens,
            embed_positions,
            project_in,
            project_out,
            final_layer_norm,
            layers,
        })
    }

    /// Position ids `[b, s]` into the position table: `cumsum(mask) * mask - 1 + 2`.
    fn position_ids(attention_mask: &Tensor) -> Result<Tensor> {
        let m: Vec<Vec<i64>> = attention_mask.to_dtype(DType::I64)?.to_vec2()?;
        let (b, s) = (m.len(), m.first().map_or(0, |r| r.len()));
        let mut out = Vec::with_capacity(b * s);
        for row in &m {
            let mut c = 0;
            for &t in row {
                c += t;
                out.push((c * t - 1 + POSITION_OFFSET) as u32);
            }
        }
        Ok(Tensor::from_vec(out, (b, s), attention_mask.device())?)
    }

    pub(crate) fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        ctx: &mut Ctx,
    ) -> Result<Tensor> {
        let (b, s) = input_ids.dims2()?;
        if s > self.cfg.max_position_embeddings {
            return Err(Error::invalid(
                "sequence length",
                s,
                format!(
                    "at most max_position_embeddings = {}",
                    self.cfg.max_position_embeddings
                ),
            ));
        }
        let mut x = embed(&self.embed_tokens, input_ids)?;
        if let Some(p) = &self.project_in {
            x = p.forward(&x)?;
        }
        let pos = Self::position_ids(attention_mask)?.flatten_all()?;
        let pe = self
            .embed_positions
            .index_select(&pos, 0)?
            .reshape((b, s, ()))?;
        let x = (x + pe)?;
        let bias = causal_mask_bias(attention_mask, x.dtype())?;
        let mut x = run_layers(self.layers.len(), x, |l, x, prev| {
            self.layers[l].forward(l, x, prev, &bias, ctx)
        })?;
        if let Some(n) = &self.final_layer_norm {
            x = n.forward(&x)?;
        }
        if let Some(p) = &self.project_out {
            x = p.forward(&x)?;
        }
        Ok(x)
    }

    pub(crate) fn linear_mut(&mut self, slot: SlotId) -> Option<&mut Linear> {
        self.layers.get_mut(slot.layer)?.linear_mut(slot.kind)
    }

    pub fn params(&self) -> usize {
        self.embed_tokens.elem_count()
            + self.embed_positions.elem_count()
            + self.project_in.as_ref().map_or(0, |p| p.params())
            + self.project_out.as_ref().map_or(0, |p| p.params())
            + self.final_layer_norm.as_ref().map_or(0, |n| n.params())
            + self.layers.iter().map(|l| l.params()).sum::<usize>()
    }
}
