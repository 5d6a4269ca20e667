//! GELU (exact, erf) and dropout as single-pass ops with their backward passes.

use super::{fusable, grad_like, map_storage, with_slice};
use crate::model::primitives::dropout_with_seed;
use crate::Result;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use heterolora_kernels::{dropout as kd, gelu as kg, Dropout};

struct GeluOp;

impl CustomOp1 for GeluOp {
    fn name(&self) -> &'static str {
        "gelu-erf"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        map_storage(s, l, kg::forward)
    }
    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let dx = with_slice(arg, |x| {
            grad_like(arg, grad, |g, dx| kg::backward(x, g, dx))
        })??;
        Ok(Some(dx))
    }
}

/// The exact GELU `x * Phi(x)` (Hugging Face's `gelu`).
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    if fusable(x) {
        return Ok(x.contiguous()?.apply_op1(GeluOp)?);
    }
    Ok(x.gelu_erf()?)
}

struct DropoutOp(Dropout);

impl CustomOp1 for DropoutOp {
    fn name(&self) -> &'static str {
        "dropout"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        map_storage(s, l, |x, y| kd::apply(x, y, self.0))
    }
    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        // The same mask: d(x * m)/dx = m.
        Ok(Some(grad_like(arg, grad, |g, dx| {
            kd::apply(g, dx, self.0)
        })?))
    }
}

/// Inverted dropout with probability `p`, the mask given by `seed` (see
/// [`heterolora_kernels::dropout`]); the identity when `p == 0`.
pub fn dropout(x: &Tensor, p: f64, seed: u64) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(x.clone());
    }
    if fusable(x) {
        return Ok(x
            .contiguous()?
            .apply_op1(DropoutOp(Dropout::new(p as f32, seed)))?);
    }
    dropout_with_seed(x, p, seed)
}
