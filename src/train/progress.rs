//! Training feedback: an indicatif bar in a terminal, plain lines elsewhere.
//!
//! In a terminal (and not `quiet`) a bar shows steps, ETA, loss, learning rate and examples per
//! second. When stderr is not a terminal (a notebook, `nohup`, CI) a bar would either vanish or
//! fill the log with carriage returns, so the same figures go out as one plain line per
//! evaluation, plus (unless `quiet`) a loss line about every 5% of the run.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// Where progress goes.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
    total: usize,
    line_every: usize,
}

impl Progress {
    /// Progress over `total_steps` optimiser steps, starting at `start_step` (a resumed run).
    pub fn new(total_steps: usize, start_step: usize, quiet: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bar = if !quiet && tty {
            let bar = ProgressBar::with_draw_target(
                Some(total_steps as u64),
                ProgressDrawTarget::stderr_with_hz(4),
            );
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps, ETA {eta} {msg}",
            )
            .expect("valid template");
            bar.set_style(style);
            bar.set_position(start_step as u64);
            bar.reset_eta();
            Some(bar)
        } else {
            None
        };
        Progress {
            bar,
            quiet,
            total: total_steps,
            line_every: (total_steps / 20).max(1),
        }
    }

    /// After optimiser step `step` (1-based count of steps done).
    pub fn step(&self, step: usize, loss: f64, lr: f64, examples_per_sec: f64) {
        let msg = format!("loss {loss:.4} lr {lr:.2e} {examples_per_sec:.1} ex/s");
        match &self.bar {
            Some(bar) => {
                bar.set_position(step as u64);
                bar.set_message(msg);
            }
            None if !self.quiet && (step % self.line_every == 0 || step == self.total) => {
                eprintln!("step {step}/{}: {msg}", self.total);
            }
            None => {}
        }
    }

    /// A line that must be seen in every mode (evaluations, checkpoints, warnings).
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// Remove the bar (the run's summary is printed by the caller).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
