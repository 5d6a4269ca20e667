//! Learning-rate schedules, as a pure function of the optimiser step.
//!
//! Steps count optimiser updates (after gradient accumulation), starting at 0 for the first
//! update. A schedule is evaluated from `(step, total_steps)` alone, so a resumed run recomputes
//! exactly the rate an uninterrupted one would have used.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The shape of the learning rate over training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// `lr` at every step, after the warm-up (if any).
    Constant,
    /// Linear warm-up from 0 to `lr`, then linear decay to 0 at the last step (Hugging Face's
    /// `get_linear_schedule_with_warmup`).
    #[default]
    Linear,
}

impl Schedule {
    pub fn as_str(self) -> &'static str {
        match self {
            Schedule::Constant => "constant",
            Schedule::Linear => "linear",
        }
    }

    /// Learning rate for optimiser step `step` (0-based) out of `total_steps`, with `warmup_steps`
    /// of linear warm-up. With a warm-up the first step uses `base_lr / warmup_steps`, never 0,
    /// so that no update is wasted (Hugging Face computes `(step + 1) / warmup` the same way for
    /// the step it is about to take).
    pub fn lr_at(self, base_lr: f64, step: usize, total_steps: usize, warmup_steps: usize) -> f64 {
        let s = step as f64;
        if warmup_steps > 0 && step < warmup_steps {
            return base_lr * (s + 1.0) / warmup_steps as f64;
        }
        match self {
            Schedule::Constant => base_lr,
            Schedule::Linear => {
                let decay = total_steps.saturating_sub(warmup_steps).max(1) as f64;
                let done = (step - warmup_steps.min(step)) as f64;
                base_lr * ((decay - done) / decay).max(0.0)
            }
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Schedule {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "constant" | "none" => Ok(Schedule::Constant),
            "linear" | "linear-warmup" | "linear_warmup" => Ok(Schedule::Linear),
            other => Err(Error::invalid("schedule", other, "constant or linear")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_warms_up_then_decays_to_zero() {
        let s = Schedule::Linear;
        let lrs: Vec<f64> = (0..10).map(|t| s.lr_at(1.0, t, 10, 2)).collect();
        // Warm-up: 0.5, 1.0; then decay over 8 steps: 1.0, 0.875, ..., 0.125.
        assert!((lrs[0] - 0.5).abs() < 1e-12, "{lrs:?}");
        assert!((lrs[1] - 1.0).abs() < 1e-12, "{lrs:?}");
        assert!((lrs[2] - 1.0).abs() < 1e-12, "{lrs:?}");
        assert!((lrs[3] - 0.875).abs() < 1e-12, "{lrs:?}");
        assert!((lrs[9] - 0.125).abs() < 1e-12, "{lrs:?}");
        // Strictly decreasing after the peak, never negative even past the end.
        for w in lrs[2..].windows(2) {
            assert!(w[1] < w[0], "{lrs:?}");
        }
        assert_eq!(s.lr_at(1.0, 10, 10, 2), 0.0);
        assert_eq!(s.lr_at(1.0, 50, 10, 2), 0.0);
    }

    #[test]
    fn constant_is_flat_after_warmup_and_linear_without_warmup_starts_at_peak() {
        let c = Schedule::Constant;
        assert!((c.lr_at(2e-4, 0, 100, 4) - 0.5e-4).abs() < 1e-15);
        assert_eq!(c.lr_at(2e-4, 4, 100, 4), 2e-4);
        assert_eq!(c.lr_at(2e-4, 99, 100, 0), 2e-4);
        let l = Schedule::Linear;
        assert_eq!(l.lr_at(1.0, 0, 4, 0), 1.0);
        assert_eq!(l.lr_at(1.0, 2, 4, 0), 0.5);
    }

    #[test]
    fn parses_names() {
        assert_eq!("Linear".parse::<Schedule>().unwrap(), Schedule::Linear);
        assert_eq!("constant".parse::<Schedule>().unwrap(), Schedule::Constant);
        let e = "cosine".parse::<Schedule>().unwrap_err().to_string();
        assert!(e.contains("cosine") && e.contains("linear"), "{e}");
    }
}
