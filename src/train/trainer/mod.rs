//! [`Trainer`]: the fine-tuning loop.
//!
//! One optimiser step: for each of `grad_accum` micro-batches, a training-mode forward (dropout
//! masks from the run's seeded RNG), the loss, one backward; gradients of the trainable variables
//! (enabled adapters and head: the frozen base is plain tensors, so candle computes no weight
//! gradient for it) are summed; then global-norm clipping, the scheduled learning rate and an
//! AdamW update. Evaluation runs without dropout and without backward, on dev batches built once.
//!
//! The loop's whole position lives in a [`CheckpointState`]; a checkpoint saves it with the
//! variables and the optimiser, and [`Trainer::resume_from`] restores all three, so a resumed run
//! computes exactly what an uninterrupted one would have.

use super::checkpoint::{CheckpointState, CHECKPOINT_VERSION};
use super::clip::{clip_by_global_norm, Grads};
use super::config::TrainConfig;
use super::hook::{HookState, TrainHook};
use super::interrupt::StopFlag;
use super::optim::AdamW;
use super::progress::Progress;
use super::result::TrainResult;
use crate::data::{Batch, Batcher, EncodedDataset, Task};
use crate::device::device_name;
use crate::model::{AdaptedClassifier, SequenceClassifier};
use crate::rng::Rng;
use crate::search::Allocation;
use crate::train::logger::{RunLogger, RunStatus};
use crate::{Error, Result};
use candle_core::{DType, Device, Var};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

mod eval;
mod persist;

/// Fine-tunes a classifier on one task: BERT's [`SequenceClassifier`] by default, any
/// [`AdaptedClassifier`] (a decoder, [`crate::model::Classifier`]) alike.
///
/// ```no_run
/// # use heterolora::{data::*, model::*, train::*, tracking::MemoryLogger};
/// # fn main() -> heterolora::Result<()> {
/// # let (model, alloc, train, dev): (SequenceClassifier, heterolora::search::Allocation, EncodedDataset, EncodedDataset) = todo!();
/// let cfg = TrainConfig::default().lr(1e-3).epochs(3);
/// let mut trainer = Trainer::new(model, alloc, train, dev, cfg)?.with_output_dir("runs/mrpc");
/// let result = trainer.fit(&mut MemoryLogger::default())?;
/// println!("{result}");
/// # Ok(()) }
/// ```
pub struct Trainer<M: AdaptedClassifier = SequenceClassifier> {
    model: M,
    allocation: Allocation,
    cfg: TrainConfig,
    task: Task,
    train: EncodedDataset,
    batcher: Batcher,
    dev_batches: Vec<Batch>,
    dev_labels: Vec<f32>,
    device: Device,
    opt: AdamW,
    st: CheckpointState,
    hooks: Vec<Box<dyn TrainHook<M>>>,
    output_dir: Option<PathBuf>,
    stop: StopFlag,
    resumed_from: Option<PathBuf>,
    /// How to continue a stopped run, when not `--resume` (a study child: rerun the study).
    resume_hint: Option<String>,
    /// Extra (name, value) params to log (model path, data path, ...).
    extra_params: Vec<(String, String)>,
    /// Cached for the current allocation; refreshed when a hook changes it.
    vars: Vec<(String, Var)>,
    /// The dev logits of the evaluation after the final step, kept so that the end-of-training
    /// predictions need no second pass over dev; dropped by any later step.
    final_dev_logits: Option<Vec<f32>>,
}

impl<M: AdaptedClassifier> Trainer<M> {
    /// A trainer for `model` with `allocation` applied, on `train` with evaluation on `dev`.
    /// Checks `cfg`, the splits (same task, dev labelled) and the allocation against the model.
    pub fn new(
        mut model: M,
        allocation: Allocation,
        train: EncodedDataset,
        dev: EncodedDataset,
        cfg: TrainConfig,
    ) -> Result<Self> {
        cfg.check()?;
        let task = train.task;
        if dev.task != task {
            return Err(Error::Config {
                field: "dev".into(),
                reason: format!("dev split is {} but the training split is {task}", dev.task),
            });
        }
        if train.is_empty() || dev.is_empty() {
            return Err(Error::Config {
                field: if train.is_empty() { "train" } else { "dev" }.into(),
                reason: "the split has no examples".into(),
            });
        }
        if model.num_labels() != task.num_labels() {
            return Err(Error::Config {
                field: "num_labels".into(),
                reason: format!(
                    "the model has {} outputs but {task} needs {}",
                    model.num_labels(),
                    task.num_labels()
                ),
            });
        }
        let dev_labels = dev.labels_f32().ok_or_else(|| Error::Config {
            field: "dev".into(),
            reason: format!("the {task} dev split has unlabelled examples: cannot evaluate on it"),
        })?;
        let dtype = cfg.precision.dtype();
        if model.dtype() != dtype {
            match model.as_bert_mut() {
                Some(bert) => *bert = bert.to_dtype(dtype)?,
                None => {
                    return Err(Error::Config {
                        field: "precision".into(),
                        reason: format!(
                            "the {} model computes in {:?} but the config asks for {}: load it \
                             in that dtype (AssetLoader::dtype; TrainJob does this from the config)",
                            model.architecture(),
                            model.dtype(),
                            cfg.precision
                        ),
                    })
                }
            }
        }
        model.apply_allocation(&allocation)?;
        model.set_lora_dropout(cfg.lora_dropout as f32);
        if let Some(head) = cfg.head {
            model.set_head_pooling(head)?;
        }
        if cfg.mean_init && model.num_labels() == 1 {
            start_at_target_mean(&model, &train)?;
        }
        let device = model.device().clone();
        let batcher = Batcher::for_dataset(&train, cfg.batch_size, cfg.seed)?;
        let dev_batcher = Batcher::for_dataset(&dev, cfg.eval_batch_size, cfg.seed)?;
        let dev_batches = dev_batcher
            .eval_batches()
            .iter()
            .map(|idx| dev.batch(idx, &device))
            .collect::<Result<Vec<_>>>()?;
        let st = CheckpointState {
            version: CHECKPOINT_VERSION,
            task: task.name().to_string(),
            config: cfg.clone(),
            allocation: allocation.clone(),
            step: 0,
            epoch: 0,
            micro_in_epoch: 0,
            examples_seen: 0,
            dropout_rng: Rng::derive(cfg.seed, "dropout"),
            evals: Vec::new(),
            loss_history: Vec::new(),
            best_epoch: None,
            best_metric: None,
            loss_since_eval: (0.0, 0),
            train_time_s: 0.0,
            wall_time_s: 0.0,
            hooks: BTreeMap::new(),
            run_id: None,
            finished: false,
            adapters: Vec::new(),
            model: String::new(),
        };
        let vars = model.trainable_vars();
        Ok(Trainer {
            opt: AdamW::new(cfg.adamw()),
            model,
            allocation,
            cfg,
            task,
            train,
            batcher,
            dev_batches,
            dev_labels,
            device,
            st,
            hooks: Vec::new(),
            output_dir: None,
            stop: StopFlag::new(),
            resumed_from: None,
            resume_hint: None,
            extra_params: Vec::new(),
            vars,
            final_dev_logits: None,
        })
    }

    /// Write checkpoints (`checkpoint/`), the best epoch's adapters (`best/`) and the final ones
    /// (`final/`) under `dir`. Without it the run keeps no checkpoint.
    pub fn with_output_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.output_dir = Some(dir.into());
        self
    }

    /// What the stop message tells the user to do to continue (default: `--resume <checkpoint>`).
    pub fn with_resume_hint(mut self, hint: impl Into<String>) -> Self {
        self.resume_hint = Some(hint.into());
        self
    }

    /// Poll `flag` after every step; when set, checkpoint and end the run as killed.
    pub fn with_stop_flag(mut self, flag: StopFlag) -> Self {
        self.stop = flag;
        self
    }

    /// Add a hook that runs before every optimiser step.
    pub fn add_hook(mut self, hook: Box<dyn TrainHook<M>>) -> Self {
        self.hooks.push(hook);
        self
    }

    /// Extra parameters to log with the run (e.g. `model`, `glue_dir`).
    pub fn with_params(mut self, params: Vec<(String, String)>) -> Self {
        self.extra_params.extend(params);
        self
    }

    /// Record where the base model came from (saved in checkpoints, for `--resume`).
    pub fn with_model_source(mut self, source: impl Into<String>) -> Self {
        self.st.model = source.into();
        self
    }

    pub fn model(&self) -> &M {
        &self.model
    }
    pub fn into_model(self) -> M {
        self.model
    }
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }
    pub fn allocation(&self) -> &Allocation {
        &self.allocation
    }
    /// The loop's position and history (what a checkpoint saves).
    pub fn state(&self) -> &CheckpointState {
        &self.st
    }
    pub fn steps_per_epoch(&self) -> usize {
        self.cfg.steps_per_epoch(self.train.len())
    }
    pub fn total_steps(&self) -> usize {
        self.cfg.total_steps(self.train.len())
    }

    /// Run the training loop to the end (or to Ctrl-C / [`StopFlag::stop`]), logging through
    /// `logger`. A non-finite loss or gradient stops the run with an error naming the step and
    /// the learning rate; the logger's run is then ended as failed, keeping what was logged.
    pub fn fit(&mut self, logger: &mut dyn RunLogger) -> Result<TrainResult> {
        crate::device::tune_allocator();
        let started = Instant::now();
        let progress = Progress::new(self.total_steps(), self.st.step, self.cfg.quiet);
        match self.fit_inner(logger, started, &progress) {
            Ok(r) => Ok(r),
            Err(e) => {
                progress.finish();
                // The run's metrics so far stay in the tracker; it records why it failed.
                let _ = logger.set_tags(&[("error".to_string(), e.to_string())]);
                let _ = logger.flush();
                let _ = logger.end(RunStatus::Failed);
                Err(e)
            }
        }
    }

    fn params(&self) -> Vec<(String, String)> {
        let mut p = vec![
            ("task".to_string(), self.task.name().to_string()),
            (
                "allocation.method".to_string(),
                self.allocation.method.clone(),
            ),
            (
                "allocation.proxy".to_string(),
                self.allocation
                    .proxy
                    .clone()
                    .unwrap_or_else(|| "none".into()),
            ),
            (
                "allocation.num_slots".to_string(),
                self.allocation.ranks.len().to_string(),
            ),
            (
                "allocation.adapter_params".to_string(),
                self.allocation
                    .trainable_params_in(&self.model.slot_table())
                    .unwrap_or_else(|_| self.allocation.trainable_params())
                    .to_string(),
            ),
            (
                "allocation.ranks".to_string(),
                ranks_string(&self.allocation),
            ),
            (
                "trainable_params".to_string(),
                self.model.trainable_params().to_string(),
            ),
            (
                "num_train_examples".to_string(),
                self.train.len().to_string(),
            ),
            (
                "num_dev_examples".to_string(),
                self.dev_labels.len().to_string(),
            ),
            (
                "steps_per_epoch".to_string(),
                self.steps_per_epoch().to_string(),
            ),
            ("total_steps".to_string(), self.total_steps().to_string()),
        ];
        if let Some(spec) = self.allocation.meta.get("spec") {
            p.push(("allocation.spec".to_string(), spec.clone()));
        }
        p.extend(self.cfg.to_params());
        p.extend(self.extra_params.iter().cloned());
        p
    }

    fn fit_inner(
        &mut self,
        logger: &mut dyn RunLogger,
        started: Instant,
        progress: &Progress,
    ) -> Result<TrainResult> {
        let total = self.total_steps();
        let warmup = self.cfg.warmup_steps_for(total);
        let wall_before = self.st.wall_time_s;
        logger.log_params(&self.params())?;
        let mut tags = vec![
            ("heterolora.kind".to_string(), "train".to_string()),
            ("device".to_string(), device_name(&self.device)),
        ];
        if let Some(from) = &self.resumed_from {
            tags.push(("resumed_from".to_string(), from.display().to_string()));
            if let Some(id) = &self.st.run_id {
                tags.push(("resumed_from_run".to_string(), id.clone()));
            }
        }
        logger.set_tags(&tags)?;
        logger.log_text(
            &serde_json::to_string_pretty(&self.allocation)?,
            "allocation.json",
        )?;
        if self.st.run_id.is_none() {
            self.st.run_id = logger.run_id();
        }
        if let Some(from) = &self.resumed_from {
            progress.println(&format!(
                "resuming from {} at step {}/{total} (epoch {})",
                from.display(),
                self.st.step,
                self.st.epoch + 1
            ));
        }

        let mut session_examples = 0usize;
        let mut session_train_s = 0f64;
        let mut epoch_batches: Option<(usize, Vec<Vec<usize>>)> = None;
        let mut interrupted = false;
        while self.st.step < total {
            if epoch_batches.as_ref().map(|(e, _)| *e) != Some(self.st.epoch) {
                epoch_batches = Some((self.st.epoch, self.batcher.epoch(self.st.epoch)));
            }
            let batches = &epoch_batches.as_ref().expect("set above").1;
            let lr = self
                .cfg
                .schedule
                .lr_at(self.cfg.lr, self.st.step, total, warmup);
            self.run_hooks(logger, lr)?;

            let group_end = (self.st.micro_in_epoch + self.cfg.grad_accum).min(batches.len());
            let group = &batches[self.st.micro_in_epoch..group_end];
            let t0 = Instant::now();
            let (loss, n_examples, grad_norm) = self.train_step(group, lr)?;
            let dt = t0.elapsed().as_secs_f64();
            session_train_s += dt;
            session_examples += n_examples;
            self.st.train_time_s += dt;
            self.st.step += 1;
            self.st.micro_in_epoch = group_end;
            self.st.examples_seen += n_examples;
            self.st.loss_since_eval.0 += loss;
            self.st.loss_since_eval.1 += 1;
            let step = self.st.step;
            let eps = session_examples as f64 / session_train_s.max(1e-9);
            progress.step(step, loss, lr, eps);
            if step % self.cfg.log_every == 0 || step == total {
                self.st.loss_history.push((step, loss, lr));
                logger.log_metrics(
                    &[
                        ("train_loss".to_string(), loss),
                        ("lr".to_string(), lr),
                        ("grad_norm".to_string(), grad_norm),
                        ("examples_per_sec".to_string(), eps),
                    ],
                    step as i64,
                )?;
            }

            let epoch_end = self.st.micro_in_epoch >= batches.len() || step == total;
            let eval_due = self.cfg.eval_every > 0 && step % self.cfg.eval_every == 0;
            if epoch_end || eval_due {
                self.st.wall_time_s = wall_before + started.elapsed().as_secs_f64();
                self.evaluate_and_log(logger, progress, epoch_end)?;
            }
            if epoch_end && self.st.micro_in_epoch >= batches.len() {
                self.st.epoch += 1;
                self.st.micro_in_epoch = 0;
            }
            interrupted = self.stop.is_set();
            let ckpt_due = epoch_end
                || interrupted
                || (self.cfg.checkpoint_every > 0 && step % self.cfg.checkpoint_every == 0);
            if ckpt_due && step < total {
                self.st.wall_time_s = wall_before + started.elapsed().as_secs_f64();
                self.save_checkpoint()?;
            }
            if interrupted {
                break;
            }
        }

        self.st.wall_time_s = wall_before + started.elapsed().as_secs_f64();
        progress.finish();
        let status = if interrupted {
            RunStatus::Killed
        } else {
            self.st.finished = true;
            RunStatus::Finished
        };
        if !interrupted {
            self.finish_artifacts(logger)?;
            self.save_checkpoint()?;
        }
        let session_eps = if session_train_s > 0.0 {
            session_examples as f64 / session_train_s
        } else {
            0.0
        };
        let result = self.result(status, session_eps);
        logger.log_text(&serde_json::to_string_pretty(&result)?, "train_result.json")?;
        if let (Some(best), Some(metric)) = (result.best_epoch, result.best_metric) {
            let step = result
                .epoch_evals()
                .into_iter()
                .find(|e| e.epoch == best)
                .map_or(0, |e| e.step);
            logger.log_metrics(
                &[(format!("best_dev_{}", result.primary_metric), metric)],
                step as i64,
            )?;
            logger.set_tags(&[("best_epoch".to_string(), best.to_string())])?;
        }
        if interrupted {
            let where_ = self
                .checkpoint_dir()
                .map(|d| match &self.resume_hint {
                    Some(hint) => format!("checkpoint in {}; {hint}", d.display()),
                    None => format!(
                        "checkpoint in {}; continue with --resume {}",
                        d.display(),
                        d.display()
                    ),
                })
                .unwrap_or_else(|| "no output directory, so no checkpoint was written".into());
            progress.println(&format!(
                "stopped by the user at step {}: {where_}",
                self.st.step
            ));
            logger.set_tags(&[("stopped_at_step".to_string(), self.st.step.to_string())])?;
        }
        logger.flush()?;
        logger.end(status)?;
        Ok(result)
    }

    /// One optimiser step over the micro-batches `group`; returns (mean loss, examples, grad
    /// norm before clipping).
    fn train_step(&mut self, group: &[Vec<usize>], lr: f64) -> Result<(f64, usize, f64)> {
        self.train_step_padded(group, 1, lr)
    }

    fn train_step_padded(
        &mut self,
        group: &[Vec<usize>],
        min_len: usize,
        lr: f64,
    ) -> Result<(f64, usize, f64)> {
        self.final_dev_logits = None;
        let n_micro = group.len();
        let mut grads = Grads::new();
        let mut loss_sum = 0f64;
        let mut n_examples = 0usize;
        for idx in group {
            let batch = self.train.batch_padded(idx, min_len, &self.device)?;
            let logits = self
                .model
                .forward_batch(&batch, Some(&mut self.st.dropout_rng))?;
            let loss = self.model.loss(&logits, &batch.labels)?;
            let value = loss.to_dtype(DType::F32)?.to_scalar::<f32>()? as f64;
            if !value.is_finite() {
                return Err(self.non_finite("loss", value, lr));
            }
            loss_sum += value;
            n_examples += batch.size();
            // The mean over micro-batches, as one big batch would give (up to unequal sizes).
            let loss = if n_micro > 1 {
                (loss / n_micro as f64)?
            } else {
                loss
            };
            let mut store = loss.backward()?;
            for (name, var) in &self.vars {
                if let Some(g) = store.remove(var.as_tensor()) {
                    let g = match grads.remove(name) {
                        Some(acc) => (acc + g)?,
                        None => g,
                    };
                    grads.insert(name.clone(), g);
                }
            }
        }
        let norm = match self.cfg.clip_norm {
            Some(max) => clip_by_global_norm(&mut grads, max)?,
            None => super::clip::global_norm(&grads)?,
        };
        if !norm.is_finite() {
            return Err(self.non_finite("gradient norm", norm, lr));
        }
        self.opt.step(&self.vars, &grads, lr)?;
        Ok((loss_sum / n_micro as f64, n_examples, norm))
    }

    /// One optimiser step on the training examples `indices` (one micro-batch) at learning rate
    /// `lr`, outside the epoch loop: the step the benchmark times. Returns the loss.
    pub fn step_on(&mut self, indices: &[usize], lr: f64) -> Result<f64> {
        self.step_on_padded(indices, 1, lr)
    }

    /// As [`Self::step_on`] with the batch padded to at least `min_len` tokens.
    pub fn step_on_padded(&mut self, indices: &[usize], min_len: usize, lr: f64) -> Result<f64> {
        let (loss, _, _) = self.train_step_padded(&[indices.to_vec()], min_len, lr)?;
        Ok(loss)
    }

    fn non_finite(&self, what: &str, value: f64, lr: f64) -> Error {
        Error::Training {
            step: self.st.step + 1,
            reason: format!(
                "{what} is {value} (epoch {}, learning rate {lr:.3e}); the run is marked failed and \
                 everything logged before this step is kept. Lower --lr, keep gradient clipping on \
                 (--clip-norm) or use a longer warm-up",
                self.st.epoch + 1
            ),
        }
    }

    fn run_hooks(&mut self, logger: &mut dyn RunLogger, lr: f64) -> Result<()> {
        if self.hooks.is_empty() {
            return Ok(());
        }
        let mut changed: Option<Allocation> = None;
        for hook in self.hooks.iter_mut() {
            let mut hs = HookState {
                step: self.st.step,
                epoch: self.st.epoch,
                micro_in_epoch: self.st.micro_in_epoch,
                steps_per_epoch: self.cfg.steps_per_epoch(self.train.len()),
                total_steps: self.cfg.total_steps(self.train.len()),
                lr,
                train: &self.train,
                batcher: &self.batcher,
                device: &self.device,
                allocation: changed.as_ref().unwrap_or(&self.allocation),
                logger,
            };
            if let Some(a) = hook.before_step(&mut self.model, &mut hs)? {
                changed = Some(a);
            }
        }
        if let Some(a) = changed {
            logger.log_text(
                &serde_json::to_string_pretty(&a)?,
                &format!("allocations/step_{:06}.json", self.st.step),
            )?;
            self.allocation = a;
            self.vars = self.model.trainable_vars();
            logger.log_metrics(
                &[(
                    "trainable_params".to_string(),
                    self.model.trainable_params() as f64,
                )],
                self.st.step as i64,
            )?;
        }
        Ok(())
    }

    fn result(&self, status: RunStatus, session_eps: f64) -> TrainResult {
        let eps = if self.st.train_time_s > 0.0 {
            self.st.examples_seen as f64 / self.st.train_time_s
        } else {
            session_eps
        };
        TrainResult {
            task: self.task.name().to_string(),
            primary_metric: self.task.primary_metric().to_string(),
            evals: self.st.evals.clone(),
            best_epoch: self.st.best_epoch,
            best_metric: self.st.best_metric,
            loss_history: self.st.loss_history.clone(),
            steps: self.st.step,
            examples_seen: self.st.examples_seen,
            wall_time_s: self.st.wall_time_s,
            examples_per_sec: eps,
            trainable_params: self.model.trainable_params(),
            status,
            run_id: self.st.run_id.clone(),
            checkpoint_dir: self.checkpoint_dir(),
            device: device_name(&self.device),
        }
    }
}

fn ranks_string(a: &Allocation) -> String {
    let s: Vec<String> = a
        .ranks
        .iter()
        .map(|(slot, r)| format!("{slot}={}", r.r))
        .collect();
    let s = s.join(",");
    // MLflow caps a param value at 6000 characters.
    if s.len() > 6000 {
        format!("{}...", &s[..5990])
    } else {
        s
    }
}

/// A regression head's bias set to the mean of the training targets, as [`Trainer::new`] does
/// under [`TrainConfig::mean_init`] (a resume loads the checkpoint's head over it); the study
/// calls it before scoring so that proxies see the model training starts from. Heads without a bias (the decoders' `score`) are left as they are.
pub fn start_at_target_mean<M: AdaptedClassifier>(model: &M, train: &EncodedDataset) -> Result<()> {
    let Some(bias) = model.head_bias() else {
        return Ok(());
    };
    let targets = train.labels_f32().ok_or_else(|| Error::Config {
        field: "train".into(),
        reason: "the training split has unlabelled examples: cannot train on it".into(),
    })?;
    let mean = targets.iter().map(|&y| y as f64).sum::<f64>() / targets.len().max(1) as f64;
    let b = candle_core::Tensor::full(mean, bias.shape(), bias.device())?.to_dtype(bias.dtype())?;
    bias.set(&b)?;
    Ok(())
}
