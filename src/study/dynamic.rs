//! A thin [`TrainHook`] over [`crate::train::dynamic::DynamicReallocator`]: the proxy module gives
//! the re-allocation, the trainer gives the hook point; this connects them for the study and for
//! `heterolora run`.

use crate::model::SequenceClassifier;
use crate::search::{Allocation, ReallocationLog};
use crate::train::dynamic::DynamicReallocator;
use crate::train::{HookState, TrainHook};
use crate::Result;
use std::sync::{Arc, Mutex};

/// Re-allocates whenever the reallocator's schedule is due.
pub struct DynamicHook {
    pub inner: DynamicReallocator,
    /// The step-0 allocation was already made before the trainer was built (so the trainer starts
    /// from it and logs its parameter count): skip the schedule's step-0 point once.
    pub skip_step0: bool,
    /// A copy of the re-allocation log, readable after the trainer has taken the hook.
    pub shared: Arc<Mutex<ReallocationLog>>,
}

impl DynamicHook {
    pub fn new(inner: DynamicReallocator, skip_step0: bool) -> Self {
        let shared = Arc::new(Mutex::new(inner.log.clone()));
        DynamicHook {
            inner,
            skip_step0,
            shared,
        }
    }

    /// A handle on the re-allocation log that stays valid after the hook is moved.
    pub fn log_handle(&self) -> Arc<Mutex<ReallocationLog>> {
        self.shared.clone()
    }
}

impl TrainHook for DynamicHook {
    fn name(&self) -> &str {
        "dynamic"
    }

    fn before_step(
        &mut self,
        model: &mut SequenceClassifier,
        state: &mut HookState<'_>,
    ) -> Result<Option<Allocation>> {
        if state.step == 0 && self.skip_step0 {
            self.skip_step0 = false;
            return Ok(None);
        }
        if !self.inner.due(state.step, state.steps_per_epoch) {
            return Ok(None);
        }
        let a = self.inner.reallocate(
            model,
            state.step,
            state.steps_per_epoch,
            Some(&mut *state.logger),
        )?;
        if let Ok(mut log) = self.shared.lock() {
            *log = self.inner.log.clone();
        }
        Ok(Some(a))
    }

    /// The reallocator's log and random stream: a resumed child re-allocates as the uninterrupted
    /// one would, and its record counts every re-allocation since step 0.
    fn state(&self) -> serde_json::Value {
        self.inner.state()
    }

    fn load_state(&mut self, state: serde_json::Value) -> Result<()> {
        self.inner.load_state(state)?;
        // Resumed past step 0: the step-0 allocation is the checkpoint's, not made again.
        self.skip_step0 = false;
        if let Ok(mut log) = self.shared.lock() {
            *log = self.inner.log.clone();
        }
        Ok(())
    }
}
