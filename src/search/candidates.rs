//! Candidate slots, checked scores and the seeded ranking every allocator shares.

pub use crate::adapters::allocation::candidates;
use crate::adapters::{ModelDims, SlotId};
use crate::proxy::Scores;
use crate::rng::Rng;
use crate::{Error, Result};

/// The score of every candidate, in candidate order.
///
/// Fails, naming the slot, when a candidate has no score or a non-finite one, and when the scores
/// mention a layer the model does not have (scores of another model). Scores of slots outside the
/// search space are ignored: scoring a wide space once and searching a narrower one is allowed.
pub fn checked_scores(
    scores: &Scores,
    candidates: &[SlotId],
    dims: &ModelDims,
) -> Result<Vec<f64>> {
    if let Some(slot) = scores.values.keys().find(|s| s.layer >= dims.num_layers) {
        return Err(Error::invalid(
            "scores",
            slot,
            format!(
                "slots of a model with {} layers; these scores come from a deeper model",
                dims.num_layers
            ),
        ));
    }
    candidates
        .iter()
        .map(|slot| match scores.values.get(slot) {
            None => Err(Error::invalid(
                "scores",
                format!("proxy `{}` has no score for slot {slot}", scores.proxy),
                "a score for every candidate slot: score the same search space you search",
            )),
            Some(v) if !v.is_finite() => Err(Error::invalid(
                "scores",
                format!("proxy `{}` gives slot {slot} the score {v}", scores.proxy),
                "finite scores",
            )),
            Some(&v) => Ok(v),
        })
        .collect()
}

/// Indices into `scores` ordered best first; equal scores come out in a random order drawn from
/// `rng`, so that the slots that tie at a top-k threshold are a uniformly random subset of the tied
/// ones (with a constant proxy, the top k are a uniformly random k-subset).
///
/// `scores` must be finite (see [`checked_scores`]).
pub fn rank_best_first(scores: &[f64], rng: &mut Rng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    rng.shuffle(&mut order);
    // A stable sort keeps the shuffled order inside each group of equal scores.
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::SearchSpace;
    use crate::adapters::SlotKind;
    use std::collections::BTreeMap;

    #[test]
    fn ranking_is_descending_and_ties_are_random_but_seeded() {
        let s = [1.0, 3.0, 2.0, 3.0, 3.0, 0.5];
        let a = rank_best_first(&s, &mut Rng::new(1));
        let vals: Vec<f64> = a.iter().map(|&i| s[i]).collect();
        assert_eq!(vals, vec![3.0, 3.0, 3.0, 2.0, 1.0, 0.5]);
        assert_eq!(a, rank_best_first(&s, &mut Rng::new(1)));
        // Over seeds, each of the three tied slots comes first sometimes.
        let mut firsts = std::collections::BTreeSet::new();
        for seed in 0..50 {
            firsts.insert(rank_best_first(&s, &mut Rng::new(seed))[0]);
        }
        assert_eq!(firsts.into_iter().collect::<Vec<_>>(), vec![1, 3, 4]);
    }

    #[test]
    fn missing_nan_and_foreign_scores_name_the_slot() {
        let dims = ModelDims {
            num_layers: 2,
            hidden_size: 8,
            intermediate_size: 16,
        };
        let cands = candidates(&SearchSpace::lora_qv(), &dims).unwrap();
        let mut values: BTreeMap<SlotId, f64> = cands.iter().map(|&s| (s, 1.0)).collect();
        let mk = |values: BTreeMap<SlotId, f64>| Scores {
            proxy: "grad-norm".into(),
            values,
            rank_gains: None,
            num_batches: 1,
            seconds: 0.0,
        };
        assert_eq!(
            checked_scores(&mk(values.clone()), &cands, &dims)
                .unwrap()
                .len(),
            4
        );
        let v1 = SlotId::new(1, SlotKind::Value);
        values.insert(v1, f64::NAN);
        let e = checked_scores(&mk(values.clone()), &cands, &dims)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("layer.1.attention.value") && e.contains("NaN"),
            "{e}"
        );
        values.remove(&v1);
        let e = checked_scores(&mk(values.clone()), &cands, &dims)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no score for slot layer.1.attention.value"),
            "{e}"
        );
        values.insert(v1, 1.0);
        values.insert(SlotId::new(5, SlotKind::Query), 1.0);
        let e = checked_scores(&mk(values), &cands, &dims)
            .unwrap_err()
            .to_string();
        assert!(e.contains("layer.5.attention.query"), "{e}");
        let mut space = SearchSpace::lora_qv();
        space.layers = vec![0, 7];
        assert!(candidates(&space, &dims)
            .unwrap_err()
            .to_string()
            .contains('7'));
    }
}
