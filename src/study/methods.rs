//! The study's methods as data: a name, a search space, an allocator, a proxy, static or dynamic.
//!
//! [`Method::all`] lists them in priority order (the order a study runs them, so that a study cut
//! short has the comparisons that matter most): the equal-budget baseline, static HeteroLoRA with
//! the default proxy, dynamic HeteroLoRA, random allocation, the 4x-budget reference, the other
//! proxies, the LoRA + shortcut space and heterogeneous ranks.

use crate::adapters::{ModelDims, SearchSpace, SlotId};
use crate::proxy::Scores;
use crate::search::{
    Allocation, AlphaRule, Budget, BudgetSpec, HeterogeneousParams, Pooling, TopK, TopKParams,
    UniformParams,
};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// The search spaces of the study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Space {
    /// Query and value LoRA modules in every layer (12 slots on MiniLM-L6).
    Qv,
    /// q, v and the four LoRA-adapted shortcut kinds (12 + 23 slots on MiniLM-L6).
    QvShortcuts,
}

impl Space {
    pub fn search_space(self) -> SearchSpace {
        match self {
            Space::Qv => SearchSpace::lora_qv(),
            Space::QvShortcuts => SearchSpace::lora_qv_shortcuts(),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Space::Qv => "q,v",
            Space::QvShortcuts => "q,v+shortcuts",
        }
    }
}

/// How a method turns (optional) scores into an allocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllocatorSpec {
    /// The same rank on every candidate.
    Uniform { r: usize },
    /// The top fraction `p` of the candidates at rank `r`.
    TopK { p: f64, r: usize, pooling: Pooling },
    /// A rank per slot from `ranks` (0 = off), maximising the summed score under the cost of
    /// uniform rank `budget_r` on the space.
    Heterogeneous { ranks: Vec<usize>, budget_r: usize },
}

/// One method of the study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Method {
    /// Unique, file-name safe (`uniform-r2`, `static-grad-norm`, ...).
    pub name: String,
    /// Group in tables and plots: `uniform`, `random`, `static`, `dynamic`, `shortcut`,
    /// `heterogeneous`.
    pub family: String,
    pub space: Space,
    pub allocator: AllocatorSpec,
    /// Scoring proxy (`None` for uniform allocations).
    pub proxy: Option<String>,
    /// Re-allocate during training (HeteroLoRA's dynamic variant) instead of once before.
    pub dynamic: bool,
    pub description: String,
    /// `lora_alpha` of the LoRA slots the method turns on, as a function of their rank: the
    /// authors' 16 at every rank by default, [`AlphaRule::PER_RANK_2R`] on request
    /// ([`Method::with_lora_alpha`], or the protocol's `lora_alpha` through
    /// [`super::Protocol::apply`]). Methods serialised before the field existed used 2r.
    #[serde(default = "AlphaRule::legacy_study")]
    pub lora_alpha: AlphaRule,
}

/// The static proxies of the study, default first; `constant` is the random baseline and is
/// listed as its own method.
pub const STATIC_PROXIES: [&str; 10] = [
    "grad-norm",
    "snip-w0",
    "w0-grad-norm",
    "w0-grad-spectrum",
    "fisher",
    "jacob-cov",
    "snip",
    "synflow",
    "synflow-sum",
    "alpha-test",
];

const TOP_P: f64 = 0.25;
const TOP_R: usize = 8;
const LOW_R: usize = 2;

impl Method {
    fn new(
        name: impl Into<String>,
        family: &str,
        space: Space,
        allocator: AllocatorSpec,
        proxy: Option<&str>,
        dynamic: bool,
        description: impl Into<String>,
    ) -> Method {
        Method {
            name: name.into(),
            family: family.into(),
            space,
            allocator,
            proxy: proxy.map(str::to_string),
            dynamic,
            description: description.into(),
            lora_alpha: AlphaRule::LORA_DEFAULT,
        }
    }

    /// The same method with LoRA alpha following `rule` (e.g. [`AlphaRule::PER_RANK_2R`] to
    /// reproduce the studies committed before the authors' alpha 16 became the default). The
    /// name is kept: the protocol records the rule, and a study refuses to mix protocols.
    pub fn with_lora_alpha(mut self, rule: AlphaRule) -> Method {
        self.lora_alpha = rule;
        self
    }

    fn topk_spec(pooling: Pooling) -> AllocatorSpec {
        AllocatorSpec::TopK {
            p: TOP_P,
            r: TOP_R,
            pooling,
        }
    }

    /// Uniform LoRA on q,v at rank `r`.
    pub fn uniform(r: usize) -> Method {
        let what = if r == LOW_R {
            "the equal-budget baseline"
        } else {
            "the reference LoRA"
        };
        Method::new(
            format!("uniform-r{r}"),
            "uniform",
            Space::Qv,
            AllocatorSpec::Uniform { r },
            None,
            false,
            format!("uniform LoRA r = {r} on every q,v module ({what})"),
        )
    }

    /// Static top-25% at r = 8 on q,v scored once by `proxy` before training.
    pub fn static_proxy(proxy: &str) -> Method {
        Method::new(
            format!("static-{proxy}"),
            "static",
            Space::Qv,
            Method::topk_spec(Pooling::Combined),
            Some(proxy),
            false,
            format!("static HeteroLoRA: top 25% of q,v by {proxy} at r = 8"),
        )
    }

    /// HeteroLoRA on q,v with any proxy, fraction and rank (what `heterolora run` trains).
    pub fn heterolora(proxy: &str, p: f64, r: usize, dynamic: bool) -> Method {
        let kind = if dynamic { "dynamic" } else { "static" };
        Method::new(
            format!("{kind}-{proxy}"),
            kind,
            Space::Qv,
            AllocatorSpec::TopK {
                p,
                r,
                pooling: Pooling::Combined,
            },
            Some(proxy),
            dynamic,
            format!(
                "{kind} HeteroLoRA: top {}% of q,v by {proxy} at r = {r}",
                p * 100.0
            ),
        )
    }

    /// The whole study, in priority order.
    pub fn all() -> Vec<Method> {
        let mut v = vec![
            Method::uniform(LOW_R),
            Method::static_proxy("grad-norm"),
            Method::new(
                "dynamic-grad-norm",
                "dynamic",
                Space::Qv,
                Method::topk_spec(Pooling::Combined),
                Some("grad-norm"),
                true,
                "dynamic HeteroLoRA: top 25% of q,v by grad-norm, re-scored during training",
            ),
            Method::new(
                "random",
                "random",
                Space::Qv,
                Method::topk_spec(Pooling::Combined),
                Some("constant"),
                false,
                "random allocation: 25% of q,v at r = 8 chosen at random (constant proxy)",
            ),
            Method::uniform(TOP_R),
        ];
        v.extend(STATIC_PROXIES[1..].iter().map(|p| Method::static_proxy(p)));
        v.extend([
            Method::new(
                "sc-uniform-r2",
                "shortcut",
                Space::QvShortcuts,
                AllocatorSpec::Uniform { r: LOW_R },
                None,
                false,
                "uniform r = 2 on q,v and every LoRA-adapted shortcut",
            ),
            Method::new(
                "sc-dynamic-combined",
                "shortcut",
                Space::QvShortcuts,
                Method::topk_spec(Pooling::Combined),
                Some("grad-norm"),
                true,
                "dynamic HeteroLoRA on q,v + shortcuts, one ranking (combined)",
            ),
            Method::new(
                "sc-dynamic-separated",
                "shortcut",
                Space::QvShortcuts,
                Method::topk_spec(Pooling::Separated),
                Some("grad-norm"),
                true,
                "dynamic HeteroLoRA on q,v + shortcuts, top of each list (separated)",
            ),
            Method::new(
                "hetero-ranks-w0-grad-spectrum",
                "heterogeneous",
                Space::Qv,
                AllocatorSpec::Heterogeneous {
                    ranks: vec![0, 2, 4, 8, 16],
                    budget_r: LOW_R,
                },
                Some("w0-grad-spectrum"),
                false,
                "heterogeneous ranks {0,2,4,8,16} on q,v under the uniform r = 2 budget, \
                 per-rank gains of w0-grad-spectrum",
            ),
        ]);
        v
    }

    /// The core methods, the default protocol's: uniform LoRA r = 2 on q,v (the equal-budget
    /// baseline), static HeteroLoRA with grad-norm, random allocation and dynamic HeteroLoRA
    /// with grad-norm, all at the same budget: the comparison the paper's +1.6 is about.
    pub fn core() -> Vec<Method> {
        const CORE: [&str; 4] = [
            "uniform-r2",
            "static-grad-norm",
            "random",
            "dynamic-grad-norm",
        ];
        let all = Method::all();
        CORE.iter()
            .map(|n| {
                all.iter()
                    .find(|m| m.name == *n)
                    .cloned()
                    .expect("every core method is one of Method::all")
            })
            .collect()
    }

    /// The CPU study's methods: [`Method::all`] without the proxies that are blind on fresh
    /// adapters (SNIP, SynFlow and SynFlow-sum score every slot with B = 0 the same, so their
    /// allocation is the random baseline's tie-break, already measured as `random`), without the
    /// alpha-test (blind too in its first, adapter-only form; the authors' form trains briefly
    /// and scales whole modules, at many forward passes per slot), and without jacob-cov and
    /// w0-grad-spectrum as static proxies (the latter drives the heterogeneous-rank method). 12 methods: about 8 hours for 3 seeds on 2 cores.
    pub fn cpu_default() -> Vec<Method> {
        const SKIP: [&str; 6] = [
            "static-snip",
            "static-synflow",
            "static-synflow-sum",
            "static-alpha-test",
            "static-jacob-cov",
            "static-w0-grad-spectrum",
        ];
        Method::all()
            .into_iter()
            .filter(|m| !SKIP.contains(&m.name.as_str()))
            .collect()
    }

    /// The methods named in `names` (comma-separated lists allowed; `all` for every method,
    /// `core` for [`Method::core`], `default` for [`Method::cpu_default`]; a family name such
    /// as `static` selects the family), in the order of [`Method::all`].
    pub fn select(names: &[String]) -> Result<Vec<Method>> {
        if names.iter().any(|n| n.trim() == "default") {
            return Ok(Method::cpu_default());
        }
        if names.len() == 1 && names[0].trim() == "core" {
            return Ok(Method::core());
        }
        let all = Method::all();
        let wanted: Vec<String> = names
            .iter()
            .flat_map(|n| n.split(','))
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect();
        if wanted.is_empty() || wanted.iter().any(|n| n == "all") {
            return Ok(all);
        }
        for w in &wanted {
            if !all.iter().any(|m| &m.name == w || &m.family == w) {
                let names: Vec<&str> = all.iter().map(|m| m.name.as_str()).collect();
                return Err(Error::invalid(
                    "methods",
                    w,
                    format!("`all`, `core`, `default`, a family (uniform, random, static, dynamic, shortcut, heterogeneous) or one of {}", names.join(", ")),
                ));
            }
        }
        Ok(all
            .into_iter()
            .filter(|m| wanted.iter().any(|w| w == &m.name || w == &m.family))
            .collect())
    }

    /// Whether the method needs proxy scores before training.
    pub fn needs_scores(&self) -> bool {
        !matches!(self.allocator, AllocatorSpec::Uniform { .. })
    }

    /// The candidate slots.
    pub fn candidates(&self, dims: &ModelDims) -> Vec<SlotId> {
        self.space.search_space().slots(dims.num_layers)
    }

    /// The exact trainable adapter parameters the method spends (its budget); for top-k and
    /// heterogeneous methods the budget the allocator is held to.
    pub fn budget(&self, dims: &ModelDims) -> Result<Budget> {
        let cands = self.candidates(dims);
        match &self.allocator {
            AllocatorSpec::Uniform { r } => Budget::same_as_uniform(&cands, dims, *r),
            AllocatorSpec::TopK { p, r, .. } => Budget::same_as_top_p(&cands, dims, *p, *r),
            AllocatorSpec::Heterogeneous { budget_r, .. } => {
                Budget::same_as_uniform(&cands, dims, *budget_r)
            }
        }
    }

    /// The top-k allocator of a top-k method, seeded (`None` for other allocators).
    pub fn topk(&self, seed: u64) -> Result<Option<TopK>> {
        match &self.allocator {
            AllocatorSpec::TopK { p, r, pooling } => Ok(Some(
                TopKParams::new()
                    .lora_alpha_rule(self.lora_alpha)
                    .p(*p)
                    .r(*r)
                    .pooling(*pooling)
                    .seed(seed)
                    .check()?,
            )),
            _ => Ok(None),
        }
    }

    /// The allocation before training: uniform from nothing, the others from `scores`.
    pub fn allocate(
        &self,
        dims: &ModelDims,
        scores: Option<&Scores>,
        seed: u64,
    ) -> Result<Allocation> {
        let space = self.space.search_space();
        let need = || {
            scores.ok_or_else(|| Error::Other(format!("method {} needs proxy scores", self.name)))
        };
        let mut a = match &self.allocator {
            AllocatorSpec::Uniform { r } => UniformParams::new()
                .r(*r)
                .lora_alpha_rule(self.lora_alpha)
                .check()?
                .allocate(&space, dims)?,
            AllocatorSpec::TopK { .. } => {
                self.topk(seed)?
                    .expect("a top-k method")
                    .allocate(&space, dims, need()?)?
            }
            AllocatorSpec::Heterogeneous { ranks, budget_r } => HeterogeneousParams::new()
                .lora_alpha_rule(self.lora_alpha)
                .ranks(ranks.clone())
                .budget(BudgetSpec::Uniform { r: *budget_r })
                .seed(seed)
                .check()?
                .allocate(&space, dims, need()?)?,
        };
        a.meta.insert("study.method".into(), self.name.clone());
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_budgets_match_on_minilm() {
        let all = Method::all();
        let mut names: Vec<&str> = all.iter().map(|m| m.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
        let d = ModelDims::MINILM_L6;
        let b = |n: &str| {
            all.iter()
                .find(|m| m.name == n)
                .unwrap()
                .budget(&d)
                .unwrap()
                .params
        };
        // 3 of 12 q,v slots at r = 8 cost what r = 2 on all 12 costs.
        assert_eq!(b("uniform-r2"), 18_432);
        assert_eq!(b("static-grad-norm"), 18_432);
        assert_eq!(b("random"), 18_432);
        assert_eq!(b("dynamic-grad-norm"), 18_432);
        assert_eq!(b("hetero-ranks-w0-grad-spectrum"), 18_432);
        assert_eq!(b("uniform-r8"), 4 * 18_432);
        // 35 slots (23 shortcuts) at r = 2; the top-k rule takes 3 + 6 slots at r = 8.
        assert_eq!(b("sc-uniform-r2"), 35 * 2 * 768);
        assert_eq!(b("sc-dynamic-combined"), 9 * 8 * 768);
    }

    #[test]
    fn selection_by_name_and_family_keeps_priority_order() {
        let m = Method::select(&["random,uniform".into()]).unwrap();
        let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["uniform-r2", "random", "uniform-r8"]);
        assert!(Method::select(&["nope".into()])
            .unwrap_err()
            .to_string()
            .contains("uniform-r2"));
        assert_eq!(Method::select(&[]).unwrap().len(), Method::all().len());
    }

    #[test]
    fn methods_use_the_authors_alpha_unless_told_otherwise() {
        let d = ModelDims::MINILM_L6;
        let u = Method::uniform(2).allocate(&d, None, 0).unwrap();
        assert!(u.ranks.values().all(|s| s.lora_alpha == 16.0));
        let u = Method::uniform(2)
            .with_lora_alpha(AlphaRule::PER_RANK_2R)
            .allocate(&d, None, 0)
            .unwrap();
        assert!(u.ranks.values().all(|s| s.lora_alpha == 4.0));
        let m = Method::static_proxy("grad-norm").with_lora_alpha(AlphaRule::PER_RANK_2R);
        assert_eq!(
            m.topk(0).unwrap().unwrap().params().lora_alpha,
            AlphaRule::PER_RANK_2R
        );
        assert_eq!(
            Method::static_proxy("grad-norm")
                .topk(0)
                .unwrap()
                .unwrap()
                .params()
                .lora_alpha,
            AlphaRule::AUTHORS
        );
        // A method serialised before the field existed used 2r.
        let mut v = serde_json::to_value(Method::uniform(2)).unwrap();
        v.as_object_mut().unwrap().remove("lora_alpha");
        let old: Method = serde_json::from_value(v).unwrap();
        assert_eq!(old.lora_alpha, AlphaRule::PER_RANK_2R);
    }

    #[test]
    fn uniform_allocates_without_scores_and_topk_needs_them() {
        let d = ModelDims::MINILM_L6;
        let u = Method::uniform(2).allocate(&d, None, 0).unwrap();
        assert_eq!(u.trainable_params(), 18_432);
        assert!(Method::static_proxy("grad-norm")
            .allocate(&d, None, 0)
            .is_err());
    }
}
