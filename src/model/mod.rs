//! Our BERT encoder and sequence-classification head, with adapter slots.
//!
//! candle-transformers' BERT keeps its layers private (and its dropout is a no-op), so this module
//! has its own implementation with Hugging Face weight names, into which LoRA modules and
//! LoRA-adapted shortcuts are threaded. Base weights are plain tensors (frozen: no gradient is
//! computed for them); adapters and the classifier head are [`candle_core::Var`]s.
//!
//! - [`config`]: [`BertConfig`], a mirror of Hugging Face's config.json.
//! - [`embeddings`], [`attention`], [`layer`], [`encoder`]: the encoder, one concept per file.
//! - [`classifier`]: [`SequenceClassifier`], the owned handle notebooks and the trainer use.
//! - [`decoder`]: OPT, Llama and Qwen2 decoders with the same slots, under
//!   [`decoder::DecoderClassifier`]; [`any`]: [`Classifier`], an enum over both.
//! - [`adapted`]: [`AdaptedClassifier`], what scoring and training use of any of them.
//! - [`load`]: [`AssetLoader`], the one path from a task and folders to the tokenizer, the
//!   encoded splits and a [`Classifier`].
//! - [`probe`]: hooks for zero-cost proxies that need dL/dW0 or dL/dz.
//! - `slots`, `io`, `summary`: slot management, adapter files, parameter tables.

pub mod adapted;
pub mod any;
pub mod attention;
pub mod classifier;
pub mod config;
pub(crate) mod context;
pub mod decoder;
pub mod embeddings;
pub mod encoder;
mod eval;
pub mod fused;
pub mod head_pooling;
pub(crate) mod io;
pub mod layer;
pub mod load;
pub mod nn;
pub mod primitives;
pub mod probe;
pub(crate) mod slots;
pub mod summary;
pub(crate) mod weights;

pub use adapted::AdaptedClassifier;
pub use any::Classifier;
pub use classifier::SequenceClassifier;
pub use config::{BertConfig, HiddenAct};
pub use encoder::{BertModel, EncoderOutput};
pub use eval::EvalLogits;
pub use head_pooling::HeadPooling;
pub use io::{STATE_FILE, WEIGHTS_FILE};
pub use load::{AssetLoader, TaskAssets};
pub use probe::{ProbeMode, SlotProbe};
pub use summary::ParamSummary;

#[cfg(test)]
mod tests;
