//! Slot management on [`SequenceClassifier`]: adding, enabling, allocations, trainable variables,
//! parameter counts and probes.

use super::classifier::SequenceClassifier;
use super::primitives::trainable_dtype;
use super::probe::{ProbeMode, ProbeState, SlotProbe};
use crate::adapters::Allocation;
use crate::adapters::{peft, LoraAdapter, ModelDims, SlotId, SlotTable};
use crate::{Error, Result};
use candle_core::{Tensor, Var};
use std::collections::BTreeMap;

impl SequenceClassifier {
    /// The slot table of this BERT: its kinds, module paths and `(d_in, d_out)` per kind.
    pub fn slot_table(&self) -> SlotTable {
        SlotTable::bert(&self.dims())
    }

    /// Whether `slot` exists in this model (a BERT kind; layer in range; shortcut2 not in layer 0).
    pub fn has_slot(&self, slot: SlotId) -> bool {
        self.slot_table().has_slot(slot)
    }

    pub(crate) fn check_slot(&self, slot: SlotId) -> Result<()> {
        if self.has_slot(slot) {
            Ok(())
        } else {
            Err(Error::UnknownSlot(format!(
                "{slot} (this BERT model has layers 0..{} and no `{}` slots of other architectures)",
                self.cfg.num_hidden_layers,
                slot.kind
            )))
        }
    }

    fn adapter_mut(&mut self, slot: SlotId) -> Result<&mut LoraAdapter> {
        self.check_slot(slot)?;
        self.adapters.get_mut(&slot).ok_or_else(|| {
            Error::UnknownSlot(format!(
                "{slot} (no adapter was created for it; call add_slot first)"
            ))
        })
    }

    /// Creates a fresh adapter on `slot` (PEFT init: A Kaiming-uniform from the model's own rng,
    /// B zeros) and enables it, replacing any adapter the slot had.
    pub fn add_slot(&mut self, slot: SlotId, r: usize, lora_alpha: f64) -> Result<()> {
        self.check_slot(slot)?;
        let table = self.slot_table();
        let ad = fresh_adapter(
            &mut self.rng,
            &table,
            slot,
            r,
            lora_alpha,
            trainable_dtype(self.dtype),
            &self.device,
        )?;
        self.adapters.insert(slot, ad);
        Ok(())
    }

    /// Puts in place an existing adapter (e.g. loaded from a file); shapes are checked.
    pub fn insert_adapter(&mut self, slot: SlotId, adapter: LoraAdapter) -> Result<()> {
        self.check_slot(slot)?;
        self.check_factor_shapes(slot, adapter.a.as_tensor(), adapter.b.as_tensor())?;
        let dtype = trainable_dtype(self.dtype);
        let adapter = if adapter.a.dtype() != dtype || !adapter.a.device().same_device(&self.device)
        {
            let device = self.device.clone();
            adapter.map(&|t| Ok(t.to_dtype(dtype)?.to_device(&device)?))?
        } else {
            adapter
        };
        self.adapters.insert(slot, adapter);
        Ok(())
    }

    /// After this, exactly `alloc`'s slots are enabled at its ranks and alphas. An existing
    /// adapter of the same rank keeps its weights (its alpha is updated); a different rank gets a
    /// fresh adapter; every other adapter is disabled, weights kept.
    pub fn apply_allocation(&mut self, alloc: &Allocation) -> Result<()> {
        check_allocation(alloc, &self.dims(), |s| self.check_slot(s))?;
        for (slot, r, alpha) in switch_to_allocation(&mut self.adapters, alloc) {
            self.add_slot(slot, r, alpha)?;
        }
        Ok(())
    }

    /// Switches an adapter on or off; its weights are kept either way. Errors for a slot
    /// without an adapter.
    pub fn set_enabled(&mut self, slot: SlotId, on: bool) -> Result<()> {
        self.adapter_mut(slot)?.enabled = on;
        Ok(())
    }

    /// Switches every created adapter on or off.
    pub fn set_all_enabled(&mut self, on: bool) {
        for ad in self.adapters.values_mut() {
            ad.enabled = on;
        }
    }

    /// Removes a slot's adapter (weights discarded).
    pub fn remove_slot(&mut self, slot: SlotId) -> Result<()> {
        self.adapter_mut(slot)?;
        self.adapters.remove(&slot);
        Ok(())
    }

    /// Slots whose adapter is enabled, in (layer, kind) order.
    pub fn enabled_slots(&self) -> Vec<SlotId> {
        self.adapters
            .iter()
            .filter(|(_, a)| a.enabled)
            .map(|(s, _)| *s)
            .collect()
    }

    /// Every slot with an adapter, enabled or not.
    pub fn adapter_slots(&self) -> Vec<SlotId> {
        self.adapters.keys().copied().collect()
    }

    /// (r, lora_alpha) of a slot's adapter, enabled or not.
    pub fn slot_rank(&self, slot: SlotId) -> Option<(usize, f64)> {
        self.adapters.get(&slot).map(|a| (a.r, a.lora_alpha))
    }

    /// Whether a slot's adapter exists and is enabled.
    pub fn is_enabled(&self, slot: SlotId) -> bool {
        self.adapters.get(&slot).is_some_and(|a| a.enabled)
    }

    /// A slot's adapter (read-only).
    pub fn adapter(&self, slot: SlotId) -> Option<&LoraAdapter> {
        self.adapters.get(&slot)
    }

    /// `(lora_A [r, d_in], lora_B [d_out, r])` of a slot's adapter (shortcuts too).
    pub fn lora_factors(&self, slot: SlotId) -> Option<(Var, Var)> {
        self.adapters.get(&slot).map(|a| (a.a.clone(), a.b.clone()))
    }

    /// Multiplies a slot's contribution by `scale` (alpha-test); 1 by default.
    pub fn set_slot_scale(&mut self, slot: SlotId, scale: f64) -> Result<()> {
        if !scale.is_finite() {
            return Err(Error::invalid(
                format!("scale of {slot}"),
                scale,
                "a finite number",
            ));
        }
        self.adapter_mut(slot)?.scale = scale;
        Ok(())
    }

    /// Dropout on every adapter's input (PEFT's `lora_dropout`), training mode only.
    pub fn set_lora_dropout(&mut self, p: f32) {
        self.lora_dropout = (p as f64).clamp(0.0, 0.999);
    }

    pub fn lora_dropout(&self) -> f32 {
        self.lora_dropout as f32
    }

    fn head_vars(&self) -> Vec<(String, Var)> {
        vec![
            (peft::HEAD_WEIGHT_KEY.to_string(), self.head_weight.clone()),
            (peft::HEAD_BIAS_KEY.to_string(), self.head_bias.clone()),
        ]
    }

    fn vars_of<'a>(
        &self,
        it: impl Iterator<Item = (&'a SlotId, &'a LoraAdapter)>,
    ) -> Vec<(String, Var)> {
        let mut out = named_factors(it, peft::slot_key);
        out.extend(self.head_vars());
        out
    }

    /// Enabled adapters' factors and the classifier head, named by PEFT-style keys
    /// (`base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight`, ...,
    /// `base_model.model.classifier.weight`). Disabled adapters are not in it.
    pub fn trainable_vars(&self) -> Vec<(String, Var)> {
        self.vars_of(self.adapters.iter().filter(|(_, a)| a.enabled))
    }

    /// Every created adapter (enabled or not) and the head: what a checkpoint must save.
    pub fn adapter_vars(&self) -> Vec<(String, Var)> {
        self.vars_of(self.adapters.iter())
    }

    /// Parameters of the classifier head: num_labels * (hidden + 1).
    pub fn head_params(&self) -> usize {
        self.num_labels * (self.cfg.hidden_size + 1)
    }

    /// Parameters of the frozen base (embeddings, layers, pooler).
    pub fn base_params(&self) -> usize {
        self.bert.params()
    }

    /// Trainable parameters: enabled adapters (r * (d_in + d_out) each) + head.
    pub fn trainable_params(&self) -> usize {
        self.slot_params().values().sum::<usize>() + self.head_params()
    }

    /// Frozen base + trainable parameters (disabled adapters do not count: they take no part).
    pub fn total_params(&self) -> usize {
        self.base_params() + self.trainable_params()
    }

    /// Parameters of each enabled adapter.
    pub fn slot_params(&self) -> BTreeMap<SlotId, usize> {
        self.adapters
            .iter()
            .filter(|(_, a)| a.enabled)
            .map(|(s, a)| (*s, a.params()))
            .collect()
    }

    /// Probes `slots` in the next forward passes (see [`super::probe`]); replaces earlier probes.
    pub fn set_probes(&mut self, slots: &[SlotId], mode: ProbeMode) -> Result<()> {
        for &slot in slots {
            self.check_slot(slot)?;
        }
        let (h, dtype, device) = (self.cfg.hidden_size, self.dtype, &self.device);
        self.probes = probe_state(slots, mode, h, dtype, device, |s| {
            self.bert.slot_linear(s).map(|l| l.weight.clone())
        })?;
        Ok(())
    }

    /// Removes every probe.
    pub fn clear_probes(&mut self) {
        self.probes.clear();
    }

    /// What the probes recorded in the last forward pass (and forgets it).
    pub fn take_probes(&self) -> BTreeMap<SlotId, SlotProbe> {
        self.probes.take()
    }
}

/// Probes on `slots` (checked by the caller) in `mode`; with `frozen_weight_grad`, each gets a
/// variable copy of its frozen map: `weight(slot)` `[d_out, d_in]` for LoRA slots, the identity
/// or zeros `[hidden, hidden]` for shortcuts.
pub(crate) fn probe_state(
    slots: &[SlotId],
    mode: ProbeMode,
    hidden: usize,
    dtype: candle_core::DType,
    device: &candle_core::Device,
    weight: impl Fn(SlotId) -> Option<Tensor>,
) -> Result<ProbeState> {
    let mut state = ProbeState {
        mode,
        ..Default::default()
    };
    for &slot in slots {
        state.slots.insert(slot);
        if mode.frozen_weight_grad {
            let w = match weight(slot) {
                Some(w) => w.copy()?,
                None if slot.kind.is_identity_shortcut() => Tensor::eye(hidden, dtype, device)?,
                None => Tensor::zeros((hidden, hidden), dtype, device)?,
            };
            state.frozen.insert(slot, Var::from_tensor(&w)?);
        }
    }
    Ok(state)
}

/// A fresh adapter of rank `r` on a slot of `table` (checked by the caller): PEFT's init, A
/// Kaiming-uniform `[r, d_in]` from `rng`, B zeros `[d_out, r]`.
pub(crate) fn fresh_adapter(
    rng: &mut crate::rng::Rng,
    table: &SlotTable,
    slot: SlotId,
    r: usize,
    lora_alpha: f64,
    dtype: candle_core::DType,
    device: &candle_core::Device,
) -> Result<LoraAdapter> {
    if r == 0 {
        return Err(Error::invalid(
            format!("r of {slot}"),
            0,
            "rank >= 1 (rank 0 means no adapter: leave the slot out)",
        ));
    }
    let (d_in, d_out) = table
        .dims(slot.kind)
        .ok_or_else(|| Error::UnknownSlot(slot.to_string()))?;
    LoraAdapter::new(rng, d_in, d_out, r, lora_alpha, dtype, device)
}

/// `lora_A` and `lora_B` of each adapter, named by `key(slot, "lora_A")`.
pub(crate) fn named_factors<'a>(
    adapters: impl Iterator<Item = (&'a SlotId, &'a LoraAdapter)>,
    key: impl Fn(SlotId, &str) -> String,
) -> Vec<(String, Var)> {
    let mut out = Vec::new();
    for (slot, ad) in adapters {
        out.push((key(*slot, "lora_A"), ad.a.clone()));
        out.push((key(*slot, "lora_B"), ad.b.clone()));
    }
    out
}

/// Fails unless `alloc` is for a model of `dims` whose slots `check_slot` accepts, at ranks >= 1.
pub(crate) fn check_allocation(
    alloc: &Allocation,
    dims: &ModelDims,
    check_slot: impl Fn(SlotId) -> Result<()>,
) -> Result<()> {
    if alloc.dims != *dims {
        return Err(Error::Config {
            field: "allocation.dims".into(),
            reason: format!(
                "allocation is for {:?}, the model has {:?}",
                alloc.dims, dims
            ),
        });
    }
    for (slot, sr) in &alloc.ranks {
        check_slot(*slot)?;
        if sr.r == 0 {
            return Err(Error::invalid(
                format!("r of {slot}"),
                0,
                "rank >= 1 in an allocation",
            ));
        }
    }
    Ok(())
}

/// Puts a checked allocation in force on `adapters`: adapters outside it off, those of the
/// allocated rank on at its alpha (weights kept). Returns the `(slot, r, lora_alpha)` that need
/// a fresh adapter (none yet, or another rank), for the model's `add_slot`.
pub(crate) fn switch_to_allocation(
    adapters: &mut BTreeMap<SlotId, LoraAdapter>,
    alloc: &Allocation,
) -> Vec<(SlotId, usize, f64)> {
    for (slot, ad) in adapters.iter_mut() {
        if !alloc.ranks.contains_key(slot) {
            ad.enabled = false;
        }
    }
    let mut fresh = Vec::new();
    for (slot, sr) in &alloc.ranks {
        match adapters.get_mut(slot) {
            Some(ad) if ad.r == sr.r => {
                ad.lora_alpha = sr.lora_alpha;
                ad.enabled = true;
            }
            _ => fresh.push((*slot, sr.r, sr.lora_alpha)),
        }
    }
    fresh
}

#[cfg(test)]
mod tests {
    use crate::adapters::{SlotId, SlotKind};
    use crate::model::{BertConfig, SequenceClassifier};
    use candle_core::{DType, Device};

    #[test]
    fn bert_has_no_gate_slot_and_sizes_come_from_its_table() {
        let mut m = SequenceClassifier::random(&BertConfig::tiny(), 2, DType::F32, &Device::Cpu, 1)
            .unwrap();
        let gate = SlotId::new(0, SlotKind::FfnGate);
        assert!(!m.has_slot(gate));
        let e = m.add_slot(gate, 2, 4.0).unwrap_err().to_string();
        assert!(e.contains("layer.0.gate"), "{e}");
        let ffn = SlotId::new(0, SlotKind::FfnIn);
        m.add_slot(ffn, 2, 4.0).unwrap();
        let d = m.dims();
        assert_eq!(
            m.slot_params()[&ffn],
            2 * (d.hidden_size + d.intermediate_size)
        );
    }
}
