//! Branch-free `exp` and `erfc` that vectorise (libm's are scalar calls).

/// `e^x` in f32 (Cephes' `expf` polynomial after a Cody-Waite reduction; about 2 ulp), exactly 0
/// below -87.3, so masked attention scores (-1e9) give exact zeros as `f32::exp` does.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer without a libm call.
    const ROUND: f32 = 12_582_912.0;
    let xc = x.clamp(-87.3, 88.3);
    let t = xc * LOG2E + ROUND;
    let n = t - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5.000_000_1e-1;
    let p = p * r * r + r + 1.0;
    // n sits in the low mantissa bits of t: integer arithmetic on the bits builds 2^n without a
    // float-to-int conversion (Rust's saturating `as i32` does not vectorise).
    let n_bits = t.to_bits().wrapping_sub(ROUND.to_bits());
    let y = p * f32::from_bits(n_bits.wrapping_add(127) << 23);
    if x < -87.3 {
        0.0
    } else {
        y
    }
}

/// `erfc(|z|)` (Numerical Recipes' Chebyshev fit, relative error below 1.2e-7 in exact arithmetic).
#[inline(always)]
pub fn erfc_abs(z: f32) -> f32 {
    let z = z.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let p = 0.170_872_77f32;
    let p = p * t - 0.822_152_23;
    let p = p * t + 1.488_515_87;
    let p = p * t - 1.135_203_98;
    let p = p * t + 0.278_868_07;
    let p = p * t - 0.186_288_06;
    let p = p * t + 0.096_784_18;
    let p = p * t + 0.374_091_96;
    let p = p * t + 1.000_023_68;
    let p = p * t - 1.265_512_23;
    t * exp(-z * z + p)
}

/// The standard normal CDF `Phi(x) = erfc(-x / sqrt(2)) / 2`.
#[inline(always)]
pub fn normal_cdf(x: f32) -> f32 {
    let half_c = 0.5 * erfc_abs(x * std::f32::consts::FRAC_1_SQRT_2);
    if x >= 0.0 {
        1.0 - half_c
    } else {
        half_c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn erfc_ref(x: f64) -> f64 {
        // erfc through a continued fraction / series in f64, accurate well beyond f32.
        if x < 2.5 {
            // erf series
            let mut sum = x;
            let mut term = x;
            let x2 = x * x;
            for n in 1..200 {
                term *= -x2 / n as f64;
                sum += term / (2 * n + 1) as f64;
            }
            1.0 - 2.0 / std::f64::consts::PI.sqrt() * sum
        } else {
            // Lentz continued fraction for erfc.
            let mut f = 0.0;
            for n in (1..80).rev() {
                f = (n as f64 / 2.0) / (x + f);
            }
            (-x * x).exp() / std::f64::consts::PI.sqrt() / (x + f)
        }
    }

    #[test]
    fn exp_is_accurate_and_exactly_zero_far_below() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let got = exp(x) as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert_eq!(exp(-1e9), 0.0);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn erfc_and_cdf_are_accurate() {
        // Up to erfc(6) = 2e-17; further out erfc nears f32's smallest normal numbers, and GELU
        // only ever adds it to 1 or multiplies it by x.
        let mut worst = 0f64;
        let mut z = 0.0f64;
        while z < 6.0 {
            let got = erfc_abs(z as f32) as f64;
            let want = erfc_ref(z);
            worst = worst.max(((got - want) / want).abs());
            z += 0.01;
        }
        // f32 rounding of -z^2 in the exponent (z^2 up to 36) bounds the relative error near 4e-6.
        assert!(worst < 1e-5, "relative error {worst}");
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((normal_cdf(-1.0) - 0.158_655_25).abs() < 1e-6);
    }
}
