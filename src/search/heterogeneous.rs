//! The heterogeneous-rank allocator: each slot's rank from a set (e.g. 0, 1, 2, 4, 8, 16), chosen to
//! maximise the summed score gain under an exact parameter budget.
//!
//! The objective is sum over slots of g_s(r_s), subject to sum r_s * (d_in + d_out) <= budget.
//!
//! Gain model: when the scores carry per-rank gains ([`Scores::rank_gains`], cumulative gains of
//! ranks 1..=n, e.g. the energy of the top singular values of a weight gradient), g_s(r) is the
//! r-th entry (the last entry beyond n). Otherwise every slot's single score s is spread over ranks
//! with diminishing returns, g_s(r) = s * log2(1 + r): g(1) = s, g(2) = 1.58 s, g(8) = 3.17 s,
//! g(16) = 4.09 s. Concave in r, so a budget goes first to switching good slots on and only then to
//! raising their ranks, and a slot with twice the score is worth a higher rank. Slots with a
//! non-positive gain stay off, and no slot gets a rank above min(d_in, d_out).
//!
//! Solvers: [`Solver::Greedy`] repeatedly takes the upgrade (slot, from its rank to any higher rank
//! in the set) with the largest gain per added parameter that still fits, until none fits: the last
//! steps are a fill pass that spends what the best-ratio upgrades leave over. Ties are broken by a
//! seeded random slot order. [`Solver::Exact`] solves the multiple-choice knapsack by dynamic
//! programming over the budget in units of the gcd of all slot costs; optimal, and feasible for
//! the sizes of this project (checked before it runs).

use crate::adapters::Allocation;
use crate::adapters::{AlphaRule, AlphaRules};
use crate::adapters::{SearchSpace, SlotId, SlotSizes};
use crate::proxy::Scores;
use crate::rng::Rng;
use crate::search::budget::BudgetSpec;
use crate::search::candidates::checked_scores;
use crate::search::knapsack::{exact, greedy, Problem};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// How the rank choice is solved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Solver {
    /// Greedy on marginal gain per parameter, with a fill pass.
    #[default]
    Greedy,
    /// Dynamic programming: the optimum of the objective.
    Exact,
}

impl fmt::Display for Solver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Solver::Greedy => "greedy",
            Solver::Exact => "exact",
        })
    }
}

impl FromStr for Solver {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "greedy" => Ok(Solver::Greedy),
            "exact" | "dp" => Ok(Solver::Exact),
            _ => Err(Error::invalid("solver", s, "greedy or exact")),
        }
    }
}

/// Hyper-parameters of the heterogeneous allocator; [`HeterogeneousParams::check`] validates them.
///
/// | name | default | range | meaning |
/// |---|---|---|---|
/// | `ranks` | 0, 1, 2, 4, 8, 16 | ranks >= 0, at least one >= 1 | ranks a slot may get (0 = off, always allowed) |
/// | `budget` | `uniform:r=2` | >= one rank-1 adapter | trainable-parameter budget ([`BudgetSpec`]) |
/// | `lora_alpha` | `16` (the authors') | > 0 | alpha of LoRA slots as a function of their rank (`2r`: scaling 2 at every rank) |
/// | `shortcut_alpha` | 4 | > 0 | alpha_s of shortcut slots |
/// | `solver` | greedy | greedy, exact | how the choice is solved |
/// | `seed` | 0 | any | seeds the tie-break among equal upgrades |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeterogeneousParams {
    pub ranks: Vec<usize>,
    pub budget: BudgetSpec,
    pub lora_alpha: AlphaRule,
    pub shortcut_alpha: AlphaRule,
    pub solver: Solver,
    pub seed: u64,
}

impl Default for HeterogeneousParams {
    fn default() -> Self {
        HeterogeneousParams {
            ranks: vec![0, 1, 2, 4, 8, 16],
            budget: BudgetSpec::default(),
            lora_alpha: AlphaRule::LORA_DEFAULT,
            shortcut_alpha: AlphaRule::SHORTCUT_DEFAULT,
            solver: Solver::Greedy,
            seed: 0,
        }
    }
}

impl HeterogeneousParams {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn ranks(mut self, ranks: impl Into<Vec<usize>>) -> Self {
        self.ranks = ranks.into();
        self
    }
    pub fn budget(mut self, budget: BudgetSpec) -> Self {
        self.budget = budget;
        self
    }
    pub fn lora_alpha_rule(mut self, rule: AlphaRule) -> Self {
        self.lora_alpha = rule;
        self
    }
    pub fn shortcut_alpha_rule(mut self, rule: AlphaRule) -> Self {
        self.shortcut_alpha = rule;
        self
    }
    pub fn solver(mut self, solver: Solver) -> Self {
        self.solver = solver;
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn check(mut self) -> Result<Heterogeneous> {
        self.ranks.push(0);
        self.ranks.sort_unstable();
        self.ranks.dedup();
        if self.ranks.len() > 64 {
            return Err(Error::invalid(
                "ranks",
                format!("{} ranks", self.ranks.len()),
                "at most 64 distinct ranks",
            ));
        }
        if self.ranks.len() < 2 {
            return Err(Error::invalid(
                "ranks",
                "{0}",
                "a rank set with at least one rank >= 1, e.g. 0,1,2,4,8,16",
            ));
        }
        if let BudgetSpec::TopP { p, .. } = self.budget {
            if !(p > 0.0 && p <= 1.0) {
                return Err(Error::invalid(
                    "p",
                    p,
                    "a fraction of the candidates in (0, 1]",
                ));
            }
        }
        self.lora_alpha.check("lora_alpha")?;
        self.shortcut_alpha.check("shortcut_alpha")?;
        Ok(Heterogeneous { params: self })
    }
}

/// A checked heterogeneous-rank allocator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heterogeneous {
    params: HeterogeneousParams,
}

impl Heterogeneous {
    pub fn params(&self) -> &HeterogeneousParams {
        &self.params
    }

    /// The rank set, sorted, with 0.
    pub fn rank_set(&self) -> &[usize] {
        &self.params.ranks
    }

    /// g_s(r) for `slot` (see the module docs), from checked scores.
    pub fn gain(scores: &Scores, slot: &SlotId, score: f64, r: usize) -> Result<f64> {
        if r == 0 {
            return Ok(0.0);
        }
        match &scores.rank_gains {
            Some(gains) => {
                let g = gains.get(slot).ok_or_else(|| {
                    Error::invalid(
                        "rank_gains",
                        format!(
                            "proxy `{}` has no per-rank gains for slot {slot}",
                            scores.proxy
                        ),
                        "per-rank gains for every candidate slot, or none at all",
                    )
                })?;
                let v = *g.get(r.min(g.len()).wrapping_sub(1)).ok_or_else(|| {
                    Error::invalid("rank_gains", format!("{slot}: []"), "at least one gain")
                })?;
                if !v.is_finite() {
                    return Err(Error::invalid(
                        "rank_gains",
                        format!("{slot} at rank {r}: {v}"),
                        "finite gains",
                    ));
                }
                Ok(v)
            }
            None => Ok(score * (1.0 + r as f64).log2()),
        }
    }

    /// The objective of any allocation under these scores: the summed gain of its ranks. Lets a
    /// user compare this allocator with uniform or top-k on the objective it maximises.
    pub fn objective(&self, alloc: &Allocation, scores: &Scores) -> Result<f64> {
        let mut total = 0.0;
        for (slot, sr) in &alloc.ranks {
            let s = scores.values.get(slot).copied().unwrap_or(0.0);
            total += Self::gain(scores, slot, s, sr.r)?;
        }
        Ok(total)
    }

    fn problem(
        &self,
        cands: &[SlotId],
        values: &[f64],
        scores: &Scores,
        dims: &impl SlotSizes,
    ) -> Result<Problem> {
        let ranks = &self.params.ranks;
        let mut gain: Vec<Vec<f64>> = Vec::with_capacity(cands.len());
        let mut cost: Vec<Vec<usize>> = Vec::with_capacity(cands.len());
        for (slot, &v) in cands.iter().zip(values) {
            // A rank above min(d_in, d_out) adds parameters but no expressiveness (B A is already
            // full rank): such choices are excluded for that slot.
            let (d_in, d_out) = dims.kind_dims(slot.kind);
            gain.push(
                ranks
                    .iter()
                    .map(|&r| {
                        if r > d_in.min(d_out) {
                            Ok(f64::NEG_INFINITY)
                        } else {
                            Self::gain(scores, slot, v, r)
                        }
                    })
                    .collect::<Result<Vec<f64>>>()?,
            );
            cost.push(ranks.iter().map(|&r| dims.slot_params(*slot, r)).collect());
        }
        Ok(Problem {
            slots: cands.to_vec(),
            gain,
            cost,
        })
    }

    /// The allocation of `space` under the budget that maximises the summed gain.
    pub fn allocate(
        &self,
        space: &SearchSpace,
        dims: &impl SlotSizes,
        scores: &Scores,
    ) -> Result<Allocation> {
        let cands = dims.candidates(space)?;
        let values = checked_scores(scores, &cands, &dims.model_dims())?;
        let budget = self.params.budget.resolve(&cands, dims)?;
        let prob = self.problem(&cands, &values, scores, dims)?;
        // "A rank set without a feasible choice": the smallest positive rank must fit somewhere.
        let (cheapest, at) = prob
            .cost
            .iter()
            .zip(&prob.slots)
            .map(|(c, s)| (c[1], s))
            .min()
            .expect("candidates are non-empty");
        if cheapest > budget.params {
            return Err(Error::Budget(format!(
                "no rank of the set {:?} fits {}: the cheapest choice, {at} at r = {}, needs {} \
                 parameters. Add smaller ranks or raise the budget",
                &self.params.ranks[1..],
                budget,
                self.params.ranks[1],
                cheapest
            )));
        }
        if prob.gain.iter().all(|g| g.iter().all(|&x| x <= 0.0)) {
            return Err(Error::invalid(
                "scores",
                format!("proxy `{}` gives no slot a positive gain", scores.proxy),
                "some positive scores: SNIP and SynFlow score fresh adapters (B = 0) zero; use \
                 grad-norm, a W0-gradient proxy, or partly trained adapters",
            ));
        }
        let choice = match self.params.solver {
            Solver::Greedy => greedy(
                &prob,
                budget.params,
                &mut Rng::derive(self.params.seed, "search.heterogeneous"),
            ),
            Solver::Exact => exact(&prob, budget.params)?,
        };
        let rules = AlphaRules {
            lora: self.params.lora_alpha,
            shortcut: self.params.shortcut_alpha,
        };
        let mut ranks = BTreeMap::new();
        let (mut used, mut objective) = (0usize, 0.0);
        for (i, &j) in choice.iter().enumerate() {
            used += prob.cost[i][j];
            objective += prob.gain[i][j];
            if j > 0 {
                let slot = prob.slots[i];
                ranks.insert(slot, rules.slot_rank(slot.kind, self.params.ranks[j]));
            }
        }
        debug_assert!(used <= budget.params);
        let mut meta = BTreeMap::new();
        meta.insert("budget".into(), budget.params.to_string());
        meta.insert("budget_origin".into(), budget.origin.clone());
        meta.insert("budget_left".into(), (budget.params - used).to_string());
        let ranks_s: Vec<String> = self.params.ranks.iter().map(|r| r.to_string()).collect();
        meta.insert("rank_set".into(), ranks_s.join(","));
        meta.insert("solver".into(), self.params.solver.to_string());
        meta.insert(
            "gain_model".into(),
            if scores.rank_gains.is_some() {
                "rank_gains".into()
            } else {
                "score * log2(1 + r)".into()
            },
        );
        meta.insert("objective".into(), format!("{objective}"));
        meta.insert("lora_alpha".into(), self.params.lora_alpha.to_string());
        meta.insert(
            "shortcut_alpha".into(),
            self.params.shortcut_alpha.to_string(),
        );
        meta.insert("seed".into(), self.params.seed.to_string());
        meta.insert("num_batches".into(), scores.num_batches.to_string());
        Ok(Allocation {
            dims: dims.model_dims(),
            candidates: cands,
            ranks,
            method: "heterogeneous".into(),
            proxy: Some(scores.proxy.clone()),
            meta,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::ModelDims;
    use crate::search::UniformParams;

    fn random_scores(slots: &[SlotId], seed: u64) -> Scores {
        let mut rng = Rng::new(seed);
        Scores {
            proxy: "test".into(),
            // Heavy-tailed positive scores, as gradient norms are.
            values: slots
                .iter()
                .map(|s| (*s, (2.0 * rng.normal()).exp()))
                .collect(),
            rank_gains: None,
            num_batches: 1,
            seconds: 0.0,
        }
    }

    #[test]
    fn never_exceeds_the_budget_and_beats_uniform_on_its_objective() {
        let d = ModelDims::MINILM_L6;
        for space in [
            SearchSpace::lora_qv(),
            SearchSpace::lora_qv_shortcuts(),
            SearchSpace::parse_kinds("all").unwrap(),
        ] {
            let slots = space.slots(6);
            let uniform = UniformParams::new()
                .check()
                .unwrap()
                .allocate(&space, &d)
                .unwrap();
            for seed in 0..20 {
                let s = random_scores(&slots, seed);
                for solver in [Solver::Greedy, Solver::Exact] {
                    let h = HeterogeneousParams::new()
                        .solver(solver)
                        .seed(seed)
                        .check()
                        .unwrap();
                    let a = h.allocate(&space, &d, &s).unwrap();
                    assert!(a.trainable_params() <= uniform.trainable_params());
                    let (oh, ou) = (
                        h.objective(&a, &s).unwrap(),
                        h.objective(&uniform, &s).unwrap(),
                    );
                    assert!(oh > ou, "{solver} seed {seed}: {oh} <= uniform {ou}");
                    // Greedy's fill pass leaves less than the cheapest remaining upgrade unspent.
                    let left: usize = a.meta["budget_left"].parse().unwrap();
                    let set = [0, 1, 2, 4, 8, 16];
                    let cheapest_upgrade = slots
                        .iter()
                        .filter_map(|sl| {
                            let r = a.rank(sl);
                            let next = *set.iter().find(|&&x| x > r)?;
                            Some(sl.params_at_rank(next - r, &d))
                        })
                        .min()
                        .unwrap();
                    if solver == Solver::Greedy {
                        assert!(left < cheapest_upgrade, "seed {seed}: {left} left");
                    }
                    for sr in a.ranks.values() {
                        assert!([1, 2, 4, 8, 16].contains(&sr.r));
                    }
                }
            }
        }
    }

    #[test]
    fn greedy_is_close_to_the_exact_optimum() {
        let d = ModelDims::MINILM_L6;
        let space = SearchSpace::parse_kinds("q,v,ffn_in,res1").unwrap();
        let slots = space.slots(6);
        for seed in 0..10 {
            let s = random_scores(&slots, 100 + seed);
            let budget = BudgetSpec::Params(50_000 + 3_000 * seed as usize);
            let g = HeterogeneousParams::new()
                .budget(budget.clone())
                .check()
                .unwrap();
            let e = HeterogeneousParams::new()
                .budget(budget)
                .solver(Solver::Exact)
                .check()
                .unwrap();
            let (ag, ae) = (
                g.allocate(&space, &d, &s).unwrap(),
                e.allocate(&space, &d, &s).unwrap(),
            );
            let (og, oe) = (g.objective(&ag, &s).unwrap(), e.objective(&ae, &s).unwrap());
            assert!(
                og <= oe + 1e-9 && og >= 0.97 * oe,
                "seed {seed}: greedy {og} exact {oe}"
            );
            assert!(ae.trainable_params() <= 50_000 + 3_000 * seed as usize);
        }
    }

    #[test]
    fn per_rank_gains_drive_the_choice() {
        let d = ModelDims::MINILM_L6;
        let space = SearchSpace::lora_qv();
        let slots = space.slots(6);
        let mut s = random_scores(&slots, 1);
        // Slot 0's spectrum keeps growing; every other slot saturates at rank 1.
        let gains: BTreeMap<SlotId, Vec<f64>> = slots
            .iter()
            .enumerate()
            .map(|(i, &sl)| {
                let g = if i == 0 {
                    (1..=16).map(|r| r as f64).collect()
                } else {
                    vec![0.5; 16]
                };
                (sl, g)
            })
            .collect();
        s.rank_gains = Some(gains);
        // Budget: rank 16 on slot 0 plus rank 1 on the 11 others.
        let h = HeterogeneousParams::new()
            .budget(BudgetSpec::Params(27 * 768))
            .check()
            .unwrap();
        let a = h.allocate(&space, &d, &s).unwrap();
        assert_eq!(a.rank(&slots[0]), 16);
        assert!(slots[1..].iter().all(|sl| a.rank(sl) == 1));
        assert_eq!(a.meta["gain_model"], "rank_gains");
        // Missing gains for one slot is an error naming it.
        s.rank_gains.as_mut().unwrap().remove(&slots[3]);
        let e = h.allocate(&space, &d, &s).unwrap_err().to_string();
        assert!(e.contains(&slots[3].to_string()), "{e}");
    }

    #[test]
    fn infeasible_rank_sets_and_budgets_fail_clearly() {
        let d = ModelDims::MINILM_L6;
        let space = SearchSpace::lora_qv();
        let s = random_scores(&space.slots(6), 3);
        let e = HeterogeneousParams::new()
            .ranks(vec![0])
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("ranks"), "{e}");
        let e = HeterogeneousParams::new()
            .ranks(vec![8, 16])
            .budget(BudgetSpec::Params(5_000))
            .check()
            .unwrap()
            .allocate(&space, &d, &s)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[8, 16]") && e.contains("6144") && e.contains("5000"),
            "{e}"
        );
        let e = HeterogeneousParams::new()
            .budget(BudgetSpec::Params(100))
            .check()
            .unwrap()
            .allocate(&space, &d, &s)
            .unwrap_err()
            .to_string();
        assert!(e.contains("rank-1"), "{e}");
        let mut zero = s.clone();
        zero.values.values_mut().for_each(|v| *v = 0.0);
        let e = HeterogeneousParams::new()
            .check()
            .unwrap()
            .allocate(&space, &d, &zero)
            .unwrap_err()
            .to_string();
        assert!(e.contains("positive gain"), "{e}");
    }

    #[test]
    fn constant_scores_reproduce_uniform_at_its_own_budget() {
        let d = ModelDims::MINILM_L6;
        let space = SearchSpace::lora_qv();
        let mut s = random_scores(&space.slots(6), 0);
        s.values.values_mut().for_each(|v| *v = 1.0);
        let a = HeterogeneousParams::new()
            .check()
            .unwrap()
            .allocate(&space, &d, &s)
            .unwrap();
        assert!(a.ranks.values().all(|sr| sr.r == 2), "{a:?}");
        assert_eq!(a.trainable_params(), 12 * 2 * 768);
    }

    #[test]
    fn ranks_above_the_slot_dimension_are_never_chosen() {
        let d = ModelDims {
            num_layers: 2,
            hidden_size: 4,
            intermediate_size: 8,
        };
        let space = SearchSpace::lora_qv();
        let s = random_scores(&space.slots(2), 9);
        for solver in [Solver::Greedy, Solver::Exact] {
            let a = HeterogeneousParams::new()
                .budget(BudgetSpec::Params(10_000))
                .solver(solver)
                .check()
                .unwrap()
                .allocate(&space, &d, &s)
                .unwrap();
            // Budget for 16 x 4 x 8 but hidden 4: every slot stops at rank 4.
            assert!(a.ranks.values().all(|sr| sr.r == 4), "{solver}: {a}");
        }
    }
}
