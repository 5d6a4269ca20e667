//! The run tracker: MLflow-compatible SQLite.

pub mod logger;

pub use logger::{MemoryLogger, NullLogger, RunLogger, RunStatus};
