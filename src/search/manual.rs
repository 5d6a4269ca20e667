//! [`Manual`]: an allocation written by hand as a short spec string.
//!
//! Grammar: groups separated by `;`, each `KINDS:KEY=VALUE,...`:
//! - `KINDS`: a comma list of slot kinds (`q`, `v`, `attention.value`, `ffn_in`, `res1`, ...) or
//!   `all`, `lora`, `shortcuts`;
//! - `r=R` (required, >= 1), `alpha=A` (a number, or a rule like `2r`; default 16 for LoRA,
//!   4 for shortcuts), `layers=I` or `layers=I-J` (inclusive; default all layers).
//!
//! Examples: `q,v:r=8,alpha=16`, `all:r=2`, `q,v:r=8;res1,res2:r=4,layers=3-5`. A later group
//! overrides an earlier one on the slots they share.

use crate::adapters::Allocation;
use crate::adapters::{AlphaRule, AlphaRules};
use crate::adapters::{Architecture, ModelDims, SearchSpace, SlotId, SlotTable};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One `KINDS:r=..` group of a spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManualGroup {
    pub space: SearchSpace,
    /// Inclusive layer range; `None` = every layer.
    pub layers: Option<(usize, usize)>,
    pub r: usize,
    /// `None`: the default rule of each slot's kind.
    pub alpha: Option<AlphaRule>,
}

/// A parsed, checked manual spec. `Manual::parse(spec)?.allocate(&dims)?`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manual {
    pub spec: String,
    pub groups: Vec<ManualGroup>,
}

impl Manual {
    /// Parses `spec`; errors quote the group and say what was expected.
    pub fn parse(spec: &str) -> Result<Manual> {
        let mut groups = Vec::new();
        for group in spec.split(';').map(str::trim).filter(|g| !g.is_empty()) {
            groups.push(parse_group(group)?);
        }
        if groups.is_empty() {
            return Err(Error::invalid(
                "spec",
                format!("{spec:?}"),
                "at least one group such as q,v:r=8,alpha=16",
            ));
        }
        Ok(Manual {
            spec: spec.trim().to_string(),
            groups,
        })
    }

    /// The allocation on a model of size `dims`. Candidates are the slots the spec names.
    pub fn allocate(&self, dims: &ModelDims) -> Result<Allocation> {
        self.allocate_with(dims, |space| space.slots(dims.num_layers))
    }

    /// The allocation on the model `table` describes: each group takes the slots of its kinds
    /// that the model has (`all` and `lora` take Llama's gate; BERT's table gives
    /// [`Manual::allocate`]'s allocation).
    pub fn allocate_in(&self, table: &SlotTable) -> Result<Allocation> {
        if table.architecture == Architecture::Bert {
            return self.allocate(&table.model_dims());
        }
        self.allocate_with(&table.model_dims(), |space| table.slots(space))
    }

    fn allocate_with(
        &self,
        dims: &ModelDims,
        slots_of: impl Fn(&SearchSpace) -> Vec<SlotId>,
    ) -> Result<Allocation> {
        let defaults = AlphaRules::default();
        let mut ranks = BTreeMap::new();
        let mut cands = BTreeSet::new();
        for g in &self.groups {
            if let Some((lo, hi)) = g.layers {
                if hi >= dims.num_layers {
                    return Err(Error::invalid(
                        "spec layers",
                        format!("{lo}-{hi}"),
                        format!("layers below num_layers = {}", dims.num_layers),
                    ));
                }
            }
            let slots: Vec<SlotId> = slots_of(&g.space)
                .into_iter()
                .filter(|s| g.layers.is_none_or(|(lo, hi)| (lo..=hi).contains(&s.layer)))
                .collect();
            for s in slots {
                let mut sr = defaults.slot_rank(s.kind, g.r);
                if let Some(a) = g.alpha {
                    sr.lora_alpha = a.alpha(g.r);
                }
                cands.insert(s);
                ranks.insert(s, sr);
            }
        }
        if ranks.is_empty() {
            return Err(Error::invalid(
                "spec",
                &self.spec,
                "a spec that names at least one slot of this model",
            ));
        }
        let mut meta = BTreeMap::new();
        meta.insert("spec".into(), self.spec.clone());
        Ok(Allocation {
            dims: *dims,
            candidates: cands.into_iter().collect(),
            ranks,
            method: "manual".into(),
            proxy: None,
            meta,
        })
    }
}

impl Allocation {
    /// An allocation from a spec string such as `q,v:r=8,alpha=16` or `all:r=2` (see [`Manual`]).
    pub fn from_spec(spec: &str, dims: &ModelDims) -> Result<Allocation> {
        Manual::parse(spec)?.allocate(dims)
    }
}

fn parse_group(group: &str) -> Result<ManualGroup> {
    let expected = "KINDS:r=R[,alpha=A][,layers=I-J], e.g. q,v:r=8,alpha=16";
    let (kinds, rest) = group
        .split_once(':')
        .ok_or_else(|| Error::invalid("spec", group, expected))?;
    let space = SearchSpace::parse_kinds(kinds)?;
    let (mut r, mut alpha, mut layers) = (None, None, None);
    for kv in rest.split(',').map(str::trim).filter(|x| !x.is_empty()) {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| Error::invalid("spec", format!("{kv} in {group}"), expected))?;
        let (k, v) = (k.trim(), v.trim());
        match k {
            "r" => {
                let n: usize = v.parse().map_err(|_| {
                    Error::invalid("spec r", format!("{v} in {group}"), "a rank >= 1")
                })?;
                if n == 0 {
                    return Err(Error::invalid(
                        "spec r",
                        format!("0 in {group}"),
                        "a rank >= 1; leave disabled slots out of the spec",
                    ));
                }
                r = Some(n);
            }
            "alpha" | "lora_alpha" => alpha = Some(v.parse::<AlphaRule>()?),
            "layers" => {
                let bad = || {
                    Error::invalid(
                        "spec layers",
                        format!("{v} in {group}"),
                        "I or I-J with I <= J",
                    )
                };
                let (lo, hi) = match v.split_once('-') {
                    Some((a, b)) => (a.trim().parse(), b.trim().parse()),
                    None => (v.parse(), v.parse()),
                };
                let (lo, hi): (usize, usize) = (lo.map_err(|_| bad())?, hi.map_err(|_| bad())?);
                if lo > hi {
                    return Err(bad());
                }
                layers = Some((lo, hi));
            }
            other => {
                return Err(Error::invalid(
                    "spec key",
                    format!("{other} in {group}"),
                    "one of r, alpha, layers",
                ))
            }
        }
    }
    let r = r.ok_or_else(|| Error::invalid("spec", group, "a rank r=R in every group"))?;
    Ok(ManualGroup {
        space,
        layers,
        r,
        alpha,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::SlotKind;

    #[test]
    fn specs_build_the_allocations_they_say() {
        let d = ModelDims::MINILM_L6;
        let a = Allocation::from_spec("q,v:r=8,alpha=16", &d).unwrap();
        assert_eq!(a.trainable_params(), 73_728);
        assert_eq!(a.ranks.len(), 12);
        assert!(a.ranks.values().all(|s| s.r == 8 && s.lora_alpha == 16.0));
        let a = Allocation::from_spec("all:r=2", &d).unwrap();
        assert_eq!(a.ranks.len(), 6 * 10 - 1);
        assert_eq!(
            a.ranks[&SlotId::new(1, SlotKind::Residual1)].lora_alpha,
            4.0
        );
        // LoRA slots get the authors' alpha 16 at every rank, shortcuts 4.
        assert_eq!(a.ranks[&SlotId::new(1, SlotKind::FfnIn)].lora_alpha, 16.0);
        let a = Allocation::from_spec("q,v:r=8; res1,res2:r=4,layers=3-5; v:r=16,layers=5", &d)
            .unwrap();
        assert_eq!(a.ranks.len(), 12 + 6);
        assert_eq!(a.rank(&SlotId::new(5, SlotKind::Value)), 16);
        assert_eq!(a.ranks[&SlotId::new(5, SlotKind::Value)].lora_alpha, 16.0);
        let per_rank = Allocation::from_spec("v:r=16,alpha=2r", &d).unwrap();
        assert_eq!(
            per_rank.ranks[&SlotId::new(5, SlotKind::Value)].lora_alpha,
            32.0
        );
        assert_eq!(a.rank(&SlotId::new(2, SlotKind::Residual1)), 0);
        assert_eq!(a.rank(&SlotId::new(4, SlotKind::Residual2)), 4);
        assert_eq!(a.method, "manual");
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let d = ModelDims::MINILM_L6;
        for (spec, needle) in [
            ("", "at least one group"),
            ("q,v", "KINDS:r=R"),
            ("q,zz:r=8", "zz"),
            ("q:r=0", "0 in q:r=0"),
            ("q:alpha=16", "a rank r=R"),
            ("q:r=8,beta=2", "beta"),
            ("q:r=8,alpha=-3", "-3"),
            ("q:r=8,layers=4-2", "4-2"),
            ("q:r=8,layers=3-9", "3-9"),
        ] {
            let e = Allocation::from_spec(spec, &d).unwrap_err().to_string();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }

    #[test]
    fn specs_on_a_slot_table_take_the_model_kinds_and_sizes() {
        let d = ModelDims::MINILM_L6;
        let m = Manual::parse("q,v:r=8").unwrap();
        assert_eq!(
            m.allocate_in(&SlotTable::bert(&d)).unwrap(),
            m.allocate(&d).unwrap()
        );
        // Llama: `lora` takes the gate; grouped-query v is 384 -> 128.
        let t = SlotTable::llama(Architecture::Llama, 6, 384, 1536, 384, 128);
        let a = Manual::parse("lora:r=2").unwrap().allocate_in(&t).unwrap();
        assert_eq!(a.ranks.len(), 6 * 7);
        assert!(a.is_enabled(&SlotId::new(5, SlotKind::FfnGate)));
        let qv = m.allocate_in(&t).unwrap();
        assert_eq!(qv.trainable_params_in(&t).unwrap(), 6 * 8 * (768 + 512));
        // A kind the model lacks names no slot.
        let opt = SlotTable::opt(2, 16, 64);
        let e = Manual::parse("gate:r=2")
            .unwrap()
            .allocate_in(&opt)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least one slot of this model"), "{e}");
    }
}
