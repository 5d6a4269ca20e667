use super::summary::fmt_secs;
use super::*;
use crate::study::methods::Method;

fn rec(method: &str, family: &str, seed: u64, acc: f64) -> ChildRecord {
    let m = Method::all()
        .into_iter()
        .find(|m| m.name == method)
        .unwrap();
    let dims = crate::adapters::ModelDims::MINILM_L6;
    let cands = m.candidates(&dims);
    let scores = Scores {
        proxy: "grad-norm".into(),
        values: cands
            .iter()
            .enumerate()
            .map(|(i, s)| (*s, i as f64))
            .collect(),
        rank_gains: None,
        num_batches: 1,
        seconds: 0.0,
    };
    let alloc = m
        .allocate(&dims, m.needs_scores().then_some(&scores), seed)
        .unwrap();
    ChildRecord {
        key: format!("t/{method}/seed{seed}"),
        study: "t".into(),
        task: "mrpc".into(),
        protocol: "cpu".into(),
        protocol_settings: None,
        method: method.into(),
        family: family.into(),
        seed,
        status: "FINISHED".into(),
        run_id: None,
        metric: "accuracy".into(),
        best_metric: Some(acc),
        best_epoch: Some(1),
        best_metrics: BTreeMap::new(),
        epoch_metrics: vec![acc],
        last_metrics: BTreeMap::new(),
        budget: 18_432,
        adapter_params: alloc.trainable_params(),
        trainable_params: alloc.trainable_params() + 770,
        wall_time_s: 600.0,
        scoring_seconds: 0.0,
        allocation: alloc,
        scores: m.needs_scores().then_some(scores),
        times_enabled: None,
        num_reallocations: 0,
        finished_at_ms: None,
        dev_predictions: None,
        resumed_at_step: None,
    }
}

/// A record whose last epoch scored `acc` with dev cross-entropy `loss`.
fn rec_l(method: &str, family: &str, seed: u64, acc: f64, loss: f64) -> ChildRecord {
    let mut r = rec(method, family, seed, acc);
    r.last_metrics = [("accuracy".to_string(), acc), ("loss".to_string(), loss)].into();
    r
}

fn report(records: Vec<ChildRecord>) -> StudyReport {
    StudyReport {
        name: "t".into(),
        records,
        planned: Some(36),
        methods: vec![],
        notes: vec![],
    }
}

#[test]
fn methods_outside_the_plan_are_not_awaited() {
    let mut rep = pair_report([1.0, 2.0, 3.0]);
    assert!(rep
        .summary_markdown()
        .contains("(hetero-ranks-w0-grad-spectrum): not finished yet"));
    rep.methods = vec![
        "uniform-r2".into(),
        "static-grad-norm".into(),
        "dynamic-grad-norm".into(),
    ];
    let s = rep.summary_markdown();
    assert!(!s.contains("hetero-ranks-w0-grad-spectrum"), "{s}");
    assert!(s.contains("(dynamic-grad-norm): not finished yet"), "{s}");
}

/// Baseline 79, 80, 81; static grad-norm `deltas` points above it, per seed.
fn pair_report(deltas: [f64; 3]) -> StudyReport {
    let mut records = vec![];
    // Dev cross-entropy 0.55 for the baseline, 0.03, 0.04, 0.05 lower for static grad-norm.
    for ((seed, b), (d, l)) in [(0, 0.79), (13, 0.80), (42, 0.81)]
        .into_iter()
        .zip(deltas.into_iter().zip([0.03, 0.04, 0.05]))
    {
        records.push(rec_l("uniform-r2", "uniform", seed, b, 0.55));
        records.push(rec_l(
            "static-grad-norm",
            "static",
            seed,
            b + d / 100.0,
            0.55 - l,
        ));
    }
    records.push(rec("random", "random", 0, 0.795));
    report(records)
}

#[test]
fn a_significant_gain_is_called_significant_and_held_against_the_paper() {
    // Paired differences +3.0, +3.5, +2.9: mean +3.13, SD_d 0.32, 95% t interval
    // [+2.33, +3.93] (2 df), detectable 1.00 (numbers from SciPy).
    let rep = pair_report([3.0, 3.5, 2.9]);
    let rows = rep.rows();
    assert_eq!(rows[0].method, "uniform-r2");
    assert!((rows[0].mean - 80.0).abs() < 1e-9 && (rows[0].std - 1.0).abs() < 1e-9);
    assert_eq!(rows[0].delta, Some(0.0));
    let c = rows[1].comparison.as_ref().unwrap();
    assert_eq!(
        (c.baseline.as_str(), c.verdict()),
        ("uniform-r2", Verdict::Better)
    );
    assert!((rows[1].delta.unwrap() - 9.4 / 3.0).abs() < 1e-9);
    let s = rep.summary_markdown();
    assert!(s.contains("7 child runs finished of 36 planned"), "{s}");
    assert!(
        s.contains("paired difference +3.13 points over 3 seeds, 95% t interval [+2.33, +3.93] (2 df), seed-level bootstrap ["),
        "{s}"
    );
    assert!(
        s.contains("**significant: better than uniform-r2 (the 95% interval excludes 0); the interval lies above the paper's +1.6**"),
        "{s}"
    );
    // Dev cross-entropy: lower by 0.03, 0.04, 0.05 against 0.55.
    assert!(
        s.contains("Dev cross-entropy at the last epoch: paired difference -0.040 over 3 seeds, 95% t interval [-0.065, -0.015] (lower: significant)"),
        "{s}"
    );
    assert!(s.contains("dynamic-grad-norm): not finished yet"), "{s}");
    assert!(
        s.contains("random allocation (constant proxy) (random, 18432 adapter parameters) against uniform-r2")
            && s.contains("**no verdict: one paired seed gives a difference but no interval"),
        "{s}"
    );
    assert!(
        s.contains("Significant differences (95% t interval excluding 0): static-grad-norm."),
        "{s}"
    );
    assert!(
        s.contains("so the bootstrap shown is the seed-level bootstrap"),
        "{s}"
    );
    assert!(
        !s.contains("spread over seeds"),
        "no verdicts from standard deviations: {s}"
    );
    // grad-norm scores rise with the slot index: the top 3 of 12 are layer 5 q, v and layer 4 v.
    assert!(s.contains("seed 0: L4.v, L5.q, L5.v"), "{s}");
    let md = rep.table_markdown();
    assert!(
        md.contains("| static-grad-norm | 3 | 83.13 ± 1.00 | 0.510 ± 0.010 | uniform-r2 | +3.13 | [+2.33, +3.93] | ["),
        "{md}"
    );
    assert!(md.contains("| 1.00 | better | 83.13 ± 1.00 |"), "{md}");
    assert!(
        md.contains("| uniform-r2 | 3 | 80.00 ± 1.00 | 0.550 ± 0.000 | - | - | - | - | - | - |"),
        "{md}"
    );
    let df = rep.table().unwrap();
    assert_eq!(df.height(), 3);
    let lo = df
        .column("t_ci_low")
        .unwrap()
        .f64()
        .unwrap()
        .get(1)
        .unwrap();
    assert!((lo - 2.3352).abs() < 1e-3, "{lo}");
    // The same gain on another task: no +1.6 target, the 1.6 points named as the paper's MRPC gain.
    let mut rte = rep.clone();
    rte.records.iter_mut().for_each(|r| r.task = "rte".into());
    let s3 = rte.summary_markdown();
    assert!(
        s3.contains("**significant: better than uniform-r2 (the 95% interval excludes 0)**"),
        "{s3}"
    );
    assert!(!s3.contains("paper's +1.6"), "{s3}");
}

#[test]
fn an_interval_including_zero_is_inconclusive_with_the_seeds_needed() {
    // +0.5, -1.0, +1.5: mean +0.33, SD_d 1.26, [-2.79, +3.46], detectable 3.90, 7 seeds for 1.6.
    let s = pair_report([0.5, -1.0, 1.5]).summary_markdown();
    assert!(
        s.contains(
            "paired difference +0.33 points over 3 seeds, 95% t interval [-2.79, +3.46] (2 df)"
        ),
        "{s}"
    );
    assert!(
        s.contains("**inconclusive: the 95% interval includes 0; with SD_d 1.26 over 3 seeds the design detects 3.90 points at 80% power, and detecting the paper's +1.6 would take about 7 seeds; the paper's +1.6 is inside the interval too: neither it nor 0 is ruled out**"),
        "{s}"
    );
    assert!(
        s.contains("Significant differences (95% t interval excluding 0): none."),
        "{s}"
    );
    let mut rte = pair_report([0.5, -1.0, 1.5]);
    rte.records.iter_mut().for_each(|r| r.task = "rte".into());
    let s = rte.summary_markdown();
    assert!(
        s.contains(
            "detecting a 1.6-point difference (the paper's MRPC gain) would take about 7 seeds**"
        ),
        "{s}"
    );
    // A consistent loss is significant the other way, below the paper's target.
    let s = pair_report([-3.0, -3.5, -2.9]).summary_markdown();
    assert!(
        s.contains("**significant: worse than uniform-r2 (the 95% interval excludes 0); the interval lies below the paper's +1.6**"),
        "{s}"
    );
}

#[test]
fn last_epoch_is_primary_and_best_epoch_descriptive() {
    // Seed 0 peaked at epoch 1 (85) and ended at 80; old records keep the loss only at the best
    // epoch, so seed 0's last-epoch cross-entropy is unknown, seed 13's (best = last) is known.
    let mut a = rec("uniform-r2", "uniform", 0, 0.85);
    a.epoch_metrics = vec![0.85, 0.80];
    a.best_epoch = Some(1);
    a.best_metrics = [("loss".to_string(), 0.4)].into();
    let mut b = rec("uniform-r2", "uniform", 13, 0.82);
    b.epoch_metrics = vec![0.78, 0.82];
    b.best_epoch = Some(2);
    b.best_metrics = [("loss".to_string(), 0.5)].into();
    assert_eq!((last_metric(&a), last_loss(&a)), (Some(0.80), None));
    assert_eq!((last_metric(&b), last_loss(&b)), (Some(0.82), Some(0.5)));
    let rep = report(vec![a, b]);
    let row = &rep.rows()[0];
    assert!((row.mean - 81.0).abs() < 1e-9, "{}", row.mean);
    assert!((row.best_mean - 83.5).abs() < 1e-9);
    assert_eq!(row.losses, vec![None, Some(0.5)]);
    let s = rep.summary_markdown();
    assert!(
        s.contains("not recorded for 1 of 2 children (uniform-r2 seed 0)"),
        "{s}"
    );
    // Against that baseline a method's cross-entropy is paired on seed 13 only, and says so.
    let mut with = rep.clone();
    with.records
        .push(rec_l("static-grad-norm", "static", 0, 0.81, 0.45));
    with.records
        .push(rec_l("static-grad-norm", "static", 13, 0.82, 0.47));
    let s = with.summary_markdown();
    // +1, 0: mean +0.5, SD_d 0.71, t_0.975,1 = 12.706.
    assert!(
        s.contains(
            "paired difference +0.50 points over 2 seeds, 95% t interval [-5.85, +6.85] (1 df)"
        ),
        "{s}"
    );
    assert!(
        s.contains("Dev cross-entropy at the last epoch: paired difference -0.030 over 1 seed, no interval (1 of 2 seeds: the other record keeps the cross-entropy only at the best epoch, which was not the last)."),
        "{s}"
    );
    assert!(rep.table_markdown().contains("| 0.500 ± 0.000 (1 of 2) |"));
}

#[test]
fn shortcut_methods_are_held_against_their_own_baseline() {
    assert_eq!(baseline_of("uniform-r2"), None);
    assert_eq!(baseline_of("static-grad-norm"), Some(BASELINE));
    assert_eq!(baseline_of("sc-uniform-r2"), Some(BASELINE));
    assert_eq!(baseline_of("sc-dynamic-combined"), Some(SC_BASELINE));
    assert_eq!(baseline_of("sc-something-new"), Some(SC_BASELINE));
    let mut sc = pair_report([3.0, 3.5, 2.9]);
    for (seed, b, h) in [(0, 0.75, 0.72), (13, 0.76, 0.73), (42, 0.77, 0.745)] {
        sc.records.push(rec("sc-uniform-r2", "uniform", seed, b));
        sc.records
            .push(rec("sc-dynamic-combined", "dynamic", seed, h));
        // A proxy choosing grad-norm's slots trains identically: tied, both named.
        let mut twin = sc
            .records
            .iter()
            .find(|r| r.method == "static-grad-norm" && r.seed == seed)
            .unwrap()
            .clone();
        twin.method = "static-snip-w0".into();
        twin.key = format!("t/static-snip-w0/seed{seed}");
        sc.records.push(twin);
    }
    let s = sc.summary_markdown();
    assert!(
        s.contains("against its uniform baseline sc-uniform-r2 (18432 adapter parameters): last-epoch accuracy 76.00 ± 1.00"),
        "{s}"
    );
    assert!(
        s.contains("(sc-dynamic-combined, 18432 adapter parameters) against sc-uniform-r2: last-epoch accuracy 73.17 ± 1.26"),
        "{s}"
    );
    // -3.0, -3.0, -2.5 against sc-uniform-r2.
    assert!(
        s.contains("paired difference -2.83 points over 3 seeds"),
        "{s}"
    );
    assert!(
        s.contains(
            "dynamic HeteroLoRA with shortcuts, separated (sc-dynamic-separated): not finished yet"
        ),
        "{s}"
    );
    assert!(
        s.contains("static-grad-norm, static-snip-w0 (tied, same per-seed results) at 83.13"),
        "{s}"
    );
}

#[test]
fn sample_std_and_flat_scores() {
    let (m, s) = mean_std(&[1.0, 2.0, 3.0]);
    assert_eq!(m, 2.0);
    assert!((s - 1.0).abs() < 1e-12);
    assert_eq!(mean_std(&[5.0]), (5.0, 0.0));
    let flat = Scores {
        proxy: "snip".into(),
        values: [(SlotId::new(0, crate::adapters::SlotKind::Query), 0.0)].into(),
        rank_gains: None,
        num_batches: 1,
        seconds: 0.0,
    };
    assert!(is_flat(&flat));
    assert_eq!(fmt_secs(90.0), "1.5 min");
}

#[test]
fn a_regression_study_names_its_loss_mean_squared_error() {
    let mut records = vec![];
    for (seed, base) in [(0u64, 0.80), (1, 0.82), (2, 0.81)] {
        for (m, fam, d) in [
            ("uniform-r2", "uniform", 0.0),
            ("static-grad-norm", "static", 0.01),
        ] {
            let mut r = rec_l(m, fam, seed, base + d, 0.6 - d);
            r.task = "stsb".into();
            r.metric = "pearson".into();
            r.last_metrics = [
                ("pearson".to_string(), base + d),
                ("loss".to_string(), 0.6 - d),
            ]
            .into();
            records.push(r);
        }
    }
    let rep = report(records);
    assert_eq!(rep.loss_name(), "mean squared error");
    let md = rep.table_markdown();
    assert!(md.contains("| dev MSE, last epoch (mean ± std) |"), "{md}");
    assert!(md.contains("| pearson, last epoch (mean ± std) |"), "{md}");
    let s = rep.summary_markdown();
    assert!(
        s.contains("with dev mean squared error at the last epoch beside it"),
        "{s}"
    );
    assert!(
        s.contains(
            "Dev mean squared error at the last epoch: paired difference -0.010 over 3 seeds"
        ),
        "{s}"
    );
    assert!(!s.contains("cross-entropy"), "{s}");
    // Classification keeps its cross-entropy.
    assert_eq!(pair_report([1.0, 2.0, 3.0]).loss_name(), "cross-entropy");
}

#[test]
fn the_protocol_line_is_the_one_the_records_ran_under() {
    let cpu = crate::study::Protocol::cpu();
    let mut ran = cpu.clone();
    ran.lora_alpha = crate::adapters::AlphaRule::PER_RANK_2R;
    let mut a = rec("uniform-r2", "uniform", 0, 0.8);
    let b = rec("random", "random", 0, 0.8);
    // Without settings in any record the configured protocol is described.
    assert_eq!(
        report(vec![a.clone(), b.clone()]).protocol_line(&cpu),
        cpu.describe()
    );
    a.protocol_settings = Some(ran.clone());
    let line = report(vec![a.clone(), b.clone()]).protocol_line(&cpu);
    assert_eq!(line, ran.describe());
    assert_ne!(line, cpu.describe());
    let mut c = rec("static-grad-norm", "static", 0, 0.8);
    c.protocol_settings = Some(cpu.clone());
    assert!(report(vec![a, b, c])
        .protocol_line(&cpu)
        .starts_with("2 protocols among the records: "));
}

#[test]
fn the_bootstrap_resamples_dev_examples_where_records_carry_predictions() {
    use crate::data::Task;
    use crate::study::stats::BootstrapLevels;
    use crate::train::DevPredictions;
    let mut rng = crate::rng::Rng::new(5);
    let labels: Vec<f32> = (0..50).map(|_| rng.below(2) as f32).collect();
    let mut recs = Vec::new();
    for seed in 0..3 {
        for (method, family, flip) in [
            ("uniform-r2", "uniform", 30),
            ("static-grad-norm", "static", 15),
            ("random", "random", 25),
        ] {
            let predictions: Vec<f32> = labels
                .iter()
                .map(|&y| if rng.below(100) < flip { 1.0 - y } else { y })
                .collect();
            let dev = DevPredictions {
                predictions,
                labels: labels.clone(),
            };
            let acc = dev.metric(Task::Mrpc, "accuracy").unwrap();
            let mut r = rec_l(method, family, seed, acc, 0.5);
            r.dev_predictions = Some(dev);
            recs.push(r);
        }
    }
    // Every record has its predictions: both comparisons resample the dev examples, and the
    // bootstrap's estimate is the paired t mean (both in points).
    let rep = report(recs.clone());
    for row in rep.rows().iter().filter(|r| r.method != "uniform-r2") {
        let c = row.comparison.as_ref().unwrap();
        let b = c.bootstrap.as_ref().unwrap();
        assert_eq!(
            b.levels,
            BootstrapLevels::SeedsAndExamples,
            "{}",
            row.method
        );
        assert!((b.estimate - c.t.mean).abs() < 1e-9, "{b:?} vs {:?}", c.t);
    }
    let s = rep.summary_markdown();
    assert!(
        s.contains("Every comparison's child records carry each dev example's prediction"),
        "{s}"
    );
    // Without one random record's predictions, random falls back to the seed level, and the
    // summary says which comparison used which.
    let i = recs
        .iter()
        .position(|r| r.method == "random" && r.seed == 1)
        .unwrap();
    recs[i].dev_predictions = None;
    let rep = report(recs);
    let rows = rep.rows();
    let level = |m: &str| {
        let row = rows.iter().find(|r| r.method == m).unwrap();
        row.comparison
            .as_ref()
            .unwrap()
            .bootstrap
            .as_ref()
            .unwrap()
            .levels
    };
    assert_eq!(level("static-grad-norm"), BootstrapLevels::SeedsAndExamples);
    assert_eq!(level("random"), BootstrapLevels::Seeds);
    let s = rep.summary_markdown();
    assert!(
        s.contains("two-level bootstrap (seeds, then the dev examples within each seed, the same examples for both arms, accuracy recomputed on every resample) for static-grad-norm and the seed-level bootstrap")
            && s.contains("for random, whose records"),
        "{s}"
    );
}
