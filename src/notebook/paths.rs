//! How notebooks name things in their saved outputs: paths relative to the notebook's folder (so
//! that no machine's folders are committed) and search spaces by their kinds' short names.

use crate::adapters::SearchSpace;
use std::path::Path;

/// `path` relative to `base` or to one of its two parent folders (`../x`, `../../x`), else as it
/// is: how notebooks print paths, so that their saved outputs name no machine's folders.
pub fn relative_path(path: &Path, base: &Path) -> String {
    for (ups, dir) in base.ancestors().take(3).enumerate() {
        if dir.parent().is_none() {
            break; // never relative to the file-system root
        }
        if let Ok(rest) = path.strip_prefix(dir) {
            let mut s = "../".repeat(ups);
            s.push_str(&rest.display().to_string());
            if s.is_empty() {
                s.push('.');
            }
            return s.trim_end_matches('/').to_string();
        }
    }
    path.display().to_string()
}

/// `path` as [`relative_path`] shows it from the working directory (a notebook's folder).
pub fn display_path(path: &Path) -> String {
    match std::env::current_dir() {
        Ok(cwd) if path.is_absolute() => relative_path(path, &cwd),
        _ => path.display().to_string(),
    }
}

/// `q,v` for the LoRA query/value space: the kinds' short names.
pub fn space_name(space: &SearchSpace) -> String {
    space
        .kinds
        .iter()
        .map(|k| k.short())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn paths_are_shown_relative_to_the_notebook_folder() {
        let t = std::env::temp_dir();
        let base = t.join("u/proj/notebooks");
        let rel = |p: PathBuf| relative_path(&p, &base);
        assert_eq!(
            rel(t.join("u/proj/notebooks/tracking/mlflow.db")),
            "tracking/mlflow.db"
        );
        assert_eq!(rel(t.join("u/proj/datasets/glue")), "../datasets/glue");
        assert_eq!(rel(t.join("u/other/x")), "../../other/x");
        assert_eq!(rel(t.join("u/proj/notebooks")), ".");
        let outside = t.join("models/m");
        assert_eq!(
            rel(outside.clone()),
            outside.display().to_string(),
            "not below the two parents"
        );
        assert_eq!(relative_path(Path::new("/a/b"), Path::new("/a")), "b");
        assert_eq!(
            relative_path(Path::new("/x/y"), Path::new("/a")),
            "/x/y",
            "never relative to the root"
        );
    }
}
