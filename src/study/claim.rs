//! Claims: several workers (`--jobs N`, Slurm array tasks, two shells) may run one study at once,
//! and none may train a child that another is training or has finished.
//!
//! The claim is the child run itself, recorded in the tracker before any work: tagged with the
//! child's key, the worker (`host:pid:token`) and the claim time. A claimant writes its run,
//! waits a short settle time (so that claims written at the same moment are visible to each
//! other), then reads every run of that key: a FINISHED one means the child is done; among the
//! live RUNNING claims the earliest (claim time, then run id) wins and the others end KILLED,
//! tagged with the winner. This needs nothing but create, tag and search, so it works the same on
//! the SQLite store and on an MLflow server, which has no compare-and-swap.
//!
//! A claim whose worker died (a killed process, a Slurm task past its time limit) stays RUNNING
//! in the tracker; it is stale, and is reclaimed (ended KILLED), when its worker ran on this host
//! and the process is gone, or when its last heartbeat (the training refreshes
//! `study.heartbeat_ms`) is older than [`ClaimPolicy::stale_after`].

use super::config::KIND_CHILD;
use crate::tracking::entities::now_ms;
use crate::tracking::{Run, RunLogger, RunStatus, RunTable, Tracker};
use crate::Result;
use std::path::Path;
use std::time::{Duration, Instant};

/// Tag: who holds a child's claim (`host:pid:token`).
pub const TAG_WORKER: &str = "study.worker";
/// Tag: when the claim was written (epoch ms).
pub const TAG_CLAIM_MS: &str = "study.claim_ms";
/// Tag: the last sign of life of the claim's worker (epoch ms).
pub const TAG_HEARTBEAT_MS: &str = "study.heartbeat_ms";
/// Tag on a claim that lost: the run that holds the child.
pub const TAG_LOST_TO: &str = "study.claim_lost_to";

/// How claims are decided.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `settle` | 1 s | wait between writing a claim and reading the competing ones |
/// | `stale_after` | 1 h | a RUNNING claim without a heartbeat for this long is reclaimed |
/// | `heartbeat_every` | 60 s | how often a training child refreshes its heartbeat |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClaimPolicy {
    pub settle: Duration,
    pub stale_after: Duration,
    pub heartbeat_every: Duration,
}

impl Default for ClaimPolicy {
    fn default() -> Self {
        ClaimPolicy {
            settle: Duration::from_secs(1),
            stale_after: Duration::from_secs(3600),
            heartbeat_every: Duration::from_secs(60),
        }
    }
}

/// This worker: host, process and a token that tells threads of one process apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    pub host: String,
    pub pid: u32,
    pub token: String,
}

impl Worker {
    /// The current process, with a fresh token.
    pub fn current() -> Worker {
        Worker {
            host: hostname(),
            pid: std::process::id(),
            token: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
        }
    }

    /// `host:pid:token`, the value of [`TAG_WORKER`].
    pub fn id(&self) -> String {
        format!("{}:{}:{}", self.host, self.pid, self.token)
    }

    /// Parses [`Worker::id`]; `None` for anything else.
    pub fn parse(id: &str) -> Option<Worker> {
        let mut it = id.rsplitn(3, ':');
        let token = it.next()?.to_string();
        let pid = it.next()?.parse().ok()?;
        let host = it.next()?.to_string();
        Some(Worker { host, pid, token })
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it or
    // truncates, and we stop at the first NUL.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Whether process `pid` exists on this host.
fn process_alive(pid: u32) -> bool {
    if Path::new("/proc").is_dir() {
        return Path::new(&format!("/proc/{pid}")).exists();
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The outcome of [`claim`].
#[derive(Debug)]
pub enum Claim {
    /// This worker holds the child: train it on this run.
    Won(Run),
    /// The child is finished (run id).
    Done(String),
    /// Another live worker holds it (run id, worker).
    Busy(String, String),
}

/// One run of a child's key as a claim.
#[derive(Debug, Clone)]
struct Holder {
    run_id: String,
    status: String,
    worker: Option<Worker>,
    claim_ms: i64,
    heartbeat_ms: i64,
}

impl Holder {
    fn stale(&self, me: &Worker, policy: &ClaimPolicy, now: i64) -> bool {
        if let Some(w) = &self.worker {
            if w.host == me.host && !process_alive(w.pid) {
                return true;
            }
        }
        now - self.heartbeat_ms.max(self.claim_ms) > policy.stale_after.as_millis() as i64
    }
}

fn holders(tracker: &Tracker, experiment: &str, key: &str) -> Result<Vec<Holder>> {
    let exp = tracker.experiment(experiment)?;
    let t = exp.search_runs(
        // Not by `heterolora.kind`: the trainer tags its run `train` while it trains.
        &format!("tags.`study.key` = '{}'", key.replace('\'', "\\'")),
        &[],
    )?;
    let starts = ints(&t, "start_time");
    let parse = |v: Option<String>| v.and_then(|s| s.parse::<i64>().ok());
    Ok(t.run_ids()
        .into_iter()
        .zip(t.strings("status"))
        .zip(t.strings(&format!("tags.{TAG_WORKER}")))
        .zip(t.strings(&format!("tags.{TAG_CLAIM_MS}")))
        .zip(t.strings(&format!("tags.{TAG_HEARTBEAT_MS}")))
        .zip(starts)
        .map(|(((((run_id, status), worker), claim), beat), start)| {
            let claim_ms = parse(claim).or(start).unwrap_or(0);
            Holder {
                run_id,
                status: status.unwrap_or_default(),
                worker: worker.as_deref().and_then(Worker::parse),
                claim_ms,
                heartbeat_ms: parse(beat).unwrap_or(claim_ms),
            }
        })
        .collect())
}

fn ints(t: &RunTable, column: &str) -> Vec<Option<i64>> {
    match t.df().column(column).and_then(|c| c.i64()) {
        Ok(ca) => ca.iter().collect(),
        Err(_) => vec![None; t.len()],
    }
}

/// Reads the claims on `key`: the finished run, or the live holders (stale ones are ended
/// KILLED on the way), earliest claim first.
fn live_holders(
    tracker: &Tracker,
    experiment: &str,
    key: &str,
    me: &Worker,
    policy: &ClaimPolicy,
) -> Result<std::result::Result<Vec<Holder>, String>> {
    let all = holders(tracker, experiment, key)?;
    if let Some(done) = all.iter().find(|h| h.status == "FINISHED") {
        return Ok(Err(done.run_id.clone()));
    }
    let now = now_ms();
    let mut live = Vec::new();
    for h in all.into_iter().filter(|h| h.status == "RUNNING") {
        if h.stale(me, policy, now) {
            // Ended so that neither this worker nor the report sees it as in progress again.
            tracker.set_terminated(&h.run_id, RunStatus::Killed)?;
        } else {
            live.push(h);
        }
    }
    live.sort_by(|a, b| (a.claim_ms, &a.run_id).cmp(&(b.claim_ms, &b.run_id)));
    Ok(Ok(live))
}

/// Claims child `key` of the study whose parent run is `parent_run_id`: writes this worker's
/// claim as the child run `run_name` (nested under the parent) unless the child is finished or
/// held by a live worker, then settles the race (see the module docs).
pub fn claim(
    tracker: &Tracker,
    experiment: &str,
    parent_run_id: &str,
    run_name: &str,
    key: &str,
    me: &Worker,
    policy: &ClaimPolicy,
) -> Result<Claim> {
    match live_holders(tracker, experiment, key, me, policy)? {
        Err(done) => return Ok(Claim::Done(done)),
        Ok(live) => {
            if let Some(h) = live.first() {
                let who = h.worker.as_ref().map(Worker::id).unwrap_or_default();
                return Ok(Claim::Busy(h.run_id.clone(), who));
            }
        }
    }
    let mut run = tracker.experiment(experiment)?.start_run(run_name)?;
    let claim_ms = now_ms().to_string();
    run.set_tags(&[
        (crate::tracking::tags::PARENT_RUN_ID, parent_run_id),
        ("heterolora.kind", KIND_CHILD),
        ("study.key", key),
        (TAG_WORKER, me.id().as_str()),
        (TAG_CLAIM_MS, claim_ms.as_str()),
        (TAG_HEARTBEAT_MS, claim_ms.as_str()),
    ])?;
    run.flush()?;
    std::thread::sleep(policy.settle);
    let lose = |mut run: Run, winner: &str| -> Result<()> {
        run.set_tag(TAG_LOST_TO, winner)?;
        run.end(RunStatus::Killed)
    };
    match live_holders(tracker, experiment, key, me, policy)? {
        Err(done) => {
            lose(run, &done)?;
            Ok(Claim::Done(done))
        }
        Ok(live) => match live.first() {
            Some(h) if h.run_id != run.run_id() => {
                let (id, who) = (
                    h.run_id.clone(),
                    h.worker.as_ref().map(Worker::id).unwrap_or_default(),
                );
                lose(run, &id)?;
                Ok(Claim::Busy(id, who))
            }
            _ => Ok(Claim::Won(run)),
        },
    }
}

/// Forwards to a child run and refreshes its heartbeat tag at most every
/// [`ClaimPolicy::heartbeat_every`], whenever the training logs metrics.
pub struct Heartbeat<'a> {
    inner: &'a mut dyn RunLogger,
    every: Duration,
    last: Instant,
}

impl<'a> Heartbeat<'a> {
    pub fn new(inner: &'a mut dyn RunLogger, every: Duration) -> Self {
        Heartbeat {
            inner,
            every,
            last: Instant::now(),
        }
    }
}

impl RunLogger for Heartbeat<'_> {
    fn log_params(&mut self, params: &[(String, String)]) -> Result<()> {
        self.inner.log_params(params)
    }
    fn log_metrics(&mut self, metrics: &[(String, f64)], step: i64) -> Result<()> {
        if self.last.elapsed() >= self.every {
            self.last = Instant::now();
            self.inner
                .set_tags(&[(TAG_HEARTBEAT_MS.into(), now_ms().to_string())])?;
        }
        self.inner.log_metrics(metrics, step)
    }
    fn set_tags(&mut self, tags: &[(String, String)]) -> Result<()> {
        self.inner.set_tags(tags)
    }
    fn log_artifact(&mut self, local_path: &Path, artifact_dir: Option<&str>) -> Result<()> {
        self.inner.log_artifact(local_path, artifact_dir)
    }
    fn log_text(&mut self, text: &str, artifact_file: &str) -> Result<()> {
        self.inner.log_text(text, artifact_file)
    }
    fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }
    fn end(&mut self, status: RunStatus) -> Result<()> {
        self.inner.end(status)
    }
    fn run_id(&self) -> Option<String> {
        self.inner.run_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_ids_round_trip_and_hosts_with_colons_survive() {
        let w = Worker {
            host: "node:7".into(),
            pid: 42,
            token: "abcd".into(),
        };
        assert_eq!(Worker::parse(&w.id()), Some(w));
        assert_eq!(Worker::parse("nonsense"), None);
        let me = Worker::current();
        assert_eq!(me.pid, std::process::id());
        assert!(!me.host.is_empty());
    }

    #[test]
    fn liveness_sees_this_process_and_not_a_finished_one() {
        assert!(process_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_alive(pid));
    }

    fn holder(worker: Option<Worker>, claim_ms: i64, heartbeat_ms: i64) -> Holder {
        Holder {
            run_id: "r".into(),
            status: "RUNNING".into(),
            worker,
            claim_ms,
            heartbeat_ms,
        }
    }

    #[test]
    fn staleness_by_dead_process_on_this_host_or_by_old_heartbeat() {
        let me = Worker::current();
        let p = ClaimPolicy::default();
        let now = now_ms();
        let alive = holder(Some(me.clone()), now, now);
        assert!(!alive.stale(&me, &p, now));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let dead = Worker {
            pid: dead_pid,
            ..me.clone()
        };
        assert!(holder(Some(dead.clone()), now, now).stale(&me, &p, now));
        // On another host the process cannot be checked: only the heartbeat counts.
        let remote = Worker {
            host: format!("{}-elsewhere", me.host),
            ..dead
        };
        assert!(!holder(Some(remote.clone()), now, now).stale(&me, &p, now));
        let old = now - p.stale_after.as_millis() as i64 - 1;
        assert!(holder(Some(remote.clone()), old, old).stale(&me, &p, now));
        // A recent heartbeat keeps an old claim alive.
        assert!(!holder(Some(remote), old, now).stale(&me, &p, now));
        // A claim without a worker (written by an older version) goes by its start time.
        assert!(holder(None, old, old).stale(&me, &p, now));
        assert!(!holder(None, now, now).stale(&me, &p, now));
    }
}
