//! The tracker on an MLflow tracking server, through MLflow's REST API (`--tracking-uri
//! http(s)://host:port` or `MLFLOW_TRACKING_URI`), behind the same [`Tracker`](super::Tracker) and
//! [`Run`](super::Run) as the SQLite store.
//!
//! - [`client`]: HTTP, auth (`MLFLOW_TRACKING_USERNAME`/`PASSWORD`, `MLFLOW_TRACKING_TOKEN`),
//!   retries with backoff on 429/5xx and connection errors;
//! - [`store`]: experiments, runs, metric histories and artifact listings as the SQLite store's
//!   entities; [`search`]: `search_runs` into the same polars frame (the server filters);
//! - [`remote_run`], [`sender`] and [`spool`]: a run's writes (log-batch within MLflow's limits), spooled to a local file while the server is away
//!   and sent when it answers again or by `heterolora runs sync` ([`sync`]).
//!
//! Local files of a server's runs live under [`local_dir`]: `spool/<run_id>.jsonl` and
//! `artifacts/<run_id>/artifacts/` (each logged artifact is written there, then uploaded through
//! the server's artifact proxy; checkpoints of `heterolora train` stay there).

pub mod client;
pub mod remote_run;
pub mod search;
pub mod sender;
pub mod spool;
pub mod store;

pub use client::Client;
pub use spool::{Drained, SyncReport};
pub use store::RestStore;

use crate::Result;
use std::path::PathBuf;

/// Overrides where runs on a server keep their local files (spool, artifact copies).
pub const LOCAL_DIR_ENV: &str = "HETEROLORA_SPOOL_DIR";

/// The local folder of the runs on server `url`: `$HETEROLORA_SPOOL_DIR`, else
/// `tracking/remote/<host>_<port>/` under the current directory.
pub fn local_dir(url: &str) -> PathBuf {
    if let Some(d) = std::env::var_os(LOCAL_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let host = url
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(url)
        .split('/')
        .next()
        .unwrap_or("server");
    let safe: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from("tracking/remote").join(safe)
}

/// Send every spooled request of the server behind `store` (`heterolora runs sync`).
pub fn sync(store: &RestStore) -> Result<Vec<SyncReport>> {
    spool::sync_dir(store.client(), &store.local_root().join("spool"))
}
