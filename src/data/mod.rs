//! GLUE data: the tasks and splits ([`task`]), their TSV files ([`glue`]), tokenisation
//! ([`tokenize`]; a decoder's pad id: [`pad`]), padded batches and the seeded batch order
//! ([`batch`]), the official metrics ([`metrics`]) and split statistics ([`stats`]).
//!
//! ```no_run
//! use heterolora::data::{self, Batcher, Split, Task, Tokenizer};
//! # fn main() -> heterolora::Result<()> {
//! let glue = heterolora::assets::glue_dir();
//! let train = data::load_split(&glue, Task::Mrpc, Split::Train)?;
//! let tok = Tokenizer::from_model_dir(heterolora::assets::model_dir("all-MiniLM-L6-v2"), 128)?;
//! let enc = tok.encode_dataset(&train)?;
//! let batcher = Batcher::for_dataset(&enc, 32, 42)?;
//! for idx in batcher.epoch(0) {
//!     let batch = enc.batch(&idx, &candle_core::Device::Cpu)?;
//!     // batch.input_ids: [b, s] u32 ...
//! }
//! # Ok(()) }
//! ```

pub mod batch;
pub mod glue;
pub mod metrics;
pub mod pad;
pub mod stats;
pub mod task;
pub mod tokenize;

pub use batch::{Batch, Batcher};
pub use glue::{load_split, Example, GlueDataset, Label, Split, Task};
pub use metrics::Metrics;
pub use tokenize::{EncodedDataset, EncodedExample, Encoding, Tokenizer};
