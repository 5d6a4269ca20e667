//! Saving and loading a [`DecoderClassifier`]'s adapters, in the same layout as BERT's
//! ([`crate::model::SequenceClassifier::save_adapters`]): PEFT's `adapter_config.json` +
//! `adapter_model.safetensors` for the enabled LoRA modules and the `score` head (keys
//! `base_model.model.model.layers.<i>.self_attn.q_proj.lora_A.weight`, ...), and our own
//! `heterolora_adapters.safetensors` / `.json` for shortcuts, disabled adapters and states.

use super::classifier::DecoderClassifier;
use crate::adapters::peft::{
    self, adapter_config_json_for, load_safetensors, Factor, PeftConfig, ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
};
use crate::adapters::{Architecture, LoraAdapter, SlotId, SlotTable};
use crate::model::io::{on_device, AdapterFiles, SlotState};
use crate::model::primitives::trainable_dtype;
use crate::model::{STATE_FILE, WEIGHTS_FILE};
use crate::{Error, Result};
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DecoderAdapterState {
    format: String,
    version: u32,
    architecture: Architecture,
    table: SlotTable,
    num_labels: usize,
    lora_dropout: f64,
    slots: BTreeMap<SlotId, SlotState>,
}

const FORMAT: &str = "heterolora-decoder-adapters";

impl DecoderClassifier {
    /// Writes PEFT's files (enabled LoRA modules + `score`) and ours (everything) into `dir`.
    pub fn save_adapters(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let arch = self.architecture();
        let head = (
            peft::SCORE_WEIGHT_KEY.to_string(),
            self.score.as_detached_tensor(),
        );
        let files = AdapterFiles::sort(&self.adapters, &[head], |s, f| arch.slot_key(s, f));
        files.write(dir, |peft_slots| {
            adapter_config_json_for(
                arch,
                peft_slots,
                self.table.num_layers,
                self.lora_dropout,
                crate::adapters::peft_base::vouched_base(self.base_model.as_deref()),
            )
        })?;
        let states = files.states;
        let state = DecoderAdapterState {
            format: FORMAT.into(),
            version: 1,
            architecture: arch,
            table: self.table.clone(),
            num_labels: self.num_labels,
            lora_dropout: self.lora_dropout,
            slots: states,
        };
        let p = dir.join(STATE_FILE);
        std::fs::write(&p, serde_json::to_string_pretty(&state)?).map_err(|e| Error::io(&p, e))
    }

    /// Replaces the adapters (and the head, when the files hold one) by those saved in `dir`: a
    /// directory written by [`DecoderClassifier::save_adapters`] or by PEFT's `save_pretrained`.
    pub fn load_adapters(&mut self, dir: &Path) -> Result<()> {
        let arch = self.architecture();
        let state_path = dir.join(STATE_FILE);
        let cfg_path = dir.join(ADAPTER_CONFIG);
        let state: Option<DecoderAdapterState> = if state_path.exists() {
            let text =
                std::fs::read_to_string(&state_path).map_err(|e| Error::io(&state_path, e))?;
            let s: DecoderAdapterState = serde_json::from_str(&text)
                .map_err(|e| Error::parse(&state_path, e.line(), e.to_string()))?;
            if s.format != FORMAT || s.table != self.table {
                return Err(Error::Config {
                    field: format!("{}: table", state_path.display()),
                    reason: format!(
                        "saved for {:?} ({}), this model is {:?}",
                        s.table, s.format, self.table
                    ),
                });
            }
            Some(s)
        } else {
            None
        };
        let peft_cfg = if cfg_path.exists() {
            Some(PeftConfig::from_file(&cfg_path)?)
        } else {
            None
        };
        if state.is_none() && peft_cfg.is_none() {
            return Err(Error::Asset {
                what: dir.display().to_string(),
                reason: format!("neither {ADAPTER_CONFIG} nor {STATE_FILE} found"),
                hint: "pass a directory written by save_adapters or by PEFT's save_pretrained"
                    .into(),
            });
        }
        let mut files = Vec::new();
        if peft_cfg.is_some() {
            files.push(dir.join(ADAPTER_WEIGHTS));
        }
        if state.is_some() {
            files.push(dir.join(WEIGHTS_FILE));
        }
        let mut adapters = BTreeMap::new();
        let mut score: Option<Tensor> = None;
        for path in files {
            let tensors = load_safetensors(&path, &self.device)?;
            for (slot, (a, b)) in self.collect(&path, tensors, &mut score)? {
                self.check_factor_shapes(slot, &a, &b)?;
                let st = state.as_ref().and_then(|s| s.slots.get(&slot));
                let alpha = match (st, &peft_cfg) {
                    (Some(st), _) => st.lora_alpha,
                    (None, Some(c)) => {
                        let r = c.rank_in(arch, slot);
                        if r != a.dim(0)? {
                            return Err(Error::Config {
                                field: format!("{}: r / rank_pattern", cfg_path.display()),
                                reason: format!(
                                    "{slot} has rank {} in {} but the config gives {r}",
                                    a.dim(0)?,
                                    path.display()
                                ),
                            });
                        }
                        c.alpha_in(arch, slot)
                    }
                    (None, None) => unreachable!("one of the two files exists"),
                };
                let mut ad = LoraAdapter::from_factors(&a, &b, alpha)?;
                if let Some(st) = st {
                    ad.scale = st.scale;
                    ad.enabled = st.enabled;
                }
                adapters.insert(slot, ad);
            }
        }
        let dtype = self.dtype;
        self.adapters = on_device(adapters, dtype, &self.device)?;
        if let Some(w) = score {
            self.num_labels = w.dim(0)?;
            self.score = Var::from_tensor(&w.to_dtype(trainable_dtype(dtype))?)?;
        }
        if let Some(s) = state {
            self.lora_dropout = s.lora_dropout;
        } else if let Some(c) = peft_cfg {
            self.lora_dropout = c.lora_dropout;
        }
        Ok(())
    }

    /// Sorts a file's tensors into adapters (by slot) and the head; unknown keys are errors.
    #[allow(clippy::type_complexity)]
    fn collect(
        &self,
        path: &Path,
        tensors: HashMap<String, Tensor>,
        score: &mut Option<Tensor>,
    ) -> Result<BTreeMap<SlotId, (Tensor, Tensor)>> {
        let arch = self.architecture();
        let d = self.backbone.output_size();
        let mut parts: BTreeMap<SlotId, (Option<Tensor>, Option<Tensor>)> = BTreeMap::new();
        for (key, t) in tensors {
            if peft::score_key(&key) {
                if t.rank() != 2 || t.dim(1)? != d {
                    return Err(Error::Shape {
                        name: format!("{key} in {}", path.display()),
                        expected: vec![t.dim(0).unwrap_or(0), d],
                        actual: t.dims().to_vec(),
                    });
                }
                *score = Some(t);
                continue;
            }
            let Some((slot, factor)) = arch.parse_key(&key) else {
                return Err(Error::UnknownSlot(format!(
                    "{key} in {} (not a LoRA or shortcut adapter key of this {arch} model)",
                    path.display()
                )));
            };
            self.check_slot(slot)?;
            let e = parts.entry(slot).or_default();
            match factor {
                Factor::A => e.0 = Some(t),
                Factor::B => e.1 = Some(t),
            }
        }
        let mut out = BTreeMap::new();
        for (slot, (a, b)) in parts {
            let missing = |f: &str| Error::MissingWeight {
                name: arch.slot_key(slot, f),
                source_name: path.display().to_string(),
            };
            out.insert(
                slot,
                (
                    a.ok_or_else(|| missing("lora_A"))?,
                    b.ok_or_else(|| missing("lora_B"))?,
                ),
            );
        }
        Ok(out)
    }
}
