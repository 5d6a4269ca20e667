//! `heterolora bench train`: examples per second and peak memory of one training step;
//! `heterolora bench parity`: logits, loss and gradients on one device, for device parity.

use crate::bench::parity::{parity_tensors, ParityConfig};
use crate::bench::train::{bench_train_step, BenchConfig};
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// Time the training step (forward, backward, AdamW) on MRPC batches; compare with
    /// `scripts/bench_peft_train_step.py` (PyTorch + PEFT, same batches).
    Train(BenchTrainArgs),
    /// Logits, loss and every trainable gradient of the model with committed PEFT adapters on
    /// the first MRPC dev pairs, into one f32 safetensors file: run on two devices and compare
    /// with `scripts/compare-parity.py` (what `scripts/gpu-check.sh` does).
    Parity(BenchParityArgs),
}

#[derive(Debug, Args)]
pub struct BenchParityArgs {
    #[command(flatten)]
    pub assets: crate::cli::assets::AssetArgs,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// f32 or bf16 (the frozen model's compute format).
    #[arg(long, default_value = "f32")]
    pub precision: String,
    /// A PEFT adapter folder (BertForSequenceClassification, 2 labels).
    #[arg(long, default_value = crate::bench::parity::DEFAULT_ADAPTERS)]
    pub adapters: std::path::PathBuf,
    /// MRPC dev pairs, from the first.
    #[arg(long, default_value_t = 8)]
    pub examples: usize,
    /// The safetensors file to write.
    #[arg(long)]
    pub out: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub struct BenchTrainArgs {
    #[command(flatten)]
    pub assets: crate::cli::assets::AssetArgs,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long, default_value = "uniform:q,v:r=8")]
    pub allocation: String,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 128)]
    pub max_len: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Untimed steps before timing.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Sort pairs by length before batching (less padding, as bucketed training batches).
    #[arg(long)]
    pub bucket: bool,
    /// Pad every batch to --max-len tokens (no dynamic padding).
    #[arg(long)]
    pub fixed_len: bool,
    /// f32, or bf16 (bf16 frozen model, f32 adapters, head and loss; compare with
    /// `bench_peft_train_step.py --dtype bf16`).
    #[arg(long, default_value = "f32")]
    pub precision: String,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        BenchWhat::Train(a) => {
            // The benchmark times MRPC batches: fetch them (and the model) on first use.
            a.assets.ensure(Some(crate::data::Task::Mrpc))?;
            let cfg = BenchConfig {
                model_dir: a.assets.model,
                glue_dir: a.assets.glue,
                device: a.device,
                allocation: a.allocation,
                batch_size: a.batch_size,
                max_len: a.max_len,
                steps: a.steps,
                warmup: a.warmup,
                bucket: a.bucket,
                fixed_len: a.fixed_len,
                precision: a.precision.parse()?,
            };
            let report = bench_train_step(&cfg)?;
            println!("{}", serde_json::to_string(&report)?);
            eprintln!("{report}");
            Ok(())
        }
        BenchWhat::Parity(a) => {
            a.assets.ensure(Some(crate::data::Task::Mrpc))?;
            let cfg = ParityConfig {
                model_dir: a.assets.model,
                glue_dir: a.assets.glue,
                adapters: a.adapters,
                device: a.device,
                precision: a.precision.parse()?,
                examples: a.examples,
            };
            let report = parity_tensors(&cfg, &a.out)?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
    }
}
