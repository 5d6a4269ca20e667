//! The run tracker: MLflow-compatible SQLite that never loses a run, or an MLflow tracking
//! server through its REST API ([`rest`]).
//!
//! Every score, search and training run is logged to a local SQLite file (default
//! `tracking/mlflow.db`, or `$MLFLOW_TRACKING_URI`) that our tools query and that MLflow itself
//! opens (`mlflow ui --backend-store-uri sqlite:///tracking/mlflow.db`). Artifacts go under
//! `<db dir>/artifacts/<experiment_id>/<run_id>/artifacts/`.
//!
//! ```no_run
//! use heterolora::tracking::{RunStatus, Tracker};
//! let tracker = Tracker::open("sqlite:///tracking/mlflow.db")?;
//! let mut sweep = tracker.start_run("mrpc", "budget-sweep")?;
//! let mut trial = sweep.start_child("r8")?;          // nested run (mlflow.parentRunId)
//! trial.log_params(&[("r", 8), ("lora_alpha", 16)])?;
//! for step in 0..100 {
//!     trial.log_metric("loss", 1.0 / (step as f64 + 1.0), step)?; // buffered, batched writes
//! }
//! trial.log_json(&serde_json::json!({"layer.0.attention.value": 8}), "allocation.json")?;
//! trial.end(RunStatus::Finished)?;
//! sweep.end(RunStatus::Finished)?;
//! let runs = tracker.search_runs(&["mrpc"], "params.r = '8' and metrics.loss < 0.5", &["metrics.loss ASC"])?;
//! let curve = tracker.metric_history(&runs.run_ids()[0], "loss")?; // notebook: chart + summary
//! # Ok::<(), heterolora::Error>(())
//! ```
//!
//! Files:
//! - [`uri`]: path / `sqlite:///` URI / `http(s)://` server / `MLFLOW_TRACKING_URI` resolution;
//! - [`rest`]: the same API on an MLflow tracking server (spool and `runs sync` when it is away);
//! - [`schema`]: MLflow's schema (alembic 89d4b8295536) and the check of existing files;
//! - [`store`]: connection (WAL, busy timeout, IMMEDIATE transactions) and row statements;
//! - [`tracker`]: [`Tracker`] and [`Experiment`] handles; [`run`]: the [`Run`] handle;
//! - [`filter`]: MLflow's filter grammar to SQL; [`query`]: `search_runs` into polars;
//! - [`history`]: metric histories; [`display`]: notebook HTML; [`artifacts`]: run files.

pub mod artifacts;
pub mod display;
pub mod entities;
pub mod filter;
pub mod history;
// The logging interface the trainer writes to lives with the trainer; the tracker implements it.
pub use crate::train::logger;
pub mod query;
pub mod rest;
pub mod run;
pub mod schema;
mod scores;
pub mod store;
pub mod table;
pub mod tags;
pub mod tracker;
pub mod uri;

pub use entities::{ExperimentInfo, MetricPoint, RunData, RunInfo};
pub use history::MetricHistory;
pub use logger::{MemoryLogger, NullLogger, RunLogger, RunStatus};
pub use run::{FlushPolicy, Run};
pub use schema::SchemaInfo;
pub use table::RunTable;
pub use tracker::{Experiment, Tracker};
