//! The crate's one error type.
//!
//! Every variant names what was wrong (file, line, field, slot, value) and, where it helps, what to do.

use std::path::PathBuf;

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ---- input files and configuration --------------------------------------------------------
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {reason}", file.display())]
    Parse {
        file: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("invalid value for `{name}`: {value} ({expected})")]
    InvalidParam {
        name: String,
        value: String,
        expected: String,
    },
    #[error("config `{field}`: {reason}")]
    Config { field: String, reason: String },

    // ---- assets ------------------------------------------------------------------------------
    #[error("{what}: {reason}. {hint}")]
    Asset {
        what: String,
        reason: String,
        hint: String,
    },
    #[error("checksum mismatch for {}: expected sha256 {expected}, got {actual}. Delete the file and fetch it again", path.display())]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    // ---- model and adapters ------------------------------------------------------------------
    #[error("weight `{name}` has shape {actual:?}, expected {expected:?}")]
    Shape {
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("weight `{name}` is missing from {source_name}")]
    MissingWeight { name: String, source_name: String },
    #[error("unknown adapter slot `{0}`: expected e.g. `layer.3.attention.value` (kinds: attention.query, attention.key, attention.value, attention.output, intermediate, output, residual1, residual2, shortcut1, shortcut2)")]
    UnknownSlot(String),

    // ---- search ------------------------------------------------------------------------------
    #[error("budget: {0}")]
    Budget(String),

    // ---- training ----------------------------------------------------------------------------
    #[error("training stopped at step {step}: {reason}")]
    Training { step: usize, reason: String },
    #[error("interrupted by the user")]
    Interrupted,

    // ---- tracking ----------------------------------------------------------------------------
    #[error("tracker: {0}")]
    Tracking(String),

    // ---- plots and display -------------------------------------------------------------------
    #[error("plot: {0}")]
    Plot(String),

    // ---- wrapped library errors --------------------------------------------------------------
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Polars(#[from] polars::prelude::PolarsError),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// An I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A parse error at `file:line`.
    pub fn parse(file: impl Into<PathBuf>, line: usize, reason: impl Into<String>) -> Self {
        Error::Parse {
            file: file.into(),
            line,
            reason: reason.into(),
        }
    }

    /// A hyper-parameter outside its range.
    pub fn invalid(
        name: impl Into<String>,
        value: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> Self {
        Error::InvalidParam {
            name: name.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }
}
