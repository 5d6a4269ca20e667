//! Host linear algebra used by the proxies: Jacobi eigenvalues, subspace iteration for the top
//! singular values, correlation matrices; against hand computations.

use candle_core::{Device, Tensor};
use heterolora::proxy::linalg::*;
use heterolora::rng::Rng;

#[test]
fn jacobi_matches_a_hand_computed_spectrum() {
    // [[2, 1], [1, 2]] has eigenvalues 3 and 1.
    let ev = sym_eigenvalues(&[2.0, 1.0, 1.0, 2.0], 2);
    assert!(
        (ev[0] - 3.0).abs() < 1e-12 && (ev[1] - 1.0).abs() < 1e-12,
        "{ev:?}"
    );
    // Q diag(5, 2, -1) Q^T for a rotation Q keeps the spectrum.
    let (c, s) = (0.6f64, 0.8f64);
    let q = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]];
    let d = [5.0, 2.0, -1.0];
    let mut a = vec![0.0; 9];
    for i in 0..3 {
        for j in 0..3 {
            a[i * 3 + j] = (0..3).map(|k| q[i][k] * d[k] * q[j][k]).sum();
        }
    }
    let ev = sym_eigenvalues(&a, 3);
    for (x, y) in ev.iter().zip([5.0, 2.0, -1.0]) {
        assert!((x - y).abs() < 1e-12, "{ev:?}");
    }
}

#[test]
fn subspace_iteration_agrees_with_jacobi_on_a_large_matrix() {
    // A 150 x 120 matrix with a decaying spectrum: take the Jacobi spectrum of the full Gram
    // matrix as the truth.
    let mut rng = Rng::new(3);
    let (rows, cols, rank) = (150, 120, 40);
    let u: Vec<f64> = (0..rows * rank).map(|_| rng.normal()).collect();
    let v: Vec<f64> = (0..rank * cols).map(|_| rng.normal()).collect();
    let mut g = vec![0.0; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            g[i * cols + j] = (0..rank)
                .map(|k| u[i * rank + k] * v[k * cols + j] * 0.8f64.powi(k as i32))
                .sum();
        }
    }
    let t = Tensor::from_vec(g.clone(), (rows, cols), &Device::Cpu).unwrap();
    let got = top_sq_singular_values(&t, 10, &mut Rng::new(9)).unwrap();
    let gram = host_f64(&t.t().unwrap().matmul(&t).unwrap()).unwrap();
    let want = sym_eigenvalues(&gram, cols);
    assert_eq!(got.len(), 10);
    for i in 0..10 {
        assert!(
            (got[i] - want[i]).abs() <= 1e-8 * want[0],
            "sigma^2_{i}: {} vs {}",
            got[i],
            want[i]
        );
    }
    // The total energy bounds the top ones.
    let fro: f64 = g.iter().map(|x| x * x).sum();
    assert!(got.iter().sum::<f64>() <= fro * (1.0 + 1e-12));
}

#[test]
fn correlation_matrix_handles_constant_rows() {
    let x = [1.0, 2.0, 3.0, 2.0, 4.0, 6.0, 3.0, 2.0, 1.0, 5.0, 5.0, 5.0];
    let c = corrcoef_rows(&x, 4, 3);
    assert!((c[1] - 1.0).abs() < 1e-12);
    assert!((c[2] + 1.0).abs() < 1e-12);
    assert_eq!(c[3], 0.0);
    assert_eq!(c[15], 1.0);
}
