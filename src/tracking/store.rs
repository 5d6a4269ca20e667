//! The SQLite connection and every statement that writes or reads one run's rows.
//!
//! Reliability choices (MLflow users' usual complaints are "database is locked" and lost runs):
//! - WAL journal where the file system allows it, `synchronous = NORMAL` (a killed process
//!   loses nothing committed; only a power cut can lose the last transactions);
//! - `busy_timeout = 20000` like MLflow, and every write transaction `BEGIN IMMEDIATE`, so that a
//!   writer waits for the lock up front instead of failing on a read-to-write upgrade;
//! - short transactions: one per batch of metric points, one per params/tags call;
//! - every statement names its columns, so files MLflow has upgraded keep working.

use super::entities::{
    decode_value, encode_value, now_ms, validate_key, validate_value, ExperimentInfo, MetricPoint,
    RunData, RunInfo, MAX_EXPERIMENT_NAME_LEN, MAX_PARAM_VALUE_LEN, MAX_TAG_VALUE_LEN,
};
use super::schema::{self, SchemaInfo};
use super::tags;
use crate::{Error, Result};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// MLflow's busy timeout.
pub const BUSY_TIMEOUT: Duration = Duration::from_millis(20_000);

/// Open (creating if needed) the store at `path` and check its schema.
///
/// Returns the connection, the schema facts and the default artifact root
/// (`<db dir>/artifacts`, absolute).
pub(crate) fn open(path: &Path) -> Result<(Connection, SchemaInfo, PathBuf)> {
    let path = super::uri::absolute(path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    check_header(&path)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn =
        Connection::open_with_flags(&path, flags).map_err(|e| sqlite_open_error(&path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // WAL is a property of the file: set once, kept by later openers (MLflow included). A file
    // system without shared memory refuses it and SQLite keeps the rollback journal, which is
    // still correct, only slower with several writers.
    let _mode: rusqlite::Result<String> =
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0));
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let artifact_root = path
        .parent()
        .map(|d| d.join("artifacts"))
        .unwrap_or_else(|| PathBuf::from("artifacts"));
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| sqlite_open_error(&path, e))?;
    let info = schema::ensure(&tx, &path, &artifact_root)?;
    tx.commit()?;
    Ok((conn, info, artifact_root))
}

/// A clear error for a file that is not SQLite at all, before SQLite says "file is not a database".
fn check_header(path: &Path) -> Result<()> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut head = [0u8; 16];
    let n = f.read(&mut head).map_err(|e| Error::io(path, e))?;
    if n == 0 {
        return Ok(());
    }
    if n < 16 || &head != b"SQLite format 3\0" {
        return Err(Error::Tracking(format!(
            "{} is not a tracker store: it is not an SQLite database. Point --tracking-uri / \
             MLFLOW_TRACKING_URI at an MLflow SQLite file (e.g. sqlite:///tracking/mlflow.db), or at a new path",
            path.display()
        )));
    }
    Ok(())
}

fn sqlite_open_error(path: &Path, e: rusqlite::Error) -> Error {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        if f.code == rusqlite::ErrorCode::NotADatabase {
            return Error::Tracking(format!(
                "{} is not a tracker store: SQLite cannot read it ({e})",
                path.display()
            ));
        }
    }
    Error::Tracking(format!("{}: {e}", path.display()))
}

/// Run `f` in a `BEGIN IMMEDIATE` transaction and commit.
pub(crate) fn write<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

/// Run `f` in one read transaction (a consistent snapshot across several SELECTs).
pub(crate) fn read<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

// ---- experiments -------------------------------------------------------------------------------

fn experiment_from_row(r: &rusqlite::Row) -> rusqlite::Result<ExperimentInfo> {
    Ok(ExperimentInfo {
        experiment_id: r.get(0)?,
        name: r.get(1)?,
        artifact_location: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
        lifecycle_stage: r
            .get::<_, Option<String>>(3)?
            .unwrap_or_else(|| "active".into()),
    })
}

const EXPERIMENT_COLS: &str = "experiment_id, name, artifact_location, lifecycle_stage";

fn workspace_clause(info: &SchemaInfo) -> &'static str {
    if info.has_workspace() {
        " AND workspace = 'default'"
    } else {
        ""
    }
}

pub(crate) fn experiment_by_name(
    conn: &Connection,
    info: &SchemaInfo,
    name: &str,
) -> Result<Option<ExperimentInfo>> {
    let sql = format!(
        "SELECT {EXPERIMENT_COLS} FROM experiments WHERE name = ?1{}",
        workspace_clause(info)
    );
    Ok(conn
        .query_row(&sql, [name], experiment_from_row)
        .optional()?)
}

pub(crate) fn experiment_by_id(conn: &Connection, id: i64) -> Result<Option<ExperimentInfo>> {
    let sql = format!("SELECT {EXPERIMENT_COLS} FROM experiments WHERE experiment_id = ?1");
    Ok(conn.query_row(&sql, [id], experiment_from_row).optional()?)
}

pub(crate) fn list_experiments(
    conn: &Connection,
    info: &SchemaInfo,
) -> Result<Vec<ExperimentInfo>> {
    let sql = format!(
        "SELECT {EXPERIMENT_COLS} FROM experiments WHERE lifecycle_stage = 'active'{} ORDER BY experiment_id",
        workspace_clause(info)
    );
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map([], experiment_from_row)?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Get the active experiment `name`, creating it (artifacts under `artifact_root/<id>`).
pub(crate) fn get_or_create_experiment(
    conn: &Connection,
    info: &SchemaInfo,
    artifact_root: &Path,
    name: &str,
) -> Result<ExperimentInfo> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_EXPERIMENT_NAME_LEN {
        return Err(Error::Tracking(format!(
            "experiment name `{name}` must be 1..={MAX_EXPERIMENT_NAME_LEN} characters"
        )));
    }
    if let Some(e) = experiment_by_name(conn, info, name)? {
        if e.lifecycle_stage == "deleted" {
            return Err(Error::Tracking(format!(
                "experiment `{name}` (id {}) is deleted; restore it (`mlflow experiments restore --experiment-id {}`) \
                 or choose another name",
                e.experiment_id, e.experiment_id
            )));
        }
        tag_experiment_kind(conn, e.experiment_id)?;
        return Ok(e);
    }
    let now = now_ms();
    let mut cols = vec!["name", "lifecycle_stage"];
    let mut vals: Vec<rusqlite::types::Value> =
        vec![name.to_string().into(), "active".to_string().into()];
    for extra in &info.experiment_extra {
        match extra.as_str() {
            "creation_time" | "last_update_time" => {
                cols.push(extra.as_str());
                vals.push(now.into());
            }
            "workspace" => {
                cols.push("workspace");
                vals.push("default".to_string().into());
            }
            _ => {}
        }
    }
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    conn.execute(
        &format!(
            "INSERT INTO experiments ({}) VALUES ({})",
            cols.join(", "),
            marks.join(", ")
        ),
        rusqlite::params_from_iter(vals),
    )?;
    let id = conn.last_insert_rowid();
    let loc = artifact_root
        .join(id.to_string())
        .to_string_lossy()
        .into_owned();
    conn.execute(
        "UPDATE experiments SET artifact_location = ?1 WHERE experiment_id = ?2",
        params![loc, id],
    )?;
    tag_experiment_kind(conn, id)?;
    Ok(ExperimentInfo {
        experiment_id: id,
        name: name.to_string(),
        artifact_location: loc,
        lifecycle_stage: "active".into(),
    })
}

/// Marks experiment `id` as model training for MLflow 3's UI ([`tags::EXPERIMENT_KIND`]),
/// unless it already has a kind: one chosen in the UI stays.
fn tag_experiment_kind(conn: &Connection, id: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO experiment_tags (\"key\", value, experiment_id) VALUES (?1, ?2, ?3) \
         ON CONFLICT (\"key\", experiment_id) DO NOTHING",
        params![
            tags::EXPERIMENT_KIND,
            tags::EXPERIMENT_KIND_MODEL_TRAINING,
            id
        ],
    )?;
    Ok(())
}

// ---- runs --------------------------------------------------------------------------------------

/// The fields of a new run row.
pub(crate) struct NewRun<'a> {
    pub run_id: &'a str,
    pub run_name: &'a str,
    pub experiment_id: i64,
    pub user: &'a str,
    pub source_name: &'a str,
    pub source_type: &'a str,
    pub start_time: i64,
    pub artifact_uri: &'a str,
}

pub(crate) fn insert_run(conn: &Connection, r: &NewRun) -> Result<()> {
    conn.execute(
        "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, \
         start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) \
         VALUES (?1, ?2, ?3, ?4, '', ?5, 'RUNNING', ?6, NULL, '', 'active', ?7, ?8)",
        params![
            r.run_id,
            r.run_name,
            r.source_type,
            r.source_name,
            r.user,
            r.start_time,
            r.artifact_uri,
            r.experiment_id
        ],
    )?;
    Ok(())
}

const RUN_COLS: &str =
    "run_uuid, name, experiment_id, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage";

fn run_from_row(r: &rusqlite::Row) -> rusqlite::Result<RunInfo> {
    Ok(RunInfo {
        run_id: r.get(0)?,
        run_name: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
        experiment_id: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
        user_id: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
        status: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
        start_time: r.get::<_, Option<i64>>(5)?.unwrap_or(0),
        end_time: r.get(6)?,
        artifact_uri: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
        lifecycle_stage: r
            .get::<_, Option<String>>(8)?
            .unwrap_or_else(|| "active".into()),
    })
}

pub(crate) fn run_info(conn: &Connection, run_id: &str) -> Result<RunInfo> {
    let sql = format!("SELECT {RUN_COLS} FROM runs WHERE run_uuid = ?1");
    conn.query_row(&sql, [run_id], run_from_row)
        .optional()?
        .ok_or_else(|| Error::Tracking(format!("no run with id `{run_id}` in this store")))
}

/// Run ids starting with `prefix` (for short ids on the command line).
pub(crate) fn run_ids_with_prefix(conn: &Connection, prefix: &str) -> Result<Vec<String>> {
    let mut st = conn.prepare("SELECT run_uuid FROM runs WHERE run_uuid LIKE ?1 || '%' LIMIT 5")?;
    let rows = st.query_map([prefix], |r| r.get(0))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

pub(crate) fn run_data(conn: &Connection, run_id: &str) -> Result<RunData> {
    let info = run_info(conn, run_id)?;
    let mut params = BTreeMap::new();
    let mut st = conn.prepare_cached("SELECT \"key\", value FROM params WHERE run_uuid = ?1")?;
    for row in st.query_map([run_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })? {
        let (k, v) = row?;
        params.insert(k, v);
    }
    let mut tags = BTreeMap::new();
    let mut st = conn.prepare_cached("SELECT \"key\", value FROM tags WHERE run_uuid = ?1")?;
    for row in st.query_map([run_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
    })? {
        let (k, v) = row?;
        tags.insert(k, v.unwrap_or_default());
    }
    let mut metrics = BTreeMap::new();
    let mut st = conn.prepare_cached(
        "SELECT \"key\", value, is_nan, timestamp, step FROM latest_metrics WHERE run_uuid = ?1",
    )?;
    for row in st.query_map([run_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            MetricPoint {
                value: decode_value(r.get(1)?, r.get(2)?),
                timestamp: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                step: r.get(4)?,
            },
        ))
    })? {
        let (k, p) = row?;
        metrics.insert(k, p);
    }
    Ok(RunData {
        info,
        params,
        metrics,
        tags,
    })
}

/// Set the status (and the end time unless RUNNING).
pub(crate) fn set_status(
    conn: &Connection,
    info: &SchemaInfo,
    run_id: &str,
    status: &str,
    end_time: Option<i64>,
) -> Result<()> {
    let status = if status == "KILLED" && !info.status_killed {
        "FAILED"
    } else {
        status
    };
    let n = conn.execute(
        "UPDATE runs SET status = ?1, end_time = ?2 WHERE run_uuid = ?3",
        params![status, end_time, run_id],
    )?;
    if n == 0 {
        return Err(Error::Tracking(format!(
            "no run with id `{run_id}` in this store"
        )));
    }
    Ok(())
}

// ---- params, tags, metrics ---------------------------------------------------------------------

/// Insert params; the same key with the same value again is a no-op, another value an error.
pub(crate) fn log_params(
    conn: &Connection,
    run_id: &str,
    params: &[(String, String)],
) -> Result<()> {
    for (k, v) in params {
        validate_key("param", k)?;
        validate_value("param", k, v, MAX_PARAM_VALUE_LEN)?;
    }
    let mut get =
        conn.prepare_cached("SELECT value FROM params WHERE run_uuid = ?1 AND \"key\" = ?2")?;
    let mut put =
        conn.prepare_cached("INSERT INTO params (\"key\", value, run_uuid) VALUES (?1, ?2, ?3)")?;
    for (k, v) in params {
        let old: Option<String> = get.query_row(params![run_id, k], |r| r.get(0)).optional()?;
        match old {
            Some(old) if &old == v => {}
            Some(old) => {
                return Err(Error::Tracking(format!(
                    "param `{k}` of run {run_id} was already logged with value `{old}`; params are immutable \
                     (MLflow's rule), so it cannot change to `{v}`. Log the new value under another key, or start a new run"
                )))
            }
            None => {
                put.execute(params![k, v, run_id])?;
            }
        }
    }
    Ok(())
}

/// Insert or replace tags.
pub(crate) fn set_tags(conn: &Connection, run_id: &str, tags: &[(String, String)]) -> Result<()> {
    for (k, v) in tags {
        validate_key("tag", k)?;
        validate_value("tag", k, v, MAX_TAG_VALUE_LEN)?;
    }
    let mut put = conn.prepare_cached(
        "INSERT INTO tags (\"key\", value, run_uuid) VALUES (?1, ?2, ?3) \
         ON CONFLICT (\"key\", run_uuid) DO UPDATE SET value = excluded.value",
    )?;
    for (k, v) in tags {
        put.execute(params![k, v, run_id])?;
        if k == super::tags::RUN_NAME {
            conn.execute(
                "UPDATE runs SET name = ?1 WHERE run_uuid = ?2",
                params![v, run_id],
            )?;
        }
    }
    Ok(())
}

/// Append metric points and keep `latest_metrics` up to date. Exact duplicates are ignored (the
/// primary key covers every column, as in MLflow).
pub(crate) fn log_metrics(
    conn: &Connection,
    run_id: &str,
    points: &[(String, MetricPoint)],
) -> Result<()> {
    let mut put = conn.prepare_cached(
        "INSERT OR IGNORE INTO metrics (\"key\", value, timestamp, run_uuid, step, is_nan) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    // latest: MLflow keeps the point with the greatest (step, timestamp, value).
    let mut latest: BTreeMap<&str, (i64, i64, f64, bool)> = BTreeMap::new();
    for (k, p) in points {
        let (v, nan) = encode_value(p.value);
        put.execute(params![k, v, p.timestamp, run_id, p.step, nan])?;
        let cand = (p.step, p.timestamp, v, nan);
        let newer = latest
            .get(k.as_str())
            .is_none_or(|cur| (cand.0, cand.1, cand.2) > (cur.0, cur.1, cur.2));
        if newer {
            latest.insert(k.as_str(), cand);
        }
    }
    let mut up = conn.prepare_cached(
        "INSERT INTO latest_metrics (\"key\", value, timestamp, step, is_nan, run_uuid) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (\"key\", run_uuid) DO UPDATE SET value = excluded.value, timestamp = excluded.timestamp, \
         step = excluded.step, is_nan = excluded.is_nan \
         WHERE (excluded.step, excluded.timestamp, excluded.value) > \
               (latest_metrics.step, COALESCE(latest_metrics.timestamp, 0), latest_metrics.value)",
    )?;
    for (k, (step, ts, v, nan)) in latest {
        up.execute(params![k, v, ts, step, nan, run_id])?;
    }
    Ok(())
}

/// Every point of metric `key` of `run_id`, by step then timestamp.
pub(crate) fn metric_history(
    conn: &Connection,
    run_id: &str,
    key: &str,
) -> Result<Vec<MetricPoint>> {
    let mut st = conn.prepare_cached(
        "SELECT value, is_nan, timestamp, step FROM metrics WHERE run_uuid = ?1 AND \"key\" = ?2 \
         ORDER BY step, timestamp",
    )?;
    let rows = st.query_map(params![run_id, key], |r| {
        Ok(MetricPoint {
            value: decode_value(r.get(0)?, r.get(1)?),
            timestamp: r.get(2)?,
            step: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Metric keys logged by `run_id`.
pub(crate) fn metric_keys(conn: &Connection, run_id: &str) -> Result<Vec<String>> {
    let mut st = conn.prepare_cached(
        "SELECT \"key\" FROM latest_metrics WHERE run_uuid = ?1 ORDER BY \"key\"",
    )?;
    let rows = st.query_map([run_id], |r| r.get(0))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Child runs of `run_id` (tag `mlflow.parentRunId`).
pub(crate) fn child_run_ids(conn: &Connection, run_id: &str) -> Result<Vec<String>> {
    let mut st = conn.prepare_cached(
        "SELECT t.run_uuid FROM tags t JOIN runs r ON r.run_uuid = t.run_uuid \
         WHERE t.\"key\" = 'mlflow.parentRunId' AND t.value = ?1 ORDER BY r.start_time, r.rowid",
    )?;
    let rows = st.query_map([run_id], |r| r.get(0))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}
