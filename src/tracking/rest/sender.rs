//! [`Sender`]: how one run's writes reach the server, off the training thread. Requests go, in
//! order, to a background thread that sends each at once (with retries). When the server stops
//! answering, the run goes offline: this and every later request go to the run's spool (order
//! kept) and training never waits for the server; the spool is sent at the next flush that finds
//! the server answering again (probed at an explicit flush, else at most every 5 s, then 10, 20,
//! up to 60 s), or by `heterolora runs sync`. A request the server refuses (4xx) is reported on
//! stderr and returned as an error by the next explicit flush or the run's end.

use super::client::{CallError, Client, Retry};
use super::spool::{Request, Spool};
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const FIRST_PROBE_WAIT: Duration = Duration::from_secs(5);
const MAX_PROBE_WAIT: Duration = Duration::from_secs(60);

enum Msg {
    Req(Request),
    /// Try the server if offline (always when `force`); answer on `done` once everything before
    /// this message is sent or spooled.
    Poll {
        force: bool,
        done: Option<mpsc::Sender<()>>,
    },
}

#[derive(Default)]
struct Shared {
    offline: AtomicBool,
    refused: Mutex<Vec<String>>,
}

/// One run's connection to the server, with its spool.
pub struct Sender {
    tx: Option<mpsc::Sender<Msg>>,
    worker: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    spool_path: PathBuf,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("spool", &self.spool_path)
            .field("offline", &self.is_offline())
            .finish()
    }
}

impl Sender {
    /// A sender for the run whose spool is `spool_path`; requests an earlier process left there
    /// are sent first, at the next flush. Fails if another process holds that spool.
    pub fn new(client: Client, spool_path: PathBuf) -> Result<Sender> {
        let spool = Spool::open(spool_path.clone())?;
        let shared = Arc::new(Shared::default());
        let offline = spool.has_lines();
        shared.offline.store(offline, Ordering::SeqCst);
        let mut w = Worker {
            client,
            spool,
            offline,
            next_probe: Instant::now(),
            probe_wait: FIRST_PROBE_WAIT,
            shared: shared.clone(),
        };
        let (tx, rx) = mpsc::channel::<Msg>();
        let worker = std::thread::Builder::new()
            .name("tracker-sender".into())
            .spawn(move || {
                for msg in rx {
                    match msg {
                        Msg::Req(r) => w.submit(r),
                        Msg::Poll { force, done } => {
                            w.poll(force);
                            if let Some(d) = done {
                                let _ = d.send(());
                            }
                        }
                    }
                }
            })
            .map_err(|e| {
                Error::Tracking(format!("cannot start the tracker's sender thread: {e}"))
            })?;
        Ok(Sender {
            tx: Some(tx),
            worker: Some(worker),
            shared,
            spool_path,
        })
    }

    /// Whether requests were waiting in the spool when the sender last looked.
    pub fn is_offline(&self) -> bool {
        self.shared.offline.load(Ordering::SeqCst)
    }

    pub fn spool_path(&self) -> &Path {
        &self.spool_path
    }

    fn send(&self, msg: Msg) -> Result<()> {
        self.tx
            .as_ref()
            .and_then(|t| t.send(msg).ok())
            .ok_or_else(|| Error::Tracking("the tracker's sender thread has stopped".into()))
    }

    /// Queue `req` (sent, or spooled while the server is away). Never waits for the server.
    pub fn submit(&mut self, req: Request) -> Result<()> {
        self.send(Msg::Req(req))
    }

    /// Wait until every queued request is sent or spooled, trying the server first if it was
    /// away. Returns an error naming the requests the server refused since the last call.
    pub fn flush(&mut self) -> Result<()> {
        let (done, wait) = mpsc::channel();
        self.send(Msg::Poll {
            force: true,
            done: Some(done),
        })?;
        let _ = wait.recv();
        self.take_refused()
    }

    fn take_refused(&self) -> Result<()> {
        let mut r = self
            .shared
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if r.is_empty() {
            return Ok(());
        }
        let all = std::mem::take(&mut *r);
        Err(Error::Tracking(format!(
            "the tracking server refused {} request(s): {}",
            all.len(),
            all.join("; ")
        )))
    }

    /// Send or spool everything queued and stop the thread.
    pub fn close(&mut self) -> Result<()> {
        self.tx = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
        self.take_refused()
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            eprintln!("tracker: {e}");
        }
    }
}

/// The sender thread's state.
struct Worker {
    client: Client,
    spool: Spool,
    offline: bool,
    next_probe: Instant,
    probe_wait: Duration,
    shared: Arc<Shared>,
}

impl Worker {
    fn set_offline(&mut self, v: bool) {
        self.offline = v;
        self.shared.offline.store(v, Ordering::SeqCst);
    }

    fn refused(&self, what: String) {
        eprintln!("tracker: {what}");
        self.shared
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(what);
    }

    fn spool(&mut self, req: &Request) {
        if let Err(e) = self.spool.append(req) {
            self.refused(format!(
                "{} could not be spooled, lost: {e}",
                req.describe()
            ));
        }
    }

    fn submit(&mut self, req: Request) {
        if self.offline {
            self.poll(false);
        }
        if self.offline {
            return self.spool(&req);
        }
        match req.send(&self.client, self.client.retry) {
            Ok(()) => {}
            Err(CallError::Unreachable(why)) => {
                eprintln!(
                    "tracker: MLflow server {} is not answering ({why}); the run goes on and keeps \
                     what it cannot send in {}, sent when the server answers again or by \
                     `heterolora runs sync`",
                    self.client.base(),
                    self.spool.path().display()
                );
                self.set_offline(true);
                self.next_probe = Instant::now() + FIRST_PROBE_WAIT;
                self.probe_wait = FIRST_PROBE_WAIT;
                self.spool(&req);
            }
            Err(e) => {
                let msg = self.client.error(&req.describe(), e).to_string();
                self.refused(msg);
            }
        }
    }

    fn poll(&mut self, force: bool) {
        if !self.offline || (!force && Instant::now() < self.next_probe) {
            return;
        }
        let once = Retry {
            tries: 1,
            first_wait: Duration::ZERO,
        };
        match self.spool.drain(&self.client, once) {
            Ok(d) => {
                for r in d.rejected {
                    self.refused(format!("a spooled request was refused and dropped: {r}"));
                }
                if d.left == 0 {
                    self.set_offline(false);
                    if d.sent > 0 {
                        eprintln!(
                            "tracker: MLflow server {} answers again; sent {} spooled request(s)",
                            self.client.base(),
                            d.sent
                        );
                    }
                    return;
                }
            }
            Err(e) => eprintln!("tracker: spool {}: {e}", self.spool.path().display()),
        }
        self.next_probe = Instant::now() + self.probe_wait;
        self.probe_wait = (self.probe_wait * 2).min(MAX_PROBE_WAIT);
    }
}
