//! The workspace's read side: run tables and metric histories from its tracker, charts, and its
//! own display (HTML summary and plain text).

use super::Workspace;
use crate::display::{emit_evcxr, HtmlTable};
use crate::model::Classifier;
use crate::notebook::charts::{self, BudgetColumns};
use crate::notebook::paths::display_path;
use crate::plot::{AllocationHeatmap, CurvesPlot, Figure, ScoreHeatmap};
use crate::proxy::Scores;
use crate::search::Allocation;
use crate::tracking::{MetricHistory, RunTable};
use crate::Result;

impl Workspace {
    /// The re-allocation timeline of a [`Workspace::train_dynamic`] run (id or id prefix): which
    /// slots were on after each re-allocation.
    pub fn timeline(&self, run_id: &str) -> Result<Figure> {
        charts::timeline(&self.tracker, run_id)?.render()
    }

    /// Every run of this workspace's experiment, newest first, without tag columns.
    pub fn runs(&self) -> Result<RunTable> {
        self.runs_where("")
    }

    /// Runs of this experiment matching an MLflow filter (`"params.allocation.method = 'topk'"`).
    /// Columns that hold this machine's paths (the artifact folder, the model and data folders)
    /// are left out; [`Workspace::tracker`]'s `search_runs` has them.
    pub fn runs_where(&self, filter: &str) -> Result<RunTable> {
        let t = self
            .tracker
            .search_runs(&[&self.experiment], filter, &[])?
            .without_tags()?;
        let keep: Vec<String> = t
            .df()
            .get_column_names()
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !PATH_COLUMNS.contains(&c.as_str()))
            .collect();
        let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
        t.select(&keep)
    }

    /// The training runs of this experiment, with the columns that compare them.
    pub fn training_runs(&self) -> Result<RunTable> {
        let t =
            self.tracker
                .search_runs(&[&self.experiment], "tags.heterolora.kind = 'train'", &[])?;
        let wanted = [
            "run_name",
            "status",
            "params.allocation.method",
            "params.allocation.proxy",
            "params.allocation.num_slots",
            "params.allocation.adapter_params",
            "metrics.train_loss",
            "metrics.dev_accuracy",
            "metrics.dev_f1",
            "metrics.best_dev_accuracy",
        ];
        let have: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|c| t.df().get_column_names().iter().any(|n| n.as_str() == *c))
            .collect();
        t.select(&have)
    }

    /// One metric's history in a run (chart and summary in a notebook).
    pub fn history(&self, run_id: &str, key: &str) -> Result<MetricHistory> {
        self.tracker.metric_history(run_id, key)
    }

    /// Training curves of runs (ids or id prefixes) from the tracker, one panel per metric.
    pub fn curves(&self, run_ids: &[String], metrics: &[&str]) -> Result<Figure> {
        let ids: Vec<&str> = run_ids.iter().map(String::as_str).collect();
        charts::curves(&self.tracker, &ids, metrics)?.render()
    }

    /// As [`Workspace::curves`], returning the chart to adjust (smoothing, title, size).
    pub fn curves_plot(&self, run_ids: &[String], metrics: &[&str]) -> Result<CurvesPlot> {
        let ids: Vec<&str> = run_ids.iter().map(String::as_str).collect();
        charts::curves(&self.tracker, &ids, metrics)
    }

    /// Dev metric (`metric`, e.g. `best_dev_accuracy`) against adapter parameters for the
    /// finished training runs of this experiment that match `filter`.
    pub fn budget_plot(&self, filter: &str, metric: &str) -> Result<Figure> {
        charts::budget(
            &self.tracker,
            &[&self.experiment],
            filter,
            &BudgetColumns::for_metric(metric),
        )?
        .render()
    }

    /// Heat map of an allocation (layers by slot kind, coloured by rank).
    pub fn plot_allocation(&self, alloc: &Allocation) -> Result<Figure> {
        match self.model {
            Classifier::Encoder(_) => AllocationHeatmap::new(alloc).render(),
            Classifier::Decoder(_) => AllocationHeatmap::new(alloc)
                .slot_table(&self.slot_table())
                .render(),
        }
    }

    /// Heat map of scores, outlining the slots `alloc` enables when given.
    pub fn plot_scores(&self, scores: &Scores, alloc: Option<&Allocation>) -> Result<Figure> {
        let mut h = ScoreHeatmap::new(scores);
        if let Some(a) = alloc {
            h = h.allocation(a);
        }
        h.render()
    }

    /// The workspace as an HTML summary.
    pub fn to_html(&self) -> String {
        let mut t = HtmlTable::new(["", ""]).caption("heterolora workspace");
        let rows = [
            ("task", self.task.name().to_string()),
            ("model", display_path(&self.model_dir)),
            ("GLUE data", display_path(&self.glue_dir)),
            ("device", crate::device::device_name(&self.device)),
            (
                "model",
                format!(
                    "{} layers, hidden {}, {} labels",
                    self.dims().num_layers,
                    self.dims().hidden_size,
                    self.task.num_labels()
                ),
            ),
            (
                "scoring batches",
                format!(
                    "{} x {} examples, max_len {}",
                    self.scoring.len(),
                    self.scoring.batch_size,
                    self.settings.max_len
                ),
            ),
            ("training examples", self.num_train.to_string()),
            (
                "dev examples",
                self.settings
                    .dev_limit
                    .map_or("all".to_string(), |n| format!("first {n}")),
            ),
            (
                "tracker",
                format!(
                    "{} (experiment `{}`)",
                    display_path(self.tracker.path()),
                    self.experiment
                ),
            ),
            ("loaded in", format!("{:.1} s", self.load_seconds)),
        ];
        for (k, v) in rows {
            t.push_row([k.to_string(), v]);
        }
        t.to_html()
    }

    pub fn evcxr_display(&self) {
        emit_evcxr(&[
            ("text/plain", &format!("{self}")),
            ("text/html", &self.to_html()),
        ]);
    }
}

impl std::fmt::Display for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Workspace: {} on {} ({} scoring batches, {} training examples), tracker {} / {}",
            self.task.name(),
            display_path(&self.model_dir),
            self.scoring.len(),
            self.num_train,
            display_path(self.tracker.path()),
            self.experiment
        )
    }
}

/// Ready-made HTML (a dataset preview) that displays in evcxr.
#[derive(Debug, Clone)]
pub struct HtmlPreview(pub String);

impl HtmlPreview {
    pub fn to_html(&self) -> String {
        self.0.clone()
    }
    pub fn evcxr_display(&self) {
        emit_evcxr(&[("text/html", &self.0)]);
    }
}

/// Run-table columns whose values are paths on the machine that ran them.
const PATH_COLUMNS: [&str; 4] = [
    "artifact_uri",
    "params.model",
    "params.glue_dir",
    "params.output",
];
