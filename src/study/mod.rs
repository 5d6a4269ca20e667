//! The study: a budget-matched comparison of LoRA allocation methods over seeds, resumable, with
//! a report generated from the tracker.
//!
//! - [`methods`]: the methods as data ([`Method::all`]: uniform r = 2 and r = 8, random, static
//!   HeteroLoRA with each proxy, dynamic HeteroLoRA, the LoRA + shortcut space, heterogeneous ranks);
//! - [`protocol`]: [`Protocol::cpu`] and [`Protocol::paper`], validated;
//! - [`config`]: [`StudyConfig`]; [`plan`]: [`Plan`], every child with its budget and status;
//! - [`runner`]: [`Study`]: one parent run, a child run per (method, seed) tagged
//!   `study.method`/`study.seed`/`study.key`, finished children skipped, failures reported;
//! - [`execute`]: [`execute_method`], one method on one seed (also `heterolora run`);
//! - [`report`]: [`StudyReport`]: tables, plots and summary under `results/<study>/`;
//! - [`record`]: [`ChildRecord`], the per-child result kept in the tracker and committed;
//!   [`predictions`]: each dev example's prediction added to records written without them;
//! - [`stats`]: the paired t interval, the detectable effect and the two-level bootstrap;
//! - [`twin`]: a static child whose allocation equals a finished one's (same seed and protocol)
//!   is recorded as that result instead of being trained again;
//! - [`source`]: where model and data come from; [`dynamic`]: the re-allocation training hook.
//!
//! ```no_run
//! use heterolora::data::Task;
//! use heterolora::study::{AssetSource, Method, Protocol, Study, StudyConfig, StudyReport};
//! use heterolora::tracking::Tracker;
//! # fn main() -> heterolora::Result<()> {
//! let cfg = StudyConfig::new(Task::Mrpc, Protocol::cpu())
//!     .methods(Method::select(&["uniform-r2,static-grad-norm".into()])?);
//! let tracker = Tracker::open_default()?;
//! let mut study = Study::new(cfg.clone(), tracker.clone(), Box::new(AssetSource::new(None, None)));
//! println!("{}", study.plan()?);                 // budgets, what is done
//! study.run(&mut |line| println!("{line}"))?;   // resumable: finished children are skipped
//! let report = StudyReport::collect(Some(&tracker), &cfg)?;
//! report                                         // table + summary in evcxr
//! # ; Ok(()) }
//! ```

mod child;
pub mod claim;
pub mod config;
pub mod dynamic;
pub mod execute;
pub mod methods;
pub mod plan;
pub mod predictions;
pub mod protocol;
pub mod record;
pub mod report;
pub mod runner;
pub mod slurm;
pub mod source;
pub mod stats;
pub mod twin;

pub use claim::{ClaimPolicy, Worker};
pub use config::{Order, StudyConfig, KIND_CHILD, KIND_PARENT, SEEDS};
pub use dynamic::DynamicHook;
pub use execute::{execute_method, prepare_method, MethodOutput, Prepared, TrainExtras};
pub use methods::{AllocatorSpec, Method, Space};
pub use plan::{ChildPlan, Plan};
pub use predictions::PredictionsOutcome;
pub use protocol::Protocol;
pub use record::ChildRecord;
pub use report::StudyReport;
pub use runner::{ChildHooks, Study, StudyOutcome};
pub use source::{AssetSource, Loaded, StudySource};
