//! The uniform allocator: the same rank on every candidate (plain LoRA, and the equal-budget
//! baseline of the paper: r = 2 everywhere costs what r = 8 on a quarter of the slots costs).

use crate::adapters::Allocation;
use crate::adapters::{AlphaRule, AlphaRules};
use crate::adapters::{SearchSpace, SlotSizes};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Hyper-parameters of the uniform allocator, unchecked; [`UniformParams::check`] gives [`Uniform`].
///
/// | name | default | range | meaning |
/// |---|---|---|---|
/// | `r` | 2 | >= 1 | rank of every candidate slot |
/// | `lora_alpha` | `16` (the authors', at every rank) | > 0 | alpha of LoRA slots ([`AlphaRule`]; `2r` keeps the scaling at 2) |
/// | `shortcut_alpha` | 4 | > 0 | alpha_s of shortcut slots |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UniformParams {
    pub r: usize,
    pub lora_alpha: AlphaRule,
    pub shortcut_alpha: AlphaRule,
}

impl Default for UniformParams {
    fn default() -> Self {
        UniformParams {
            r: 2,
            lora_alpha: AlphaRule::LORA_DEFAULT,
            shortcut_alpha: AlphaRule::SHORTCUT_DEFAULT,
        }
    }
}

impl UniformParams {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn r(mut self, r: usize) -> Self {
        self.r = r;
        self
    }
    /// A fixed alpha for LoRA slots.
    pub fn lora_alpha(mut self, alpha: f64) -> Self {
        self.lora_alpha = AlphaRule::Fixed(alpha);
        self
    }
    pub fn lora_alpha_rule(mut self, rule: AlphaRule) -> Self {
        self.lora_alpha = rule;
        self
    }
    pub fn shortcut_alpha(mut self, alpha: f64) -> Self {
        self.shortcut_alpha = AlphaRule::Fixed(alpha);
        self
    }
    pub fn shortcut_alpha_rule(mut self, rule: AlphaRule) -> Self {
        self.shortcut_alpha = rule;
        self
    }

    pub fn check(self) -> Result<Uniform> {
        if self.r == 0 {
            return Err(Error::invalid("r", 0, "a rank >= 1"));
        }
        self.lora_alpha.check("lora_alpha")?;
        self.shortcut_alpha.check("shortcut_alpha")?;
        Ok(Uniform { params: self })
    }
}

/// A checked uniform allocator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Uniform {
    params: UniformParams,
}

impl Uniform {
    pub fn params(&self) -> &UniformParams {
        &self.params
    }

    /// Rank r on every candidate of `space`.
    pub fn allocate(&self, space: &SearchSpace, dims: &impl SlotSizes) -> Result<Allocation> {
        let rules = AlphaRules {
            lora: self.params.lora_alpha,
            shortcut: self.params.shortcut_alpha,
        };
        let cands = dims.candidates(space)?;
        let ranks = cands
            .iter()
            .map(|&s| (s, rules.slot_rank(s.kind, self.params.r)))
            .collect();
        let mut meta = BTreeMap::new();
        meta.insert("r".into(), self.params.r.to_string());
        meta.insert("lora_alpha".into(), self.params.lora_alpha.to_string());
        if cands.iter().any(|s| s.kind.is_shortcut()) {
            meta.insert(
                "shortcut_alpha".into(),
                self.params.shortcut_alpha.to_string(),
            );
        }
        Ok(Allocation {
            dims: dims.model_dims(),
            candidates: cands,
            ranks,
            method: "uniform".into(),
            proxy: None,
            meta,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::ModelDims;
    use crate::search::Budget;

    #[test]
    fn uniform_r2_matches_the_reference_budget_and_topk_count() {
        let d = ModelDims {
            num_layers: 24,
            hidden_size: 1024,
            intermediate_size: 4096,
        };
        let space = SearchSpace::lora_qv_shortcuts();
        let a = UniformParams::new()
            .check()
            .unwrap()
            .allocate(&space, &d)
            .unwrap();
        assert_eq!(a.trainable_params(), 585_728);
        assert_eq!(a.ranks.len(), 143);
        let c = a.candidates.clone();
        assert_eq!(Budget::same_as_uniform(&c, &d, 2).unwrap().params, 585_728);
        // On the LoRA-only space the match is exact: r = 2 on 48 = r = 8 on 12.
        let space = SearchSpace::lora_qv();
        let u = UniformParams::new()
            .check()
            .unwrap()
            .allocate(&space, &d)
            .unwrap();
        let c = u.candidates.clone();
        let t = Budget::same_as_top_p(&c, &d, 0.25, 8).unwrap();
        assert_eq!(u.trainable_params(), t.params);
        assert!(UniformParams::new().r(0).check().is_err());
        // The authors' convention: alpha 16 at r = 2 (scaling 8); 2r on request.
        let sr = a.ranks.values().next().unwrap();
        assert_eq!((sr.r, sr.lora_alpha), (2, 16.0));
        let a2 = UniformParams::new()
            .lora_alpha_rule(AlphaRule::PER_RANK_2R)
            .check()
            .unwrap()
            .allocate(&SearchSpace::lora_qv(), &d)
            .unwrap();
        assert!(a2.ranks.values().all(|sr| sr.lora_alpha == 4.0));
    }
}
