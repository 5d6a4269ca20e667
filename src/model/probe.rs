//! Probes: hooks that zero-cost proxies put on slots to read gradients the adapters do not give.
//!
//! With B = 0, dL/dA = 0 and SNIP-like scores of fresh adapters vanish; proxies of the
//! "W0-gradient" family look instead at the gradient of the slot's frozen map (dL/dW0, the direction
//! a LoRA update follows) or of its output (Fisher). For each probed slot the next forward passes:
//! - use a [`Var`] copy of the frozen map instead of the constant (LoRA: W0 `[d_out, d_in]`;
//!   shortcuts: a dense identity or zero matrix `[hidden, hidden]`) when `frozen_weight_grad`;
//! - add a zero [`Var`] `[b, s, d_out]` to the slot's output when `output_grad`;
//! - record the slot's input `[b, s, d_in]`.
//!
//! The frozen-map variables are created once by `set_probes` and reused by every forward pass, so
//! that gradients of several batches refer to the same variable; the output variables are new
//! for every pass (their shape follows the batch). A probe works whether or not the slot has an
//! adapter; a disabled zero-shortcut with a probe computes `0 x` so that its gradient exists.

use crate::adapters::SlotId;
use candle_core::{Tensor, Var};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// What a probe exposes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeMode {
    /// Make the frozen map a variable, so that `grads.get(frozen)` is dL/dW0.
    pub frozen_weight_grad: bool,
    /// Add a zero variable to the output, so that `grads.get(output)` is dL/dz.
    pub output_grad: bool,
}

/// What one probed slot recorded in the last forward pass.
#[derive(Debug, Clone)]
pub struct SlotProbe {
    /// The slot's input `[b, s, d_in]` (for shortcut2: the previous layer's feed-forward input).
    pub input: Tensor,
    /// The frozen map as a variable `[d_out, d_in]` (with `frozen_weight_grad`).
    pub frozen: Option<Var>,
    /// Zeros `[b, s, d_out]` added to the slot's output (with `output_grad`).
    pub output: Option<Var>,
}

/// Probe configuration and the last pass's records; cloning copies both.
#[derive(Debug, Default)]
pub(crate) struct ProbeState {
    pub(crate) mode: ProbeMode,
    pub(crate) slots: BTreeSet<SlotId>,
    pub(crate) frozen: BTreeMap<SlotId, Var>,
    pub(crate) recorded: Mutex<BTreeMap<SlotId, SlotProbe>>,
}

impl Clone for ProbeState {
    fn clone(&self) -> Self {
        ProbeState {
            mode: self.mode,
            slots: self.slots.clone(),
            frozen: self.frozen.clone(),
            recorded: Mutex::new(self.recorded.lock().expect("probe lock").clone()),
        }
    }
}

impl ProbeState {
    /// Whether `slot` is probed.
    pub(crate) fn is_probed(&self, slot: SlotId) -> bool {
        self.slots.contains(&slot)
    }

    /// The frozen-map variable of a probed slot, if the mode asks for it.
    pub(crate) fn frozen_var(&self, slot: SlotId) -> Option<&Var> {
        if self.mode.frozen_weight_grad {
            self.frozen.get(&slot)
        } else {
            None
        }
    }

    pub(crate) fn record(&self, slot: SlotId, probe: SlotProbe) {
        self.recorded
            .lock()
            .expect("probe lock")
            .insert(slot, probe);
    }

    pub(crate) fn take(&self) -> BTreeMap<SlotId, SlotProbe> {
        std::mem::take(&mut *self.recorded.lock().expect("probe lock"))
    }

    pub(crate) fn clear(&mut self) {
        *self = ProbeState::default();
    }
}
