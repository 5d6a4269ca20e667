//! [`Allocation`]: which slots are on, at which rank and alpha, and where that choice came from.

pub use super::alpha::SlotRank;
use crate::adapters::{Architecture, ModelDims, SearchSpace, SlotId, SlotSizes, SlotTable};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Every candidate slot of `space` on a model of size `dims`, in (layer, kind) order.
///
/// Fails when the space names a layer the model does not have, or leaves no slot at all.
pub fn candidates(space: &SearchSpace, dims: &ModelDims) -> Result<Vec<SlotId>> {
    if let Some(&l) = space.layers.iter().find(|&&l| l >= dims.num_layers) {
        return Err(Error::invalid(
            "layers",
            l,
            format!("a layer index below num_layers = {}", dims.num_layers),
        ));
    }
    let slots = space.slots(dims.num_layers);
    if slots.is_empty() {
        return Err(Error::invalid(
            "search space",
            format!("{space:?}"),
            "at least one candidate slot (kinds such as q,v on existing layers)",
        ));
    }
    Ok(slots)
}

/// Every candidate slot of `space` that the model `table` describes has (kinds of other
/// architectures, such as Llama's `gate` on BERT, are left out), in (layer, kind) order.
///
/// Fails as [`candidates`] does, and when no kind of the space exists in the model.
pub fn candidates_in(space: &SearchSpace, table: &SlotTable) -> Result<Vec<SlotId>> {
    candidates(space, &table.model_dims())?;
    let slots = table.slots(space);
    if slots.is_empty() {
        return Err(Error::invalid(
            "search space",
            format!("{space:?}"),
            format!("at least one slot kind of a {} model", table.architecture),
        ));
    }
    Ok(slots)
}

/// An adapter allocation: rank per enabled slot over a set of candidate slots.
///
/// Slots absent from `ranks` are off (rank 0). `candidates` is the search space the allocation was
/// chosen from, so that tables and plots can show what was left off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Allocation {
    pub dims: ModelDims,
    pub candidates: Vec<SlotId>,
    pub ranks: BTreeMap<SlotId, SlotRank>,
    /// The allocator that produced it (`uniform`, `topk`, `heterogeneous`, `dynamic`, `manual`).
    pub method: String,
    /// The proxy whose scores it was chosen on, if any.
    pub proxy: Option<String>,
    /// Free-form provenance: data, number of batches, seed, budget.
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
}

impl Allocation {
    /// Rank of `slot` (0 when off).
    pub fn rank(&self, slot: &SlotId) -> usize {
        self.ranks.get(slot).map_or(0, |s| s.r)
    }

    /// Exact number of trainable adapter parameters: sum over enabled slots of r * (d_in + d_out),
    /// with BERT-shaped maps (every attention map `hidden x hidden`); a model with grouped-query
    /// attention or a gate needs [`Allocation::trainable_params_in`] with its table.
    pub fn trainable_params(&self) -> usize {
        self.ranks
            .iter()
            .map(|(slot, s)| slot.params_at_rank(s.r, &self.dims))
            .sum()
    }

    /// Exact number of trainable adapter parameters on the model `table` describes; slots the
    /// model lacks are an error that names them.
    pub fn trainable_params_in(&self, table: &SlotTable) -> Result<usize> {
        let mut total = 0;
        for (slot, s) in &self.ranks {
            total += table.params_at_rank(*slot, s.r).ok_or_else(|| {
                Error::UnknownSlot(format!(
                    "{slot} (not a slot of this {} model)",
                    table.architecture
                ))
            })?;
        }
        Ok(total)
    }
}

/// Counts and sizes of an [`Allocation`], for reports and logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllocationSummary {
    pub method: String,
    pub proxy: Option<String>,
    pub candidates: usize,
    pub candidates_lora: usize,
    pub candidates_shortcut: usize,
    pub enabled: usize,
    pub enabled_lora: usize,
    pub enabled_shortcut: usize,
    /// Exact trainable adapter parameters.
    pub trainable_params: usize,
    /// Enabled slots per rank.
    pub ranks: BTreeMap<usize, usize>,
}

impl std::fmt::Display for AllocationSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.method)?;
        if let Some(p) = &self.proxy {
            write!(f, " on {p}")?;
        }
        write!(
            f,
            ": {} of {} slots on ({} of {} LoRA, {} of {} shortcut), {} trainable parameters",
            self.enabled,
            self.candidates,
            self.enabled_lora,
            self.candidates_lora,
            self.enabled_shortcut,
            self.candidates_shortcut,
            crate::display::thousands(self.trainable_params)
        )?;
        if !self.ranks.is_empty() {
            let hist: Vec<String> = self
                .ranks
                .iter()
                .map(|(r, n)| format!("{n} x r={r}"))
                .collect();
            write!(f, "; {}", hist.join(", "))?;
        }
        Ok(())
    }
}

impl Allocation {
    /// Rank `r` and alpha `lora_alpha` on every candidate slot of `space`: plain LoRA, and the
    /// equal-budget baseline (r = 2 everywhere against r = 8 on a quarter).
    pub fn uniform(
        space: &SearchSpace,
        dims: &impl SlotSizes,
        r: usize,
        lora_alpha: f64,
    ) -> Result<Allocation> {
        if r == 0 {
            return Err(Error::invalid("r", r, "a rank >= 1"));
        }
        super::alpha::AlphaRule::Fixed(lora_alpha).check("lora_alpha")?;
        let cands = dims.candidates(space)?;
        let ranks = cands
            .iter()
            .map(|&s| (s, SlotRank { r, lora_alpha }))
            .collect();
        let mut meta = BTreeMap::new();
        meta.insert("r".into(), r.to_string());
        meta.insert("lora_alpha".into(), lora_alpha.to_string());
        Ok(Allocation {
            dims: dims.model_dims(),
            candidates: cands,
            ranks,
            method: "uniform".into(),
            proxy: None,
            meta,
        })
    }

    /// The enabled slots, in (layer, kind) order: the mask a trainer applies.
    pub fn enabled(&self) -> Vec<SlotId> {
        self.ranks.keys().copied().collect()
    }

    /// Whether `slot` is on.
    pub fn is_enabled(&self, slot: &SlotId) -> bool {
        self.ranks.contains_key(slot)
    }

    /// Checks internal consistency: every enabled slot is a candidate inside the model, at rank
    /// >= 1 with a positive finite alpha. Run on everything read from a file.
    pub fn validate(&self) -> Result<()> {
        for slot in &self.candidates {
            if slot.layer >= self.dims.num_layers {
                return Err(Error::invalid(
                    "candidates",
                    slot,
                    format!("slots of a model with {} layers", self.dims.num_layers),
                ));
            }
        }
        for (slot, sr) in &self.ranks {
            if !self.candidates.contains(slot) {
                return Err(Error::invalid(
                    "ranks",
                    slot,
                    "enabled slots that are also listed in `candidates`",
                ));
            }
            if sr.r == 0 {
                return Err(Error::invalid(
                    format!("ranks.{slot}.r"),
                    0,
                    "a rank >= 1 (leave a disabled slot out of `ranks`)",
                ));
            }
            if !(sr.lora_alpha.is_finite() && sr.lora_alpha > 0.0) {
                return Err(Error::invalid(
                    format!("ranks.{slot}.lora_alpha"),
                    sr.lora_alpha,
                    "a positive finite alpha",
                ));
            }
        }
        Ok(())
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Parses and validates JSON written by [`Allocation::to_json`].
    pub fn from_json(json: &str) -> Result<Allocation> {
        let a: Allocation = serde_json::from_str(json)?;
        a.validate()?;
        Ok(a)
    }

    /// Writes the JSON to `path`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_json()? + "\n").map_err(|e| Error::io(path, e))
    }

    /// Reads an allocation JSON; errors name the file (and the line of a JSON error).
    pub fn load(path: impl AsRef<Path>) -> Result<Allocation> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let a: Allocation = serde_json::from_str(&text)
            .map_err(|e| Error::parse(path, e.line(), format!("not an allocation JSON: {e}")))?;
        a.validate()
            .map_err(|e| Error::parse(path, 0, e.to_string()))?;
        Ok(a)
    }

    /// PEFT's `rank_pattern` on an `arch` model: module path without the backbone prefix -> r,
    /// for the enabled LoRA slots (shortcuts have no PEFT counterpart). Keys like BERT's
    /// `encoder.layer.3.attention.self.value` or Llama's `layers.0.mlp.gate_proj` match PEFT's
    /// suffix rule against the full module path.
    pub fn peft_rank_pattern(&self, arch: Architecture) -> BTreeMap<String, usize> {
        self.lora_paths(arch).map(|(p, sr)| (p, sr.r)).collect()
    }

    /// PEFT's `alpha_pattern` on an `arch` model: module path -> lora_alpha, for the enabled
    /// LoRA slots.
    pub fn peft_alpha_pattern(&self, arch: Architecture) -> BTreeMap<String, f64> {
        self.lora_paths(arch)
            .map(|(p, sr)| (p, sr.lora_alpha))
            .collect()
    }

    /// PEFT's `target_modules` on an `arch` model: the module paths of the enabled LoRA slots,
    /// sorted. PEFT rejects r = 0, so disabled slots are simply absent.
    pub fn target_modules(&self, arch: Architecture) -> Vec<String> {
        let mut v: Vec<String> = self.lora_paths(arch).map(|(p, _)| p).collect();
        v.sort();
        v
    }

    /// The LoRA part as PEFT `adapter_config.json` fields for an `arch` model: `r` and
    /// `lora_alpha` (the most common values), `target_modules`, `rank_pattern`, `alpha_pattern`.
    /// Shortcut slots are not PEFT modules and are left out; see [`Allocation::summary`] for
    /// them.
    pub fn peft_config_fields(&self, arch: Architecture) -> serde_json::Value {
        let mode = |xs: Vec<String>| -> Option<String> {
            let mut counts = BTreeMap::<String, usize>::new();
            for x in xs {
                *counts.entry(x).or_default() += 1;
            }
            counts.into_iter().max_by_key(|(_, n)| *n).map(|(x, _)| x)
        };
        let lora: Vec<&SlotRank> = self.lora_paths(arch).map(|(_, sr)| sr).collect();
        let r: usize = mode(lora.iter().map(|s| s.r.to_string()).collect())
            .and_then(|x| x.parse().ok())
            .unwrap_or(8);
        let alpha: f64 = mode(lora.iter().map(|s| s.lora_alpha.to_string()).collect())
            .and_then(|x| x.parse().ok())
            .unwrap_or(16.0);
        serde_json::json!({
            "peft_type": "LORA",
            "r": r,
            "lora_alpha": alpha,
            "target_modules": self.target_modules(arch),
            "rank_pattern": self.peft_rank_pattern(arch),
            "alpha_pattern": self.peft_alpha_pattern(arch),
        })
    }

    /// The enabled slots that are LoRA modules of `arch`, with their PEFT pattern keys.
    fn lora_paths(&self, arch: Architecture) -> impl Iterator<Item = (String, &SlotRank)> + '_ {
        self.ranks
            .iter()
            .filter(move |(slot, _)| arch.module(slot.kind).is_some())
            .map(move |(slot, sr)| (arch.pattern_key(*slot), sr))
    }

    /// Slots enabled in both allocations (ranks aside).
    pub fn overlap(&self, other: &Allocation) -> usize {
        self.ranks
            .keys()
            .filter(|s| other.ranks.contains_key(s))
            .count()
    }

    /// Jaccard similarity of the enabled sets: |both| / |either| (1 when both are empty). Says
    /// how much two proxies, seeds or re-allocations agree.
    pub fn jaccard(&self, other: &Allocation) -> f64 {
        let both = self.overlap(other);
        let either = self.ranks.len() + other.ranks.len() - both;
        if either == 0 {
            1.0
        } else {
            both as f64 / either as f64
        }
    }

    /// Counts and sizes, parameters with BERT-shaped maps ([`Allocation::trainable_params`]); a
    /// decoder's allocation needs [`Allocation::summary_in`] with its table.
    pub fn summary(&self) -> AllocationSummary {
        self.summary_with(self.trainable_params())
    }

    /// Counts and sizes on the model `table` describes (grouped-query k/v maps, Llama's gate);
    /// slots the model lacks are an error that names them.
    pub fn summary_in(&self, table: &SlotTable) -> Result<AllocationSummary> {
        Ok(self.summary_with(self.trainable_params_in(table)?))
    }

    fn summary_with(&self, trainable_params: usize) -> AllocationSummary {
        let lora = |s: &&SlotId| !s.kind.is_shortcut();
        let mut ranks = BTreeMap::new();
        for sr in self.ranks.values() {
            *ranks.entry(sr.r).or_default() += 1;
        }
        AllocationSummary {
            method: self.method.clone(),
            proxy: self.proxy.clone(),
            candidates: self.candidates.len(),
            candidates_lora: self.candidates.iter().filter(lora).count(),
            candidates_shortcut: self
                .candidates
                .iter()
                .filter(|s| s.kind.is_shortcut())
                .count(),
            enabled: self.ranks.len(),
            enabled_lora: self.ranks.keys().filter(lora).count(),
            enabled_shortcut: self.ranks.keys().filter(|s| s.kind.is_shortcut()).count(),
            trainable_params,
            ranks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::SlotKind;

    fn sample() -> Allocation {
        let mut a = Allocation::uniform(
            &SearchSpace::lora_qv_shortcuts(),
            &ModelDims::MINILM_L6,
            2,
            4.0,
        )
        .unwrap();
        a.ranks.insert(
            SlotId::new(3, SlotKind::Value),
            SlotRank {
                r: 8,
                lora_alpha: 16.0,
            },
        );
        a.ranks.remove(&SlotId::new(0, SlotKind::Query));
        a
    }

    #[test]
    fn uniform_counts_exact_parameters() {
        let d = ModelDims::MINILM_L6;
        let a = Allocation::uniform(&SearchSpace::lora_qv(), &d, 8, 16.0).unwrap();
        assert_eq!(a.trainable_params(), 73_728);
        let s = a.summary();
        assert_eq!((s.enabled, s.candidates, s.enabled_shortcut), (12, 12, 0));
        assert_eq!(s.ranks, BTreeMap::from([(8, 12)]));
        assert!(s.to_string().contains("73,728"), "{s}");
        assert!(Allocation::uniform(&SearchSpace::lora_qv(), &d, 0, 16.0).is_err());
        let b = sample();
        assert_eq!(a.overlap(&b), 11);
        assert_eq!(a.jaccard(&b), 11.0 / (12.0 + 34.0 - 11.0));
        assert_eq!(a.jaccard(&a), 1.0);
    }

    #[test]
    fn parameter_counts_follow_the_slot_table() {
        let d = ModelDims::MINILM_L6;
        let a = Allocation::uniform(&SearchSpace::lora_qv(), &d, 8, 16.0).unwrap();
        assert_eq!(
            a.trainable_params_in(&SlotTable::bert(&d)).unwrap(),
            a.trainable_params()
        );
        // The same q,v on a 6-layer Llama with 2 of 6 heads of 64 as key-value heads: v maps
        // 384 -> 128, so v costs 8 * (384 + 128) instead of 8 * (384 + 384).
        let t = SlotTable::llama(crate::adapters::Architecture::Llama, 6, 384, 1536, 384, 128);
        assert_eq!(a.trainable_params_in(&t).unwrap(), 6 * 8 * (768 + 512));
        let mut g = a.clone();
        g.ranks.insert(
            SlotId::new(0, SlotKind::FfnGate),
            SlotRank {
                r: 2,
                lora_alpha: 4.0,
            },
        );
        assert!(g.trainable_params_in(&SlotTable::bert(&d)).is_err());
        let gate_only = SearchSpace::parse_kinds("gate").unwrap();
        assert!(candidates_in(&gate_only, &SlotTable::bert(&d)).is_err());
        assert_eq!(candidates_in(&gate_only, &t).unwrap().len(), 6);
        assert_eq!(
            g.trainable_params_in(&t).unwrap(),
            6 * 8 * (768 + 512) + 2 * (384 + 1536)
        );
        // The summary counts with the table too; on BERT's table it is the plain summary.
        let s = g.summary_in(&t).unwrap();
        assert_eq!(s.trainable_params, 6 * 8 * (768 + 512) + 2 * (384 + 1536));
        assert_eq!((s.enabled, s.enabled_lora), (13, 13));
        assert!(s.to_string().contains("65,280"), "{s}");
        assert_eq!(a.summary_in(&SlotTable::bert(&d)).unwrap(), a.summary());
        // PEFT fields with the decoder's module paths.
        let f = g.peft_config_fields(Architecture::Llama);
        assert_eq!(f["rank_pattern"]["layers.0.mlp.gate_proj"], 2, "{f}");
        assert_eq!(f["rank_pattern"]["layers.5.self_attn.v_proj"], 8, "{f}");
        assert_eq!(f["r"], 8);
        let tm = g.target_modules(Architecture::Llama);
        assert_eq!(tm.len(), 13);
        assert!(tm.contains(&"layers.0.mlp.gate_proj".to_string()), "{tm:?}");
        assert_eq!(
            g.peft_alpha_pattern(Architecture::Qwen2)["layers.0.mlp.gate_proj"],
            g.ranks.values().find(|r| r.r == 2).unwrap().lora_alpha
        );
        // BERT has no gate projection: those slots are not among its PEFT modules.
        assert!(g
            .target_modules(Architecture::Bert)
            .iter()
            .all(|p| !p.contains("gate")));
        let e = g.summary_in(&SlotTable::bert(&d)).unwrap_err().to_string();
        assert!(e.contains("layer.0.gate"), "{e}");
    }

    #[test]
    fn json_roundtrips_through_files_and_bad_files_are_named() {
        let a = sample();
        let b = Allocation::from_json(&a.to_json().unwrap()).unwrap();
        assert_eq!(a, b);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alloc.json");
        a.save(&path).unwrap();
        assert_eq!(Allocation::load(&path).unwrap(), a);
        let missing = dir.path().join("nope.json");
        let e = Allocation::load(&missing).unwrap_err().to_string();
        assert!(e.contains("nope.json"), "{e}");
        std::fs::write(&path, "{\n  \"dims\": 3\n}").unwrap();
        let e = Allocation::load(&path).unwrap_err().to_string();
        assert!(e.contains("alloc.json:2"), "{e}");
        // A rank on a slot that is not a candidate is rejected.
        let mut bad = a.clone();
        bad.candidates.retain(|s| s.layer != 3);
        bad.save(&path).unwrap();
        let e = Allocation::load(&path).unwrap_err().to_string();
        assert!(e.contains("alloc.json") && e.contains("layer.3"), "{e}");
    }

    #[test]
    fn peft_patterns_use_hugging_face_paths_for_lora_slots_only() {
        let a = sample();
        let rp = a.peft_rank_pattern(Architecture::Bert);
        assert_eq!(rp.len(), 11);
        assert_eq!(rp["encoder.layer.3.attention.self.value"], 8);
        assert_eq!(rp["encoder.layer.3.attention.self.query"], 2);
        assert!(!rp.contains_key("encoder.layer.0.attention.self.query"));
        assert!(rp.keys().all(|k| k.starts_with("encoder.layer.")));
        assert_eq!(
            a.peft_alpha_pattern(Architecture::Bert)["encoder.layer.3.attention.self.value"],
            16.0
        );
        let tm = a.target_modules(Architecture::Bert);
        assert_eq!(tm.len(), 11);
        assert_eq!(tm[0], "encoder.layer.0.attention.self.value");
        let cfg = a.peft_config_fields(Architecture::Bert);
        assert_eq!(cfg["r"], 2);
        assert_eq!(cfg["lora_alpha"], 4.0);
        assert_eq!(
            cfg["rank_pattern"]["encoder.layer.3.attention.self.value"],
            8
        );
    }
}
