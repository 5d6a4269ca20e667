//! [`RunTable`]: the result of a run search, from the SQLite store or an MLflow server, as a
//! polars frame with MLflow's columns. Below both stores, so that each can build one.

use crate::Result;
use polars::prelude::*;

/// The result of a search: one row per run, columns `run_id`, `run_name`, `experiment_id`,
/// `status`, `artifact_uri`, `start_time`, `end_time` (epoch ms), then `metrics.<key>` (latest
/// value, f64), `params.<key>` and `tags.<key>` (strings), each group sorted by key.
#[derive(Debug, Clone)]
pub struct RunTable {
    pub df: DataFrame,
}

impl RunTable {
    /// The DataFrame.
    pub fn df(&self) -> &DataFrame {
        &self.df
    }
    pub fn into_df(self) -> DataFrame {
        self.df
    }
    /// Number of runs.
    pub fn len(&self) -> usize {
        self.df.height()
    }
    pub fn is_empty(&self) -> bool {
        self.df.height() == 0
    }
    /// The run ids, in table order.
    pub fn run_ids(&self) -> Vec<String> {
        self.strings("run_id")
            .into_iter()
            .map(|s| s.unwrap_or_default())
            .collect()
    }
    /// A string column (`params.r`, `tags.mlflow.runName`, `status`, ...); `None` where missing.
    pub fn strings(&self, column: &str) -> Vec<Option<String>> {
        match self.df.column(column).and_then(|c| c.str()) {
            Ok(ca) => ca.iter().map(|v| v.map(str::to_string)).collect(),
            Err(_) => vec![None; self.len()],
        }
    }
    /// A float column (`metrics.acc`); `None` where the run lacks it.
    pub fn floats(&self, column: &str) -> Vec<Option<f64>> {
        match self.df.column(column).and_then(|c| c.f64()) {
            Ok(ca) => ca.iter().collect(),
            Err(_) => vec![None; self.len()],
        }
    }
    /// Only the columns named (for display or export), in that order; unknown names are an error.
    pub fn select(&self, columns: &[&str]) -> Result<RunTable> {
        Ok(RunTable {
            df: self.df.select(columns.iter().copied())?,
        })
    }
    /// The table without the `tags.*` columns (the wide part nobody reads in a list).
    pub fn without_tags(&self) -> Result<RunTable> {
        let keep: Vec<String> = self
            .df
            .get_column_names()
            .into_iter()
            .filter(|n| !n.starts_with("tags."))
            .map(|n| n.to_string())
            .collect();
        Ok(RunTable {
            df: self.df.select(keep)?,
        })
    }
    /// An HTML table (first 50 rows).
    pub fn to_html(&self) -> String {
        super::display::dataframe_html(&self.df, 50, &["start_time", "end_time"])
    }
    /// Rich notebook output (evcxr).
    pub fn evcxr_display(&self) {
        super::display::emit_html(&self.to_html());
    }
}

impl std::fmt::Display for RunTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.df)
    }
}
