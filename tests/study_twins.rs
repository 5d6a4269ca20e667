//! De-duplication on a tiny random BERT: a static child whose allocation equals a finished
//! child's (same seed and protocol) is recorded as that child's result without training; a
//! dynamic child is always trained.

use candle_core::{DType, Device};
use heterolora::adapters::ModelDims;
use heterolora::data::{EncodedDataset, EncodedExample, Label, Split, Task};
use heterolora::model::{BertConfig, SequenceClassifier};
use heterolora::rng::Rng;
use heterolora::study::{
    ChildRecord, Loaded, Method, Protocol, Study, StudyConfig, StudyReport, StudySource,
};
use heterolora::tracking::Tracker;
use heterolora::{Error, Result};
use std::path::Path;
#[allow(unused_imports)]
use std::sync::atomic::{AtomicUsize, Ordering};

/// First segment repeats token 11 (label 1) or 12 (label 0); second segment random.
fn synthetic(n: usize, seed: u64, split: Split) -> EncodedDataset {
    let mut rng = Rng::new(seed);
    let examples = (0..n)
        .map(|_| {
            let la = 3 + rng.below(6);
            let lb = 2 + rng.below(6);
            let label = rng.below(2) as u32;
            let mut ids = vec![1u32];
            ids.extend(vec![12 - label; la]);
            ids.push(2);
            let mut type_ids = vec![0u32; ids.len()];
            ids.extend((0..lb).map(|_| 10 + rng.below(80) as u32));
            ids.push(2);
            type_ids.resize(ids.len(), 1);
            EncodedExample {
                ids,
                type_ids,
                label: Label::Class(label),
            }
        })
        .collect();
    EncodedDataset {
        task: Task::Mrpc,
        split,
        examples,
        pad_id: 0,
        max_len: 32,
    }
}

/// The tiny model and synthetic data; loading fails for the seeds in `fail_seeds`.
struct Tiny {
    fail_seeds: Vec<u64>,
}

impl StudySource for Tiny {
    fn load(&mut self, _task: Task, _max_len: usize, _device: &str, seed: u64) -> Result<Loaded> {
        if self.fail_seeds.contains(&seed) {
            return Err(Error::Other(format!("injected failure for seed {seed}")));
        }
        Ok(Loaded {
            model: SequenceClassifier::random(
                &BertConfig::tiny(),
                2,
                DType::F32,
                &Device::Cpu,
                seed,
            )?,
            train: synthetic(32, 1, Split::Train),
            dev: synthetic(16, 2, Split::Dev),
        })
    }
    fn dims(&mut self) -> Result<ModelDims> {
        let c = BertConfig::tiny();
        Ok(ModelDims {
            num_layers: c.num_hidden_layers,
            hidden_size: c.hidden_size,
            intermediate_size: c.intermediate_size,
        })
    }
    fn describe(&self) -> String {
        "tiny random BERT, synthetic pairs".into()
    }
}

fn protocol() -> Protocol {
    let mut p = Protocol::cpu();
    p.name = "tiny".into();
    p.epochs = 2;
    p.lr = 1e-2;
    p.batch_size = 4;
    p.scoring_batches = 2;
    p.scoring_batch_size = 4;
    p.dynamic_every = 0.5;
    p
}

fn config(dir: &Path, methods: &str, seeds: Vec<u64>) -> StudyConfig {
    StudyConfig::new(Task::Mrpc, protocol())
        .name("tiny")
        .methods(Method::select(&[methods.to_string()]).unwrap())
        .seeds(seeds)
        .results_dir(dir.join("results"))
}

fn study(dir: &Path, cfg: StudyConfig, fail_seeds: Vec<u64>) -> Study {
    let tracker = Tracker::open_path(&dir.join("mlflow.db")).unwrap();
    Study::new(cfg, tracker, Box::new(Tiny { fail_seeds }))
}

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
