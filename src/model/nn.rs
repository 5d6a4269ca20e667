//! Small building blocks with backward passes: linear maps, LayerNorm, softmax, dropout.
//!
//! On the CPU in f32 the linear maps, LayerNorm, GELU, dropout and attention run as the fused
//! custom ops of [`super::fused`]; elsewhere (GPU, other dtypes) as the candle primitives of
//! [`super::primitives`] (re-exported here).

use super::fused;
pub use super::primitives::{matmul_last, norm, softmax_last};
use crate::rng::Rng;
use crate::Result;
use candle_core::{DType, Device, Tensor};

/// A frozen linear map `y = x W^T + b`.
#[derive(Debug, Clone)]
pub struct Linear {
    /// `[out, in]`
    pub weight: Tensor,
    /// `[out]`
    pub bias: Option<Tensor>,
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Linear { weight, bias }
    }

    /// (d_in, d_out).
    pub fn dims(&self) -> (usize, usize) {
        let (o, i) = self.weight.dims2().expect("linear weight is 2-d");
        (i, o)
    }

    /// `x [..., in] -> [..., out]`, with `weight` in place of the stored weight if given.
    pub fn forward_with(&self, x: &Tensor, weight: &Tensor) -> Result<Tensor> {
        super::primitives::linear(x, weight, self.bias.as_ref())
    }

    /// `x W^T + b`. The backward pass computes only dL/dx: the frozen weight gets no gradient
    /// (candle's matmul backward would compute one, a third of a training step's matmul work).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        fused::linear(x, &self.weight, self.bias.as_ref())
    }

    /// Number of parameters.
    pub fn params(&self) -> usize {
        self.weight.elem_count() + self.bias.as_ref().map_or(0, |b| b.elem_count())
    }

    pub fn map(&self, f: &dyn Fn(&Tensor) -> Result<Tensor>) -> Result<Self> {
        Ok(Linear {
            weight: f(&self.weight)?,
            bias: self.bias.as_ref().map(f).transpose()?,
        })
    }
}

/// A frozen LayerNorm over the last dim.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    /// `[hidden]`
    pub weight: Tensor,
    /// `[hidden]`
    pub bias: Tensor,
    pub eps: f64,
}

impl LayerNorm {
    pub fn new(weight: Tensor, bias: Tensor, eps: f64) -> Self {
        LayerNorm { weight, bias, eps }
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        fused::layer_norm(x, &self.weight, &self.bias, self.eps)
    }

    /// `LN(dropout(a) + b)`, the post-LN residual block, in one pass on the CPU; the dropout mask
    /// (probability `p`) is drawn from `rng` in training mode.
    pub fn forward_residual(
        &self,
        a: &Tensor,
        b: &Tensor,
        p: f64,
        rng: Option<&mut Rng>,
    ) -> Result<Tensor> {
        let seed = rng.filter(|_| p > 0.0).map(|r| r.next_u64());
        fused::add_norm(a, b, &self.weight, &self.bias, self.eps, p, seed)
    }

    pub fn params(&self) -> usize {
        self.weight.elem_count() + self.bias.elem_count()
    }

    pub fn map(&self, f: &dyn Fn(&Tensor) -> Result<Tensor>) -> Result<Self> {
        Ok(LayerNorm {
            weight: f(&self.weight)?,
            bias: f(&self.bias)?,
            eps: self.eps,
        })
    }
}

/// Inverted dropout with a mask seeded from `rng`; identity when `rng` is `None` or `p == 0`.
pub fn dropout(x: &Tensor, p: f64, rng: Option<&mut Rng>) -> Result<Tensor> {
    match rng {
        Some(rng) if p > 0.0 => fused::dropout(x, p, rng.next_u64()),
        _ => Ok(x.clone()),
    }
}

/// A tensor of N(0, std^2) values drawn from `rng` (Hugging Face's `normal_(0, initializer_range)`).
pub fn normal_tensor(
    rng: &mut Rng,
    shape: &[usize],
    std: f64,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| (rng.normal() * std) as f32).collect();
    Ok(Tensor::from_vec(data, shape, device)?.to_dtype(dtype)?)
}

/// PEFT's `lora_A` init: Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
pub fn kaiming_uniform_a_sqrt5(
    rng: &mut Rng,
    rows: usize,
    fan_in: usize,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    // gain = sqrt(2 / (1 + a^2)) = sqrt(1/3); bound = gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in).
    let bound = 1.0 / (fan_in as f32).sqrt();
    Ok(rng
        .uniform_tensor((rows, fan_in), -bound, bound, device)?
        .to_dtype(dtype)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    #[test]
    fn layer_norm_matches_fused_kernel_and_has_gradients() {
        let mut rng = Rng::new(1);
        let x = rng
            .uniform_tensor((3, 5, 8), -2.0, 2.0, &Device::Cpu)
            .unwrap();
        let w = rng.uniform_tensor(8, 0.5, 1.5, &Device::Cpu).unwrap();
        let b = rng.uniform_tensor(8, -0.5, 0.5, &Device::Cpu).unwrap();
        let ln = LayerNorm::new(w.clone(), b.clone(), 1e-5);
        let ours = ln.forward(&x).unwrap();
        let fused = candle_nn::ops::layer_norm(&x, &w, &b, 1e-5).unwrap();
        let d = (ours - fused).unwrap().abs().unwrap().max_all().unwrap();
        assert!(d.to_scalar::<f32>().unwrap() < 1e-5);
        let xv = Var::from_tensor(&x).unwrap();
        let y = ln.forward(xv.as_tensor()).unwrap();
        let g = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        assert!(g.get(xv.as_tensor()).is_some());
    }

    #[test]
    fn frozen_linear_op_matches_plain_matmul_with_input_gradient_only() {
        let mut rng = Rng::new(4);
        let w = rng.uniform_tensor((5, 7), -1.0, 1.0, &Device::Cpu).unwrap();
        let b = rng.uniform_tensor(5, -1.0, 1.0, &Device::Cpu).unwrap();
        let lin = Linear::new(w.clone(), Some(b));
        let x = Var::from_tensor(
            &rng.uniform_tensor((2, 3, 7), -1.0, 1.0, &Device::Cpu)
                .unwrap(),
        )
        .unwrap();
        let target = rng
            .uniform_tensor((2, 3, 5), -1.0, 1.0, &Device::Cpu)
            .unwrap();
        let fast = lin.forward(x.as_tensor()).unwrap();
        let plain = lin.forward_with(x.as_tensor(), &w).unwrap();
        let d = (&fast - &plain).unwrap().abs().unwrap().max_all().unwrap();
        assert!(d.to_scalar::<f32>().unwrap() < 1e-6);
        let gf = (fast * &target)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gp = (plain * &target)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let d = (gf.get(&x).unwrap() - gp.get(&x).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert!(d.to_scalar::<f32>().unwrap() < 1e-5);
        // A non-contiguous input (a transposed view) goes through the same path.
        let xt = Var::from_tensor(&rng.uniform_tensor((7, 4), -1.0, 1.0, &Device::Cpu).unwrap())
            .unwrap();
        let y = lin.forward(&xt.t().unwrap()).unwrap();
        let want = lin.forward_with(&xt.t().unwrap(), &w).unwrap();
        let d = (y - want).unwrap().abs().unwrap().max_all().unwrap();
        assert!(d.to_scalar::<f32>().unwrap() < 1e-6);
    }

    #[test]
    fn softmax_paths_agree_and_track_gradients() {
        let mut rng = Rng::new(2);
        let x = rng
            .uniform_tensor((2, 3, 7), -5.0, 5.0, &Device::Cpu)
            .unwrap();
        let fast = softmax_last(&x).unwrap();
        let xv = Var::from_tensor(&x).unwrap();
        let slow = softmax_last(xv.as_tensor()).unwrap();
        let d = (&fast - &slow).unwrap().abs().unwrap().max_all().unwrap();
        assert!(d.to_scalar::<f32>().unwrap() < 1e-6);
        let target = rng
            .uniform_tensor((2, 3, 7), 0.0, 1.0, &Device::Cpu)
            .unwrap();
        let g = (slow * target)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gx = g.get(xv.as_tensor()).expect("softmax gradient");
        assert!(
            gx.abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                > 0.0
        );
    }

    #[test]
    fn dropout_only_with_rng_and_kaiming_bound() {
        let x = Tensor::ones((4, 100), DType::F32, &Device::Cpu).unwrap();
        let same = dropout(&x, 0.5, None).unwrap();
        assert_eq!(same.sum_all().unwrap().to_scalar::<f32>().unwrap(), 400.0);
        let mut rng = Rng::new(3);
        let d = dropout(&x, 0.5, Some(&mut rng)).unwrap();
        let v: Vec<f32> = d.flatten_all().unwrap().to_vec1().unwrap();
        assert!(v.iter().all(|&e| e == 0.0 || e == 2.0));
        assert!(v.contains(&0.0));
        let a = kaiming_uniform_a_sqrt5(&mut rng, 8, 64, DType::F32, &Device::Cpu).unwrap();
        let m = a
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(m <= 0.125 && m > 0.1, "{m}");
    }
}
