//! Slot management on [`DecoderClassifier`]: adding, enabling, allocations, trainable variables,
//! parameter counts and merging, with kinds and sizes from its [`crate::adapters::SlotTable`].

use super::classifier::DecoderClassifier;
use crate::adapters::{peft, Allocation, LoraAdapter, SlotId};
use crate::model::nn::Linear;
use crate::model::primitives::trainable_dtype;
use crate::model::probe::{ProbeMode, ProbeState};
use crate::model::slots::{
    check_allocation, fresh_adapter, named_factors, probe_state, switch_to_allocation,
};
use crate::{Error, Result};
use candle_core::{Tensor, Var};
use std::collections::BTreeMap;

impl DecoderClassifier {
    /// Whether the model has `slot` (its kind in this architecture, its layer).
    pub fn has_slot(&self, slot: SlotId) -> bool {
        self.table.has_slot(slot)
    }

    pub(crate) fn check_slot(&self, slot: SlotId) -> Result<()> {
        if self.has_slot(slot) {
            Ok(())
        } else {
            Err(Error::UnknownSlot(format!(
                "{slot} (a {} model with layers 0..{} and kinds {:?})",
                self.architecture(),
                self.table.num_layers,
                self.architecture()
                    .kinds()
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
            )))
        }
    }

    /// Creates a fresh adapter on `slot` (A Kaiming-uniform, B zeros: a no-op) and enables it.
    pub fn add_slot(&mut self, slot: SlotId, r: usize, lora_alpha: f64) -> Result<()> {
        self.check_slot(slot)?;
        let ad = fresh_adapter(
            &mut self.rng,
            &self.table,
            slot,
            r,
            lora_alpha,
            trainable_dtype(self.dtype),
            &self.device,
        )?;
        self.adapters.insert(slot, ad);
        Ok(())
    }

    /// Puts in place an existing adapter; shapes are checked against the slot table.
    pub fn insert_adapter(&mut self, slot: SlotId, adapter: LoraAdapter) -> Result<()> {
        self.check_slot(slot)?;
        self.check_factor_shapes(slot, adapter.a.as_tensor(), adapter.b.as_tensor())?;
        let (dtype, device) = (trainable_dtype(self.dtype), self.device.clone());
        let adapter = adapter.map(&|t| Ok(t.to_dtype(dtype)?.to_device(&device)?))?;
        self.adapters.insert(slot, adapter);
        Ok(())
    }

    /// After this, exactly `alloc`'s slots are enabled at its ranks and alphas (as
    /// [`crate::model::SequenceClassifier::apply_allocation`]): an adapter of the same rank keeps
    /// its weights, another rank gets a fresh one, every other adapter is disabled, weights kept.
    pub fn apply_allocation(&mut self, alloc: &Allocation) -> Result<()> {
        check_allocation(alloc, &self.table.model_dims(), |s| self.check_slot(s))?;
        for (slot, r, alpha) in switch_to_allocation(&mut self.adapters, alloc) {
            self.add_slot(slot, r, alpha)?;
        }
        Ok(())
    }

    /// Switches a created adapter on or off (weights kept).
    pub fn set_enabled(&mut self, slot: SlotId, on: bool) -> Result<()> {
        self.adapters
            .get_mut(&slot)
            .ok_or_else(|| Error::UnknownSlot(format!("{slot} (no adapter; call add_slot first)")))?
            .enabled = on;
        Ok(())
    }

    /// Dropout on every adapter's input (PEFT's `lora_dropout`), training mode only.
    pub fn set_lora_dropout(&mut self, p: f32) {
        self.lora_dropout = (p as f64).clamp(0.0, 0.999);
    }

    /// A slot's adapter (read-only).
    pub fn adapter(&self, slot: SlotId) -> Option<&LoraAdapter> {
        self.adapters.get(&slot)
    }

    /// Slots whose adapter is enabled, in (layer, kind) order.
    pub fn enabled_slots(&self) -> Vec<SlotId> {
        self.adapters
            .iter()
            .filter(|(_, a)| a.enabled)
            .map(|(s, _)| *s)
            .collect()
    }

    /// Enabled adapters' factors and the head, named by PEFT's keys
    /// (`base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`, ...,
    /// `base_model.model.score.weight`).
    pub fn trainable_vars(&self) -> Vec<(String, Var)> {
        self.vars_of(self.adapters.iter().filter(|(_, a)| a.enabled))
    }

    fn vars_of<'a>(
        &self,
        it: impl Iterator<Item = (&'a SlotId, &'a LoraAdapter)>,
    ) -> Vec<(String, Var)> {
        let arch = self.architecture();
        let mut out = named_factors(it, |s, f| arch.slot_key(s, f));
        out.push((peft::SCORE_WEIGHT_KEY.to_string(), self.score.clone()));
        out
    }

    /// Every created adapter (enabled or not) and the head, by PEFT key: what a checkpoint saves.
    pub fn adapter_vars(&self) -> Vec<(String, Var)> {
        self.vars_of(self.adapters.iter())
    }

    /// An independent copy: new variables for adapters and head, the frozen decoder shared.
    pub fn deep_clone(&self) -> Result<Self> {
        let mut m = self.clone();
        m.adapters = self
            .adapters
            .iter()
            .map(|(s, a)| Ok((*s, a.deep_clone()?)))
            .collect::<Result<_>>()?;
        m.score = Var::from_tensor(&self.score.as_detached_tensor().copy()?)?;
        m.probes = ProbeState::default();
        Ok(m)
    }

    /// The frozen linear map of a LoRA slot (a cheap handle: tensors are shared).
    pub(crate) fn frozen_linear(&self, slot: SlotId) -> Option<Linear> {
        // The backbones expose their maps mutably only; cloning the backbone copies handles.
        self.backbone.clone().linear_mut(slot).map(|l| l.clone())
    }

    /// Probes `slots` in the next forward passes (see [`crate::model::probe`]); replaces earlier
    /// probes. Frozen maps: LoRA slots their weight `[d_out, d_in]`, identity shortcuts the
    /// identity, zero shortcuts zeros `[hidden, hidden]`.
    pub fn set_probes(&mut self, slots: &[SlotId], mode: ProbeMode) -> Result<()> {
        for &slot in slots {
            self.check_slot(slot)?;
        }
        let (h, dtype, device) = (self.table.hidden_size, self.dtype, &self.device);
        self.probes = probe_state(slots, mode, h, dtype, device, |s| {
            self.frozen_linear(s).map(|l| l.weight)
        })?;
        Ok(())
    }

    /// Parameters of each enabled adapter: r * (d_in + d_out) from the slot table.
    pub fn slot_params(&self) -> BTreeMap<SlotId, usize> {
        self.adapters
            .iter()
            .filter(|(_, a)| a.enabled)
            .map(|(s, a)| (*s, self.table.params_at_rank(*s, a.r).unwrap_or(0)))
            .collect()
    }

    /// Trainable parameters: enabled adapters + head (`num_labels * output_size`).
    pub fn trainable_params(&self) -> usize {
        self.slot_params().values().sum::<usize>() + self.score.elem_count()
    }

    /// Parameters of the frozen decoder.
    pub fn base_params(&self) -> usize {
        self.backbone.params()
    }

    /// A copy with every enabled LoRA module folded into its frozen weight; its logits equal
    /// this model's up to rounding.
    pub fn merged(&self) -> Result<Self> {
        let mut m = self.clone();
        m.adapters = BTreeMap::new();
        for (slot, ad) in &self.adapters {
            if ad.enabled && !slot.kind.is_shortcut() {
                let lin = m
                    .backbone
                    .linear_mut(*slot)
                    .ok_or_else(|| Error::UnknownSlot(slot.to_string()))?;
                lin.weight = (&lin.weight + ad.delta_weight()?.to_dtype(lin.weight.dtype())?)?;
            } else {
                m.adapters.insert(*slot, ad.deep_clone()?);
            }
        }
        m.score = Var::from_tensor(&self.score.as_detached_tensor().copy()?)?;
        Ok(m)
    }

    /// Checks `lora_A [r, d_in]` and `lora_B [d_out, r]` of `slot`; errors name PEFT's key.
    pub(crate) fn check_factor_shapes(&self, slot: SlotId, a: &Tensor, b: &Tensor) -> Result<()> {
        let arch = self.architecture();
        let (d_in, d_out) = self
            .table
            .dims(slot.kind)
            .ok_or_else(|| Error::UnknownSlot(slot.to_string()))?;
        let r = a.dim(0).unwrap_or(0);
        if a.rank() != 2 || a.dim(1)? != d_in || r == 0 {
            return Err(Error::Shape {
                name: arch.slot_key(slot, "lora_A"),
                expected: vec![r.max(1), d_in],
                actual: a.dims().to_vec(),
            });
        }
        if b.dims() != [d_out, r] {
            return Err(Error::Shape {
                name: arch.slot_key(slot, "lora_B"),
                expected: vec![d_out, r],
                actual: b.dims().to_vec(),
            });
        }
        Ok(())
    }
}
