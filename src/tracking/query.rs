//! `search_runs`: runs matching an MLflow filter, as a polars DataFrame with MLflow's columns.

use super::entities::decode_value;
use super::filter::{self, OrderBy};
use super::table::RunTable;
use super::tracker::Tracker;
use crate::{Error, Result};
use polars::prelude::*;
use rusqlite::types::Value as SqlValue;
use std::collections::{BTreeMap, HashMap};

struct Row {
    run_id: String,
    run_name: Option<String>,
    experiment_id: Option<i64>,
    status: Option<String>,
    artifact_uri: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
}

impl Tracker {
    /// Runs of `experiments` (names or ids; empty = every experiment) matching `filter` (MLflow's
    /// grammar, see [`super::filter`]), ordered by `order_by` (`"metrics.acc DESC"`, then MLflow's
    /// default: newest first). Deleted runs are left out.
    pub fn search_runs(
        &self,
        experiments: &[&str],
        filter: &str,
        order_by: &[&str],
    ) -> Result<RunTable> {
        self.search_runs_limit(experiments, filter, order_by, None)
    }

    /// [`Tracker::search_runs`] returning at most `max_results` runs.
    pub fn search_runs_limit(
        &self,
        experiments: &[&str],
        filter: &str,
        order_by: &[&str],
        max_results: Option<usize>,
    ) -> Result<RunTable> {
        if let Some(server) = self.server() {
            return super::rest::search::search_runs(
                server,
                experiments,
                filter,
                order_by,
                max_results,
            );
        }
        let comparisons = filter::parse(filter)?;
        let order: Vec<OrderBy> = order_by
            .iter()
            .map(|o| filter::parse_order_by(o))
            .collect::<Result<_>>()?;
        let mut exp_ids = Vec::new();
        for e in experiments {
            exp_ids.push(self.get_experiment(e)?.experiment_id());
        }

        // WHERE and ORDER BY take SQL parameters; the main query uses both, the CTE that the
        // metric/param/tag queries join on uses ORDER BY only when a limit makes order matter.
        let mut where_args: Vec<SqlValue> = Vec::new();
        let mut where_sql = String::from("runs.lifecycle_stage = 'active'");
        if !exp_ids.is_empty() {
            let ids: Vec<String> = exp_ids.iter().map(|i| i.to_string()).collect();
            where_sql.push_str(&format!(" AND runs.experiment_id IN ({})", ids.join(", ")));
        }
        where_sql.push_str(" AND ");
        where_sql.push_str(&filter::filter_sql(&comparisons, &mut where_args));
        let mut order_args: Vec<SqlValue> = Vec::new();
        let order_sql = filter::order_sql(&order, &mut order_args);
        let limit = max_results
            .map(|n| format!(" LIMIT {n}"))
            .unwrap_or_default();
        let main_sql = format!(
            "SELECT runs.run_uuid, runs.name, runs.experiment_id, runs.status, runs.artifact_uri, runs.start_time, \
             runs.end_time FROM runs WHERE {where_sql} ORDER BY {order_sql}{limit}"
        );
        let main_args: Vec<SqlValue> = where_args
            .iter()
            .chain(order_args.iter())
            .cloned()
            .collect();
        let (sel, sel_args) = if max_results.is_some() {
            (
                format!("WITH sel AS (SELECT runs.run_uuid AS run_uuid FROM runs WHERE {where_sql} ORDER BY {order_sql}{limit})"),
                main_args.clone(),
            )
        } else {
            (
                format!(
                    "WITH sel AS (SELECT runs.run_uuid AS run_uuid FROM runs WHERE {where_sql})"
                ),
                where_args.clone(),
            )
        };

        self.read(|c| {
            let mut st = c.prepare(&main_sql)?;
            let rows: Vec<Row> = st
                .query_map(rusqlite::params_from_iter(main_args.iter()), |r| {
                    Ok(Row {
                        run_id: r.get(0)?,
                        run_name: r.get(1)?,
                        experiment_id: r.get(2)?,
                        status: r.get(3)?,
                        artifact_uri: r.get(4)?,
                        start_time: r.get(5)?,
                        end_time: r.get(6)?,
                    })
                })?
                .collect::<std::result::Result<_, _>>()?;
            let index: HashMap<&str, usize> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| (r.run_id.as_str(), i))
                .collect();
            let n = rows.len();
            // When the selection is a large part of the store, one sequential pass over a whole
            // table (rows of other runs skipped by `index`) beats 10^4 index probes.
            let total: i64 = c.query_row("SELECT count(*) FROM runs", [], |r| r.get(0))?;
            let scan_all = n as i64 * 4 >= total;
            let no_args: Vec<SqlValue> = Vec::new();
            let (sel, sel_args) = if scan_all {
                (String::new(), &no_args)
            } else {
                (sel, &sel_args)
            };
            let from = |table: &str, cols: &str| {
                if scan_all {
                    format!("SELECT {cols} FROM {table} x")
                } else {
                    format!(
                        "{sel} SELECT {cols} FROM {table} x JOIN sel ON sel.run_uuid = x.run_uuid"
                    )
                }
            };

            let mut metrics: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
            let mut st = c.prepare(&from(
                "latest_metrics",
                "x.run_uuid, x.\"key\", x.value, x.is_nan",
            ))?;
            let mut q = st.query(rusqlite::params_from_iter(sel_args.iter()))?;
            while let Some(r) = q.next()? {
                // Borrowed text: no allocation per cell on the 10^5-row scans.
                let Some(&i) = index.get(text(r, 0)?) else {
                    continue;
                };
                let v = decode_value(r.get(2)?, r.get(3)?);
                let key = text(r, 1)?;
                match metrics.get_mut(key) {
                    Some(col) => col[i] = Some(v),
                    None => {
                        let mut col = vec![None; n];
                        col[i] = Some(v);
                        metrics.insert(key.to_string(), col);
                    }
                }
            }
            let strings = |table: &str| -> Result<BTreeMap<String, Vec<Option<String>>>> {
                let mut out: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
                let mut st = c.prepare(&from(table, "x.run_uuid, x.\"key\", x.value"))?;
                let mut q = st.query(rusqlite::params_from_iter(sel_args.iter()))?;
                while let Some(r) = q.next()? {
                    let Some(&i) = index.get(text(r, 0)?) else {
                        continue;
                    };
                    let v = match r.get_ref(2)? {
                        rusqlite::types::ValueRef::Null => String::new(),
                        other => other.as_str().map_err(rusqlite::Error::from)?.to_string(),
                    };
                    let key = text(r, 1)?;
                    match out.get_mut(key) {
                        Some(col) => col[i] = Some(v),
                        None => {
                            let mut col = vec![None; n];
                            col[i] = Some(v);
                            out.insert(key.to_string(), col);
                        }
                    }
                }
                Ok(out)
            };
            let params = strings("params")?;
            let tags = strings("tags")?;

            let mut cols: Vec<Column> = vec![
                Column::new(
                    "run_id".into(),
                    rows.iter().map(|r| r.run_id.clone()).collect::<Vec<_>>(),
                ),
                Column::new(
                    "run_name".into(),
                    rows.iter().map(|r| r.run_name.clone()).collect::<Vec<_>>(),
                ),
                Column::new(
                    "experiment_id".into(),
                    rows.iter()
                        .map(|r| r.experiment_id.map(|e| e.to_string()))
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "status".into(),
                    rows.iter().map(|r| r.status.clone()).collect::<Vec<_>>(),
                ),
                Column::new(
                    "artifact_uri".into(),
                    rows.iter()
                        .map(|r| r.artifact_uri.clone())
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "start_time".into(),
                    rows.iter().map(|r| r.start_time).collect::<Vec<_>>(),
                ),
                Column::new(
                    "end_time".into(),
                    rows.iter().map(|r| r.end_time).collect::<Vec<_>>(),
                ),
            ];
            for (k, v) in metrics {
                cols.push(Column::new(format!("metrics.{k}").into(), v));
            }
            for (k, v) in params {
                cols.push(Column::new(format!("params.{k}").into(), v));
            }
            for (k, v) in tags {
                cols.push(Column::new(format!("tags.{k}").into(), v));
            }
            Ok(RunTable {
                df: DataFrame::new(n, cols)?,
            })
        })
    }

    /// Metric histories of several runs for one key, as a long DataFrame (`run_id`, `step`,
    /// `timestamp`, `value`), for plotting curves side by side.
    pub fn metric_histories(&self, run_ids: &[&str], key: &str) -> Result<DataFrame> {
        let mut ids = Vec::new();
        let mut steps = Vec::new();
        let mut ts = Vec::new();
        let mut vals = Vec::new();
        for id in run_ids {
            let id = self.resolve_run_id(id)?;
            for p in self.metric_points(&id, key)? {
                ids.push(id.clone());
                steps.push(p.step);
                ts.push(p.timestamp);
                vals.push(p.value);
            }
        }
        if ids.is_empty() {
            return Err(Error::Tracking(format!(
                "none of the runs {run_ids:?} has a metric `{key}`"
            )));
        }
        let n = ids.len();
        Ok(DataFrame::new(
            n,
            vec![
                Column::new("run_id".into(), ids),
                Column::new("step".into(), steps),
                Column::new("timestamp".into(), ts),
                Column::new("value".into(), vals),
            ],
        )?)
    }
}

/// Column `i` of a row as borrowed text.
fn text<'r>(r: &'r rusqlite::Row, i: usize) -> rusqlite::Result<&'r str> {
    r.get_ref(i)?.as_str().map_err(rusqlite::Error::from)
}
