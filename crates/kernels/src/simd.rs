//! Run-time selection of the instruction set a kernel is compiled for.
//!
//! `multiversion!` compiles one function body three times (AVX-512, AVX2 + FMA, baseline) and
//! calls the best one the CPU supports. Helpers called from such a body must be
//! `#[inline(always)]` so that they are compiled with the caller's instruction set.

use std::sync::OnceLock;

/// The instruction set the kernels run with on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2,
    Baseline,
}

/// Detected once; `HETEROLORA_ISA=avx2|baseline` caps it (to compare or to test every path).
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        let cap = std::env::var("HETEROLORA_ISA").unwrap_or_default();
        detect(&cap.to_ascii_lowercase())
    })
}

#[cfg(target_arch = "x86_64")]
fn detect(cap: &str) -> Isa {
    let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    let avx512 = avx2
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512dq")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl");
    match cap {
        "baseline" => Isa::Baseline,
        "avx2" if avx2 => Isa::Avx2,
        _ if avx512 => Isa::Avx512,
        _ if avx2 => Isa::Avx2,
        _ => Isa::Baseline,
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect(_cap: &str) -> Isa {
    Isa::Baseline
}

/// `multiversion! { pub fn name(args) -> ret { body } }`: the body compiled per instruction set.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v4($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v3($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
                match $crate::simd::isa() {
                    // SAFETY: the CPU supports the features each version is compiled for.
                    $crate::simd::Isa::Avx512 => return unsafe { v4($($arg),*) },
                    $crate::simd::Isa::Avx2 => return unsafe { v3($($arg),*) },
                    $crate::simd::Isa::Baseline => {}
                }
            }
            body($($arg),*)
        }
    };
}

/// Lanes of the per-lane accumulators in reductions: floating-point sums are not reassociated by
/// the compiler, so a reduction vectorises only when written as this many independent sums.
pub(crate) const LANES: usize = 16;

/// Sum of `x`, vectorisable.
#[inline(always)]
pub(crate) fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for j in 0..LANES {
            acc[j] += c[j];
        }
    }
    let mut s: f32 = chunks.remainder().iter().sum();
    for a in acc {
        s += a;
    }
    s
}

/// Sum of `a[i] * b[i]`, vectorisable.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for j in 0..LANES {
            acc[j] += x[j] * y[j];
        }
    }
    let mut s: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for v in acc {
        s += v;
    }
    s
}

/// Maximum of `x` (`-inf` when empty), vectorisable.
#[inline(always)]
pub(crate) fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for j in 0..LANES {
            acc[j] = if c[j] > acc[j] { c[j] } else { acc[j] };
        }
    }
    let mut m = f32::NEG_INFINITY;
    for &v in chunks.remainder().iter().chain(acc.iter()) {
        m = if v > m { v } else { m };
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions_match_scalar() {
        let x: Vec<f32> = (0..77).map(|i| (i as f32 * 0.37).sin()).collect();
        let y: Vec<f32> = (0..77).map(|i| (i as f32 * 0.11).cos()).collect();
        let s: f64 = x.iter().map(|&v| v as f64).sum();
        assert!((sum(&x) as f64 - s).abs() < 1e-5);
        let d: f64 = x.iter().zip(&y).map(|(&a, &b)| a as f64 * b as f64).sum();
        assert!((dot(&x, &y) as f64 - d).abs() < 1e-5);
        let m = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(max(&x), m);
        assert_eq!(max(&[]), f32::NEG_INFINITY);
    }
}
