//! MLflow's system tags (the UI and `mlflow.search_runs` give them meaning).

/// The run's name (also stored in `runs.name`).
pub const RUN_NAME: &str = "mlflow.runName";
pub const USER: &str = "mlflow.user";
pub const SOURCE_NAME: &str = "mlflow.source.name";
pub const SOURCE_TYPE: &str = "mlflow.source.type";
pub const SOURCE_GIT_COMMIT: &str = "mlflow.source.git.commit";
/// Markdown description shown in the UI.
pub const NOTE: &str = "mlflow.note.content";
/// Set on a nested run: the id of its parent (e.g. the sweep of a trial).
pub const PARENT_RUN_ID: &str = "mlflow.parentRunId";
/// Our own: why a run ended FAILED without `end()` (dropped, panicked).
pub const END_REASON: &str = "heterolora.end_reason";
/// Experiment tag: which of MLflow 3's views the UI opens an experiment in. Without it MLflow 3
/// guesses, and may show a model-training experiment in its GenAI (traces) view.
pub const EXPERIMENT_KIND: &str = "mlflow.experimentKind";
/// The [`EXPERIMENT_KIND`] of model training ("Machine learning" in the UI; the other choice
/// is `genai_development`).
pub const EXPERIMENT_KIND_MODEL_TRAINING: &str = "custom_model_development";
