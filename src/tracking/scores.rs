//! A proxy's scores in a run: one metric per slot, the scoring time, and the whole [`Scores`] as JSON.

use super::run::Run;
use crate::proxy::Scores;
use crate::Result;

impl Run {
    /// Logs `s` as metrics `<proxy>.<slot>` and `<proxy>.seconds` (step 0) and as the artifact
    /// `scores.<proxy>.json`, the file `heterolora search --scores` reads back.
    pub fn log_scores(&mut self, s: &Scores) -> Result<()> {
        let mut metrics: Vec<(String, f64)> = s
            .values
            .iter()
            .map(|(slot, v)| (format!("{}.{slot}", s.proxy), *v))
            .collect();
        metrics.push((format!("{}.seconds", s.proxy), s.seconds));
        self.log_metrics(&metrics, 0)?;
        self.log_json(s, &format!("scores.{}.json", s.proxy))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::adapters::{SlotId, SlotKind};
    use crate::proxy::Scores;
    use crate::tracking::Tracker;

    #[test]
    fn scores_land_as_per_slot_metrics_and_a_json_that_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let tracker = Tracker::open(dir.path().join("mlflow.db").to_str().unwrap()).unwrap();
        let mut run = tracker.start_run("exp", "score-grad-norm").unwrap();
        let (l3v, l4q) = (
            SlotId::new(3, SlotKind::Value),
            SlotId::new(4, SlotKind::Query),
        );
        let s = Scores {
            proxy: "grad-norm".into(),
            values: [(l3v, 0.75), (l4q, 0.25)].into_iter().collect(),
            rank_gains: None,
            num_batches: 2,
            seconds: 1.5,
        };
        run.log_scores(&s).unwrap();
        run.flush().unwrap();
        let id = run.run_id().to_string();
        let data = tracker.get_run(&id).unwrap();
        let metric = |k: &str| data.metrics[k].value;
        assert_eq!(metric(&format!("grad-norm.{l3v}")), 0.75);
        assert_eq!(metric(&format!("grad-norm.{l4q}")), 0.25);
        assert_eq!(metric("grad-norm.seconds"), 1.5);
        assert_eq!(data.metrics.len(), 3);
        let back = Scores::load(run.artifact_dir().unwrap().join("scores.grad-norm.json")).unwrap();
        assert_eq!(back.values, s.values);
    }
}
