//! The MLflow schema at alembic revision `89d4b8295536`, and the check that an existing file is
//! one we can use.
//!
//! We create exactly MLflow's tables (so that MLflow's own alembic chain can upgrade the file in
//! place) plus a few indexes under our own `hl_` names (MLflow's later revisions create
//! `index_<table>_run_uuid` and `index_metrics_run_uuid_key_step`; reusing those names would make
//! its migration fail with "index already exists"). MLflow 3.17.2 upgrades such a file cleanly
//! and keeps our indexes (checked by `tests/mlflow_check.py`).
//!
//! After MLflow upgrades a file it gains columns and ~57 tables; every statement of this module
//! names its columns, and [`SchemaInfo`] records the optional columns we fill when present.

use crate::{Error, Result};
use rusqlite::Connection;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// The alembic revision whose schema we create.
pub const REVISION: &str = "89d4b8295536";

/// DDL of revision 89d4b8295536, as MLflow's models and migrations define it.
const SCHEMA_SQL: &str = r#"
CREATE TABLE experiments (
  experiment_id INTEGER NOT NULL, name VARCHAR(256) NOT NULL, artifact_location VARCHAR(256), lifecycle_stage VARCHAR(32),
  CONSTRAINT experiment_pk PRIMARY KEY (experiment_id),
  CONSTRAINT experiments_lifecycle_stage CHECK (lifecycle_stage IN ('active', 'deleted')), UNIQUE (name));
CREATE TABLE runs (
  run_uuid VARCHAR(32) NOT NULL, name VARCHAR(250), source_type VARCHAR(20), source_name VARCHAR(500),
  entry_point_name VARCHAR(50), user_id VARCHAR(256), status VARCHAR(20), start_time BIGINT, end_time BIGINT,
  source_version VARCHAR(50), lifecycle_stage VARCHAR(20), artifact_uri VARCHAR(200), experiment_id INTEGER,
  CONSTRAINT run_pk PRIMARY KEY (run_uuid),
  CONSTRAINT source_type CHECK (source_type IN ('NOTEBOOK', 'JOB', 'LOCAL', 'UNKNOWN', 'PROJECT')),
  CONSTRAINT status CHECK (status IN ('SCHEDULED', 'FAILED', 'FINISHED', 'RUNNING')),
  CONSTRAINT runs_lifecycle_stage CHECK (lifecycle_stage IN ('active', 'deleted')),
  FOREIGN KEY(experiment_id) REFERENCES experiments (experiment_id));
CREATE TABLE params ("key" VARCHAR(250) NOT NULL, value VARCHAR(250) NOT NULL, run_uuid VARCHAR(32) NOT NULL,
  CONSTRAINT param_pk PRIMARY KEY ("key", run_uuid), FOREIGN KEY(run_uuid) REFERENCES runs (run_uuid));
CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));
CREATE TABLE IF NOT EXISTS "metrics" ("key" VARCHAR(250) NOT NULL, value FLOAT NOT NULL, timestamp BIGINT NOT NULL,
  run_uuid VARCHAR(32) NOT NULL, step BIGINT DEFAULT '0' NOT NULL, is_nan BOOLEAN DEFAULT '0' NOT NULL,
  CONSTRAINT metric_pk PRIMARY KEY ("key", timestamp, step, run_uuid, value, is_nan),
  FOREIGN KEY(run_uuid) REFERENCES runs (run_uuid));
CREATE TABLE experiment_tags ("key" VARCHAR(250) NOT NULL, value VARCHAR(5000), experiment_id INTEGER NOT NULL,
  CONSTRAINT experiment_tag_pk PRIMARY KEY ("key", experiment_id),
  FOREIGN KEY(experiment_id) REFERENCES experiments (experiment_id));
CREATE TABLE IF NOT EXISTS "tags" ("key" VARCHAR(250) NOT NULL, value VARCHAR(5000), run_uuid VARCHAR(32) NOT NULL,
  CONSTRAINT tag_pk PRIMARY KEY ("key", run_uuid), FOREIGN KEY(run_uuid) REFERENCES runs (run_uuid));
CREATE TABLE latest_metrics ("key" VARCHAR(250) NOT NULL, value FLOAT NOT NULL, timestamp BIGINT, step BIGINT NOT NULL,
  is_nan BOOLEAN NOT NULL, run_uuid VARCHAR(32) NOT NULL,
  CONSTRAINT latest_metric_pk PRIMARY KEY ("key", run_uuid), FOREIGN KEY(run_uuid) REFERENCES runs (run_uuid));
"#;

/// Our indexes: (name, the MLflow index that makes it redundant, DDL). The covering indexes
/// let `search_runs` read a run's metrics, params and tags from the index alone (one sequential
/// pass instead of 10^5 random row lookups on 10,000 runs); MLflow's `index_<table>_run_uuid`
/// cover only `run_uuid`, so ours stay after an upgrade.
const OUR_INDEXES: &[(&str, &str, &str)] = &[
    (
        "hl_idx_metrics_run_key_step",
        "index_metrics_run_uuid_key_step",
        "CREATE INDEX IF NOT EXISTS hl_idx_metrics_run_key_step ON metrics (run_uuid, \"key\", step)",
    ),
    (
        "hl_idx_latest_metrics_cover",
        "",
        "CREATE INDEX IF NOT EXISTS hl_idx_latest_metrics_cover ON latest_metrics \
         (run_uuid, \"key\", value, is_nan, step, timestamp)",
    ),
    (
        // Filters `metrics.k > x`: an index range scan instead of a row fetch per run.
        "hl_idx_latest_metrics_key_value",
        "",
        "CREATE INDEX IF NOT EXISTS hl_idx_latest_metrics_key_value ON latest_metrics \
         (\"key\", is_nan, value, run_uuid)",
    ),
    (
        "hl_idx_params_key_value",
        "",
        "CREATE INDEX IF NOT EXISTS hl_idx_params_key_value ON params (\"key\", value, run_uuid)",
    ),
    (
        "hl_idx_params_cover",
        "",
        "CREATE INDEX IF NOT EXISTS hl_idx_params_cover ON params (run_uuid, \"key\", value)",
    ),
    (
        "hl_idx_tags_cover",
        "",
        "CREATE INDEX IF NOT EXISTS hl_idx_tags_cover ON tags (run_uuid, \"key\", value)",
    ),
    (
        "hl_idx_runs_experiment",
        "",
        "CREATE INDEX IF NOT EXISTS hl_idx_runs_experiment ON runs (experiment_id, start_time)",
    ),
];

/// Indexes of earlier versions of the tracker, replaced by the covering ones.
const OLD_INDEXES: &[&str] = &[
    "hl_idx_latest_metrics_run",
    "hl_idx_params_run",
    "hl_idx_tags_run",
];

/// The columns every statement of the tracker reads or writes, per table.
const REQUIRED: &[(&str, &[&str])] = &[
    (
        "experiments",
        &[
            "experiment_id",
            "name",
            "artifact_location",
            "lifecycle_stage",
        ],
    ),
    (
        "runs",
        &[
            "run_uuid",
            "name",
            "source_type",
            "source_name",
            "entry_point_name",
            "user_id",
            "status",
            "start_time",
            "end_time",
            "source_version",
            "lifecycle_stage",
            "artifact_uri",
            "experiment_id",
        ],
    ),
    ("params", &["key", "value", "run_uuid"]),
    (
        "metrics",
        &["key", "value", "timestamp", "run_uuid", "step", "is_nan"],
    ),
    (
        "latest_metrics",
        &["key", "value", "timestamp", "step", "is_nan", "run_uuid"],
    ),
    ("tags", &["key", "value", "run_uuid"]),
    ("experiment_tags", &["key", "value", "experiment_id"]),
    ("alembic_version", &["version_num"]),
];

/// What the tracker learned about an existing file's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaInfo {
    /// The alembic revision stored in the file (ours, or MLflow's after an upgrade).
    pub revision: String,
    /// `runs.status` accepts KILLED (MLflow's later revisions); otherwise KILLED is stored as FAILED.
    pub status_killed: bool,
    /// Optional `experiments` columns present (creation_time, last_update_time, workspace).
    pub experiment_extra: BTreeSet<String>,
}

impl SchemaInfo {
    /// Whether this file was upgraded by MLflow beyond the revision we create.
    pub fn upgraded(&self) -> bool {
        self.revision != REVISION
    }
    pub(crate) fn has_workspace(&self) -> bool {
        self.experiment_extra.contains("workspace")
    }
}

/// Create the schema in an empty database, or check an existing one. Call inside an IMMEDIATE
/// transaction so that two processes opening a new file at once do not both create it.
pub(crate) fn ensure(
    conn: &Connection,
    path: &Path,
    default_artifacts: &Path,
) -> Result<SchemaInfo> {
    let tables = table_names(conn)?;
    if tables.is_empty() {
        create(conn, default_artifacts)?;
    } else {
        check_tables(&tables, path)?;
    }
    let info = inspect(conn, path)?;
    maintain_indexes(conn)?;
    Ok(info)
}

fn table_names(conn: &Connection) -> Result<BTreeSet<String>> {
    let mut st = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )?;
    let names = st
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<std::result::Result<BTreeSet<_>, _>>()?;
    Ok(names)
}

fn create(conn: &Connection, default_artifacts: &Path) -> Result<()> {
    conn.execute_batch(SCHEMA_SQL)?;
    for (_, _, ddl) in OUR_INDEXES {
        conn.execute(ddl, [])?;
    }
    conn.execute(
        "INSERT INTO alembic_version (version_num) VALUES (?1)",
        [REVISION],
    )?;
    conn.execute(
        "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage) VALUES (0, 'Default', ?1, 'active')",
        [default_artifacts.join("0").to_string_lossy().into_owned()],
    )?;
    Ok(())
}

fn check_tables(tables: &BTreeSet<String>, path: &Path) -> Result<()> {
    let missing: Vec<&str> = REQUIRED
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| !tables.contains(*t))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let shown: Vec<&String> = tables.iter().take(8).collect();
    Err(Error::Tracking(format!(
        "{} is an SQLite database but not an MLflow tracking store: it lacks the table(s) {} (it holds {:?}{}). \
         Point --tracking-uri / MLFLOW_TRACKING_URI at a tracker file, or at a new path to create one",
        path.display(),
        missing.join(", "),
        shown,
        if tables.len() > 8 { ", ..." } else { "" }
    )))
}

fn columns(conn: &Connection, table: &str) -> Result<BTreeSet<String>> {
    let mut st = conn.prepare(&format!("PRAGMA table_info(\"{table}\")"))?;
    let cols = st
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<std::result::Result<BTreeSet<_>, _>>()?;
    Ok(cols)
}

fn inspect(conn: &Connection, path: &Path) -> Result<SchemaInfo> {
    let mut cols: HashMap<&str, BTreeSet<String>> = HashMap::new();
    for (table, required) in REQUIRED {
        let have = columns(conn, table)?;
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|c| !have.contains(*c))
            .collect();
        if !missing.is_empty() {
            return Err(Error::Tracking(format!(
                "{}: table `{table}` lacks column(s) {} that the tracker needs: the file was written by an MLflow \
                 older than revision {REVISION} (MLflow 1.x). Upgrade it with `mlflow db upgrade {}`, then retry",
                path.display(),
                missing.join(", "),
                super::uri::to_uri(path)
            )));
        }
        cols.insert(table, have);
    }
    let revisions: Vec<String> = conn
        .prepare("SELECT version_num FROM alembic_version")?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<std::result::Result<_, _>>()?;
    let revision = match revisions.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(Error::Tracking(format!(
                "{}: alembic_version is empty, so the schema revision is unknown; the file was not created by MLflow \
                 or by this tracker. Use another path, or run `mlflow db upgrade {}` if MLflow made it",
                path.display(),
                super::uri::to_uri(path)
            )))
        }
        many => {
            return Err(Error::Tracking(format!(
                "{}: alembic_version holds several revisions {many:?}; MLflow cannot use such a file either",
                path.display()
            )))
        }
    };
    let runs_sql: String = conn.query_row(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'runs'",
        [],
        |r| r.get(0),
    )?;
    let status_killed = runs_sql.contains("KILLED") || !runs_sql.contains("'RUNNING'");
    let experiment_extra = ["creation_time", "last_update_time", "workspace"]
        .iter()
        .filter(|c| cols["experiments"].contains(**c))
        .map(|c| c.to_string())
        .collect();
    Ok(SchemaInfo {
        revision,
        status_killed,
        experiment_extra,
    })
}

/// Keep exactly our useful indexes: drop the ones an MLflow upgrade made redundant (so writes do
/// not maintain two) and those of earlier tracker versions; create missing ones (a file MLflow
/// created, or one from an earlier version).
fn maintain_indexes(conn: &Connection) -> Result<()> {
    let mut st = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'index'")?;
    let names = st
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<std::result::Result<BTreeSet<_>, _>>()?;
    for old in OLD_INDEXES {
        if names.contains(*old) {
            conn.execute(&format!("DROP INDEX IF EXISTS {old}"), [])?;
        }
    }
    for (ours, theirs, ddl) in OUR_INDEXES {
        let redundant = !theirs.is_empty() && names.contains(*theirs);
        if redundant && names.contains(*ours) {
            conn.execute(&format!("DROP INDEX IF EXISTS {ours}"), [])?;
        } else if !redundant && !names.contains(*ours) {
            conn.execute(ddl, [])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_mlflow_schema_with_default_experiment() {
        let conn = Connection::open_in_memory().unwrap();
        let root = std::env::temp_dir().join("artifacts");
        let info = ensure(&conn, Path::new("mem.db"), &root).unwrap();
        assert_eq!(info.revision, REVISION);
        assert!(!info.status_killed);
        assert!(!info.upgraded());
        let (name, loc): (String, String) = conn
            .query_row(
                "SELECT name, artifact_location FROM experiments WHERE experiment_id = 0",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(name, "Default");
        assert_eq!(loc, root.join("0").to_string_lossy());
        // A second check of the same file is a no-op.
        assert_eq!(
            ensure(&conn, Path::new("mem.db"), Path::new("/x")).unwrap(),
            info
        );
    }

    #[test]
    fn rejects_foreign_database_and_old_schema() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE cats (name TEXT)").unwrap();
        let e = ensure(&conn, Path::new("pets.db"), Path::new("/a"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not an MLflow tracking store") && e.contains("pets.db"),
            "{e}"
        );

        let conn = Connection::open_in_memory().unwrap();
        ensure(&conn, Path::new("old.db"), Path::new("/a")).unwrap();
        // MLflow 1.x metrics table: no is_nan column.
        conn.execute_batch(
            "DROP TABLE metrics; CREATE TABLE metrics (\"key\" VARCHAR(250) NOT NULL, value FLOAT NOT NULL, \
             timestamp BIGINT NOT NULL, run_uuid VARCHAR(32) NOT NULL, step BIGINT DEFAULT '0' NOT NULL)",
        )
        .unwrap();
        let e = ensure(&conn, Path::new("old.db"), Path::new("/a"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is_nan") && e.contains("mlflow db upgrade"),
            "{e}"
        );
    }
}
