//! Student's t distribution: CDF, density and quantile, implemented here (log-gamma by Lanczos,
//! the regularized incomplete beta by its continued fraction, the quantile by safeguarded Newton
//! steps on the CDF) so that the study's intervals and power figures need no statistics crate.
//! Checked against SciPy in `stats::tests` (numbers from `scripts/reference_stats.py`).

use crate::{Error, Result};
use std::f64::consts::PI;

/// Lanczos coefficients (g = 7, n = 9): about 15 significant digits for x > 0.
const LANCZOS_G: f64 = 7.0;
const LANCZOS: [f64; 9] = [
    0.999_999_999_999_809_9,
    676.520_368_121_885_1,
    -1_259.139_216_722_402_8,
    771.323_428_777_653_1,
    -176.615_029_162_140_6,
    12.507_343_278_686_905,
    -0.138_571_095_265_720_12,
    9.984_369_578_019_572e-6,
    1.505_632_735_149_311_6e-7,
];

/// ln Γ(x) for x > 0 (reflection below 1/2).
pub fn ln_gamma(x: f64) -> f64 {
    if x < 0.5 {
        return (PI / (PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + LANCZOS_G + 0.5;
    let a = LANCZOS[0]
        + LANCZOS[1..]
            .iter()
            .enumerate()
            .map(|(i, c)| c / (x + (i + 1) as f64))
            .sum::<f64>();
    0.5 * (2.0 * PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The continued fraction of the incomplete beta (modified Lentz), valid for
/// x < (a + 1) / (a + b + 2).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=500 {
        let m = m as f64;
        let m2 = 2.0 * m;
        for aa in [
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ] {
            d = 1.0 + aa * d;
            if d.abs() < TINY {
                d = TINY;
            }
            c = 1.0 + aa / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// The regularized incomplete beta I_x(a, b), given x and y = 1 - x separately so that a y
/// close to 0 keeps its digits.
pub fn beta_inc(a: f64, b: f64, x: f64, y: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if y <= 0.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * y.ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_cf(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_cf(b, a, y) / b
    }
}

/// P(T > t) for t >= 0 (the upper tail), accurate also far out in the tail.
fn upper_tail(t: f64, df: f64) -> f64 {
    let t2 = t * t;
    0.5 * beta_inc(df / 2.0, 0.5, df / (df + t2), t2 / (df + t2))
}

/// The CDF of Student's t with `df` degrees of freedom (any df > 0, not only integers).
pub fn t_cdf(t: f64, df: f64) -> f64 {
    let tail = upper_tail(t.abs(), df);
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// The density of Student's t.
pub fn t_pdf(t: f64, df: f64) -> f64 {
    (ln_gamma((df + 1.0) / 2.0)
        - ln_gamma(df / 2.0)
        - 0.5 * (df * PI).ln()
        - (df + 1.0) / 2.0 * (t * t / df).ln_1p())
    .exp()
}

/// The standard normal quantile by Acklam's rational approximation (relative error about
/// 1e-9): only the starting point of the t quantile's Newton steps.
fn normal_quantile_guess(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        let r = (-2.0 * q.ln()).sqrt();
        (((((C[0] * r + C[1]) * r + C[2]) * r + C[3]) * r + C[4]) * r + C[5])
            / ((((D[0] * r + D[1]) * r + D[2]) * r + D[3]) * r + 1.0)
    };
    if p < 0.02425 {
        tail(p)
    } else if p > 1.0 - 0.02425 {
        -tail(1.0 - p)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// A starting point for the t quantile with upper tail `q` (< 1/2): exact for df 1 and 2,
/// the Cornish-Fisher expansion around the normal quantile otherwise.
fn t_guess(q: f64, df: f64) -> f64 {
    if df == 1.0 {
        return (PI * (0.5 - q)).tan();
    }
    if df == 2.0 {
        return (1.0 - 2.0 * q) * (2.0 / (4.0 * q * (1.0 - q))).sqrt();
    }
    let z = normal_quantile_guess(1.0 - q);
    let (z2, v) = (z * z, df);
    let g1 = z * (z2 + 1.0) / 4.0;
    let g2 = z * ((5.0 * z2 + 16.0) * z2 + 3.0) / 96.0;
    let g3 = z * (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) / 384.0;
    let g4 = z * ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) / 92160.0;
    (z + g1 / v + g2 / (v * v) + g3 / (v * v * v) + g4 / (v * v * v * v)).max(1e-3)
}

/// The quantile of Student's t: the t with `t_cdf(t, df) = p`, for 0 < p < 1 and df > 0.
/// Newton steps on the upper tail, kept inside a bracket (bisection when a step leaves it),
/// to full double precision.
pub fn t_quantile(p: f64, df: f64) -> Result<f64> {
    if !(p > 0.0 && p < 1.0) {
        return Err(Error::InvalidParam {
            name: "p".into(),
            value: p.to_string(),
            expected: "a probability strictly between 0 and 1".into(),
        });
    }
    if !(df > 0.0 && df.is_finite()) {
        return Err(Error::InvalidParam {
            name: "df".into(),
            value: df.to_string(),
            expected: "degrees of freedom > 0".into(),
        });
    }
    if p == 0.5 {
        return Ok(0.0);
    }
    // Solve P(T > t) = q for t > 0; the lower half by symmetry.
    let q = p.min(1.0 - p);
    let mut t = t_guess(q, df);
    let (mut lo, mut hi) = (0.0_f64, t);
    while upper_tail(hi, df) > q {
        lo = hi;
        hi *= 2.0;
    }
    for _ in 0..200 {
        let f = upper_tail(t, df) - q;
        if f == 0.0 {
            break;
        }
        if f > 0.0 {
            lo = lo.max(t);
        } else {
            hi = hi.min(t);
        }
        let mut next = t + f / t_pdf(t, df);
        if !(next > lo && next < hi) {
            next = 0.5 * (lo + hi);
        }
        let done = (next - t).abs() <= 4.0 * f64::EPSILON * t.abs();
        t = next;
        if done {
            break;
        }
    }
    Ok(if p > 0.5 { t } else { -t })
}
