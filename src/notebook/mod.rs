//! Notebook glue: owned handles and concrete result types for evcxr, where a whole experiment
//! (load, score, search, train, query, plot) is a few cells. Start with
//! `use heterolora::prelude::*;` and [`Workspace::mrpc`].
//!
//! - [`Workspace`]: model, task data and tracker behind one handle.
//! - [`Settings`]: quick (minutes on a CPU) or full sizes.
//! - [`ScoreSet`]: several proxies' scores and how their rankings agree.
//! - [`Sweep`] / [`SweepTrial`]: trials as child runs of one parent run.
//! - [`charts`]: curves, budget plots and re-allocation timelines read from the tracker (also
//!   behind `heterolora plot curves|budget|timeline`).

pub mod charts;
mod scoreset;
mod settings;
mod sweep;
mod workspace;

pub use charts::BudgetColumns;
pub use scoreset::ScoreSet;
pub use settings::Settings;
pub use sweep::{Sweep, SweepTrial};
pub use workspace::{space_name, HtmlPreview, Workspace};
