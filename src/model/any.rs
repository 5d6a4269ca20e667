//! [`Classifier`]: a thin enum over the backbones, BERT's [`SequenceClassifier`] and the decoders'
//! [`DecoderClassifier`], with the operations scoring and fine-tuning need (slots, forward, loss,
//! trainable variables, adapter files). Everything scoring and training use of it is
//! [`super::AdaptedClassifier`], which both backbones implement: [`crate::proxy::gradient_pass`],
//! [`crate::proxy::score_on`] and [`crate::train::Trainer`] take a [`Classifier`] as they take
//! either model.
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

use super::decoder::classifier::{model_type, read_config};
use super::decoder::DecoderClassifier;
use super::AdaptedClassifier;
use super::SequenceClassifier;
use crate::adapters::{Architecture, ModelDims, SlotId, SlotTable};
use crate::display::{escape, thousands};
use crate::rng::Rng;
use crate::Result;
use candle_core::{DType, Device, Tensor};
use std::collections::BTreeMap;
use std::path::Path;

/// A sequence classifier on any supported backbone. Cloning shares the trainable variables; slots,
/// loss, trainable variables and adapter files are [`super::AdaptedClassifier`]'s.
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
        // Without a config.json, BERT's loader says how to fetch the model.
        let v = match model_dir.join("config.json").exists() {
            true => read_config(model_dir)?.1,
            false => serde_json::Value::Null,
        };
        match model_type(&v) {
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

    /// Layers, hidden and feed-forward width (BERT's [`SequenceClassifier::dims`]); sizing slots
    /// of a decoder (grouped-query k/v, the gate) needs [`Classifier::slot_table`].
    pub fn dims(&self) -> ModelDims {
        match self {
            Classifier::Encoder(m) => m.dims(),
            Classifier::Decoder(m) => m.slot_table().model_dims(),
        }
    }

    /// BERT's classifier, or `None` for a decoder.
    pub fn as_bert(&self) -> Option<&SequenceClassifier> {
        match self {
            Classifier::Encoder(m) => Some(m),
            Classifier::Decoder(_) => None,
        }
    }

    /// Slots with an adapter, enabled or not, in (layer, kind) order.
    pub fn adapter_slots(&self) -> Vec<SlotId> {
        AdaptedClassifier::adapter_slots(self)
    }

    /// Parameters of each enabled adapter: r * (d_in + d_out).
    pub fn slot_params(&self) -> BTreeMap<SlotId, usize> {
        match self {
            Classifier::Encoder(m) => m.slot_params(),
            Classifier::Decoder(m) => m.slot_params(),
        }
    }

    /// Parameters of the classification head (BERT's with its bias, a decoder's `score` without).
    pub fn head_params(&self) -> usize {
        match self {
            Classifier::Encoder(m) => m.head_params(),
            Classifier::Decoder(m) => {
                m.trainable_params() - m.slot_params().values().sum::<usize>()
            }
        }
    }

    /// An HTML overview: BERT's [`SequenceClassifier::to_html`]; for a decoder its architecture,
    /// sizes, device and parameter counts.
    pub fn to_html(&self) -> String {
        match self {
            Classifier::Encoder(m) => m.to_html(),
            Classifier::Decoder(m) => {
                let t = m.slot_table();
                format!(
                    "<p><b>DecoderClassifier</b>: {} {} layers, hidden {}, feed-forward {}, {} \
                     labels, {:?} on {}; {} adapters on, {} trainable and {} frozen parameters</p>",
                    t.architecture,
                    t.num_layers,
                    t.hidden_size,
                    t.intermediate_size,
                    m.num_labels(),
                    m.dtype(),
                    escape(&crate::device::device_name(m.device())),
                    m.enabled_slots().len(),
                    thousands(m.trainable_params()),
                    thousands(m.base_params()),
                )
            }
        }
    }

    /// Shows [`Classifier::to_html`] inline in an evcxr notebook.
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT",
            self.to_html()
        );
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
}
