//! [`BertModel`]: embeddings, the layer stack and the pooler (Hugging Face's `BertModel`).

use super::config::BertConfig;
use super::context::Ctx;
use super::embeddings::BertEmbeddings;
use super::layer::BertLayer;
use super::nn::Linear;
use super::weights::{load_linear, WeightSource};
use crate::adapters::SlotId;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};

/// The frozen base encoder. Its tensors are constants: no gradient is ever computed for them.
#[derive(Debug, Clone)]
pub struct BertModel {
    pub embeddings: BertEmbeddings,
    pub layers: Vec<BertLayer>,
    /// `pooler.dense` (tanh on the first token's final hidden state).
    pub pooler: Linear,
}

/// Hidden states of one forward pass.
#[derive(Debug, Clone)]
pub struct EncoderOutput {
    /// `num_layers + 1` tensors `[b, s, hidden]`: the embeddings output, then each layer's output
    /// (Hugging Face's `output_hidden_states`).
    pub hidden_states: Vec<Tensor>,
    /// `tanh(pooler(hidden_states.last()[:, 0]))` `[b, hidden]`.
    pub pooled: Tensor,
}

impl BertModel {
    /// Loads everything but the pooler, then the pooler if the file has it. Returns whether the
    /// pooler was missing and initialised (normal(0, initializer_range), zero bias) instead.
    pub(crate) fn load(
        cfg: &BertConfig,
        src: &mut WeightSource,
        pooler_src: &mut WeightSource,
        dtype: DType,
        device: &Device,
    ) -> Result<(Self, bool)> {
        let embeddings = BertEmbeddings::load(cfg, src, dtype, device)?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| BertLayer::load(cfg, i, src, dtype, device))
            .collect::<Result<Vec<_>>>()?;
        let h = cfg.hidden_size;
        let has_pooler =
            matches!(src, WeightSource::Random { .. }) || src.contains("pooler.dense.weight");
        let pooler_from = if has_pooler { src } else { pooler_src };
        let pooler = load_linear(
            pooler_from,
            "pooler.dense",
            h,
            h,
            cfg.initializer_range,
            dtype,
            device,
        )?;
        Ok((
            BertModel {
                embeddings,
                layers,
                pooler,
            },
            !has_pooler,
        ))
    }

    /// The additive attention bias `[b, 1, 1, s]` from a `[b, s]` 0/1 mask.
    pub(crate) fn mask_bias(attention_mask: &Tensor, dtype: DType) -> Result<Tensor> {
        let (b, s) = attention_mask.dims2()?;
        // exp(-1e9) and exp(finfo.min) are both exactly 0; f16 cannot hold -1e9.
        let neg = if dtype == DType::F16 { -1e4 } else { -1e9 };
        let m = attention_mask.to_dtype(DType::F32)?;
        Ok(m.affine(-neg, neg)?
            .to_dtype(dtype)?
            .reshape((b, 1, 1, s))?)
    }

    /// Runs the layers on `x` `[b, s, hidden]` (the embeddings output) and the pooler.
    pub(crate) fn encode_from_embeddings(
        &self,
        x: Tensor,
        attention_mask: &Tensor,
        ctx: &mut Ctx,
    ) -> Result<EncoderOutput> {
        let (b, s, _) = x.dims3()?;
        if attention_mask.dims() != [b, s] {
            return Err(Error::Shape {
                name: "attention_mask".into(),
                expected: vec![b, s],
                actual: attention_mask.dims().to_vec(),
            });
        }
        let bias = Self::mask_bias(attention_mask, x.dtype())?;
        let mut hidden_states = Vec::with_capacity(self.layers.len() + 1);
        hidden_states.push(x.clone());
        let mut cur = x;
        let mut prev_ffn_input: Option<Tensor> = None;
        for (i, layer) in self.layers.iter().enumerate() {
            let (out, ffn_input) = layer.forward(i, &cur, prev_ffn_input.as_ref(), &bias, ctx)?;
            hidden_states.push(out.clone());
            cur = out;
            prev_ffn_input = Some(ffn_input);
        }
        let cls = cur.narrow(1, 0, 1)?.squeeze(1)?;
        let pooled = self.pooler.forward(&cls)?.tanh()?;
        Ok(EncoderOutput {
            hidden_states,
            pooled,
        })
    }

    pub(crate) fn encode(
        &self,
        input_ids: &Tensor,
        token_type_ids: &Tensor,
        attention_mask: &Tensor,
        ctx: &mut Ctx,
    ) -> Result<EncoderOutput> {
        let x = self.embeddings.forward(input_ids, token_type_ids, ctx)?;
        self.encode_from_embeddings(x, attention_mask, ctx)
    }

    /// The frozen linear map of a LoRA slot.
    pub fn slot_linear(&self, slot: SlotId) -> Option<&Linear> {
        self.layers.get(slot.layer)?.linear(slot.kind)
    }

    pub(crate) fn slot_linear_mut(&mut self, slot: SlotId) -> Option<&mut Linear> {
        self.layers.get_mut(slot.layer)?.linear_mut(slot.kind)
    }

    /// Every weight with its Hugging Face name (`embeddings.word_embeddings.weight`, ...,
    /// `pooler.dense.bias`), e.g. to write a merged model as a `BertModel` safetensors file.
    pub fn named_weights(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        let e = &self.embeddings;
        for (n, t) in [
            ("word_embeddings.weight", &e.word_embeddings),
            ("position_embeddings.weight", &e.position_embeddings),
            ("token_type_embeddings.weight", &e.token_type_embeddings),
            ("LayerNorm.weight", &e.layer_norm.weight),
            ("LayerNorm.bias", &e.layer_norm.bias),
        ] {
            out.push((format!("embeddings.{n}"), t.clone()));
        }
        let mut lin = |name: String, l: &Linear| {
            out.push((format!("{name}.weight"), l.weight.clone()));
            if let Some(b) = &l.bias {
                out.push((format!("{name}.bias"), b.clone()));
            }
        };
        for (i, layer) in self.layers.iter().enumerate() {
            let p = format!("encoder.layer.{i}");
            lin(format!("{p}.attention.self.query"), &layer.attention.query);
            lin(format!("{p}.attention.self.key"), &layer.attention.key);
            lin(format!("{p}.attention.self.value"), &layer.attention.value);
            lin(
                format!("{p}.attention.output.dense"),
                &layer.attention.output,
            );
            lin(format!("{p}.intermediate.dense"), &layer.ffn_in);
            lin(format!("{p}.output.dense"), &layer.ffn_out);
        }
        lin("pooler.dense".to_string(), &self.pooler);
        for (i, layer) in self.layers.iter().enumerate() {
            let p = format!("encoder.layer.{i}");
            for (n, ln) in [
                ("attention.output.LayerNorm", &layer.attention_norm),
                ("output.LayerNorm", &layer.output_norm),
            ] {
                out.push((format!("{p}.{n}.weight"), ln.weight.clone()));
                out.push((format!("{p}.{n}.bias"), ln.bias.clone()));
            }
        }
        out
    }

    /// Parameters of embeddings, layers and pooler.
    pub fn params(&self) -> usize {
        self.embeddings.params()
            + self.layers.iter().map(|l| l.params()).sum::<usize>()
            + self.pooler.params()
    }

    pub(crate) fn map(&self, f: &dyn Fn(&Tensor) -> Result<Tensor>) -> Result<Self> {
        Ok(BertModel {
            embeddings: self.embeddings.map(f)?,
            layers: self
                .layers
                .iter()
                .map(|l| l.map(f))
                .collect::<Result<_>>()?,
            pooler: self.pooler.map(f)?,
        })
    }
}
