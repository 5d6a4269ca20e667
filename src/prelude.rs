//! Everything a notebook needs, in one import: `use heterolora::prelude::*;`.
//!
//! evcxr calls a value's `evcxr_display` when the method is in scope, so the display traits
//! ([`DataFrameDisplay`]) come with the types. The [`Workspace`] handle turns an experiment into a
//! few cells:
//!
//! ```no_run
//! use heterolora::prelude::*;
//! # fn main() -> heterolora::Result<()> {
//! let mut ws = Workspace::mrpc()?;                      // MiniLM + MRPC, quick settings
//! let space = SearchSpace::lora_qv();
//! let scores = ws.score("grad-norm", &space)?;          // a heat-map-ready Scores
//! let alloc = ws.top_k(&space, &scores, 0.25, 8)?;     // the paper's static top-k
//! let result = ws.train("topk-grad-norm", &alloc, ws.train_config())?;
//! let runs = ws.runs()?;                                 // the tracker's table, as HTML
//! # Ok(()) }
//! ```

pub use crate::adapters::{ModelDims, SearchSpace, SlotId, SlotKind};
pub use crate::data::{load_split, EncodedDataset, GlueDataset, Metrics, Split, Task, Tokenizer};
pub use crate::device::{device_name, parse_device};
pub use crate::display::{DataFrameDisplay, HtmlTable, Table};
pub use crate::model::SequenceClassifier;
pub use crate::notebook::{ScoreSet, Settings, Sweep, SweepTrial, Workspace};
pub use crate::plot::{
    kendall_tau, spearman_rho, AllocationHeatmap, BudgetPlot, BudgetPoint, Curve, CurvesPlot,
    Figure, HeatmapColour, ProxyScatter, ReallocationTimeline, ScoreHeatmap,
};
pub use crate::proxy::{self, FreshAdapters, Proxy, Scores, ScoringData};
pub use crate::rng::Rng;
pub use crate::search::{
    Allocation, AlphaRule, Budget, BudgetSpec, Heterogeneous, HeterogeneousParams, Pooling,
    SlotRank, Solver, TopK, TopKParams, Uniform, UniformParams,
};
pub use crate::tracking::{
    MemoryLogger, MetricHistory, Run, RunLogger, RunStatus, RunTable, Tracker,
};
pub use crate::train::{TrainConfig, TrainJob, TrainResult};
pub use crate::{Error, Result};
pub use candle_core::{DType, Device, Tensor};
