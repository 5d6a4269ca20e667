//! PEFT's adapter files: key names, `adapter_config.json`, and safetensors I/O.
//!
//! PEFT (0.21) saves a LoRA adapter of `BertForSequenceClassification` as
//! - `adapter_model.safetensors` with keys
//!   `base_model.model.bert.encoder.layer.<i>.attention.self.query.lora_A.weight` (`[r, d_in]`),
//!   `...lora_B.weight` (`[d_out, r]`) and the head (`modules_to_save`) as
//!   `base_model.model.classifier.weight` / `.bias`;
//! - `adapter_config.json` with `r`, `lora_alpha`, `target_modules`, `rank_pattern`,
//!   `alpha_pattern`, ... (all fields PEFT writes, sorted).
//!
//! Shortcut adapters have no PEFT counterpart; they use the same key scheme with the slot kind as
//! module name (`base_model.model.bert.encoder.layer.3.residual1.lora_A.weight`) in a file of our
//! own (see [`crate::model::SequenceClassifier::save_adapters`]).

use crate::adapters::backbone::Architecture;
use crate::adapters::SlotId;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

pub use crate::adapters::backbone::{Factor, PEFT_PREFIX};
/// Key of the classifier weight in PEFT's file (`modules_to_save = ["classifier", ...]`).
pub const HEAD_WEIGHT_KEY: &str = "base_model.model.classifier.weight";
/// Key of the classifier bias.
pub const HEAD_BIAS_KEY: &str = "base_model.model.classifier.bias";
/// PEFT's config file name.
pub const ADAPTER_CONFIG: &str = "adapter_config.json";
/// PEFT's weights file name.
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";

/// The module path of a slot inside `BertForSequenceClassification`:
/// `bert.encoder.layer.3.attention.self.value`, or `bert.encoder.layer.3.residual1` for shortcuts.
/// Other architectures: [`Architecture::module_path`].
pub fn module_path(slot: SlotId) -> String {
    Architecture::Bert.module_path(slot)
}

/// The PEFT-style key of one factor (`lora_A` or `lora_B`) of a slot's adapter in BERT.
pub fn slot_key(slot: SlotId, factor: &str) -> String {
    Architecture::Bert.slot_key(slot, factor)
}

/// Parses a BERT adapter key (with or without `base_model.model.` and `bert.`) into slot and
/// factor. Other architectures: [`Architecture::parse_key`].
pub fn parse_key(key: &str) -> Option<(SlotId, Factor)> {
    Architecture::Bert.parse_key(key)
}

/// Key of a decoder's classification head (`score`, no bias) in PEFT's file.
pub const SCORE_WEIGHT_KEY: &str = "base_model.model.score.weight";

/// Whether a key is a decoder's `score` head (with or without prefix, as PEFT saves or wraps it).
pub fn score_key(key: &str) -> bool {
    let k = key.strip_prefix(PEFT_PREFIX).unwrap_or(key);
    matches!(k, "score.weight" | "score.modules_to_save.default.weight")
}

/// Whether a key is the classifier head (`classifier.weight` / `.bias`, with or without prefix).
pub fn head_key(key: &str) -> Option<&'static str> {
    let k = key.strip_prefix(PEFT_PREFIX).unwrap_or(key);
    let k = k.strip_prefix("modules_to_save.").unwrap_or(k);
    match k {
        "classifier.weight" | "classifier.modules_to_save.default.weight" => Some("weight"),
        "classifier.bias" | "classifier.modules_to_save.default.bias" => Some("bias"),
        _ => None,
    }
}

/// One LoRA slot as PEFT sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeftSlot {
    pub slot: SlotId,
    pub r: usize,
    pub lora_alpha: f64,
}

/// The parts of a PEFT LoRA `adapter_config.json` that fix the adapter.
#[derive(Debug, Clone, PartialEq)]
pub struct PeftConfig {
    pub r: usize,
    pub lora_alpha: f64,
    pub lora_dropout: f64,
    pub target_modules: Value,
    pub rank_pattern: BTreeMap<String, usize>,
    pub alpha_pattern: BTreeMap<String, f64>,
    pub task_type: Option<String>,
    /// The whole file, as read.
    pub raw: Value,
}

/// Whether a PEFT pattern key matches a module path, as PEFT's `(.*\.)?{key}$` does for the
/// literal module names it writes.
fn pattern_matches(pattern: &str, module: &str) -> bool {
    module == pattern || module.ends_with(&format!(".{pattern}"))
}

impl PeftConfig {
    /// Reads and checks `adapter_config.json`; unsupported variants (DoRA, rsLoRA, biases,
    /// fan_in_fan_out, other PEFT types) are errors that say so.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let raw: Value = serde_json::from_str(&text)
            .map_err(|e| Error::parse(path, e.line(), format!("not valid JSON: {e}")))?;
        let field = |name: &str, reason: String| Error::Config {
            field: format!("{}: {name}", path.display()),
            reason,
        };
        let obj = raw
            .as_object()
            .ok_or_else(|| field("(top level)", "expected a JSON object".into()))?;
        let peft_type = obj
            .get("peft_type")
            .and_then(Value::as_str)
            .unwrap_or("LORA");
        if peft_type != "LORA" {
            return Err(field(
                "peft_type",
                format!("`{peft_type}` is not supported (only LORA)"),
            ));
        }
        for flag in ["use_dora", "use_rslora", "fan_in_fan_out", "lora_bias"] {
            if obj.get(flag).and_then(Value::as_bool) == Some(true) {
                return Err(field(flag, "true is not supported".into()));
            }
        }
        if let Some(b) = obj.get("bias").and_then(Value::as_str) {
            if b != "none" {
                return Err(field(
                    "bias",
                    format!("`{b}` is not supported (only \"none\")"),
                ));
            }
        }
        let r = obj
            .get("r")
            .and_then(Value::as_u64)
            .ok_or_else(|| field("r", "missing or not a positive integer".into()))?
            as usize;
        let lora_alpha = obj
            .get("lora_alpha")
            .and_then(Value::as_f64)
            .ok_or_else(|| field("lora_alpha", "missing or not a number".into()))?;
        let lora_dropout = obj
            .get("lora_dropout")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let mut rank_pattern = BTreeMap::new();
        if let Some(m) = obj.get("rank_pattern").and_then(Value::as_object) {
            for (k, v) in m {
                let v = v.as_u64().ok_or_else(|| {
                    field(&format!("rank_pattern.{k}"), format!("{v} is not a rank"))
                })?;
                rank_pattern.insert(k.clone(), v as usize);
            }
        }
        let mut alpha_pattern = BTreeMap::new();
        if let Some(m) = obj.get("alpha_pattern").and_then(Value::as_object) {
            for (k, v) in m {
                let v = v.as_f64().ok_or_else(|| {
                    field(
                        &format!("alpha_pattern.{k}"),
                        format!("{v} is not a number"),
                    )
                })?;
                alpha_pattern.insert(k.clone(), v);
            }
        }
        Ok(PeftConfig {
            r,
            lora_alpha,
            lora_dropout,
            target_modules: obj.get("target_modules").cloned().unwrap_or(Value::Null),
            rank_pattern,
            alpha_pattern,
            task_type: obj
                .get("task_type")
                .and_then(Value::as_str)
                .map(str::to_string),
            raw,
        })
    }

    /// The rank PEFT would give `slot` of BERT (rank_pattern, else r).
    pub fn rank_of(&self, slot: SlotId) -> usize {
        self.rank_in(Architecture::Bert, slot)
    }

    /// The alpha PEFT would give `slot` of BERT (alpha_pattern, else lora_alpha).
    pub fn alpha_of(&self, slot: SlotId) -> f64 {
        self.alpha_in(Architecture::Bert, slot)
    }

    /// The rank PEFT would give `slot` of a model of architecture `arch`.
    pub fn rank_in(&self, arch: Architecture, slot: SlotId) -> usize {
        let m = arch.module_path(slot);
        self.rank_pattern
            .iter()
            .find(|(k, _)| pattern_matches(k, &m))
            .map_or(self.r, |(_, v)| *v)
    }

    /// The alpha PEFT would give `slot` of a model of architecture `arch`.
    pub fn alpha_in(&self, arch: Architecture, slot: SlotId) -> f64 {
        let m = arch.module_path(slot);
        self.alpha_pattern
            .iter()
            .find(|(k, _)| pattern_matches(k, &m))
            .map_or(self.lora_alpha, |(_, v)| *v)
    }
}

fn most_common<T: PartialEq + Copy>(xs: impl Iterator<Item = T>) -> Option<T> {
    let mut counts: Vec<(T, usize)> = Vec::new();
    for x in xs {
        match counts.iter_mut().find(|(v, _)| *v == x) {
            Some((_, c)) => *c += 1,
            None => counts.push((x, 1)),
        }
    }
    // Ties go to the first value seen, so the result is deterministic.
    let mut best: Option<(T, usize)> = None;
    for (v, c) in counts {
        if best.is_none_or(|(_, bc)| c > bc) {
            best = Some((v, c));
        }
    }
    best.map(|(v, _)| v)
}

fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

/// `target_modules` for a set of LoRA slots: a kind present in every layer is named by its
/// module name when that name is unambiguous (BERT: `query`, `key`, `value`,
/// `attention.output.dense`, `intermediate.dense`; decoders: `q_proj`, `fc1`, `gate_proj`, ...);
/// otherwise each module is listed by its layer path.
fn target_modules(arch: Architecture, slots: &[PeftSlot], num_layers: usize) -> Vec<String> {
    let mut out = Vec::new();
    for &kind in arch.lora_kinds() {
        let layers: Vec<usize> = slots
            .iter()
            .filter(|s| s.slot.kind == kind)
            .map(|s| s.slot.layer)
            .collect();
        if layers.is_empty() {
            continue;
        }
        match arch.target_name(kind) {
            Some(name) if layers.len() == num_layers => out.push(name.to_string()),
            _ => out.extend(
                layers
                    .iter()
                    .map(|&l| arch.pattern_key(SlotId::new(l, kind))),
            ),
        }
    }
    out.sort();
    out
}

/// A PEFT `adapter_config.json` (as PEFT 0.21 writes it) for LoRA `slots` of a
/// `BertForSequenceClassification` with `num_layers` layers.
pub fn adapter_config_json(
    slots: &[PeftSlot],
    num_layers: usize,
    lora_dropout: f64,
    base_model_name_or_path: Option<&str>,
) -> Value {
    adapter_config_json_for(
        Architecture::Bert,
        slots,
        num_layers,
        lora_dropout,
        base_model_name_or_path,
    )
}

/// A PEFT `adapter_config.json` for LoRA `slots` of a sequence classifier of architecture `arch`.
pub fn adapter_config_json_for(
    arch: Architecture,
    slots: &[PeftSlot],
    num_layers: usize,
    lora_dropout: f64,
    base_model_name_or_path: Option<&str>,
) -> Value {
    let r = most_common(slots.iter().map(|s| s.r)).unwrap_or(8);
    let alpha = most_common(slots.iter().map(|s| s.lora_alpha)).unwrap_or(8.0);
    let mut rank_pattern = Map::new();
    let mut alpha_pattern = Map::new();
    for s in slots {
        if s.r != r {
            rank_pattern.insert(arch.pattern_key(s.slot), json!(s.r));
        }
        if s.lora_alpha != alpha {
            alpha_pattern.insert(arch.pattern_key(s.slot), number(s.lora_alpha));
        }
    }
    // serde_json's Map is ordered by key: the file comes out sorted, as PEFT writes it.
    let cfg = json!({
        "alora_invocation_tokens": null,
        "alpha_pattern": alpha_pattern,
        "arrow_config": null,
        "auto_mapping": null,
        "base_model_name_or_path": base_model_name_or_path,
        "bias": "none",
        "corda_config": null,
        "ensure_weight_tying": false,
        "eva_config": null,
        "exclude_modules": null,
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": true,
        "kasa_config": null,
        "layer_replication": null,
        "layers_pattern": null,
        "layers_to_transform": null,
        "loftq_config": {},
        "lora_alpha": number(alpha),
        "lora_bias": false,
        "lora_dropout": lora_dropout,
        "lora_ga_config": null,
        "megatron_config": null,
        "megatron_core": "megatron.core",
        "modules_to_save": ["classifier", "score"],
        "monteclora_config": null,
        "peft_type": "LORA",
        "peft_version": "0.21.2",
        "qalora_group_size": 16,
        "r": r,
        "rank_pattern": rank_pattern,
        "revision": null,
        "target_modules": target_modules(arch, slots, num_layers),
        "target_parameters": null,
        "task_type": "SEQ_CLS",
        "trainable_token_indices": null,
        "use_bdlora": null,
        "use_dora": false,
        "use_qalora": false,
        "use_rslora": false,
        "velora_config": null
    });
    cfg
}

/// Writes tensors to a safetensors file with PEFT's metadata (`{"format": "pt"}`).
pub fn save_safetensors(tensors: &BTreeMap<String, Tensor>, path: &Path) -> Result<()> {
    let mut views = Vec::with_capacity(tensors.len());
    for (k, t) in tensors {
        if !matches!(
            t.dtype(),
            DType::F32 | DType::F64 | DType::F16 | DType::BF16
        ) {
            return Err(Error::invalid(
                format!("dtype of `{k}`"),
                t.dtype().as_str(),
                "a float dtype",
            ));
        }
        views.push((k.clone(), t.to_device(&Device::Cpu)?.contiguous()?));
    }
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::tensor::serialize_to_file(views, Some(meta), path)
        .map_err(|e| Error::Other(format!("{}: writing safetensors: {e}", path.display())))
}

/// Reads every tensor of a safetensors file onto `device`.
pub fn load_safetensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    if !path.exists() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "file not found"),
        ));
    }
    candle_core::safetensors::load(path, device)
        .map_err(|e| Error::parse(path, 0, format!("not a readable safetensors file: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::SlotKind;

    #[test]
    fn keys_roundtrip_for_every_slot_kind() {
        for kind in SlotKind::ALL {
            let slot = SlotId::new(2, kind);
            for (f, factor) in [("lora_A", Factor::A), ("lora_B", Factor::B)] {
                let k = slot_key(slot, f);
                assert_eq!(parse_key(&k), Some((slot, factor)), "{k}");
            }
        }
        assert_eq!(
            slot_key(SlotId::new(0, SlotKind::Query), "lora_A"),
            "base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight"
        );
        assert_eq!(
            parse_key("base_model.model.encoder.layer.1.output.dense.lora_B.weight"),
            Some((SlotId::new(1, SlotKind::FfnOut), Factor::B))
        );
        assert_eq!(
            parse_key("base_model.model.bert.encoder.layer.0.shortcut2.lora_A.weight"),
            None
        );
        assert_eq!(
            parse_key("base_model.model.bert.pooler.dense.lora_A.weight"),
            None
        );
        assert_eq!(head_key(HEAD_WEIGHT_KEY), Some("weight"));
    }

    #[test]
    fn config_uses_patterns_for_odd_ranks_and_paths_for_partial_kinds() {
        let mk = |l, k, r, a| PeftSlot {
            slot: SlotId::new(l, k),
            r,
            lora_alpha: a,
        };
        let slots = vec![
            mk(0, SlotKind::Query, 8, 16.0),
            mk(1, SlotKind::Query, 8, 16.0),
            mk(0, SlotKind::Value, 4, 16.0),
            mk(1, SlotKind::FfnOut, 8, 2.5),
        ];
        let cfg = adapter_config_json(&slots, 2, 0.0, None);
        assert_eq!(cfg["r"], 8);
        assert_eq!(cfg["lora_alpha"], 16);
        assert_eq!(
            cfg["rank_pattern"]["encoder.layer.0.attention.self.value"],
            4
        );
        assert_eq!(cfg["alpha_pattern"]["encoder.layer.1.output.dense"], 2.5);
        let t: Vec<&str> = cfg["target_modules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            t,
            [
                "encoder.layer.0.attention.self.value",
                "encoder.layer.1.output.dense",
                "query"
            ]
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(ADAPTER_CONFIG);
        std::fs::write(&p, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
        let back = PeftConfig::from_file(&p).unwrap();
        for s in &slots {
            assert_eq!(back.rank_of(s.slot), s.r);
            assert_eq!(back.alpha_of(s.slot), s.lora_alpha);
        }
        std::fs::write(&p, r#"{"r": 8, "lora_alpha": 16, "use_dora": true}"#).unwrap();
        let e = PeftConfig::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("use_dora") && e.contains(ADAPTER_CONFIG), "{e}");
        std::fs::write(&p, r#"{"lora_alpha": 16}"#).unwrap();
        let e = PeftConfig::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("`") || e.contains("r"), "{e}");
    }

    #[test]
    fn safetensors_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.safetensors");
        let t = Tensor::arange(0f32, 6.0, &Device::Cpu)
            .unwrap()
            .reshape((2, 3))
            .unwrap();
        let m = BTreeMap::from([("a.weight".to_string(), t.clone())]);
        save_safetensors(&m, &p).unwrap();
        let back = load_safetensors(&p, &Device::Cpu).unwrap();
        assert_eq!(
            back["a.weight"].to_vec2::<f32>().unwrap(),
            t.to_vec2::<f32>().unwrap()
        );
    }
}
