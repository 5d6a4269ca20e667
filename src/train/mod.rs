//! The fine-tuning engine.
//!
//! - [`config::TrainConfig`]: validated hyper-parameters (table in its docs).
//! - [`optim::AdamW`]: AdamW with decoupled weight decay over named variables, state saved in
//!   checkpoints; [`schedule::Schedule`]: constant or linear warm-up/decay learning rates;
//!   [`clip`]: global-norm gradient clipping; [`precision::Precision`]: f32 or bf16 mixed
//!   precision (f32 master weights).
//! - [`checkpoint`]: resumable checkpoints (adapters, head, optimiser, step, data position, RNG).
//! - [`progress`]: progress bar or plain lines; [`interrupt`]: Ctrl-C handling.
//! - [`result::TrainResult`]: per-epoch dev metrics, best epoch, wall time, throughput;
//!   [`dev_predictions::DevPredictions`]: each dev example's prediction at the end.
//! - [`trainer::Trainer`]: the loop, on BERT or a decoder (any
//!   [`crate::model::AdaptedClassifier`]); [`hook::TrainHook`]: code run before steps (dynamic
//!   re-allocation); [`job::TrainJob`]: a whole run from a task, an allocation and paths.
//! - [`spec`]: the `--allocation` argument (`uniform:q,v:r=8` or a file).

pub mod checkpoint;
pub mod clip;
pub mod config;
pub mod dev_predictions;
pub mod dynamic;
pub mod hook;
pub mod interrupt;
pub mod job;
pub mod logger;
pub mod optim;
pub mod precision;
pub mod progress;
pub mod result;
pub mod schedule;
pub mod spec;
pub mod trainer;

pub use config::TrainConfig;
pub use dev_predictions::DevPredictions;
pub use dynamic::DynamicReallocator;
pub use hook::{HookState, TrainHook};
pub use interrupt::{install_ctrlc, StopFlag};
pub use job::{AllocationArg, TrainJob};
pub use logger::{MemoryLogger, NullLogger, RunLogger, RunStatus};
pub use optim::{AdamW, AdamWParams};
pub use precision::Precision;
pub use result::{EvalRecord, TrainResult};
pub use schedule::Schedule;
pub use spec::parse_allocation;
pub use trainer::{start_at_target_mean, Trainer};
