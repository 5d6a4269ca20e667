//! The study end to end on a tiny random BERT and a synthetic pair task: a 2-method x 2-seed
//! study runs as child runs of one parent; a second invocation skips the finished children (also
//! from the committed records alone, as on a fresh clone); a failing child is reported and the
//! others complete; the report is generated from the tracker; dynamic re-allocation runs.

use crate::study_util;

use heterolora::study::{ChildRecord, StudyReport};
use heterolora::tracking::RunStatus;
use study_util::*;

#[test]
fn study_runs_skips_reports_and_survives_failures() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "uniform-r2,static-grad-norm", vec![0, 13]);

    // A failing child (seed 13 cannot load) is reported; the others complete.
    let mut s = study(dir.path(), cfg.clone(), vec![13]);
    let plan = s.plan().unwrap();
    assert_eq!(plan.children.len(), 4);
    // Exact budgets: 4 q,v slots of 32x32 at r = 2 = 1 slot at r = 8 = 512.
    assert!(plan.children.iter().all(|c| c.budget.params == 512));
    let text = plan.to_string();
    assert!(
        text.contains("static-grad-norm") && text.contains("512"),
        "{text}"
    );
    let mut lines = Vec::new();
    let out = s.run(&mut |l| lines.push(l.to_string())).unwrap();
    assert_eq!(out.finished.len(), 2, "{lines:?}");
    assert_eq!(out.failed.len(), 2, "{lines:?}");
    assert!(out
        .failed
        .iter()
        .all(|(k, e)| k.ends_with("seed13") && e.contains("injected")));
    assert!(lines.iter().any(|l| l.contains("FAILED")));

    // The children are runs under one parent; the failed ones are FAILED with the error.
    let tracker = s.tracker.clone();
    let children = tracker.child_runs(&out.parent_run_id).unwrap();
    assert_eq!(children.len(), 4);
    let failed = tracker
        .search_runs(
            &["study-mrpc"],
            "attributes.status = 'FAILED' and tags.`study.seed` = '13'",
            &[],
        )
        .unwrap();
    assert_eq!(failed.len(), 2);
    assert!(failed
        .strings("tags.error")
        .iter()
        .all(|e| e.as_deref().unwrap_or("").contains("injected")));

    // Second invocation: finished children are skipped, the failed ones retried (now fine).
    let mut s = study(dir.path(), cfg.clone(), vec![]);
    let out2 = s.run(&mut |_| {}).unwrap();
    assert_eq!(out2.skipped.len(), 2);
    assert_eq!(out2.finished.len(), 2);
    assert!(out2.failed.is_empty());
    assert_eq!(
        out2.parent_run_id, out.parent_run_id,
        "the same parent run continues"
    );
    let out3 = s.run(&mut |_| {}).unwrap();
    assert_eq!((out3.skipped.len(), out3.finished.len()), (4, 0));

    // The report, from the tracker.
    let rep = StudyReport::collect(Some(&tracker), &cfg).unwrap();
    assert!(rep.notes.is_empty(), "{:?}", rep.notes);
    assert_eq!(rep.records.len(), 4);
    let rows = rep.rows();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].method, "uniform-r2");
    assert_eq!(rows[0].n, 2);
    assert_eq!(rows[0].delta, Some(0.0));
    let expect_mean = rep
        .records
        .iter()
        .filter(|r| r.method == "static-grad-norm")
        .map(|r| r.epoch_metrics.last().unwrap() * 100.0)
        .sum::<f64>()
        / 2.0;
    // The last epoch is the primary number; new records keep every dev metric at it.
    assert!(rep
        .records
        .iter()
        .all(|r| r.last_metrics.contains_key("loss") && r.last_metrics.contains_key("accuracy")));
    assert_eq!(rows[1].comparison.as_ref().unwrap().t.n, 2);
    assert!((rows[1].mean - expect_mean).abs() < 1e-9);
    let static_rec = rep
        .records
        .iter()
        .find(|r| r.method == "static-grad-norm")
        .unwrap();
    assert_eq!(static_rec.allocation.ranks.len(), 1);
    assert_eq!(static_rec.adapter_params, 512);
    assert!(static_rec.scores.as_ref().unwrap().values.len() == 4);
    let mut files = rep.write(&dir.path().join("out"), "test", "tiny").unwrap();
    files
        .extend(heterolora::plot::study::write_study_plots(&rep, &dir.path().join("out")).unwrap());
    for f in [
        "table.md",
        "table.csv",
        "runs.csv",
        "summary.md",
        "budget.svg",
    ] {
        assert!(
            files.iter().any(|p| p.ends_with(f)),
            "{f} missing from {files:?}"
        );
    }
    let summary = std::fs::read_to_string(dir.path().join("out/summary.md")).unwrap();
    assert!(
        summary.contains("Equal-budget baseline uniform-r2"),
        "{summary}"
    );
    assert!(summary.contains("static-grad-norm"), "{summary}");
    assert!(dir
        .path()
        .join("out/alloc/static-grad-norm-seed0.svg")
        .is_file());

    // A fresh clone: no tracker file, only the committed records; still nothing to run.
    let fresh = tempfile::tempdir().unwrap();
    let s = study(
        fresh.path(),
        cfg.clone().results_dir(dir.path().join("results")),
        vec![],
    );
    assert_eq!(s.completed_keys().unwrap().len(), 4);
    let rep2 = StudyReport::collect(None, &cfg).unwrap();
    assert_eq!(rep2.records.len(), 4);
    assert_eq!(rep2.table_markdown(), rep.table_markdown());
    assert_eq!(ChildRecord::load_dir(&cfg.children_dir()).unwrap().len(), 4);
}

#[test]
fn a_changed_protocol_needs_a_new_study_name() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "uniform-r2", vec![0]);
    study(dir.path(), cfg.clone(), vec![])
        .run(&mut |_| {})
        .unwrap();
    let mut other = cfg.clone();
    other.protocol.lr = 5e-3;
    let err = study(dir.path(), other, vec![])
        .run(&mut |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("another protocol"), "{err}");
    // A fresh tracker with only the committed child records: the records carry the settings.
    let fresh = tempfile::tempdir().unwrap();
    let mut other = cfg.clone();
    other.protocol.epochs += 1;
    let err = study(fresh.path(), other, vec![])
        .completed_keys()
        .unwrap_err();
    assert!(err.to_string().contains("another protocol"), "{err}");
    assert!(err.to_string().contains("children"), "{err}");
}

#[test]
fn dynamic_methods_reallocate_during_training() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "dynamic-grad-norm,sc-dynamic-separated",
        vec![0],
    );
    let mut s = study(dir.path(), cfg.clone(), vec![]);
    let out = s.run(&mut |_| {}).unwrap();
    assert_eq!(out.finished.len(), 2, "{:?}", out.failed);
    let rep = StudyReport::collect(Some(&s.tracker), &cfg).unwrap();
    let dynq = rep
        .records
        .iter()
        .find(|r| r.method == "dynamic-grad-norm")
        .unwrap();
    // 8 steps an epoch, every 0.5 epoch and at epoch starts over 2 epochs: steps 0, 4, 8, 12.
    assert_eq!(dynq.num_reallocations, 4);
    let times = dynq.times_enabled.as_ref().unwrap();
    assert_eq!(
        times.values().sum::<usize>(),
        4,
        "one slot on per re-allocation"
    );
    let sc = rep
        .records
        .iter()
        .find(|r| r.method == "sc-dynamic-separated")
        .unwrap();
    // Separated: the top LoRA slot and the top round(0.25 * 7) = 2 shortcut slots.
    assert_eq!(sc.allocation.ranks.len(), 3, "{:?}", sc.allocation.ranks);
    assert_eq!(
        sc.allocation
            .ranks
            .keys()
            .filter(|s| s.kind.is_shortcut())
            .count(),
        2
    );
}

#[test]
fn a_parent_written_before_a_protocol_field_existed_continues() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "uniform-r2", vec![0]);
    let mut s = study(dir.path(), cfg.clone(), vec![]);
    s.run(&mut |_| {}).unwrap();
    // Rewrite the parent's protocol tag as a version without `mean_init` wrote it.
    let exp = s.tracker.experiment(&cfg.experiment).unwrap();
    let found = exp
        .search_runs(
            "tags.`heterolora.kind` = 'study' and tags.`study.name` = 'tiny'",
            &[],
        )
        .unwrap();
    let id = found.run_ids().first().unwrap().clone();
    let json = found.strings("tags.study.protocol_json")[0]
        .clone()
        .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v.as_object_mut().unwrap().remove("mean_init").is_some());
    let mut parent = s.tracker.resume_run(&id).unwrap();
    parent
        .set_tags(&[("study.protocol_json", v.to_string())])
        .unwrap();
    parent.end(RunStatus::Finished).unwrap();
    // The old parent reads today's default: the same protocol, so the study continues.
    let out = study(dir.path(), cfg.clone(), vec![])
        .run(&mut |_| {})
        .unwrap();
    assert!(out.failed.is_empty(), "{:?}", out.failed);
    // A real difference is still refused.
    let mut other = cfg.clone();
    other.protocol.mean_init = false;
    let err = study(dir.path(), other, vec![])
        .run(&mut |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("another protocol"), "{err}");
}

#[test]
fn children_record_dev_predictions_and_older_records_get_them_from_their_adapters() {
    use heterolora::study::report::last_metric;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "uniform-r2,random", vec![0]);
    let children = cfg.children_dir();
    let mut s = study(dir.path(), cfg.clone(), vec![]);
    s.run(&mut |_| {}).unwrap();
    let recs = ChildRecord::load_dir(&children).unwrap();
    assert_eq!(recs.len(), 2);
    for r in &recs {
        let d = r
            .dev_predictions
            .as_ref()
            .expect("recorded as the child finished");
        assert_eq!(d.len(), 16);
        let got = d.metric(cfg.task, &r.metric).unwrap();
        assert!((got - last_metric(r).unwrap()).abs() < 1e-9, "{}", r.key);
    }

    // Records written before the field: the predictions come back from the runs' adapters,
    // identical to those recorded at the end of training.
    for r in &recs {
        let mut old = r.clone();
        old.dev_predictions = None;
        old.save_in(&children).unwrap();
    }
    let out = s.add_dev_predictions(&mut |_| {}).unwrap();
    assert_eq!(out.added.len(), 2, "{out:?}");
    assert!(out.failed.is_empty(), "{out:?}");
    assert_eq!(ChildRecord::load_dir(&children).unwrap(), recs);
    let out = s.add_dev_predictions(&mut |_| {}).unwrap();
    assert_eq!((out.present.len(), out.added.len()), (2, 0));

    // A record whose metric the saved adapters do not reproduce is left as it was.
    let mut wrong = recs[0].clone();
    wrong.dev_predictions = None;
    wrong.last_metrics.insert(wrong.metric.clone(), 0.123);
    let path = wrong.save_in(&children).unwrap();
    let out = s.add_dev_predictions(&mut |_| {}).unwrap();
    assert_eq!(out.failed.len(), 1, "{out:?}");
    assert!(
        out.failed[0].1.contains("the record says 0.123000"),
        "{out:?}"
    );
    assert!(ChildRecord::load(&path).unwrap().dev_predictions.is_none());
}

#[test]
fn a_bf16_study_scores_and_trains_in_mixed_precision_under_its_own_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), "static-grad-norm,dynamic-grad-norm", vec![0]);
    cfg.protocol.precision = heterolora::train::Precision::Bf16;
    let mut s = study(dir.path(), cfg.clone(), vec![]);
    let out = s.run(&mut |_| {}).unwrap();
    assert_eq!(out.finished.len(), 2, "{:?}", out.failed);
    let rep = StudyReport::collect(Some(&s.tracker), &cfg).unwrap();
    assert_eq!(rep.records.len(), 2);
    for r in &rep.records {
        let p = r
            .protocol_settings
            .as_ref()
            .expect("records carry the protocol");
        assert_eq!(p.precision, heterolora::train::Precision::Bf16, "{}", r.key);
        assert!(r.best_metric.is_some_and(f64::is_finite), "{}", r.key);
        assert!(r.epoch_metrics.iter().all(|m| m.is_finite()), "{}", r.key);
    }
    // An f32 continuation of the bf16 study is another protocol.
    let mut f32 = cfg.clone();
    f32.protocol.precision = heterolora::train::Precision::F32;
    let err = study(dir.path(), f32.clone(), vec![])
        .run(&mut |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("another protocol"), "{err}");
    // The proxy scored the bf16 model: its scores follow the f32 study's without equalling them.
    let other = tempfile::tempdir().unwrap();
    f32.results_dir = other.path().join("results");
    let mut s32 = study(other.path(), f32.clone(), vec![]);
    s32.run(&mut |_| {}).unwrap();
    let scores = |rep: &StudyReport| {
        let r = rep
            .records
            .iter()
            .find(|r| r.method == "static-grad-norm")
            .unwrap();
        r.scores
            .clone()
            .expect("a static method records its scores")
            .values
    };
    let (s16, s32) = (
        scores(&rep),
        scores(&StudyReport::collect(Some(&s32.tracker), &f32).unwrap()),
    );
    assert_eq!(s16.len(), s32.len());
    assert!(s16 != s32, "the bf16 study scored in f32: {s16:?}");
    for (slot, v) in &s32 {
        let rel = (s16[slot] - v).abs() / v.abs().max(1e-12);
        assert!(rel < 0.05, "{slot}: bf16 {} against f32 {v}", s16[slot]);
    }
}
