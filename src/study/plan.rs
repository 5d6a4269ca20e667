//! The plan of a study: every child in run order with its budget and whether it is already done.

use super::methods::Method;
use super::protocol::Protocol;
use crate::adapters::ModelDims;
use crate::data::Task;
use crate::search::Budget;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// One planned child.
#[derive(Debug, Clone)]
pub struct ChildPlan {
    pub method: Method,
    pub seed: u64,
    pub key: String,
    pub budget: Budget,
    /// Already finished (in the tracker or in the committed records): will be skipped.
    pub done: bool,
}

/// The plan of a study: every child in run order, with budgets and what is already done.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub task: Task,
    pub protocol: Protocol,
    pub dims: ModelDims,
    pub children: Vec<ChildPlan>,
}

impl Plan {
    pub fn pending(&self) -> impl Iterator<Item = &ChildPlan> {
        self.children.iter().filter(|c| !c.done)
    }
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let done = self.children.iter().filter(|c| c.done).count();
        writeln!(
            f,
            "study `{}` on {} ({} layers, hidden {}), protocol {}",
            self.name,
            self.task.name(),
            self.dims.num_layers,
            self.dims.hidden_size,
            self.protocol.describe()
        )?;
        writeln!(
            f,
            "{} children, {done} already finished, {} to run (in this order):",
            self.children.len(),
            self.children.len() - done
        )?;
        let mut seen = BTreeSet::new();
        writeln!(
            f,
            "  {:<30} {:<14} {:>7} {:>6}  {:<28} seeds",
            "method", "space", "budget", "slots", "proxy"
        )?;
        for c in &self.children {
            if !seen.insert(c.method.name.clone()) {
                continue;
            }
            let seeds: Vec<String> = self
                .children
                .iter()
                .filter(|x| x.method.name == c.method.name)
                .map(|x| format!("{}{}", x.seed, if x.done { "(done)" } else { "" }))
                .collect();
            writeln!(
                f,
                "  {:<30} {:<14} {:>7} {:>6}  {:<28} {}",
                c.method.name,
                c.method.space.as_str(),
                c.budget.params,
                c.method.candidates(&self.dims).len(),
                format!(
                    "{}{}",
                    c.method.proxy.as_deref().unwrap_or("-"),
                    if c.method.dynamic { " (dynamic)" } else { "" }
                ),
                seeds.join(" ")
            )?;
            writeln!(f, "      {}; budget: {}", c.method.description, c.budget)?;
        }
        Ok(())
    }
}

/// Writes a plan's budgets as text lines (for logs), e.g. `uniform-r2: 18432`.
pub fn budget_lines(plan: &Plan) -> String {
    let mut s = String::new();
    let mut seen = BTreeSet::new();
    for c in &plan.children {
        if seen.insert(&c.method.name) {
            let _ = writeln!(s, "{}: {}", c.method.name, c.budget);
        }
    }
    s
}
