//! candle custom ops over the fused kernels of `heterolora-kernels`, with their backward passes.
//!
//! Each public function takes the fused path for f32 tensors on the CPU and falls back to
//! candle's primitives otherwise (GPU, f16/bf16/f64), so the model code calls one function either
//! way. The fused ops and the primitives agree to float rounding (tested beside each op), except
//! that dropout masks come from a per-call seed hashed with the element index rather than from a
//! stream of the generator: the same seed gives the same masks, but not the primitives' masks.

mod attention;
mod elementwise;
mod linear;
mod lora;
mod norm;

pub use attention::attention;
pub use elementwise::{dropout, gelu_erf};
pub use linear::{linear, FrozenLinearOp};
pub use lora::lora_linear;
pub use norm::{add_norm, layer_norm};

use candle_core::{CpuStorage, DType, Layout, Storage, Tensor};

/// Whether `t` takes the fused path: f32 on the CPU.
pub(crate) fn fusable(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

/// The f32 elements of a contiguous CPU storage.
fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!("fused op: expected f32 storage")
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("fused op: input is not contiguous"),
    }
}

/// Runs `f` on the f32 elements of a CPU tensor (made contiguous first if it is not).
fn with_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(c) => Ok(f(slice(c, layout)?)),
        _ => candle_core::bail!("fused op: expected a CPU tensor"),
    }
}

/// The forward pass of a same-shape op: `f(input, output)` into a fresh buffer.
fn map_storage(
    s: &CpuStorage,
    l: &Layout,
    f: impl FnOnce(&[f32], &mut [f32]),
) -> candle_core::Result<(CpuStorage, candle_core::Shape)> {
    let x = slice(s, l)?;
    let mut y = vec![0f32; x.len()];
    f(x, &mut y);
    Ok((CpuStorage::F32(y), l.shape().clone()))
}

/// A gradient shaped like `arg`, written by `f` from the elements of `grad`.
fn grad_like(
    arg: &Tensor,
    grad: &Tensor,
    f: impl FnOnce(&[f32], &mut [f32]),
) -> candle_core::Result<Tensor> {
    let mut dx = vec![0f32; arg.elem_count()];
    with_slice(grad, |g| f(g, &mut dx))?;
    tensor(dx, arg.shape())
}

/// A CPU f32 tensor of `shape` from `data`.
fn tensor(data: Vec<f32>, shape: &candle_core::Shape) -> candle_core::Result<Tensor> {
    Tensor::from_vec(data, shape.clone(), &candle_core::Device::Cpu)
}

/// The f32 elements of a small CPU tensor, copied (weights, biases, masks).
fn to_vec(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
}

#[cfg(test)]
mod tests;
