//! Tokenisation with the model's own `tokenizer.json` (the `tokenizers` crate, the same Rust code
//! behind Hugging Face's fast tokenizers, so ids match `transformers` exactly): BERT's WordPiece,
//! and the byte-level or SentencePiece-style BPE of the decoders, whose pad id comes from
//! [`super::pad`] so that batches and the classifier's read-out agree.

use super::glue::{GlueDataset, Label, Split, Task};
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use tokenizers::{TruncationDirection, TruncationParams, TruncationStrategy};

/// One encoded input: `[CLS] a [SEP] (b [SEP])`, unpadded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoding {
    pub ids: Vec<u32>,
    /// 0 for the first segment (with `[CLS]` and its `[SEP]`), 1 for the second.
    pub type_ids: Vec<u32>,
}

/// A tokenizer that truncates pairs to `max_len` tokens (longest segment first, as
/// `transformers` does) and never pads: padding happens per batch in
/// [`EncodedDataset::batch`](super::EncodedDataset::batch).
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    max_len: usize,
    pad_id: u32,
    path: PathBuf,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("path", &self.path)
            .field("max_len", &self.max_len)
            .field("vocab_size", &self.vocab_size())
            .finish()
    }
}

impl Tokenizer {
    /// Loads a `tokenizer.json`. Its own padding setting (all-MiniLM-L6-v2 ships fixed padding
    /// to 128) is switched off and its truncation replaced by `max_len`.
    pub fn from_file(path: impl AsRef<Path>, max_len: usize) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if max_len < 4 {
            return Err(Error::invalid(
                "max_len",
                max_len,
                "at least 4 (room for [CLS], two [SEP] and one token)",
            ));
        }
        if !path.is_file() {
            return Err(Error::Asset {
                what: "tokenizer".into(),
                reason: format!("{} does not exist", path.display()),
                hint:
                    "Run `heterolora fetch model` or point HETEROLORA_MODEL_DIR at a model folder"
                        .into(),
            });
        }
        let mut inner = tokenizers::Tokenizer::from_file(&path)
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))?;
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))?;
        let pad_id = inner.token_to_id("[PAD]").unwrap_or(0);
        Ok(Tokenizer {
            inner,
            max_len,
            pad_id,
            path,
        })
    }

    /// Loads `<dir>/tokenizer.json`. In a decoder's folder (`config.json`'s `model_type` opt,
    /// llama or qwen2) the pad id is [`super::pad::require_decoder_pad_id`]'s, the id the
    /// decoder's classifier reads its last non-pad token by; elsewhere `[PAD]`'s.
    pub fn from_model_dir(dir: impl AsRef<Path>, max_len: usize) -> Result<Self> {
        let dir = dir.as_ref();
        let mut tok = Self::from_file(dir.join("tokenizer.json"), max_len)?;
        if let Some(cfg) = super::pad::read_config(dir)?.filter(super::pad::is_decoder) {
            tok.pad_id = super::pad::require_decoder_pad_id(dir, &cfg, None)?.id;
        }
        Ok(tok)
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Id used to pad `input_ids`.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The wrapped `tokenizers` tokenizer, for anything this type does not cover.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Encodes a sentence or a sentence pair, with special tokens, truncated to `max_len`.
    pub fn encode_pair(&self, a: &str, b: Option<&str>) -> Result<Encoding> {
        let enc = match b {
            Some(b) => self.inner.encode((a, b), true),
            None => self.inner.encode(a, true),
        }
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(Encoding {
            ids: enc.get_ids().to_vec(),
            type_ids: enc.get_type_ids().to_vec(),
        })
    }

    /// Encodes every example of a split (in parallel); errors name the file and line.
    pub fn encode_dataset(&self, ds: &GlueDataset) -> Result<EncodedDataset> {
        let inputs: Vec<tokenizers::EncodeInput> = ds
            .examples
            .iter()
            .map(|e| match &e.text_b {
                Some(b) => (e.text_a.as_str(), b.as_str()).into(),
                None => e.text_a.as_str().into(),
            })
            .collect();
        let encs = match self.inner.encode_batch(inputs, true) {
            Ok(encs) => encs,
            Err(batch_err) => {
                // Find the row to blame.
                for e in &ds.examples {
                    if let Err(err) = self.encode_pair(&e.text_a, e.text_b.as_deref()) {
                        return Err(Error::parse(&ds.path, e.line, format!("tokenizer: {err}")));
                    }
                }
                return Err(Error::Tokenizer(format!(
                    "{}: {batch_err}",
                    ds.path.display()
                )));
            }
        };
        let examples = encs
            .into_iter()
            .zip(&ds.examples)
            .map(|(enc, e)| EncodedExample {
                ids: enc.get_ids().to_vec(),
                type_ids: enc.get_type_ids().to_vec(),
                label: e.label,
            })
            .collect();
        Ok(EncodedDataset {
            task: ds.task,
            split: ds.split,
            examples,
            pad_id: self.pad_id,
            max_len: self.max_len,
        })
    }
}

/// One tokenised example.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedExample {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    pub label: Label,
}

impl EncodedExample {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// A tokenised split, ready for [`Batcher`](super::Batcher) and [`EncodedDataset::batch`].
#[derive(Debug, Clone)]
pub struct EncodedDataset {
    pub task: Task,
    pub split: Split,
    pub examples: Vec<EncodedExample>,
    /// Id that pads `input_ids`.
    pub pad_id: u32,
    /// The truncation length it was encoded with.
    pub max_len: usize,
}

impl EncodedDataset {
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// Token count of each example, in order.
    pub fn lengths(&self) -> Vec<usize> {
        self.examples.iter().map(|e| e.ids.len()).collect()
    }

    /// Gold labels as numbers; `None` if any example is unlabelled.
    pub fn labels_f32(&self) -> Option<Vec<f32>> {
        self.examples.iter().map(|e| e.label.as_f32()).collect()
    }

    /// How many examples were cut to `max_len` (their length equals it).
    pub fn num_at_max_len(&self) -> usize {
        self.examples
            .iter()
            .filter(|e| e.ids.len() >= self.max_len)
            .count()
    }

    /// A subset, e.g. for a quick proxy-scoring pass over the first `n` examples.
    pub fn select(&self, indices: &[usize]) -> EncodedDataset {
        EncodedDataset {
            examples: indices.iter().map(|&i| self.examples[i].clone()).collect(),
            ..self.clone_empty()
        }
    }

    fn clone_empty(&self) -> EncodedDataset {
        EncodedDataset {
            task: self.task,
            split: self.split,
            examples: Vec::new(),
            pad_id: self.pad_id,
            max_len: self.max_len,
        }
    }
}
