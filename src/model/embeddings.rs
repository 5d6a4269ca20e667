//! Word + position + token-type embeddings, LayerNorm, dropout (Hugging Face's `BertEmbeddings`).

use super::config::BertConfig;
use super::context::Ctx;
use super::nn::LayerNorm;
use super::weights::{Init, WeightSource};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};

#[derive(Debug, Clone)]
pub struct BertEmbeddings {
    /// `[vocab, hidden]`
    pub word_embeddings: Tensor,
    /// `[max_position, hidden]`
    pub position_embeddings: Tensor,
    /// `[type_vocab, hidden]`
    pub token_type_embeddings: Tensor,
    pub layer_norm: LayerNorm,
}

impl BertEmbeddings {
    pub(crate) fn load(
        cfg: &BertConfig,
        src: &mut WeightSource,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let h = cfg.hidden_size;
        let std = cfg.initializer_range;
        let mut get = |name: &str, shape: &[usize], init| {
            src.get(
                &format!("embeddings.{name}"),
                shape,
                init,
                std,
                dtype,
                device,
            )
        };
        Ok(BertEmbeddings {
            word_embeddings: get("word_embeddings.weight", &[cfg.vocab_size, h], Init::Normal)?,
            position_embeddings: get(
                "position_embeddings.weight",
                &[cfg.max_position_embeddings, h],
                Init::Normal,
            )?,
            token_type_embeddings: get(
                "token_type_embeddings.weight",
                &[cfg.type_vocab_size, h],
                Init::Normal,
            )?,
            layer_norm: LayerNorm::new(
                get("LayerNorm.weight", &[h], Init::Ones)?,
                get("LayerNorm.bias", &[h], Init::Zeros)?,
                cfg.layer_norm_eps,
            ),
        })
    }

    /// `input_ids`, `token_type_ids` `[b, s]` (u32) -> `[b, s, hidden]`, after LayerNorm and dropout.
    pub(crate) fn forward(
        &self,
        input_ids: &Tensor,
        token_type_ids: &Tensor,
        ctx: &mut Ctx,
    ) -> Result<Tensor> {
        let (b, s) = input_ids.dims2()?;
        if token_type_ids.dims() != [b, s] {
            return Err(Error::Shape {
                name: "token_type_ids".into(),
                expected: vec![b, s],
                actual: token_type_ids.dims().to_vec(),
            });
        }
        let max_pos = self.position_embeddings.dim(0)?;
        if s > max_pos {
            return Err(Error::invalid(
                "sequence length",
                s,
                format!("at most max_position_embeddings = {max_pos}; truncate the inputs"),
            ));
        }
        let h = self.word_embeddings.dim(1)?;
        let ids = input_ids.flatten_all()?;
        let words = self.word_embeddings.index_select(&ids, 0)?;
        let types = self
            .token_type_embeddings
            .index_select(&token_type_ids.flatten_all()?, 0)?;
        let x = (words + types)?.reshape((b, s, h))?;
        let pos = self.position_embeddings.narrow(0, 0, s)?;
        let x = x.broadcast_add(&pos)?;
        let x = self.layer_norm.forward(&x)?;
        let p = ctx.hidden_dropout;
        ctx.dropout(&x, p)
    }

    pub fn params(&self) -> usize {
        self.word_embeddings.elem_count()
            + self.position_embeddings.elem_count()
            + self.token_type_embeddings.elem_count()
            + self.layer_norm.params()
    }

    pub(crate) fn map(&self, f: &dyn Fn(&Tensor) -> Result<Tensor>) -> Result<Self> {
        Ok(BertEmbeddings {
            word_embeddings: f(&self.word_embeddings)?,
            position_embeddings: f(&self.position_embeddings)?,
            token_type_embeddings: f(&self.token_type_embeddings)?,
            layer_norm: self.layer_norm.map(f)?,
        })
    }
}
