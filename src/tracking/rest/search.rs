//! `search_runs` on the server: the filter is checked with our grammar (same errors as the SQLite
//! store), written back in MLflow's canonical form and filtered by the server; pages are followed
//! with `page_token`; the answer becomes the same polars frame as [`crate::tracking::query`]'s.
//! The one part of our grammar MLflow's server lacks, `IN`/`NOT IN` on string attributes other
//! than `run_id`, is applied to the server's answer.

use super::store::{run_data_from, run_info_from, RestStore};
use crate::tracking::filter::{self, Comparison, Entity, Literal, Op, OrderBy};
use crate::tracking::table::RunTable;
use crate::tracking::tags;
use crate::{Error, Result};
use polars::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn prefix(e: Entity) -> &'static str {
    match e {
        Entity::Metric => "metrics",
        Entity::Param => "params",
        Entity::Tag => "tags",
        Entity::Attribute => "attributes",
    }
}

fn field(e: Entity, key: &str) -> Result<String> {
    if e == Entity::Attribute {
        return Ok(format!("attributes.{key}"));
    }
    if key.contains('`') {
        return Err(Error::Tracking(format!(
            "key `{key}` contains a backtick, which MLflow's filter cannot quote"
        )));
    }
    Ok(format!("{}.`{key}`", prefix(e)))
}

fn quote(s: &str) -> Result<String> {
    if !s.contains('\'') {
        Ok(format!("'{s}'"))
    } else if !s.contains('"') {
        Ok(format!("\"{s}\""))
    } else {
        Err(Error::Tracking(format!(
            "filter value `{s}` contains both quote characters, which MLflow's filter cannot express"
        )))
    }
}

fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9e15 {
        format!("{}", n as i64)
    } else {
        format!("{n:?}")
    }
}

fn op_str(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Ne => "!=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Like => "LIKE",
        Op::ILike => "ILIKE",
        Op::In => "IN",
        Op::NotIn => "NOT IN",
    }
}

/// One parsed comparison in MLflow's canonical syntax.
pub fn render_comparison(c: &Comparison) -> Result<String> {
    let value = match &c.value {
        Literal::Number(n) => number(*n),
        Literal::Str(s) => quote(s)?,
        Literal::List(items) => {
            let q: Result<Vec<String>> = items.iter().map(|s| quote(s)).collect();
            format!("({})", q?.join(", "))
        }
    };
    Ok(format!(
        "{} {} {value}",
        field(c.entity, &c.key)?,
        op_str(c.op)
    ))
}

/// Whether the server can evaluate `c` (it takes IN lists on `run_id` only).
fn server_side(c: &Comparison) -> bool {
    !(c.entity == Entity::Attribute && matches!(c.op, Op::In | Op::NotIn) && c.key != "run_id")
}

/// A filter in our grammar, checked and written in MLflow's canonical syntax (the comparisons
/// the server evaluates), and the comparisons left to apply to its answer.
pub fn split_filter(filter: &str) -> Result<(String, Vec<Comparison>)> {
    let (server, local): (Vec<Comparison>, Vec<Comparison>) =
        filter::parse(filter)?.into_iter().partition(server_side);
    let parts: Result<Vec<String>> = server.iter().map(render_comparison).collect();
    Ok((parts?.join(" AND "), local))
}

/// [`split_filter`]'s server part.
pub fn render_filter(filter: &str) -> Result<String> {
    Ok(split_filter(filter)?.0)
}

/// Whether a run's attributes pass the comparisons left to the client.
fn keep(info: &Value, local: &[Comparison]) -> bool {
    local.iter().all(|c| {
        let v = info[c.key.as_str()].as_str().unwrap_or_default();
        let hit = matches!(&c.value, Literal::List(items) if items.iter().any(|i| i == v));
        if c.op == Op::In {
            hit
        } else {
            !hit
        }
    })
}

fn render_order(o: &OrderBy) -> Result<String> {
    Ok(format!(
        "{} {}",
        field(o.entity, &o.key)?,
        if o.descending { "DESC" } else { "ASC" }
    ))
}

/// Raw run JSON objects of a search, every page (up to `max_results`).
pub fn search_raw(
    store: &RestStore,
    experiment_ids: &[i64],
    canonical_filter: &str,
    order_by: &[String],
    max_results: Option<usize>,
) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    if experiment_ids.is_empty() {
        return Ok(out);
    }
    let ids: Vec<String> = experiment_ids.iter().map(|i| i.to_string()).collect();
    let mut token = String::new();
    loop {
        let want = max_results.map(|m| m - out.len()).unwrap_or(1000).min(1000);
        if want == 0 {
            break;
        }
        let mut body = json!({"experiment_ids": ids, "filter": canonical_filter,
            "run_view_type": "ACTIVE_ONLY", "max_results": want, "order_by": order_by});
        if !token.is_empty() {
            body["page_token"] = json!(token);
        }
        let v = store.post("runs/search", body)?;
        out.extend(v["runs"].as_array().cloned().unwrap_or_default());
        match v["next_page_token"].as_str() {
            Some(t) if !t.is_empty() => token = t.to_string(),
            _ => break,
        }
    }
    Ok(out)
}

/// [`crate::tracking::Tracker::search_runs_limit`] on the server.
pub fn search_runs(
    store: &RestStore,
    experiments: &[&str],
    filter: &str,
    order_by: &[&str],
    max_results: Option<usize>,
) -> Result<RunTable> {
    let (canonical, local) = split_filter(filter)?;
    let order: Vec<String> = order_by
        .iter()
        .map(|o| filter::parse_order_by(o).and_then(|o| render_order(&o)))
        .collect::<Result<_>>()?;
    let exp_ids: Vec<i64> = if experiments.is_empty() {
        store
            .list_experiments()?
            .iter()
            .map(|e| e.experiment_id)
            .collect()
    } else {
        let mut ids = Vec::new();
        for e in experiments {
            let found = match store.experiment_by_name(e)? {
                Some(x) => Some(x),
                None => match e.parse::<i64>() {
                    Ok(id) => store.experiment_by_id(id)?,
                    Err(_) => None,
                },
            };
            let x = found.ok_or_else(|| {
                Error::Tracking(format!(
                    "no experiment named or numbered `{e}` on {}",
                    store.url()
                ))
            })?;
            ids.push(x.experiment_id);
        }
        ids
    };
    if local.is_empty() {
        return frame(&search_raw(
            store,
            &exp_ids,
            &canonical,
            &order,
            max_results,
        )?);
    }
    let mut runs = search_raw(store, &exp_ids, &canonical, &order, None)?;
    runs.retain(|r| keep(&r["info"], &local));
    runs.truncate(max_results.unwrap_or(usize::MAX));
    frame(&runs)
}

/// The frame of [`RunTable`] from run JSON objects, in their order.
pub fn frame(runs: &[Value]) -> Result<RunTable> {
    let n = runs.len();
    let data: Vec<_> = runs.iter().map(run_data_from).collect();
    let mut metrics: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    let mut params: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
    let mut tags: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
    for (i, d) in data.iter().enumerate() {
        for (k, p) in &d.metrics {
            metrics.entry(k.clone()).or_insert_with(|| vec![None; n])[i] = Some(p.value);
        }
        for (k, v) in &d.params {
            params.entry(k.clone()).or_insert_with(|| vec![None; n])[i] = Some(v.clone());
        }
        for (k, v) in &d.tags {
            tags.entry(k.clone()).or_insert_with(|| vec![None; n])[i] = Some(v.clone());
        }
    }
    let info = |f: &dyn Fn(&crate::tracking::RunInfo) -> Option<String>| -> Vec<Option<String>> {
        data.iter().map(|d| f(&d.info)).collect()
    };
    let mut cols: Vec<Column> = vec![
        Column::new("run_id".into(), info(&|i| Some(i.run_id.clone()))),
        Column::new("run_name".into(), info(&|i| Some(i.run_name.clone()))),
        Column::new(
            "experiment_id".into(),
            info(&|i| Some(i.experiment_id.to_string())),
        ),
        Column::new("status".into(), info(&|i| Some(i.status.clone()))),
        Column::new(
            "artifact_uri".into(),
            info(&|i| Some(i.artifact_uri.clone())),
        ),
        Column::new(
            "start_time".into(),
            data.iter()
                .map(|d| Some(d.info.start_time))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "end_time".into(),
            data.iter().map(|d| d.info.end_time).collect::<Vec<_>>(),
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
}

// Searches that the store answers through `search_raw`: defined here so that the store does not
// depend on the search (one-way: search on top of store).
impl RestStore {
    /// Run ids starting with `prefix`, over every experiment (at most 5).
    pub fn run_ids_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let exps: Vec<i64> = self
            .list_experiments()?
            .iter()
            .map(|e| e.experiment_id)
            .collect();
        let runs = search_raw(
            self,
            &exps,
            &format!("attributes.run_id LIKE '{prefix}%'"),
            &[],
            Some(5),
        )?;
        Ok(runs
            .iter()
            .map(|r| run_info_from(&r["info"]).run_id)
            .collect())
    }

    /// Nested runs of `run_id`, oldest first.
    pub fn child_run_ids(&self, run_id: &str) -> Result<Vec<String>> {
        let exp = self.run_data(run_id)?.info.experiment_id;
        let runs = search_raw(
            self,
            &[exp],
            &format!("tags.`{}` = '{run_id}'", tags::PARENT_RUN_ID),
            &["attributes.start_time ASC".to_string()],
            None,
        )?;
        Ok(runs
            .iter()
            .map(|r| run_info_from(&r["info"]).run_id)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_written_in_mlflows_canonical_form() {
        assert_eq!(
            render_filter("metric.acc > 0.8 and params.r = '8' and tags.`study.name` LIKE 'ti%'")
                .unwrap(),
            "metrics.`acc` > 0.8 AND params.`r` = '8' AND tags.`study.name` LIKE 'ti%'"
        );
        assert_eq!(
            render_filter("attributes.run_id IN ('ab', 'cd') and attr.created >= 5").unwrap(),
            "attributes.run_id IN ('ab', 'cd') AND attributes.start_time >= 5"
        );
        // The server takes IN lists on run_id only: the others are applied to its answer.
        let (server, local) =
            split_filter("attributes.status IN ('FINISHED', 'FAILED') and metrics.a < 1").unwrap();
        assert_eq!(server, "metrics.`a` < 1");
        assert_eq!(local.len(), 1);
        let info = json!({"status": "FAILED"});
        assert!(keep(&info, &local));
        assert!(!keep(&json!({"status": "RUNNING"}), &local));
        assert_eq!(render_filter("").unwrap(), "");
        assert_eq!(
            render_filter("params.note = \"it's\"").unwrap(),
            "params.`note` = \"it's\""
        );
        // Our grammar's errors, before anything is sent.
        assert!(render_filter("metrics.acc > 1 or metrics.acc < 0").is_err());
        assert!(render_filter("params.r > 3").is_err());
    }
}
