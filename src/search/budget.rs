//! [`Budget`]: an exact number of trainable adapter parameters, and [`BudgetSpec`], the ways a user
//! names one ("same as uniform r = 2", "same as the top 25% at r = 8", or a count).
//!
//! A rank-r adapter on a map d_in -> d_out trains r * (d_in + d_out) parameters (A is r x d_in,
//! B is d_out x r), for LoRA modules and shortcuts alike; budgets are sums of these, never estimates.

use crate::adapters::Allocation;
use crate::adapters::{SlotId, SlotSizes, SlotTable};
use crate::search::topk::top_counts;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An exact budget in trainable adapter parameters, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub params: usize,
    /// How the budget was set (`uniform:r=2 over 143 slots`, `explicit`, ...), for provenance.
    pub origin: String,
}

impl Budget {
    /// An explicit parameter count.
    pub fn params(params: usize) -> Self {
        Budget {
            params,
            origin: "explicit".into(),
        }
    }

    /// What uniform rank `r` on every candidate costs: the equal-budget baseline.
    pub fn same_as_uniform(candidates: &[SlotId], dims: &impl SlotSizes, r: usize) -> Result<Self> {
        if r == 0 {
            return Err(Error::invalid("r", r, "a rank >= 1"));
        }
        Ok(Budget {
            params: candidates.iter().map(|s| dims.slot_params(*s, r)).sum(),
            origin: format!("uniform:r={r} over {} slots", candidates.len()),
        })
    }

    /// What the static top-k rule (fraction `p`, rank `r`) costs on these candidates: k_lora LoRA
    /// slots and k_sc shortcut slots (the reference's counts, see [`top_counts`]).
    ///
    /// Which slots the top k are depends on the scores; this budget does not. When the slots of a
    /// pool differ in size (e.g. `intermediate` next to `attention.query`), each pool is charged
    /// k times its mean slot cost, rounded down; when they are equal (q, v and the shortcuts all
    /// map hidden -> hidden) the budget is exact. For the cost of one actual top-k choice use
    /// [`Budget::of_allocation`].
    pub fn same_as_top_p(
        candidates: &[SlotId],
        dims: &impl SlotSizes,
        p: f64,
        r: usize,
    ) -> Result<Self> {
        if r == 0 {
            return Err(Error::invalid("r", r, "a rank >= 1"));
        }
        let (lora, sc): (Vec<&SlotId>, Vec<&SlotId>) =
            candidates.iter().partition(|s| !s.kind.is_shortcut());
        let (k_lora, k_sc) = top_counts(p, lora.len(), sc.len())?;
        let pool_cost = |pool: &[&SlotId], k: usize| -> usize {
            if pool.is_empty() {
                return 0;
            }
            let sum: usize = pool.iter().map(|s| dims.slot_params(**s, r)).sum();
            // u128 because k * sum overflows usize only on absurd models, but cheaply avoided.
            ((k as u128 * sum as u128) / pool.len() as u128) as usize
        };
        Ok(Budget {
            params: pool_cost(&lora[..], k_lora) + pool_cost(&sc[..], k_sc),
            origin: format!(
                "top:p={p},r={r} ({k_lora} of {} LoRA + {k_sc} of {} shortcut slots)",
                lora.len(),
                sc.len()
            ),
        })
    }

    /// Exactly what an existing allocation trains on the model `table` describes (decoders:
    /// grouped-query k/v maps, the gate).
    pub fn of_allocation_in(a: &Allocation, table: &SlotTable) -> Result<Self> {
        Ok(Budget {
            params: a.trainable_params_in(table)?,
            origin: format!("same as the `{}` allocation", a.method),
        })
    }

    /// Exactly what an existing allocation trains.
    pub fn of_allocation(a: &Allocation) -> Self {
        Budget {
            params: a.trainable_params(),
            origin: format!("same as the `{}` allocation", a.method),
        }
    }

    /// Fails when the budget cannot buy even one rank-1 adapter on the cheapest candidate.
    pub fn check(&self, candidates: &[SlotId], dims: &impl SlotSizes) -> Result<()> {
        let cheapest = candidates
            .iter()
            .map(|s| (dims.slot_params(*s, 1), s))
            .min()
            .ok_or_else(|| Error::Budget("there are no candidate slots to spend it on".into()))?;
        if self.params < cheapest.0 {
            return Err(Error::Budget(format!(
                "{} trainable parameters ({}) is smaller than one rank-1 adapter: the cheapest \
                 candidate, {}, needs {}. Raise the budget to at least {}",
                self.params, self.origin, cheapest.1, cheapest.0, cheapest.0
            )));
        }
        Ok(())
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} parameters ({})", self.params, self.origin)
    }
}

/// A budget named relative to a search space; [`BudgetSpec::resolve`] turns it into a [`Budget`].
///
/// Parses from `73728` / `params=73728`, `uniform:r=2` (or `uniform:2`), `top:p=0.25,r=8`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetSpec {
    /// An explicit number of trainable parameters.
    Params(usize),
    /// The cost of uniform rank `r` on every candidate.
    Uniform { r: usize },
    /// The cost of the static top-k rule at fraction `p` and rank `r`.
    TopP { p: f64, r: usize },
}

impl Default for BudgetSpec {
    /// The reference's equal-budget baseline: uniform r = 2.
    fn default() -> Self {
        BudgetSpec::Uniform { r: 2 }
    }
}

impl BudgetSpec {
    /// The exact budget on these candidates, checked to buy at least one rank-1 adapter.
    pub fn resolve(&self, candidates: &[SlotId], dims: &impl SlotSizes) -> Result<Budget> {
        let b = match *self {
            BudgetSpec::Params(n) => Budget::params(n),
            BudgetSpec::Uniform { r } => Budget::same_as_uniform(candidates, dims, r)?,
            BudgetSpec::TopP { p, r } => Budget::same_as_top_p(candidates, dims, p, r)?,
        };
        b.check(candidates, dims)?;
        Ok(b)
    }
}

impl fmt::Display for BudgetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BudgetSpec::Params(n) => write!(f, "params={n}"),
            BudgetSpec::Uniform { r } => write!(f, "uniform:r={r}"),
            BudgetSpec::TopP { p, r } => write!(f, "top:p={p},r={r}"),
        }
    }
}

impl FromStr for BudgetSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let expected = "a parameter count (73728 or params=73728), uniform:r=R, or top:p=P,r=R";
        let bad = || Error::invalid("budget", s, expected);
        let t = s.trim().replace('_', "");
        if let Ok(n) = t.parse::<usize>() {
            return Ok(BudgetSpec::Params(n));
        }
        if let Some(n) = t.strip_prefix("params=") {
            return n.trim().parse().map(BudgetSpec::Params).map_err(|_| bad());
        }
        let (head, rest) = t.split_once(':').ok_or_else(bad)?;
        let mut p = None;
        let mut r = None;
        for kv in rest.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            match kv.split_once('=') {
                Some(("r", v)) => r = Some(v.trim().parse::<usize>().map_err(|_| bad())?),
                Some(("p", v)) => p = Some(v.trim().parse::<f64>().map_err(|_| bad())?),
                None if head == "uniform" => r = Some(kv.parse::<usize>().map_err(|_| bad())?),
                _ => return Err(bad()),
            }
        }
        match (head, p, r) {
            ("uniform", None, Some(r)) => Ok(BudgetSpec::Uniform { r }),
            ("top" | "topk" | "top-p", Some(p), Some(r)) => Ok(BudgetSpec::TopP { p, r }),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::ModelDims;
    use crate::adapters::SearchSpace;

    const OPT350M: ModelDims = ModelDims {
        num_layers: 24,
        hidden_size: 1024,
        intermediate_size: 4096,
    };

    #[test]
    fn reference_budgets_are_exact() {
        // The reference's "similar budget" on OPT-350M: uniform r = 2 on q, v and the shortcuts
        // trains 585,728 parameters; 36 modules at r = 8 train 589,824.
        let c = SearchSpace::lora_qv_shortcuts().slots(24);
        assert_eq!(c.len(), 48 + 95);
        let u = Budget::same_as_uniform(&c, &OPT350M, 2).unwrap();
        assert_eq!(u.params, 585_728);
        let t = Budget::same_as_top_p(&c, &OPT350M, 0.25, 8).unwrap();
        assert_eq!(t.params, 589_824);
        assert!(
            t.origin.contains("12 of 48 LoRA + 24 of 95"),
            "{}",
            t.origin
        );
        // MiniLM q,v at r = 8: 73,728; a quarter of it at the top-k rule.
        let c = SearchSpace::lora_qv().slots(6);
        let d = ModelDims::MINILM_L6;
        assert_eq!(
            BudgetSpec::Uniform { r: 8 }.resolve(&c, &d).unwrap().params,
            73_728
        );
        assert_eq!(
            BudgetSpec::TopP { p: 0.25, r: 8 }
                .resolve(&c, &d)
                .unwrap()
                .params,
            3 * 8 * 768
        );
    }

    #[test]
    fn budget_errors_name_the_value() {
        let c = SearchSpace::lora_qv().slots(6);
        let d = ModelDims::MINILM_L6;
        let e = BudgetSpec::Params(767)
            .resolve(&c, &d)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("767") && e.contains("768") && e.contains("rank-1"),
            "{e}"
        );
        assert!(BudgetSpec::Params(768).resolve(&c, &d).is_ok());
        let e = BudgetSpec::TopP { p: 1.5, r: 8 }
            .resolve(&c, &d)
            .unwrap_err()
            .to_string();
        assert!(e.contains("1.5") && e.contains("(0, 1]"), "{e}");
        let e = BudgetSpec::Uniform { r: 0 }
            .resolve(&c, &d)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`r`"), "{e}");
        assert!(Budget::params(10).check(&[], &d).is_err());
    }

    #[test]
    fn budget_specs_parse_and_print() {
        for (s, want) in [
            ("73728", BudgetSpec::Params(73_728)),
            ("params=73_728", BudgetSpec::Params(73_728)),
            ("uniform:r=2", BudgetSpec::Uniform { r: 2 }),
            ("uniform:2", BudgetSpec::Uniform { r: 2 }),
            ("top:p=0.25,r=8", BudgetSpec::TopP { p: 0.25, r: 8 }),
        ] {
            let got: BudgetSpec = s.parse().unwrap();
            assert_eq!(got, want, "{s}");
            assert_eq!(got.to_string().parse::<BudgetSpec>().unwrap(), want);
        }
        for bad in ["", "uniform", "uniform:r=x", "top:p=0.25", "half", "-5"] {
            let e = bad.parse::<BudgetSpec>().unwrap_err().to_string();
            assert!(e.contains("budget"), "{e}");
        }
    }

    #[test]
    fn budgets_on_a_grouped_query_table_are_exact() {
        use crate::adapters::{Architecture, SlotSizes};
        // hidden 32, q 32, k/v 16 (2 of 4 heads), MLP 48, 2 layers.
        let t = SlotTable::llama(Architecture::Llama, 2, 32, 48, 32, 16);
        let space = SearchSpace::parse_kinds("lora").unwrap();
        let cands = t.candidates(&space).unwrap();
        assert_eq!(cands.len(), 2 * 7, "`lora` takes the gate on Llama");
        let b = Budget::same_as_uniform(&cands, &t, 2).unwrap();
        let per_layer = 64 + 48 + 48 + 64 + 80 + 80 + 80;
        assert_eq!(b.params, 2 * 2 * per_layer);
        let u = crate::search::UniformParams::new()
            .r(2)
            .check()
            .unwrap()
            .allocate(&space, &t)
            .unwrap();
        assert_eq!(u.trainable_params_in(&t).unwrap(), b.params);
        assert_eq!(Budget::of_allocation_in(&u, &t).unwrap().params, b.params);
        // BERT-shaped counting would charge k and v as hidden -> hidden.
        assert!(u.trainable_params() > b.params);
        // The same spec on BERT keeps its six kinds.
        let bert = SlotTable::bert(&ModelDims::MINILM_L6);
        assert_eq!(bert.candidates(&space).unwrap().len(), 6 * 6);
    }
}
