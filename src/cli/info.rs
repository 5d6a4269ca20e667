//! `heterolora info`: dataset and model statistics.

use crate::assets::{self, ModelFolder, ModelInfo};
use crate::data::{load_split, stats::SplitStats, Split, Task};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Tasks to describe (default: mrpc). `all` for every task.
    pub tasks: Vec<String>,
    /// Model whose tokenizer measures lengths and whose weights are counted.
    #[arg(long, default_value = assets::DEFAULT_MODEL)]
    pub model: String,
    /// Model folder (default: HETEROLORA_MODEL_DIR, else <datasets>/models/<model>).
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
    /// GLUE folder (default: HETEROLORA_GLUE_DIR, else <datasets>/glue).
    #[arg(long)]
    pub glue_dir: Option<PathBuf>,
    /// Truncation length for the token-length statistics.
    #[arg(long, default_value_t = 128)]
    pub max_len: usize,
    /// Also describe the unlabelled test splits.
    #[arg(long)]
    pub test: bool,
}

pub fn run(args: InfoArgs) -> anyhow::Result<()> {
    let tasks: Vec<Task> = if args.tasks.is_empty() {
        vec![Task::Mrpc]
    } else if args.tasks.iter().any(|t| t == "all") {
        Task::ALL.to_vec()
    } else {
        args.tasks
            .iter()
            .map(|t| t.parse())
            .collect::<crate::Result<_>>()?
    };
    let model_dir = assets::resolve_model_dir(args.model_dir.as_deref(), &args.model);
    // The loading path of every command: a decoder's tokenizer pads with its model's pad id.
    let tokenizer = match ModelFolder::open(&model_dir).and_then(|f| f.tokenizer(args.max_len)) {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("no token lengths: {e}");
            None
        }
    };
    match ModelInfo::read(&model_dir) {
        Ok(info) => println!("{info}\n"),
        Err(e) => eprintln!(
            "no model statistics: {e}. Run `heterolora fetch model {}`\n",
            args.model
        ),
    }
    let glue = assets::resolve_glue_dir(args.glue_dir.as_deref());
    println!("GLUE data in {}", glue.display());
    for task in tasks {
        for split in Split::ALL {
            if split == Split::Test && !args.test {
                continue;
            }
            let path = glue.join(task.dir_name()).join(split.file_name());
            if !path.is_file() && split != Split::Dev {
                println!(
                    "{:<6} {:<5} (no {})",
                    task.to_string(),
                    split.name(),
                    path.display()
                );
                continue;
            }
            let ds = load_split(&glue, task, split)?;
            println!("{}", SplitStats::compute(&ds, tokenizer.as_ref())?);
        }
    }
    Ok(())
}
