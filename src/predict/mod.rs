//! Scoring a GLUE-format TSV with a saved adapter (`heterolora predict`).
//!
//! - [`read_tsv`]: a task's file with labels (train/dev layout) or without (GLUE test layout),
//!   whichever it is, keeping the test file's `index` column for the submission;
//! - [`resolve_adapter_dir`]: a folder with the adapter files, or a training run's output
//!   folder (its `final/` or `best/` adapters, as `heterolora train` writes them);
//! - [`resolve_base_model`]: `--model`, else the folder the adapters' `adapter_config.json`
//!   names when it exists here (a decoder's), else the default model;
//! - [`load_model`]: the base model (BERT or a decoder) with the saved adapters and
//!   classification head;
//! - [`predict`]: logits for every row, batched exactly like the trainer's dev evaluation, so
//!   that the metrics equal the ones the trainer logged for the same adapters;
//! - [`Predictions`]: metrics against gold labels, and the GLUE submission file.

mod base_model;
pub use base_model::resolve_base_model;

use crate::adapters::peft::{self, load_safetensors, ADAPTER_CONFIG, ADAPTER_WEIGHTS};
use crate::assets::ModelFolder;
use crate::data::{metrics, Batcher, EncodedDataset, GlueDataset, Split, Task};
use crate::model::{AdaptedClassifier, AssetLoader, Classifier, STATE_FILE, WEIGHTS_FILE};
use crate::{Error, Result};
use candle_core::Device;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The evaluation batch size the trainer uses by default: the same batches give the same
/// floating-point sums, so `predict` reproduces the trainer's dev metrics exactly.
pub const EVAL_BATCH_SIZE: usize = crate::train::config::DEFAULT_EVAL_BATCH_SIZE;

/// A TSV to predict on: the parsed rows and, per row, the id the GLUE server expects.
#[derive(Debug, Clone)]
pub struct PredictFile {
    pub dataset: GlueDataset,
    /// The `index` column of a test file; the row number (from 0) for a labelled file.
    pub ids: Vec<String>,
}

impl PredictFile {
    /// Whether every row has a gold label (then metrics can be computed).
    pub fn is_labelled(&self) -> bool {
        self.dataset.is_labelled()
    }
}

/// Reads `path` as a `task` file with labels (the train/dev layout) or, failing that, as a GLUE
/// test file (an `index` column first, no label). When neither fits, the error gives both
/// reasons with their lines.
pub fn read_tsv(task: Task, path: &Path) -> Result<PredictFile> {
    let dataset = match GlueDataset::from_file(task, Split::Dev, path) {
        Ok(ds) => ds,
        Err(e @ Error::Io { .. }) => return Err(e),
        Err(as_dev) => match GlueDataset::from_file(task, Split::Test, path) {
            Ok(ds) => ds,
            Err(as_test) => {
                return Err(Error::Config {
                    field: format!("{}", path.display()),
                    reason: format!(
                        "not a {task} file with labels ({as_dev}) nor a GLUE {task} test file \
                         ({as_test}); give a file with the columns of the task's dev.tsv or test.tsv"
                    ),
                })
            }
        },
    };
    let ids = if dataset.split == Split::Test {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let lines: Vec<&str> = text.split('\n').collect();
        dataset
            .examples
            .iter()
            .map(|e| {
                let row = lines.get(e.line - 1).copied().unwrap_or("");
                row.split('\t').next().unwrap_or("").trim().to_string()
            })
            .collect()
    } else {
        (0..dataset.len()).map(|i| i.to_string()).collect()
    };
    Ok(PredictFile { dataset, ids })
}

/// Which saved adapters of a training run's folder to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Which {
    /// `final/`: the adapters at the end of training (the study's primary number).
    #[default]
    Final,
    /// `best/`: the adapters of the best epoch on dev.
    Best,
}

impl std::str::FromStr for Which {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "final" => Ok(Which::Final),
            "best" => Ok(Which::Best),
            _ => Err(Error::invalid("adapters", s, "`final` or `best`")),
        }
    }
}

/// Whether `dir` itself holds saved adapters (ours or PEFT's).
pub fn holds_adapters(dir: &Path) -> bool {
    dir.join(STATE_FILE).is_file() || dir.join(ADAPTER_CONFIG).is_file()
}

/// `path` when it holds adapter files; else its `final/` or `best/` folder (`which`), as a
/// training run's output folder has them.
pub fn resolve_adapter_dir(path: &Path, which: Which) -> Result<PathBuf> {
    if holds_adapters(path) {
        return Ok(path.to_path_buf());
    }
    let sub = match which {
        Which::Final => "final",
        Which::Best => "best",
    };
    let p = path.join(sub);
    if holds_adapters(&p) {
        return Ok(p);
    }
    let other = if sub == "final" { "best" } else { "final" };
    let hint = if holds_adapters(&path.join(other)) {
        format!("it has {other}/ (pass --adapters {other}); a run stopped early has no final/")
    } else {
        format!(
            "pass a folder holding {ADAPTER_CONFIG} + {ADAPTER_WEIGHTS} (PEFT) or {STATE_FILE}, \
             or a `heterolora train` output folder with final/ or best/"
        )
    };
    Err(Error::Asset {
        what: format!("adapters {}", path.display()),
        reason: format!(
            "neither {} nor {}/{sub} holds {ADAPTER_CONFIG} or {STATE_FILE}",
            path.display(),
            path.display()
        ),
        hint,
    })
}

/// The base model in `model_dir` (any backbone: BERT or a decoder, by its `config.json`) with the
/// adapters and classification head saved in `adapter_dir`. A folder without a head is an
/// error: its predictions would come from a randomly initialised classifier.
pub fn load_model(
    model_dir: &Path,
    adapter_dir: &Path,
    task: Task,
    device: &Device,
) -> Result<Classifier> {
    let decoder = ModelFolder::open(model_dir)?.is_decoder();
    let mut has_head = false;
    for f in [ADAPTER_WEIGHTS, WEIGHTS_FILE] {
        let p = adapter_dir.join(f);
        if p.is_file() {
            has_head |= load_safetensors(&p, &Device::Cpu)?
                .keys()
                .any(|k| match decoder {
                    true => peft::score_key(k),
                    false => peft::head_key(k).is_some(),
                });
        }
    }
    if !has_head {
        let (keys, modules) = match decoder {
            true => ("`score.weight`", "[\"score\"]"),
            false => (
                "`classifier.weight` / `classifier.bias`",
                "[\"classifier\"]",
            ),
        };
        return Err(Error::Asset {
            what: format!("adapters {}", adapter_dir.display()),
            reason: format!("no classification head ({keys}) saved there"),
            hint: format!(
                "save the head with the adapters (PEFT: modules_to_save={modules}; \
                 `heterolora train` always does)"
            ),
        });
    }
    // The loading path of every command: a decoder reads its logits before the pad id its
    // folder's tokenizer pads with, as in training.
    let mut model = AssetLoader::new(task)
        .model_dir(Some(model_dir))
        .splits(false, false)
        .device(device)
        .load()?
        .model
        .expect("the loader builds the model");
    model.load_adapters(adapter_dir)?;
    if model.num_labels() != task.num_labels() {
        return Err(Error::Config {
            field: format!(
                "{}: {}",
                adapter_dir.display(),
                if decoder { "score" } else { "classifier" }
            ),
            reason: format!(
                "the saved head has {} outputs but {task} needs {}; are these adapters for another task?",
                model.num_labels(),
                task.num_labels()
            ),
        });
    }
    Ok(model)
}

/// Logits of every row of a prediction run, in file order.
#[derive(Debug, Clone)]
pub struct Predictions {
    pub task: Task,
    /// `[n * k]`, row-major; `k` = the task's number of outputs.
    pub logits: Vec<f32>,
    /// Mean cross-entropy (or squared error for STS-B) against the gold labels, when labelled.
    pub loss: Option<f64>,
}

/// Runs `model` over `data` in the trainer's evaluation batches (sorted by length,
/// `batch_size` rows, no dropout).
pub fn predict<M: AdaptedClassifier>(
    model: &M,
    data: &EncodedDataset,
    batch_size: usize,
) -> Result<Predictions> {
    let task = data.task;
    let n = data.len();
    if n == 0 {
        return Err(Error::invalid("file", "no rows", "at least one row"));
    }
    let device = model.device().clone();
    let labelled = data.labels_f32().is_some();
    let batches = Batcher::for_dataset(data, batch_size, 0)?
        .eval_batches()
        .into_iter()
        .map(|idx| data.batch(&idx, &device))
        .collect::<Result<Vec<_>>>()?;
    let out = model.eval_batches(&batches, n, labelled)?;
    Ok(Predictions {
        task,
        logits: out.logits,
        loss: out.loss,
    })
}

impl Predictions {
    pub fn len(&self) -> usize {
        self.logits.len() / self.task.num_labels()
    }

    pub fn is_empty(&self) -> bool {
        self.logits.is_empty()
    }

    /// The predicted class id (as a number) or, for STS-B, the predicted score.
    pub fn values(&self) -> Vec<f32> {
        if self.task.is_regression() {
            self.logits.clone()
        } else {
            metrics::argmax_rows(&self.logits, self.task.num_labels())
                .into_iter()
                .map(|c| c as f32)
                .collect()
        }
    }

    /// The task's GLUE metrics against `labels` and `loss`: the same keys (and values) as the
    /// trainer's dev evaluation.
    pub fn metrics(&self, labels: &[f32]) -> Result<BTreeMap<String, f64>> {
        let m = metrics::compute_from_logits(self.task, &self.logits, labels)?;
        let mut out = m.values.clone();
        if let Some(l) = self.loss {
            out.insert("loss".to_string(), l);
        }
        Ok(out)
    }

    /// One prediction as the GLUE server expects it: `entailment`/`not_entailment` for RTE and
    /// QNLI, `0`/`1` for the other classification tasks, a score in [0, 5] for STS-B.
    pub fn glue_label(&self, i: usize) -> String {
        let k = self.task.num_labels();
        let row = &self.logits[i * k..(i + 1) * k];
        match self.task {
            Task::Stsb => format!("{:.3}", row[0].clamp(0.0, 5.0)),
            Task::Rte | Task::Qnli => {
                let c = metrics::argmax_rows(row, k)[0];
                ["entailment", "not_entailment"][c as usize].to_string()
            }
            _ => metrics::argmax_rows(row, k)[0].to_string(),
        }
    }

    /// The GLUE submission file: a header `index\tprediction`, then one row per example.
    pub fn submission_tsv(&self, ids: &[String]) -> String {
        let mut s = String::from("index\tprediction\n");
        for (i, id) in ids.iter().enumerate().take(self.len()) {
            s.push_str(&format!("{id}\t{}\n", self.glue_label(i)));
        }
        s
    }
}

/// Encodes `file` with the tokenizer of `model_dir` at `max_len` tokens (a decoder's pads with
/// the id its read-out skips).
pub fn encode(model_dir: &Path, file: &PredictFile, max_len: usize) -> Result<EncodedDataset> {
    ModelFolder::open(model_dir)?
        .tokenizer(max_len)?
        .encode_dataset(&file.dataset)
}
