//! Decoders through the main path: a [`TrainJob`] on the Llama fixture (grouped-query attention,
//! the gate) and a GLUE-format MRPC folder written here, with the fixture's own tokenizer; then
//! `heterolora predict` and the library's predict on the saved adapters reproduce the dev
//! metrics, and `heterolora score` / `heterolora train --model <fixture>` run through the binary.

use crate::util::{fixture, glue_root, output_of};
use candle_core::{DType, Device};
use heterolora::adapters::{SearchSpace, SlotKind, SlotTable};
use heterolora::data::Task;
use heterolora::model::{AdaptedClassifier, Classifier, HeadPooling};
use heterolora::predict::{self, Which};
use heterolora::train::{MemoryLogger, Precision, TrainConfig, TrainJob};
use std::process::Command;

fn config() -> TrainConfig {
    TrainConfig::default()
        .lr(1e-2)
        .epochs(4)
        .batch_size(8)
        .max_len(32)
        .seed(0)
        .device("cpu".to_string())
        .quiet(true)
}

#[test]
fn a_decoder_trains_through_the_train_job_and_predict_reproduces_its_dev_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let glue = glue_root(dir.path(), 48, 20);
    let model_dir = fixture("llama");
    let out = dir.path().join("run");
    // `cls`, the command line's default read-out, is BERT's: a decoder drops it.
    let job = TrainJob::new(Task::Mrpc, "uniform:q,v,gate:r=4")
        .config(config().head(Some(HeadPooling::Cls)))
        .model_dir(&model_dir)
        .glue_dir(&glue)
        .output(&out);
    let mut trainer = job.build().unwrap();
    assert!(matches!(trainer.model(), Classifier::Decoder(_)));
    // Sized with the model's slot table: q 32 -> 32, v 32 -> 16 (2 key-value heads of 8), gate
    // 32 -> 48, rank 4, two layers.
    let table: SlotTable = trainer.model().slot_table();
    let per_layer = 4 * (32 + 32) + 4 * (32 + 16) + 4 * (32 + 48);
    let mut log = MemoryLogger::default();
    let result = trainer.fit(&mut log).unwrap();
    let param = |k: &str| {
        log.params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("param {k} not logged"))
    };
    assert_eq!(
        param("allocation.adapter_params"),
        (2 * per_layer).to_string()
    );
    assert_eq!(param("allocation.num_slots"), "6");
    assert_eq!(table.dims(SlotKind::Value), Some((32, 16)));
    assert_eq!(param("head"), "none", "cls is BERT's read-out");

    let losses: Vec<f64> = result.epoch_evals().iter().map(|e| e.train_loss).collect();
    println!("epoch train losses {losses:?}");
    assert_eq!(losses.len(), 4);
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    assert!(losses[3] < losses[0], "loss did not decrease: {losses:?}");
    for f in ["adapter_config.json", "adapter_model.safetensors"] {
        assert!(out.join("final").join(f).is_file(), "final/{f}");
    }
    let expected = trainer.evaluate().unwrap();
    println!("dev metrics {expected:?}");

    // The library's predict on the saved adapters.
    let adir = predict::resolve_adapter_dir(&out, Which::Final).unwrap();
    let file = predict::read_tsv(Task::Mrpc, &glue.join("MRPC/dev.tsv")).unwrap();
    let m = predict::load_model(&model_dir, &adir, Task::Mrpc, &Device::Cpu).unwrap();
    assert_eq!(m.enabled_slots().len(), 6);
    let data = predict::encode(&model_dir, &file, 32).unwrap();
    let preds = predict::predict(&m, &data, predict::EVAL_BATCH_SIZE).unwrap();
    let got = preds.metrics(&data.labels_f32().unwrap()).unwrap();
    for (k, v) in &expected {
        assert!(
            (got[k] - v).abs() < 1e-6,
            "{k}: predict {} vs trainer {v}",
            got[k]
        );
    }

    // The command line: `heterolora predict <run> --model <fixture>`.
    let o = Command::new(env!("CARGO_BIN_EXE_heterolora"))
        .arg("predict")
        .arg(&out)
        .args([
            "--task",
            "mrpc",
            "--max-len",
            "32",
            "--format",
            "json",
            "--no-track",
        ])
        .args(["--device", "cpu", "--model"])
        .arg(&model_dir)
        .arg("--glue")
        .arg(&glue)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    let acc = v["metrics"]["accuracy"].as_f64().unwrap();
    assert!((acc - expected["accuracy"]).abs() < 1e-9, "{v}");
    let loss = v["metrics"]["loss"].as_f64().unwrap();
    assert!((loss - expected["loss"]).abs() < 1e-6, "{v}");
}

#[test]
fn decoders_train_in_bf16_mixed_precision_with_f32_adapters_and_head() {
    let dir = tempfile::tempdir().unwrap();
    let glue = glue_root(dir.path(), 48, 20);
    for model in ["llama", "opt_pre"] {
        let job = TrainJob::new(Task::Mrpc, "uniform:q,v:r=4")
            .config(config().precision(Precision::Bf16))
            .model_dir(fixture(model))
            .glue_dir(&glue);
        let mut trainer = job.build().unwrap();
        assert_eq!(trainer.model().dtype(), DType::BF16, "{model}");
        let result = trainer.fit(&mut MemoryLogger::default()).unwrap();
        for (name, v) in trainer.model().trainable_vars() {
            assert_eq!(v.dtype(), DType::F32, "{model} {name}");
        }
        let losses: Vec<f64> = result.epoch_evals().iter().map(|e| e.train_loss).collect();
        assert!(losses.iter().all(|l| l.is_finite()), "{model} {losses:?}");
        assert!(
            losses[3] < losses[0],
            "{model}: loss did not decrease: {losses:?}"
        );
    }
}

#[test]
fn a_bert_only_head_or_kind_on_a_decoder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let glue = glue_root(dir.path(), 16, 8);
    let err = |model: &str, alloc: &str, cfg: TrainConfig| {
        TrainJob::new(Task::Mrpc, alloc)
            .config(cfg)
            .model_dir(fixture(model))
            .glue_dir(&glue)
            .build()
            .err()
            .unwrap_or_else(|| panic!("{model} {alloc}: built"))
            .to_string()
    };
    let e = err(
        "llama",
        "uniform:q,v:r=2",
        config().head(Some(HeadPooling::Mean)),
    );
    assert!(e.contains("llama") && e.contains("mean"), "{e}");
    let e = err("opt_pre", "uniform:gate:r=2", config());
    assert!(e.contains("opt"), "{e}");
}

fn cli(args: &[&str], model: &std::path::Path, glue: &std::path::Path) -> (bool, String, String) {
    output_of(
        &mut Command::new(env!("CARGO_BIN_EXE_heterolora"))
            .args(args)
            .arg("--model")
            .arg(model)
            .arg("--glue")
            .arg(glue),
    )
}

#[test]
fn score_and_train_take_a_decoder_folder_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let glue = glue_root(dir.path(), 24, 8);
    let scores = dir.path().join("scores.json");
    let scores_s = scores.to_str().unwrap();
    for (name, space) in [("llama", "q,v,gate"), ("qwen2", "all"), ("opt_pre", "q,v")] {
        // The slots the model has of the space (`all` takes the gate of Llama and Qwen2).
        let model =
            Classifier::from_pretrained(&fixture(name), 2, DType::F32, &Device::Cpu, 0).unwrap();
        let n = model
            .slot_table()
            .slots(&SearchSpace::parse_kinds(space).unwrap())
            .len();
        // Llama: q, v, gate in 2 layers; Qwen2: 7 LoRA kinds and 4 shortcuts (no shortcut2 in
        // layer 0); OPT: q, v.
        let expected = match name {
            "llama" => 6,
            "qwen2" => 2 * 7 + 4 + 3,
            _ => 4,
        };
        assert_eq!(n, expected, "{name} {space}");
        let (ok, stdout, stderr) = cli(
            &[
                "score",
                "--task",
                "mrpc",
                "--proxy",
                "grad-norm,w0-grad-norm",
                "--space",
                space,
                "--batches",
                "2",
                "--batch-size",
                "4",
                "--max-len",
                "32",
                "--device",
                "cpu",
                "--no-track",
                "--format",
                "json",
                "--out",
                scores_s,
            ],
            &fixture(name),
            &glue,
        );
        assert!(ok, "{name}: {stdout}\n{stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
        for s in v["scores"].as_array().unwrap() {
            let values = s["values"].as_object().unwrap();
            assert_eq!(values.len(), n, "{name} {space}: {s}");
            assert!(
                values.values().all(|x| x.as_f64().unwrap().is_finite()),
                "{s}"
            );
        }
    }
    // SynFlow needs BERT's embeddings path: an error naming the architecture.
    let (ok, _, stderr) = cli(
        &[
            "score",
            "--task",
            "mrpc",
            "--proxy",
            "synflow",
            "--batches",
            "1",
            "--batch-size",
            "4",
            "--device",
            "cpu",
            "--no-track",
            "--out",
            scores_s,
        ],
        &fixture("qwen2"),
        &glue,
    );
    assert!(
        !ok && stderr.contains("qwen2") && stderr.contains("BERT"),
        "{stderr}"
    );

    let out = dir.path().join("run");
    let db = dir.path().join("mlflow.db");
    let (ok, stdout, stderr) = cli(
        &[
            "train",
            "--task",
            "mrpc",
            "--allocation",
            "uniform:q,v,gate:r=2",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--max-len",
            "32",
            "--device",
            "cpu",
            "--quiet",
            "--output",
            out.to_str().unwrap(),
            "--tracking-uri",
            db.to_str().unwrap(),
        ],
        &fixture("llama"),
        &glue,
    );
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        out.join("final/adapter_model.safetensors").is_file(),
        "{stdout}"
    );
    assert!(stdout.contains("accuracy"), "{stdout}");
}
