//! The two solvers of the heterogeneous-rank allocator: a multiple-choice knapsack over slots,
//! each slot choosing one rank (index) from the rank set.

use crate::adapters::SlotId;
use crate::rng::Rng;
use crate::{Error, Result};

/// The largest dynamic-programming table [`crate::search::Solver::Exact`] accepts (slots x ranks x budget units).
const MAX_DP_WORK: u128 = 400_000_000;

/// The gains and costs of one problem instance: `gain[i][j]`, `cost[i][j]` for slot i at rank
/// index j of the rank set (j = 0 is rank 0: gain 0, cost 0).
pub(crate) struct Problem {
    pub slots: Vec<SlotId>,
    pub gain: Vec<Vec<f64>>,
    pub cost: Vec<Vec<usize>>,
}

/// Greedy on gain per added parameter over all (slot, higher rank) upgrades that fit; returns the
/// rank index of every slot.
pub(crate) fn greedy(prob: &Problem, budget: usize, rng: &mut Rng) -> Vec<usize> {
    let n = prob.slots.len();
    let mut cur = vec![0usize; n];
    let mut left = budget;
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    loop {
        let mut best: Option<(f64, usize, usize)> = None;
        for &i in &order {
            let (g0, c0) = (prob.gain[i][cur[i]], prob.cost[i][cur[i]]);
            for j in cur[i] + 1..prob.cost[i].len() {
                let dc = prob.cost[i][j] - c0;
                let dg = prob.gain[i][j] - g0;
                if dc > left || dg <= 0.0 {
                    continue;
                }
                let ratio = dg / dc as f64;
                if best.is_none_or(|(b, _, _)| ratio > b) {
                    best = Some((ratio, i, j));
                }
            }
        }
        let Some((_, i, j)) = best else { break };
        left -= prob.cost[i][j] - prob.cost[i][cur[i]];
        cur[i] = j;
    }
    cur
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Multiple-choice knapsack by dynamic programming over budget units; returns rank indices.
pub(crate) fn exact(prob: &Problem, budget: usize) -> Result<Vec<usize>> {
    let unit = prob.cost.iter().flatten().fold(0, |g, &c| gcd(g, c)).max(1);
    let units = budget / unit;
    let n = prob.slots.len();
    let m = prob.cost.first().map_or(0, Vec::len);
    let work = n as u128 * m as u128 * (units as u128 + 1);
    if work > MAX_DP_WORK {
        return Err(Error::invalid(
            "solver",
            "exact",
            format!(
                "a problem small enough for the exact solver ({n} slots x {m} ranks x {units} \
                 budget units is too large); use the greedy solver"
            ),
        ));
    }
    let w: Vec<Vec<usize>> = prob
        .cost
        .iter()
        .map(|c| c.iter().map(|x| x / unit).collect())
        .collect();
    // best[u] = the largest gain of the slots so far within u units; choice[i][u] = rank index.
    let mut best = vec![0.0f64; units + 1];
    let mut choice = vec![vec![0u8; units + 1]; n];
    for i in 0..n {
        let mut next = best.clone();
        for u in 0..=units {
            for j in 1..m {
                if w[i][j] <= u {
                    let v = best[u - w[i][j]] + prob.gain[i][j];
                    if v > next[u] {
                        next[u] = v;
                        choice[i][u] = j as u8;
                    }
                }
            }
        }
        best = next;
    }
    let mut out = vec![0usize; n];
    let mut u = units;
    for i in (0..n).rev() {
        let j = choice[i][u] as usize;
        out[i] = j;
        u -= w[i][j];
    }
    Ok(out)
}
