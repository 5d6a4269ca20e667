//! [`BertConfig`]: a serde mirror of Hugging Face's BERT `config.json`.
//!
//! Fields and defaults follow `transformers.BertConfig`; unknown fields (`architectures`,
//! `transformers_version`, ...) are ignored.
//!
//! | field | default | meaning |
//! |---|---|---|
//! | `vocab_size` | 30522 | rows of the word-embedding table |
//! | `hidden_size` | 768 | model width; must be divisible by `num_attention_heads` |
//! | `num_hidden_layers` | 12 | transformer layers |
//! | `num_attention_heads` | 12 | attention heads per layer |
//! | `intermediate_size` | 3072 | feed-forward width |
//! | `hidden_act` | `gelu` | feed-forward activation (`gelu` = exact erf GELU, `gelu_new`, `relu`, `silu`, ...) |
//! | `hidden_dropout_prob` | 0.1 | dropout on embeddings, attention output, feed-forward output (training only) |
//! | `attention_probs_dropout_prob` | 0.1 | dropout on attention probabilities (training only) |
//! | `classifier_dropout` | `None` | dropout before the classifier; `None` = `hidden_dropout_prob` |
//! | `max_position_embeddings` | 512 | longest sequence |
//! | `type_vocab_size` | 2 | token-type (segment) ids |
//! | `initializer_range` | 0.02 | std of the normal init of new weights (pooler, classifier, random models) |
//! | `layer_norm_eps` | 1e-12 | LayerNorm epsilon |
//! | `pad_token_id` | 0 | padding id |
//! | `position_embedding_type` | `absolute` | only `absolute` is supported |

use crate::adapters::ModelDims;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The feed-forward activation named by `hidden_act`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HiddenAct {
    /// Exact GELU, `x * Phi(x)` with the error function (Hugging Face's `gelu`).
    #[serde(rename = "gelu")]
    Gelu,
    /// The tanh approximation of GELU (`gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`).
    #[serde(
        rename = "gelu_new",
        alias = "gelu_pytorch_tanh",
        alias = "gelu_fast",
        alias = "gelu_approximate"
    )]
    GeluTanh,
    #[serde(rename = "relu")]
    Relu,
    #[serde(rename = "silu", alias = "swish")]
    Silu,
}

fn d_vocab() -> usize {
    30522
}
fn d_hidden() -> usize {
    768
}
fn d_layers() -> usize {
    12
}
fn d_heads() -> usize {
    12
}
fn d_inter() -> usize {
    3072
}
fn d_act() -> HiddenAct {
    HiddenAct::Gelu
}
fn d_drop() -> f64 {
    0.1
}
fn d_maxpos() -> usize {
    512
}
fn d_types() -> usize {
    2
}
fn d_init() -> f64 {
    0.02
}
fn d_eps() -> f64 {
    1e-12
}
fn d_pos_type() -> String {
    "absolute".to_string()
}
fn d_model_type() -> String {
    "bert".to_string()
}

/// Hugging Face BERT configuration (see the module docs for the field table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    #[serde(default = "d_vocab")]
    pub vocab_size: usize,
    #[serde(default = "d_hidden")]
    pub hidden_size: usize,
    #[serde(default = "d_layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "d_heads")]
    pub num_attention_heads: usize,
    #[serde(default = "d_inter")]
    pub intermediate_size: usize,
    #[serde(default = "d_act")]
    pub hidden_act: HiddenAct,
    #[serde(default = "d_drop")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "d_drop")]
    pub attention_probs_dropout_prob: f64,
    #[serde(default)]
    pub classifier_dropout: Option<f64>,
    #[serde(default = "d_maxpos")]
    pub max_position_embeddings: usize,
    #[serde(default = "d_types")]
    pub type_vocab_size: usize,
    #[serde(default = "d_init")]
    pub initializer_range: f64,
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default = "d_pos_type")]
    pub position_embedding_type: String,
    #[serde(default = "d_model_type")]
    pub model_type: String,
    /// Carried through so that a saved config still names its origin.
    #[serde(
        default,
        rename = "_name_or_path",
        skip_serializing_if = "Option::is_none"
    )]
    pub name_or_path: Option<String>,
}

impl Default for BertConfig {
    /// bert-base-uncased.
    fn default() -> Self {
        serde_json::from_str("{}").expect("all fields have defaults")
    }
}

impl BertConfig {
    /// A 2-layer, hidden-32, 4-head, intermediate-64, vocab-100 config for unit tests.
    pub fn tiny() -> Self {
        BertConfig {
            vocab_size: 100,
            hidden_size: 32,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            intermediate_size: 64,
            max_position_embeddings: 64,
            ..Default::default()
        }
    }

    /// all-MiniLM-L6-v2's shapes (6 layers, hidden 384, 12 heads, intermediate 1536).
    pub fn minilm_l6() -> Self {
        BertConfig {
            hidden_size: 384,
            num_hidden_layers: 6,
            num_attention_heads: 12,
            intermediate_size: 1536,
            ..Default::default()
        }
    }

    /// Read and validate a Hugging Face `config.json`; errors name the file and the field.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let cfg: BertConfig = serde_json::from_str(&text).map_err(|e| {
            // serde does not say which field a type error is in: find it by trying each alone.
            let field = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text)
                .ok()
                .and_then(|m| {
                    m.into_iter().find_map(|(k, v)| {
                        let one = serde_json::Value::Object([(k.clone(), v)].into_iter().collect());
                        serde_json::from_value::<BertConfig>(one)
                            .is_err()
                            .then_some(k)
                    })
                });
            let reason = match field {
                Some(f) => format!("field `{f}`: {e}"),
                None => format!("not a valid BERT config.json: {e}"),
            };
            Error::parse(path, e.line(), reason)
        })?;
        cfg.validate().map_err(|e| match e {
            Error::Config { field, reason } => Error::Config {
                field: format!("{}: {field}", path.display()),
                reason,
            },
            other => other,
        })?;
        Ok(cfg)
    }

    /// Check that the shapes are usable; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, reason: String| {
            Err(Error::Config {
                field: field.to_string(),
                reason,
            })
        };
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            if v == 0 {
                return bad(name, "must be > 0".into());
            }
        }
        if self.hidden_size % self.num_attention_heads != 0 {
            return bad(
                "hidden_size",
                format!(
                    "{} is not divisible by num_attention_heads = {}",
                    self.hidden_size, self.num_attention_heads
                ),
            );
        }
        for (name, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            (
                "attention_probs_dropout_prob",
                self.attention_probs_dropout_prob,
            ),
            ("classifier_dropout", self.classifier_dropout.unwrap_or(0.0)),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(name, format!("{p} is outside [0, 1)"));
            }
        }
        if self.position_embedding_type != "absolute" {
            return bad(
                "position_embedding_type",
                format!(
                    "`{}` is not supported (only `absolute`)",
                    self.position_embedding_type
                ),
            );
        }
        if self.layer_norm_eps.is_nan() || self.layer_norm_eps <= 0.0 {
            return bad(
                "layer_norm_eps",
                format!("{} must be > 0", self.layer_norm_eps),
            );
        }
        Ok(())
    }

    /// The sizes that fix every slot's parameter count.
    pub fn dims(&self) -> ModelDims {
        ModelDims {
            num_layers: self.num_hidden_layers,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
        }
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Dropout before the classifier: `classifier_dropout`, else `hidden_dropout_prob`.
    pub fn classifier_dropout_prob(&self) -> f64 {
        self.classifier_dropout.unwrap_or(self.hidden_dropout_prob)
    }

    /// Parameters of the frozen encoder + pooler: embeddings, layers and pooler (no head).
    pub fn base_params(&self) -> usize {
        let h = self.hidden_size;
        let i = self.intermediate_size;
        let emb =
            (self.vocab_size + self.max_position_embeddings + self.type_vocab_size) * h + 2 * h;
        let layer = 4 * (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h;
        let pooler = h * h + h;
        emb + self.num_hidden_layers * layer + pooler
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_minilm_config_and_fills_defaults() {
        let json = r#"{"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
            "intermediate_size": 1536, "hidden_act": "gelu", "architectures": ["BertModel"],
            "transformers_version": "4.8.2"}"#;
        let c: BertConfig = serde_json::from_str(json).unwrap();
        assert_eq!(c, BertConfig::minilm_l6());
        assert_eq!(c.vocab_size, 30522);
        assert_eq!(c.layer_norm_eps, 1e-12);
        assert_eq!(c.dims(), ModelDims::MINILM_L6);
        assert_eq!(c.head_dim(), 32);
        // all-MiniLM-L6-v2 has 22,713,216 parameters in BertModel (embeddings + 6 layers + pooler).
        assert_eq!(c.base_params(), 22_713_216);
        // bert-base-uncased: 109,482,240.
        assert_eq!(BertConfig::default().base_params(), 109_482_240);
    }

    #[test]
    fn bad_configs_name_the_field() {
        let mut c = BertConfig::tiny();
        c.num_attention_heads = 5;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("hidden_size") && e.contains("5"), "{e}");
        let e = serde_json::from_str::<BertConfig>(r#"{"hidden_act": "tanhh"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("tanhh"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(&p, r#"{"hidden_size": 0}"#).unwrap();
        let e = BertConfig::from_file(&p).unwrap_err().to_string();
        assert!(
            e.contains("config.json") && e.contains("hidden_size"),
            "{e}"
        );
        std::fs::write(&p, r#"{"hidden_size": "big"}"#).unwrap();
        let e = BertConfig::from_file(&p).unwrap_err().to_string();
        assert!(
            e.contains("config.json") && e.contains("hidden_size"),
            "{e}"
        );
    }
}
