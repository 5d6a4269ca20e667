//! De-duplication: a static child whose allocation equals one already trained under the same
//! seed and protocol is not trained again.
//!
//! A seed fixes data order, head initialisation and dropout masks for every method, and only the
//! enabled slots (with their ranks and alphas) carry adapters into training, so two children with
//! the same seed, protocol and enabled set train identically: the first MRPC study trained
//! static snip-w0 and w0-grad-norm on exactly grad-norm's slots on every seed (6 of 36 children
//! wasted). A static method only knows its allocation after scoring, so the runner scores,
//! compares with the finished children ([`find_twin`]) and, on a match, records the twin's
//! metrics under its own method ([`twin_record`]) instead of training. Dynamic methods change
//! their allocation during training: they are never skipped and never serve as a twin.

use super::config::StudyConfig;
use super::execute::Prepared;
use super::methods::Method;
use super::plan::ChildPlan;
use super::record::{ChildRecord, TWIN_OF};
use crate::search::Allocation;
use crate::tracking::entities::now_ms;

/// Whether two allocations train the same adapters: the same model sizes and the same enabled
/// slots with the same ranks and alphas (candidates and provenance do not matter).
pub fn same_allocation(a: &Allocation, b: &Allocation) -> bool {
    a.dims == b.dims && a.ranks == b.ranks
}

/// A finished static child of study `cfg`, trained on `seed` under `cfg`'s protocol by another
/// method than `method`, whose allocation equals `alloc`. Children that were trained themselves
/// are preferred over children that are twins already (both carry the same metrics).
pub fn find_twin<'a>(
    records: &'a [ChildRecord],
    cfg: &StudyConfig,
    method: &str,
    seed: u64,
    alloc: &Allocation,
) -> Option<&'a ChildRecord> {
    let same_protocol = |r: &ChildRecord| match &r.protocol_settings {
        Some(p) => p == &cfg.protocol,
        None => r.protocol == cfg.protocol.name,
    };
    let mut found: Vec<&ChildRecord> = records
        .iter()
        .filter(|r| {
            r.study == cfg.name
                && r.status == "FINISHED"
                && r.seed == seed
                && r.method != method
                && !r.is_dynamic()
                && same_protocol(r)
                && same_allocation(&r.allocation, alloc)
        })
        .collect();
    found.sort_by_key(|r| (r.twin_of().is_some(), r.method.clone()));
    found.into_iter().next()
}

/// The record of a child that was not trained because `twin` had its allocation: the twin's
/// metrics (and parameter counts) under this child's method, key and run, with this child's own
/// allocation, scores and scoring time, and `allocation.meta.twin_of` naming the method trained.
pub fn twin_record(
    twin: &ChildRecord,
    cfg: &StudyConfig,
    m: &Method,
    child: &ChildPlan,
    prepared: &Prepared,
    run_id: Option<String>,
) -> ChildRecord {
    let trained = twin.twin_of().unwrap_or(&twin.method).to_string();
    let mut allocation = prepared.initial.clone();
    allocation.meta.insert(TWIN_OF.to_string(), trained);
    ChildRecord {
        key: child.key.clone(),
        study: cfg.name.clone(),
        task: cfg.task.name().to_string(),
        protocol: cfg.protocol.name.clone(),
        protocol_settings: Some(cfg.protocol.clone()),
        method: m.name.clone(),
        family: m.family.clone(),
        seed: child.seed,
        status: "FINISHED".to_string(),
        run_id,
        budget: prepared.budget.params,
        wall_time_s: prepared.scoring_seconds,
        scoring_seconds: prepared.scoring_seconds,
        allocation,
        scores: prepared.scores.clone(),
        times_enabled: None,
        num_reallocations: 0,
        finished_at_ms: Some(now_ms()),
        resumed_at_step: None,
        ..twin.clone()
    }
}
