//! The shared gradient pass: one forward/backward per scoring batch that collects everything the
//! gradient-based proxies need (dL/dA, dL/dB, dL/dW0, Fisher terms, slot Jacobians), so that
//! several proxies can be scored from one pass ([`super::score_all`]) and each also alone.
//!
//! It runs on any backbone ([`AdaptedClassifier`]: BERT, OPT, Llama, Qwen2).
//! Scoring never changes the caller's model: it works on a [`AdaptedClassifier::deep_clone`]
//! (shared frozen base, copied adapters and head) in which every candidate slot is switched on,
//! slots without an adapter getting a fresh one (PEFT init: B = 0). Passes run in evaluation mode
//! (no dropout), so scores are deterministic given the batches; [`gradient_pass_in_mode`] can run
//! them in training mode instead (dropout on, masks from a seeded generator), as the authors'
//! dynamic re-allocation does.

use super::linalg::{host_f64, sym_eigenvalues};
use crate::adapters::SlotId;
use crate::data::Batch;
use crate::model::{AdaptedClassifier, ProbeMode};
use crate::{Error, Result};
use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

/// What a gradient-based proxy needs from the pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// dL/dA and dL/dB of every slot's adapter (and their values).
    pub factors: bool,
    /// dL/dW0 of every slot's frozen map (probes; shortcuts: identity or zero matrix).
    pub frozen: bool,
    /// Fisher terms 0.5 * mean_n (sum_s z * dL/dz)^2 of every slot's output z.
    pub fisher: bool,
    /// Per-slot jacob_cov on the first `jacobian_batches` batches (a second backward of the
    /// summed logits per batch); 0 = none.
    pub jacobian_batches: usize,
}

impl Needs {
    pub fn union(self, o: Needs) -> Needs {
        Needs {
            factors: self.factors || o.factors,
            frozen: self.frozen || o.frozen,
            fisher: self.fisher || o.fisher,
            jacobian_batches: self.jacobian_batches.max(o.jacobian_batches),
        }
    }
}

/// The adapters that scoring creates for candidate slots that have none.
///
/// | name | default | meaning |
/// |---|---|---|
/// | `r` | 8 | rank of a fresh adapter (the reference scores rank-8 modules) |
/// | `lora_alpha` | 16 | alpha of a fresh LoRA module |
/// | `shortcut_alpha` | 4 | alpha_s of a fresh shortcut |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FreshAdapters {
    pub r: usize,
    pub lora_alpha: f64,
    pub shortcut_alpha: f64,
}

impl Default for FreshAdapters {
    fn default() -> Self {
        FreshAdapters {
            r: 8,
            lora_alpha: 16.0,
            shortcut_alpha: 4.0,
        }
    }
}

/// What the pass collected for one slot. Gradients are summed over the batches.
#[derive(Debug, Clone, Default)]
pub struct SlotGradients {
    /// `lora_A` `[r, d_in]` and `lora_B` `[d_out, r]` at scoring time.
    pub a: Option<Tensor>,
    pub b: Option<Tensor>,
    /// Summed dL/dA, dL/dB.
    pub grad_a: Option<Tensor>,
    pub grad_b: Option<Tensor>,
    /// The frozen map `[d_out, d_in]` and the summed dL/dW0.
    pub w0: Option<Tensor>,
    pub grad_w0: Option<Tensor>,
    /// Fisher score summed over batches.
    pub fisher: f64,
    /// Per-slot jacob_cov score, mean over the jacobian batches with at least two examples.
    pub jacob_cov: f64,
}

/// The result of one gradient pass over the scoring batches.
#[derive(Debug, Clone)]
pub struct GradientStats {
    pub slots: BTreeMap<SlotId, SlotGradients>,
    pub num_batches: usize,
    /// Sum of the batches' mean losses.
    pub loss: f64,
    /// Wall time of the pass, seconds.
    pub seconds: f64,
}

/// Checks the inputs every proxy shares.
pub(crate) fn check_inputs<M: AdaptedClassifier>(
    model: &M,
    batches: &[Batch],
    slots: &[SlotId],
) -> Result<()> {
    if batches.is_empty() {
        return Err(Error::invalid(
            "scoring batches",
            0,
            "at least one training batch (see proxy::ScoringData)",
        ));
    }
    if slots.is_empty() {
        return Err(Error::invalid(
            "slots",
            "[]",
            "at least one candidate slot, e.g. SearchSpace::lora_qv().slots(num_layers)",
        ));
    }
    for (i, b) in batches.iter().enumerate() {
        if !b.labelled {
            return Err(Error::invalid(
                format!("scoring batch {i}"),
                "unlabelled",
                "labelled training batches (GLUE test splits have no labels)",
            ));
        }
    }
    for &s in slots {
        if !model.has_slot(s) {
            return Err(Error::UnknownSlot(format!(
                "{s} (the {} model has {} layers and kinds {:?})",
                model.architecture(),
                model.slot_table().num_layers,
                model
                    .architecture()
                    .kinds()
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
            )));
        }
    }
    Ok(())
}

/// A copy of `model` with every slot of `slots` enabled; slots without an adapter get a fresh one.
pub fn working_copy<M: AdaptedClassifier>(
    model: &M,
    slots: &[SlotId],
    fresh: &FreshAdapters,
) -> Result<M> {
    let mut work = model.deep_clone()?;
    for &slot in slots {
        if work.adapter(slot).is_some() {
            work.set_enabled(slot, true)?;
        } else {
            let alpha = if slot.kind.is_shortcut() {
                fresh.shortcut_alpha
            } else {
                fresh.lora_alpha
            };
            work.add_slot(slot, fresh.r, alpha)?;
        }
    }
    Ok(work)
}

/// The value of a slot's output z `[b, s, d_out]` given its recorded input (evaluation mode).
fn slot_output<M: AdaptedClassifier>(model: &M, slot: SlotId, x: &Tensor) -> Result<Tensor> {
    let x = x.detach();
    let base = match model.frozen_output(slot, &x)? {
        Some(y) => Some(y),
        None if slot.kind.is_identity_shortcut() => Some(x.clone()),
        None => None,
    };
    let delta = match model.adapter(slot).filter(|a| a.enabled) {
        Some(ad) => Some(ad.delta(&x)?.detach()),
        None => None,
    };
    Ok(match (base, delta) {
        (Some(b), Some(d)) => (b + d)?,
        (Some(b), None) => b,
        (None, Some(d)) => d,
        (None, None) => {
            let (b, s, _) = x.dims3()?;
            let d_out = model
                .slot_table()
                .dims(slot.kind)
                .ok_or_else(|| Error::UnknownSlot(slot.to_string()))?
                .1;
            Tensor::zeros((b, s, d_out), x.dtype(), x.device())?
        }
    })
}

fn add_opt(acc: &mut Option<Tensor>, g: Tensor) -> Result<()> {
    *acc = Some(match acc.take() {
        Some(a) => (a + g)?,
        None => g,
    });
    Ok(())
}

/// jacob_cov of one Jacobian `[b, ...]`: -sum_i (ln(l_i + k) + 1 / (l_i + k)), k = 1e-5, over
/// the eigenvalues l_i of the correlation matrix of the b flattened rows (Mellor et al. 2021, as
/// used by Abdelfattah et al. 2021). `None` for a single-row batch.
pub fn jacob_cov_score(jac: &Tensor) -> Result<Option<f64>> {
    let n = jac.dim(0)?;
    if n < 2 {
        return Ok(None);
    }
    let d = jac.elem_count() / n;
    // The n x n Gram matrix of the centred rows on the device (rows can be 10^5 long), the
    // normalisation and eigenvalues on the host.
    let j = jac.reshape((n, d))?.to_dtype(DType::F64)?;
    let jc = j.broadcast_sub(&j.mean_keepdim(1)?)?;
    let g = host_f64(&jc.matmul(&jc.t()?)?)?;
    let mut c = vec![0.0; n * n];
    for a in 0..n {
        c[a * n + a] = 1.0;
        for b in a + 1..n {
            let den = (g[a * n + a] * g[b * n + b]).sqrt();
            let v = if den > 0.0 {
                (g[a * n + b] / den).clamp(-1.0, 1.0)
            } else {
                0.0
            };
            c[a * n + b] = v;
            c[b * n + a] = v;
        }
    }
    let ev = sym_eigenvalues(&c, n);
    let k = 1e-5;
    Ok(Some(
        -ev.iter()
            .map(|l| {
                let l = l.max(0.0) + k;
                l.ln() + 1.0 / l
            })
            .sum::<f64>(),
    ))
}

/// Runs the scoring batches through a working copy of `model` and collects what `needs` asks,
/// in evaluation mode (no dropout).
pub fn gradient_pass<M: AdaptedClassifier>(
    model: &M,
    batches: &[Batch],
    slots: &[SlotId],
    needs: Needs,
    fresh: &FreshAdapters,
) -> Result<GradientStats> {
    gradient_pass_in_mode(model, batches, slots, needs, fresh, None)
}

/// [`gradient_pass`] with a mode: `dropout` `None` = evaluation mode, `Some(rng)` = training
/// mode (the model's dropout on, masks drawn from `rng`, one draw per batch as in training).
pub fn gradient_pass_in_mode<M: AdaptedClassifier>(
    model: &M,
    batches: &[Batch],
    slots: &[SlotId],
    needs: Needs,
    fresh: &FreshAdapters,
    mut dropout: Option<&mut crate::rng::Rng>,
) -> Result<GradientStats> {
    check_inputs(model, batches, slots)?;
    let start = Instant::now();
    let mut work = working_copy(model, slots, fresh)?;
    let mode = ProbeMode {
        frozen_weight_grad: needs.frozen,
        output_grad: needs.fisher || needs.jacobian_batches > 0,
    };
    if mode.frozen_weight_grad || mode.output_grad {
        work.set_probes(slots, mode)?;
    }
    let mut out: BTreeMap<SlotId, SlotGradients> = BTreeMap::new();
    let mut jac_batches: BTreeMap<SlotId, usize> = BTreeMap::new();
    for &slot in slots {
        let mut sg = SlotGradients::default();
        if needs.factors {
            let (a, b) = work
                .lora_factors(slot)
                .expect("working copy has every slot");
            sg.a = Some(a.as_tensor().detach());
            sg.b = Some(b.as_tensor().detach());
        }
        out.insert(slot, sg);
    }
    let mut loss_sum = 0.0;
    for (i, batch) in batches.iter().enumerate() {
        let logits = work.forward_batch(batch, dropout.as_deref_mut())?;
        let loss = work.loss(&logits, &batch.labels)?;
        let lv = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        if !lv.is_finite() {
            return Err(Error::Training {
                step: i,
                reason: format!("the loss of scoring batch {i} is {lv}"),
            });
        }
        loss_sum += lv;
        let grads = loss.backward()?;
        let probes = work.take_probes();
        let jgrads = if i < needs.jacobian_batches {
            Some(logits.sum_all()?.backward()?)
        } else {
            None
        };
        for &slot in slots {
            let sg = out.get_mut(&slot).expect("inserted above");
            if needs.factors {
                let (a, b) = work
                    .lora_factors(slot)
                    .expect("working copy has every slot");
                let ga = match grads.get(a.as_tensor()) {
                    Some(g) => g.clone(),
                    None => a.as_tensor().zeros_like()?,
                };
                let gb = match grads.get(b.as_tensor()) {
                    Some(g) => g.clone(),
                    None => b.as_tensor().zeros_like()?,
                };
                add_opt(&mut sg.grad_a, ga)?;
                add_opt(&mut sg.grad_b, gb)?;
            }
            if !(needs.frozen || needs.fisher || needs.jacobian_batches > 0) {
                continue;
            }
            let probe = probes.get(&slot).ok_or_else(|| {
                Error::Other(format!(
                    "slot {slot} was probed but not reached by the forward pass"
                ))
            })?;
            if needs.frozen {
                let w = probe.frozen.as_ref().expect("frozen probes requested");
                if sg.w0.is_none() {
                    sg.w0 = Some(w.as_tensor().detach());
                }
                let g = match grads.get(w.as_tensor()) {
                    Some(g) => g.clone(),
                    None => w.as_tensor().zeros_like()?,
                };
                add_opt(&mut sg.grad_w0, g)?;
            }
            if let Some(zvar) = probe.output.as_ref() {
                if needs.fisher {
                    let gz = match grads.get(zvar.as_tensor()) {
                        Some(g) => g.to_dtype(DType::F64)?,
                        None => zvar.as_tensor().zeros_like()?.to_dtype(DType::F64)?,
                    };
                    let z = slot_output(&work, slot, &probe.input)?.to_dtype(DType::F64)?;
                    // Per example and channel: sum over tokens of z * dL/dz.
                    let del = (z * gz)?.sum(1)?;
                    let f = (del.sqr()?.mean(0)?.sum_all()? * 0.5)?.to_scalar::<f64>()?;
                    sg.fisher += f;
                }
                if let Some(jg) = &jgrads {
                    let j = match jg.get(zvar.as_tensor()) {
                        Some(g) => g.clone(),
                        None => zvar.as_tensor().zeros_like()?,
                    };
                    if let Some(s) = jacob_cov_score(&j)? {
                        sg.jacob_cov += s;
                        *jac_batches.entry(slot).or_insert(0) += 1;
                    }
                }
            }
        }
    }
    if needs.jacobian_batches > 0 {
        for (slot, sg) in out.iter_mut() {
            match jac_batches.get(slot) {
                Some(&n) if n > 0 => sg.jacob_cov /= n as f64,
                _ => {
                    return Err(Error::invalid(
                        "scoring batches",
                        "only single-example batches",
                        "jacob_cov needs batches of at least 2 examples",
                    ))
                }
            }
        }
    }
    work.clear_probes();
    Ok(GradientStats {
        slots: out,
        num_batches: batches.len(),
        loss: loss_sum,
        seconds: start.elapsed().as_secs_f64(),
    })
}
