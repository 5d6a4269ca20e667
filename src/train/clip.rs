//! Gradient clipping by global norm (PyTorch's `clip_grad_norm_`), over named gradients.

use candle_core::Tensor;
use std::collections::BTreeMap;

/// Gradients of the trainable variables, by variable name. Ordered, so that sums over it are
/// computed in the same order on every run (floating-point addition is not associative).
pub type Grads = BTreeMap<String, Tensor>;

/// The global L2 norm sqrt(sum_i ||g_i||^2) over all gradients, computed in f32 with a single
/// device-to-host copy. Returns 0 for no gradients; NaN or infinite if any gradient is.
pub fn global_norm(grads: &Grads) -> candle_core::Result<f64> {
    let mut total: Option<Tensor> = None;
    for g in grads.values() {
        let s = g.to_dtype(candle_core::DType::F32)?.sqr()?.sum_all()?;
        total = Some(match total {
            None => s,
            Some(t) => (t + s)?,
        });
    }
    match total {
        None => Ok(0.0),
        Some(t) => Ok((t.to_scalar::<f32>()? as f64).sqrt()),
    }
}

/// Scale all gradients so that their global norm is at most `max_norm`; returns the norm before
/// clipping. The factor is `max_norm / (norm + 1e-6)` as in PyTorch. A non-finite norm leaves the
/// gradients untouched: the caller stops the run on it.
pub fn clip_by_global_norm(grads: &mut Grads, max_norm: f64) -> candle_core::Result<f64> {
    let norm = global_norm(grads)?;
    if norm.is_finite() && norm > max_norm {
        let factor = max_norm / (norm + 1e-6);
        for g in grads.values_mut() {
            *g = (&*g * factor)?;
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn grads(vals: &[(&str, Vec<f32>)]) -> Grads {
        vals.iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    Tensor::from_vec(v.clone(), v.len(), &Device::Cpu).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn norm_spans_all_tensors_and_clipping_rescales_to_max() {
        let mut g = grads(&[("a", vec![3.0, 0.0]), ("b", vec![0.0, 4.0])]);
        assert!((global_norm(&g).unwrap() - 5.0).abs() < 1e-6);
        let before = clip_by_global_norm(&mut g, 1.0).unwrap();
        assert!((before - 5.0).abs() < 1e-6);
        let after = global_norm(&g).unwrap();
        assert!((after - 1.0).abs() < 1e-5, "{after}");
        let a = g["a"].to_vec1::<f32>().unwrap();
        assert!((a[0] - 0.6).abs() < 1e-5, "{a:?}");
    }

    #[test]
    fn small_gradients_are_left_alone_and_nan_is_reported() {
        let mut g = grads(&[("a", vec![0.3, 0.4])]);
        clip_by_global_norm(&mut g, 1.0).unwrap();
        assert_eq!(g["a"].to_vec1::<f32>().unwrap(), vec![0.3, 0.4]);
        let mut bad = grads(&[("a", vec![f32::NAN, 1.0])]);
        assert!(clip_by_global_norm(&mut bad, 1.0).unwrap().is_nan());
        assert_eq!(global_norm(&Grads::new()).unwrap(), 0.0);
    }
}
