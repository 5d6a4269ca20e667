//! Saving and loading adapters.
//!
//! A saved directory holds:
//! - `adapter_config.json` + `adapter_model.safetensors`: the enabled LoRA modules and the
//!   classifier head in PEFT's format, so that `PeftModel.from_pretrained(base, dir)` reproduces
//!   our logits (a slot's run-time `scale` is folded into its `alpha_pattern` entry there);
//! - `heterolora_adapters.safetensors`: shortcut adapters, disabled LoRA adapters and the head,
//!   with the same key scheme;
//! - `heterolora_adapters.json`: every adapter's rank, alpha, scale and on/off state, the shortcut
//!   placement, the LoRA dropout and the head's read-out (`head_pooling`: `cls` or `mean`; a file
//!   without it means `cls`, what every adapter saved before the choice existed used). The same
//!   value is written into `adapter_config.json` under `heterolora_head_pooling` when it is
//!   `mean`, so PEFT-side users see that the head reads mean-pooled tokens, not the pooler.
//!
//! [`SequenceClassifier::load_adapters`] reads such a directory, or a plain PEFT directory.

use super::classifier::SequenceClassifier;
use super::head_pooling::HeadPooling;
use super::primitives::trainable_dtype;
use crate::adapters::peft::{
    self, adapter_config_json, load_safetensors, save_safetensors, Factor, PeftConfig, PeftSlot,
    ADAPTER_CONFIG, ADAPTER_WEIGHTS,
};
use crate::adapters::{LoraAdapter, ModelDims, ShortcutPlacement, SlotId};
use crate::{Error, Result};
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Our state file name.
pub const STATE_FILE: &str = "heterolora_adapters.json";
/// Our weights file name (shortcuts, disabled adapters, head).
pub const WEIGHTS_FILE: &str = "heterolora_adapters.safetensors";

/// Rank, alpha, run-time scale and on/off of one saved adapter (both backbones' state files).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SlotState {
    pub(crate) r: usize,
    pub(crate) lora_alpha: f64,
    #[serde(default = "one")]
    pub(crate) scale: f64,
    pub(crate) enabled: bool,
}

/// A model's adapters sorted for saving, as both backbones write them: enabled LoRA modules and
/// the head in PEFT's files, shortcuts, disabled adapters and the head again in ours.
pub(crate) struct AdapterFiles {
    peft_tensors: BTreeMap<String, Tensor>,
    own_tensors: BTreeMap<String, Tensor>,
    peft_slots: Vec<PeftSlot>,
    pub(crate) states: BTreeMap<SlotId, SlotState>,
}

impl AdapterFiles {
    /// `head`: the head's (PEFT key, tensor) pairs; `key(slot, "lora_A")`: a factor's PEFT key.
    pub(crate) fn sort(
        adapters: &BTreeMap<SlotId, LoraAdapter>,
        head: &[(String, Tensor)],
        key: impl Fn(SlotId, &str) -> String,
    ) -> Self {
        let mut f = AdapterFiles {
            peft_tensors: head.iter().cloned().collect(),
            own_tensors: head.iter().cloned().collect(),
            peft_slots: Vec::new(),
            states: BTreeMap::new(),
        };
        for (slot, ad) in adapters {
            let in_peft = ad.enabled && !slot.kind.is_shortcut();
            let target = if in_peft {
                &mut f.peft_tensors
            } else {
                &mut f.own_tensors
            };
            target.insert(key(*slot, "lora_A"), ad.a.as_detached_tensor());
            target.insert(key(*slot, "lora_B"), ad.b.as_detached_tensor());
            if in_peft {
                f.peft_slots.push(PeftSlot {
                    slot: *slot,
                    r: ad.r,
                    lora_alpha: ad.lora_alpha * ad.scale,
                });
            }
            f.states.insert(
                *slot,
                SlotState {
                    r: ad.r,
                    lora_alpha: ad.lora_alpha,
                    scale: ad.scale,
                    enabled: ad.enabled,
                },
            );
        }
        f
    }

    /// Writes PEFT's `adapter_config.json` (from `peft_config` of the PEFT slots) and
    /// `adapter_model.safetensors`, and our weights file, into `dir`.
    pub(crate) fn write(
        &self,
        dir: &Path,
        peft_config: impl FnOnce(&[PeftSlot]) -> serde_json::Value,
    ) -> Result<()> {
        let cfg_path = dir.join(ADAPTER_CONFIG);
        let weights_path = dir.join(ADAPTER_WEIGHTS);
        if self.peft_slots.is_empty() {
            // PEFT rejects an adapter without target modules: leave no stale PEFT files behind.
            for p in [&cfg_path, &weights_path] {
                if p.exists() {
                    std::fs::remove_file(p).map_err(|e| Error::io(p, e))?;
                }
            }
        } else {
            let text = serde_json::to_string_pretty(&peft_config(&self.peft_slots))?;
            std::fs::write(&cfg_path, text).map_err(|e| Error::io(&cfg_path, e))?;
            save_safetensors(&self.peft_tensors, &weights_path)?;
        }
        save_safetensors(&self.own_tensors, &dir.join(WEIGHTS_FILE))
    }
}

/// Loaded adapters moved to the device, in the dtype the model keeps trainables in (`dtype` is
/// the model's compute dtype; see [`trainable_dtype`]).
pub(crate) fn on_device(
    adapters: BTreeMap<SlotId, LoraAdapter>,
    dtype: candle_core::DType,
    device: &candle_core::Device,
) -> Result<BTreeMap<SlotId, LoraAdapter>> {
    adapters
        .into_iter()
        .map(|(s, a)| {
            let dtype = trainable_dtype(dtype);
            Ok((s, a.map(&|t| Ok(t.to_dtype(dtype)?.to_device(device)?))?))
        })
        .collect()
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AdapterState {
    format: String,
    version: u32,
    dims: ModelDims,
    num_labels: usize,
    shortcut_placement: ShortcutPlacement,
    lora_dropout: f64,
    slots: BTreeMap<SlotId, SlotState>,
    /// Absent in files written before the head choice existed: those used [CLS].
    #[serde(default)]
    head_pooling: HeadPooling,
}

/// The key of the head's read-out in `adapter_config.json` (PEFT ignores keys it does not know
/// only with a warning, so it is written only when it differs from PEFT's own [CLS] read-out).
pub const PEFT_HEAD_POOLING_KEY: &str = "heterolora_head_pooling";

const FORMAT: &str = "heterolora-adapters";

impl SequenceClassifier {
    /// Names the base model in the `adapter_config.json` of adapters saved from now on
    /// (`base_model_name_or_path`, what PEFT's `AutoPeftModel*` loads): the hub id or the folder
    /// the model was loaded from (see [`crate::adapters::peft_base`]).
    pub fn set_base_model(&mut self, model_dir: &Path) {
        self.cfg.name_or_path = Some(crate::adapters::peft_base::base_model_name_or_path(
            model_dir,
        ));
    }

    /// Writes PEFT's `adapter_config.json` + `adapter_model.safetensors` (enabled LoRA modules +
    /// head) and our own files (shortcuts, disabled adapters, head, states) into `dir`.
    pub fn save_adapters(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let head = [
            (
                peft::HEAD_WEIGHT_KEY.to_string(),
                self.head_weight.as_detached_tensor(),
            ),
            (
                peft::HEAD_BIAS_KEY.to_string(),
                self.head_bias.as_detached_tensor(),
            ),
        ];
        let files = AdapterFiles::sort(&self.adapters, &head, peft::slot_key);
        files.write(dir, |peft_slots| {
            let mut cfg = adapter_config_json(
                peft_slots,
                self.cfg.num_hidden_layers,
                self.lora_dropout,
                crate::adapters::peft_base::vouched_base(self.cfg.name_or_path.as_deref()),
            );
            if self.head_pooling != HeadPooling::Cls {
                if let Some(obj) = cfg.as_object_mut() {
                    obj.insert(
                        PEFT_HEAD_POOLING_KEY.into(),
                        self.head_pooling.as_str().into(),
                    );
                }
            }
            cfg
        })?;
        let states = files.states;
        let state = AdapterState {
            format: FORMAT.into(),
            version: 1,
            dims: self.dims(),
            num_labels: self.num_labels,
            shortcut_placement: self.placement,
            lora_dropout: self.lora_dropout,
            slots: states,
            head_pooling: self.head_pooling,
        };
        let p = dir.join(STATE_FILE);
        std::fs::write(&p, serde_json::to_string_pretty(&state)?).map_err(|e| Error::io(&p, e))
    }

    /// Replaces this model's adapters (and head, when the files hold one) by those saved in
    /// `dir`: a directory written by [`SequenceClassifier::save_adapters`] or by PEFT.
    pub fn load_adapters(&mut self, dir: &Path) -> Result<()> {
        let state_path = dir.join(STATE_FILE);
        let cfg_path = dir.join(ADAPTER_CONFIG);
        let state: Option<AdapterState> = if state_path.exists() {
            let text =
                std::fs::read_to_string(&state_path).map_err(|e| Error::io(&state_path, e))?;
            let s: AdapterState = serde_json::from_str(&text)
                .map_err(|e| Error::parse(&state_path, e.line(), e.to_string()))?;
            if s.format != FORMAT {
                return Err(Error::parse(
                    &state_path,
                    1,
                    format!("format `{}` is not `{FORMAT}`", s.format),
                ));
            }
            if s.dims != self.dims() {
                return Err(Error::Config {
                    field: format!("{}: dims", state_path.display()),
                    reason: format!("saved for {:?}, this model is {:?}", s.dims, self.dims()),
                });
            }
            Some(s)
        } else {
            None
        };
        if state.is_none() && !cfg_path.exists() {
            return Err(Error::Asset {
                what: dir.display().to_string(),
                reason: format!("neither {ADAPTER_CONFIG} nor {STATE_FILE} found"),
                hint: "pass a directory written by save_adapters or by PEFT's save_pretrained"
                    .into(),
            });
        }
        let peft_cfg = if cfg_path.exists() {
            Some(PeftConfig::from_file(&cfg_path)?)
        } else {
            None
        };
        let peft_head_pooling = if state.is_none() && cfg_path.exists() {
            read_peft_head_pooling(&cfg_path)?
        } else {
            HeadPooling::Cls
        };

        let mut adapters: BTreeMap<SlotId, LoraAdapter> = BTreeMap::new();
        let mut head: (Option<Tensor>, Option<Tensor>) = (None, None);
        let mut files: Vec<(std::path::PathBuf, bool)> = Vec::new();
        if peft_cfg.is_some() {
            files.push((dir.join(ADAPTER_WEIGHTS), true));
        }
        if state.is_some() {
            files.push((dir.join(WEIGHTS_FILE), false));
        }
        for (path, is_peft) in files {
            let tensors = load_safetensors(&path, &self.device)?;
            let found = self.collect(&path, tensors, &mut head)?;
            for (slot, (a, b)) in found {
                let alpha = match (&state, &peft_cfg) {
                    (Some(s), _) => s.slots.get(&slot).map(|x| x.lora_alpha),
                    (None, Some(c)) => Some(c.alpha_of(slot)),
                    (None, None) => None,
                };
                let alpha = alpha.ok_or_else(|| Error::Config {
                    field: format!("{}: slots.{slot}", state_path.display()),
                    reason: format!(
                        "{} has weights for {slot} but the state file does not list it",
                        path.display()
                    ),
                })?;
                self.check_factor_shapes(slot, &a, &b)?;
                let mut ad = LoraAdapter::from_factors(&a, &b, alpha)?;
                if is_peft && state.is_none() {
                    let c = peft_cfg.as_ref().expect("peft file implies config");
                    if c.rank_of(slot) != ad.r {
                        return Err(Error::Config {
                            field: format!("{}: r / rank_pattern", cfg_path.display()),
                            reason: format!(
                                "{slot} has rank {} in {} but the config gives {}",
                                ad.r,
                                path.display(),
                                c.rank_of(slot)
                            ),
                        });
                    }
                }
                if let Some(st) = state.as_ref().and_then(|s| s.slots.get(&slot)) {
                    if st.r != ad.r {
                        return Err(Error::Shape {
                            name: peft::slot_key(slot, "lora_A"),
                            expected: vec![st.r, a.dim(1)?],
                            actual: a.dims().to_vec(),
                        });
                    }
                    ad.scale = st.scale;
                    ad.enabled = st.enabled;
                }
                adapters.insert(slot, ad);
            }
        }
        if let Some(s) = &state {
            for slot in s.slots.keys() {
                if !adapters.contains_key(slot) {
                    return Err(Error::MissingWeight {
                        name: peft::slot_key(*slot, "lora_A"),
                        source_name: dir.display().to_string(),
                    });
                }
            }
        }

        // Everything checked: now change the model.
        let (dtype, device) = (self.dtype, self.device.clone());
        self.adapters = on_device(adapters, dtype, &device)?;
        if let (Some(w), Some(b)) = head {
            self.num_labels = w.dim(0)?;
            let dtype = trainable_dtype(dtype);
            self.head_weight = Var::from_tensor(&w.to_dtype(dtype)?)?;
            self.head_bias = Var::from_tensor(&b.to_dtype(dtype)?)?;
        }
        if let Some(s) = state {
            self.placement = s.shortcut_placement;
            self.lora_dropout = s.lora_dropout;
            self.head_pooling = s.head_pooling;
        } else if let Some(c) = peft_cfg {
            self.lora_dropout = c.lora_dropout;
            self.head_pooling = peft_head_pooling;
        }
        Ok(())
    }

    /// Sorts a file's tensors into adapters (by slot) and the head; unknown keys are errors.
    #[allow(clippy::type_complexity)]
    fn collect(
        &self,
        path: &Path,
        tensors: HashMap<String, Tensor>,
        head: &mut (Option<Tensor>, Option<Tensor>),
    ) -> Result<BTreeMap<SlotId, (Tensor, Tensor)>> {
        let mut parts: BTreeMap<SlotId, (Option<Tensor>, Option<Tensor>)> = BTreeMap::new();
        let h = self.cfg.hidden_size;
        for (key, t) in tensors {
            if let Some(which) = peft::head_key(&key) {
                let (expected, slot) = if which == "weight" {
                    (vec![t.dim(0).unwrap_or(0), h], &mut head.0)
                } else {
                    (vec![t.dim(0).unwrap_or(0)], &mut head.1)
                };
                if t.dims() != expected.as_slice() {
                    return Err(Error::Shape {
                        name: format!("{key} in {}", path.display()),
                        expected,
                        actual: t.dims().to_vec(),
                    });
                }
                *slot = Some(t);
                continue;
            }
            let Some((slot, factor)) = peft::parse_key(&key) else {
                return Err(Error::UnknownSlot(format!(
                    "{key} in {} (not a LoRA or shortcut adapter key of this BERT model)",
                    path.display()
                )));
            };
            self.check_slot(slot).map_err(|_| {
                Error::UnknownSlot(format!(
                    "{slot} from key {key} in {} (this model has {} layers)",
                    path.display(),
                    self.cfg.num_hidden_layers
                ))
            })?;
            let e = parts.entry(slot).or_default();
            match factor {
                Factor::A => e.0 = Some(t),
                Factor::B => e.1 = Some(t),
            }
        }
        if let (Some(w), Some(b)) = (&head.0, &head.1) {
            if w.dim(0)? != b.dim(0)? {
                return Err(Error::Shape {
                    name: format!("{} in {}", peft::HEAD_BIAS_KEY, path.display()),
                    expected: vec![w.dim(0)?],
                    actual: b.dims().to_vec(),
                });
            }
        }
        let mut out = BTreeMap::new();
        for (slot, (a, b)) in parts {
            let missing = |f: &str| Error::MissingWeight {
                name: peft::slot_key(slot, f),
                source_name: path.display().to_string(),
            };
            let a = a.ok_or_else(|| missing("lora_A"))?;
            let b = b.ok_or_else(|| missing("lora_B"))?;
            out.insert(slot, (a, b));
        }
        Ok(out)
    }

    /// Checks `lora_A [r, d_in]` and `lora_B [d_out, r]` of `slot`; errors name the key.
    pub(crate) fn check_factor_shapes(&self, slot: SlotId, a: &Tensor, b: &Tensor) -> Result<()> {
        let (d_in, d_out) = self
            .slot_table()
            .dims(slot.kind)
            .ok_or_else(|| Error::UnknownSlot(slot.to_string()))?;
        let r = a.dim(0).unwrap_or(0);
        if a.rank() != 2 || a.dim(1)? != d_in || r == 0 {
            return Err(Error::Shape {
                name: peft::slot_key(slot, "lora_A"),
                expected: vec![r.max(1), d_in],
                actual: a.dims().to_vec(),
            });
        }
        if b.dims() != [d_out, r] {
            return Err(Error::Shape {
                name: peft::slot_key(slot, "lora_B"),
                expected: vec![d_out, r],
                actual: b.dims().to_vec(),
            });
        }
        Ok(())
    }
}

/// The head read-out recorded in a PEFT `adapter_config.json` ([`PEFT_HEAD_POOLING_KEY`]);
/// [`HeadPooling::Cls`] when absent (PEFT's own read-out).
fn read_peft_head_pooling(path: &Path) -> Result<HeadPooling> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::parse(path, e.line(), e.to_string()))?;
    match v.get(PEFT_HEAD_POOLING_KEY).and_then(|x| x.as_str()) {
        Some(s) => s
            .parse()
            .map_err(|e: Error| Error::parse(path, 1, e.to_string())),
        None => Ok(HeadPooling::Cls),
    }
}

impl SequenceClassifier {
    /// Writes the model with every enabled LoRA module merged as a Hugging Face
    /// `BertForSequenceClassification` checkpoint (`config.json` + `model.safetensors` with `bert.`
    /// names and the classifier), loadable by transformers and by
    /// [`SequenceClassifier::from_pretrained`]. Enabled shortcuts have no place in that
    /// architecture: they are an error (disable them, or keep the adapter files instead), and so is
    /// a mean-pooled head ([`HeadPooling::Mean`]), which that architecture cannot express.
    pub fn save_merged(&self, dir: &Path) -> Result<()> {
        let on: Vec<String> = self
            .enabled_slots()
            .into_iter()
            .filter(|s| s.kind.is_shortcut())
            .map(|s| s.to_string())
            .collect();
        if !on.is_empty() {
            return Err(Error::invalid(
                "enabled shortcuts",
                on.join(", "),
                "none: a Hugging Face BERT checkpoint cannot hold shortcut connections",
            ));
        }
        if self.head_pooling != HeadPooling::Cls {
            return Err(Error::invalid(
                "head pooling",
                self.head_pooling,
                "cls: BertForSequenceClassification reads [CLS] through the pooler; keep the \
                 adapter files of a mean-pooled head instead",
            ));
        }
        let merged = self.merged()?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut tensors: BTreeMap<String, Tensor> = merged
            .bert
            .named_weights()
            .into_iter()
            .map(|(k, t)| (format!("bert.{k}"), t))
            .collect();
        tensors.insert(
            "classifier.weight".into(),
            merged.head_weight.as_detached_tensor(),
        );
        tensors.insert(
            "classifier.bias".into(),
            merged.head_bias.as_detached_tensor(),
        );
        save_safetensors(&tensors, &dir.join("model.safetensors"))?;
        let mut cfg = serde_json::to_value(&self.cfg)?;
        let labels: serde_json::Map<String, serde_json::Value> = (0..self.num_labels)
            .map(|i| (i.to_string(), format!("LABEL_{i}").into()))
            .collect();
        let ids: serde_json::Map<String, serde_json::Value> = (0..self.num_labels)
            .map(|i| (format!("LABEL_{i}"), i.into()))
            .collect();
        let obj = cfg
            .as_object_mut()
            .expect("a struct serialises to an object");
        obj.insert(
            "architectures".into(),
            serde_json::json!(["BertForSequenceClassification"]),
        );
        obj.insert("id2label".into(), labels.into());
        obj.insert("label2id".into(), ids.into());
        let problem = if self.num_labels == 1 {
            "regression"
        } else {
            "single_label_classification"
        };
        obj.insert("problem_type".into(), problem.into());
        let p = dir.join("config.json");
        std::fs::write(&p, serde_json::to_string_pretty(&cfg)?).map_err(|e| Error::io(&p, e))
    }
}
