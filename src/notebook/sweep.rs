//! [`Sweep`]: trials trained as child runs of one parent run, and their results side by side.

use crate::adapters::SlotTable;
use crate::display::{emit_evcxr, HtmlTable};
use crate::search::Allocation;
use crate::train::{TrainConfig, TrainResult};

/// One trial of a sweep: a name, a method label (the budget plot's line), an allocation and a
/// training configuration.
#[derive(Debug, Clone)]
pub struct SweepTrial {
    pub name: String,
    pub method: String,
    pub allocation: Allocation,
    pub config: TrainConfig,
}

impl SweepTrial {
    pub fn new(
        name: impl Into<String>,
        method: impl Into<String>,
        allocation: Allocation,
        config: TrainConfig,
    ) -> Self {
        SweepTrial {
            name: name.into(),
            method: method.into(),
            allocation,
            config,
        }
    }
}

/// The outcome of [`super::Workspace::sweep`]: per trial, its result or its error.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub parent_run_id: String,
    pub name: String,
    pub trials: Vec<(SweepTrial, std::result::Result<TrainResult, String>)>,
    /// A decoder's slot table, which sizes its adapters (grouped-query k/v, the gate); `None`
    /// on BERT, whose allocations count themselves.
    pub(crate) table: Option<SlotTable>,
}

impl Sweep {
    pub(crate) fn new(parent_run_id: String, name: String) -> Self {
        Sweep {
            parent_run_id,
            name,
            trials: Vec::new(),
            table: None,
        }
    }

    /// Count adapter parameters with a decoder's slot table.
    pub(crate) fn with_table(mut self, table: Option<SlotTable>) -> Self {
        self.table = table;
        self
    }

    /// Exact adapter parameters of a trial's allocation on the sweep's model.
    pub fn adapter_params(&self, allocation: &Allocation) -> usize {
        self.table
            .as_ref()
            .and_then(|t| allocation.trainable_params_in(t).ok())
            .unwrap_or_else(|| allocation.trainable_params())
    }

    pub(crate) fn push(
        &mut self,
        trial: SweepTrial,
        result: std::result::Result<TrainResult, String>,
    ) {
        self.trials.push((trial, result));
    }

    /// Run ids of the trials that have one (the finished and the failed-while-training ones).
    pub fn run_ids(&self) -> Vec<String> {
        self.trials
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok().and_then(|r| r.run_id.clone()))
            .collect()
    }

    /// How many trials failed.
    pub fn failures(&self) -> usize {
        self.trials.iter().filter(|(_, r)| r.is_err()).count()
    }

    pub fn to_table(&self) -> HtmlTable {
        let mut t = HtmlTable::new([
            "trial",
            "method",
            "adapter params",
            "steps",
            "best dev metric",
            "wall s",
            "run",
        ])
        .caption(format!(
            "sweep `{}` (parent run {}): {} trials, {} failed",
            self.name,
            self.parent_run_id,
            self.trials.len(),
            self.failures()
        ));
        for (trial, res) in &self.trials {
            let params = self.adapter_params(&trial.allocation).to_string();
            match res {
                Ok(r) => t.push_row([
                    trial.name.clone(),
                    trial.method.clone(),
                    params,
                    r.steps.to_string(),
                    r.best_metric.map_or("-".to_string(), |m| {
                        format!("{} {:.4}", r.primary_metric, m)
                    }),
                    format!("{:.1}", r.wall_time_s),
                    r.run_id.clone().unwrap_or_default(),
                ]),
                Err(e) => t.push_row([
                    trial.name.clone(),
                    trial.method.clone(),
                    params,
                    "-".into(),
                    format!("failed: {e}"),
                    "-".into(),
                    "-".into(),
                ]),
            }
        }
        t
    }

    pub fn to_html(&self) -> String {
        self.to_table().to_html()
    }

    pub fn evcxr_display(&self) {
        emit_evcxr(&[("text/html", &self.to_html())]);
    }
}
