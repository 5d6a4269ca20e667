//! De-duplication on a tiny random BERT: a static child whose allocation equals a finished
//! child's (same seed and protocol) is recorded as that child's result without training; a
//! dynamic child is always trained.

use crate::study_util;

use heterolora::study::{ChildRecord, Method, StudyReport};
#[allow(unused_imports)]
use std::sync::atomic::{AtomicUsize, Ordering};
use study_util::*;

/// `static-grad-norm` under another name: the same proxy on the same data picks the same slots.
fn copy_of_grad_norm() -> Method {
    let mut m = Method::select(&["static-grad-norm".to_string()]).unwrap()[0].clone();
    m.name = "static-grad-norm-copy".into();
    m
}

#[test]
fn a_child_with_a_finished_childs_allocation_is_not_trained_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut methods = Method::select(&["static-grad-norm,dynamic-grad-norm".to_string()]).unwrap();
    methods.push(copy_of_grad_norm());
    let cfg = config(dir.path(), "static-grad-norm", vec![0, 13]).methods(methods);
    let mut s = study(dir.path(), cfg.clone(), vec![]);
    let mut lines = Vec::new();
    let out = s.run(&mut |l| lines.push(l.to_string())).unwrap();
    assert!(out.failed.is_empty(), "{:?}", out.failed);
    assert_eq!(out.finished.len(), 6, "{lines:?}");
    // The copy on both seeds; the dynamic method never (its allocation changes in training).
    let mut twins = out.twins.clone();
    twins.sort();
    assert_eq!(
        twins,
        vec![
            (
                "tiny/static-grad-norm-copy/seed0".to_string(),
                "static-grad-norm".to_string()
            ),
            (
                "tiny/static-grad-norm-copy/seed13".to_string(),
                "static-grad-norm".to_string()
            ),
        ],
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.contains("not trained")), "{lines:?}");

    let rep = StudyReport::collect(Some(&s.tracker), &cfg).unwrap();
    assert_eq!(rep.records.len(), 6);
    for seed in [0, 13] {
        let get = |m: &str| {
            rep.records
                .iter()
                .find(|r| r.method == m && r.seed == seed)
                .unwrap()
        };
        let (orig, copy) = (get("static-grad-norm"), get("static-grad-norm-copy"));
        assert_eq!(copy.twin_of(), Some("static-grad-norm"));
        assert_eq!(orig.twin_of(), None);
        assert_eq!(copy.best_metric, orig.best_metric);
        assert_eq!(copy.epoch_metrics, orig.epoch_metrics);
        assert_eq!(copy.last_metrics, orig.last_metrics);
        assert_eq!(copy.allocation.ranks, orig.allocation.ranks);
        assert!(copy.scores.is_some());
        assert_ne!(copy.run_id, orig.run_id, "the twin has its own run");
        assert_eq!(get("dynamic-grad-norm").twin_of(), None);
    }
    // The twin's run is tagged and finished; its committed record names the twin too.
    let twins = s
        .tracker
        .search_runs(
            &["study-mrpc"],
            "tags.`study.twin_of` = 'static-grad-norm' and attributes.status = 'FINISHED'",
            &[],
        )
        .unwrap();
    assert_eq!(twins.len(), 2);
    let committed = ChildRecord::load_dir(&cfg.children_dir()).unwrap();
    assert_eq!(
        committed.iter().filter(|r| r.twin_of().is_some()).count(),
        2
    );
    // The rows treat the twin as the result it copies.
    let rows = rep.rows();
    let row = |m: &str| rows.iter().find(|r| r.method == m).unwrap();
    assert_eq!(
        row("static-grad-norm-copy").mean,
        row("static-grad-norm").mean
    );
}
