//! Matrix products on row-major `f32` slices through the `gemm` crate (the one candle uses),
//! with the bias fused into the output and no copies for transposed operands.

use gemm::Parallelism;

/// A raw pointer that may cross into rayon tasks writing disjoint parts of one buffer.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub *mut f32);
// SAFETY: every user writes disjoint elements through it while the buffer outlives the tasks.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// `dst[m, n] = (accumulate ? dst : 0) + beta * lhs[m, k] rhs[k, n]` with arbitrary row and
/// column strides (in elements) of `lhs` and `rhs` and row stride `dst_rs` of `dst`.
///
/// # Safety
/// Every pointer must be valid for the elements its strides reach; `dst` must not alias the
/// operands.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_f32(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: *const f32,
    lhs_rs: usize,
    lhs_cs: usize,
    rhs: *const f32,
    rhs_rs: usize,
    rhs_cs: usize,
    beta: f32,
    parallel: bool,
) {
    let threads = rayon::current_num_threads();
    let par = if parallel && threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        accumulate,
        lhs,
        lhs_cs as isize,
        lhs_rs as isize,
        rhs,
        rhs_cs as isize,
        rhs_rs as isize,
        1.0,
        beta,
        false,
        false,
        false,
        par,
    );
}

/// `y [rows, out] = x [rows, in] w^T + bias`, `w [out, in]` (a PyTorch `Linear` weight).
pub fn forward(x: &[f32], w: &[f32], bias: Option<&[f32]>, d_in: usize, y: &mut [f32]) {
    assert!(d_in > 0 && x.len() % d_in == 0 && w.len() % d_in == 0);
    let rows = x.len() / d_in;
    let d_out = w.len() / d_in;
    assert_eq!(y.len(), rows * d_out);
    if let Some(b) = bias {
        assert_eq!(b.len(), d_out);
        for row in y.chunks_exact_mut(d_out) {
            row.copy_from_slice(b);
        }
    }
    // SAFETY: shapes checked above; y is a distinct buffer.
    unsafe {
        gemm_f32(
            rows,
            d_out,
            d_in,
            y.as_mut_ptr(),
            d_out,
            bias.is_some(),
            x.as_ptr(),
            d_in,
            1,
            w.as_ptr(),
            1,
            d_in,
            1.0,
            true,
        )
    }
}

/// `dx [rows, in] = dy [rows, out] w`, `w [out, in]`: the input gradient of [`forward`].
pub fn backward_input(dy: &[f32], w: &[f32], d_in: usize, dx: &mut [f32]) {
    assert!(d_in > 0 && w.len() % d_in == 0);
    let d_out = w.len() / d_in;
    assert!(dy.len() % d_out == 0);
    let rows = dy.len() / d_out;
    assert_eq!(dx.len(), rows * d_in);
    // SAFETY: shapes checked above; dx is a distinct buffer.
    unsafe {
        gemm_f32(
            rows,
            d_in,
            d_out,
            dx.as_mut_ptr(),
            d_in,
            false,
            dy.as_ptr(),
            d_out,
            1,
            w.as_ptr(),
            d_in,
            1,
            1.0,
            true,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_and_input_gradient_match_loops() {
        let (rows, d_in, d_out) = (7, 5, 3);
        let x: Vec<f32> = (0..rows * d_in).map(|i| (i as f32 * 0.3).sin()).collect();
        let w: Vec<f32> = (0..d_out * d_in).map(|i| (i as f32 * 0.7).cos()).collect();
        let b = vec![0.5f32, -1.0, 2.0];
        let mut y = vec![9f32; rows * d_out];
        forward(&x, &w, Some(&b), d_in, &mut y);
        for r in 0..rows {
            for o in 0..d_out {
                let want: f32 = b[o]
                    + (0..d_in)
                        .map(|i| x[r * d_in + i] * w[o * d_in + i])
                        .sum::<f32>();
                assert!((y[r * d_out + o] - want).abs() < 1e-5);
            }
        }
        let mut y0 = vec![9f32; rows * d_out];
        forward(&x, &w, None, d_in, &mut y0);
        assert!((y0[0] - (y[0] - b[0])).abs() < 1e-5);
        let mut dx = vec![9f32; rows * d_in];
        backward_input(&y, &w, d_in, &mut dx);
        for r in 0..rows {
            for i in 0..d_in {
                let want: f32 = (0..d_out).map(|o| y[r * d_out + o] * w[o * d_in + i]).sum();
                assert!((dx[r * d_in + i] - want).abs() < 1e-4);
            }
        }
    }
}

/// Shapes of a LoRA-adapted frozen linear map: `x [rows, d_in]`, `w [d_out, d_in]`,
/// `a [r, d_in]` (`lora_A`), `b [d_out, r]` (`lora_B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoraDims {
    pub rows: usize,
    pub d_in: usize,
    pub d_out: usize,
    pub r: usize,
}

impl LoraDims {
    /// Panics unless the operands have these shapes (`h = x a^T`).
    fn check(&self, x: &[f32], w: &[f32], a: &[f32], b: &[f32], h: &[f32]) {
        let LoraDims {
            rows,
            d_in,
            d_out,
            r,
        } = *self;
        assert!(x.len() == rows * d_in && w.len() == d_out * d_in && a.len() == r * d_in);
        assert!(b.len() == d_out * r && h.len() == rows * r);
    }
}

/// `y = x w^T + bias + scale * (x a^T) b^T`; writes `h = x a^T [rows, r]` for the backward pass.
#[allow(clippy::too_many_arguments)]
pub fn lora_forward(
    dims: LoraDims,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    a: &[f32],
    b: &[f32],
    scale: f32,
    y: &mut [f32],
    h: &mut [f32],
) {
    dims.check(x, w, a, b, h);
    let LoraDims {
        rows,
        d_in,
        d_out,
        r,
    } = dims;
    assert_eq!(y.len(), rows * d_out);
    forward(x, w, bias, d_in, y);
    // SAFETY: shapes checked above; outputs are distinct buffers.
    unsafe {
        gemm_f32(
            rows,
            r,
            d_in,
            h.as_mut_ptr(),
            r,
            false,
            x.as_ptr(),
            d_in,
            1,
            a.as_ptr(),
            1,
            d_in,
            1.0,
            true,
        );
        gemm_f32(
            rows,
            d_out,
            r,
            y.as_mut_ptr(),
            d_out,
            true,
            h.as_ptr(),
            r,
            1,
            b.as_ptr(),
            1,
            r,
            scale,
            true,
        );
    }
}

/// Gradients of [`lora_forward`] from `dy [rows, d_out]`: `dx` (when asked), `da [r, d_in]`,
/// `db [d_out, r]`; `w` gets none.
#[allow(clippy::too_many_arguments)]
pub fn lora_backward(
    dims: LoraDims,
    x: &[f32],
    w: &[f32],
    a: &[f32],
    b: &[f32],
    h: &[f32],
    scale: f32,
    dy: &[f32],
    dx: Option<&mut [f32]>,
    da: &mut [f32],
    db: &mut [f32],
) {
    dims.check(x, w, a, b, h);
    let LoraDims {
        rows,
        d_in,
        d_out,
        r,
    } = dims;
    assert!(dy.len() == rows * d_out && da.len() == a.len() && db.len() == b.len());
    // t = dy b  [rows, r]
    let mut t = vec![0f32; rows * r];
    // SAFETY: shapes checked above; outputs are distinct buffers.
    unsafe {
        gemm_f32(
            rows,
            r,
            d_out,
            t.as_mut_ptr(),
            r,
            false,
            dy.as_ptr(),
            d_out,
            1,
            b.as_ptr(),
            r,
            1,
            1.0,
            true,
        );
        // da = scale * t^T x, db = scale * dy^T h
        gemm_f32(
            r,
            d_in,
            rows,
            da.as_mut_ptr(),
            d_in,
            false,
            t.as_ptr(),
            1,
            r,
            x.as_ptr(),
            d_in,
            1,
            scale,
            true,
        );
        gemm_f32(
            d_out,
            r,
            rows,
            db.as_mut_ptr(),
            r,
            false,
            dy.as_ptr(),
            1,
            d_out,
            h.as_ptr(),
            r,
            1,
            scale,
            true,
        );
    }
    if let Some(dx) = dx {
        assert_eq!(dx.len(), rows * d_in);
        backward_input(dy, w, d_in, dx);
        // SAFETY: as above.
        unsafe {
            gemm_f32(
                rows,
                d_in,
                r,
                dx.as_mut_ptr(),
                d_in,
                true,
                t.as_ptr(),
                r,
                1,
                a.as_ptr(),
                d_in,
                1,
                scale,
                true,
            );
        }
    }
}

#[cfg(test)]
mod lora_tests {
    use super::*;

    fn data(n: usize, k: f32) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * k).sin()).collect()
    }

    #[test]
    fn lora_forward_and_gradients_match_finite_differences() {
        let dims = LoraDims {
            rows: 6,
            d_in: 5,
            d_out: 4,
            r: 2,
        };
        let (x, w, a, b) = (data(30, 0.3), data(20, 0.7), data(10, 1.1), data(8, 0.9));
        let bias = data(4, 2.1);
        let dy = data(24, 0.45);
        let s = 1.5f32;
        let loss = |x: &[f32], a: &[f32], b: &[f32]| -> f64 {
            let mut y = vec![0f32; 24];
            let mut h = vec![0f32; 12];
            lora_forward(dims, x, &w, Some(&bias), a, b, s, &mut y, &mut h);
            y.iter()
                .zip(&dy)
                .map(|(p, q)| (*p as f64) * (*q as f64))
                .sum()
        };
        // Forward against loops.
        let mut y = vec![0f32; 24];
        let mut h = vec![0f32; 12];
        lora_forward(dims, &x, &w, Some(&bias), &a, &b, s, &mut y, &mut h);
        for n in 0..6 {
            for o in 0..4 {
                let mut want = bias[o] + (0..5).map(|i| x[n * 5 + i] * w[o * 5 + i]).sum::<f32>();
                for k in 0..2 {
                    let ax: f32 = (0..5).map(|i| a[k * 5 + i] * x[n * 5 + i]).sum();
                    want += s * b[o * 2 + k] * ax;
                }
                assert!((y[n * 4 + o] - want).abs() < 1e-4);
            }
        }
        let (mut dx, mut da, mut db) = (vec![0f32; 30], vec![0f32; 10], vec![0f32; 8]);
        lora_backward(
            dims,
            &x,
            &w,
            &a,
            &b,
            &h,
            s,
            &dy,
            Some(&mut dx),
            &mut da,
            &mut db,
        );
        let e = 1e-2f32;
        let fd = |which: usize, i: usize| {
            let mut p = [x.clone(), a.clone(), b.clone()];
            let mut m = [x.clone(), a.clone(), b.clone()];
            p[which][i] += e;
            m[which][i] -= e;
            (loss(&p[0], &p[1], &p[2]) - loss(&m[0], &m[1], &m[2])) / (2.0 * e as f64)
        };
        for i in 0..30 {
            assert!((dx[i] as f64 - fd(0, i)).abs() < 1e-3, "dx[{i}]");
        }
        for i in 0..10 {
            assert!((da[i] as f64 - fd(1, i)).abs() < 1e-3, "da[{i}]");
        }
        for i in 0..8 {
            assert!((db[i] as f64 - fd(2, i)).abs() < 1e-3, "db[{i}]");
        }
    }
}
