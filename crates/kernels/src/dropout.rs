//! Counter-based dropout masks: element `i` of a tensor is kept or dropped by a hash of
//! `(seed, i)`, so a mask needs no storage (the backward pass recomputes it), can be drawn by
//! any number of threads in any order, and is the same for the same seed on every machine.

/// Inverted dropout with probability `p` and a mask given by `seed`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropout {
    /// Probability of dropping an element, in [0, 1).
    pub p: f32,
    pub seed: u64,
}

impl Dropout {
    pub fn new(p: f32, seed: u64) -> Self {
        Dropout {
            p: p.clamp(0.0, 0.999_999),
            seed,
        }
    }

    /// Kept elements are multiplied by this.
    #[inline(always)]
    pub fn scale(&self) -> f32 {
        1.0 / (1.0 - self.p)
    }

    /// Hashes at or above this keep their element.
    #[inline(always)]
    pub fn threshold(&self) -> u32 {
        (self.p as f64 * 4_294_967_296.0).min(4_294_967_295.0) as u32
    }

    /// The multiplier of element `i`: `scale` or 0.
    #[inline(always)]
    pub fn factor(&self, i: u32) -> f32 {
        if hash(self.seed, i) >= self.threshold() {
            self.scale()
        } else {
            0.0
        }
    }
}

/// A 32-bit mix of `(seed, i)` (MurmurHash3's finaliser around a keyed multiply): 32-bit
/// multiplies and shifts only, so it vectorises.
#[inline(always)]
pub fn hash(seed: u64, i: u32) -> u32 {
    let k0 = seed as u32;
    let k1 = (seed >> 32) as u32;
    let mut x = i.wrapping_mul(0x9E37_79B9) ^ k0;
    x ^= x >> 16;
    x = x.wrapping_mul(0x85EB_CA6B);
    x ^= k1;
    x ^= x >> 13;
    x = x.wrapping_mul(0xC2B2_AE35);
    x ^= x >> 16;
    x
}

multiversion! {
    /// `y[j] = x[j] * factor(offset + j)`.
    fn apply_chunk(x: &[f32], y: &mut [f32], d: Dropout, offset: u32) {
        let thr = d.threshold();
        let scale = d.scale();
        for (j, (yo, &xi)) in y.iter_mut().zip(x).enumerate() {
            let keep = hash(d.seed, offset.wrapping_add(j as u32)) >= thr;
            *yo = if keep { xi * scale } else { 0.0 };
        }
    }
}

/// `y = x * mask` over the whole tensor (element indices from 0), in parallel.
pub fn apply(x: &[f32], y: &mut [f32], d: Dropout) {
    use rayon::prelude::*;
    const CHUNK: usize = 1 << 15;
    assert_eq!(x.len(), y.len());
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .enumerate()
        .for_each(|(c, (yc, xc))| apply_chunk(xc, yc, d, (c * CHUNK) as u32));
}

multiversion! {
    /// `m[j] = 1` where element `offset + j` is kept, else 0.
    fn keep_chunk(m: &mut [u8], d: Dropout, offset: u32) {
        let thr = d.threshold();
        for (j, mo) in m.iter_mut().enumerate() {
            *mo = (hash(d.seed, offset.wrapping_add(j as u32)) >= thr) as u8;
        }
    }
}

/// The keep mask of `n` elements (indices from 0) as bytes, 1 = kept, in parallel: the mask
/// [`apply`] uses, in a quarter of an f32 mask's bytes, for devices that receive it from here.
pub fn keep_mask(n: usize, d: Dropout) -> Vec<u8> {
    use rayon::prelude::*;
    const CHUNK: usize = 1 << 15;
    let mut m = vec![0u8; n];
    m.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(c, mc)| keep_chunk(mc, d, (c * CHUNK) as u32));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_mask_is_the_mask_apply_uses() {
        let d = Dropout::new(0.3, 7);
        let n = 100_003usize;
        let x = vec![1f32; n];
        let mut y = vec![0f32; n];
        apply(&x, &mut y, d);
        let m = keep_mask(n, d);
        assert!(m
            .iter()
            .zip(&y)
            .all(|(&k, &v)| (k == 1) == (v != 0.0) && k <= 1));
        assert!(m.contains(&0) && m.contains(&1));
    }

    #[test]
    fn keep_rate_scale_and_determinism() {
        let d = Dropout::new(0.1, 42);
        let n = 200_000usize;
        let x = vec![1f32; n];
        let mut y = vec![0f32; n];
        apply(&x, &mut y, d);
        let kept = y.iter().filter(|&&v| v != 0.0).count() as f64 / n as f64;
        assert!((kept - 0.9).abs() < 0.003, "kept {kept}");
        assert!(y.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.9).abs() < 1e-6));
        let mut y2 = vec![0f32; n];
        apply(&x, &mut y2, d);
        assert_eq!(y, y2);
        for (i, &v) in y.iter().enumerate().step_by(997) {
            assert_eq!(v, d.factor(i as u32));
        }
        let mut y3 = vec![0f32; n];
        apply(&x, &mut y3, Dropout::new(0.1, 43));
        assert_ne!(y, y3);
        // Neighbouring elements are not correlated.
        let same = y
            .windows(2)
            .filter(|w| (w[0] == 0.0) == (w[1] == 0.0))
            .count() as f64
            / (n - 1) as f64;
        assert!((same - (0.81 + 0.01)).abs() < 0.005, "{same}");
    }
}
