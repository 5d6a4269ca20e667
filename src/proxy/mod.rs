//! Zero-cost proxies: score every adapter slot from a few forward/backward passes.
//!
//! Every proxy implements [`Proxy`]; [`by_name`] builds one from its name, [`ScoringData`] takes
//! the first N training batches (unshuffled, as the reference), [`score_all`] scores several
//! proxies sharing one gradient pass. Scoring never changes the model it is given. A proxy takes
//! any backbone ([`Scorable`]: BERT, a decoder (OPT, Llama, Qwen2) or
//! [`crate::model::Classifier`]); every proxy built on the gradient pass runs on all of them,
//! synflow and alpha-test on BERT only.
//!
//! | name | formula per slot (A, B: adapter factors; W0: frozen map; sums over N batches) | blind at B = 0 |
//! |---|---|---|
//! | `constant` | 1 (ties broken at random by the allocator: the random baseline) | - |
//! | `grad-norm` | \|\|dL/dA\|\|_F + \|\|dL/dB\|\|_F | no (= \|\|dL/dB\|\|) |
//! | `snip` | sum \|A * dL/dA\| + sum \|B * dL/dB\| | yes |
//! | `snip-w0` | sum \|W0 * dL/dW0\| (zero shortcuts: 0) | no (but not for zero shortcuts) |
//! | `synflow` | sum \|A * dR/dA\| + sum \|B * dR/dB\|, \|weights\|, ones input, R = loss | yes |
//! | `synflow-sum` | as `synflow` with R = sum of the outputs, in f64 | yes |
//! | `fisher` | sum_c 0.5 mean_n (sum_s z * dL/dz)^2 over the slot output z | no |
//! | `jacob-cov` | jacob_cov of d(sum logits)/dz over a batch (per-slot adaptation) | no |
//! | `alpha-test` | smallest scale in {0, 0.1, .., 1} of the module's output keeping the metric within a relative tolerance, after brief adapter training (the authors'; not zero-cost; `alpha-test-adapter`: the adapter only, absolute tolerance, no training) | yes |
//! | `w0-grad-norm` | \|\|dL/dW0\|\|_F | no |
//! | `w0-grad-spectrum` | sum_{i<=r} sigma_i(dL/dW0)^2, with per-rank gains | no |
//!
//! A notebook session, from scores to a trained allocation:
//!
//! ```no_run
//! use heterolora::adapters::SearchSpace;
//! use heterolora::cli::score::{load_for_scoring, ScoringOpts};
//! use heterolora::proxy::{self, Proxy};
//! use heterolora::search::TopKParams;
//! use heterolora::train::{TrainConfig, TrainJob};
//! # fn main() -> heterolora::Result<()> {
//! let opts = ScoringOpts { task: "mrpc".into(), batches: 32, batch_size: 32, max_len: 128,
//!     fresh_r: 8, device: "cpu".into(), precision: "f32".into(), assets: Default::default() };
//! let (task, mut model, data) = load_for_scoring(&opts, 0)?; // first 32 training batches
//! let space = SearchSpace::lora_qv_shortcuts();
//! let slots = space.slots(model.dims().num_layers);
//! let scores = proxy::by_name("w0-grad-spectrum")?
//!     .score(&mut model, &data.batches, &slots, &mut heterolora::rng::Rng::new(0))?;
//! scores.evcxr_display(); // heat map: layers x slot kinds
//! let alloc = TopKParams::new().p(0.25).r(8).check()?.allocate(&space, &model.dims(), &scores)?;
//! alloc.evcxr_display(); // heat map of the ranks
//! let result = TrainJob::new(task, alloc)
//!     .config(TrainConfig::default().epochs(3))
//!     .run(&mut heterolora::tracking::NullLogger)?;
//! # Ok(()) }
//! ```
//!
//! Dynamic re-allocation plugs into the trainer as a hook: `job.build()?.add_hook(Box::new(
//! DynamicReallocator::new(DynamicSchedule::default(), topk, space, seed)?))`.

pub mod alpha_test;
pub mod constant;
pub mod data;
pub mod engine;
pub mod fisher;
pub mod grad_norm;
pub mod jacob_cov;
pub mod linalg;
pub mod scores;
pub mod scores_display;
pub mod snip;
pub mod synflow;
pub mod target;
pub mod w0_grad;

pub use alpha_test::{AlphaMetric, AlphaScope, AlphaTest, Tolerance};
pub use constant::Constant;
pub use data::ScoringData;
pub use engine::{
    gradient_pass, gradient_pass_in_mode, FreshAdapters, GradientStats, Needs, SlotGradients,
};
pub use fisher::Fisher;
pub use grad_norm::GradNorm;
pub use jacob_cov::JacobCov;
pub use scores::Scores;
pub use snip::{Snip, SnipW0};
pub use synflow::{SynFlow, SynFlowTarget};
pub use target::Scorable;
pub use w0_grad::{W0GradNorm, W0GradSpectrum};

use crate::adapters::SlotId;
use crate::data::Batch;
use crate::model::AdaptedClassifier;
use crate::rng::Rng;
use crate::{Error, Result};
use std::collections::BTreeMap;

/// A scoring rule for adapter slots. Implement it (in a notebook, too) to add a proxy: only
/// `name` and `score` are required; proxies built on the shared gradient pass also implement
/// `gradient_needs` and `from_gradients` so that [`score_all`] can share one pass.
pub trait Proxy: Send + Sync {
    /// The name scores are filed under (`grad-norm`, ...).
    fn name(&self) -> String;

    /// Scores of every slot in `slots`, from `batches` (the first N training batches). The model
    /// is left as it was (scoring works on a copy with every slot of `slots` switched on). Any
    /// backbone: `&mut` a `SequenceClassifier`, a `DecoderClassifier` or a
    /// [`crate::model::Classifier`] coerces to `&mut dyn Scorable`; a proxy that needs BERT's
    /// internals returns [`Error::Config`] on a decoder ([`target::bert_only`]).
    fn score(
        &self,
        model: &mut dyn Scorable,
        batches: &[Batch],
        slots: &[SlotId],
        rng: &mut Rng,
    ) -> Result<Scores>;

    /// For proxies computed from [`gradient_pass`]: what they need from it.
    fn gradient_needs(&self) -> Option<Needs> {
        None
    }

    /// Scores from a finished gradient pass (called only when `gradient_needs` is `Some`).
    fn from_gradients(&self, stats: &GradientStats, rng: &mut Rng) -> Result<Scores> {
        let _ = (stats, rng);
        Err(Error::Other(format!(
            "proxy `{}` is not computed from the shared gradient pass",
            self.name()
        )))
    }
}

impl std::fmt::Debug for dyn Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proxy({})", self.name())
    }
}

/// Scores of `proxy` on any backbone ([`AdaptedClassifier`]): `proxy.score(model, ..)`. Proxies
/// built on the shared gradient pass (grad-norm, snip, snip-w0, fisher, jacob-cov, w0-grad-norm,
/// w0-grad-spectrum) and `constant` run on every backbone; the others (synflow, alpha-test:
/// BERT's embeddings path and training loop) are an [`Error::Config`] naming the architecture
/// on a decoder.
pub fn score_on<M: AdaptedClassifier>(
    proxy: &dyn Proxy,
    model: &mut M,
    batches: &[Batch],
    slots: &[SlotId],
    rng: &mut Rng,
) -> Result<Scores> {
    proxy.score(model, batches, slots, rng)
}

/// `score` of a proxy built on the gradient pass.
pub(crate) fn score_by_gradients(
    proxy: &dyn Proxy,
    fresh: &FreshAdapters,
    model: &dyn Scorable,
    batches: &[Batch],
    slots: &[SlotId],
    rng: &mut Rng,
) -> Result<Scores> {
    let needs = proxy
        .gradient_needs()
        .expect("score_by_gradients is for gradient proxies");
    let stats = model.gradient_pass(batches, slots, needs, fresh)?;
    proxy.from_gradients(&stats, rng)
}

/// Builds [`Scores`] from per-slot values of a gradient pass.
pub(crate) fn scores_from(
    name: String,
    stats: &GradientStats,
    f: impl Fn(&SlotGradients) -> Result<f64>,
) -> Result<Scores> {
    let mut values = BTreeMap::new();
    for (slot, sg) in &stats.slots {
        let v = f(sg)?;
        if !v.is_finite() {
            return Err(Error::Other(format!(
                "proxy `{name}` gave slot {slot} the non-finite score {v}"
            )));
        }
        values.insert(*slot, v);
    }
    Ok(Scores {
        proxy: name,
        values,
        rank_gains: None,
        num_batches: stats.num_batches,
        seconds: stats.seconds,
    })
}

/// Every built-in proxy name, in the order of the table above.
pub const NAMES: [&str; 11] = [
    "constant",
    "grad-norm",
    "snip",
    "snip-w0",
    "synflow",
    "synflow-sum",
    "fisher",
    "jacob-cov",
    "alpha-test",
    "w0-grad-norm",
    "w0-grad-spectrum",
];

/// A built-in proxy with default settings, by name (`_` and `-` are interchangeable; `gradnorm`,
/// `random`, `jacob_cov`, `w0-spectrum` are accepted too).
pub fn by_name(name: &str) -> Result<Box<dyn Proxy>> {
    let n = name.trim().to_ascii_lowercase().replace('_', "-");
    Ok(match n.as_str() {
        "constant" | "random" => Box::new(Constant),
        "grad-norm" | "gradnorm" => Box::new(GradNorm::default()),
        "snip" => Box::new(Snip::default()),
        "snip-w0" => Box::new(SnipW0::default()),
        "synflow" => Box::new(SynFlow::default()),
        "synflow-sum" => Box::new(SynFlow {
            target: SynFlowTarget::OutputSum,
            ..SynFlow::default()
        }),
        "fisher" => Box::new(Fisher::default()),
        "jacob-cov" | "jacobcov" => Box::new(JacobCov::default()),
        "alpha-test" | "alpha" => Box::new(AlphaTest::default()),
        "alpha-test-adapter" => Box::new(AlphaTest::adapter_only()),
        "w0-grad-norm" | "w0-norm" => Box::new(W0GradNorm::default()),
        "w0-grad-spectrum" | "w0-spectrum" | "w0-grad-svd" => Box::new(W0GradSpectrum::default()),
        _ => {
            return Err(Error::invalid(
                "proxy",
                name,
                format!("one of {}", NAMES.join(", ")),
            ))
        }
    })
}

/// Scores several proxies; those built on the gradient pass share one pass (their `seconds`
/// is that pass's time), the others run on their own.
pub fn score_all<M: AdaptedClassifier>(
    proxies: &[&dyn Proxy],
    model: &mut M,
    batches: &[Batch],
    slots: &[SlotId],
    fresh: &FreshAdapters,
    rng: &mut Rng,
) -> Result<Vec<Scores>> {
    let needs = proxies
        .iter()
        .filter_map(|p| p.gradient_needs())
        .reduce(Needs::union);
    let stats = match needs {
        Some(n) => Some(gradient_pass(&*model, batches, slots, n, fresh)?),
        None => None,
    };
    let mut out = Vec::with_capacity(proxies.len());
    for p in proxies {
        out.push(match (&stats, p.gradient_needs()) {
            (Some(s), Some(_)) => p.from_gradients(s, rng)?,
            _ => p.score(model, batches, slots, rng)?,
        });
    }
    Ok(out)
}

/// Frobenius norm of a tensor, in f64.
pub(crate) fn fro(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(candle_core::DType::F64)?
        .sqr()?
        .sum_all()?
        .to_scalar::<f64>()?
        .sqrt())
}

/// sum |x * g| in f64.
pub(crate) fn abs_dot(x: &Tensor, g: &Tensor) -> Result<f64> {
    let x = x.to_dtype(candle_core::DType::F64)?;
    let g = g.to_dtype(candle_core::DType::F64)?;
    Ok((x * g)?.abs()?.sum_all()?.to_scalar::<f64>()?)
}

use candle_core::Tensor;
