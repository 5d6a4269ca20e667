//! Stopping a run cleanly: a shared flag the trainer polls after every optimiser step.
//!
//! [`install_ctrlc`] makes Ctrl-C set the process-wide flag (the `ctrlc` crate allows one handler
//! per process, so it is installed once and shared). A second Ctrl-C while the first is being
//! handled exits at once, for a run stuck in a long step. In a notebook, call
//! [`StopFlag::stop`] from another cell or thread instead.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// A cloneable stop request.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn new() -> Self {
        Self::default()
    }
    /// Ask the run to stop after its current step.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    /// Ask for a stop `after` from now, as Ctrl-C would (a time limit: a run or a study
    /// checkpoints at its next step). A thread sleeps, then sets the flag unless it is set
    /// already; it cannot be cancelled, so use a fresh flag for a run that should not stop.
    pub fn stop_after(&self, after: std::time::Duration) {
        let flag = self.clone();
        std::thread::spawn(move || {
            std::thread::sleep(after);
            if !flag.is_set() {
                eprintln!(
                    "\ntime limit ({:.0} s) reached: stopping after the current step and saving a checkpoint",
                    after.as_secs_f64()
                );
                flag.stop();
            }
        });
    }
    /// Clear the request (before starting another run with the same flag).
    pub fn reset(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

static CTRLC: OnceLock<StopFlag> = OnceLock::new();
static PRESSES: AtomicUsize = AtomicUsize::new(0);

/// The process-wide flag set by Ctrl-C, installing the handler on first call. If another handler
/// is already installed (by the embedding program) the flag is returned without one.
pub fn install_ctrlc() -> StopFlag {
    CTRLC
        .get_or_init(|| {
            let flag = StopFlag::new();
            let f = flag.clone();
            let installed = ctrlc::set_handler(move || {
                if PRESSES.fetch_add(1, Ordering::SeqCst) >= 1 {
                    eprintln!("\nsecond interrupt: exiting without a checkpoint");
                    std::process::exit(130);
                }
                eprintln!("\ninterrupt: stopping after the current step and saving a checkpoint (Ctrl-C again to exit at once)");
                f.stop();
            });
            if let Err(e) = installed {
                eprintln!("warning: cannot install the Ctrl-C handler ({e}); Ctrl-C will not checkpoint");
            }
            flag
        })
        .clone()
}
