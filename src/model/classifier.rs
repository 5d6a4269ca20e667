//! [`SequenceClassifier`]: BERT + pooler + dropout + linear classifier (Hugging Face's
//! `BertForSequenceClassification`), with adapter slots, probes and adapter files. The head reads
//! [CLS] through the pooler by default, or the mean over non-pad tokens ([`HeadPooling`]).
//!
//! ```no_run
//! use heterolora::model::SequenceClassifier;
//! use heterolora::adapters::{SlotId, SlotKind};
//! use candle_core::{DType, Device, Tensor};
//! # fn main() -> heterolora::Result<()> {
//! let dir = std::path::Path::new("datasets/models/all-MiniLM-L6-v2");
//! let mut model = SequenceClassifier::from_pretrained(dir, 2, DType::F32, &Device::Cpu, 0)?;
//! for layer in 0..model.dims().num_layers {
//!     model.add_slot(SlotId::new(layer, SlotKind::Query), 8, 16.0)?;
//!     model.add_slot(SlotId::new(layer, SlotKind::Value), 8, 16.0)?;
//! }
//! assert_eq!(model.trainable_params(), 73_728 + 384 * 2 + 2);
//! let ids = Tensor::new(&[[101u32, 7592, 102]], &Device::Cpu)?;
//! let logits = model.forward(&ids, &ids.zeros_like()?, &ids.ones_like()?, None)?; // [1, 2]
//! # Ok(()) }
//! ```

use super::config::BertConfig;
use super::context::Ctx;
use super::encoder::{BertModel, EncoderOutput};
use super::head_pooling::{masked_mean, HeadPooling};
use super::nn::{matmul_last, normal_tensor};
use super::primitives::{cast_to, trainable_dtype};
use super::probe::ProbeState;
use super::weights::{Init, WeightSource};
use crate::adapters::{LoraAdapter, ModelDims, ShortcutPlacement, SlotId};
use crate::rng::Rng;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use std::collections::BTreeMap;
use std::path::Path;

/// A BERT sequence classifier with adapter slots.
///
/// Cloning is cheap and shares the trainable variables (adapters, head) with the original, as a
/// handle does; [`SequenceClassifier::deep_clone`] makes an independent copy.
///
/// # Shapes
/// `input_ids`, `token_type_ids`, `attention_mask`: `[batch, seq]` u32 (mask: 1 = token, 0 = pad);
/// logits `[batch, num_labels]`.
#[derive(Debug, Clone)]
pub struct SequenceClassifier {
    pub(crate) cfg: BertConfig,
    pub(crate) num_labels: usize,
    pub(crate) device: Device,
    pub(crate) dtype: DType,
    pub(crate) bert: BertModel,
    /// `classifier.weight` `[num_labels, hidden]`.
    pub(crate) head_weight: Var,
    /// `classifier.bias` `[num_labels]`.
    pub(crate) head_bias: Var,
    pub(crate) adapters: BTreeMap<SlotId, LoraAdapter>,
    /// Draws the initial A of every new adapter.
    pub(crate) rng: Rng,
    pub(crate) lora_dropout: f64,
    pub(crate) placement: ShortcutPlacement,
    pub(crate) probes: ProbeState,
    pub(crate) pooler_initialised: bool,
    /// What the head reads: [CLS] through the pooler (default) or the masked token mean.
    pub(crate) head_pooling: HeadPooling,
}

impl SequenceClassifier {
    /// Loads `config.json` and `model.safetensors` from `model_dir`; the classifier head is
    /// loaded from the file if it holds one of the right shape, else initialised as Hugging Face
    /// does (normal(0, initializer_range), zero bias) from `seed`. A missing pooler is initialised
    /// the same way (reported by [`SequenceClassifier::pooler_was_initialised`] and on stderr).
    pub fn from_pretrained(
        model_dir: &Path,
        num_labels: usize,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        let cfg_path = model_dir.join("config.json");
        if !cfg_path.exists() {
            return Err(Error::Asset {
                what: cfg_path.display().to_string(),
                reason: "file not found".into(),
                hint: "run `heterolora fetch model` (or set HETEROLORA_MODEL_DIR to a directory with config.json and model.safetensors)".into(),
            });
        }
        let cfg = BertConfig::from_file(&cfg_path)?;
        let mut src = WeightSource::from_file(&model_dir.join("model.safetensors"))?;
        let mut m = Self::build(cfg, &mut src, num_labels, dtype, device, seed)?;
        // Saved adapters name their base model, so PEFT's AutoPeftModel* can load them.
        m.set_base_model(model_dir);
        Ok(m)
    }

    /// A randomly initialised model (Hugging Face's init, seeded), for unit tests.
    pub fn random(
        cfg: &BertConfig,
        num_labels: usize,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        cfg.validate()?;
        let mut src = WeightSource::random(Rng::derive(seed, "base"));
        Self::build(cfg.clone(), &mut src, num_labels, dtype, device, seed)
    }

    fn build(
        cfg: BertConfig,
        src: &mut WeightSource,
        num_labels: usize,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        if num_labels == 0 {
            return Err(Error::invalid(
                "num_labels",
                0,
                ">= 1 (1 for regression such as STS-B)",
            ));
        }
        if !dtype.is_float() {
            return Err(Error::invalid("dtype", dtype.as_str(), "a float dtype"));
        }
        let mut pooler_src = WeightSource::random(Rng::derive(seed, "pooler"));
        let (bert, pooler_initialised) =
            BertModel::load(&cfg, src, &mut pooler_src, dtype, device)?;
        if pooler_initialised {
            eprintln!(
                "heterolora: the model file has no pooler (pooler.dense); initialised it as Hugging Face does (normal(0, {}), zero bias, seed {seed})",
                cfg.initializer_range
            );
        }
        let h = cfg.hidden_size;
        let std = cfg.initializer_range;
        // A checkpoint with a head of the right shape (e.g. one fine-tuned with Hugging Face)
        // keeps it; otherwise the head starts fresh.
        let from_file = if src.contains("classifier.weight") && src.contains("classifier.bias") {
            let w = src.get(
                "classifier.weight",
                &[num_labels, h],
                Init::Normal,
                std,
                dtype,
                device,
            );
            let b = src.get(
                "classifier.bias",
                &[num_labels],
                Init::Zeros,
                std,
                dtype,
                device,
            );
            w.ok().zip(b.ok())
        } else {
            None
        };
        let (w, b) = match from_file {
            Some(wb) => wb,
            None => {
                let mut rng = Rng::derive(seed, "classifier");
                (
                    normal_tensor(&mut rng, &[num_labels, h], std, dtype, device)?,
                    Tensor::zeros(num_labels, dtype, device)?,
                )
            }
        };
        let head_dtype = trainable_dtype(dtype);
        Ok(SequenceClassifier {
            cfg,
            num_labels,
            device: device.clone(),
            dtype,
            bert,
            head_weight: Var::from_tensor(&w.to_dtype(head_dtype)?)?,
            head_bias: Var::from_tensor(&b.to_dtype(head_dtype)?)?,
            adapters: BTreeMap::new(),
            rng: Rng::derive(seed, "adapters"),
            lora_dropout: 0.0,
            placement: ShortcutPlacement::default(),
            probes: ProbeState::default(),
            pooler_initialised,
            head_pooling: HeadPooling::default(),
        })
    }

    /// The same model with the head reading `pooling` (constructor-style
    /// [`SequenceClassifier::set_head_pooling`]).
    pub fn with_head_pooling(mut self, pooling: HeadPooling) -> Self {
        self.head_pooling = pooling;
        self
    }

    pub fn config(&self) -> &BertConfig {
        &self.cfg
    }
    pub fn dims(&self) -> ModelDims {
        self.cfg.dims()
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
    /// The frozen base encoder (embeddings, layers, pooler).
    pub fn base(&self) -> &BertModel {
        &self.bert
    }
    /// Whether the model file lacked a pooler, which was then initialised from the seed.
    pub fn pooler_was_initialised(&self) -> bool {
        self.pooler_initialised
    }
    /// The classifier head (`classifier.weight` `[num_labels, hidden]`, `classifier.bias`).
    pub fn head(&self) -> (Var, Var) {
        (self.head_weight.clone(), self.head_bias.clone())
    }
    /// What the classifier head reads ([`HeadPooling::Cls`] unless set).
    pub fn head_pooling(&self) -> HeadPooling {
        self.head_pooling
    }
    /// Chooses the head's read-out. The head's weights are kept: switch before training (a head
    /// trained on one read-out is not meant for the other).
    pub fn set_head_pooling(&mut self, pooling: HeadPooling) {
        self.head_pooling = pooling;
    }
    /// Where cross-layer shortcuts enter the layer (see [`crate::adapters::shortcut`]).
    pub fn shortcut_placement(&self) -> ShortcutPlacement {
        self.placement
    }
    pub fn set_shortcut_placement(&mut self, placement: ShortcutPlacement) {
        self.placement = placement;
    }
    /// Overrides the base model's dropout probabilities (Hugging Face config fields).
    pub fn set_dropout(
        &mut self,
        hidden: f64,
        attention: f64,
        classifier: Option<f64>,
    ) -> Result<()> {
        let mut cfg = self.cfg.clone();
        cfg.hidden_dropout_prob = hidden;
        cfg.attention_probs_dropout_prob = attention;
        cfg.classifier_dropout = classifier;
        cfg.validate()?;
        self.cfg = cfg;
        Ok(())
    }

    pub(crate) fn ctx<'a>(&'a self, rng: Option<&'a mut Rng>) -> Ctx<'a> {
        Ctx {
            adapters: &self.adapters,
            probes: &self.probes,
            rng,
            lora_dropout: self.lora_dropout,
            hidden_dropout: self.cfg.hidden_dropout_prob,
            attention_dropout: self.cfg.attention_probs_dropout_prob,
            classifier_dropout: self.cfg.classifier_dropout_prob(),
            placement: self.placement,
        }
    }

    fn check_ids(&self, name: &str, t: &Tensor) -> Result<Tensor> {
        if t.rank() != 2 {
            return Err(Error::Shape {
                name: name.into(),
                expected: vec![0, 0],
                actual: t.dims().to_vec(),
            });
        }
        Ok(match t.dtype() {
            DType::U32 | DType::I64 => t.to_device(&self.device)?,
            _ => t.to_dtype(DType::U32)?.to_device(&self.device)?,
        })
    }

    /// Hidden states of every layer and the pooled output. `rng`: `Some` = training mode
    /// (dropout on, masks drawn from it), `None` = evaluation.
    pub fn encode(
        &self,
        input_ids: &Tensor,
        token_type_ids: &Tensor,
        attention_mask: &Tensor,
        rng: Option<&mut Rng>,
    ) -> Result<EncoderOutput> {
        let ids = self.check_ids("input_ids", input_ids)?;
        let tt = self.check_ids("token_type_ids", token_type_ids)?;
        let mask = attention_mask.to_device(&self.device)?;
        let mut ctx = self.ctx(rng);
        self.bert.encode(&ids, &tt, &mask, &mut ctx)
    }

    /// Logits `[batch, num_labels]`. `rng`: `Some` = training mode, `None` = evaluation.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        token_type_ids: &Tensor,
        attention_mask: &Tensor,
        rng: Option<&mut Rng>,
    ) -> Result<Tensor> {
        let ids = self.check_ids("input_ids", input_ids)?;
        let tt = self.check_ids("token_type_ids", token_type_ids)?;
        let mask = attention_mask.to_device(&self.device)?;
        let mut ctx = self.ctx(rng);
        let out = self.bert.encode(&ids, &tt, &mask, &mut ctx)?;
        self.head_forward(&out, &mask, &mut ctx)
    }

    /// Logits from embeddings `[b, s, hidden]` fed to the first layer (after the embedding
    /// LayerNorm), e.g. all ones for SynFlow.
    pub fn forward_embeds(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        rng: Option<&mut Rng>,
    ) -> Result<Tensor> {
        let (_, _, h) = embeds.dims3()?;
        if h != self.cfg.hidden_size {
            return Err(Error::Shape {
                name: "embeds".into(),
                expected: vec![embeds.dim(0)?, embeds.dim(1)?, self.cfg.hidden_size],
                actual: embeds.dims().to_vec(),
            });
        }
        let mut ctx = self.ctx(rng);
        let x = embeds.to_device(&self.device)?.to_dtype(self.dtype)?;
        let mask = attention_mask.to_device(&self.device)?;
        let out = self.bert.encode_from_embeddings(x, &mask, &mut ctx)?;
        self.head_forward(&out, &mask, &mut ctx)
    }

    /// The head's input `[b, hidden]` from the encoder output and the attention mask `[b, s]`:
    /// the pooled [CLS] or the mean of the last hidden states over non-pad tokens.
    pub fn head_input(&self, out: &EncoderOutput, attention_mask: &Tensor) -> Result<Tensor> {
        match self.head_pooling {
            HeadPooling::Cls => Ok(out.pooled.clone()),
            HeadPooling::Mean => {
                let last = out
                    .hidden_states
                    .last()
                    .ok_or_else(|| Error::Other("the encoder returned no hidden states".into()))?;
                masked_mean(last, attention_mask)
            }
        }
    }

    fn head_forward(
        &self,
        out: &EncoderOutput,
        attention_mask: &Tensor,
        ctx: &mut Ctx,
    ) -> Result<Tensor> {
        let pooled = self.head_input(out, attention_mask)?;
        let p = ctx.classifier_dropout;
        let x = ctx.dropout(&pooled, p)?;
        // The head computes in its own (f32 under mixed precision) dtype: logits and loss in f32.
        let x = cast_to(&x, self.head_weight.dtype())?;
        let y = matmul_last(&x, &self.head_weight.as_tensor().t()?)?;
        Ok(y.broadcast_add(self.head_bias.as_tensor())?)
    }

    /// Scalar loss: cross-entropy against u32 class labels `[b]`, or mean squared error against
    /// f32 targets `[b]` when `num_labels == 1` (as `BertForSequenceClassification`).
    pub fn loss(&self, logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
        super::primitives::classification_loss(logits, labels, self.num_labels)
    }

    /// A copy with every weight (base, adapters, head) mapped by `f`, e.g. `abs` for SynFlow.
    /// Adapter states (rank, alpha, scale, on/off) are kept; probes are not.
    pub fn map_weights(&self, f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Self> {
        self.map_all(Some(&f), &f, self.dtype)
    }

    /// A copy with the base weights mapped by `base` (`None`: shared, not copied) and the
    /// trainable variables by `trainable`; `dtype` is the copy's compute dtype.
    fn map_all(
        &self,
        base: Option<&dyn Fn(&Tensor) -> Result<Tensor>>,
        trainable: &dyn Fn(&Tensor) -> Result<Tensor>,
        dtype: DType,
    ) -> Result<Self> {
        let var = |v: &Var| -> Result<Var> {
            Ok(Var::from_tensor(
                &trainable(&v.as_detached_tensor())?.detach(),
            )?)
        };
        let head_weight = var(&self.head_weight)?;
        Ok(SequenceClassifier {
            cfg: self.cfg.clone(),
            num_labels: self.num_labels,
            device: head_weight.device().clone(),
            dtype,
            bert: match base {
                Some(f) => self.bert.map(f)?,
                None => self.bert.clone(),
            },
            head_weight,
            head_bias: var(&self.head_bias)?,
            adapters: self
                .adapters
                .iter()
                .map(|(s, a)| Ok((*s, a.map(trainable)?)))
                .collect::<Result<_>>()?,
            rng: self.rng.clone(),
            lora_dropout: self.lora_dropout,
            placement: self.placement,
            probes: ProbeState::default(),
            pooler_initialised: self.pooler_initialised,
            head_pooling: self.head_pooling,
        })
    }

    /// A copy computing in another dtype (e.g. F64 for SynFlow, BF16 for mixed precision: the
    /// adapters and head then stay f32, see [`trainable_dtype`]).
    pub fn to_dtype(&self, dtype: DType) -> Result<Self> {
        if !dtype.is_float() {
            return Err(Error::invalid("dtype", dtype.as_str(), "a float dtype"));
        }
        let td = trainable_dtype(dtype);
        self.map_all(
            Some(&|t| Ok(t.to_dtype(dtype)?)),
            &|t| Ok(t.to_dtype(td)?),
            dtype,
        )
    }

    /// A copy on another device.
    pub fn to_device(&self, device: &Device) -> Result<Self> {
        let f = |t: &Tensor| Ok(t.to_device(device)?);
        self.map_all(Some(&f), &f, self.dtype)
    }

    /// An independent copy: new variables for adapters and head, shared (immutable) base weights.
    pub fn deep_clone(&self) -> Result<Self> {
        self.map_all(None, &|t| Ok(t.copy()?), self.dtype)
    }

    /// A copy with every enabled LoRA module folded into its frozen weight
    /// (`W0 + scale * alpha / r * B A`) and removed from the adapters; shortcuts, disabled adapters and the head are kept
    /// (copied). Its outputs equal this model's up to rounding.
    pub fn merged(&self) -> Result<Self> {
        let mut m = self.deep_clone()?;
        let merge: Vec<SlotId> = self
            .adapters
            .iter()
            .filter(|(s, a)| a.enabled && !s.kind.is_shortcut())
            .map(|(s, _)| *s)
            .collect();
        for slot in merge {
            let ad = m.adapters.remove(&slot).expect("slot listed above");
            let lin = m
                .bert
                .slot_linear_mut(slot)
                .ok_or_else(|| Error::UnknownSlot(slot.to_string()))?;
            let dw = ad.delta_weight()?.to_dtype(lin.weight.dtype())?;
            lin.weight = (&lin.weight + dw)?;
        }
        Ok(m)
    }

    /// A random classifier head for `num_labels` (HF init from `seed`), replacing the current one.
    pub fn reset_head(&mut self, num_labels: usize, seed: u64) -> Result<()> {
        if num_labels == 0 {
            return Err(Error::invalid("num_labels", 0, ">= 1"));
        }
        let mut rng = Rng::derive(seed, "classifier");
        let h = self.cfg.hidden_size;
        let w = normal_tensor(
            &mut rng,
            &[num_labels, h],
            self.cfg.initializer_range,
            self.dtype,
            &self.device,
        )?;
        let dtype = trainable_dtype(self.dtype);
        self.head_weight = Var::from_tensor(&w.to_dtype(dtype)?)?;
        self.head_bias = Var::from_tensor(&Tensor::zeros(num_labels, dtype, &self.device)?)?;
        self.num_labels = num_labels;
        Ok(())
    }
}
