//! `heterolora predict` on a tiny random BERT with a hand-made WordPiece tokenizer: adapters
//! saved by a short training give, on a labelled TSV, exactly the metrics the trainer computed
//! for them; a GLUE test file (no labels) gives a well-formed submission file, tracked.

use candle_core::{DType, Device};
use heterolora::data::{GlueDataset, Split, Task, Tokenizer};
use heterolora::model::{BertConfig, SequenceClassifier};
use heterolora::predict::{self, Predictions, Which};
use heterolora::tracking::{MemoryLogger, Tracker};
use heterolora::train::{parse_allocation, TrainConfig, Trainer};
use std::path::Path;
use std::process::Command;

const WORDS: [&str; 12] = [
    "good", "bad", "the", "film", "movie", "was", "is", "a", "plot", "fine", "dull", "story",
];

/// A BERT-style WordPiece tokenizer over `WORDS` (ids 0-3 special, words from 4).
fn tokenizer_json() -> String {
    let mut vocab = serde_json::Map::new();
    for (i, t) in ["[PAD]", "[UNK]", "[CLS]", "[SEP]"].iter().enumerate() {
        vocab.insert(t.to_string(), i.into());
    }
    for (i, w) in WORDS.iter().enumerate() {
        vocab.insert(w.to_string(), (i + 4).into());
    }
    let special = |id: u32, s: &str| {
        serde_json::json!({"id": id, "content": s, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true})
    };
    serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [special(0, "[PAD]"), special(1, "[UNK]"), special(2, "[CLS]"), special(3, "[SEP]")],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
            "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100, "vocab": vocab}
    })
    .to_string()
}

/// A tiny random model folder: config.json + model.safetensors + tokenizer.json.
fn model_dir(dir: &Path) {
    SequenceClassifier::random(&BertConfig::tiny(), 2, DType::F32, &Device::Cpu, 3)
        .unwrap()
        .save_merged(dir)
        .unwrap();
    std::fs::write(dir.join("tokenizer.json"), tokenizer_json()).unwrap();
}

/// MRPC-layout rows: label 1 pairs start with "good", label 0 with "bad".
fn mrpc_rows(n: usize, seed: usize, labelled: bool) -> String {
    let mut s = if labelled {
        "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n".to_string()
    } else {
        "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n".to_string()
    };
    for i in 0..n {
        let label = (i * 7 + seed) % 3 % 2;
        let a = format!(
            "{} {} {}",
            if label == 1 { "good" } else { "bad" },
            WORDS[2 + (i + seed) % 10],
            WORDS[2 + (i * 3) % 10]
        );
        let b = format!("{} {}", WORDS[2 + (i * 5 + seed) % 10], WORDS[(i + 1) % 12]);
        let first = if labelled { label } else { i + 100 };
        s += &format!("{first}\t{}\t{}\t{a}\t{b}\n", 1000 + i, 2000 + i);
    }
    s
}

#[test]
fn predict_reproduces_the_trainers_metrics_and_writes_a_submission() {
    let dir = tempfile::tempdir().unwrap();
    let mdir = dir.path().join("model");
    model_dir(&mdir);
    for (name, n, seed, labelled) in [
        ("train.tsv", 48, 1, true),
        ("dev.tsv", 70, 2, true),
        ("test.tsv", 9, 3, false),
    ] {
        std::fs::write(dir.path().join(name), mrpc_rows(n, seed, labelled)).unwrap();
    }
    let tok = Tokenizer::from_model_dir(&mdir, 32).unwrap();
    let enc = |name: &str, split| {
        tok.encode_dataset(
            &GlueDataset::from_file(Task::Mrpc, split, dir.path().join(name)).unwrap(),
        )
        .unwrap()
    };
    let (train, dev) = (enc("train.tsv", Split::Train), enc("dev.tsv", Split::Dev));

    // A short training that saves its adapters (final/ and best/) like `heterolora train`.
    let model = SequenceClassifier::from_pretrained(&mdir, 2, DType::F32, &Device::Cpu, 5).unwrap();
    let alloc = parse_allocation("uniform:q,v:r=4", &model.dims()).unwrap();
    let cfg = TrainConfig::default()
        .lr(1e-2)
        .epochs(2)
        .batch_size(8)
        .max_len(32)
        .quiet(true);
    let out = dir.path().join("run");
    let mut trainer = Trainer::new(model, alloc, train, dev.clone(), cfg)
        .unwrap()
        .with_output_dir(&out);
    trainer.fit(&mut MemoryLogger::default()).unwrap();
    let expected = trainer.evaluate().unwrap();

    // The run folder resolves to final/; the library path gives the same metrics.
    let adir = predict::resolve_adapter_dir(&out, Which::Final).unwrap();
    assert!(adir.ends_with("final"));
    assert!(predict::resolve_adapter_dir(&out, Which::Best)
        .unwrap()
        .ends_with("best"));
    let file = predict::read_tsv(Task::Mrpc, &dir.path().join("dev.tsv")).unwrap();
    assert!(file.is_labelled());
    let m = predict::load_model(&mdir, &adir, Task::Mrpc, &Device::Cpu).unwrap();
    let data = predict::encode(&mdir, &file, 32).unwrap();
    let preds = predict::predict(&m, &data, predict::EVAL_BATCH_SIZE).unwrap();
    let got = preds.metrics(&data.labels_f32().unwrap()).unwrap();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (k, v) in &expected {
        assert!(
            (got[k] - v).abs() < 1e-6,
            "{k}: predict {} vs trainer {v}",
            got[k]
        );
    }

    // The command line: a labelled file prints the metrics; a test file writes the submission.
    let db = dir.path().join("mlflow.db");
    let cli = |file: &str, extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_heterolora"))
            .arg("predict")
            .arg(&out)
            .args(["--task", "mrpc", "--max-len", "32", "--format", "json"])
            .arg("--model")
            .arg(&mdir)
            .arg("--file")
            .arg(dir.path().join(file))
            .arg("--tracking-uri")
            .arg(&db)
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_str::<serde_json::Value>(&stdout).expect("one JSON document")
    };
    let v = cli("dev.tsv", &[]);
    assert_eq!(v["labelled"], true);
    let acc = v["metrics"]["accuracy"].as_f64().unwrap();
    assert!((acc - expected["accuracy"]).abs() < 1e-9, "{v}");

    let sub = dir.path().join("sub/MRPC.tsv");
    let v = cli("test.tsv", &["--out", sub.to_str().unwrap()]);
    assert_eq!(v["labelled"], false);
    assert!(v["metrics"].is_null());
    let text = std::fs::read_to_string(&sub).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "index\tprediction");
    assert_eq!(lines.len(), 10, "{text}");
    for (i, l) in lines[1..].iter().enumerate() {
        let (idx, p) = l.split_once('\t').unwrap();
        assert_eq!(idx, (i + 100).to_string(), "the test file's index column");
        assert!(p == "0" || p == "1", "{l}");
    }
    // Tracked: params, metrics of the labelled file, predictions as an artifact.
    let tracker = Tracker::open_path(&db).unwrap();
    let runs = tracker
        .search_runs(&["predict-mrpc"], "tags.`heterolora.kind` = 'predict'", &[])
        .unwrap();
    assert_eq!(runs.len(), 2);
    for id in runs.run_ids() {
        let r = tracker.get_run(&id).unwrap();
        assert!(r.params["adapter"].ends_with("final"));
        assert!(r.params.contains_key("file"));
        assert_eq!(
            r.metrics.contains_key("accuracy"),
            r.params["labelled"] == "true"
        );
        assert!(tracker
            .list_artifacts(&id)
            .unwrap()
            .iter()
            .any(|a| a.ends_with("predictions.tsv")));
    }
}

#[test]
fn submission_labels_are_the_ones_glue_expects() {
    let rte = Predictions {
        task: Task::Rte,
        logits: vec![2.0, 1.0, 0.0, 3.0],
        loss: None,
    };
    assert_eq!(
        rte.submission_tsv(&["0".into(), "1".into()]),
        "index\tprediction\n0\tentailment\n1\tnot_entailment\n"
    );
    let stsb = Predictions {
        task: Task::Stsb,
        logits: vec![3.14159, 7.0, -1.0],
        loss: None,
    };
    assert_eq!(
        stsb.submission_tsv(&["0".into(), "1".into(), "2".into()]),
        "index\tprediction\n0\t3.142\n1\t5.000\n2\t0.000\n"
    );
}
