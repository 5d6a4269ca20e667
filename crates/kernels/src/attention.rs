//! Scaled dot-product self-attention as one operation, forward and backward, one rayon task per
//! (batch item, head).
//!
//! `q`, `k`, `v` and the context are `[batch, seq, heads * head_dim]` (a linear layer's output,
//! heads interleaved): each head is read and written in place through strides, so the
//! `[batch, heads, seq, head_dim]` transposes and copies of a tensor-library implementation
//! disappear. For each head: `S = scale * Q K^T + mask`, `P = softmax(S)` (kept for the
//! backward pass), `C = dropout(P) V`.

use crate::dropout::{hash, Dropout};
use crate::linear::{gemm_f32, SendPtr};
use crate::math::exp;
use crate::simd::{dot, max, sum};
use rayon::prelude::*;

/// Sizes of one attention call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    pub batch: usize,
    pub seq: usize,
    pub heads: usize,
    pub head_dim: usize,
}

impl Dims {
    pub fn hidden(&self) -> usize {
        self.heads * self.head_dim
    }
    /// Elements of `q`, `k`, `v` or the context.
    pub fn act_len(&self) -> usize {
        self.batch * self.seq * self.hidden()
    }
    /// Elements of the saved probabilities `[batch, heads, seq, seq]`.
    pub fn probs_len(&self) -> usize {
        self.batch * self.heads * self.seq * self.seq
    }
}

multiversion! {
    /// Adds the key mask to each row of `s [seq, seq]` and turns the rows into probabilities.
    fn softmax_rows(s: &mut [f32], mask: &[f32]) {
        let seq = mask.len();
        for row in s.chunks_exact_mut(seq) {
            for (x, &m) in row.iter_mut().zip(mask) {
                *x += m;
            }
            let mx = max(row);
            for x in row.iter_mut() {
                *x = exp(*x - mx);
            }
            let inv = 1.0 / sum(row);
            for x in row.iter_mut() {
                *x *= inv;
            }
        }
    }
}

multiversion! {
    /// `out = p * mask` for the probabilities of one head (element indices from `base`).
    fn drop_probs(p: &[f32], out: &mut [f32], d: Dropout, base: usize) {
        let thr = d.threshold();
        let scale = d.scale();
        for (j, (o, &v)) in out.iter_mut().zip(p).enumerate() {
            let keep = hash(d.seed, (base + j) as u32) >= thr;
            *o = if keep { v * scale } else { 0.0 };
        }
    }
}

multiversion! {
    /// From `g = dL/d dropout(P)` (in place) to `dL/dS = P * (dP - rowsum(dP * P))`, `dP` being `g`
    /// through the dropout mask.
    fn softmax_backward_rows(g: &mut [f32], p: &[f32], d: Option<Dropout>, base: usize, seq: usize) {
        if let Some(d) = d {
            let thr = d.threshold();
            let scale = d.scale();
            for (j, o) in g.iter_mut().enumerate() {
                let keep = hash(d.seed, (base + j) as u32) >= thr;
                *o = if keep { *o * scale } else { 0.0 };
            }
        }
        for (gr, pr) in g.chunks_exact_mut(seq).zip(p.chunks_exact(seq)) {
            let c = dot(gr, pr);
            for (o, &pv) in gr.iter_mut().zip(pr) {
                *o = pv * (*o - c);
            }
        }
    }
}

/// Forward. `mask [batch, seq]` is added to the scores of each key (0 or a large negative);
/// writes `ctx` and `probs` (the softmax before dropout, for [`backward`]).
#[allow(clippy::too_many_arguments)]
pub fn forward(
    dims: Dims,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: &[f32],
    scale: f32,
    dropout: Option<Dropout>,
    ctx: &mut [f32],
    probs: &mut [f32],
) {
    let Dims {
        batch,
        seq,
        heads,
        head_dim,
    } = dims;
    let hid = dims.hidden();
    for t in [q, k, v] {
        assert_eq!(t.len(), dims.act_len());
    }
    assert!(ctx.len() == dims.act_len() && probs.len() == dims.probs_len());
    assert_eq!(mask.len(), batch * seq);
    let out = SendPtr(ctx.as_mut_ptr());
    probs.par_chunks_mut(seq * seq).enumerate().for_each_init(
        || vec![0f32; if dropout.is_some() { seq * seq } else { 0 }],
        |scratch, (bh, p)| {
            let out = out;
            let (b, h) = (bh / heads, bh % heads);
            let off = b * seq * hid + h * head_dim;
            // SAFETY: each task reads its head of q, k, v and writes its own head's columns
            // of ctx (disjoint across tasks) and its own chunk of probs.
            unsafe {
                gemm_f32(
                    seq,
                    seq,
                    head_dim,
                    p.as_mut_ptr(),
                    seq,
                    false,
                    q.as_ptr().add(off),
                    hid,
                    1,
                    k.as_ptr().add(off),
                    1,
                    hid,
                    scale,
                    false,
                );
            }
            softmax_rows(p, &mask[b * seq..(b + 1) * seq]);
            let pd: &[f32] = match dropout {
                Some(d) => {
                    drop_probs(p, scratch, d, bh * seq * seq);
                    scratch
                }
                None => p,
            };
            unsafe {
                gemm_f32(
                    seq,
                    head_dim,
                    seq,
                    out.0.add(off),
                    hid,
                    false,
                    pd.as_ptr(),
                    seq,
                    1,
                    v.as_ptr().add(off),
                    hid,
                    1,
                    1.0,
                    false,
                );
            }
        },
    );
}

/// Backward: from `dctx` and the saved `probs`, writes `dq`, `dk` and `dv`.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    dims: Dims,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    probs: &[f32],
    scale: f32,
    dropout: Option<Dropout>,
    dctx: &[f32],
    dq: &mut [f32],
    dk: &mut [f32],
    dv: &mut [f32],
) {
    let Dims {
        seq,
        heads,
        head_dim,
        ..
    } = dims;
    let hid = dims.hidden();
    for t in [q, k, v, dctx] {
        assert_eq!(t.len(), dims.act_len());
    }
    assert!(dq.len() == dims.act_len() && dk.len() == dims.act_len() && dv.len() == dims.act_len());
    assert_eq!(probs.len(), dims.probs_len());
    let (pq, pk, pv) = (
        SendPtr(dq.as_mut_ptr()),
        SendPtr(dk.as_mut_ptr()),
        SendPtr(dv.as_mut_ptr()),
    );
    probs.par_chunks(seq * seq).enumerate().for_each_init(
        || {
            (
                vec![0f32; seq * seq],
                vec![0f32; if dropout.is_some() { seq * seq } else { 0 }],
            )
        },
        |(g, pd_buf), (bh, p)| {
            let (pq, pk, pv) = (pq, pk, pv);
            let (b, h) = (bh / heads, bh % heads);
            let off = b * seq * hid + h * head_dim;
            let base = bh * seq * seq;
            let pd: &[f32] = match dropout {
                Some(d) => {
                    drop_probs(p, pd_buf, d, base);
                    pd_buf
                }
                None => p,
            };
            // SAFETY: each task writes only its own head's columns of dq, dk, dv.
            unsafe {
                // g = dC V^T  [seq, seq]
                gemm_f32(
                    seq,
                    seq,
                    head_dim,
                    g.as_mut_ptr(),
                    seq,
                    false,
                    dctx.as_ptr().add(off),
                    hid,
                    1,
                    v.as_ptr().add(off),
                    1,
                    hid,
                    1.0,
                    false,
                );
                // dV = dropout(P)^T dC
                gemm_f32(
                    seq,
                    head_dim,
                    seq,
                    pv.0.add(off),
                    hid,
                    false,
                    pd.as_ptr(),
                    1,
                    seq,
                    dctx.as_ptr().add(off),
                    hid,
                    1,
                    1.0,
                    false,
                );
            }
            softmax_backward_rows(g, p, dropout, base, seq);
            unsafe {
                // dQ = scale * dS K, dK = scale * dS^T Q
                gemm_f32(
                    seq,
                    head_dim,
                    seq,
                    pq.0.add(off),
                    hid,
                    false,
                    g.as_ptr(),
                    seq,
                    1,
                    k.as_ptr().add(off),
                    hid,
                    1,
                    scale,
                    false,
                );
                gemm_f32(
                    seq,
                    head_dim,
                    seq,
                    pk.0.add(off),
                    hid,
                    false,
                    g.as_ptr(),
                    1,
                    seq,
                    q.as_ptr().add(off),
                    hid,
                    1,
                    scale,
                    false,
                );
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward f64 attention on `[batch, seq, hidden]` inputs.
    fn reference(
        dims: Dims,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        mask: &[f32],
        scale: f64,
        d: Option<Dropout>,
    ) -> Vec<f64> {
        let Dims {
            batch,
            seq,
            heads,
            head_dim,
        } = dims;
        let hid = dims.hidden();
        let mut out = vec![0f64; dims.act_len()];
        for b in 0..batch {
            for h in 0..heads {
                let at = |t: &[f32], i: usize, c: usize| {
                    t[b * seq * hid + i * hid + h * head_dim + c] as f64
                };
                for i in 0..seq {
                    let s: Vec<f64> = (0..seq)
                        .map(|j| {
                            scale
                                * (0..head_dim)
                                    .map(|c| at(q, i, c) * at(k, j, c))
                                    .sum::<f64>()
                                + mask[b * seq + j] as f64
                        })
                        .collect();
                    let m = s.iter().cloned().fold(f64::MIN, f64::max);
                    let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for c in 0..head_dim {
                        let mut acc = 0.0;
                        for j in 0..seq {
                            let idx = ((b * heads + h) * seq + i) * seq + j;
                            let f = d.map_or(1.0, |d| d.factor(idx as u32) as f64);
                            acc += e[j] / z * f * at(v, j, c);
                        }
                        out[b * seq * hid + i * hid + h * head_dim + c] = acc;
                    }
                }
            }
        }
        out
    }

    fn data(n: usize, k: f32) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * k).sin()).collect()
    }

    #[test]
    fn forward_and_backward_match_f64_reference() {
        let dims = Dims {
            batch: 2,
            seq: 5,
            heads: 3,
            head_dim: 4,
        };
        let n = dims.act_len();
        let (q, k, v, dctx) = (data(n, 0.37), data(n, 0.71), data(n, 1.13), data(n, 0.29));
        let mut mask = vec![0f32; 10];
        mask[8] = -1e9;
        mask[9] = -1e9;
        let scale = 0.5f32;
        for dropout in [None, Some(Dropout::new(0.2, 5))] {
            let mut ctx = vec![0f32; n];
            let mut probs = vec![0f32; dims.probs_len()];
            forward(
                dims, &q, &k, &v, &mask, scale, dropout, &mut ctx, &mut probs,
            );
            let want = reference(dims, &q, &k, &v, &mask, scale as f64, dropout);
            for (g, w) in ctx.iter().zip(&want) {
                assert!((*g as f64 - w).abs() < 1e-5, "{g} vs {w}");
            }
            let (mut dq, mut dk, mut dv) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
            backward(
                dims, &q, &k, &v, &probs, scale, dropout, &dctx, &mut dq, &mut dk, &mut dv,
            );
            let loss = |q: &[f32], k: &[f32], v: &[f32]| -> f64 {
                reference(dims, q, k, v, &mask, scale as f64, dropout)
                    .iter()
                    .zip(&dctx)
                    .map(|(a, b)| a * *b as f64)
                    .sum()
            };
            let h = 1e-2f32;
            for i in [0usize, 7, 13, 33, 50, n - 1] {
                for (which, grad) in [(0, &dq), (1, &dk), (2, &dv)] {
                    let mut p = [q.clone(), k.clone(), v.clone()];
                    let mut m = [q.clone(), k.clone(), v.clone()];
                    p[which][i] += h;
                    m[which][i] -= h;
                    let fd =
                        (loss(&p[0], &p[1], &p[2]) - loss(&m[0], &m[1], &m[2])) / (2.0 * h as f64);
                    assert!(
                        (grad[i] as f64 - fd).abs() < 1e-3,
                        "grad {which}[{i}] {} vs {fd}",
                        grad[i]
                    );
                }
            }
        }
    }
}
