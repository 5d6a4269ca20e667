//! Benchmark of the training step: examples per second and peak memory for a LoRA allocation on
//! real MRPC batches, timing exactly the step [`Trainer`] runs (forward with dropout, loss,
//! backward, AdamW). `scripts/bench_peft_train_step.py` times the same step in PyTorch + PEFT on
//! the same batches.

use crate::adapters::Allocation;
use crate::data::{EncodedDataset, Task};
use crate::device::{device_name, parse_device};
use crate::model::{AdaptedClassifier, AssetLoader, Classifier};
use crate::train::{parse_allocation, Precision, TrainConfig, Trainer};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// What to benchmark.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub model_dir: Option<PathBuf>,
    pub glue_dir: Option<PathBuf>,
    pub device: String,
    pub allocation: String,
    pub batch_size: usize,
    pub max_len: usize,
    /// Timed steps.
    pub steps: usize,
    /// Untimed steps first (allocator and cache warm-up).
    pub warmup: usize,
    /// Sort the pairs by length before batching (as length-bucketed training batches are).
    pub bucket: bool,
    /// Pad every batch to `max_len` tokens instead of to its longest pair.
    pub fixed_len: bool,
    /// The frozen model's compute format (bf16: f32 adapters, head and loss).
    pub precision: Precision,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            model_dir: None,
            glue_dir: None,
            device: "cpu".into(),
            allocation: "uniform:q,v:r=8".into(),
            batch_size: 32,
            max_len: 128,
            steps: 20,
            warmup: 3,
            bucket: false,
            fixed_len: false,
            precision: Precision::F32,
        }
    }
}

/// Measured figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    pub framework: String,
    pub device: String,
    pub threads: usize,
    pub allocation: String,
    pub batch_size: usize,
    pub max_len: usize,
    pub bucket: bool,
    #[serde(default)]
    pub fixed_len: bool,
    /// `f32` or `bf16`; reports written before the choice existed are f32.
    #[serde(default = "f32_name")]
    pub precision: String,
    pub steps: usize,
    pub trainable_params: usize,
    /// Mean padded sequence length of the timed batches.
    pub mean_padded_len: f64,
    pub seconds: f64,
    pub ms_per_step: f64,
    pub examples_per_sec: f64,
    /// CPU time (user + system, all threads) of the process during the timed steps: on a shared
    /// machine this measures the work done, where wall time also measures the other tenants.
    pub cpu_seconds: Option<f64>,
    pub examples_per_cpu_sec: Option<f64>,
    /// Peak resident memory of the process (VmHWM), MiB; on CUDA the device's used memory after
    /// the run (nvidia-smi), MiB.
    pub peak_memory_mib: Option<f64>,
    pub peak_memory_kind: String,
    pub last_loss: f64,
}

fn f32_name() -> String {
    Precision::F32.to_string()
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "heterolora {} {}: {:.2} examples/s wall, {} examples per CPU-second, {:.0} ms/step, peak {} ({}), {} trainable params, batch {} x {:.1} tokens",
            self.device,
            self.precision,
            self.examples_per_sec,
            self.examples_per_cpu_sec.map_or("n/a".to_string(), |e| format!("{e:.2}")),
            self.ms_per_step,
            self.peak_memory_mib.map_or("n/a".to_string(), |m| format!("{m:.0} MiB")),
            self.peak_memory_kind,
            self.trainable_params,
            self.batch_size,
            self.mean_padded_len,
        )
    }
}

/// Run the benchmark.
pub fn bench_train_step(cfg: &BenchConfig) -> Result<BenchReport> {
    // The bench binaries do not go through the CLI's main: tune here so they time what it runs.
    crate::device::tune_allocator();
    if cfg.steps == 0 || cfg.batch_size == 0 {
        return Err(Error::invalid("steps/batch_size", 0, ">= 1"));
    }
    let device = parse_device(&cfg.device)?;
    // The loading path of every command: the folder checked, MRPC encoded with its tokenizer,
    // BERT or a decoder by its config.json (head seed 0).
    let loaded = AssetLoader::new(Task::Mrpc)
        .model_dir(cfg.model_dir.as_deref())
        .glue_dir(cfg.glue_dir.as_deref())
        .max_len(cfg.max_len)
        .device(&device)
        .dtype(cfg.precision.dtype())
        .load()?;
    let train = loaded.train()?.clone();
    let dev = loaded.dev()?.clone();
    let model = loaded.model.expect("the loader builds the model");
    let n_batches = cfg.warmup + cfg.steps;
    // The same batches as the PyTorch script: pairs in file order, cycled if too few.
    let mut order: Vec<usize> = (0..n_batches * cfg.batch_size)
        .map(|i| i % train.len())
        .collect();
    if cfg.bucket {
        let lengths = train.lengths();
        order.sort_by_key(|&i| lengths[i]);
    }
    let batches: Vec<Vec<usize>> = order.chunks(cfg.batch_size).map(|c| c.to_vec()).collect();
    // Allocation specs are read against the model's slot table (Llama's gate, grouped-query
    // k/v); BERT's table sizes them as its dims always did.
    let alloc = match &model {
        Classifier::Encoder(m) => parse_allocation(&cfg.allocation, &m.dims())?,
        Classifier::Decoder(_) => parse_allocation(&cfg.allocation, &model.slot_table())?,
    };
    // BERT runs on its own type, as the benchmark always timed it; a decoder through the enum.
    let timed = match model {
        Classifier::Encoder(m) => time_steps(m, alloc, cfg, &train, dev, &batches)?,
        decoder => time_steps(decoder, alloc, cfg, &train, dev, &batches)?,
    };
    device.synchronize()?;
    let Timed {
        seconds,
        cpu_seconds,
        tokens,
        last_loss,
        trainable_params,
    } = timed;
    let examples = cfg.steps * cfg.batch_size;
    let (peak, kind) = peak_memory(&device);
    Ok(BenchReport {
        framework: format!("heterolora {} (candle 0.11.1)", env!("CARGO_PKG_VERSION")),
        device: device_name(&device),
        threads: candle_core::utils::get_num_threads(),
        allocation: cfg.allocation.clone(),
        batch_size: cfg.batch_size,
        max_len: cfg.max_len,
        bucket: cfg.bucket,
        fixed_len: cfg.fixed_len,
        precision: cfg.precision.to_string(),
        steps: cfg.steps,
        trainable_params,
        mean_padded_len: tokens as f64 / examples as f64,
        seconds,
        ms_per_step: 1000.0 * seconds / cfg.steps as f64,
        examples_per_sec: examples as f64 / seconds,
        cpu_seconds,
        examples_per_cpu_sec: cpu_seconds
            .filter(|&c| c > 0.0)
            .map(|c| examples as f64 / c),
        peak_memory_mib: peak,
        peak_memory_kind: kind,
        last_loss,
    })
}

/// What the timed steps measured.
struct Timed {
    seconds: f64,
    cpu_seconds: Option<f64>,
    /// Padded tokens of the timed batches.
    tokens: usize,
    last_loss: f64,
    trainable_params: usize,
}

/// Runs the warm-up steps, then times the rest of `batches` (lists of training-row indices) on
/// `model` with `alloc`, as [`Trainer`] steps them.
fn time_steps<M: AdaptedClassifier>(
    model: M,
    alloc: Allocation,
    cfg: &BenchConfig,
    train: &EncodedDataset,
    dev: EncodedDataset,
    batches: &[Vec<usize>],
) -> Result<Timed> {
    let tcfg = TrainConfig::default()
        .batch_size(cfg.batch_size)
        .max_len(cfg.max_len)
        .clip_norm(None)
        .device(cfg.device.clone())
        .precision(cfg.precision);
    let device = model.device().clone();
    let mut trainer = Trainer::new(model, alloc, train.clone(), dev, tcfg)?;
    let lr = 5e-4;
    let min_len = if cfg.fixed_len { cfg.max_len } else { 1 };
    for b in &batches[..cfg.warmup] {
        trainer.step_on_padded(b, min_len, lr)?;
    }
    device.synchronize()?;
    let cpu0 = process_cpu_seconds();
    let mut tokens = 0usize;
    let mut last_loss = f64::NAN;
    let t0 = Instant::now();
    for b in &batches[cfg.warmup..] {
        last_loss = trainer.step_on_padded(b, min_len, lr)?;
        let longest = b
            .iter()
            .map(|&i| train.examples[i].ids.len())
            .max()
            .unwrap_or(0)
            .max(min_len);
        tokens += longest * b.len();
    }
    device.synchronize()?;
    let seconds = t0.elapsed().as_secs_f64();
    let cpu_seconds = cpu0.zip(process_cpu_seconds()).map(|(a, b)| b - a);
    Ok(Timed {
        seconds,
        cpu_seconds,
        tokens,
        last_loss,
        trainable_params: trainer.model().trainable_params(),
    })
}

/// User + system CPU seconds of this process so far (Linux `/proc/self/stat`, 100 ticks/s).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn peak_memory(device: &candle_core::Device) -> (Option<f64>, String) {
    if let candle_core::DeviceLocation::Cuda { gpu_id } = device.location() {
        let out = std::process::Command::new("nvidia-smi")
            .args([
                "--query-gpu=memory.used",
                "--format=csv,noheader,nounits",
                "-i",
                &gpu_id.to_string(),
            ])
            .output();
        let mib = out
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok());
        return (mib, "device memory used, nvidia-smi".into());
    }
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        });
    (hwm.map(|kb| kb / 1024.0), "max RSS, VmHWM".into())
}
