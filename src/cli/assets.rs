//! The model and data folders every training and scoring command takes, with the same flags.

use crate::data::Task;
use clap::Args;
use std::path::PathBuf;

/// `--model DIR` and `--glue DIR`. Unset, the folders come from `$HETEROLORA_MODEL_DIR` and
/// `$HETEROLORA_GLUE_DIR`, else from `datasets/` (where `heterolora fetch` puts them).
#[derive(Debug, Clone, Default, Args)]
pub struct AssetArgs {
    /// Model folder (config.json, model.safetensors, tokenizer.json) [default:
    /// $HETEROLORA_MODEL_DIR, else datasets/models/all-MiniLM-L6-v2].
    #[arg(long, visible_alias = "model-dir", value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// GLUE root holding <TASK>/train.tsv and dev.tsv [default: $HETEROLORA_GLUE_DIR, else
    /// datasets/glue].
    #[arg(long, visible_alias = "glue-dir", value_name = "DIR")]
    pub glue: Option<PathBuf>,
}

impl AssetArgs {
    /// Fetches the default model, and `task`'s GLUE folder when a task is given, if they are
    /// missing and no folder was named (flag or environment variable): so that a command works
    /// on a fresh machine without a `heterolora fetch` first. A named folder is left alone.
    pub fn ensure(&self, task: Option<Task>) -> crate::Result<()> {
        crate::assets::ensure_assets(self.model.as_deref(), self.glue.as_deref(), task).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        assets: AssetArgs,
    }

    #[test]
    fn both_spellings_parse() {
        let a = T::parse_from(["t", "--model", "m", "--glue-dir", "g"]).assets;
        assert_eq!(a.model, Some(PathBuf::from("m")));
        assert_eq!(a.glue, Some(PathBuf::from("g")));
        let a = T::parse_from(["t", "--model-dir", "m2"]).assets;
        assert_eq!(a.model, Some(PathBuf::from("m2")));
        assert_eq!(a.glue, None);
    }
}
