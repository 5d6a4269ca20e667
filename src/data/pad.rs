//! The pad id of a decoder model folder (OPT, Llama, Qwen2), shared by its [`super::Tokenizer`]
//! (which right-pads batches with it) and its classifier (which reads the logits at the rightmost
//! token that is not it, as transformers' `*ForSequenceClassification`), so that the two agree.
//!
//! The id is `config.json`'s `pad_token_id`, else the tokenizer's pad token (`tokenizer.json`'s
//! padding, `tokenizer_config.json`'s or `special_tokens_map.json`'s `pad_token`), else
//! `eos_token_id`: what transformers users set for Llama (`tokenizer.pad_token =
//! tokenizer.eos_token`), said once on stderr. BERT folders keep `[PAD]`
//! ([`super::Tokenizer::from_file`]).

use crate::{Error, Result};
use serde_json::Value;
use std::path::Path;
use std::sync::Once;

/// `model_type`s whose folders take their pad id from here.
pub const DECODER_MODEL_TYPES: [&str; 3] = ["opt", "llama", "qwen2"];

/// Where a decoder's pad id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadSource {
    /// `config.json`'s `pad_token_id`.
    Config,
    /// The tokenizer's pad token.
    Tokenizer,
    /// `config.json`'s `eos_token_id` (the first, when it is a list).
    Eos,
}

/// A decoder's pad id and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PadId {
    pub id: u32,
    pub source: PadSource,
}

/// `model_type` of a parsed `config.json`.
pub fn model_type(config: &Value) -> Option<&str> {
    config.get("model_type").and_then(Value::as_str)
}

/// Whether a parsed `config.json` is one of [`DECODER_MODEL_TYPES`].
pub fn is_decoder(config: &Value) -> bool {
    model_type(config).is_some_and(|t| DECODER_MODEL_TYPES.contains(&t))
}

/// `<dir>/config.json`, parsed; `None` when the folder has none.
pub fn read_config(dir: &Path) -> Result<Option<Value>> {
    let path = dir.join("config.json");
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::parse(&path, e.line(), e.to_string()))
}

/// A token id field (`pad_token_id`, `eos_token_id`): a number, or the first of a list (Llama 3
/// lists several end-of-sequence ids); `null` and anything else are absent.
fn id_field(config: &Value, key: &str) -> Option<u32> {
    let v = config.get(key)?;
    let v = match v {
        Value::Array(a) => a.first()?,
        v => v,
    };
    v.as_u64().and_then(|n| u32::try_from(n).ok())
}

/// The pad id by the rule of the module docs, from the config's two ids and the tokenizer's pad
/// id (asked only when the config has no `pad_token_id`). `None` when there is none of the three.
pub fn choose(
    config_pad: Option<u32>,
    tokenizer_pad: impl FnOnce() -> Option<u32>,
    eos: Option<u32>,
) -> Option<PadId> {
    if let Some(id) = config_pad {
        return Some(PadId {
            id,
            source: PadSource::Config,
        });
    }
    if let Some(id) = tokenizer_pad() {
        return Some(PadId {
            id,
            source: PadSource::Tokenizer,
        });
    }
    eos.map(|id| PadId {
        id,
        source: PadSource::Eos,
    })
}

/// The pad token a tokenizer declares: `tokenizer.json`'s padding section, else the
/// `pad_token` of `tokenizer_config.json` or `special_tokens_map.json` in `dir` (a string or
/// `{"content": ...}`), looked up in the vocabulary.
pub fn tokenizer_pad_id(tok: &tokenizers::Tokenizer, dir: &Path) -> Option<u32> {
    if let Some(p) = tok.get_padding() {
        return Some(p.pad_id);
    }
    ["tokenizer_config.json", "special_tokens_map.json"]
        .iter()
        .find_map(|f| {
            let text = std::fs::read_to_string(dir.join(f)).ok()?;
            let v: Value = serde_json::from_str(&text).ok()?;
            let token = match v.get("pad_token")? {
                Value::String(s) => s.clone(),
                Value::Object(o) => o.get("content")?.as_str()?.to_string(),
                _ => return None,
            };
            tok.token_to_id(&token)
        })
}

/// The pad id of the decoder folder `dir` with parsed `config`: [`choose`] over its config and
/// its tokenizer (`tok` as read from its file, padding section included, or `<dir>/tokenizer.json`
/// when `None`; read only when the config has no pad id).
/// Falling back to the end-of-sequence id is said once per process on stderr.
pub fn decoder_pad_id(
    dir: &Path,
    config: &Value,
    tok: Option<&tokenizers::Tokenizer>,
) -> Option<PadId> {
    let from_tokenizer = || match tok {
        Some(t) => tokenizer_pad_id(t, dir),
        None => {
            let t = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).ok()?;
            tokenizer_pad_id(&t, dir)
        }
    };
    let pad = choose(
        id_field(config, "pad_token_id"),
        from_tokenizer,
        id_field(config, "eos_token_id"),
    );
    if let Some(PadId {
        id,
        source: PadSource::Eos,
    }) = pad
    {
        static SAID: Once = Once::new();
        SAID.call_once(|| {
            eprintln!(
                "{}: no pad_token_id in config.json and no pad token in the tokenizer: padding \
                 with eos_token_id {id} (as transformers users set pad = eos for Llama)",
                dir.display()
            )
        });
    }
    pad
}

/// [`decoder_pad_id`], or an error naming what to set when the folder has none.
pub fn require_decoder_pad_id(
    dir: &Path,
    config: &Value,
    tok: Option<&tokenizers::Tokenizer>,
) -> Result<PadId> {
    decoder_pad_id(dir, config, tok).ok_or_else(|| Error::Config {
        field: format!("{}: pad_token_id", dir.join("config.json").display()),
        reason: "the decoder has no pad_token_id, its tokenizer no pad token and the config no \
                 eos_token_id, so batches cannot be padded; set pad_token_id in config.json"
            .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_config_wins_then_the_tokenizer_then_eos() {
        let never = || -> Option<u32> { panic!("the tokenizer is asked only without a config id") };
        assert_eq!(
            choose(Some(1), never, Some(2)),
            Some(PadId {
                id: 1,
                source: PadSource::Config
            })
        );
        assert_eq!(
            choose(None, || Some(5), Some(2)),
            Some(PadId {
                id: 5,
                source: PadSource::Tokenizer
            })
        );
        assert_eq!(
            choose(None, || None, Some(2)),
            Some(PadId {
                id: 2,
                source: PadSource::Eos
            })
        );
        assert_eq!(choose(None, || None, None), None);
    }

    #[test]
    fn id_fields_take_numbers_and_the_first_of_lists() {
        let c = json!({"pad_token_id": null, "eos_token_id": [128001, 128009], "bos_token_id": 7});
        assert_eq!(id_field(&c, "pad_token_id"), None);
        assert_eq!(id_field(&c, "eos_token_id"), Some(128001));
        assert_eq!(id_field(&c, "bos_token_id"), Some(7));
        assert_eq!(id_field(&c, "missing"), None);
        assert!(is_decoder(&json!({"model_type": "qwen2"})));
        assert!(!is_decoder(&json!({"model_type": "bert"})));
    }

    #[test]
    fn a_folder_without_pad_falls_back_to_the_tokenizer_config_then_eos() {
        let dir = tempfile::tempdir().unwrap();
        // A word-level vocabulary with a pad token but no padding section.
        let tok_json = json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
            "decoder": null,
            "model": {"type": "WordLevel", "vocab": {"<unk>": 0, "<pad>": 3, "</s>": 2, "a": 4},
                      "unk_token": "<unk>"}
        });
        std::fs::write(dir.path().join("tokenizer.json"), tok_json.to_string()).unwrap();
        let cfg = json!({"model_type": "llama", "eos_token_id": 2});
        let eos = decoder_pad_id(dir.path(), &cfg, None).unwrap();
        assert_eq!((eos.id, eos.source), (2, PadSource::Eos));
        std::fs::write(
            dir.path().join("tokenizer_config.json"),
            json!({"pad_token": {"content": "<pad>"}}).to_string(),
        )
        .unwrap();
        let tok = decoder_pad_id(dir.path(), &cfg, None).unwrap();
        assert_eq!((tok.id, tok.source), (3, PadSource::Tokenizer));
        let with_cfg = json!({"model_type": "llama", "eos_token_id": 2, "pad_token_id": 0});
        assert_eq!(
            decoder_pad_id(dir.path(), &with_cfg, None).unwrap().source,
            PadSource::Config
        );
        let none = require_decoder_pad_id(dir.path(), &json!({"model_type": "opt"}), None);
        assert!(none.is_ok(), "the tokenizer config still names <pad>");
        std::fs::remove_file(dir.path().join("tokenizer_config.json")).unwrap();
        let err = require_decoder_pad_id(dir.path(), &json!({"model_type": "opt"}), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("pad_token_id"), "{err}");
    }
}
