//! Which base model `heterolora predict` loads saved adapters onto.
//!
//! `--model DIR` when given. Otherwise the adapter folder's `adapter_config.json` names its base
//! (`base_model_name_or_path`): a decoder's adapters name the absolute folder they were trained
//! on, so that folder is used when it exists here. BERT's adapters name the hub id of the model
//! `fetch model` keeps in `datasets/` (`sentence-transformers/all-MiniLM-L6-v2`), which is not a
//! folder: they load onto the default model as they always have. A decoder's adapters whose base
//! is not a folder here would meet BERT's default model, so that is an error that says what to
//! pass.

use crate::adapters::peft::ADAPTER_CONFIG;
use crate::adapters::Architecture;
use crate::model::STATE_FILE;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The base model folder for the adapters in `adapter_dir`: `explicit` (`--model`), else the
/// existing folder `adapter_config.json` names, else `default` (the default model's folder).
/// Fails when the adapters are a decoder's and name no folder that exists here.
pub fn resolve_base_model(
    explicit: Option<&Path>,
    adapter_dir: &Path,
    default: impl FnOnce() -> PathBuf,
) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let named = named_base(adapter_dir)?;
    if let Some(p) = named
        .as_deref()
        .map(Path::new)
        .filter(|p| p.join("config.json").is_file())
    {
        return Ok(p.to_path_buf());
    }
    if let Some(arch) = decoder_kind(adapter_dir)? {
        let config = adapter_dir.join(ADAPTER_CONFIG);
        let reason = match &named {
            Some(n) => format!(
                "adapters of {arch}; {}'s base_model_name_or_path {n:?} is not a model \
                 folder here",
                config.display()
            ),
            None => format!(
                "adapters of {arch}, and {} names no base_model_name_or_path",
                config.display()
            ),
        };
        return Err(Error::Asset {
            what: format!("base model of {}", adapter_dir.display()),
            reason,
            hint: "pass --model DIR, the folder of the model the adapters were trained on \
                   (config.json, tokenizer and safetensors)"
                .into(),
        });
    }
    Ok(default())
}

/// `base_model_name_or_path` of the folder's `adapter_config.json`, when it has one.
fn named_base(adapter_dir: &Path) -> Result<Option<String>> {
    Ok(read_json(&adapter_dir.join(ADAPTER_CONFIG))?.and_then(|v| {
        v.get("base_model_name_or_path")
            .and_then(|x| x.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }))
}

/// Which decoder the adapters were saved from, in words (`a llama decoder`): our state file
/// records it; PEFT's files show it in their module names (`fc1` is OPT's, `gate_proj` Llama's
/// or Qwen2's, `q_proj` any decoder's). `None` for BERT's adapters.
fn decoder_kind(adapter_dir: &Path) -> Result<Option<String>> {
    if let Some(state) = read_json(&adapter_dir.join(STATE_FILE))? {
        let arch = state
            .get("architecture")
            .and_then(|a| serde_json::from_value::<Architecture>(a.clone()).ok());
        if let Some(a) = arch.filter(|a| *a != Architecture::Bert) {
            return Ok(Some(format!("a {a} decoder")));
        }
    }
    let Some(config) = read_json(&adapter_dir.join(ADAPTER_CONFIG))? else {
        return Ok(None);
    };
    let mut names: Vec<String> = Vec::new();
    if let Some(t) = config.get("target_modules") {
        match t {
            serde_json::Value::String(s) => names.push(s.clone()),
            serde_json::Value::Array(xs) => {
                names.extend(xs.iter().filter_map(|x| x.as_str()).map(str::to_string))
            }
            _ => {}
        }
    }
    for field in ["rank_pattern", "alpha_pattern"] {
        if let Some(m) = config.get(field).and_then(|m| m.as_object()) {
            names.extend(m.keys().cloned());
        }
    }
    // The last segment of each named module against each decoder's module names.
    let lasts = |arch: Architecture| -> Vec<&'static str> {
        arch.lora_kinds()
            .iter()
            .filter_map(|&k| arch.module(k))
            .map(|m| m.rsplit('.').next().unwrap_or(m))
            .collect()
    };
    let (opt, llama) = (lasts(Architecture::Opt), lasts(Architecture::Llama));
    let named: Vec<&str> = names
        .iter()
        .map(|n| n.rsplit('.').next().unwrap_or(n))
        .collect();
    let only = |these: &[&str], other: &[&str]| {
        named
            .iter()
            .any(|n| these.contains(n) && !other.contains(n))
    };
    Ok(if only(&llama, &opt) {
        Some("a llama or qwen2 decoder".into())
    } else if only(&opt, &llama) {
        Some("an opt decoder".into())
    } else if named.iter().any(|n| opt.contains(n)) {
        Some("a decoder".into())
    } else {
        None
    })
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::parse(path, e.line(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter_dir(config: serde_json::Value) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ADAPTER_CONFIG), config.to_string()).unwrap();
        dir
    }

    #[test]
    fn the_named_folder_is_used_when_it_exists_and_bert_keeps_its_default() {
        let base = tempfile::tempdir().unwrap();
        std::fs::write(base.path().join("config.json"), "{}").unwrap();
        let default = || PathBuf::from("default-model");
        let named = base.path().display().to_string();
        let d = adapter_dir(serde_json::json!({
            "base_model_name_or_path": named,
            "target_modules": ["q_proj", "v_proj"],
        }));
        assert_eq!(
            resolve_base_model(None, d.path(), default).unwrap(),
            base.path()
        );
        // --model wins.
        let explicit = Path::new("elsewhere");
        assert_eq!(
            resolve_base_model(Some(explicit), d.path(), default).unwrap(),
            explicit
        );
        // BERT's adapters name the hub id: the default model, as before.
        let d = adapter_dir(serde_json::json!({
            "base_model_name_or_path": "sentence-transformers/all-MiniLM-L6-v2",
            "target_modules": ["query", "value", "encoder.layer.4.output.dense"],
        }));
        assert_eq!(
            resolve_base_model(None, d.path(), default).unwrap(),
            default()
        );
    }

    #[test]
    fn a_decoder_without_its_folder_says_to_pass_model() {
        let gone = tempfile::tempdir().unwrap().path().join("llama");
        let d = adapter_dir(serde_json::json!({
            "base_model_name_or_path": gone.display().to_string(),
            "target_modules": ["gate_proj", "layers.1.self_attn.q_proj"],
        }));
        let e = resolve_base_model(None, d.path(), || PathBuf::from("x"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--model DIR") && e.contains("llama") && e.contains(ADAPTER_CONFIG),
            "{e}"
        );
        // OPT's fc1 shows an OPT decoder.
        let d = adapter_dir(serde_json::json!({
            "base_model_name_or_path": "facebook/opt-350m",
            "target_modules": ["fc1"],
        }));
        let e = resolve_base_model(None, d.path(), || PathBuf::from("x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("opt") && e.contains("facebook/opt-350m"), "{e}");
    }
}
