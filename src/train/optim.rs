//! AdamW with decoupled weight decay (Loshchilov & Hutter; PyTorch's `torch.optim.AdamW`), over
//! named variables, with a state that can be saved in and restored from a checkpoint.
//!
//! candle-nn has an AdamW, but its moments are private and tied to a fixed `Vec<Var>`: a
//! checkpoint could not save them, and a dynamic re-allocation that switches adapters on and off
//! between steps could not keep a switched-off adapter's moments for later. Here the state is a
//! map from variable name to moments and a per-variable step count, as PyTorch keeps it: a
//! variable without a gradient at some step is skipped entirely (no decay, no moment update).

use super::clip::Grads;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// AdamW hyper-parameters other than the learning rate (which the schedule supplies per step).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWParams {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled weight decay: each step multiplies the weights by `1 - lr * weight_decay`.
    pub weight_decay: f64,
}

impl Default for AdamWParams {
    /// PyTorch's defaults but for the weight decay, 0.01 as in the HeteroLoRA reference.
    fn default() -> Self {
        AdamWParams {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// First and second moments and update count of one variable.
#[derive(Debug, Clone)]
struct ParamState {
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    step: u64,
}

/// AdamW over named variables.
#[derive(Debug, Clone)]
pub struct AdamW {
    pub params: AdamWParams,
    state: BTreeMap<String, ParamState>,
}

impl AdamW {
    pub fn new(params: AdamWParams) -> Self {
        AdamW {
            params,
            state: BTreeMap::new(),
        }
    }

    /// Number of updates applied to variable `name` so far.
    pub fn step_count(&self, name: &str) -> u64 {
        self.state.get(name).map_or(0, |s| s.step)
    }

    /// Names of the variables that have optimiser state.
    pub fn state_names(&self) -> Vec<String> {
        self.state.keys().cloned().collect()
    }

    /// One update at learning rate `lr` of every variable in `vars` that has a gradient in
    /// `grads` (same names). Gradients are used as given: clip them before.
    pub fn step(&mut self, vars: &[(String, Var)], grads: &Grads, lr: f64) -> Result<()> {
        let AdamWParams {
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.params;
        for (name, var) in vars {
            let Some(g) = grads.get(name) else { continue };
            let theta = var.as_tensor();
            let g = g.to_dtype(theta.dtype())?;
            let st = match self.state.get_mut(name) {
                Some(st) => st,
                None => {
                    let z = theta.zeros_like()?;
                    self.state.insert(
                        name.clone(),
                        ParamState {
                            exp_avg: z.clone(),
                            exp_avg_sq: z,
                            step: 0,
                        },
                    );
                    self.state.get_mut(name).expect("just inserted")
                }
            };
            if st.exp_avg.shape() != theta.shape() {
                return Err(Error::Training {
                    step: st.step as usize,
                    reason: format!(
                        "optimiser state of `{name}` has shape {:?} but the variable has {:?}",
                        st.exp_avg.dims(),
                        theta.dims()
                    ),
                });
            }
            st.step += 1;
            let t = st.step as i32;
            let m = ((&st.exp_avg * beta1)? + (&g * (1.0 - beta1))?)?;
            let v = ((&st.exp_avg_sq * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            // Bias corrections folded into scalars, as PyTorch does:
            // theta -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps).
            let bc1 = 1.0 - beta1.powi(t);
            let bc2_sqrt = (1.0 - beta2.powi(t)).sqrt();
            let denom = ((v.sqrt()? / bc2_sqrt)? + eps)?;
            let update = ((m.clone() / denom)? * (lr / bc1))?;
            let decayed = if weight_decay != 0.0 {
                (theta * (1.0 - lr * weight_decay))?
            } else {
                theta.clone()
            };
            var.set(&(decayed - update)?)?;
            st.exp_avg = m;
            st.exp_avg_sq = v;
        }
        Ok(())
    }

    /// Save the moments and step counts as safetensors: `<name>.exp_avg`, `<name>.exp_avg_sq`
    /// and `<name>.step` (an i64 scalar in a 1-element tensor).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut map: HashMap<String, Tensor> = HashMap::new();
        for (name, st) in &self.state {
            map.insert(format!("{name}.exp_avg"), st.exp_avg.clone());
            map.insert(format!("{name}.exp_avg_sq"), st.exp_avg_sq.clone());
            map.insert(
                format!("{name}.step"),
                Tensor::new(&[st.step as i64], &Device::Cpu)?,
            );
        }
        candle_core::safetensors::save(&map, path).map_err(|e| {
            Error::Other(format!(
                "{}: cannot save optimiser state: {e}",
                path.display()
            ))
        })
    }

    /// Restore the state saved by [`AdamW::save`], placing the moments on `device`.
    pub fn load(&mut self, path: &Path, device: &Device) -> Result<()> {
        let map = candle_core::safetensors::load(path, device).map_err(|e| {
            Error::Other(format!(
                "{}: cannot read optimiser state: {e}. Is the checkpoint complete?",
                path.display()
            ))
        })?;
        let mut state = BTreeMap::new();
        for key in map.keys() {
            let Some(name) = key.strip_suffix(".step") else {
                continue;
            };
            let get = |suffix: &str| {
                map.get(&format!("{name}.{suffix}"))
                    .cloned()
                    .ok_or_else(|| {
                        Error::parse(
                            path,
                            0,
                            format!("optimiser state of `{name}` lacks `{suffix}`"),
                        )
                    })
            };
            let step = map[key]
                .to_dtype(DType::I64)?
                .to_device(&Device::Cpu)?
                .to_vec1::<i64>()?;
            state.insert(
                name.to_string(),
                ParamState {
                    exp_avg: get("exp_avg")?,
                    exp_avg_sq: get("exp_avg_sq")?,
                    step: step.first().copied().unwrap_or(0) as u64,
                },
            );
        }
        self.state = state;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(v: &[f32]) -> Var {
        Var::from_tensor(&Tensor::from_slice(v, v.len(), &Device::Cpu).unwrap()).unwrap()
    }

    #[test]
    fn first_step_matches_pytorch_adamw() {
        // torch.optim.AdamW([p], lr=0.1, weight_decay=0.01) with p = [1, -2], grad = [0.5, -0.25]:
        // after one step p = [1 * (1 - 0.001) - 0.1, -2 * (1 - 0.001) + 0.1] = [0.899, -1.898]
        // (the first Adam step moves every coordinate by lr * sign(g), up to eps).
        let p = var(&[1.0, -2.0]);
        let vars = vec![("p".to_string(), p.clone())];
        let mut grads = Grads::new();
        grads.insert(
            "p".into(),
            Tensor::from_slice(&[0.5f32, -0.25], 2, &Device::Cpu).unwrap(),
        );
        let mut opt = AdamW::new(AdamWParams::default());
        opt.step(&vars, &grads, 0.1).unwrap();
        let got = p.as_tensor().to_vec1::<f32>().unwrap();
        assert!((got[0] - 0.899).abs() < 1e-5, "{got:?}");
        assert!((got[1] + 1.898).abs() < 1e-5, "{got:?}");
        // Second step with the same gradient: bias-corrected moments are again g and g^2, so the
        // move is lr * sign(g) once more.
        opt.step(&vars, &grads, 0.1).unwrap();
        let got = p.as_tensor().to_vec1::<f32>().unwrap();
        assert!((got[0] - (0.899 * 0.999 - 0.1)).abs() < 1e-5, "{got:?}");
        assert_eq!(opt.step_count("p"), 2);
    }

    #[test]
    fn variables_without_gradient_are_untouched_and_state_roundtrips() {
        let a = var(&[1.0, 2.0, 3.0]);
        let b = var(&[4.0]);
        let vars = vec![("a".to_string(), a.clone()), ("b".to_string(), b.clone())];
        let mut grads = Grads::new();
        grads.insert(
            "a".into(),
            Tensor::from_slice(&[0.1f32, -0.2, 0.3], 3, &Device::Cpu).unwrap(),
        );
        let mut opt = AdamW::new(AdamWParams::default());
        opt.step(&vars, &grads, 0.01).unwrap();
        assert_eq!(b.as_tensor().to_vec1::<f32>().unwrap(), vec![4.0]);
        assert_eq!(opt.step_count("b"), 0);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("optimizer.safetensors");
        opt.save(&path).unwrap();
        let mut restored = AdamW::new(AdamWParams::default());
        restored.load(&path, &Device::Cpu).unwrap();
        assert_eq!(restored.step_count("a"), 1);
        // Same next step from the original and the restored optimiser.
        let a2 = var(&a.as_tensor().to_vec1::<f32>().unwrap());
        let vars2 = vec![("a".to_string(), a2.clone())];
        opt.step(&vars, &grads, 0.01).unwrap();
        restored.step(&vars2, &grads, 0.01).unwrap();
        assert_eq!(
            a.as_tensor().to_vec1::<f32>().unwrap(),
            a2.as_tensor().to_vec1::<f32>().unwrap()
        );
    }
}
