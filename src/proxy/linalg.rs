//! Small dense linear algebra on the host, in f64: symmetric eigenvalues (cyclic Jacobi), the top
//! singular values of a gradient matrix (subspace iteration on its Gram matrix), and correlation
//! matrices. candle has no SVD or eigen-solver; the matrices here are at most a few hundred wide.

use crate::rng::Rng;
use crate::Result;
use candle_core::{DType, Tensor};

/// A tensor's values as f64 on the host, flattened in row-major order.
pub fn host_f64(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?)
}

/// Eigenvalues of the symmetric `n x n` matrix `a` (row-major), sorted descending, by cyclic
/// Jacobi rotations. Accurate to rounding for the sizes used here (n up to a few hundred).
pub fn sym_eigenvalues(a: &[f64], n: usize) -> Vec<f64> {
    assert_eq!(
        a.len(),
        n * n,
        "sym_eigenvalues: {} values for n = {n}",
        a.len()
    );
    let mut m = a.to_vec();
    let off = |m: &[f64]| -> f64 {
        let mut s = 0.0;
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    s += m[i * n + j] * m[i * n + j];
                }
            }
        }
        s
    };
    let scale: f64 = m.iter().map(|x| x * x).sum::<f64>().max(f64::MIN_POSITIVE);
    for _sweep in 0..100 {
        if off(&m) <= 1e-30 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let app = m[p * n + p];
                let aqq = m[q * n + q];
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let akp = m[k * n + p];
                    let akq = m[k * n + q];
                    m[k * n + p] = c * akp - s * akq;
                    m[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let apk = m[p * n + k];
                    let aqk = m[q * n + k];
                    m[p * n + k] = c * apk - s * aqk;
                    m[q * n + k] = s * apk + c * aqk;
                }
            }
        }
    }
    let mut ev: Vec<f64> = (0..n).map(|i| m[i * n + i]).collect();
    ev.sort_by(|a, b| b.total_cmp(a));
    ev
}

/// Orthonormalises the `k` columns of the `n x k` matrix `q` (row-major) in place by modified
/// Gram-Schmidt; a column that becomes (numerically) zero is replaced by a random direction.
fn orthonormalise(q: &mut [f64], n: usize, k: usize, rng: &mut Rng) {
    for j in 0..k {
        for attempt in 0..3 {
            for i in 0..j {
                let dot: f64 = (0..n).map(|r| q[r * k + i] * q[r * k + j]).sum();
                for r in 0..n {
                    q[r * k + j] -= dot * q[r * k + i];
                }
            }
            let norm: f64 = (0..n).map(|r| q[r * k + j].powi(2)).sum::<f64>().sqrt();
            if norm > 1e-12 || attempt == 2 {
                let norm = norm.max(1e-300);
                for r in 0..n {
                    q[r * k + j] /= norm;
                }
                break;
            }
            for r in 0..n {
                q[r * k + j] = rng.normal();
            }
        }
    }
}

/// The squared singular values sigma_1^2 >= ... of the `rows x cols` matrix `g`, the first `k` of
/// them (fewer if the matrix is smaller).
///
/// The Gram matrix of the smaller side, M = G G^T or G^T G (`m x m`), is formed with candle's
/// matmul in f64; its eigenvalues are the sigma^2. For m <= 96 they come from Jacobi directly;
/// otherwise from subspace iteration with `k + 8` vectors (random start from `rng`) and a
/// Rayleigh-Ritz step, which gives the leading eigenvalues to about 1e-10 relative accuracy
/// after a few dozen iterations on gradient matrices, whose spectra decay fast.
pub fn top_sq_singular_values(g: &Tensor, k: usize, rng: &mut Rng) -> Result<Vec<f64>> {
    let g = g.to_dtype(DType::F64)?;
    let (rows, cols) = g.dims2()?;
    let gram = if rows <= cols {
        g.matmul(&g.t()?)?
    } else {
        g.t()?.matmul(&g)?
    };
    let m = rows.min(cols);
    let k = k.min(m);
    if k == 0 {
        return Ok(vec![]);
    }
    if m <= 96 {
        let a = host_f64(&gram)?;
        let mut ev = sym_eigenvalues(&a, m);
        ev.truncate(k);
        return Ok(ev.into_iter().map(|x| x.max(0.0)).collect());
    }
    let p = (k + 8).min(m);
    let mut q: Vec<f64> = (0..m * p).map(|_| rng.normal()).collect();
    orthonormalise(&mut q, m, p, rng);
    let device = gram.device().clone();
    let mut prev: Vec<f64> = vec![];
    for it in 0..60 {
        let qt = Tensor::from_vec(q.clone(), (m, p), &device)?;
        let z = gram.matmul(&qt)?;
        // Rayleigh-Ritz: eigenvalues of Q^T M Q approximate the leading eigenvalues of M.
        if it % 5 == 4 {
            let t = host_f64(&qt.t()?.matmul(&z)?)?;
            let mut ev = sym_eigenvalues(&t, p);
            ev.truncate(k);
            let done = !prev.is_empty()
                && ev
                    .iter()
                    .zip(&prev)
                    .all(|(a, b)| (a - b).abs() <= 1e-12 * ev[0].abs().max(1e-300));
            if done {
                return Ok(ev.into_iter().map(|x| x.max(0.0)).collect());
            }
            prev = ev;
        }
        q = host_f64(&z)?;
        orthonormalise(&mut q, m, p, rng);
    }
    let qt = Tensor::from_vec(q, (m, p), &device)?;
    let t = host_f64(&qt.t()?.matmul(&gram.matmul(&qt)?)?)?;
    let mut ev = sym_eigenvalues(&t, p);
    ev.truncate(k);
    Ok(ev.into_iter().map(|x| x.max(0.0)).collect())
}

/// The `n x n` Pearson correlation matrix of the `n` rows (each `d` long) of `x` (row-major), as
/// numpy's `corrcoef`. A constant row correlates 0 with every other row (1 with itself) instead
/// of NaN.
pub fn corrcoef_rows(x: &[f64], n: usize, d: usize) -> Vec<f64> {
    let mut centred = x.to_vec();
    let mut norms = vec![0.0; n];
    for i in 0..n {
        let row = &mut centred[i * d..(i + 1) * d];
        let mean = row.iter().sum::<f64>() / d.max(1) as f64;
        row.iter_mut().for_each(|v| *v -= mean);
        norms[i] = row.iter().map(|v| v * v).sum::<f64>().sqrt();
    }
    let mut c = vec![0.0; n * n];
    for i in 0..n {
        c[i * n + i] = 1.0;
        for j in i + 1..n {
            let v = if norms[i] > 0.0 && norms[j] > 0.0 {
                let dot: f64 = (0..d)
                    .map(|t| centred[i * d + t] * centred[j * d + t])
                    .sum();
                (dot / (norms[i] * norms[j])).clamp(-1.0, 1.0)
            } else {
                0.0
            };
            c[i * n + j] = v;
            c[j * n + i] = v;
        }
    }
    c
}
