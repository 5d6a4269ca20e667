//! A frozen linear map with its LoRA adapter as one op: `y = x W^T + b + s (x A^T) B^T`.
//! Forward is three gemms into one output; backward gives dL/dx (only when `x` needs it),
//! dL/dA and dL/dB, and nothing for the frozen `W`.

use super::{fusable, slice, tensor, with_slice};
use crate::Result;
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use heterolora_kernels::linear::{self as k, LoraDims};
use std::sync::Mutex;

struct LoraLinearOp {
    weight: Tensor,
    bias: Option<Tensor>,
    scale: f32,
    need_dx: bool,
    /// `x A^T [rows, r]`, kept for the backward pass.
    h: Mutex<Vec<f32>>,
}

impl LoraLinearOp {
    fn dims(&self, x: &Layout, a: &Layout) -> candle_core::Result<LoraDims> {
        let (d_out, d_in) = self.weight.dims2()?;
        let r = a.dims()[0];
        if x.dims().last() != Some(&d_in) {
            candle_core::bail!("lora-linear: input {:?} does not end in {d_in}", x.dims());
        }
        Ok(LoraDims {
            rows: x.shape().elem_count() / d_in,
            d_in,
            d_out,
            r,
        })
    }
}

impl CustomOp3 for LoraLinearOp {
    fn name(&self) -> &'static str {
        "lora-linear"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sa: &CpuStorage,
        la: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = self.dims(lx, la)?;
        let (x, a, b) = (slice(sx, lx)?, slice(sa, la)?, slice(sb, lb)?);
        let mut y = vec![0f32; dims.rows * dims.d_out];
        let mut h = vec![0f32; dims.rows * dims.r];
        with_slice(&self.weight, |w| match &self.bias {
            Some(bias) => with_slice(bias, |bias| {
                k::lora_forward(dims, x, w, Some(bias), a, b, self.scale, &mut y, &mut h)
            }),
            None => {
                k::lora_forward(dims, x, w, None, a, b, self.scale, &mut y, &mut h);
                Ok(())
            }
        })??;
        *self.h.lock().expect("lora lock") = h;
        let mut out = lx.dims().to_vec();
        *out.last_mut().expect("non-scalar input") = dims.d_out;
        Ok((CpuStorage::F32(y), Shape::from(out)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dims = self.dims(x.layout(), a.layout())?;
        let h = self.h.lock().expect("lora lock");
        let mut dx = vec![0f32; if self.need_dx { x.elem_count() } else { 0 }];
        let mut da = vec![0f32; a.elem_count()];
        let mut db = vec![0f32; b.elem_count()];
        with_slice(x, |xs| {
            with_slice(&self.weight, |w| {
                with_slice(a, |av| {
                    with_slice(b, |bv| {
                        with_slice(grad, |g| {
                            let dx = self.need_dx.then_some(&mut dx[..]);
                            k::lora_backward(
                                dims, xs, w, av, bv, &h, self.scale, g, dx, &mut da, &mut db,
                            )
                        })
                    })
                })
            })
        })?????;
        let dx = if self.need_dx {
            Some(tensor(dx, x.shape())?)
        } else {
            None
        };
        Ok((
            dx,
            Some(tensor(da, a.shape())?),
            Some(tensor(db, b.shape())?),
        ))
    }
}

/// `x [..., in] -> [..., out]`: the frozen `weight [out, in]` and `bias [out]` plus
/// `scale * (x a^T) b^T` with `a [r, in]`, `b [out, r]`; `None` when the fused path does not
/// apply (not f32 on the CPU), for the caller to use primitives.
pub fn lora_linear(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    a: &Tensor,
    b: &Tensor,
    scale: f64,
) -> Result<Option<Tensor>> {
    if !(fusable(x) && fusable(weight) && fusable(a) && fusable(b) && bias.is_none_or(fusable)) {
        return Ok(None);
    }
    let op = LoraLinearOp {
        weight: weight.contiguous()?,
        bias: bias.map(|b| b.contiguous()).transpose()?,
        scale: scale as f32,
        need_dx: x.track_op(),
        h: Mutex::new(Vec::new()),
    };
    Ok(Some(x.contiguous()?.apply_op3(
        &a.contiguous()?,
        &b.contiguous()?,
        op,
    )?))
}
