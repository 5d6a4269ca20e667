//! `fetch glue`: put verified GLUE task folders under `<datasets>/glue/<TASK>/`.
//!
//! Sources, in order: a local GLUE folder (`--from DIR` or `HETEROLORA_GLUE_DIR`), else the
//! official archives that GLUE's `download_glue_data.py` downloads (MRPC is rebuilt from its
//! source files with that script's `format_mrpc` logic). Every file is checked against
//! `datasets/manifests/glue.json` (SHA-256 and row count) before it appears under its name.

use super::checksum::{copy_verified, write_verified};
use super::download::download;
use super::manifest::{glue_manifest, GlueFile};
use super::FetchStatus;
use crate::data::Task;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Provenance files copied along when the source has them (not verified: not data).
const EXTRAS: [&str; 3] = ["SOURCE.txt", "LICENSE.txt", "readme.txt"];

/// Where `fetch glue` puts things and where it may take them from.
#[derive(Debug, Clone)]
pub struct GlueFetchOptions {
    /// GLUE root to fill (`<datasets>/glue`).
    pub dest: PathBuf,
    /// A local GLUE root holding `<TASK>/` folders.
    pub from: Option<PathBuf>,
    /// Whether to download when there is no local source.
    pub online: bool,
    /// Where downloaded archives are kept (`<datasets>/.cache/glue`).
    pub cache: PathBuf,
    pub progress: bool,
}

impl Default for GlueFetchOptions {
    /// Destination `<datasets root>/glue`, source `HETEROLORA_GLUE_DIR` when set, online allowed.
    fn default() -> Self {
        let root = super::datasets_root();
        GlueFetchOptions {
            dest: root.join("glue"),
            from: std::env::var_os(super::GLUE_DIR_ENV).map(PathBuf::from),
            online: true,
            cache: root.join(".cache").join("glue"),
            progress: false,
        }
    }
}

/// What `fetch glue` did for one task.
#[derive(Debug, Clone)]
pub struct GlueFetchReport {
    pub task: Task,
    pub dir: PathBuf,
    pub status: FetchStatus,
    /// `(file, data rows)` of the verified files now in place.
    pub files: Vec<(String, usize)>,
}

impl std::fmt::Display for GlueFetchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let files: Vec<String> = self.files.iter().map(|(n, r)| format!("{n} {r}")).collect();
        write!(
            f,
            "{:<6} {}: {} [{}]",
            self.task.to_string(),
            self.status,
            self.dir.display(),
            files.join(", ")
        )
    }
}

/// Fetches the given tasks (all when empty).
pub fn fetch_glue(tasks: &[Task], opts: &GlueFetchOptions) -> Result<Vec<GlueFetchReport>> {
    let tasks: Vec<Task> = if tasks.is_empty() {
        Task::ALL.to_vec()
    } else {
        tasks.to_vec()
    };
    tasks.iter().map(|&t| fetch_task(t, opts)).collect()
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Whether `dir` holds every required file of `task`, verified. Present optional files must
/// verify too.
fn in_place(task: Task, dir: &Path) -> Result<Option<Vec<(String, usize)>>> {
    let mut files = Vec::new();
    for f in glue_manifest().files_for(task) {
        let p = dir.join(&f.file);
        if !p.is_file() {
            if f.required {
                return Ok(None);
            }
            continue;
        }
        match f.verify(&p) {
            Ok(()) => files.push((f.file.clone(), f.rows)),
            Err(_) => return Ok(None),
        }
    }
    Ok(Some(files))
}

fn fetch_task(task: Task, opts: &GlueFetchOptions) -> Result<GlueFetchReport> {
    let dest = opts.dest.join(task.dir_name());
    let report = |status, files| GlueFetchReport {
        task,
        dir: dest.clone(),
        status,
        files,
    };
    let had_files = dest.is_dir()
        && std::fs::read_dir(&dest)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
    if let Some(files) = in_place(task, &dest)? {
        return Ok(report(FetchStatus::AlreadyPresent, files));
    }
    let status = |source: String| {
        if had_files {
            FetchStatus::Repaired { source }
        } else {
            FetchStatus::Installed { source }
        }
    };
    if let Some(from) = &opts.from {
        let src = from.join(task.dir_name());
        if same_dir(&src, &dest) {
            // Verifying in place: find the first broken file and say what is wrong with it.
            for f in glue_manifest().files_for(task) {
                let p = dest.join(&f.file);
                if p.is_file() {
                    f.verify(&p)?;
                } else if f.required {
                    return Err(missing(task, &p));
                }
            }
        }
        let files = copy_task(task, &src, &dest)?;
        return Ok(report(status(src.display().to_string()), files));
    }
    if !opts.online {
        return Err(Error::Asset {
            what: format!("GLUE {task}"),
            reason: format!(
                "{} is missing or incomplete and downloads are off",
                dest.display()
            ),
            hint: format!(
                "Run `heterolora fetch glue {} --from DIR` with a GLUE folder, or allow downloads",
                task.name()
            ),
        });
    }
    let files = download_task(task, &dest, opts)?;
    Ok(report(status("official GLUE archive".into()), files))
}

fn missing(task: Task, p: &Path) -> Error {
    Error::Asset {
        what: format!("GLUE {task}"),
        reason: format!("{} does not exist", p.display()),
        hint: format!(
            "Point `--from` (or HETEROLORA_GLUE_DIR) at a GLUE folder with {}/",
            task.dir_name()
        ),
    }
}

/// Copies a task folder, verifying each file at the source first (so a bad source is named).
fn copy_task(task: Task, src: &Path, dest: &Path) -> Result<Vec<(String, usize)>> {
    if !src.is_dir() {
        return Err(missing(task, src));
    }
    let mut files = Vec::new();
    for f in glue_manifest().files_for(task) {
        let s = src.join(&f.file);
        if !s.is_file() {
            if f.required {
                return Err(missing(task, &s));
            }
            continue;
        }
        f.verify(&s)?;
        let d = dest.join(&f.file);
        if !(d.is_file() && f.verify(&d).is_ok()) {
            copy_verified(&s, &d, f.sha256.as_deref())?;
        }
        files.push((f.file.clone(), f.rows));
    }
    for extra in EXTRAS {
        let s = src.join(extra);
        let d = dest.join(extra);
        if s.is_file() && !d.exists() {
            copy_verified(&s, &d, None)?;
        }
    }
    Ok(files)
}

fn download_task(task: Task, dest: &Path, opts: &GlueFetchOptions) -> Result<Vec<(String, usize)>> {
    let m = glue_manifest();
    let mut files = Vec::new();
    if task == Task::Mrpc {
        let cache = opts.cache.join("MRPC");
        let get = |url: &str, name: &str| -> Result<Vec<u8>> {
            let p = cache.join(name);
            if !p.is_file() {
                download(url, &p, None, opts.progress)?;
            }
            std::fs::read(&p).map_err(|e| Error::io(&p, e))
        };
        let train = get(&m.mrpc.train, "msr_paraphrase_train.txt")?;
        let test = get(&m.mrpc.test, "msr_paraphrase_test.txt")?;
        let ids = get(&m.mrpc.dev_ids, "dev_ids.tsv")?;
        let utf8 = |b: Vec<u8>, n: &str| {
            String::from_utf8(b).map_err(|_| Error::parse(cache.join(n), 0, "not valid UTF-8"))
        };
        let (train_s, ids_s) = (
            utf8(train.clone(), "msr_paraphrase_train.txt")?,
            utf8(ids.clone(), "dev_ids.tsv")?,
        );
        let (tr, dv) = format_mrpc_train_dev(&train_s, &ids_s)?;
        let te = format_mrpc_test(&utf8(test, "msr_paraphrase_test.txt")?)?;
        let outputs: [(&str, &[u8]); 5] = [
            ("train.tsv", tr.as_bytes()),
            ("dev.tsv", dv.as_bytes()),
            ("test.tsv", te.as_bytes()),
            ("msr_paraphrase_train.txt", &train),
            ("dev_ids.tsv", &ids),
        ];
        for (name, bytes) in outputs {
            let f = m.file(task, name).expect("MRPC manifest lists its files");
            install_bytes(f, bytes, &dest.join(name), &cache.join(name))?;
            files.push((name.to_string(), f.rows));
        }
        return Ok(files);
    }
    let url = m
        .archives
        .get(task.dir_name())
        .ok_or_else(|| Error::Asset {
            what: format!("GLUE {task}"),
            reason: "the manifest has no archive address for it".into(),
            hint: "Use `--from DIR`".into(),
        })?;
    let zip_path = opts.cache.join(format!("{}.zip", task.dir_name()));
    if !zip_path.is_file() {
        download(url, &zip_path, None, opts.progress)?;
    }
    let file = std::fs::File::open(&zip_path).map_err(|e| Error::io(&zip_path, e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| Error::Asset {
        what: format!("GLUE {task} archive"),
        reason: format!("{} is not a readable zip: {e}", zip_path.display()),
        hint: "Delete it and fetch again".into(),
    })?;
    for f in m.files_for(task) {
        // `QNLI/train.tsv`, never `CoLA/original/...`.
        let entry = (0..zip.len()).find(|&i| {
            zip.name_for_index(i)
                .and_then(|n| n.ok())
                .map(|n| {
                    let parts: Vec<&str> = n.split('/').filter(|s| !s.is_empty()).collect();
                    parts.len() == 2 && parts[1] == f.file
                })
                .unwrap_or(false)
        });
        let Some(i) = entry else {
            if f.required {
                return Err(Error::Asset {
                    what: format!("GLUE {task} archive"),
                    reason: format!("{} has no {}", zip_path.display(), f.file),
                    hint: "Delete the archive and fetch again, or use `--from DIR`".into(),
                });
            }
            continue;
        };
        let mut bytes = Vec::new();
        let mut zf = zip.by_index(i).map_err(|e| Error::Asset {
            what: format!("GLUE {task} archive"),
            reason: e.to_string(),
            hint: "Delete the archive and fetch again".into(),
        })?;
        std::io::Read::read_to_end(&mut zf, &mut bytes).map_err(|e| Error::io(&zip_path, e))?;
        install_bytes(f, &bytes, &dest.join(&f.file), &zip_path.join(&f.file))?;
        files.push((f.file.clone(), f.rows));
    }
    Ok(files)
}

fn install_bytes(f: &GlueFile, bytes: &[u8], dest: &Path, source: &Path) -> Result<()> {
    f.verify_rows(source, bytes)?;
    write_verified(bytes, dest, f.sha256.as_deref(), source)?;
    Ok(())
}

/// GLUE's `format_mrpc`: splits `msr_paraphrase_train.txt` into `train.tsv` and `dev.tsv` by the
/// id pairs of `dev_ids.tsv`, keeping the header line (with its byte-order mark) and the file
/// order, and normalising each row as Python's `row.strip().split('\t')` does.
pub fn format_mrpc_train_dev(train_txt: &str, dev_ids_tsv: &str) -> Result<(String, String)> {
    let dev_ids: std::collections::HashSet<(String, String)> = py_lines(dev_ids_tsv)
        .filter_map(|l| {
            let v: Vec<&str> = l.trim().split('\t').collect();
            (v.len() == 2).then(|| (v[0].to_string(), v[1].to_string()))
        })
        .collect();
    let mut lines = py_lines(train_txt);
    let header = lines
        .next()
        .ok_or_else(|| Error::parse("msr_paraphrase_train.txt", 1, "the file is empty"))?;
    let (mut train, mut dev) = (format!("{header}\n"), format!("{header}\n"));
    for (i, row) in lines.enumerate() {
        let v: Vec<&str> = row.trim().split('\t').collect();
        if v.len() != 5 {
            return Err(Error::parse(
                "msr_paraphrase_train.txt",
                i + 2,
                format!("expected 5 tab-separated fields, found {}", v.len()),
            ));
        }
        let out = format!("{}\t{}\t{}\t{}\t{}\n", v[0], v[1], v[2], v[3], v[4]);
        if dev_ids.contains(&(v[1].to_string(), v[2].to_string())) {
            dev.push_str(&out);
        } else {
            train.push_str(&out);
        }
    }
    Ok((train, dev))
}

/// GLUE's `format_mrpc` for the test file: a fresh header and a running index.
pub fn format_mrpc_test(test_txt: &str) -> Result<String> {
    let mut out = String::from("index\t#1 ID\t#2 ID\t#1 String\t#2 String\n");
    for (i, row) in py_lines(test_txt).skip(1).enumerate() {
        let v: Vec<&str> = row.trim().split('\t').collect();
        if v.len() != 5 {
            return Err(Error::parse(
                "msr_paraphrase_test.txt",
                i + 2,
                format!("expected 5 tab-separated fields, found {}", v.len()),
            ));
        }
        out.push_str(&format!("{i}\t{}\t{}\t{}\t{}\n", v[1], v[2], v[3], v[4]));
    }
    Ok(out)
}

/// Lines as Python's text-mode iteration yields them (universal newlines), without the newline.
fn py_lines(s: &str) -> impl Iterator<Item = &str> {
    let s = s.strip_suffix('\n').unwrap_or(s);
    s.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|_| !s.is_empty())
}
