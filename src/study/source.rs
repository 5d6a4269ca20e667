//! Where a study's model and data come from: the fetched assets ([`AssetSource`]) or anything
//! else that implements [`StudySource`] (tests use a tiny random model and a synthetic task).

use crate::adapters::ModelDims;
use crate::assets;
use crate::data::{load_split, EncodedDataset, Split, Task, Tokenizer};
use crate::device::parse_device;
use crate::model::{BertConfig, SequenceClassifier};
use crate::train::job::DEFAULT_MODEL;
use crate::{Error, Result};
use candle_core::DType;
use std::path::{Path, PathBuf};

/// A model with its head initialised from a seed, and the task's training and dev splits.
pub struct Loaded {
    pub model: SequenceClassifier,
    pub train: EncodedDataset,
    pub dev: EncodedDataset,
}

/// Supplies every child run with a fresh model and the encoded splits.
pub trait StudySource {
    /// The model (base weights, head from `seed`) and the splits, encoded at `max_len`.
    fn load(&mut self, task: Task, max_len: usize, device: &str, seed: u64) -> Result<Loaded>;
    /// The model's sizes (for budgets and plans), without loading weights where possible.
    fn dims(&mut self) -> Result<ModelDims>;
    /// One line naming the model and the data, recorded on the parent run.
    fn describe(&self) -> String;
    /// Checks that everything the study needs is there, with an error naming what to fetch.
    fn check(&mut self, task: Task) -> Result<()> {
        let _ = task;
        Ok(())
    }
}

/// The fetched model folder and GLUE root (`datasets/...` or `HETEROLORA_MODEL_DIR` /
/// `HETEROLORA_GLUE_DIR`). Encoded splits are cached between children of the same task.
pub struct AssetSource {
    pub model_dir: PathBuf,
    pub glue_dir: PathBuf,
    cache: Option<(Task, usize, EncodedDataset, EncodedDataset)>,
}

impl AssetSource {
    /// Resolves the default locations, or `model_dir` / `glue_dir` when given.
    pub fn new(model_dir: Option<&Path>, glue_dir: Option<&Path>) -> Self {
        AssetSource {
            model_dir: assets::resolve_model_dir(model_dir, DEFAULT_MODEL),
            glue_dir: assets::resolve_glue_dir(glue_dir),
            cache: None,
        }
    }
}

impl StudySource for AssetSource {
    fn check(&mut self, task: Task) -> Result<()> {
        for f in ["config.json", "tokenizer.json", "model.safetensors"] {
            let p = self.model_dir.join(f);
            if !p.is_file() {
                return Err(Error::Asset {
                    what: format!("model {}", self.model_dir.display()),
                    reason: format!("{} does not exist", p.display()),
                    hint: format!(
                        "Run `heterolora fetch model {DEFAULT_MODEL}`, or pass --model DIR / set HETEROLORA_MODEL_DIR"
                    ),
                });
            }
        }
        for split in [Split::Train, Split::Dev] {
            let p = self.glue_dir.join(task.dir_name()).join(split.file_name());
            if !p.is_file() {
                return Err(Error::Asset {
                    what: format!("GLUE {} {}", task.name(), split.name()),
                    reason: format!("{} does not exist", p.display()),
                    hint: format!(
                        "Run `heterolora fetch glue {}`, or pass --glue DIR / set HETEROLORA_GLUE_DIR",
                        task.name()
                    ),
                });
            }
        }
        Ok(())
    }

    fn load(&mut self, task: Task, max_len: usize, device: &str, seed: u64) -> Result<Loaded> {
        self.check(task)?;
        let cached = matches!(&self.cache, Some((t, m, _, _)) if *t == task && *m == max_len);
        if !cached {
            let tok = Tokenizer::from_model_dir(&self.model_dir, max_len)?;
            let train = tok.encode_dataset(&load_split(&self.glue_dir, task, Split::Train)?)?;
            let dev = tok.encode_dataset(&load_split(&self.glue_dir, task, Split::Dev)?)?;
            self.cache = Some((task, max_len, train, dev));
        }
        let (_, _, train, dev) = self.cache.as_ref().expect("filled above");
        let device = parse_device(device)?;
        let model = SequenceClassifier::from_pretrained(
            &self.model_dir,
            task.num_labels(),
            DType::F32,
            &device,
            seed,
        )?;
        Ok(Loaded {
            model,
            train: train.clone(),
            dev: dev.clone(),
        })
    }

    fn dims(&mut self) -> Result<ModelDims> {
        let p = self.model_dir.join("config.json");
        if !p.is_file() {
            return Err(Error::Asset {
                what: format!("model {}", self.model_dir.display()),
                reason: format!("{} does not exist", p.display()),
                hint: format!("Run `heterolora fetch model {DEFAULT_MODEL}`"),
            });
        }
        let cfg = BertConfig::from_file(&p)?;
        Ok(ModelDims {
            num_layers: cfg.num_hidden_layers,
            hidden_size: cfg.hidden_size,
            intermediate_size: cfg.intermediate_size,
        })
    }

    fn describe(&self) -> String {
        format!(
            "model {}, GLUE {}",
            self.model_dir.display(),
            self.glue_dir.display()
        )
    }
}
