//! LayerNorm over the last dim with a frozen affine, fused with the residual sum before it:
//! `s = dropout(a) + b`, `y = (s - mean(s)) / sqrt(var(s) + eps) * gamma + beta`.
//!
//! The forward pass keeps only each row's mean and reciprocal standard deviation; the backward
//! pass recomputes `s` from `a`, `b` and the dropout seed, and returns `ds` (the gradient of both
//! `b` and, through the dropout mask, of `a`). `gamma` and `beta` are frozen: no gradient.

use crate::dropout::{hash, Dropout};
use crate::rows_per_task;
use crate::simd::{dot, sum};
use rayon::prelude::*;

/// The inputs of one fused LayerNorm: `a [rows, cols]`, optional `b` of the same shape and an
/// optional dropout on `a` (element indices over the whole `a`).
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    pub a: &'a [f32],
    pub b: Option<&'a [f32]>,
    pub dropout: Option<Dropout>,
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    pub eps: f32,
}

/// `s[j] = dropout(a)[j] + b[j]` for one row starting at element `base`.
#[inline(always)]
fn residual_row(a: &[f32], b: Option<&[f32]>, d: Option<Dropout>, base: usize, s: &mut [f32]) {
    match d {
        Some(d) => {
            let thr = d.threshold();
            let scale = d.scale();
            for (j, (o, &v)) in s.iter_mut().zip(a).enumerate() {
                let keep = hash(d.seed, (base + j) as u32) >= thr;
                *o = if keep { v * scale } else { 0.0 };
            }
        }
        None => s.copy_from_slice(a),
    }
    if let Some(b) = b {
        for (o, &v) in s.iter_mut().zip(b) {
            *o += v;
        }
    }
}

multiversion! {
    fn fwd_rows(inp: Inputs, row0: usize, y: &mut [f32], stats: &mut [f32]) {
        let cols = inp.gamma.len();
        let n = cols as f32;
        for (r, (yr, st)) in y.chunks_exact_mut(cols).zip(stats.chunks_exact_mut(2)).enumerate() {
            let base = (row0 + r) * cols;
            let a = &inp.a[base..base + cols];
            let b = inp.b.map(|b| &b[base..base + cols]);
            residual_row(a, b, inp.dropout, base, yr);
            let mean = sum(yr) / n;
            for v in yr.iter_mut() {
                *v -= mean;
            }
            let var = dot(yr, yr) / n;
            let rstd = 1.0 / (var + inp.eps).sqrt();
            for ((v, &g), &bt) in yr.iter_mut().zip(inp.gamma).zip(inp.beta) {
                *v = *v * rstd * g + bt;
            }
            st[0] = mean;
            st[1] = rstd;
        }
    }
}

multiversion! {
    fn bwd_rows(inp: Inputs, row0: usize, stats: &[f32], dy: &[f32], ds: &mut [f32], da: Option<&mut [f32]>) {
        let cols = inp.gamma.len();
        let n = cols as f32;
        let mut xhat = vec![0f32; cols];
        let mut g = vec![0f32; cols];
        let mut da = da;
        for (r, (dsr, st)) in ds.chunks_exact_mut(cols).zip(stats.chunks_exact(2)).enumerate() {
            let base = (row0 + r) * cols;
            let a = &inp.a[base..base + cols];
            let b = inp.b.map(|b| &b[base..base + cols]);
            residual_row(a, b, inp.dropout, base, &mut xhat);
            let (mean, rstd) = (st[0], st[1]);
            for v in xhat.iter_mut() {
                *v = (*v - mean) * rstd;
            }
            let dyr = &dy[r * cols..(r + 1) * cols];
            for ((o, &d), &gm) in g.iter_mut().zip(dyr).zip(inp.gamma) {
                *o = d * gm;
            }
            let m1 = sum(&g) / n;
            let m2 = dot(&g, &xhat) / n;
            for ((o, &gv), &xh) in dsr.iter_mut().zip(&g).zip(&xhat) {
                *o = rstd * (gv - m1 - xh * m2);
            }
            if let (Some(da), Some(d)) = (da.as_deref_mut(), inp.dropout) {
                let thr = d.threshold();
                let scale = d.scale();
                let dar = &mut da[r * cols..(r + 1) * cols];
                for (j, (o, &v)) in dar.iter_mut().zip(dsr.iter()).enumerate() {
                    let keep = hash(d.seed, (base + j) as u32) >= thr;
                    *o = if keep { v * scale } else { 0.0 };
                }
            }
        }
    }
}

fn check(inp: &Inputs) -> (usize, usize) {
    let cols = inp.gamma.len();
    assert!(cols > 0 && inp.beta.len() == cols && inp.a.len() % cols == 0);
    if let Some(b) = inp.b {
        assert_eq!(b.len(), inp.a.len());
    }
    (inp.a.len() / cols, cols)
}

/// Forward: writes `y [rows, cols]` and `stats [rows, 2]` (mean, 1/std).
pub fn forward(inp: Inputs, y: &mut [f32], stats: &mut [f32]) {
    let (rows, cols) = check(&inp);
    assert!(y.len() == rows * cols && stats.len() == rows * 2);
    let per = rows_per_task(rows, cols);
    y.par_chunks_mut(per * cols)
        .zip(stats.par_chunks_mut(per * 2))
        .enumerate()
        .for_each(|(t, (y, st))| fwd_rows(inp, t * per, y, st));
}

/// Backward: from `dy`, writes `ds` (the gradient of `s`, hence of `b`) and, when `a` has a
/// dropout, `da` (`ds` through the mask; without dropout `da` equals `ds` and is not written).
pub fn backward(inp: Inputs, stats: &[f32], dy: &[f32], ds: &mut [f32], da: Option<&mut [f32]>) {
    let (rows, cols) = check(&inp);
    assert!(dy.len() == rows * cols && ds.len() == rows * cols && stats.len() == rows * 2);
    let per = rows_per_task(rows, cols);
    match da {
        Some(da) => {
            assert_eq!(da.len(), rows * cols);
            ds.par_chunks_mut(per * cols)
                .zip(da.par_chunks_mut(per * cols))
                .enumerate()
                .for_each(|(t, (ds, da))| {
                    let r0 = t * per;
                    let st = &stats[r0 * 2..r0 * 2 + ds.len() / cols * 2];
                    let dy = &dy[r0 * cols..r0 * cols + ds.len()];
                    bwd_rows(inp, r0, st, dy, ds, Some(da))
                })
        }
        None => ds
            .par_chunks_mut(per * cols)
            .enumerate()
            .for_each(|(t, ds)| {
                let r0 = t * per;
                let st = &stats[r0 * 2..r0 * 2 + ds.len() / cols * 2];
                let dy = &dy[r0 * cols..r0 * cols + ds.len()];
                bwd_rows(inp, r0, st, dy, ds, None)
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, k: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 * k).sin() * 3.0) + 0.5).collect()
    }

    fn reference(inp: &Inputs) -> Vec<f64> {
        let cols = inp.gamma.len();
        let s: Vec<f64> = (0..inp.a.len())
            .map(|i| {
                let a = inp.a[i] as f64 * inp.dropout.map_or(1.0, |d| d.factor(i as u32) as f64);
                a + inp.b.map_or(0.0, |b| b[i] as f64)
            })
            .collect();
        let mut y = vec![0f64; s.len()];
        for (r, row) in s.chunks(cols).enumerate() {
            let m = row.iter().sum::<f64>() / cols as f64;
            let v = row.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / cols as f64;
            for j in 0..cols {
                y[r * cols + j] = (row[j] - m) / (v + inp.eps as f64).sqrt() * inp.gamma[j] as f64
                    + inp.beta[j] as f64;
            }
        }
        y
    }

    #[test]
    fn forward_and_backward_match_f64_reference() {
        let (rows, cols) = (37, 24);
        let a = data(rows * cols, 0.37);
        let b = data(rows * cols, 0.11);
        let gamma = data(cols, 0.7);
        let beta = data(cols, 1.3);
        let dy = data(rows * cols, 0.53);
        for dropout in [None, Some(Dropout::new(0.25, 9))] {
            let inp = Inputs {
                a: &a,
                b: Some(&b),
                dropout,
                gamma: &gamma,
                beta: &beta,
                eps: 1e-5,
            };
            let mut y = vec![0f32; rows * cols];
            let mut st = vec![0f32; rows * 2];
            forward(inp, &mut y, &mut st);
            let want = reference(&inp);
            for (g, w) in y.iter().zip(&want) {
                assert!((*g as f64 - w).abs() < 1e-4 * (1.0 + w.abs()), "{g} vs {w}");
            }
            let mut ds = vec![0f32; rows * cols];
            let mut da = vec![0f32; rows * cols];
            backward(inp, &st, &dy, &mut ds, dropout.map(|_| &mut da[..]));
            // Finite differences of sum(y * dy) with respect to b (= ds) and a.
            let loss = |inp: &Inputs| -> f64 {
                reference(inp)
                    .iter()
                    .zip(&dy)
                    .map(|(y, d)| y * *d as f64)
                    .sum()
            };
            for &i in &[0usize, 5, 100, 431, rows * cols - 1] {
                let h = 1e-2f32;
                let (mut bp, mut bm) = (b.clone(), b.clone());
                bp[i] += h;
                bm[i] -= h;
                let fd = (loss(&Inputs {
                    b: Some(&bp),
                    ..inp
                }) - loss(&Inputs {
                    b: Some(&bm),
                    ..inp
                })) / (2.0 * h as f64);
                assert!(
                    (ds[i] as f64 - fd).abs() < 2e-3 * (1.0 + fd.abs()),
                    "ds[{i}] {} vs {fd}",
                    ds[i]
                );
                let (mut ap, mut am) = (a.clone(), a.clone());
                ap[i] += h;
                am[i] -= h;
                let fd = (loss(&Inputs { a: &ap, ..inp }) - loss(&Inputs { a: &am, ..inp }))
                    / (2.0 * h as f64);
                let got = if dropout.is_some() { da[i] } else { ds[i] };
                assert!(
                    (got as f64 - fd).abs() < 2e-3 * (1.0 + fd.abs()),
                    "da[{i}] {got} vs {fd}"
                );
            }
        }
    }
}
