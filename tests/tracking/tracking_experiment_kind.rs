//! Experiments the tracker creates or logs to carry MLflow 3's experiment kind tag, so that its
//! UI opens them in the model-training view rather than the GenAI one.

use heterolora::tracking::tags::{EXPERIMENT_KIND, EXPERIMENT_KIND_MODEL_TRAINING};
use heterolora::tracking::{RunStatus, Tracker};

fn kind(t: &Tracker, exp: &str) -> Option<String> {
    t.get_experiment(exp)
        .unwrap()
        .tags()
        .unwrap()
        .get(EXPERIMENT_KIND)
        .cloned()
}

#[test]
fn experiments_are_tagged_as_model_training() {
    assert_eq!(EXPERIMENT_KIND, "mlflow.experimentKind");
    assert_eq!(EXPERIMENT_KIND_MODEL_TRAINING, "custom_model_development");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mlflow.db");
    let t = Tracker::open_path(&db).unwrap();
    t.start_run("new", "r")
        .unwrap()
        .end(RunStatus::Finished)
        .unwrap();
    assert_eq!(kind(&t, "new").as_deref(), Some("custom_model_development"));

    // An experiment that lacks the tag (made before it existed) gets it when next logged to.
    t.experiment("old").unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "DELETE FROM experiment_tags WHERE \"key\" = ?1",
        [EXPERIMENT_KIND],
    )
    .unwrap();
    assert_eq!(kind(&t, "old"), None);
    t.experiment("old").unwrap();
    assert_eq!(kind(&t, "old").as_deref(), Some("custom_model_development"));

    // A kind the user chose in the UI stays.
    t.get_experiment("old")
        .unwrap()
        .set_tag(EXPERIMENT_KIND, "genai_development")
        .unwrap();
    t.start_run("old", "again")
        .unwrap()
        .end(RunStatus::Finished)
        .unwrap();
    assert_eq!(kind(&t, "old").as_deref(), Some("genai_development"));
}
