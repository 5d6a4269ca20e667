//! The spool: what a run could not send to the server, one JSON request per line, one file per
//! run (`<local dir>/spool/<run_id>.jsonl`), sent in order when the server answers again.
//!
//! The process logging a run holds an exclusive `flock` on its spool file, so that
//! `heterolora runs sync` in another process leaves a live run's spool to that run.

use super::client::{CallError, Client, Retry};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// One request to the server, as spooled.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Request {
    /// A tracking API call: POST `path` (under `/api/2.0/mlflow/`) with `body`.
    Api { path: String, body: Value },
    /// An artifact upload: the local `file` to `path` under the artifact proxy.
    Artifact { path: String, file: PathBuf },
}

impl Request {
    /// Send it once under `retry`.
    pub fn send(&self, client: &Client, retry: Retry) -> std::result::Result<(), CallError> {
        match self {
            Request::Api { path, body } => client
                .call("POST", path, &[], Some(body), retry)
                .map(|_| ()),
            Request::Artifact { path, file } => client.put_artifact(path, file, retry),
        }
    }

    /// A short description for messages.
    pub fn describe(&self) -> String {
        match self {
            Request::Api { path, .. } => format!("POST {path}"),
            Request::Artifact { path, .. } => format!("artifact upload {path}"),
        }
    }
}

/// What draining a spool did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Drained {
    /// Requests the server accepted.
    pub sent: usize,
    /// Requests the server refused (4xx), with its reason; dropped from the spool.
    pub rejected: Vec<String>,
    /// Requests still spooled (the server stopped answering again).
    pub left: usize,
}

/// One run's spool file.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    /// Open and locked while the spool has lines.
    file: Option<File>,
}

fn lock(file: &File) -> bool {
    // SAFETY: flock on a file descriptor we own; no memory is shared.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

fn open_rw(path: &Path, create: bool) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(create)
        .open(path)
}

impl Spool {
    /// The spool at `path`; an existing file (left by an earlier process) is locked and kept.
    pub fn open(path: PathBuf) -> Result<Spool> {
        let mut s = Spool { path, file: None };
        if s.path.exists() {
            s.acquire(false)?;
        }
        Ok(s)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether requests are waiting in the file.
    pub fn has_lines(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| m.len() > 0)
    }

    fn acquire(&mut self, create: bool) -> Result<()> {
        if self.file.is_some() {
            return Ok(());
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let f = open_rw(&self.path, create).map_err(|e| Error::io(&self.path, e))?;
        if !lock(&f) {
            return Err(Error::Tracking(format!(
                "{} is in use by another process (a run still logging, or `heterolora runs sync`); \
                 wait for it to finish",
                self.path.display()
            )));
        }
        self.file = Some(f);
        Ok(())
    }

    /// Append one request (flushed to the file at once).
    pub fn append(&mut self, req: &Request) -> Result<()> {
        self.acquire(true)?;
        let mut line = serde_json::to_string(req)?;
        line.push('\n');
        let f = self.file.as_mut().expect("acquired");
        f.write_all(line.as_bytes())
            .and_then(|_| f.flush())
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Send the spooled requests in order under `retry`; stops at the first that finds the
    /// server unreachable and keeps it and the rest. Removes the file once it is empty.
    pub fn drain(&mut self, client: &Client, retry: Retry) -> Result<Drained> {
        let mut out = Drained::default();
        if !self.path.exists() {
            self.file = None;
            return Ok(out);
        }
        self.acquire(false)?;
        let text = std::fs::read_to_string(&self.path).map_err(|e| Error::io(&self.path, e))?;
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut stop = lines.len();
        for (i, line) in lines.iter().enumerate() {
            let req: Request = match serde_json::from_str(line) {
                Ok(r) => r,
                Err(e) => {
                    out.rejected
                        .push(format!("line {} of {}: {e}", i + 1, self.path.display()));
                    continue;
                }
            };
            match req.send(client, retry) {
                Ok(()) => out.sent += 1,
                Err(CallError::Unreachable(_)) => {
                    stop = i;
                    break;
                }
                Err(e) => {
                    out.rejected
                        .push(format!("{}: {}", req.describe(), client.error("it", e)))
                }
            }
        }
        out.left = lines.len() - stop;
        if out.left == 0 {
            // Removed while locked: a waiting `runs sync` sees the file gone (inode check).
            std::fs::remove_file(&self.path).map_err(|e| Error::io(&self.path, e))?;
            self.file = None;
        } else {
            let mut rest = lines[stop..].join("\n");
            rest.push('\n');
            let f = self.file.as_mut().expect("acquired");
            f.set_len(0)
                .and_then(|_| f.seek(SeekFrom::Start(0)).map(|_| ()))
                .and_then(|_| f.write_all(rest.as_bytes()))
                .and_then(|_| f.sync_data())
                .map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(out)
    }
}

/// What `heterolora runs sync` did with one spool file.
#[derive(Debug, Clone)]
pub struct SyncReport {
    pub run_id: String,
    pub file: PathBuf,
    /// `None` when the file was skipped (`skipped` says why).
    pub drained: Option<Drained>,
    pub skipped: Option<String>,
}

/// Send every spool file under `dir` (the `spool/` folder of one server), oldest first.
pub fn sync_dir(client: &Client, dir: &Path) -> Result<Vec<SyncReport>> {
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .map(|p| {
                let t = std::fs::metadata(&p)
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (t, p)
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
        Err(e) => return Err(Error::io(dir, e)),
    };
    files.sort();
    let mut out = Vec::new();
    for (_, path) in files {
        let run_id = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut report = SyncReport {
            run_id,
            file: path.clone(),
            drained: None,
            skipped: None,
        };
        let f = match open_rw(&path, false) {
            Ok(f) => f,
            Err(_) => continue, // sent and removed by its run meanwhile
        };
        if !lock(&f) {
            report.skipped =
                Some("its run is still logging in another process, which sends it itself".into());
            out.push(report);
            continue;
        }
        // The run may have emptied and removed the file between our open and our lock.
        let same = match (f.metadata(), std::fs::metadata(&path)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if !same {
            continue;
        }
        let mut spool = Spool {
            path: path.clone(),
            file: Some(f),
        };
        report.drained = Some(spool.drain(client, client.retry)?);
        out.push(report);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn spooled_requests_stay_in_order_while_the_server_is_away_and_the_file_is_locked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool").join("abc.jsonl");
        let mut s = Spool::open(path.clone()).unwrap();
        assert!(!s.has_lines());
        let reqs = [
            Request::Api {
                path: "runs/log-batch".into(),
                body: serde_json::json!({"run_id": "abc", "metrics": [{"key": "loss", "value": "NaN"}]}),
            },
            Request::Artifact {
                path: "1/abc/artifacts/x.txt".into(),
                file: dir.path().join("x.txt"),
            },
        ];
        for r in &reqs {
            s.append(r).unwrap();
        }
        assert!(s.has_lines());
        // Another opener cannot take the lock while this spool holds it.
        assert!(Spool::open(path.clone()).is_err());
        // Nobody listens on port 9: nothing is sent, nothing is lost.
        let c = Client::new("http://127.0.0.1:9");
        let once = Retry {
            tries: 1,
            first_wait: Duration::ZERO,
        };
        let d = s.drain(&c, once).unwrap();
        assert_eq!((d.sent, d.left), (0, 2));
        let back: Vec<Request> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, reqs);
        // `runs sync` skips a spool whose run still holds it.
        let r = sync_dir(&c, path.parent().unwrap()).unwrap();
        assert_eq!(r.len(), 1);
        assert!(r[0].skipped.is_some() && r[0].drained.is_none());
        drop(s);
        let r = sync_dir(&c, path.parent().unwrap()).unwrap();
        assert_eq!(r[0].drained.as_ref().unwrap().left, 2);
    }
}
