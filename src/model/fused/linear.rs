//! A frozen linear map `y = x W^T + b`: one gemm with the bias written first, and a backward
//! pass that computes only dL/dx (the frozen weight gets no gradient).

use super::{fusable, grad_like, slice, with_slice};
use crate::model::primitives;
use crate::Result;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use heterolora_kernels::linear as k;

/// The custom op; `weight [out, in]`, `bias [out]`, both contiguous f32 on the CPU.
pub struct FrozenLinearOp {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl CustomOp1 for FrozenLinearOp {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice(s, l)?;
        let (d_out, d_in) = self.weight.dims2()?;
        let mut dims = l.shape().dims().to_vec();
        match dims.last_mut() {
            Some(last) if *last == d_in => *last = d_out,
            _ => candle_core::bail!("frozen-linear: input {:?} does not end in {d_in}", l.dims()),
        }
        let rows = x.len() / d_in;
        let mut y = vec![0f32; rows * d_out];
        with_slice(&self.weight, |w| match &self.bias {
            Some(b) => with_slice(b, |b| k::forward(x, w, Some(b), d_in, &mut y)),
            None => {
                k::forward(x, w, None, d_in, &mut y);
                Ok(())
            }
        })??;
        Ok((CpuStorage::F32(y), Shape::from(dims)))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let (_, d_in) = self.weight.dims2()?;
        let dx = with_slice(&self.weight, |w| {
            grad_like(arg, grad, |g, dx| k::backward_input(g, w, d_in, dx))
        })??;
        Ok(Some(dx))
    }
}

/// `x [..., in] -> [..., out]` through a frozen `weight [out, in]` and `bias [out]`.
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    if fusable(x) && fusable(weight) && bias.is_none_or(fusable) {
        let op = FrozenLinearOp {
            weight: weight.contiguous()?,
            bias: bias.map(|b| b.contiguous()).transpose()?,
        };
        return Ok(x.contiguous()?.apply_op1(op)?);
    }
    primitives::linear(x, weight, bias)
}
