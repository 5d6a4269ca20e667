//! Scaled dot-product attention (scores, key mask, softmax, dropout, weighted sum) as one op over
//! `[batch, seq, hidden]` query, key and value, heads read in place.

use super::{fusable, slice, tensor, to_vec, with_slice};
use crate::model::primitives::{dropout_with_seed, softmax_last};
use crate::Result;
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use heterolora_kernels::attention::{self as k, Dims};
use heterolora_kernels::Dropout;
use std::sync::Mutex;

struct AttentionOp {
    dims: Dims,
    /// `[batch, seq]` additive key mask.
    mask: Vec<f32>,
    scale: f32,
    dropout: Option<Dropout>,
    /// The softmax probabilities `[batch, heads, seq, seq]`, kept for the backward pass.
    probs: Mutex<Vec<f32>>,
    keep_probs: bool,
}

impl CustomOp3 for AttentionOp {
    fn name(&self) -> &'static str {
        "attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (q, kk, v) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        let mut ctx = vec![0f32; self.dims.act_len()];
        let mut probs = vec![0f32; self.dims.probs_len()];
        k::forward(
            self.dims,
            q,
            kk,
            v,
            &self.mask,
            self.scale,
            self.dropout,
            &mut ctx,
            &mut probs,
        );
        if self.keep_probs {
            *self.probs.lock().expect("probs lock") = probs;
        }
        Ok((CpuStorage::F32(ctx), l1.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        kk: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let n = self.dims.act_len();
        let (mut dq, mut dk, mut dv) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
        let probs = self.probs.lock().expect("probs lock");
        if probs.len() != self.dims.probs_len() {
            candle_core::bail!("attention: backward without saved probabilities");
        }
        with_slice(q, |q| {
            with_slice(kk, |kk| {
                with_slice(v, |v| {
                    with_slice(grad, |g| {
                        k::backward(
                            self.dims,
                            q,
                            kk,
                            v,
                            &probs,
                            self.scale,
                            self.dropout,
                            g,
                            &mut dq,
                            &mut dk,
                            &mut dv,
                        )
                    })
                })
            })
        })????;
        let shape = q.shape();
        Ok((
            Some(tensor(dq, shape)?),
            Some(tensor(dk, shape)?),
            Some(tensor(dv, shape)?),
        ))
    }
}

/// `q`, `k`, `v` `[b, s, heads * head_dim]`, `mask_bias [b, 1, 1, s]` -> the attention context
/// `[b, s, heads * head_dim]` (heads concatenated), with dropout `p` on the probabilities when
/// `seed` is given.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask_bias: &Tensor,
    heads: usize,
    p: f64,
    seed: Option<u64>,
) -> Result<Tensor> {
    let (b, s, hidden) = q.dims3()?;
    let head_dim = hidden / heads;
    let scale = 1.0 / (head_dim as f64).sqrt();
    let d = seed.filter(|_| p > 0.0).map(|s| Dropout::new(p as f32, s));
    if fusable(q) && fusable(k) && fusable(v) {
        let op = AttentionOp {
            dims: Dims {
                batch: b,
                seq: s,
                heads,
                head_dim,
            },
            mask: to_vec(mask_bias)?,
            scale: scale as f32,
            dropout: d,
            probs: Mutex::new(Vec::new()),
            keep_probs: q.track_op() || k.track_op() || v.track_op(),
        };
        return Ok(q
            .contiguous()?
            .apply_op3(&k.contiguous()?, &v.contiguous()?, op)?);
    }
    // [b, s, hidden] -> [b, heads, s, head_dim]
    let split = |t: &Tensor| -> Result<Tensor> {
        Ok(t.reshape((b, s, heads, head_dim))?
            .transpose(1, 2)?
            .contiguous()?)
    };
    let (q, k, v) = (split(q)?, split(k)?, split(v)?);
    let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(mask_bias)?;
    let probs = softmax_last(&scores)?;
    let probs = match d {
        Some(d) => dropout_with_seed(&probs, d.p as f64, d.seed)?,
        None => probs,
    };
    Ok(probs
        .matmul(&v)?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((b, s, hidden))?)
}
