//! Differentiable building blocks made of candle primitives, on any device and dtype: the
//! fallbacks of the fused CPU ops ([`super::fused`]) and the pieces the model uses directly.
//! candle-nn's own fused `layer_norm` and `softmax_last_dim` have no backward pass (gradients
//! would silently stop there), so LayerNorm is built from primitives here and the fused softmax
//! is used only when its input carries no gradient graph.

use crate::Result;
use candle_core::{DType, Device, Tensor, D};

/// `x [..., k] @ w [k, n] -> [..., n]` as one 2-d matmul over the flattened leading dims.
pub fn matmul_last(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let k = *dims.last().expect("matmul input has a last dim");
    let rows: usize = dims[..dims.len() - 1].iter().product();
    let x2 = x.reshape((rows, k))?;
    let y = x2.matmul(w)?;
    let mut out = dims;
    *out.last_mut().unwrap() = w.dim(1)?;
    Ok(y.reshape(out)?)
}

/// `x [..., in] W^T + b -> [..., out]` with `weight [out, in]`: differentiable in every input
/// (the weight too, as the W0-gradient probes need).
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let y = matmul_last(x, &weight.t()?)?;
    Ok(match bias {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    })
}

/// The dtype a model computing in `compute` keeps its trainable variables in (adapters, head):
/// f32 "master weights" under half precision, so that AdamW's small updates are not rounded
/// away (bf16 keeps 8 bits of mantissa: an update below 1/256 of a weight would vanish);
/// `compute` itself otherwise.
pub fn trainable_dtype(compute: DType) -> DType {
    match compute {
        DType::F16 | DType::BF16 => DType::F32,
        d => d,
    }
}

/// `t` in `dtype`: the same tensor when it already is, else a (differentiable) cast.
pub fn cast_to(t: &Tensor, dtype: DType) -> Result<Tensor> {
    if t.dtype() == dtype {
        Ok(t.clone())
    } else {
        Ok(t.to_dtype(dtype)?)
    }
}

/// `(x - mean) / sqrt(var + eps)` over the last dim, computed in at least f32, differentiable.
pub fn norm(x: &Tensor, eps: f64) -> Result<Tensor> {
    let dtype = x.dtype();
    let internal = match dtype {
        DType::F16 | DType::BF16 => DType::F32,
        d => d,
    };
    let x = x.to_dtype(internal)?;
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    let y = xc.broadcast_div(&(var + eps)?.sqrt()?)?;
    Ok(y.to_dtype(dtype)?)
}

/// Softmax over the last dim: the fused kernel when no gradient flows, else differentiable ops.
pub fn softmax_last(x: &Tensor) -> Result<Tensor> {
    if !x.track_op() && x.dtype() != DType::F64 {
        return Ok(candle_nn::ops::softmax_last_dim(&x.contiguous()?)?);
    }
    // The max is a constant shift: detaching it leaves the gradient unchanged and skips its backward.
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    let s = e.sum_keepdim(D::Minus1)?;
    Ok(e.broadcast_div(&s)?)
}

/// Dropout through candle primitives with the fused kernel's mask for `seed` (built on the CPU),
/// so that every device and dtype drops the same elements. The mask travels as bytes (a quarter
/// of an f32 mask's traffic to a GPU); `(x * keep) * scale` rounds as the fused `x * scale` does.
pub fn dropout_with_seed(x: &Tensor, p: f64, seed: u64) -> Result<Tensor> {
    let d = heterolora_kernels::Dropout::new(p as f32, seed);
    let keep = heterolora_kernels::dropout::keep_mask(x.elem_count(), d);
    let keep = Tensor::from_vec(keep, x.shape(), &Device::Cpu)?
        .to_device(x.device())?
        .to_dtype(x.dtype())?;
    Ok(((x * keep)? * d.scale() as f64)?)
}

/// Scalar loss of logits `[b, num_labels]`: cross-entropy against u32 class labels `[b]`, or mean
/// squared error against f32 targets `[b]` when `num_labels == 1` (as transformers' sequence
/// classifiers); every backbone's `loss`.
pub(crate) fn classification_loss(
    logits: &Tensor,
    labels: &Tensor,
    num_labels: usize,
) -> Result<Tensor> {
    let b = logits.dim(0)?;
    if labels.dims() != [b] {
        return Err(crate::Error::Shape {
            name: "labels".into(),
            expected: vec![b],
            actual: labels.dims().to_vec(),
        });
    }
    // Half-precision logits are promoted: the log-sum-exp needs the range.
    let logits = match logits.dtype() {
        candle_core::DType::F16 | candle_core::DType::BF16 => {
            logits.to_dtype(candle_core::DType::F32)?
        }
        _ => logits.clone(),
    };
    let labels = labels.to_device(logits.device())?;
    if num_labels == 1 {
        let pred = logits.squeeze(1)?;
        let target = labels.to_dtype(pred.dtype())?;
        Ok(candle_nn::loss::mse(&pred, &target)?)
    } else {
        let target = labels.to_dtype(candle_core::DType::U32)?;
        Ok(candle_nn::loss::cross_entropy(&logits, &target)?)
    }
}
