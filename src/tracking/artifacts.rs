//! Run artifacts: files under `<experiment artifact_location>/<run_id>/artifacts/`, where MLflow's
//! local artifact repository (UI, `list_artifacts`, `download_artifacts`) finds them.

use crate::{Error, Result};
use std::path::{Component, Path, PathBuf};

/// The local directory behind an artifact URI (a plain path or `file://` URI).
pub fn local_dir(uri: &str) -> Result<PathBuf> {
    if let Some(rest) = uri.strip_prefix("file://") {
        // file:///abs or file://localhost/abs
        let rest = rest.strip_prefix("localhost").unwrap_or(rest);
        return Ok(PathBuf::from(rest));
    }
    if uri.contains("://") || uri.starts_with("mlflow-artifacts:") {
        return Err(Error::Tracking(format!(
            "artifact location `{uri}` is not a local directory; this tracker writes artifacts to local paths only \
             (log this run in an experiment created by the tracker)"
        )));
    }
    Ok(PathBuf::from(uri))
}

/// Check that `rel` is a relative path that stays inside the artifact directory.
pub fn check_relative(rel: &str) -> Result<PathBuf> {
    let p = Path::new(rel);
    if rel.is_empty()
        || p.is_absolute()
        || p.components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(Error::Tracking(format!(
            "artifact path `{rel}` must be a relative path inside the run's artifacts (no `..`, not absolute)"
        )));
    }
    Ok(p.to_path_buf())
}

/// Write `bytes` to `dir/rel`, creating folders; written to a temporary file then renamed, so a
/// crash never leaves a half-written artifact under its final name.
pub fn write(dir: &Path, rel: &str, bytes: &[u8]) -> Result<PathBuf> {
    let rel = check_relative(rel)?;
    let dest = dir.join(rel);
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let tmp = dest.with_extension(format!(
        "{}tmp-{}",
        dest.extension()
            .map(|e| format!("{}.", e.to_string_lossy()))
            .unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
    Ok(dest)
}

/// Copy a file, or a directory recursively, to `dir/<artifact_dir>/<file name>`.
pub fn copy(dir: &Path, local: &Path, artifact_dir: Option<&str>) -> Result<PathBuf> {
    let name = local.file_name().ok_or_else(|| {
        Error::Tracking(format!(
            "cannot log `{}` as an artifact: it has no file name",
            local.display()
        ))
    })?;
    let base = match artifact_dir {
        Some(d) if !d.is_empty() && d != "." => dir.join(check_relative(d)?),
        _ => dir.to_path_buf(),
    };
    let dest = base.join(name);
    let meta = std::fs::metadata(local).map_err(|e| Error::io(local, e))?;
    if meta.is_dir() {
        copy_dir(local, &dest)?;
    } else {
        std::fs::create_dir_all(&base).map_err(|e| Error::io(&base, e))?;
        std::fs::copy(local, &dest).map_err(|e| Error::io(local, e))?;
    }
    Ok(dest)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| Error::io(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| Error::io(from, e))? {
        let entry = entry.map_err(|e| Error::io(from, e))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        if src.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| Error::io(&src, e))?;
        }
    }
    Ok(())
}

/// Relative paths of every file under `dir`, sorted; empty if `dir` does not exist.
pub fn list(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    if dir.is_dir() {
        walk(dir, dir, &mut out)?;
    }
    out.sort();
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = entry.map_err(|e| Error::io(dir, e))?.path();
        if p.is_dir() {
            walk(root, &p, out)?;
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_copies_and_lists_inside_the_run_dir_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run/artifacts");
        write(&dir, "notes/a.txt", b"hello").unwrap();
        let src = tmp.path().join("b.json");
        std::fs::write(&src, "{}").unwrap();
        copy(&dir, &src, Some("cfg")).unwrap();
        assert_eq!(list(&dir).unwrap(), vec!["cfg/b.json", "notes/a.txt"]);
        assert!(write(&dir, "../escape.txt", b"x").is_err());
        assert!(write(&dir, "/abs.txt", b"x").is_err());
        let abs = std::env::temp_dir().join("x");
        assert_eq!(
            local_dir(&format!("file://{}", abs.display())).unwrap(),
            abs
        );
        assert!(local_dir("s3://bucket/x").is_err());
    }
}
