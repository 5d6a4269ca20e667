//! The static top-k allocator at a fixed rank: the paper's rule.
//!
//! Score every candidate once, enable the best k at rank r, leave the rest off. k follows the
//! reference: k_lora = floor(p * M_lora) LoRA slots and k_sc = round(p * M_sc) shortcut slots, either
//! as one pooled ranking of k_lora + k_sc slots ([`Pooling::Combined`]) or as the top of each list on
//! its own ([`Pooling::Separated`]). Ties at the threshold are broken at random with a seeded
//! [`Rng`], so the constant proxy gives a uniformly random allocation.

use crate::adapters::Allocation;
use crate::adapters::{AlphaRule, AlphaRules};
use crate::adapters::{SearchSpace, SlotId, SlotSizes};
use crate::proxy::Scores;
use crate::rng::Rng;
use crate::search::candidates::{checked_scores, rank_best_first};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// How LoRA and shortcut slots compete for the k places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// One ranking of all candidates; k = k_lora + k_sc places, taken by whichever scores best.
    #[default]
    Combined,
    /// The top k_lora LoRA slots and, separately, the top k_sc shortcut slots.
    Separated,
}

impl fmt::Display for Pooling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pooling::Combined => "combined",
            Pooling::Separated => "separated",
        })
    }
}

impl FromStr for Pooling {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "combined" | "pooled" => Ok(Pooling::Combined),
            "separated" | "separate" => Ok(Pooling::Separated),
            _ => Err(Error::invalid("pooling", s, "combined or separated")),
        }
    }
}

/// The reference's counts for a fraction `p` in (0, 1]: (floor(p * M_lora), round(p * M_sc)).
///
/// `round` rounds halves to even, as Python's `round` in the reference code does. A tiny epsilon
/// keeps floating-point products such as 0.29 * 100 = 28.999999999999996 from flooring one short.
/// Fails when p is outside (0, 1] or when the counts enable no slot at all.
pub fn top_counts(p: f64, m_lora: usize, m_sc: usize) -> Result<(usize, usize)> {
    if !(p > 0.0 && p <= 1.0) {
        return Err(Error::invalid(
            "p",
            p,
            "a fraction of the candidates in (0, 1]",
        ));
    }
    let k_lora = ((p * m_lora as f64) + 1e-9).floor() as usize;
    let k_sc = (p * m_sc as f64).round_ties_even() as usize;
    if k_lora + k_sc == 0 {
        return Err(Error::invalid(
            "p",
            p,
            format!(
                "a fraction large enough to enable at least one of the {} LoRA and {} shortcut \
                 candidates (floor(p * {}) + round(p * {}) >= 1)",
                m_lora, m_sc, m_lora, m_sc
            ),
        ));
    }
    Ok((k_lora.min(m_lora), k_sc.min(m_sc)))
}

/// Hyper-parameters of the top-k allocator, unchecked; [`TopKParams::check`] gives a [`TopK`].
///
/// | name | default | range | meaning |
/// |---|---|---|---|
/// | `p` | 0.25 | (0, 1] | fraction of candidates to enable (k rules above) |
/// | `r` | 8 | >= 1 | rank of every enabled LoRA slot |
/// | `lora_alpha` | `16` (the authors', at every rank) | > 0 | alpha of enabled LoRA slots ([`AlphaRule`]; `2r` keeps the scaling at 2) |
/// | `shortcut_r` | = `r` | >= 1 | rank of every enabled shortcut slot |
/// | `shortcut_alpha` | 4 | > 0 | alpha_s of enabled shortcut slots |
/// | `pooling` | combined | combined, separated | one ranking, or one per list |
/// | `seed` | 0 | any | seeds the random tie-break |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopKParams {
    pub p: f64,
    pub r: usize,
    pub lora_alpha: AlphaRule,
    pub shortcut_r: Option<usize>,
    pub shortcut_alpha: AlphaRule,
    pub pooling: Pooling,
    pub seed: u64,
}

impl Default for TopKParams {
    fn default() -> Self {
        TopKParams {
            p: 0.25,
            r: 8,
            lora_alpha: AlphaRule::LORA_DEFAULT,
            shortcut_r: None,
            shortcut_alpha: AlphaRule::SHORTCUT_DEFAULT,
            pooling: Pooling::Combined,
            seed: 0,
        }
    }
}

impl TopKParams {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn p(mut self, p: f64) -> Self {
        self.p = p;
        self
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
    pub fn shortcut_r(mut self, r: usize) -> Self {
        self.shortcut_r = Some(r);
        self
    }
    /// A fixed alpha_s for shortcut slots.
    pub fn shortcut_alpha(mut self, alpha: f64) -> Self {
        self.shortcut_alpha = AlphaRule::Fixed(alpha);
        self
    }
    pub fn shortcut_alpha_rule(mut self, rule: AlphaRule) -> Self {
        self.shortcut_alpha = rule;
        self
    }
    pub fn pooling(mut self, pooling: Pooling) -> Self {
        self.pooling = pooling;
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Validates every parameter, naming the first bad one.
    pub fn check(self) -> Result<TopK> {
        if !(self.p > 0.0 && self.p <= 1.0) {
            return Err(Error::invalid(
                "p",
                self.p,
                "a fraction of the candidates in (0, 1]",
            ));
        }
        if self.r == 0 {
            return Err(Error::invalid("r", self.r, "a rank >= 1"));
        }
        if self.shortcut_r == Some(0) {
            return Err(Error::invalid("shortcut_r", 0, "a rank >= 1"));
        }
        self.lora_alpha.check("lora_alpha")?;
        self.shortcut_alpha.check("shortcut_alpha")?;
        Ok(TopK { params: self })
    }
}

/// A checked top-k allocator; build it with [`TopKParams`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopK {
    params: TopKParams,
}

impl TopK {
    pub fn params(&self) -> &TopKParams {
        &self.params
    }

    fn rules(&self) -> AlphaRules {
        AlphaRules {
            lora: self.params.lora_alpha,
            shortcut: self.params.shortcut_alpha,
        }
    }

    fn shortcut_r(&self) -> usize {
        self.params.shortcut_r.unwrap_or(self.params.r)
    }

    /// (k_lora, k_sc) for a space with `m_lora` LoRA and `m_sc` shortcut candidates.
    pub fn counts(&self, m_lora: usize, m_sc: usize) -> Result<(usize, usize)> {
        top_counts(self.params.p, m_lora, m_sc)
    }

    /// The top-k allocation of `space` on `scores`, tie-broken with this allocator's seed.
    pub fn allocate(
        &self,
        space: &SearchSpace,
        dims: &impl SlotSizes,
        scores: &Scores,
    ) -> Result<Allocation> {
        let mut rng = Rng::derive(self.params.seed, "search.topk");
        self.select(space, dims, scores, &mut rng)
    }

    /// As [`TopK::allocate`], drawing tie-breaks from `rng` (dynamic re-allocation passes its own
    /// stream so that successive re-allocations do not repeat the same tie-break).
    pub fn select(
        &self,
        space: &SearchSpace,
        dims: &impl SlotSizes,
        scores: &Scores,
        rng: &mut Rng,
    ) -> Result<Allocation> {
        let cands = dims.candidates(space)?;
        let values = checked_scores(scores, &cands, &dims.model_dims())?;
        let enabled = self.select_slots(&cands, &values, rng)?;
        let rules = self.rules();
        let ranks = enabled
            .iter()
            .map(|&s| {
                let r = if s.kind.is_shortcut() {
                    self.shortcut_r()
                } else {
                    self.params.r
                };
                (s, rules.slot_rank(s.kind, r))
            })
            .collect();
        let m_lora = cands.iter().filter(|s| !s.kind.is_shortcut()).count();
        let (k_lora, k_sc) = self.counts(m_lora, cands.len() - m_lora)?;
        let mut meta = BTreeMap::new();
        meta.insert("p".into(), self.params.p.to_string());
        meta.insert("r".into(), self.params.r.to_string());
        meta.insert("lora_alpha".into(), self.params.lora_alpha.to_string());
        if cands.len() > m_lora {
            meta.insert("shortcut_r".into(), self.shortcut_r().to_string());
            meta.insert(
                "shortcut_alpha".into(),
                self.params.shortcut_alpha.to_string(),
            );
            meta.insert("pooling".into(), self.params.pooling.to_string());
        }
        meta.insert("k".into(), format!("{k_lora} LoRA + {k_sc} shortcut"));
        meta.insert("seed".into(), self.params.seed.to_string());
        meta.insert("num_batches".into(), scores.num_batches.to_string());
        Ok(Allocation {
            dims: dims.model_dims(),
            candidates: cands,
            ranks,
            method: "topk".into(),
            proxy: Some(scores.proxy.clone()),
            meta,
        })
    }

    /// The enabled slots among `cands` with (checked, finite) `values`, best first.
    pub fn select_slots(
        &self,
        cands: &[SlotId],
        values: &[f64],
        rng: &mut Rng,
    ) -> Result<Vec<SlotId>> {
        let is_sc: Vec<bool> = cands.iter().map(|s| s.kind.is_shortcut()).collect();
        let m_sc = is_sc.iter().filter(|&&x| x).count();
        let (k_lora, k_sc) = self.counts(cands.len() - m_sc, m_sc)?;
        let order = rank_best_first(values, rng);
        let picked: Vec<usize> = match self.params.pooling {
            Pooling::Combined => order.into_iter().take(k_lora + k_sc).collect(),
            Pooling::Separated => {
                let lora = order.iter().copied().filter(|&i| !is_sc[i]).take(k_lora);
                let sc = order.iter().copied().filter(|&i| is_sc[i]).take(k_sc);
                lora.chain(sc).collect()
            }
        };
        Ok(picked.into_iter().map(|i| cands[i]).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::ModelDims;
    use crate::adapters::SlotKind;

    const OPT350M: ModelDims = ModelDims {
        num_layers: 24,
        hidden_size: 1024,
        intermediate_size: 4096,
    };

    fn scores_from(f: impl Fn(&SlotId) -> f64, slots: &[SlotId]) -> Scores {
        Scores {
            proxy: "test".into(),
            values: slots.iter().map(|s| (*s, f(s))).collect(),
            rank_gains: None,
            num_batches: 1,
            seconds: 0.0,
        }
    }

    #[test]
    fn reference_counts_on_a_24_layer_model() {
        // q, v on 24 layers = 48 LoRA slots; 4 shortcut kinds minus shortcut2 in layer 0 = 95.
        assert_eq!(top_counts(0.25, 48, 95).unwrap(), (12, 24));
        let space = SearchSpace::lora_qv_shortcuts();
        let slots = space.slots(24);
        // Shortcuts score higher than any LoRA slot: combined pooling gives them all 36 places,
        // separated pooling still gives LoRA its 12.
        let s = scores_from(
            |s| {
                if s.kind.is_shortcut() {
                    10.0 + s.layer as f64
                } else {
                    1.0
                }
            },
            &slots,
        );
        for (pooling, want_lora, want_sc) in
            [(Pooling::Combined, 0, 36), (Pooling::Separated, 12, 24)]
        {
            let a = TopKParams::new().pooling(pooling).check().unwrap();
            let alloc = a.allocate(&space, &OPT350M, &s).unwrap();
            let on_lora = alloc.ranks.keys().filter(|k| !k.kind.is_shortcut()).count();
            let on_sc = alloc.ranks.keys().filter(|k| k.kind.is_shortcut()).count();
            assert_eq!((on_lora, on_sc), (want_lora, want_sc), "{pooling}");
            assert_eq!(alloc.trainable_params(), 36 * 8 * 2048);
            assert_eq!(alloc.candidates.len(), 143);
        }
        // Reference alphas: LoRA 16 at r = 8, shortcuts 4.
        let a = TopKParams::new()
            .pooling(Pooling::Separated)
            .check()
            .unwrap();
        let alloc = a.allocate(&space, &OPT350M, &s).unwrap();
        for (slot, sr) in &alloc.ranks {
            assert_eq!(sr.r, 8);
            assert_eq!(
                sr.lora_alpha,
                if slot.kind.is_shortcut() { 4.0 } else { 16.0 }
            );
        }
    }

    #[test]
    fn counts_and_bad_percentiles() {
        assert_eq!(top_counts(0.29, 100, 0).unwrap(), (29, 0));
        assert_eq!(top_counts(1.0, 12, 23).unwrap(), (12, 23));
        // Halves round to even as in Python: 0.5 * 5 = 2.5 -> 2, 0.5 * 7 = 3.5 -> 4.
        assert_eq!(top_counts(0.5, 0, 5).unwrap(), (0, 2));
        assert_eq!(top_counts(0.5, 0, 7).unwrap(), (0, 4));
        for p in [0.0, -0.1, 1.01, f64::NAN] {
            let e = TopKParams::new().p(p).check().unwrap_err().to_string();
            assert!(e.contains("`p`") && e.contains("(0, 1]"), "{e}");
        }
        let e = top_counts(0.01, 12, 0).unwrap_err().to_string();
        assert!(e.contains("at least one"), "{e}");
        assert!(TopKParams::new().r(0).check().is_err());
        assert!(TopKParams::new().lora_alpha(-1.0).check().is_err());
        assert!("sideways".parse::<Pooling>().is_err());
    }

    #[test]
    fn picks_the_best_and_breaks_threshold_ties_at_random() {
        let d = ModelDims::MINILM_L6;
        let space = SearchSpace::lora_qv();
        let slots = space.slots(6);
        // Scores 0..12 by position: the top 3 are unambiguous.
        let s = scores_from(
            |s| (s.layer * 2 + (s.kind == SlotKind::Value) as usize) as f64,
            &slots,
        );
        let a = TopKParams::new()
            .check()
            .unwrap()
            .allocate(&space, &d, &s)
            .unwrap();
        let on: Vec<String> = a.ranks.keys().map(|k| k.to_string()).collect();
        assert_eq!(
            on,
            [
                "layer.4.attention.value",
                "layer.5.attention.query",
                "layer.5.attention.value"
            ]
        );
        // Two clear winners, then a 4-way tie for the last place.
        let s = scores_from(
            |s| match (s.layer, s.kind) {
                (0, SlotKind::Query) | (1, SlotKind::Query) => 5.0,
                (2..=3, _) => 2.0,
                _ => 1.0,
            },
            &slots,
        );
        let mut third = std::collections::BTreeMap::<SlotId, usize>::new();
        for seed in 0..200 {
            let a = TopKParams::new()
                .seed(seed)
                .check()
                .unwrap()
                .allocate(&space, &d, &s)
                .unwrap();
            assert!(a.ranks.contains_key(&SlotId::new(0, SlotKind::Query)));
            assert!(a.ranks.contains_key(&SlotId::new(1, SlotKind::Query)));
            let t: Vec<_> = a.ranks.keys().filter(|k| k.layer >= 2).collect();
            assert_eq!(t.len(), 1);
            assert!(t[0].layer <= 3);
            *third.entry(*t[0]).or_default() += 1;
        }
        assert_eq!(third.len(), 4, "{third:?}");
        // Same seed, same answer.
        let a1 = TopKParams::new()
            .seed(7)
            .check()
            .unwrap()
            .allocate(&space, &d, &s)
            .unwrap();
        let a2 = TopKParams::new()
            .seed(7)
            .check()
            .unwrap()
            .allocate(&space, &d, &s)
            .unwrap();
        assert_eq!(a1, a2);
    }

    #[test]
    fn constant_proxy_gives_a_uniformly_random_subset() {
        let d = ModelDims::MINILM_L6;
        let space = SearchSpace::lora_qv();
        let slots = space.slots(6);
        let s = scores_from(|_| 1.0, &slots);
        let mut counts = std::collections::BTreeMap::<SlotId, usize>::new();
        let trials = 1200;
        for seed in 0..trials {
            let a = TopKParams::new()
                .seed(seed)
                .check()
                .unwrap()
                .allocate(&space, &d, &s)
                .unwrap();
            assert_eq!(a.ranks.len(), 3);
            for k in a.ranks.keys() {
                *counts.entry(*k).or_default() += 1;
            }
        }
        // Each of 12 slots is on with probability 3/12: expected 300 of 1200, sd about 15.
        assert_eq!(counts.len(), 12);
        for (slot, n) in counts {
            assert!((240..=360).contains(&n), "{slot}: {n}");
        }
    }
}
