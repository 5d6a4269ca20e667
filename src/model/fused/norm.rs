//! LayerNorm with a frozen affine, fused with the residual sum and the dropout before it:
//! `LN(dropout(a) + b) * gamma + beta`. Backward gives dL/da and dL/db, nothing for gamma/beta
//! (candle's primitives would also compute their discarded gradients).

use super::{fusable, slice, tensor, to_vec, with_slice};
use crate::model::primitives::{dropout_with_seed, norm};
use crate::Result;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use heterolora_kernels::layer_norm::{self as k, Inputs};
use heterolora_kernels::Dropout;
use std::sync::Mutex;

struct AddNormOp {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
    dropout: Option<Dropout>,
    /// Per row (mean, 1/std), written by the forward pass for the backward pass.
    stats: Mutex<Vec<f32>>,
}

impl AddNormOp {
    fn inputs<'a>(&'a self, a: &'a [f32], b: Option<&'a [f32]>) -> Inputs<'a> {
        Inputs {
            a,
            b,
            dropout: self.dropout,
            gamma: &self.gamma,
            beta: &self.beta,
            eps: self.eps,
        }
    }

    fn check(&self, l: &Layout) -> candle_core::Result<usize> {
        let cols = self.gamma.len();
        if l.dims().last() != Some(&cols) {
            candle_core::bail!("layer-norm: input {:?} does not end in {cols}", l.dims());
        }
        Ok(l.shape().elem_count() / cols)
    }

    fn fwd(
        &self,
        a: &[f32],
        b: Option<&[f32]>,
        l: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let rows = self.check(l)?;
        let mut y = vec![0f32; a.len()];
        let mut stats = vec![0f32; rows * 2];
        k::forward(self.inputs(a, b), &mut y, &mut stats);
        *self.stats.lock().expect("stats lock") = stats;
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    /// (dL/da, dL/db).
    fn bwd(
        &self,
        a: &Tensor,
        b: Option<&Tensor>,
        grad: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let n = a.elem_count();
        let mut ds = vec![0f32; n];
        let mut da = vec![0f32; if self.dropout.is_some() { n } else { 0 }];
        let stats = self.stats.lock().expect("stats lock");
        with_slice(a, |a| {
            with_slice(grad, |g| {
                let run = |b: Option<&[f32]>, ds: &mut [f32], da: &mut [f32]| {
                    let da = self.dropout.map(|_| da);
                    k::backward(self.inputs(a, b), &stats, g, ds, da)
                };
                match b {
                    Some(b) => with_slice(b, |b| run(Some(b), &mut ds, &mut da)),
                    None => {
                        run(None, &mut ds, &mut da);
                        Ok(())
                    }
                }
            })
        })???;
        let ds = tensor(ds, a.shape())?;
        let da = if self.dropout.is_some() {
            tensor(da, a.shape())?
        } else {
            ds.clone()
        };
        Ok((da, ds))
    }
}

struct NormOp(AddNormOp);

impl CustomOp1 for NormOp {
    fn name(&self) -> &'static str {
        "layer-norm"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        self.0.fwd(slice(s, l)?, None, l)
    }
    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(self.0.bwd(arg, None, grad)?.0))
    }
}

impl CustomOp2 for AddNormOp {
    fn name(&self) -> &'static str {
        "add-dropout-layer-norm"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            candle_core::bail!(
                "add-layer-norm: shapes {:?} and {:?} differ",
                l1.dims(),
                l2.dims()
            );
        }
        self.fwd(slice(s1, l1)?, Some(slice(s2, l2)?), l1)
    }
    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (da, db) = AddNormOp::bwd(self, a, Some(b), grad)?;
        Ok((Some(da), Some(db)))
    }
}

fn op(gamma: &Tensor, beta: &Tensor, eps: f64, dropout: Option<Dropout>) -> Result<AddNormOp> {
    Ok(AddNormOp {
        gamma: to_vec(gamma)?,
        beta: to_vec(beta)?,
        eps: eps as f32,
        dropout,
        stats: Mutex::new(Vec::new()),
    })
}

/// `LN(x) * gamma + beta` over the last dim.
pub fn layer_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    if fusable(x) {
        return Ok(x
            .contiguous()?
            .apply_op1(NormOp(op(gamma, beta, eps, None)?))?);
    }
    Ok(norm(x, eps)?.broadcast_mul(gamma)?.broadcast_add(beta)?)
}

/// `LN(dropout(a) + b) * gamma + beta`; `seed` draws the dropout mask (`None`: no dropout).
pub fn add_norm(
    a: &Tensor,
    b: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    p: f64,
    seed: Option<u64>,
) -> Result<Tensor> {
    let d = seed.filter(|_| p > 0.0).map(|s| Dropout::new(p as f32, s));
    if fusable(a) && fusable(b) && a.shape() == b.shape() {
        return Ok(a
            .contiguous()?
            .apply_op2(&b.contiguous()?, op(gamma, beta, eps, d)?)?);
    }
    let a = match d {
        Some(d) => dropout_with_seed(a, d.p as f64, d.seed)?,
        None => a.clone(),
    };
    Ok(norm(&(a + b)?, eps)?
        .broadcast_mul(gamma)?
        .broadcast_add(beta)?)
}
