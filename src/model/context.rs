//! The state one forward pass threads through the layers: adapters, probes, dropout randomness.

use super::fused;
use super::nn::{self, Linear};
use super::probe::{ProbeState, SlotProbe};
use crate::adapters::{LoraAdapter, ShortcutPlacement, SlotId};
use crate::rng::Rng;
use crate::Result;
use candle_core::{Tensor, Var};
use std::collections::BTreeMap;

pub(crate) struct Ctx<'a> {
    pub adapters: &'a BTreeMap<SlotId, LoraAdapter>,
    pub probes: &'a ProbeState,
    /// `Some` in training mode: dropout masks are drawn from it.
    pub rng: Option<&'a mut Rng>,
    pub lora_dropout: f64,
    pub hidden_dropout: f64,
    pub attention_dropout: f64,
    pub classifier_dropout: f64,
    pub placement: ShortcutPlacement,
}

impl<'a> Ctx<'a> {
    /// Dropout with probability `p`, active in training mode only.
    pub fn dropout(&mut self, x: &Tensor, p: f64) -> Result<Tensor> {
        nn::dropout(x, p, self.rng.as_deref_mut())
    }

    /// A seed for a fused dropout of probability `p`: `Some` in training mode when `p > 0`.
    pub fn dropout_seed(&mut self, p: f64) -> Option<u64> {
        match self.rng.as_deref_mut() {
            Some(rng) if p > 0.0 => Some(rng.next_u64()),
            _ => None,
        }
    }

    /// The enabled adapter of `slot`, if any.
    pub fn active(&self, slot: SlotId) -> Option<&'a LoraAdapter> {
        let adapters: &'a BTreeMap<SlotId, LoraAdapter> = self.adapters;
        adapters.get(&slot).filter(|a| a.enabled)
    }

    fn adapter_delta(&mut self, ad: &LoraAdapter, x: &Tensor) -> Result<Tensor> {
        let p = self.lora_dropout;
        let xd = self.dropout(x, p)?;
        ad.delta(&xd)
    }

    /// A linear map with its slot's LoRA adapter and probe: `x W0^T + b + delta(x)`.
    pub fn linear(&mut self, slot: SlotId, base: &Linear, x: &Tensor) -> Result<Tensor> {
        let probes = self.probes;
        let frozen = probes.frozen_var(slot);
        if let (None, Some(ad), true) = (frozen, self.active(slot), self.lora_dropout <= 0.0) {
            // The frozen map and its adapter in one op (f32 on the CPU; else primitives below).
            let fused = fused::lora_linear(
                x,
                &base.weight,
                base.bias.as_ref(),
                ad.a.as_tensor(),
                ad.b.as_tensor(),
                ad.effective_scaling(),
            )?;
            if let Some(y) = fused {
                return self.finish_probe(slot, x, y);
            }
        }
        let mut y = match frozen {
            Some(w) => base.forward_with(x, w.as_tensor())?,
            None => base.forward(x)?,
        };
        if let Some(ad) = self.active(slot) {
            y = (y + self.adapter_delta(ad, x)?)?;
        }
        self.finish_probe(slot, x, y)
    }

    /// A shortcut's contribution `S(x)` (see [`crate::adapters::shortcut`]); `None` for a zero
    /// shortcut that is neither enabled nor probed (it adds nothing and costs nothing).
    pub fn shortcut(&mut self, slot: SlotId, x: &Tensor) -> Result<Option<Tensor>> {
        let probes = self.probes;
        let ad = self.active(slot);
        let probed = probes.is_probed(slot);
        let identity = slot.kind.is_identity_shortcut();
        if ad.is_none() && !probed {
            return Ok(identity.then(|| x.clone()));
        }
        let frozen: Option<Tensor> = match probes.frozen_var(slot) {
            Some(w) => Some(nn::matmul_last(x, &w.as_tensor().t()?)?),
            None if identity => Some(x.clone()),
            None => None,
        };
        let delta = match ad {
            Some(ad) => Some(self.adapter_delta(ad, x)?),
            None => None,
        };
        let y = match (frozen, delta) {
            (Some(f), Some(d)) => (f + d)?,
            (Some(f), None) => f,
            (None, Some(d)) => d,
            (None, None) => x.zeros_like()?,
        };
        self.finish_probe(slot, x, y).map(Some)
    }

    fn finish_probe(&mut self, slot: SlotId, x: &Tensor, y: Tensor) -> Result<Tensor> {
        let probes = self.probes;
        if !probes.is_probed(slot) {
            return Ok(y);
        }
        let (y, output) = if probes.mode.output_grad {
            let z = Var::zeros(y.shape(), y.dtype(), y.device())?;
            ((y + z.as_tensor())?, Some(z))
        } else {
            (y, None)
        };
        probes.record(
            slot,
            SlotProbe {
                input: x.clone(),
                frozen: probes.frozen_var(slot).cloned(),
                output,
            },
        );
        Ok(y)
    }
}
