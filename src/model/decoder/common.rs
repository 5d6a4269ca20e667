//! Pieces every decoder shares: the causal + padding mask, multi-head attention with grouped
//! key-value heads and optional rotary embeddings, RMSNorm, the last-token read-out, and loading
//! of linear maps with or without bias.

use crate::model::nn::{softmax_last, Linear};
pub(crate) use crate::model::weights::load_linear_maybe_bias;
use crate::model::weights::{Init, WeightSource};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, D};

/// The additive attention bias `[b, 1, s, s]` of a causal decoder from a `[b, s]` 0/1 padding
/// mask: 0 where query `i` may see key `j` (`j <= i` and `j` is a token), a large negative value
/// elsewhere. A pad query that sees nothing gets uniform weights, as in transformers' eager path;
/// its output is never read.
pub fn causal_mask_bias(attention_mask: &Tensor, dtype: DType) -> Result<Tensor> {
    let (b, s) = attention_mask.dims2()?;
    let m: Vec<f32> = attention_mask
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1()?;
    // exp(-1e9) is exactly 0 in f32; f16 cannot hold it.
    let neg = if dtype == DType::F16 { -1e4f32 } else { -1e9 };
    let mut bias = vec![neg; b * s * s];
    for bi in 0..b {
        for i in 0..s {
            for j in 0..=i {
                if m[bi * s + j] > 0.5 {
                    bias[(bi * s + i) * s + j] = 0.0;
                }
            }
        }
    }
    Ok(Tensor::from_vec(bias, (b, 1, s, s), attention_mask.device())?.to_dtype(dtype)?)
}

/// Rotary position embeddings (`rope_type: default`): `cos`, `sin` `[s, head_dim]` for positions
/// `0..s`, frequencies `rope_theta^(-2i / head_dim)` duplicated over both halves, as transformers'
/// `rotate_half` convention expects.
#[derive(Debug, Clone)]
pub struct Rotary {
    pub theta: f64,
    pub head_dim: usize,
}

impl Rotary {
    fn cos_sin(&self, s: usize, dtype: DType, device: &Device) -> Result<(Tensor, Tensor)> {
        let half = self.head_dim / 2;
        // In f32 like transformers: the angles are what the reference rounds.
        let inv: Vec<f32> = (0..half)
            .map(|i| 1.0 / (self.theta as f32).powf((2 * i) as f32 / self.head_dim as f32))
            .collect();
        let mut cos = Vec::with_capacity(s * self.head_dim);
        let mut sin = Vec::with_capacity(s * self.head_dim);
        for p in 0..s {
            for _half in 0..2 {
                for f in &inv {
                    let a = p as f32 * f;
                    cos.push(a.cos());
                    sin.push(a.sin());
                }
            }
        }
        let t = |v| -> Result<Tensor> {
            Ok(Tensor::from_vec(v, (s, self.head_dim), device)?.to_dtype(dtype)?)
        };
        Ok((t(cos)?, t(sin)?))
    }

    /// `x [b, heads, s, head_dim]` rotated by position.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let (_, _, s, d) = x.dims4()?;
        let (cos, sin) = self.cos_sin(s, x.dtype(), x.device())?;
        let x1 = x.narrow(D::Minus1, 0, d / 2)?;
        let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
        let rot = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
        Ok((x.broadcast_mul(&cos)? + rot.broadcast_mul(&sin)?)?)
    }
}

/// The shape of one attention block.
#[derive(Debug, Clone)]
pub struct AttnShape {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

/// Scaled dot-product attention over already projected `q [b, s, heads * head_dim]` and
/// `k`, `v` `[b, s, kv_heads * head_dim]`, with `bias [b, 1, s, s]`, scores scaled by
/// `scale`; each key-value head serves `heads / kv_heads` query heads. Returns the context
/// `[b, s, heads * head_dim]` (heads concatenated).
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: &Tensor,
    shape: &AttnShape,
    scale: f64,
    rotary: Option<&Rotary>,
) -> Result<Tensor> {
    let (b, s, _) = q.dims3()?;
    let (h, kvh, d) = (shape.heads, shape.kv_heads, shape.head_dim);
    // [b, s, n * d] -> [b, n, s, d]
    let split = |t: &Tensor, n: usize| -> Result<Tensor> {
        Ok(t.reshape((b, s, n, d))?.transpose(1, 2)?.contiguous()?)
    };
    let (mut q, mut k, v) = (split(q, h)?, split(k, kvh)?, split(v, kvh)?);
    if let Some(r) = rotary {
        q = r.apply(&q)?;
        k = r.apply(&k)?;
    }
    let repeat = |t: Tensor| -> Result<Tensor> {
        if kvh == h {
            return Ok(t);
        }
        Ok(t.unsqueeze(2)?
            .expand((b, kvh, h / kvh, s, d))?
            .reshape((b, h, s, d))?)
    };
    let (k, v) = (repeat(k)?, repeat(v)?);
    let scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?.broadcast_add(bias)?; // [b, h, s, s]
    let p = softmax_last(&scores)?;
    let ctx = p.matmul(&v)?; // [b, h, s, d]
    Ok(ctx.transpose(1, 2)?.reshape((b, s, h * d))?)
}

/// A frozen RMSNorm (`x / sqrt(mean(x^2) + eps) * weight`, in at least f32), as Llama's.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    /// `[hidden]`
    pub weight: Tensor,
    pub eps: f64,
}

impl RmsNorm {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let internal = match dtype {
            DType::F16 | DType::BF16 => DType::F32,
            d => d,
        };
        let xf = x.to_dtype(internal)?;
        let ms = xf.sqr()?.mean_keepdim(D::Minus1)?;
        let y = xf
            .broadcast_div(&(ms + self.eps)?.sqrt()?)?
            .to_dtype(dtype)?;
        Ok(y.broadcast_mul(&self.weight)?)
    }

    pub fn params(&self) -> usize {
        self.weight.elem_count()
    }

    pub fn map(&self, f: &dyn Fn(&Tensor) -> Result<Tensor>) -> Result<Self> {
        Ok(RmsNorm {
            weight: f(&self.weight)?,
            eps: self.eps,
        })
    }
}

/// Token embeddings `[b, s, d]` of ids `[b, s]` from a table `[vocab, d]`.
pub(crate) fn embed(table: &Tensor, input_ids: &Tensor) -> Result<Tensor> {
    let (b, s) = input_ids.dims2()?;
    let ids = input_ids.flatten_all()?.to_dtype(DType::U32)?;
    Ok(table.index_select(&ids, 0)?.reshape((b, s, ()))?)
}

/// Runs `n` layers on `x` `[b, s, hidden]`: `layer(l, x, prev)` gives the layer's output and its
/// post-attention stream, which the next layer's shortcut2 reads as `prev`.
pub(crate) fn run_layers(
    n: usize,
    mut x: Tensor,
    mut layer: impl FnMut(usize, &Tensor, Option<&Tensor>) -> Result<(Tensor, Tensor)>,
) -> Result<Tensor> {
    let mut prev: Option<Tensor> = None;
    for l in 0..n {
        let (out, h) = layer(l, &x, prev.as_ref())?;
        x = out;
        prev = Some(h);
    }
    Ok(x)
}

/// Parameters of some linear maps.
pub(crate) fn linears_params(maps: &[&Linear]) -> usize {
    maps.iter().map(|l| l.params()).sum()
}

/// Loads an RMSNorm named `name` (`{name}.weight` `[size]`).
pub(crate) fn load_rms_norm(
    src: &mut WeightSource,
    name: &str,
    size: usize,
    eps: f64,
    dtype: DType,
    device: &Device,
) -> Result<RmsNorm> {
    let weight = src.get(
        &format!("{name}.weight"),
        &[size],
        Init::Ones,
        0.0,
        dtype,
        device,
    )?;
    Ok(RmsNorm { weight, eps })
}

/// The position of the rightmost token that is not `pad_token_id` in each row of `input_ids`
/// `[b, s]` (0 for a row of pads), as transformers' `*ForSequenceClassification` reads its
/// logits, which serves left and right padding alike; with no pad id, the last position.
pub fn last_token_positions(input_ids: &Tensor, pad_token_id: Option<u32>) -> Result<Vec<u32>> {
    let (b, s) = input_ids.dims2()?;
    let Some(pad) = pad_token_id else {
        return Ok(vec![s.saturating_sub(1) as u32; b]);
    };
    let ids: Vec<Vec<i64>> = input_ids.to_dtype(DType::I64)?.to_vec2()?;
    Ok(ids
        .iter()
        .map(|row| row.iter().rposition(|&t| t != pad as i64).unwrap_or(0) as u32)
        .collect())
}

/// `hidden [b, s, h]` at one position per row -> `[b, h]`.
pub fn gather_rows(hidden: &Tensor, positions: &[u32]) -> Result<Tensor> {
    let (b, s, h) = hidden.dims3()?;
    if positions.len() != b || positions.iter().any(|&p| p as usize >= s) {
        return Err(Error::Shape {
            name: "read-out positions".into(),
            expected: vec![b],
            actual: vec![positions.len()],
        });
    }
    let flat: Vec<u32> = positions
        .iter()
        .enumerate()
        .map(|(i, &p)| (i * s) as u32 + p)
        .collect();
    let idx = Tensor::from_vec(flat, b, hidden.device())?;
    Ok(hidden.reshape((b * s, h))?.index_select(&idx, 0)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn mask_is_causal_and_hides_pads() {
        let m = Tensor::new(&[[1u32, 1, 0], [0, 1, 1]], &Device::Cpu).unwrap();
        let t = causal_mask_bias(&m, DType::F32).unwrap();
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        let at = |bi: usize, i: usize, j: usize| v[(bi * 3 + i) * 3 + j];
        assert_eq!(at(0, 1, 0), 0.0);
        assert_eq!(at(0, 0, 1), -1e9); // the future
        assert_eq!(at(0, 2, 2), -1e9); // a pad key
        assert_eq!(at(1, 2, 0), -1e9);
        assert_eq!(at(1, 2, 1), 0.0);
    }

    #[test]
    fn last_tokens_follow_transformers_for_both_paddings() {
        let ids =
            Tensor::new(&[[5u32, 6, 0, 0], [0, 0, 7, 8], [0, 0, 0, 0]], &Device::Cpu).unwrap();
        assert_eq!(last_token_positions(&ids, Some(0)).unwrap(), vec![1, 3, 0]);
        assert_eq!(last_token_positions(&ids, None).unwrap(), vec![3, 3, 3]);
        let h = Tensor::arange(0f32, 24.0, &Device::Cpu)
            .unwrap()
            .reshape((3, 4, 2))
            .unwrap();
        let g: Vec<Vec<f32>> = gather_rows(&h, &[1, 3, 0]).unwrap().to_vec2().unwrap();
        assert_eq!(g, vec![vec![2.0, 3.0], vec![14.0, 15.0], vec![16.0, 17.0]]);
    }

    #[test]
    fn grouped_attention_equals_repeated_full_attention_and_rotary_keeps_norms() {
        let mut rng = Rng::new(3);
        let dev = Device::Cpu;
        let (b, s, d) = (2, 5, 4);
        let q = rng.uniform_tensor((b, s, 4 * d), -1.0, 1.0, &dev).unwrap();
        let k = rng.uniform_tensor((b, s, 2 * d), -1.0, 1.0, &dev).unwrap();
        let v = rng.uniform_tensor((b, s, 2 * d), -1.0, 1.0, &dev).unwrap();
        let mask = Tensor::ones((b, s), DType::U32, &dev).unwrap();
        let bias = causal_mask_bias(&mask, DType::F32).unwrap();
        let gqa = AttnShape {
            heads: 4,
            kv_heads: 2,
            head_dim: d,
        };
        let got = attention(&q, &k, &v, &bias, &gqa, 0.5, None).unwrap();
        // The same with every key-value head written out twice.
        let dup = |t: &Tensor| {
            let parts: Vec<Tensor> = (0..2)
                .flat_map(|h| {
                    let p = t.narrow(2, h * d, d).unwrap();
                    [p.clone(), p]
                })
                .collect();
            Tensor::cat(&parts, 2).unwrap()
        };
        let full = AttnShape {
            heads: 4,
            kv_heads: 4,
            head_dim: d,
        };
        let want = attention(&q, &dup(&k), &dup(&v), &bias, &full, 0.5, None).unwrap();
        let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-6);
        // A rotation keeps each head vector's length; position 0 is not rotated.
        let r = Rotary {
            theta: 10000.0,
            head_dim: d,
        };
        let x = rng.uniform_tensor((1, 1, s, d), -1.0, 1.0, &dev).unwrap();
        let y = r.apply(&x).unwrap();
        let n = |t: &Tensor| t.sqr().unwrap().sum(D::Minus1).unwrap();
        let dn = (n(&x) - n(&y)).unwrap().abs().unwrap().max_all().unwrap();
        assert!(dn.to_scalar::<f32>().unwrap() < 1e-5);
        let d0 = (x.narrow(2, 0, 1).unwrap() - y.narrow(2, 0, 1).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert_eq!(d0.to_scalar::<f32>().unwrap(), 0.0);
    }
}
