//! [`AdaptedClassifier`]: what scoring and fine-tuning need from a sequence classifier with
//! adapter slots, implemented by BERT's [`SequenceClassifier`], the decoders'
//! [`DecoderClassifier`] and the enum over both, [`Classifier`]. The gradient pass of the proxies
//! ([`crate::proxy::gradient_pass`]) and the [`crate::train::Trainer`] are generic over it, so a
//! decoder is scored and trained by the same code as BERT.
//!
//! ```no_run
//! use heterolora::model::{AdaptedClassifier, Classifier};
//! use candle_core::{DType, Device};
//! # fn main() -> heterolora::Result<()> {
//! let m = Classifier::from_pretrained("tests/fixtures/decoders/llama".as_ref(), 2, DType::F32, &Device::Cpu, 0)?;
//! println!("{} trainable parameters", AdaptedClassifier::trainable_params(&m));
//! # Ok(()) }
//! ```

use super::decoder::DecoderClassifier;
use super::eval::{eval_logits_of, EvalLogits};
use super::probe::{ProbeMode, SlotProbe};
use super::{Classifier, HeadPooling, SequenceClassifier};
use crate::adapters::{Allocation, Architecture, LoraAdapter, SlotId, SlotTable};
use crate::data::Batch;
use crate::rng::Rng;
use crate::Result;
use candle_core::{DType, Device, Tensor, Var};
use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::path::Path;

/// A sequence classifier with adapter slots: forward, loss, slots, trainable variables, adapter
/// files and the probes of the W0-gradient proxies.
///
/// # Shapes
/// A [`Batch`]'s `input_ids`, `attention_mask` (and, for BERT, `token_type_ids`) are `[b, s]`;
/// logits are `[b, num_labels]`.
pub trait AdaptedClassifier: Clone {
    fn architecture(&self) -> Architecture;
    /// Slot kinds, module paths and `(d_in, d_out)` of every kind.
    fn slot_table(&self) -> SlotTable;
    fn num_labels(&self) -> usize;
    fn device(&self) -> &Device;
    /// The dtype the frozen model computes in (adapters and head may be f32 under mixed
    /// precision: see [`crate::model::primitives::trainable_dtype`]).
    fn dtype(&self) -> DType;

    /// Logits `[b, num_labels]`; `rng`: `Some` = training mode (dropout masks from it), `None` =
    /// evaluation. Decoders take no token types.
    fn forward_batch(&self, batch: &Batch, rng: Option<&mut Rng>) -> Result<Tensor>;
    /// Cross-entropy against labels `[b]` (mean squared error with one output): a scalar.
    fn loss(&self, logits: &Tensor, labels: &Tensor) -> Result<Tensor>;

    /// A copy with its own adapter and head variables (the frozen base is shared).
    fn deep_clone(&self) -> Result<Self>;
    /// Every created adapter, enabled or not.
    fn adapters(&self) -> &BTreeMap<SlotId, LoraAdapter>;
    fn add_slot(&mut self, slot: SlotId, r: usize, lora_alpha: f64) -> Result<()>;
    fn set_enabled(&mut self, slot: SlotId, on: bool) -> Result<()>;
    /// Exactly the allocation's slots on, at its ranks; other adapters off, weights kept.
    fn apply_allocation(&mut self, alloc: &Allocation) -> Result<()>;
    fn set_lora_dropout(&mut self, p: f32);
    /// Where the head reads the sequence; an error on a backbone whose head has no choice.
    fn set_head_pooling(&mut self, pooling: HeadPooling) -> Result<()>;

    /// Enabled adapters and the head, by PEFT key: what the optimiser updates.
    fn trainable_vars(&self) -> Vec<(String, Var)>;
    /// Every created adapter (enabled or not) and the head: what a checkpoint saves.
    fn adapter_vars(&self) -> Vec<(String, Var)>;
    /// Enabled adapters' r * (d_in + d_out) plus the head.
    fn trainable_params(&self) -> usize;
    /// PEFT files (`adapter_config.json`, `adapter_model.safetensors`) of the enabled adapters.
    fn save_adapters(&self, dir: &Path) -> Result<()>;
    fn load_adapters(&mut self, dir: &Path) -> Result<()>;

    /// Probes `slots` in the next forward passes (see [`super::probe`]).
    fn set_probes(&mut self, slots: &[SlotId], mode: ProbeMode) -> Result<()>;
    /// What the probes recorded in the last forward pass (and forgets it).
    fn take_probes(&self) -> BTreeMap<SlotId, SlotProbe>;
    fn clear_probes(&mut self);
    /// The frozen map of a LoRA slot applied to `x` `[b, s, d_in]` -> `[b, s, d_out]` (bias
    /// included); `None` for shortcuts.
    fn frozen_output(&self, slot: SlotId, x: &Tensor) -> Result<Option<Tensor>>;

    /// The head's output bias `[num_labels]` where the head has one (BERT's `classifier.bias`;
    /// transformers' decoder `score` heads have none): the trainer starts a regression head at
    /// the training targets' mean through it.
    fn head_bias(&self) -> Option<Var> {
        None
    }
    /// The model as BERT's classifier, for what only BERT has (SynFlow's embeddings path,
    /// alpha-test's metrics); `None` on a decoder.
    fn as_bert_mut(&mut self) -> Option<&mut SequenceClassifier> {
        None
    }
    fn has_slot(&self, slot: SlotId) -> bool {
        self.slot_table().has_slot(slot)
    }
    fn adapter(&self, slot: SlotId) -> Option<&LoraAdapter> {
        self.adapters().get(&slot)
    }
    /// `(lora_A, lora_B)` of a slot's adapter.
    fn lora_factors(&self, slot: SlotId) -> Option<(Var, Var)> {
        self.adapter(slot).map(|a| (a.a.clone(), a.b.clone()))
    }
    /// `(r, lora_alpha)` of a slot's adapter, enabled or not.
    fn slot_rank(&self, slot: SlotId) -> Option<(usize, f64)> {
        self.adapter(slot).map(|a| (a.r, a.lora_alpha))
    }
    fn is_enabled(&self, slot: SlotId) -> bool {
        self.adapter(slot).is_some_and(|a| a.enabled)
    }
    /// Slots with an adapter, enabled or not, in (layer, kind) order.
    fn adapter_slots(&self) -> Vec<SlotId> {
        self.adapters().keys().copied().collect()
    }
    fn enabled_slots(&self) -> Vec<SlotId> {
        self.adapters()
            .iter()
            .filter(|(_, a)| a.enabled)
            .map(|(s, _)| *s)
            .collect()
    }
    /// Logits of `n` examples from `batches` in evaluation mode, at their example indices, and
    /// the mean loss when `with_loss`.
    fn eval_batches<B: Borrow<Batch>>(
        &self,
        batches: impl IntoIterator<Item = B>,
        n: usize,
        with_loss: bool,
    ) -> Result<EvalLogits>
    where
        Self: Sized,
    {
        eval_logits_of(self, batches, n, with_loss)
    }
}

impl AdaptedClassifier for SequenceClassifier {
    fn architecture(&self) -> Architecture {
        Architecture::Bert
    }
    fn slot_table(&self) -> SlotTable {
        SequenceClassifier::slot_table(self)
    }
    fn num_labels(&self) -> usize {
        SequenceClassifier::num_labels(self)
    }
    fn device(&self) -> &Device {
        SequenceClassifier::device(self)
    }
    fn dtype(&self) -> DType {
        SequenceClassifier::dtype(self)
    }
    fn forward_batch(&self, batch: &Batch, rng: Option<&mut Rng>) -> Result<Tensor> {
        self.forward(
            &batch.input_ids,
            &batch.token_type_ids,
            &batch.attention_mask,
            rng,
        )
    }
    fn loss(&self, logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
        SequenceClassifier::loss(self, logits, labels)
    }
    fn deep_clone(&self) -> Result<Self> {
        SequenceClassifier::deep_clone(self)
    }
    fn adapters(&self) -> &BTreeMap<SlotId, LoraAdapter> {
        &self.adapters
    }
    fn add_slot(&mut self, slot: SlotId, r: usize, lora_alpha: f64) -> Result<()> {
        SequenceClassifier::add_slot(self, slot, r, lora_alpha)
    }
    fn set_enabled(&mut self, slot: SlotId, on: bool) -> Result<()> {
        SequenceClassifier::set_enabled(self, slot, on)
    }
    fn apply_allocation(&mut self, alloc: &Allocation) -> Result<()> {
        SequenceClassifier::apply_allocation(self, alloc)
    }
    fn set_lora_dropout(&mut self, p: f32) {
        SequenceClassifier::set_lora_dropout(self, p)
    }
    fn set_head_pooling(&mut self, pooling: HeadPooling) -> Result<()> {
        SequenceClassifier::set_head_pooling(self, pooling);
        Ok(())
    }
    fn trainable_vars(&self) -> Vec<(String, Var)> {
        SequenceClassifier::trainable_vars(self)
    }
    fn adapter_vars(&self) -> Vec<(String, Var)> {
        SequenceClassifier::adapter_vars(self)
    }
    fn trainable_params(&self) -> usize {
        SequenceClassifier::trainable_params(self)
    }
    fn save_adapters(&self, dir: &Path) -> Result<()> {
        SequenceClassifier::save_adapters(self, dir)
    }
    fn load_adapters(&mut self, dir: &Path) -> Result<()> {
        SequenceClassifier::load_adapters(self, dir)
    }
    fn set_probes(&mut self, slots: &[SlotId], mode: ProbeMode) -> Result<()> {
        SequenceClassifier::set_probes(self, slots, mode)
    }
    fn take_probes(&self) -> BTreeMap<SlotId, SlotProbe> {
        SequenceClassifier::take_probes(self)
    }
    fn clear_probes(&mut self) {
        SequenceClassifier::clear_probes(self)
    }
    fn frozen_output(&self, slot: SlotId, x: &Tensor) -> Result<Option<Tensor>> {
        self.base()
            .slot_linear(slot)
            .map(|lin| lin.forward(x))
            .transpose()
    }
    fn has_slot(&self, slot: SlotId) -> bool {
        SequenceClassifier::has_slot(self, slot)
    }
    fn head_bias(&self) -> Option<Var> {
        Some(self.head_bias.clone())
    }
    fn as_bert_mut(&mut self) -> Option<&mut SequenceClassifier> {
        Some(self)
    }
}

impl AdaptedClassifier for DecoderClassifier {
    fn architecture(&self) -> Architecture {
        DecoderClassifier::architecture(self)
    }
    fn slot_table(&self) -> SlotTable {
        DecoderClassifier::slot_table(self).clone()
    }
    fn num_labels(&self) -> usize {
        DecoderClassifier::num_labels(self)
    }
    fn device(&self) -> &Device {
        DecoderClassifier::device(self)
    }
    fn dtype(&self) -> DType {
        DecoderClassifier::dtype(self)
    }
    fn forward_batch(&self, batch: &Batch, rng: Option<&mut Rng>) -> Result<Tensor> {
        self.forward(&batch.input_ids, &batch.attention_mask, rng)
    }
    fn loss(&self, logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
        DecoderClassifier::loss(self, logits, labels)
    }
    fn deep_clone(&self) -> Result<Self> {
        DecoderClassifier::deep_clone(self)
    }
    fn adapters(&self) -> &BTreeMap<SlotId, LoraAdapter> {
        &self.adapters
    }
    fn add_slot(&mut self, slot: SlotId, r: usize, lora_alpha: f64) -> Result<()> {
        DecoderClassifier::add_slot(self, slot, r, lora_alpha)
    }
    fn set_enabled(&mut self, slot: SlotId, on: bool) -> Result<()> {
        DecoderClassifier::set_enabled(self, slot, on)
    }
    fn apply_allocation(&mut self, alloc: &Allocation) -> Result<()> {
        DecoderClassifier::apply_allocation(self, alloc)
    }
    fn set_lora_dropout(&mut self, p: f32) {
        DecoderClassifier::set_lora_dropout(self, p)
    }
    fn set_head_pooling(&mut self, pooling: HeadPooling) -> Result<()> {
        Err(crate::Error::Config {
            field: "head".into(),
            reason: format!(
                "a {} classifier reads the last non-pad token; head pooling `{pooling:?}` is BERT's",
                self.architecture()
            ),
        })
    }
    fn trainable_vars(&self) -> Vec<(String, Var)> {
        DecoderClassifier::trainable_vars(self)
    }
    fn adapter_vars(&self) -> Vec<(String, Var)> {
        DecoderClassifier::adapter_vars(self)
    }
    fn trainable_params(&self) -> usize {
        DecoderClassifier::trainable_params(self)
    }
    fn save_adapters(&self, dir: &Path) -> Result<()> {
        DecoderClassifier::save_adapters(self, dir)
    }
    fn load_adapters(&mut self, dir: &Path) -> Result<()> {
        DecoderClassifier::load_adapters(self, dir)
    }
    fn set_probes(&mut self, slots: &[SlotId], mode: ProbeMode) -> Result<()> {
        DecoderClassifier::set_probes(self, slots, mode)
    }
    fn take_probes(&self) -> BTreeMap<SlotId, SlotProbe> {
        self.probes.take()
    }
    fn clear_probes(&mut self) {
        self.probes.clear()
    }
    fn frozen_output(&self, slot: SlotId, x: &Tensor) -> Result<Option<Tensor>> {
        self.frozen_linear(slot).map(|l| l.forward(x)).transpose()
    }
    fn has_slot(&self, slot: SlotId) -> bool {
        DecoderClassifier::has_slot(self, slot)
    }
}

macro_rules! both {
    ($self:ident, $m:ident => $e:expr) => {
        match $self {
            Classifier::Encoder($m) => $e,
            Classifier::Decoder($m) => $e,
        }
    };
}

impl AdaptedClassifier for Classifier {
    fn architecture(&self) -> Architecture {
        both!(self, m => AdaptedClassifier::architecture(m))
    }
    fn slot_table(&self) -> SlotTable {
        both!(self, m => AdaptedClassifier::slot_table(m))
    }
    fn num_labels(&self) -> usize {
        both!(self, m => AdaptedClassifier::num_labels(m))
    }
    fn device(&self) -> &Device {
        both!(self, m => AdaptedClassifier::device(m))
    }
    fn dtype(&self) -> DType {
        both!(self, m => AdaptedClassifier::dtype(m))
    }
    fn forward_batch(&self, batch: &Batch, rng: Option<&mut Rng>) -> Result<Tensor> {
        both!(self, m => m.forward_batch(batch, rng))
    }
    fn loss(&self, logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
        both!(self, m => AdaptedClassifier::loss(m, logits, labels))
    }
    fn deep_clone(&self) -> Result<Self> {
        Ok(match self {
            Classifier::Encoder(m) => Classifier::Encoder(AdaptedClassifier::deep_clone(m)?),
            Classifier::Decoder(m) => Classifier::Decoder(AdaptedClassifier::deep_clone(m)?),
        })
    }
    fn adapters(&self) -> &BTreeMap<SlotId, LoraAdapter> {
        both!(self, m => AdaptedClassifier::adapters(m))
    }
    fn add_slot(&mut self, slot: SlotId, r: usize, lora_alpha: f64) -> Result<()> {
        both!(self, m => AdaptedClassifier::add_slot(m, slot, r, lora_alpha))
    }
    fn set_enabled(&mut self, slot: SlotId, on: bool) -> Result<()> {
        both!(self, m => AdaptedClassifier::set_enabled(m, slot, on))
    }
    fn apply_allocation(&mut self, alloc: &Allocation) -> Result<()> {
        both!(self, m => AdaptedClassifier::apply_allocation(m, alloc))
    }
    fn set_lora_dropout(&mut self, p: f32) {
        both!(self, m => AdaptedClassifier::set_lora_dropout(m, p))
    }
    fn set_head_pooling(&mut self, pooling: HeadPooling) -> Result<()> {
        both!(self, m => AdaptedClassifier::set_head_pooling(m, pooling))
    }
    fn trainable_vars(&self) -> Vec<(String, Var)> {
        both!(self, m => AdaptedClassifier::trainable_vars(m))
    }
    fn adapter_vars(&self) -> Vec<(String, Var)> {
        both!(self, m => AdaptedClassifier::adapter_vars(m))
    }
    fn trainable_params(&self) -> usize {
        both!(self, m => AdaptedClassifier::trainable_params(m))
    }
    fn save_adapters(&self, dir: &Path) -> Result<()> {
        both!(self, m => AdaptedClassifier::save_adapters(m, dir))
    }
    fn load_adapters(&mut self, dir: &Path) -> Result<()> {
        both!(self, m => AdaptedClassifier::load_adapters(m, dir))
    }
    fn set_probes(&mut self, slots: &[SlotId], mode: ProbeMode) -> Result<()> {
        both!(self, m => AdaptedClassifier::set_probes(m, slots, mode))
    }
    fn take_probes(&self) -> BTreeMap<SlotId, SlotProbe> {
        both!(self, m => AdaptedClassifier::take_probes(m))
    }
    fn clear_probes(&mut self) {
        both!(self, m => AdaptedClassifier::clear_probes(m))
    }
    fn frozen_output(&self, slot: SlotId, x: &Tensor) -> Result<Option<Tensor>> {
        both!(self, m => m.frozen_output(slot, x))
    }
    fn has_slot(&self, slot: SlotId) -> bool {
        both!(self, m => AdaptedClassifier::has_slot(m, slot))
    }
    fn head_bias(&self) -> Option<Var> {
        both!(self, m => AdaptedClassifier::head_bias(m))
    }
    fn as_bert_mut(&mut self) -> Option<&mut SequenceClassifier> {
        match self {
            Classifier::Encoder(m) => Some(m),
            Classifier::Decoder(_) => None,
        }
    }
}
