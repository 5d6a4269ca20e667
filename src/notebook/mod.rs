//! Notebook glue: owned handles and concrete result types for evcxr, where a whole experiment
//! (load, score, search, train, query, plot) is a few cells. Start with
//! `use heterolora::prelude::*;` and [`Workspace::mrpc`].
//!
//! - [`Workspace`]: model, task data and tracker behind one handle.
//! - [`Settings`]: quick (a tour in minutes on a CPU), tutorial (a model that learns in minutes
//!   on a CPU) or full sizes.
//! - [`ScoreSet`]: several proxies' scores and how their rankings agree.
//! - [`Sweep`] / [`SweepTrial`]: trials as child runs of one parent run.
//! - [`PredictionReport`]: a model's predictions on a split: metrics, confusion matrix and the
//!   most confident mistakes.
//! - [`charts`]: curves, budget plots and re-allocation timelines read from the tracker (also
//!   behind `heterolora plot curves|budget|timeline`).

pub mod charts;
mod paths;
mod predictions;
mod scoreset;
mod settings;
mod sweep;
mod workspace;

pub use charts::BudgetColumns;
pub use paths::{display_path, relative_path, space_name};
pub use predictions::{predicted_classes, Misclassified, PredictionReport};
pub use scoreset::ScoreSet;
pub use settings::Settings;
pub use sweep::{Sweep, SweepTrial};
pub use workspace::{HtmlPreview, Workspace};
