//! `heterolora bench train`: examples per second and peak memory of one training step.

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
    }
}
