//! What a study is: [`StudyConfig`] (task, protocol, methods, seeds, where it logs and writes)
//! and the order its children run in.

use super::methods::Method;
use super::protocol::Protocol;
use crate::data::Task;
use crate::{Error, Result};
use std::path::PathBuf;

/// Tag values that mark study runs in the tracker.
pub const KIND_PARENT: &str = "study";
pub const KIND_CHILD: &str = "study-child";

/// What a study is: task, protocol, methods, seeds, where it logs and writes.
#[derive(Debug, Clone)]
pub struct StudyConfig {
    /// Study name: the parent run's name and the prefix of every child key. Default: the task
    /// (`mrpc`) under the default protocol ([`Protocol::DEFAULT`], `cpu6`), `<task>-<protocol>`
    /// otherwise (`mrpc-cpu`, `mrpc-paper`).
    pub name: String,
    pub task: Task,
    pub protocol: Protocol,
    pub methods: Vec<Method>,
    pub seeds: Vec<u64>,
    /// Tracker experiment (default `study-<task>`).
    pub experiment: String,
    /// Where the report and the committed child records go (default `results/<name>`).
    pub results_dir: PathBuf,
    /// Run order of the children.
    pub order: Order,
}

/// The order children run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Every method on the first seed, then every method on the next seed: a study cut short
    /// has compared all methods on the same seeds.
    #[default]
    SeedMajor,
    /// Every seed of the first method, then of the next.
    MethodMajor,
}

impl std::str::FromStr for Order {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "seed-major" | "seed" => Ok(Order::SeedMajor),
            "method-major" | "method" => Ok(Order::MethodMajor),
            _ => Err(Error::invalid("order", s, "`seed-major` or `method-major`")),
        }
    }
}

/// The reference's seeds: the default of the `cpu` and `paper` protocols.
pub const SEEDS: [u64; 3] = [0, 13, 42];

/// The default protocol's seeds: five, the fewest the study's paired intervals are built for.
pub const CORE_SEEDS: [u64; 5] = [0, 1, 2, 3, 4];

impl StudyConfig {
    /// Defaults by protocol: under `cpu6` (the default) the four core methods
    /// ([`Method::core`]) on seeds 0-4, under `cpu` the first study's 12 methods
    /// ([`Method::cpu_default`]) and under `paper` every method, both on seeds 0, 13, 42.
    pub fn new(task: Task, protocol: Protocol) -> Self {
        let default = protocol.name == Protocol::DEFAULT;
        let name = if default {
            task.name().to_string()
        } else {
            format!("{}-{}", task.name(), protocol.name)
        };
        let (methods, seeds) = match protocol.name.as_str() {
            n if n == Protocol::DEFAULT => (Method::core(), CORE_SEEDS.to_vec()),
            n if n.starts_with("cpu") => (Method::cpu_default(), SEEDS.to_vec()),
            _ => (Method::all(), SEEDS.to_vec()),
        };
        StudyConfig {
            experiment: format!("study-{}", task.name()),
            results_dir: PathBuf::from("results").join(&name),
            name,
            task,
            methods,
            protocol,
            seeds,
            order: Order::default(),
        }
    }
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
    pub fn methods(mut self, methods: Vec<Method>) -> Self {
        self.methods = methods;
        self
    }
    pub fn seeds(mut self, seeds: Vec<u64>) -> Self {
        self.seeds = seeds;
        self
    }
    pub fn experiment(mut self, e: impl Into<String>) -> Self {
        self.experiment = e.into();
        self
    }
    pub fn results_dir(mut self, d: impl Into<PathBuf>) -> Self {
        self.results_dir = d.into();
        self
    }

    /// Folder of the committed child records.
    pub fn children_dir(&self) -> PathBuf {
        self.results_dir.join("children")
    }

    /// Folder of the checkpoints of children in training (`checkpoints/<method>-seed<seed>/`
    /// under the results folder): a stopped child continues from it; it is removed when the child
    /// finishes. Commit it to carry a child that is still training to another machine or session.
    pub fn checkpoints_dir(&self) -> PathBuf {
        self.results_dir.join("checkpoints")
    }

    /// One child's checkpoint folder (see [`StudyConfig::checkpoints_dir`]).
    pub fn checkpoint_dir(&self, method: &str, seed: u64) -> PathBuf {
        self.checkpoints_dir().join(format!("{method}-seed{seed}"))
    }

    pub fn check(&self) -> Result<()> {
        self.protocol.check()?;
        let ok = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        if self.name.is_empty() || !self.name.chars().all(ok) {
            return Err(Error::invalid(
                "study name",
                &self.name,
                "letters, digits, `-`, `_` or `.`",
            ));
        }
        if self.methods.is_empty() {
            return Err(Error::invalid("methods", "none", "at least one method"));
        }
        if self.seeds.is_empty() {
            return Err(Error::invalid("seeds", "none", "at least one seed"));
        }
        let mut s = self.seeds.clone();
        s.sort();
        s.dedup();
        if s.len() != self.seeds.len() {
            return Err(Error::invalid(
                "seeds",
                format!("{:?}", self.seeds),
                "distinct seeds",
            ));
        }
        Ok(())
    }
}
