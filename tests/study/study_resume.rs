//! A study child stopped in the middle of training (Ctrl-C, `--stop-after`, a killed process)
//! continues from its checkpoint next time and ends exactly where an uninterrupted child ends:
//! same dev metrics after every epoch, same allocation, same re-allocations, same predictions.

use crate::study_util::*;
use heterolora::study::{ChildPlan, ChildRecord, StudyConfig};
use heterolora::train::{checkpoint, TrainHook};
use std::path::Path;

/// Runs the study once; the child of `method` (if any) is stopped after `steps` steps.
fn run_stopping(dir: &Path, cfg: &StudyConfig, stop: Option<(&'static str, usize)>) -> Vec<String> {
    let mut s = study(dir, cfg.clone(), vec![]);
    if let Some((method, steps)) = stop {
        let flag = s.stop.clone();
        s.child_hooks = Some(Box::new(move |child: &ChildPlan| {
            if child.method.name == method {
                vec![Box::new(StopAt {
                    at: steps - 1,
                    flag: flag.clone(),
                }) as Box<dyn TrainHook>]
            } else {
                vec![]
            }
        }));
    }
    let mut lines = Vec::new();
    let out = s.run(&mut |l| lines.push(l.to_string())).unwrap();
    assert!(out.failed.is_empty(), "{lines:?}");
    if let Some((method, _)) = stop {
        let stopped = out.stopped.as_deref().unwrap_or_default();
        assert!(stopped.contains(method), "{lines:?}");
    }
    lines
}

fn record(cfg: &StudyConfig, method: &str) -> ChildRecord {
    ChildRecord::load(&cfg.children_dir().join(format!("{method}-seed0.json"))).unwrap()
}

fn assert_same(a: &ChildRecord, b: &ChildRecord) {
    let close = |x: &[f64], y: &[f64]| {
        x.len() == y.len() && x.iter().zip(y).all(|(p, q)| (p - q).abs() <= 1e-6)
    };
    assert!(
        close(&a.epoch_metrics, &b.epoch_metrics),
        "{}: {:?} vs {:?}",
        a.method,
        a.epoch_metrics,
        b.epoch_metrics
    );
    assert!(
        (a.last_metrics["loss"] - b.last_metrics["loss"]).abs() <= 1e-6,
        "{}: dev loss {} vs {}",
        a.method,
        a.last_metrics["loss"],
        b.last_metrics["loss"]
    );
    assert_eq!(a.allocation.ranks, b.allocation.ranks, "{}", a.method);
    assert_eq!(a.times_enabled, b.times_enabled, "{}", a.method);
    assert_eq!(a.num_reallocations, b.num_reallocations, "{}", a.method);
    assert_eq!(
        a.dev_predictions.as_ref().map(|d| &d.predictions),
        b.dev_predictions.as_ref().map(|d| &d.predictions),
        "{}",
        a.method
    );
}

#[test]
fn a_stopped_child_resumes_to_the_uninterrupted_result() {
    let straight_dir = tempfile::tempdir().unwrap();
    let straight = config(straight_dir.path(), "uniform-r2,dynamic-grad-norm", vec![0]);
    run_stopping(straight_dir.path(), &straight, None);

    // 32 training pairs at batch 4: 8 steps an epoch, 16 in all. The static child stops in its
    // first epoch (after step 6); the dynamic one after step 11, past a re-allocation (every half
    // epoch) and with more to come.
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "uniform-r2,dynamic-grad-norm", vec![0]);
    let uniform_ckpt = cfg.checkpoint_dir("uniform-r2", 0);
    let dynamic_ckpt = cfg.checkpoint_dir("dynamic-grad-norm", 0);

    run_stopping(dir.path(), &cfg, Some(("uniform-r2", 6)));
    assert!(
        checkpoint::locate(&uniform_ckpt).is_some(),
        "no checkpoint kept"
    );
    assert!(!cfg.children_dir().join("uniform-r2-seed0.json").exists());

    let lines = run_stopping(dir.path(), &cfg, Some(("dynamic-grad-norm", 11)));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("uniform-r2") && l.contains("finished")),
        "{lines:?}"
    );
    assert!(
        !uniform_ckpt.exists(),
        "a finished child keeps no checkpoint"
    );
    assert!(checkpoint::locate(&dynamic_ckpt).is_some());

    run_stopping(dir.path(), &cfg, None);
    assert!(
        !cfg.checkpoints_dir().exists(),
        "the empty checkpoints folder is removed"
    );

    for method in ["uniform-r2", "dynamic-grad-norm"] {
        let (a, b) = (record(&cfg, method), record(&straight, method));
        assert_same(&a, &b);
        assert_eq!(b.resumed_at_step, None);
    }
    assert_eq!(record(&cfg, "uniform-r2").resumed_at_step, Some(6));
    assert_eq!(record(&cfg, "dynamic-grad-norm").resumed_at_step, Some(11));
    assert!(record(&cfg, "dynamic-grad-norm").num_reallocations >= 4);
}

#[test]
fn a_checkpoint_of_another_allocation_is_refused_not_trained_on() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "uniform-r2", vec![0]);
    run_stopping(dir.path(), &cfg, Some(("uniform-r2", 3)));
    let from = cfg.checkpoint_dir("uniform-r2", 0);
    // The uniform child's checkpoint where static grad-norm (one slot at r = 8) looks for its own.
    let cfg = config(dir.path(), "static-grad-norm", vec![0]);
    let to = cfg.checkpoint_dir("static-grad-norm", 0);
    std::fs::rename(&from, &to).unwrap();
    let mut s = study(dir.path(), cfg.clone(), vec![]);
    let out = s.run(&mut |_| {}).unwrap();
    assert_eq!(out.failed.len(), 1);
    let e = &out.failed[0].1;
    assert!(
        e.contains("another allocation") && e.contains("delete that folder"),
        "{e}"
    );
    assert!(
        checkpoint::locate(&to).is_some(),
        "the checkpoint is left for the user to judge"
    );
}
