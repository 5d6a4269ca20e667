//! [`LoraAdapter`]: the low-rank pair (A, B) of one slot, LoRA module or shortcut alike.
//!
//! `delta(x) = scale * (lora_alpha / r) * B A dropout(x)`, with A `[r, d_in]` initialised as PEFT
//! does (Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(d_in), 1/sqrt(d_in))) and B `[d_out, r]`
//! zeros, so a fresh adapter changes nothing. `scale` (default 1) multiplies the contribution for
//! the alpha-test; it is not part of PEFT's format.

use crate::model::nn::{kaiming_uniform_a_sqrt5, matmul_last};
use crate::model::primitives::cast_to;
use crate::rng::Rng;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};

/// One slot's adapter: trainable factors, rank, alpha, run-time scale and on/off state.
#[derive(Debug, Clone)]
pub struct LoraAdapter {
    /// `lora_A` `[r, d_in]`.
    pub a: Var,
    /// `lora_B` `[d_out, r]`.
    pub b: Var,
    pub r: usize,
    pub lora_alpha: f64,
    /// Extra multiplier on the contribution (alpha-test); 1 by default.
    pub scale: f64,
    /// A disabled adapter is skipped in the forward pass (no compute, no gradient) but kept.
    pub enabled: bool,
}

impl LoraAdapter {
    /// A fresh adapter with PEFT's initialisation, A drawn from `rng`, B zeros.
    pub fn new(
        rng: &mut Rng,
        d_in: usize,
        d_out: usize,
        r: usize,
        lora_alpha: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        if r == 0 {
            return Err(Error::invalid(
                "r",
                0,
                "rank >= 1 (rank 0 means no adapter)",
            ));
        }
        if !lora_alpha.is_finite() {
            return Err(Error::invalid("lora_alpha", lora_alpha, "a finite number"));
        }
        let a = kaiming_uniform_a_sqrt5(rng, r, d_in, dtype, device)?;
        let b = Tensor::zeros((d_out, r), dtype, device)?;
        Ok(LoraAdapter {
            a: Var::from_tensor(&a)?,
            b: Var::from_tensor(&b)?,
            r,
            lora_alpha,
            scale: 1.0,
            enabled: true,
        })
    }

    /// An adapter from existing factors (A `[r, d_in]`, B `[d_out, r]`), copied into new variables.
    pub fn from_factors(a: &Tensor, b: &Tensor, lora_alpha: f64) -> Result<Self> {
        let (r, _) = a.dims2()?;
        let (_, rb) = b.dims2()?;
        if r != rb || r == 0 {
            return Err(Error::Shape {
                name: "lora_B".into(),
                expected: vec![b.dim(0)?, r],
                actual: b.dims().to_vec(),
            });
        }
        Ok(LoraAdapter {
            a: Var::from_tensor(&a.detach())?,
            b: Var::from_tensor(&b.detach())?,
            r,
            lora_alpha,
            scale: 1.0,
            enabled: true,
        })
    }

    /// (d_in, d_out).
    pub fn dims(&self) -> (usize, usize) {
        (self.a.dim(1).unwrap_or(0), self.b.dim(0).unwrap_or(0))
    }

    /// PEFT's `scaling` = lora_alpha / r.
    pub fn scaling(&self) -> f64 {
        self.lora_alpha / self.r as f64
    }

    /// The multiplier actually applied: scaling * scale.
    pub fn effective_scaling(&self) -> f64 {
        self.scaling() * self.scale
    }

    /// Trainable parameters: r * (d_in + d_out).
    pub fn params(&self) -> usize {
        self.a.elem_count() + self.b.elem_count()
    }

    /// `x [..., d_in] -> [..., d_out]`: effective_scaling * (x A^T) B^T, in `x`'s dtype. Under
    /// mixed precision the factors are f32 and `x` bf16: they are cast to `x`'s dtype here, and
    /// the casts carry the gradients back to the f32 variables.
    pub fn delta(&self, x: &Tensor) -> Result<Tensor> {
        let a = cast_to(self.a.as_tensor(), x.dtype())?;
        let b = cast_to(self.b.as_tensor(), x.dtype())?;
        let h = matmul_last(x, &a.t()?)?;
        let y = matmul_last(&h, &b.t()?)?;
        Ok((y * self.effective_scaling())?)
    }

    /// The dense update `effective_scaling * B A` `[d_out, d_in]`, for merging.
    pub fn delta_weight(&self) -> Result<Tensor> {
        let ba = self.b.as_tensor().matmul(self.a.as_tensor())?;
        Ok((ba * self.effective_scaling())?.detach())
    }

    /// An independent copy (new variables with copied values).
    pub fn deep_clone(&self) -> Result<Self> {
        self.map(&|t| Ok(t.clone()))
    }

    /// A copy with both factors mapped by `f` (new variables).
    pub fn map(&self, f: &dyn Fn(&Tensor) -> Result<Tensor>) -> Result<Self> {
        Ok(LoraAdapter {
            a: Var::from_tensor(&f(&self.a.as_detached_tensor())?.detach())?,
            b: Var::from_tensor(&f(&self.b.as_detached_tensor())?.detach())?,
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_adapter_is_zero_and_delta_matches_hand_computation() {
        let dev = Device::Cpu;
        let mut rng = Rng::new(0);
        let ad = LoraAdapter::new(&mut rng, 6, 4, 2, 8.0, DType::F32, &dev).unwrap();
        assert_eq!(ad.params(), 2 * (6 + 4));
        assert_eq!(ad.scaling(), 4.0);
        let x = rng.uniform_tensor((3, 6), -1.0, 1.0, &dev).unwrap();
        let zero = ad.delta(&x).unwrap().abs().unwrap().sum_all().unwrap();
        assert_eq!(zero.to_scalar::<f32>().unwrap(), 0.0);
        ad.b.set(&rng.uniform_tensor((4, 2), -1.0, 1.0, &dev).unwrap())
            .unwrap();
        let a: Vec<Vec<f32>> = ad.a.to_vec2().unwrap();
        let b: Vec<Vec<f32>> = ad.b.to_vec2().unwrap();
        let xs: Vec<Vec<f32>> = x.to_vec2().unwrap();
        let got: Vec<Vec<f32>> = ad.delta(&x).unwrap().to_vec2().unwrap();
        for n in 0..3 {
            for o in 0..4 {
                let mut want = 0.0f32;
                for k in 0..2 {
                    let ax: f32 = (0..6).map(|i| a[k][i] * xs[n][i]).sum();
                    want += b[o][k] * ax;
                }
                assert!((got[n][o] - 4.0 * want).abs() < 1e-5);
            }
        }
        assert!(LoraAdapter::new(&mut rng, 6, 4, 0, 8.0, DType::F32, &dev).is_err());
        let copy = ad.deep_clone().unwrap();
        copy.b
            .set(&Tensor::zeros((4, 2), DType::F32, &dev).unwrap())
            .unwrap();
        assert!(
            ad.b.abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                > 0.0
        );
    }
}
