//! [`AssetLoader`]: the one path from a task, a model folder and a GLUE root to what a command
//! or notebook works on ([`TaskAssets`]): the folder resolved and checked
//! ([`crate::assets::ModelFolder`]), its tokenizer, the task's training and dev splits encoded
//! with it, and the [`Classifier`] (BERT or a decoder, by `config.json`'s `model_type`) with the
//! task's head. `heterolora train`/`score`/`predict`/`info`, [`crate::train::TrainJob`], the
//! notebooks' `Workspace` and the study's asset source all load through it.
//!
//! ```no_run
//! use heterolora::data::Task;
//! use heterolora::model::AssetLoader;
//! # fn main() -> heterolora::Result<()> {
//! let a = AssetLoader::new(Task::Rte)
//!     .model_dir(Some("tests/fixtures/decoders/llama"))
//!     .limit_train(Some(64))
//!     .load()?;
//! println!("{} on {} training examples", a.model()?.architecture(), a.train()?.len());
//! # Ok(()) }
//! ```

use super::Classifier;
use crate::assets::{encode_split, resolve_glue_dir, ModelFolder};
use crate::data::{EncodedDataset, Split, Task, Tokenizer};
use crate::{Error, Result};
use candle_core::{DType, Device};
use std::path::{Path, PathBuf};

/// What to load: the task, the folders (`None`: `$HETEROLORA_MODEL_DIR` / `$HETEROLORA_GLUE_DIR`,
/// else `datasets/`), the truncation length, which splits and how many of their rows, and the
/// model's device, dtype and head seed.
#[derive(Debug, Clone)]
pub struct AssetLoader {
    pub task: Task,
    pub model_dir: Option<PathBuf>,
    pub glue_dir: Option<PathBuf>,
    pub max_len: usize,
    /// Load and encode the training split (its first `limit_train` rows when set).
    pub train: bool,
    pub limit_train: Option<usize>,
    /// Load and encode the dev split (its first `limit_dev` rows when set).
    pub dev: bool,
    pub limit_dev: Option<usize>,
    /// Build the model (off: the tokenizer and splits only).
    pub model: bool,
    pub device: Device,
    pub dtype: DType,
    /// Seed of a freshly initialised head.
    pub seed: u64,
}

/// What an [`AssetLoader`] loaded.
#[derive(Debug, Clone)]
pub struct TaskAssets {
    pub task: Task,
    pub folder: ModelFolder,
    pub glue_dir: PathBuf,
    pub tokenizer: Tokenizer,
    pub train: Option<EncodedDataset>,
    pub dev: Option<EncodedDataset>,
    pub model: Option<Classifier>,
}

impl AssetLoader {
    /// Both splits and the model, at 128 tokens, f32 on the CPU, seed 0, default folders.
    pub fn new(task: Task) -> Self {
        AssetLoader {
            task,
            model_dir: None,
            glue_dir: None,
            max_len: 128,
            train: true,
            limit_train: None,
            dev: true,
            limit_dev: None,
            model: true,
            device: Device::Cpu,
            dtype: DType::F32,
            seed: 0,
        }
    }

    /// The model folder (`None`: `$HETEROLORA_MODEL_DIR`, else the default model's).
    pub fn model_dir<P: AsRef<Path>>(mut self, dir: Option<P>) -> Self {
        self.model_dir = dir.map(|d| d.as_ref().to_path_buf());
        self
    }
    /// The GLUE root (`None`: `$HETEROLORA_GLUE_DIR`, else `datasets/glue`).
    pub fn glue_dir<P: AsRef<Path>>(mut self, dir: Option<P>) -> Self {
        self.glue_dir = dir.map(|d| d.as_ref().to_path_buf());
        self
    }
    pub fn max_len(mut self, n: usize) -> Self {
        self.max_len = n;
        self
    }
    /// Which splits to encode.
    pub fn splits(mut self, train: bool, dev: bool) -> Self {
        self.train = train;
        self.dev = dev;
        self
    }
    pub fn limit_train(mut self, n: Option<usize>) -> Self {
        self.limit_train = n;
        self
    }
    pub fn limit_dev(mut self, n: Option<usize>) -> Self {
        self.limit_dev = n;
        self
    }
    /// Whether to build the model.
    pub fn with_model(mut self, on: bool) -> Self {
        self.model = on;
        self
    }
    pub fn device(mut self, device: &Device) -> Self {
        self.device = device.clone();
        self
    }
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The model folder this loader reads.
    pub fn resolved_model_dir(&self) -> PathBuf {
        ModelFolder::resolve(self.model_dir.as_deref())
    }

    /// The GLUE root this loader reads.
    pub fn resolved_glue_dir(&self) -> PathBuf {
        resolve_glue_dir(self.glue_dir.as_deref())
    }

    /// Checks the folder, loads the tokenizer, encodes the splits asked for and builds the model
    /// (in that order, so a missing file fails before any weight is read).
    pub fn load(&self) -> Result<TaskAssets> {
        let folder = ModelFolder::open(self.resolved_model_dir())?;
        let glue_dir = self.resolved_glue_dir();
        let tokenizer = folder.tokenizer(self.max_len)?;
        let encode = |on: bool, which: Split, limit: Option<usize>| {
            on.then(|| encode_split(&tokenizer, &glue_dir, self.task, which, limit))
                .transpose()
        };
        let train = encode(self.train, Split::Train, self.limit_train)?;
        let dev = encode(self.dev, Split::Dev, self.limit_dev)?;
        let model = match self.model {
            true => Some(build_model(
                &folder,
                &tokenizer,
                self.task.num_labels(),
                self.dtype,
                &self.device,
                self.seed,
            )?),
            false => None,
        };
        Ok(TaskAssets {
            task: self.task,
            folder,
            glue_dir,
            tokenizer,
            train,
            dev,
            model,
        })
    }
}

/// The classifier of `folder` with a `num_labels` head (seeded), reading a decoder's logits
/// before the pad id `tok` pads batches with.
pub fn build_model(
    folder: &ModelFolder,
    tok: &Tokenizer,
    num_labels: usize,
    dtype: DType,
    device: &Device,
    seed: u64,
) -> Result<Classifier> {
    let mut model = Classifier::from_pretrained(&folder.dir, num_labels, dtype, device, seed)?;
    if let Classifier::Decoder(m) = &mut model {
        // Both come from data::pad already; set it so that no other rule can split them.
        m.set_pad_token_id(Some(tok.pad_id()));
    }
    Ok(model)
}

impl TaskAssets {
    /// The model folder.
    pub fn model_dir(&self) -> &Path {
        &self.folder.dir
    }

    fn missing(&self, what: &str) -> Error {
        Error::Other(format!(
            "the asset loader was not asked for {what} (AssetLoader::{})",
            if what == "the model" {
                "with_model"
            } else {
                "splits"
            }
        ))
    }

    /// The model; an error when the loader was told not to build it.
    pub fn model(&self) -> Result<&Classifier> {
        self.model.as_ref().ok_or_else(|| self.missing("the model"))
    }

    /// The encoded training split; an error when the loader was told not to load it.
    pub fn train(&self) -> Result<&EncodedDataset> {
        self.train
            .as_ref()
            .ok_or_else(|| self.missing("the training split"))
    }

    /// The encoded dev split; an error when the loader was told not to load it.
    pub fn dev(&self) -> Result<&EncodedDataset> {
        self.dev
            .as_ref()
            .ok_or_else(|| self.missing("the dev split"))
    }

    /// Model, training split and dev split, moved out (each an error when not loaded).
    pub fn into_parts(self) -> Result<(Classifier, EncodedDataset, EncodedDataset)> {
        self.model()?;
        self.train()?;
        self.dev()?;
        Ok((
            self.model.expect("checked"),
            self.train.expect("checked"),
            self.dev.expect("checked"),
        ))
    }
}
