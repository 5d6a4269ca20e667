//! [`DecoderClassifier`]: a decoder (OPT, Llama, Qwen2) with a `score` head read at the last
//! non-pad token, as transformers' `*ForSequenceClassification`, with adapter slots.
//!
//! ```no_run
//! use heterolora::model::decoder::DecoderClassifier;
//! use heterolora::adapters::{SlotId, SlotKind};
//! use candle_core::{DType, Device, Tensor};
//! # fn main() -> heterolora::Result<()> {
//! let dir = std::path::Path::new("tests/fixtures/decoders/llama");
//! let mut model = DecoderClassifier::from_pretrained(dir, 3, DType::F32, &Device::Cpu, 0)?;
//! model.add_slot(SlotId::new(0, SlotKind::FfnGate), 4, 8.0)?;
//! let ids = Tensor::new(&[[5u32, 6, 7]], &Device::Cpu)?;
//! let logits = model.forward(&ids, &ids.ones_like()?, None)?; // [1, 3]
//! # Ok(()) }
//! ```

use super::common::{gather_rows, last_token_positions};
use super::llama::{LlamaConfig, LlamaModel};
use super::opt::{OptConfig, OptDecoder};
use crate::adapters::{Architecture, LoraAdapter, ShortcutPlacement, SlotId, SlotTable};
use crate::model::context::Ctx;
use crate::model::nn::{matmul_last, normal_tensor, Linear};
use crate::model::primitives::{cast_to, trainable_dtype};
use crate::model::probe::ProbeState;
use crate::model::weights::{Init, WeightSource};
use crate::rng::Rng;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use std::collections::BTreeMap;
use std::path::Path;

/// The decoder under the head.
#[derive(Debug, Clone)]
pub enum DecoderBackbone {
    Opt(OptDecoder),
    /// Llama or Qwen2.
    Llama(LlamaModel),
}

impl DecoderBackbone {
    /// The slot table of this backbone: kinds, module paths and `(d_in, d_out)` per kind.
    pub fn slot_table(&self) -> SlotTable {
        match self {
            DecoderBackbone::Opt(m) => {
                SlotTable::opt(m.cfg.num_hidden_layers, m.cfg.hidden_size, m.cfg.ffn_dim)
            }
            DecoderBackbone::Llama(m) => {
                let c = &m.cfg;
                SlotTable::llama(
                    c.architecture(),
                    c.num_hidden_layers,
                    c.hidden_size,
                    c.intermediate_size,
                    c.num_attention_heads * c.head_dim(),
                    c.kv_heads() * c.head_dim(),
                )
            }
        }
    }

    /// Width of the last hidden state, which the head reads.
    pub fn output_size(&self) -> usize {
        match self {
            DecoderBackbone::Opt(m) => m.cfg.word_embed_proj_dim(),
            DecoderBackbone::Llama(m) => m.cfg.hidden_size,
        }
    }

    pub fn pad_token_id(&self) -> Option<u32> {
        match self {
            DecoderBackbone::Opt(m) => m.cfg.pad_token_id,
            DecoderBackbone::Llama(m) => m.cfg.pad_token_id,
        }
    }

    fn init_std(&self) -> f64 {
        match self {
            DecoderBackbone::Opt(m) => m.cfg.init_std,
            DecoderBackbone::Llama(m) => m.cfg.initializer_range,
        }
    }

    /// `[b, s]` ids and mask -> last hidden state `[b, s, output_size]`.
    pub(crate) fn forward(&self, ids: &Tensor, mask: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        match self {
            DecoderBackbone::Opt(m) => m.forward(ids, mask, ctx),
            DecoderBackbone::Llama(m) => m.forward(ids, mask, ctx),
        }
    }

    pub(crate) fn linear_mut(&mut self, slot: SlotId) -> Option<&mut Linear> {
        match self {
            DecoderBackbone::Opt(m) => m.linear_mut(slot),
            DecoderBackbone::Llama(m) => m.linear_mut(slot),
        }
    }

    pub fn params(&self) -> usize {
        match self {
            DecoderBackbone::Opt(m) => m.params(),
            DecoderBackbone::Llama(m) => m.params(),
        }
    }
}

/// A decoder sequence classifier with adapter slots.
///
/// Cloning is cheap and shares the trainable variables (adapters, head).
///
/// # Shapes
/// `input_ids`, `attention_mask`: `[batch, seq]` (mask: 1 = token, 0 = pad); logits
/// `[batch, num_labels]`, read at the rightmost token that is not `pad_token_id`.
#[derive(Debug, Clone)]
pub struct DecoderClassifier {
    pub(crate) backbone: DecoderBackbone,
    pub(crate) table: SlotTable,
    pub(crate) num_labels: usize,
    pub(crate) device: Device,
    pub(crate) dtype: DType,
    /// `score.weight` `[num_labels, output_size]` (no bias, as transformers).
    pub(crate) score: Var,
    pub(crate) adapters: BTreeMap<SlotId, LoraAdapter>,
    pub(crate) rng: Rng,
    pub(crate) lora_dropout: f64,
    pub(crate) probes: ProbeState,
    /// Written into saved adapters' `base_model_name_or_path`.
    pub(crate) base_model: Option<String>,
    /// The id the logits are read before (the rightmost other token): the config's
    /// `pad_token_id`, or for a model folder [`crate::data::pad`]'s choice, which its
    /// [`crate::data::Tokenizer`] pads batches with.
    pub(crate) pad_token_id: Option<u32>,
}

/// `model_type` of a `config.json`, to pick the backbone.
pub(crate) fn model_type(cfg: &serde_json::Value) -> Option<&str> {
    cfg.get("model_type").and_then(|v| v.as_str())
}

/// The `config.json` of `model_dir`, parsed, with its path.
pub(crate) fn read_config(model_dir: &Path) -> Result<(std::path::PathBuf, serde_json::Value)> {
    let path = model_dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let v =
        serde_json::from_str(&text).map_err(|e| Error::parse(&path, e.line(), e.to_string()))?;
    Ok((path, v))
}

impl DecoderClassifier {
    /// Loads `config.json` and `model.safetensors` (or the shards of
    /// `model.safetensors.index.json`; Hugging Face names: `model.decoder.*` for OPT, `model.*`
    /// for Llama / Qwen2) from `model_dir`. The head is the file's `score.weight`
    /// when it has `num_labels` rows, else drawn from N(0, init_std^2) with `seed`.
    pub fn from_pretrained(
        model_dir: &Path,
        num_labels: usize,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        let (cfg_path, raw) = read_config(model_dir)?;
        let parse_err = |e: serde_json::Error| Error::parse(&cfg_path, e.line(), e.to_string());
        let mut src = WeightSource::from_dir_unprefixed(model_dir)?;
        let backbone = match model_type(&raw) {
            Some("opt") => {
                let c: OptConfig = serde_json::from_value(raw.clone()).map_err(parse_err)?;
                DecoderBackbone::Opt(OptDecoder::load(&c, &mut src, dtype, device)?)
            }
            Some("llama") | Some("qwen2") => {
                let c: LlamaConfig = serde_json::from_value(raw.clone()).map_err(parse_err)?;
                DecoderBackbone::Llama(LlamaModel::load(&c, &mut src, dtype, device)?)
            }
            other => {
                return Err(Error::Config {
                    field: format!("{}: model_type", cfg_path.display()),
                    reason: format!("{other:?} is not a supported decoder (opt, llama, qwen2)"),
                })
            }
        };
        let mut m = Self::build(backbone, &mut src, num_labels, dtype, device, seed)?;
        m.base_model = Some(crate::adapters::peft_base::base_model_name_or_path(
            model_dir,
        ));
        // Without a pad id in the config, the tokenizer's choice (pad token, else eos): the
        // batches it pads and this read-out must agree.
        if m.pad_token_id.is_none() {
            m.pad_token_id = crate::data::pad::decoder_pad_id(model_dir, &raw, None).map(|p| p.id);
        }
        Ok(m)
    }

    /// A randomly initialised OPT classifier (seeded), for tests.
    pub fn random_opt(
        cfg: &OptConfig,
        num_labels: usize,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        let mut src = WeightSource::random(Rng::derive(seed, "base"));
        let b = DecoderBackbone::Opt(OptDecoder::load(cfg, &mut src, dtype, device)?);
        Self::build(b, &mut src, num_labels, dtype, device, seed)
    }

    /// A randomly initialised Llama / Qwen2 classifier (seeded), for tests.
    pub fn random_llama(
        cfg: &LlamaConfig,
        num_labels: usize,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        let mut src = WeightSource::random(Rng::derive(seed, "base"));
        let b = DecoderBackbone::Llama(LlamaModel::load(cfg, &mut src, dtype, device)?);
        Self::build(b, &mut src, num_labels, dtype, device, seed)
    }

    fn build(
        backbone: DecoderBackbone,
        src: &mut WeightSource,
        num_labels: usize,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        if num_labels == 0 {
            return Err(Error::invalid("num_labels", 0, ">= 1"));
        }
        let d = backbone.output_size();
        let std = backbone.init_std();
        let score = if src.contains("score.weight") {
            src.get(
                "score.weight",
                &[num_labels, d],
                Init::Normal,
                std,
                dtype,
                device,
            )
            .ok()
        } else {
            None
        };
        let score = match score {
            Some(w) => w,
            None => normal_tensor(
                &mut Rng::derive(seed, "classifier"),
                &[num_labels, d],
                std,
                dtype,
                device,
            )?,
        };
        Ok(DecoderClassifier {
            table: backbone.slot_table(),
            pad_token_id: backbone.pad_token_id(),
            backbone,
            num_labels,
            device: device.clone(),
            dtype,
            score: Var::from_tensor(&score.to_dtype(trainable_dtype(dtype))?)?,
            adapters: BTreeMap::new(),
            rng: Rng::derive(seed, "adapters"),
            lora_dropout: 0.0,
            probes: ProbeState::default(),
            base_model: None,
        })
    }

    pub fn architecture(&self) -> Architecture {
        self.table.architecture
    }
    /// Slot kinds, module paths and sizes of this model.
    pub fn slot_table(&self) -> &SlotTable {
        &self.table
    }
    pub fn backbone(&self) -> &DecoderBackbone {
        &self.backbone
    }
    pub fn num_labels(&self) -> usize {
        self.num_labels
    }
    pub fn device(&self) -> &Device {
        &self.device
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// The id the head reads its last token before: the rightmost token of each row that is not
    /// it (the last position when `None`).
    pub fn pad_token_id(&self) -> Option<u32> {
        self.pad_token_id
    }
    /// Read the logits before `pad` from now on (the id a tokenizer pads batches with).
    pub fn set_pad_token_id(&mut self, pad: Option<u32>) {
        self.pad_token_id = pad;
    }
    /// The head `score.weight` `[num_labels, output_size]`.
    pub fn head(&self) -> Var {
        self.score.clone()
    }

    fn ctx<'a>(&'a self, rng: Option<&'a mut Rng>) -> Ctx<'a> {
        Ctx {
            adapters: &self.adapters,
            probes: &self.probes,
            rng,
            lora_dropout: self.lora_dropout,
            hidden_dropout: 0.0,
            attention_dropout: 0.0,
            classifier_dropout: 0.0,
            placement: ShortcutPlacement::InsideNorm,
        }
    }

    /// Logits `[batch, num_labels]`. `rng`: `Some` = training mode (LoRA dropout on; the backbone
    /// has no dropout), `None` = evaluation.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        rng: Option<&mut Rng>,
    ) -> Result<Tensor> {
        let ids = input_ids.to_device(&self.device)?;
        let mask = attention_mask.to_device(&self.device)?;
        if ids.rank() != 2 || mask.dims() != ids.dims() {
            return Err(Error::Shape {
                name: "input_ids / attention_mask".into(),
                expected: ids.dims().to_vec(),
                actual: mask.dims().to_vec(),
            });
        }
        let mut ctx = self.ctx(rng);
        let hidden = self.backbone.forward(&ids, &mask, &mut ctx)?;
        let pos = last_token_positions(&ids, self.pad_token_id)?;
        let last = gather_rows(&hidden, &pos)?;
        // The head computes in its own (f32 under mixed precision) dtype.
        let last = cast_to(&last, self.score.dtype())?;
        matmul_last(&last, &self.score.as_tensor().t()?)
    }

    /// Cross-entropy against u32 labels `[b]` (mean squared error when `num_labels == 1`).
    pub fn loss(&self, logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
        crate::model::primitives::classification_loss(logits, labels, self.num_labels)
    }
}
