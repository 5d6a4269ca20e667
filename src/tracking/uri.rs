//! Where the tracker store lives: a path, an MLflow-style `sqlite:///` URI, an MLflow tracking
//! server (`http://host:port`, `https://...`), or the default.
//!
//! Resolution order used by [`resolve_location`]: an explicit argument, then the
//! `MLFLOW_TRACKING_URI` environment variable (MLflow's convention, so that `mlflow ui` and our
//! tools agree), then [`DEFAULT_DB`] relative to the current directory.

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The default store, relative to the current directory.
pub const DEFAULT_DB: &str = "tracking/mlflow.db";
/// MLflow's environment variable naming the tracking store.
pub const TRACKING_URI_ENV: &str = "MLFLOW_TRACKING_URI";

/// A tracker store: a local SQLite file or an MLflow tracking server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local SQLite file.
    Sqlite(PathBuf),
    /// An MLflow tracking server's base URL (`http(s)://host[:port][/prefix]`, no trailing `/`).
    Server(String),
}

/// A path, `sqlite:///` URI or `http(s)://` server URL as a [`Location`].
pub fn parse_location(uri: &str) -> Result<Location> {
    let t = uri.trim();
    let lower = t.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        let (scheme, rest) = t.split_once("://").expect("checked");
        let host = rest.split('/').next().unwrap_or("");
        if host.is_empty() {
            return Err(Error::Tracking(format!(
                "tracking URI `{t}` names no host: give the MLflow server as `{scheme}://host:port`"
            )));
        }
        let url = format!("{}://{}", scheme.to_ascii_lowercase(), rest);
        return Ok(Location::Server(url.trim_end_matches('/').to_string()));
    }
    parse(t).map(Location::Sqlite)
}

/// The store from an explicit argument, else `MLFLOW_TRACKING_URI`, else [`DEFAULT_DB`].
pub fn resolve_location(explicit: Option<&str>) -> Result<Location> {
    if let Some(u) = explicit {
        return parse_location(u);
    }
    match std::env::var(TRACKING_URI_ENV) {
        Ok(u) if !u.trim().is_empty() => parse_location(&u).map_err(|e| {
            Error::Tracking(format!(
                "{e} (from the {TRACKING_URI_ENV} environment variable; unset it to use {DEFAULT_DB})"
            ))
        }),
        _ => Ok(Location::Sqlite(PathBuf::from(DEFAULT_DB))),
    }
}

/// Turn a path or URI into the SQLite file path.
///
/// Accepted: a plain path (`tracking/mlflow.db`), `sqlite:///relative/x.db` (MLflow: three slashes
/// then a relative path), `sqlite:////abs/x.db` (four slashes: absolute) and `file:` paths to a
/// `.db` file. Other schemes are refused with a clear message (`http(s)://` servers are
/// [`parse_location`]'s).
pub fn parse(uri: &str) -> Result<PathBuf> {
    let uri = uri.trim();
    if uri.is_empty() {
        return Err(Error::Tracking(
            "empty tracking URI: give a path such as `tracking/mlflow.db` or `sqlite:///tracking/mlflow.db`".into(),
        ));
    }
    if let Some(rest) = uri.strip_prefix("sqlite://") {
        // SQLAlchemy: sqlite:///rel.db is relative, sqlite:////abs.db is absolute.
        let rest = rest.strip_prefix('/').ok_or_else(|| {
            Error::Tracking(format!(
                "tracking URI `{uri}`: expected `sqlite:///<path>` (three slashes, then the path)"
            ))
        })?;
        let rest = rest.split('?').next().unwrap_or(rest);
        if rest.is_empty() || rest == ":memory:" {
            return Err(Error::Tracking(format!(
                "tracking URI `{uri}` names no file: the tracker needs a file path (runs must survive the process)"
            )));
        }
        return Ok(PathBuf::from(rest));
    }
    if let Some(rest) = uri.strip_prefix("file://") {
        return Ok(PathBuf::from(rest));
    }
    if let Some((scheme, _)) = uri.split_once("://") {
        return Err(Error::Tracking(format!(
            "tracking URI `{uri}`: scheme `{scheme}` is not supported; use a local SQLite file (e.g. \
             `sqlite:///tracking/mlflow.db`) or an MLflow tracking server (`http://host:port` or `https://...`)"
        )));
    }
    Ok(PathBuf::from(uri))
}

/// The store path from an explicit argument, else `MLFLOW_TRACKING_URI`, else [`DEFAULT_DB`].
///
/// An `MLFLOW_TRACKING_URI` that is not a SQLite URI or path (e.g. an MLflow server's `http://`
/// address) is an error rather than silently ignored: the user asked for that store.
pub fn resolve(explicit: Option<&str>) -> Result<PathBuf> {
    if let Some(u) = explicit {
        return parse(u);
    }
    match std::env::var(TRACKING_URI_ENV) {
        Ok(u) if !u.trim().is_empty() => parse(&u).map_err(|e| {
            Error::Tracking(format!(
                "{e} (from the {TRACKING_URI_ENV} environment variable; unset it to use {DEFAULT_DB})"
            ))
        }),
        _ => Ok(PathBuf::from(DEFAULT_DB)),
    }
}

/// The `sqlite:///` URI MLflow accepts for `path` (absolute when possible).
pub fn to_uri(path: &Path) -> String {
    let abs = absolute(path);
    format!("sqlite:///{}", abs.display())
}

/// `path` made absolute against the current directory, without touching the file system.
pub fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mlflow_sqlite_uris_and_paths() {
        assert_eq!(
            parse("sqlite:///tracking/mlflow.db").unwrap(),
            PathBuf::from("tracking/mlflow.db")
        );
        // An absolute path (the temp folder's: any absolute path will do).
        let abs = std::env::temp_dir().join("x.db");
        let a = abs.to_string_lossy();
        assert!(a.starts_with('/'), "{a}");
        assert_eq!(parse(&format!("sqlite:///{a}")).unwrap(), abs);
        assert_eq!(parse(&a).unwrap(), abs);
        assert_eq!(parse(&format!("file://{a}")).unwrap(), abs);
        assert!(parse("postgresql://localhost/x")
            .unwrap_err()
            .to_string()
            .contains("not supported"));
        assert_eq!(
            parse_location("http://127.0.0.1:5000/").unwrap(),
            Location::Server("http://127.0.0.1:5000".into())
        );
        assert_eq!(
            parse_location("HTTPS://mlflow.example.org").unwrap(),
            Location::Server("https://mlflow.example.org".into())
        );
        assert!(parse_location("http://").is_err());
        let e = parse_location("ftp://x/y").unwrap_err().to_string();
        assert!(e.contains("`ftp`") && e.contains("http://host:port"), "{e}");
        assert_eq!(
            parse_location("tracking/mlflow.db").unwrap(),
            Location::Sqlite(PathBuf::from("tracking/mlflow.db"))
        );
        assert!(parse("sqlite://").is_err());
        assert!(parse("sqlite:///:memory:").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn uri_of_absolute_path_has_four_slashes() {
        let abs = std::env::temp_dir().join("a.db");
        assert_eq!(
            to_uri(&abs),
            format!(
                "sqlite:////{}",
                abs.to_string_lossy().trim_start_matches('/')
            )
        );
    }
}
