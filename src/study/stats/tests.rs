//! The statistics against SciPy 1.17.1 / NumPy 2.4.6: every constant below was printed by
//! `scripts/reference_stats.py` (run it with SciPy installed and paste its output here).

use super::*;

// (p, df, t.ppf(p, df))
const T_QUANTILES: &[(f64, f64, f64)] = &[
    (0.975, 1.0, 12.706204736174694),
    (0.8, 1.0, 1.3763819204711738),
    (0.995, 1.0, 63.656741162871526),
    (0.6, 1.0, 0.32491969623290634),
    (0.025, 1.0, -12.706204736174705),
    (0.9995, 1.0, 636.6192487687897),
    (0.975, 2.0, 4.302652729749462),
    (0.8, 2.0, 1.0606601717798214),
    (0.995, 2.0, 9.924843200918287),
    (0.6, 2.0, 0.2886751345948128),
    (0.025, 2.0, -4.302652729749464),
    (0.9995, 2.0, 31.599054576445365),
    (0.975, 3.0, 3.1824463052837078),
    (0.8, 3.0, 0.9784723123633042),
    (0.995, 3.0, 5.840909309733355),
    (0.6, 3.0, 0.2766706623326898),
    (0.025, 3.0, -3.1824463052837086),
    (0.9995, 3.0, 12.923978636687961),
    (0.975, 4.0, 2.7764451051977934),
    (0.8, 4.0, 0.9409645772351816),
    (0.995, 4.0, 4.604094871349992),
    (0.6, 4.0, 0.2707222947075976),
    (0.025, 4.0, -2.7764451051977943),
    (0.9995, 4.0, 8.610301581379522),
    (0.975, 5.0, 2.5705818356363146),
    (0.8, 5.0, 0.9195437802408271),
    (0.995, 5.0, 4.032142983555228),
    (0.6, 5.0, 0.2671808657041451),
    (0.025, 5.0, -2.5705818356363155),
    (0.9995, 5.0, 6.868826625881276),
    (0.975, 9.0, 2.262157162798205),
    (0.8, 9.0, 0.8834038596855346),
    (0.995, 9.0, 3.249835541592126),
    (0.6, 9.0, 0.260955336473911),
    (0.025, 9.0, -2.2621571627982053),
    (0.9995, 9.0, 4.780912585931217),
    (0.975, 29.0, 2.045229642132703),
    (0.8, 29.0, 0.8541919858818557),
    (0.995, 29.0, 2.756385903670605),
    (0.6, 29.0, 0.25568363457125604),
    (0.025, 29.0, -2.045229642132704),
    (0.9995, 29.0, 3.6594050194663748),
    (0.975, 100.0, 1.9839715185235518),
    (0.8, 100.0, 0.8452304244910163),
    (0.995, 100.0, 2.6258905214380173),
    (0.6, 100.0, 0.25402218245822766),
    (0.025, 100.0, -1.983971518523552),
    (0.9995, 100.0, 3.390491311164263),
    (0.975, 2.5, 3.5746548420036817),
    (0.8, 2.5, 1.0101638747222512),
    (0.995, 2.5, 7.163728138948783),
    (0.6, 2.5, 0.2814595127485477),
    (0.025, 2.5, -3.5746548420036834),
    (0.9995, 2.5, 18.277893528131457),
    (0.975, 0.7, 36.611415031588656),
    (0.8, 0.7, 1.7588267314034614),
    (0.995, 0.7, 364.9352029815851),
    (0.6, 0.7, 0.35603136523468015),
    (0.025, 0.7, -36.611415031588706),
    (0.9995, 0.7, 9790.117523122977),
];
// (t, df, t.cdf(t, df), t.pdf(t, df))
const T_CDF: &[(f64, f64, f64, f64)] = &[
    (0.0, 3.0, 0.5, 0.36755259694786135),
    (1e-09, 4.0, 0.500000000375, 0.375),
    (0.5, 1.0, 0.6475836176504333, 0.2546479089470326),
    (-1.3, 2.0, 0.16162351590802015, 0.1410783756897977),
    (2.2, 7.0, 0.9681344923486817, 0.04703665572626927),
    (-4.0, 12.0, 0.0008808481221975133, 0.001584979123139548),
    (10.0, 3.0, 0.9989358004707929, 0.0003118082168470874),
    (30.0, 50.0, 1.0, 9.78412322670731e-34),
    (1.7, 0.5, 0.7599324350421153, 0.06418307371314741),
];
// SYNTH: ttest_rel(a, b), 95% interval; SD_d; detectable effect at 80% power; seeds for +1.6
const SYNTH_A: &[f64] = &[81.2, 79.9, 83.4, 80.1, 82.0];
const SYNTH_B: &[f64] = &[80.0, 80.3, 81.1, 78.9, 80.2];
const SYNTH_T: (f64, f64, f64, f64, f64, usize) = (
    1.2200000000000017,
    -0.0413741823651228,
    2.4813741823651263,
    1.0158740079360227,
    1.6888663096261878,
    6,
);
// MRPC_STATIC_GRAD_NORM: ttest_rel(a, b), 95% interval; SD_d; detectable effect at 80% power; seeds for +1.6
const MRPC_STATIC_GRAD_NORM_A: &[f64] = &[72.54901960784314, 71.32352941176471, 70.83333333333334];
const MRPC_STATIC_GRAD_NORM_B: &[f64] = &[73.03921568627452, 70.34313725490196, 77.45098039215686];
const MRPC_STATIC_GRAD_NORM_T: (f64, f64, f64, f64, f64, usize) = (
    -2.0424836601307184,
    -12.05320343531755,
    7.968236115056113,
    4.029857011483172,
    12.47849312881456,
    52,
);
// (sd, n, detectable effect, seeds for a 1.6 effect)
const DETECTABLE: &[(f64, usize, f64, usize)] = &[
    (1.0, 2, 9.957892521561483, 6),
    (1.0, 3, 3.096510147446125, 6),
    (4.18, 3, 12.9434124163248, 56),
    (2.5, 5, 4.156190375068019, 22),
    (0.5, 10, 0.4973568675048367, 3),
    (3.0, 30, 1.5880786293819267, 30),
];
const PCT_DATA: &[f64] = &[-2.5, -1.0, 0.5, 2.25, 3.5, 4.75, 7.0];
const PCT: &[(f64, f64)] = &[
    (0.0, -2.5),
    (0.025, -2.275),
    (0.1, -1.5999999999999999),
    (0.5, 2.25),
    (0.77, 4.275),
    (0.975, 6.6625),
    (1.0, 7.0),
];
// seed-level bootstrap of SEED_DIFFS: exact SE, exact 2.5%/97.5% quantiles of the
// n^n-resample distribution, and the spread (sd) of 10,000-resample percentile estimates
const SEED_DIFFS: &[f64] = &[-0.49, 0.98, -6.62, 1.5, -2.1];
const SEED_BOOT: (f64, f64, f64, f64, f64) = (
    1.3057767037284744,
    -4.168,
    0.8939999999999999,
    0.0386973222297097,
    0.018977845083150854,
);
// two-level bootstrap of GROUPS (per-example differences per seed): exact mean and SE,
// 2.5%/97.5% percentiles of 200,000 resamples, spread of 10,000-resample estimates
const GROUPS: &[&[f64]] = &[
    &[
        0.0, -1.0, -1.0, 0.0, 0.0, -1.0, 1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0,
        -1.0, 1.0, -1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0,
        0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0,
    ],
    &[
        -1.0, 1.0, 0.0, 1.0, -1.0, 1.0, 0.0, -1.0, 0.0, 0.0, -1.0, 0.0, 1.0, -1.0, 0.0, -1.0, -1.0,
        0.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, -1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0,
        0.0, -1.0, 0.0, 0.0, -1.0, -1.0, 0.0, 0.0, -1.0, 0.0, -1.0, 0.0, 0.0, 1.0, -1.0,
    ],
    &[
        -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, -1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        0.0, 0.0, 1.0, -1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0, -1.0,
        1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0,
    ],
    &[
        0.0, 0.0, -1.0, -1.0, -1.0, 0.0, 1.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0, 0.0, -1.0, -1.0,
        1.0, 1.0, -1.0, -1.0, 0.0, 0.0, 0.0, -1.0, 1.0, 0.0, -1.0, 0.0, 1.0, 0.0, 0.0, -1.0, 0.0,
        -1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0, 1.0, 0.0, -1.0, 0.0, -1.0, 1.0, 0.0,
    ],
];
const GROUPS_BOOT: (f64, f64, f64, f64, f64, f64) = (
    -0.025000000000000005,
    0.06366513959774218,
    -0.14500000000000002,
    0.1,
    0.002469104009428311,
    0.0025398311336584326,
);

fn close(got: f64, want: f64, rel: f64) -> bool {
    (got - want).abs() <= rel * want.abs().max(1e-300) || got == want
}

#[test]
fn t_quantile_matches_scipy() {
    for &(p, df, want) in T_QUANTILES {
        let got = t_quantile(p, df).unwrap();
        assert!(
            close(got, want, 1e-11),
            "t.ppf({p}, {df}): {got} vs scipy {want}"
        );
        // And it inverts the CDF.
        assert!(close(t_cdf(got, df), p, 1e-12), "cdf(ppf({p}, {df}))");
    }
    assert_eq!(t_quantile(0.5, 3.0).unwrap(), 0.0);
    assert!(t_quantile(1.0, 3.0).is_err() && t_quantile(0.5, 0.0).is_err());
    assert!(t_quantile(f64::NAN, 3.0).is_err());
}

#[test]
fn t_cdf_and_pdf_match_scipy() {
    for &(t, df, cdf, pdf) in T_CDF {
        assert!(
            close(t_cdf(t, df), cdf, 1e-12),
            "t.cdf({t}, {df}): {} vs {cdf}",
            t_cdf(t, df)
        );
        assert!(
            close(t_pdf(t, df), pdf, 1e-12),
            "t.pdf({t}, {df}): {} vs {pdf}",
            t_pdf(t, df)
        );
    }
}

fn diffs(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

#[test]
fn paired_t_interval_matches_scipy_ttest_rel() {
    for (a, b, (mean, lo, hi, sd, detect, need)) in [
        (SYNTH_A, SYNTH_B, SYNTH_T),
        (
            MRPC_STATIC_GRAD_NORM_A,
            MRPC_STATIC_GRAD_NORM_B,
            MRPC_STATIC_GRAD_NORM_T,
        ),
    ] {
        let d = diffs(a, b);
        let t = paired_t(&d, LEVEL).unwrap();
        assert_eq!(t.n, a.len());
        assert!(close(t.mean, mean, 1e-12), "{} vs {mean}", t.mean);
        assert!(close(t.sd.unwrap(), sd, 1e-12));
        let (l, h) = t.interval.unwrap();
        assert!(
            close(l, lo, 1e-11) && close(h, hi, 1e-11),
            "[{l}, {h}] vs [{lo}, {hi}]"
        );
        let got = detectable_effect(sd, a.len(), LEVEL, POWER)
            .unwrap()
            .unwrap();
        assert!(close(got, detect, 1e-11), "{got} vs {detect}");
        assert_eq!(
            seeds_needed(sd, 1.6, LEVEL, POWER, 100_000).unwrap(),
            Some(need)
        );
    }
    // SYNTH's interval just includes 0: no verdict; MRPC's includes 0 and +1.6.
    let synth = paired_t(&diffs(SYNTH_A, SYNTH_B), LEVEL).unwrap();
    assert!(!synth.excludes_zero());
    let mrpc = paired_t(
        &diffs(MRPC_STATIC_GRAD_NORM_A, MRPC_STATIC_GRAD_NORM_B),
        LEVEL,
    )
    .unwrap();
    assert!(!mrpc.excludes_zero() && mrpc.contains(1.6));
    // A consistent gain excludes 0.
    assert!(paired_t(&[1.0, 1.2, 0.9, 1.1], LEVEL)
        .unwrap()
        .excludes_zero());
    // One seed: a difference, no spread, no interval.
    let one = paired_t(&[2.5], LEVEL).unwrap();
    assert_eq!((one.mean, one.sd, one.interval), (2.5, None, None));
    assert!(!one.excludes_zero());
    assert!(paired_t(&[], LEVEL).is_err());
    assert_eq!(detectable_effect(1.0, 1, LEVEL, POWER).unwrap(), None);
}

#[test]
fn detectable_effect_and_seeds_needed_match_scipy() {
    for &(sd, n, detect, need) in DETECTABLE {
        let got = detectable_effect(sd, n, LEVEL, POWER).unwrap().unwrap();
        assert!(
            close(got, detect, 1e-11),
            "sd {sd}, n {n}: {got} vs {detect}"
        );
        assert_eq!(
            seeds_needed(sd, 1.6, LEVEL, POWER, 100_000).unwrap(),
            Some(need),
            "sd {sd}"
        );
    }
    assert_eq!(seeds_needed(0.0, 1.6, LEVEL, POWER, 10).unwrap(), Some(2));
    assert_eq!(seeds_needed(4.18, 1.6, LEVEL, POWER, 55).unwrap(), None);
    assert_eq!(seeds_needed(4.18, 1.6, LEVEL, POWER, 56).unwrap(), Some(56));
}

#[test]
fn percentile_interpolates_like_numpy() {
    for &(q, want) in PCT {
        let got = percentile(PCT_DATA, q);
        assert!(close(got, want, 1e-14), "q {q}: {got} vs numpy {want}");
    }
}

#[test]
fn seed_bootstrap_matches_the_exact_bootstrap_distribution() {
    let (se, lo, hi, lo_sd, hi_sd) = SEED_BOOT;
    let ci = PairedBootstrap::default().seeds(SEED_DIFFS).unwrap();
    assert_eq!(ci.levels, BootstrapLevels::Seeds);
    assert_eq!(ci.resamples, 10_000);
    let mean = SEED_DIFFS.iter().sum::<f64>() / SEED_DIFFS.len() as f64;
    assert!(close(ci.estimate, mean, 1e-12));
    // 10,000 resamples estimate the SE to about 0.7%; the percentiles to lo_sd / hi_sd.
    assert!(close(ci.se, se, 0.03), "se {} vs exact {se}", ci.se);
    assert!(
        (ci.interval.0 - lo).abs() < 5.0 * lo_sd,
        "{:?} vs {lo}",
        ci.interval
    );
    assert!(
        (ci.interval.1 - hi).abs() < 5.0 * hi_sd,
        "{:?} vs {hi}",
        ci.interval
    );
    // Seeded: the same settings give the same interval, another seed another one.
    assert_eq!(PairedBootstrap::default().seeds(SEED_DIFFS).unwrap(), ci);
    assert_ne!(
        PairedBootstrap::default()
            .seed(1)
            .seeds(SEED_DIFFS)
            .unwrap()
            .interval,
        ci.interval
    );
}

#[test]
fn two_level_bootstrap_matches_the_exact_standard_error() {
    let (mean, se, lo, hi, lo_sd, hi_sd) = GROUPS_BOOT;
    let groups: Vec<Vec<f64>> = GROUPS.iter().map(|g| g.to_vec()).collect();
    let ci = PairedBootstrap::default().two_level(&groups).unwrap();
    assert_eq!(ci.levels, BootstrapLevels::SeedsAndExamples);
    assert!(close(ci.estimate, mean, 1e-12), "{} vs {mean}", ci.estimate);
    assert!(close(ci.se, se, 0.03), "se {} vs exact {se}", ci.se);
    assert!(
        (ci.interval.0 - lo).abs() < 5.0 * lo_sd + 0.005,
        "{:?} vs {lo}",
        ci.interval
    );
    assert!(
        (ci.interval.1 - hi).abs() < 5.0 * hi_sd + 0.005,
        "{:?} vs {hi}",
        ci.interval
    );
    // Resampling the examples adds their variance: wider than the seed level on seed means.
    let means: Vec<f64> = groups
        .iter()
        .map(|g| g.iter().sum::<f64>() / g.len() as f64)
        .collect();
    let seed_only = PairedBootstrap::default().seeds(&means).unwrap();
    // (about 0.064 against 0.043 here.)
    assert!(ci.se > 1.3 * seed_only.se, "{} vs {}", ci.se, seed_only.se);
    // From the two arms' per-example scores: the same as their differences.
    let base: Vec<Vec<f64>> = groups.iter().map(|g| vec![1.0; g.len()]).collect();
    let arm: Vec<Vec<f64>> = groups
        .iter()
        .map(|g| g.iter().map(|d| 1.0 + d).collect())
        .collect();
    assert_eq!(PairedBootstrap::default().arms(&arm, &base).unwrap(), ci);
    assert!(PairedBootstrap::default().arms(&arm, &base[..2]).is_err());
    assert!(PairedBootstrap::default().two_level(&[]).is_err());
}

/// Predictions that copy `labels` except where a draw below `flip_pct` flips the class.
fn noisy_classes(rng: &mut crate::rng::Rng, labels: &[f32], flip_pct: usize) -> Vec<f32> {
    labels
        .iter()
        .map(|&y| {
            if rng.below(100) < flip_pct {
                1.0 - y
            } else {
                y
            }
        })
        .collect()
}

#[test]
fn metric_bootstrap_with_accuracy_is_the_per_example_bootstrap() {
    use crate::data::{metrics, Task};
    let mut rng = crate::rng::Rng::new(3);
    let labels: Vec<f32> = (0..60).map(|_| rng.below(2) as f32).collect();
    let arm: Vec<Vec<f32>> = (0..3)
        .map(|_| noisy_classes(&mut rng, &labels, 20))
        .collect();
    let base: Vec<Vec<f32>> = (0..3)
        .map(|_| noisy_classes(&mut rng, &labels, 30))
        .collect();
    let pairs: Vec<SeedPair> = arm
        .iter()
        .zip(&base)
        .map(|(a, b)| SeedPair {
            arm: a,
            baseline: b,
            labels: &labels,
        })
        .collect();
    let accuracy =
        |p: &[f32], l: &[f32]| metrics::named(Task::Mrpc, "accuracy", p, l).unwrap_or(f64::NAN);
    let ci = PairedBootstrap::default()
        .metric_pairs(&pairs, &accuracy)
        .unwrap();
    // The same draws as resampling per-example correctness with `arms`.
    let correct = |p: &[f32]| -> Vec<f64> {
        p.iter()
            .zip(&labels)
            .map(|(a, b)| f64::from(u8::from(a == b)))
            .collect()
    };
    let per_example = PairedBootstrap::default()
        .arms(
            &arm.iter().map(|p| correct(p)).collect::<Vec<_>>(),
            &base.iter().map(|p| correct(p)).collect::<Vec<_>>(),
        )
        .unwrap();
    assert_eq!(ci.levels, BootstrapLevels::SeedsAndExamples);
    assert_eq!(ci.resamples, per_example.resamples);
    for (got, want) in [
        (ci.estimate, per_example.estimate),
        (ci.se, per_example.se),
        (ci.interval.0, per_example.interval.0),
        (ci.interval.1, per_example.interval.1),
    ] {
        assert!((got - want).abs() < 1e-12, "{ci:?} vs {per_example:?}");
    }
    let full: f64 = pairs
        .iter()
        .map(|p| accuracy(p.arm, p.labels) - accuracy(p.baseline, p.labels))
        .sum::<f64>()
        / 3.0;
    assert!((ci.estimate - full).abs() < 1e-12);
}

#[test]
fn metric_bootstrap_recomputes_pearson_on_every_resample() {
    use crate::data::metrics;
    let mut rng = crate::rng::Rng::new(11);
    let labels: Vec<f32> = (0..80).map(|_| rng.below(51) as f32 / 10.0).collect();
    let noisy = |rng: &mut crate::rng::Rng, spread: usize| -> Vec<f32> {
        labels
            .iter()
            .map(|&y| y + (rng.below(2 * spread + 1) as f32 - spread as f32) / 10.0)
            .collect()
    };
    let pearson = |p: &[f32], l: &[f32]| {
        let f = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
        metrics::pearson(&f(p), &f(l))
    };
    let base: Vec<Vec<f32>> = (0..4).map(|_| noisy(&mut rng, 20)).collect();
    // Pearson ignores an affine map: the same value on every resample, so no spread at all.
    let affine: Vec<Vec<f32>> = base
        .iter()
        .map(|b| b.iter().map(|x| 2.0 * x + 1.0).collect())
        .collect();
    let pairs = |arm: &'_ [Vec<f32>]| -> Vec<(Vec<f32>, Vec<f32>)> {
        arm.iter().cloned().zip(base.iter().cloned()).collect()
    };
    fn seed_pairs<'a>(owned: &'a [(Vec<f32>, Vec<f32>)], labels: &'a [f32]) -> Vec<SeedPair<'a>> {
        owned
            .iter()
            .map(|(a, b)| SeedPair {
                arm: a,
                baseline: b,
                labels,
            })
            .collect()
    }
    let owned = pairs(&affine);
    let sp = seed_pairs(&owned, &labels);
    let ci = PairedBootstrap::default()
        .metric_pairs(&sp, &pearson)
        .unwrap();
    assert!(ci.estimate.abs() < 1e-6 && ci.se < 1e-6, "{ci:?}");
    assert!(ci.interval.0.abs() < 1e-6 && ci.interval.1.abs() < 1e-6);
    // A less noisy arm: the full-data difference as the estimate, inside a positive interval.
    let better: Vec<Vec<f32>> = (0..4).map(|_| noisy(&mut rng, 5)).collect();
    let owned = pairs(&better);
    let sp = seed_pairs(&owned, &labels);
    let ci = PairedBootstrap::default()
        .resamples(2_000)
        .metric_pairs(&sp, &pearson)
        .unwrap();
    let full = sp
        .iter()
        .map(|p| pearson(p.arm, p.labels) - pearson(p.baseline, p.labels))
        .sum::<f64>()
        / 4.0;
    assert_eq!(ci.levels, BootstrapLevels::SeedsAndExamples);
    assert_eq!(ci.resamples, 2_000);
    assert!((ci.estimate - full).abs() < 1e-12);
    assert!(
        0.0 < ci.interval.0 && ci.interval.0 < full && full < ci.interval.1,
        "{ci:?}"
    );
    // Arms of other lengths, or no seeds, are errors.
    let short = SeedPair {
        arm: &better[0][1..],
        baseline: &base[0],
        labels: &labels,
    };
    assert!(PairedBootstrap::default()
        .metric_pairs(&[short], &pearson)
        .is_err());
    assert!(PairedBootstrap::default()
        .metric_pairs(&[], &pearson)
        .is_err());
}
