//! The trainer on the real all-MiniLM-L6-v2 and real MRPC data: a two-step smoke run through
//! `TrainJob` (what `heterolora train` runs) into a real tracker store.
//!
//! Needs `datasets/models/all-MiniLM-L6-v2` and `datasets/glue/MRPC` (or HETEROLORA_MODEL_DIR /
//! HETEROLORA_GLUE_DIR); fails with the fetch command to run when they are missing.

use heterolora::assets;
use heterolora::data::Task;
use heterolora::tracking::{RunStatus, Tracker};
use heterolora::train::{TrainConfig, TrainJob};

#[test]
fn two_steps_on_mrpc_log_a_finished_run_with_checkpoint_and_adapters() -> heterolora::Result<()> {
    let model_dir = assets::require_model_dir("all-MiniLM-L6-v2")?;
    let glue = assets::require_glue_dir(Task::Mrpc)?;
    let tmp = tempfile::tempdir().unwrap();
    let tracker = Tracker::open_path(&tmp.path().join("mlflow.db"))?;
    let mut run = tracker.start_run("mrpc", "smoke")?;
    let out = tmp.path().join("out");
    let cfg = TrainConfig::default()
        .lr(1e-3)
        .batch_size(8)
        .max_steps(Some(2))
        .eval_batch_size(16)
        .log_every(1)
        .quiet(true);
    let result = TrainJob::new(Task::Mrpc, "uniform:q,v:r=8")
        .config(cfg)
        .model_dir(&model_dir)
        .glue_dir(&glue)
        .limit_train(Some(16))
        .limit_dev(Some(16))
        .output(&out)
        .run(&mut run)?;
    assert_eq!(result.status, RunStatus::Finished);
    assert_eq!(result.steps, 2);
    // 12 modules * 8 * (384 + 384) adapter parameters + the 2 x 385 head.
    assert_eq!(result.trainable_params, 73_728 + 770);
    let id = run.run_id().to_string();
    let data = tracker.get_run(&id)?;
    assert_eq!(tracker.run_info(&id)?.status, "FINISHED");
    let params = format!("{:?}", data);
    assert!(params.contains("uniform:q,v:r=8"), "{params}");
    let loss = tracker.metric_history(&id, "train_loss")?;
    assert_eq!(loss.len(), 2);
    assert!(loss.values().iter().all(|v| v.is_finite()));
    assert_eq!(tracker.metric_history(&id, "dev_accuracy")?.len(), 1);
    let artifacts = tracker.list_artifacts(&id)?;
    assert!(
        artifacts.iter().any(|a| a == "allocation.json"),
        "{artifacts:?}"
    );
    assert!(
        artifacts.iter().any(|a| a.starts_with("adapters/")),
        "{artifacts:?}"
    );
    assert!(out.join("checkpoint/state.json").is_file());
    assert!(out.join("final/adapter_model.safetensors").is_file());
    Ok(())
}
