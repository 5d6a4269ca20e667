//! [`Task`] (the GLUE tasks: names, label sets, metrics) and [`Split`].

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A GLUE task this crate can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Task {
    Mrpc,
    Rte,
    Sst2,
    Cola,
    Stsb,
    Qnli,
    Wnli,
}

impl Task {
    /// Every supported task, in the order the GLUE paper lists the ones we use.
    pub const ALL: [Task; 7] = [
        Task::Cola,
        Task::Sst2,
        Task::Mrpc,
        Task::Stsb,
        Task::Qnli,
        Task::Rte,
        Task::Wnli,
    ];

    /// Lower-case name as the Hugging Face `glue` dataset configs spell it (`sst2`, `stsb`).
    pub fn name(self) -> &'static str {
        match self {
            Task::Mrpc => "mrpc",
            Task::Rte => "rte",
            Task::Sst2 => "sst2",
            Task::Cola => "cola",
            Task::Stsb => "stsb",
            Task::Qnli => "qnli",
            Task::Wnli => "wnli",
        }
    }

    /// The folder name GLUE's download script uses (`SST-2`, `STS-B`, `CoLA`).
    pub fn dir_name(self) -> &'static str {
        match self {
            Task::Mrpc => "MRPC",
            Task::Rte => "RTE",
            Task::Sst2 => "SST-2",
            Task::Cola => "CoLA",
            Task::Stsb => "STS-B",
            Task::Qnli => "QNLI",
            Task::Wnli => "WNLI",
        }
    }

    /// Number of model outputs: 1 for the regression task STS-B, else the number of classes.
    pub fn num_labels(self) -> usize {
        match self {
            Task::Stsb => 1,
            _ => 2,
        }
    }

    pub fn is_regression(self) -> bool {
        self == Task::Stsb
    }

    /// Whether each example is a sentence pair.
    pub fn is_pair(self) -> bool {
        !matches!(self, Task::Sst2 | Task::Cola)
    }

    /// Class names indexed by class id (empty for STS-B). The ids follow the Hugging Face `glue`
    /// datasets, so predictions are comparable with models trained there.
    pub fn label_names(self) -> &'static [&'static str] {
        match self {
            Task::Mrpc => &["not_equivalent", "equivalent"],
            Task::Rte | Task::Qnli => &["entailment", "not_entailment"],
            Task::Sst2 => &["negative", "positive"],
            Task::Cola => &["unacceptable", "acceptable"],
            Task::Wnli => &["not_entailment", "entailment"],
            Task::Stsb => &[],
        }
    }

    /// The metric GLUE papers report first for this task; a key of [`super::Metrics`].
    pub fn primary_metric(self) -> &'static str {
        match self {
            Task::Cola => "matthews",
            Task::Stsb => "pearson",
            _ => "accuracy",
        }
    }

    /// All metric names [`super::metrics::compute`] returns for this task.
    pub fn metric_names(self) -> &'static [&'static str] {
        match self {
            Task::Mrpc => &["accuracy", "f1", "combined"],
            Task::Cola => &["matthews", "accuracy"],
            Task::Stsb => &["pearson", "spearman", "combined"],
            _ => &["accuracy"],
        }
    }

    /// Whether the pinned GLUE copy this project verifies against (see
    /// `datasets/manifests/glue.json`) has a training split. QNLI's `train.tsv` is missing from
    /// it; the official archive has one, and `fetch glue` keeps it when it downloads the archive.
    pub fn has_train(self) -> bool {
        self != Task::Qnli
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.dir_name())
    }
}

impl FromStr for Task {
    type Err = Error;
    /// Case-insensitive; accepts `sst-2`/`sst2`/`sst`, `sts-b`/`stsb`/`sts`, `cola`, ...
    fn from_str(s: &str) -> Result<Self> {
        let k: String = s
            .trim()
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        Ok(match k.as_str() {
            "mrpc" => Task::Mrpc,
            "rte" => Task::Rte,
            "sst2" | "sst" => Task::Sst2,
            "cola" => Task::Cola,
            "stsb" | "sts" => Task::Stsb,
            "qnli" => Task::Qnli,
            "wnli" => Task::Wnli,
            _ => {
                return Err(Error::invalid(
                    "task",
                    s,
                    "one of mrpc, rte, sst2, cola, stsb, qnli, wnli",
                ))
            }
        })
    }
}

/// A dataset split. GLUE calls the validation split `dev`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Split {
    Train,
    Dev,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Dev, Split::Test];

    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Dev => "dev",
            Split::Test => "test",
        }
    }

    /// The split's file inside a task folder.
    pub fn file_name(self) -> &'static str {
        match self {
            Split::Train => "train.tsv",
            Split::Dev => "dev.tsv",
            Split::Test => "test.tsv",
        }
    }

    /// GLUE's test labels are not public.
    pub fn is_labelled(self) -> bool {
        self != Split::Test
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Split {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "train" => Ok(Split::Train),
            "dev" | "validation" | "val" | "eval" => Ok(Split::Dev),
            "test" => Ok(Split::Test),
            _ => Err(Error::invalid(
                "split",
                s,
                "train, dev (validation) or test",
            )),
        }
    }
}
