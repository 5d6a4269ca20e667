//! The fused ops (f32 on the CPU) against candle's primitives (the f64 fallback path, same
//! dropout seeds): values and gradients.

use super::*;
use crate::rng::Rng;
use candle_core::{DType, Device, Tensor, Var};

fn rand(rng: &mut Rng, shape: &[usize]) -> Tensor {
    rng.uniform_tensor(shape, -2.0, 2.0, &Device::Cpu).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    let a = a.to_dtype(DType::F64).unwrap();
    let b = b.to_dtype(DType::F64).unwrap();
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

/// Runs `f` on f32 variables (fused path) and on f64 copies (primitives), with the loss
/// `sum(f(..) * w)`; returns the max differences of the outputs and of each input's gradient.
fn compare(inputs: &[Tensor], f: &dyn Fn(&[Tensor]) -> Tensor) -> (f64, Vec<f64>) {
    let run = |dtype: DType| {
        let vars: Vec<Var> = inputs
            .iter()
            .map(|t| Var::from_tensor(&t.to_dtype(dtype).unwrap()).unwrap())
            .collect();
        let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let y = f(&ts);
        let w = Tensor::arange(0f32, y.elem_count() as f32, &Device::Cpu)
            .unwrap()
            .affine(0.37, 0.0)
            .unwrap()
            .sin()
            .unwrap()
            .reshape(y.shape())
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let g = (&y * w).unwrap().sum_all().unwrap().backward().unwrap();
        let grads: Vec<Tensor> = vars
            .iter()
            .map(|v| g.get(v).expect("a gradient").clone())
            .collect();
        (y, grads)
    };
    let (y32, g32) = run(DType::F32);
    let (y64, g64) = run(DType::F64);
    (
        max_diff(&y32, &y64),
        g32.iter().zip(&g64).map(|(a, b)| max_diff(a, b)).collect(),
    )
}

#[test]
fn linear_matches_matmul_and_gives_input_gradient() {
    let mut rng = Rng::new(1);
    let w = rand(&mut rng, &[6, 5]);
    let b = rand(&mut rng, &[6]);
    let x = rand(&mut rng, &[2, 3, 5]);
    let (dy, dg) = compare(&[x], &|t| {
        let (w, b) = (
            w.to_dtype(t[0].dtype()).unwrap(),
            b.to_dtype(t[0].dtype()).unwrap(),
        );
        linear(&t[0], &w, Some(&b)).unwrap()
    });
    assert!(dy < 1e-5 && dg[0] < 1e-5, "{dy} {dg:?}");
}

#[test]
fn add_norm_with_dropout_matches_primitives() {
    let mut rng = Rng::new(2);
    let gamma = rng.uniform_tensor(8, 0.5, 1.5, &Device::Cpu).unwrap();
    let beta = rand(&mut rng, &[8]);
    let a = rand(&mut rng, &[3, 4, 8]);
    let b = rand(&mut rng, &[3, 4, 8]);
    for seed in [None, Some(7u64)] {
        let (dy, dg) = compare(&[a.clone(), b.clone()], &|t| {
            let dt = t[0].dtype();
            let (g, be) = (gamma.to_dtype(dt).unwrap(), beta.to_dtype(dt).unwrap());
            add_norm(&t[0], &t[1], &g, &be, 1e-5, 0.3, seed).unwrap()
        });
        assert!(
            dy < 1e-5 && dg.iter().all(|&d| d < 1e-4),
            "{seed:?}: {dy} {dg:?}"
        );
    }
    let x = rand(&mut rng, &[5, 8]);
    let (dy, dg) = compare(&[x], &|t| {
        let dt = t[0].dtype();
        layer_norm(
            &t[0],
            &gamma.to_dtype(dt).unwrap(),
            &beta.to_dtype(dt).unwrap(),
            1e-5,
        )
        .unwrap()
    });
    assert!(dy < 1e-5 && dg[0] < 1e-4, "{dy} {dg:?}");
}

#[test]
fn gelu_and_dropout_match_primitives() {
    let mut rng = Rng::new(3);
    let x = rand(&mut rng, &[4, 33]);
    let (dy, dg) = compare(&[x.clone()], &|t| gelu_erf(&t[0]).unwrap());
    assert!(dy < 1e-5 && dg[0] < 1e-5, "{dy} {dg:?}");
    let (dy, dg) = compare(&[x], &|t| dropout(&t[0], 0.4, 11).unwrap());
    assert!(dy < 1e-6 && dg[0] < 1e-6, "{dy} {dg:?}");
}

#[test]
fn attention_matches_primitives_with_mask_and_dropout() {
    let mut rng = Rng::new(4);
    let (b, s, heads, hd) = (2, 5, 3, 4);
    let q = rand(&mut rng, &[b, s, heads * hd]);
    let k = rand(&mut rng, &[b, s, heads * hd]);
    let v = rand(&mut rng, &[b, s, heads * hd]);
    let mask = Tensor::new(
        &[[1f32, 1., 1., 1., 1.], [1., 1., 1., 0., 0.]],
        &Device::Cpu,
    )
    .unwrap();
    let bias = crate::model::encoder::BertModel::mask_bias(&mask, DType::F32).unwrap();
    for seed in [None, Some(5u64)] {
        let (dy, dg) = compare(&[q.clone(), k.clone(), v.clone()], &|t| {
            let bias = bias.to_dtype(t[0].dtype()).unwrap();
            attention(&t[0], &t[1], &t[2], &bias, heads, 0.2, seed).unwrap()
        });
        assert!(
            dy < 1e-5 && dg.iter().all(|&d| d < 1e-4),
            "{seed:?}: {dy} {dg:?}"
        );
    }
}
