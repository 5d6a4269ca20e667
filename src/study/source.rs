//! Where a study's model and data come from: the fetched assets ([`AssetSource`]) or anything
//! else that implements [`StudySource`] (tests use a tiny random model and a synthetic task).

use crate::adapters::ModelDims;
use crate::assets::{self, check_split, ModelFolder};
use crate::data::{EncodedDataset, Split, Task};
use crate::device::parse_device;
use crate::model::{AssetLoader, BertConfig, Classifier, SequenceClassifier};
use crate::train::job::DEFAULT_MODEL;
use crate::{Error, Result};
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

    /// The checked model folder; a decoder is an error (the study's methods and budgets are
    /// BERT's: `heterolora train` and `score` take decoders).
    fn folder(&self) -> Result<ModelFolder> {
        let folder = ModelFolder::open(&self.model_dir)?;
        if folder.is_decoder() {
            return Err(Error::Config {
                field: format!(
                    "{}: model_type",
                    self.model_dir.join("config.json").display()
                ),
                reason: format!(
                    "studies run on BERT models, this is a {} decoder; train and score it with \
                     `heterolora train --model DIR` and `heterolora score --model DIR`",
                    folder.model_type.as_deref().unwrap_or("?")
                ),
            });
        }
        Ok(folder)
    }
}

impl StudySource for AssetSource {
    fn check(&mut self, task: Task) -> Result<()> {
        self.folder()?;
        for split in [Split::Train, Split::Dev] {
            check_split(&self.glue_dir, task, split)?;
        }
        Ok(())
    }

    fn load(&mut self, task: Task, max_len: usize, device: &str, seed: u64) -> Result<Loaded> {
        self.check(task)?;
        let cached = matches!(&self.cache, Some((t, m, _, _)) if *t == task && *m == max_len);
        let loader = AssetLoader::new(task)
            .model_dir(Some(&self.model_dir))
            .glue_dir(Some(&self.glue_dir))
            .max_len(max_len)
            .splits(!cached, !cached)
            .device(&parse_device(device)?)
            .seed(seed);
        let mut loaded = loader.load()?;
        if !cached {
            let (train, dev) = (loaded.train.take(), loaded.dev.take());
            let both = train
                .zip(dev)
                .expect("the loader encodes the splits asked for");
            self.cache = Some((task, max_len, both.0, both.1));
        }
        let (_, _, train, dev) = self.cache.as_ref().expect("filled above");
        let model = match loaded.model.expect("the loader builds the model") {
            Classifier::Encoder(m) => m,
            Classifier::Decoder(m) => {
                return Err(Error::Config {
                    field: "model".into(),
                    reason: format!("studies run on BERT models, not {}", m.architecture()),
                })
            }
        };
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
