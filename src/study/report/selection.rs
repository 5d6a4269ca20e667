//! Which slots each scored method chose over seeds (dynamic: over re-allocations), for the
//! report's "chosen" heat maps.

use super::StudyReport;
use crate::adapters::SlotId;
use crate::proxy::Scores;
use crate::study::record::ChildRecord;
use std::collections::BTreeMap;

impl StudyReport {
    /// Per scored method: the fraction of its seeds (dynamic: of all re-allocations) that
    /// enabled each candidate slot, as a [`Scores`] for the heat map.
    pub fn selection_frequency(&self) -> BTreeMap<String, Scores> {
        let mut out = BTreeMap::new();
        for r in self.rows() {
            let recs: Vec<&ChildRecord> = self
                .records
                .iter()
                .filter(|x| x.method == r.method)
                .collect();
            if recs[0].family == "uniform" || recs[0].method == "sc-uniform-r2" {
                continue;
            }
            let mut values: BTreeMap<SlotId, f64> = recs[0]
                .allocation
                .candidates
                .iter()
                .map(|s| (*s, 0.0))
                .collect();
            let mut total = 0.0;
            for rec in &recs {
                match &rec.times_enabled {
                    Some(t) => {
                        total += rec.num_reallocations as f64;
                        for (s, n) in t {
                            *values.entry(*s).or_default() += *n as f64;
                        }
                    }
                    None => {
                        total += 1.0;
                        for s in rec.allocation.ranks.keys() {
                            *values.entry(*s).or_default() += 1.0;
                        }
                    }
                }
            }
            if total > 0.0 {
                for v in values.values_mut() {
                    *v /= total;
                }
            }
            out.insert(
                r.method.clone(),
                Scores {
                    proxy: format!("{} selection frequency", r.method),
                    values,
                    rank_gains: None,
                    num_batches: 0,
                    seconds: 0.0,
                },
            );
        }
        out
    }
}
