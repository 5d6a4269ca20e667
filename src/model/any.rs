//! [`Classifier`]: a thin enum over the backbones, BERT's [`SequenceClassifier`] and the decoders'
//! [`DecoderClassifier`], with the operations scoring and fine-tuning need (slots, forward, loss,
//! trainable variables, adapter files). It is the first step of a backbone abstraction: the proxy
//! engine and the trainer still take a [`SequenceClassifier`]; [`crate::proxy::decoder`] and
//! [`crate::train::decoder`] run grad-norm and AdamW steps on any [`Classifier`].
//!
//! ```no_run
//! use heterolora::model::Classifier;
//! use candle_core::{DType, Device};
//! # fn main() -> heterolora::Result<()> {
//! // config.json's model_type picks the backbone: bert, opt, llama or qwen2.
//! let m = Classifier::from_pretrained("tests/fixtures/decoders/qwen2".as_ref(), 3, DType::F32, &Device::Cpu, 0)?;
//! println!("{} slots", m.slot_table().all_slots().len());
//! # Ok(()) }
//! ```

use super::decoder::DecoderClassifier;
use super::SequenceClassifier;
use crate::adapters::{Allocation, Architecture, LoraAdapter, SlotId, SlotTable};
use crate::rng::Rng;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use std::path::Path;

/// A sequence classifier on any supported backbone. Cloning shares the trainable variables.
#[derive(Debug, Clone)]
pub enum Classifier {
    /// BERT: `[CLS]` through the pooler (or the token mean), token types.
    Encoder(SequenceClassifier),
    /// OPT, Llama, Qwen2: the last non-pad token, no token types.
    Decoder(DecoderClassifier),
}

impl From<SequenceClassifier> for Classifier {
    fn from(m: SequenceClassifier) -> Self {
        Classifier::Encoder(m)
    }
}

impl From<DecoderClassifier> for Classifier {
    fn from(m: DecoderClassifier) -> Self {
        Classifier::Decoder(m)
    }
}

impl Classifier {
    /// Loads the model in `model_dir`, picking the backbone from `config.json`'s `model_type`.
    pub fn from_pretrained(
        model_dir: &Path,
        num_labels: usize,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        let p = model_dir.join("config.json");
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::parse(&p, e.line(), e.to_string()))?;
        match v.get("model_type").and_then(|t| t.as_str()) {
            Some("opt" | "llama" | "qwen2") => Ok(Classifier::Decoder(
                DecoderClassifier::from_pretrained(model_dir, num_labels, dtype, device, seed)?,
            )),
            _ => Ok(Classifier::Encoder(SequenceClassifier::from_pretrained(
                model_dir, num_labels, dtype, device, seed,
            )?)),
        }
    }

    pub fn architecture(&self) -> Architecture {
        match self {
            Classifier::Encoder(_) => Architecture::Bert,
            Classifier::Decoder(m) => m.architecture(),
        }
    }

    /// Slot kinds, module paths and sizes of the model.
    pub fn slot_table(&self) -> SlotTable {
        match self {
            Classifier::Encoder(m) => m.slot_table(),
            Classifier::Decoder(m) => m.slot_table().clone(),
        }
    }

    /// Logits `[b, num_labels]`; `token_type_ids` only matter to BERT (zeros when `None`).
    pub fn forward(
        &self,
        input_ids: &Tensor,
        token_type_ids: Option<&Tensor>,
        attention_mask: &Tensor,
        rng: Option<&mut Rng>,
    ) -> Result<Tensor> {
        match self {
            Classifier::Encoder(m) => {
                let zeros;
                let tt = match token_type_ids {
                    Some(t) => t,
                    None => {
                        zeros = input_ids.zeros_like()?;
                        &zeros
                    }
                };
                m.forward(input_ids, tt, attention_mask, rng)
            }
            Classifier::Decoder(m) => m.forward(input_ids, attention_mask, rng),
        }
    }

    pub fn loss(&self, logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
        match self {
            Classifier::Encoder(m) => m.loss(logits, labels),
            Classifier::Decoder(m) => m.loss(logits, labels),
        }
    }

    pub fn add_slot(&mut self, slot: SlotId, r: usize, lora_alpha: f64) -> Result<()> {
        match self {
            Classifier::Encoder(m) => m.add_slot(slot, r, lora_alpha),
            Classifier::Decoder(m) => m.add_slot(slot, r, lora_alpha),
        }
    }

    /// Enables exactly the allocation's slots at its ranks (see the two models' methods).
    pub fn apply_allocation(&mut self, alloc: &Allocation) -> Result<()> {
        match self {
            Classifier::Encoder(m) => m.apply_allocation(alloc),
            Classifier::Decoder(m) => m.apply_allocation(alloc),
        }
    }

    pub fn set_enabled(&mut self, slot: SlotId, on: bool) -> Result<()> {
        match self {
            Classifier::Encoder(m) => m.set_enabled(slot, on),
            Classifier::Decoder(m) => m.set_enabled(slot, on),
        }
    }

    pub fn adapter(&self, slot: SlotId) -> Option<&LoraAdapter> {
        match self {
            Classifier::Encoder(m) => m.adapter(slot),
            Classifier::Decoder(m) => m.adapter(slot),
        }
    }

    pub fn enabled_slots(&self) -> Vec<SlotId> {
        match self {
            Classifier::Encoder(m) => m.enabled_slots(),
            Classifier::Decoder(m) => m.enabled_slots(),
        }
    }

    /// Enabled adapters and the head, by PEFT key.
    pub fn trainable_vars(&self) -> Vec<(String, Var)> {
        match self {
            Classifier::Encoder(m) => m.trainable_vars(),
            Classifier::Decoder(m) => m.trainable_vars(),
        }
    }

    pub fn trainable_params(&self) -> usize {
        match self {
            Classifier::Encoder(m) => m.trainable_params(),
            Classifier::Decoder(m) => m.trainable_params(),
        }
    }

    pub fn save_adapters(&self, dir: &Path) -> Result<()> {
        match self {
            Classifier::Encoder(m) => m.save_adapters(dir),
            Classifier::Decoder(m) => m.save_adapters(dir),
        }
    }

    pub fn load_adapters(&mut self, dir: &Path) -> Result<()> {
        match self {
            Classifier::Encoder(m) => m.load_adapters(dir),
            Classifier::Decoder(m) => m.load_adapters(dir),
        }
    }
}
