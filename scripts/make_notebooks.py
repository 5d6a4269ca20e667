#!/usr/bin/env python3
"""Writes the notebooks in notebooks/ from the cell lists below (without outputs).

The committed notebooks carry the outputs of `scripts/run-notebooks.sh`; run this only to change
their code, then run that script to execute them again.
"""
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent / "notebooks"

SETUP = """:cache 4096
:dep heterolora = { path = ".." }"""

def md(text):
    return {"cell_type": "markdown", "metadata": {}, "source": text.strip("\n").splitlines(True)}

def code(text):
    return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
            "source": text.strip("\n").splitlines(True)}

def notebook(name, cells):
    # Stable cell ids (nbformat 4.5 requires them): re-running a notebook then changes only outputs.
    cells = [dict(c, id=f"{name[:2]}-{i:02d}") for i, c in enumerate(cells)]
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Rust", "language": "rust", "name": "rust"},
            "language_info": {"codemirror_mode": "rust", "file_extension": ".rs",
                              "mimetype": "text/rust", "name": "Rust", "pygment_lexer": "rust",
                              "version": ""},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }

SETUP_MD = """The first cell compiles `heterolora` and its dependencies inside the evcxr kernel. The first
time this takes 10-20 minutes; with the same `EVCXR_TMPDIR` (as `scripts/run-notebooks.sh`
sets) later runs take seconds."""

NB = {}

NB["01-quick-start"] = [
    md("""
# 01 · Quick start

Score where LoRA adapters could go in all-MiniLM-L6-v2 with a zero-cost proxy, keep the most
promising quarter, fine-tune them on GLUE MRPC and read the dev metrics, in a dozen cells.

This notebook uses the **quick** settings (a few hundred training examples, short sequences,
one epoch) so it runs in minutes on a CPU: its accuracies show the pipeline working, not how the
methods compare. For that, see notebook 04 and `heterolora study`.
"""),
    md(SETUP_MD),
    code(SETUP),
    code("use heterolora::prelude::*;"),
    md("""
## Assets

The model and the GLUE data must be fetched once (`heterolora fetch model all-MiniLM-L6-v2`,
`heterolora fetch glue MRPC`); these calls fail with that advice when they are missing.
"""),
    code("""
let model_dir = heterolora::assets::require_model_dir("all-MiniLM-L6-v2")?;
let glue_dir = heterolora::assets::require_glue_dir(Task::Mrpc)?;
println!("model: {}\\nGLUE:  {}", model_dir.display(), glue_dir.display());
"""),
    md("""
## A workspace: model, data and tracker

`Workspace` loads the model with MRPC's classification head and the scoring batches, and logs
every run to a tracker store. These notebooks use their own store, `notebooks/tracking/mlflow.db`,
so they never write into your `tracking/`.
"""),
    code("""
let mut ws = Workspace::open(Task::Mrpc, Settings::quick().tracking("tracking/mlflow.db"))?
    .with_experiment("01-quick-start")?;
ws
"""),
    code("ws.examples(Split::Train, 5)?"),
    code("ws.model()"),
    md("""
## Score the candidate slots

The search space is LoRA on the attention query and value maps of every layer (12 slots).
`grad-norm` scores each slot by the gradient norm of a fresh adapter there, from a few batches.
"""),
    code("""
let space = SearchSpace::lora_qv();
let scores = ws.score("grad-norm", &space)?;
scores
"""),
    code("ws.plot_scores(&scores, None)?"),
    md("""
## Allocate: the top quarter at rank 8

The paper's static top-k keeps the best-scored fraction `p` of the slots. Here `p = 0.25` keeps
3 of 12 slots at `r = 8`, the same parameter budget as rank 2 everywhere.
"""),
    code("""
let alloc = ws.top_k(&space, &scores, 0.25, 8)?;
alloc
"""),
    code("ws.plot_allocation(&alloc)?"),
    md("""
## Fine-tune

One epoch on the first 320 training examples (evaluated on the first 200 dev examples); progress lines appear as it runs, and the run is
logged to the tracker (parameters, loss and learning rate every 2 steps, dev metrics, the
allocation as an artifact).
"""),
    code("""
let result = ws.train("quick-start-topk", &alloc, ws.train_config())?;
result
"""),
    md("## Dev metrics, from the tracker"),
    code("ws.training_runs()?"),
]

NB["02-proxies-and-search"] = [
    md("""
# 02 · Proxies and search

Several zero-cost proxies score the same slots from one shared gradient pass; how far do their
rankings agree? Then three ways to spend a budget: the same rank everywhere, the paper's static
top-k, and a rank per slot chosen under an exact parameter budget.
"""),
    md(SETUP_MD),
    code(SETUP),
    code("use heterolora::prelude::*;"),
    code("""
let mut ws = Workspace::open(Task::Mrpc, Settings::quick().tracking("tracking/mlflow.db"))?
    .with_experiment("02-proxies-and-search")?;
ws
"""),
    md("""
## Five proxies, one gradient pass

`grad-norm` and `fisher` look at fresh adapters; `snip-w0`, `w0-grad-norm` and
`w0-grad-spectrum` at the frozen weights' gradients (the last also says what each extra rank is
worth, which the heterogeneous allocator uses). The table below shows each proxy's best slots and
the Spearman rank correlation between every pair.
"""),
    code("""
let space = SearchSpace::lora_qv();
let set = ws.score_many(&["grad-norm", "fisher", "snip-w0", "w0-grad-norm", "w0-grad-spectrum"], &space)?;
set
"""),
    code("set.heatmap(\"fisher\")?"),
    code("set.scatter(\"grad-norm\", \"w0-grad-norm\")?"),
    md("""
## LoRA-adapted shortcuts

HeteroLoRA also scores shortcut connections (residual and cross-layer) as adapter slots. The same
proxy on the larger space:
"""),
    code("""
let wide = SearchSpace::lora_qv_shortcuts();
let wide_scores = ws.score("grad-norm", &wide)?;
ws.plot_scores(&wide_scores, None)?
"""),
    md("""
## Three allocations, one budget

All three below train the same number of adapter parameters (rank 2 on all 12 slots):
uniform, the top quarter at rank 8, and a heterogeneous rank per slot from {1, 2, 4, 8, 16}
maximising the summed `w0-grad-spectrum` gain under that budget.
"""),
    code("""
let uniform = ws.uniform(&space, 2)?;
let top = ws.top_k(&space, &set.get("grad-norm")?, 0.25, 8)?;
let hetero = ws.heterogeneous(&space, &set.get("w0-grad-spectrum")?, &[0, 1, 2, 4, 8, 16], "uniform:r=2")?;
let mut table = HtmlTable::new(["allocation", "slots on", "adapter parameters", "ranks"]);
for (name, a) in [("uniform r=2", &uniform), ("top-k p=0.25 r=8", &top), ("heterogeneous", &hetero)] {
    let s = a.summary();
    table.push_row([name.to_string(), s.enabled.to_string(), s.trainable_params.to_string(), format!("{:?}", s.ranks)]);
}
table
"""),
    code("ws.plot_allocation(&hetero)?"),
    code("""
println!("top-k and heterogeneous share {} slots (Jaccard {:.2})", top.overlap(&hetero), top.jaccard(&hetero));
"""),
    md("""
## Budgets

A budget can be named by what it equals (`uniform:r=R`, `top:p=P,r=R`) or as a count; the
allocators hit it exactly or stay under it.
"""),
    code("""
let mut budgets = HtmlTable::new(["budget", "adapter parameters", "slots on"]);
for b in ["uniform:r=1", "uniform:r=4", "top:p=0.5,r=8", "20000"] {
    let a = ws.heterogeneous(&space, &set.get("w0-grad-spectrum")?, &[0, 1, 2, 4, 8, 16], b)?;
    budgets.push_row([b.to_string(), a.trainable_params().to_string(), a.enabled().len().to_string()]);
}
budgets
"""),
]

NB["03-fine-tuning-and-tracking"] = [
    md("""
# 03 · Fine-tuning and tracking

Two tracked training runs (a proxy-chosen top-k allocation and the uniform baseline at the same
budget), then everything read back from the tracker: the runs table, filtered queries, training
curves and one metric's history. The store is MLflow's own format:
`mlflow ui --backend-store-uri sqlite:///notebooks/tracking/mlflow.db` opens it.

With the quick settings (320 training examples, two epochs here) both runs stay at the majority
class of the 200 dev examples (68.5% accuracy) while their dev loss falls: the point of this
notebook is the tracking. The comparison itself is `heterolora study` (notebook 05).
"""),
    md(SETUP_MD),
    code(SETUP),
    code("use heterolora::prelude::*;"),
    code("""
let mut ws = Workspace::open(Task::Mrpc, Settings::quick().tracking("tracking/mlflow.db"))?
    .with_experiment("03-fine-tuning-and-tracking")?;
let space = SearchSpace::lora_qv();
let scores = ws.score("grad-norm", &space)?;
let top = ws.top_k(&space, &scores, 0.25, 8)?;
let uniform = ws.uniform(&space, 2)?;
ws
"""),
    md("""
## Train with a progress display

Two epochs with a dev evaluation at each epoch's end (`.eval_every(n)` adds one every n
optimiser steps). The progress lines (step, loss, learning rate, throughput) are printed as the
run goes.
"""),
    code("""
let cfg = ws.train_config().epochs(2);
let top_run = ws.train("topk-grad-norm-r8", &top, cfg.clone())?;
top_run
"""),
    code("""
let uniform_run = ws.train("uniform-r2", &uniform, cfg.clone())?;
uniform_run
"""),
    md("## The runs, from the tracker"),
    code("ws.training_runs()?"),
    code("ws.runs_where(\"params.allocation.method = 'topk' and metrics.dev_accuracy > 0\")?"),
    md("## Training curves"),
    code("""
let ids = vec![top_run.run_id.clone().unwrap(), uniform_run.run_id.clone().unwrap()];
ws.curves(&ids, &["train_loss", "dev_accuracy", "dev_f1"])?
"""),
    code("ws.history(&ids[0], \"dev_accuracy\")?"),
    md("""
The same curves from the command line:

```
heterolora plot curves --experiment 03-fine-tuning-and-tracking \\
    --tracking-uri notebooks/tracking/mlflow.db --out plots/
```
"""),
]

NB["04-comparing-runs-and-budgets"] = [
    md("""
# 04 · Comparing runs and budgets

A small sweep: uniform ranks, proxy top-k and heterogeneous ranks at two budgets each, trained as
child runs of one parent run, then the dev accuracy against the trainable-parameter budget and
the runs table, both read from the tracker.

With the quick settings (320 training examples, one epoch, one seed) every run stays at the
majority class of the 200 dev examples (68.5% accuracy): the chart shows the mechanics, not a result.
The real comparison (the whole training split, several seeds, the reference protocol) is
`heterolora study`, and its runs go into the same kind of chart with `heterolora plot budget`.
"""),
    md(SETUP_MD),
    code(SETUP),
    code("use heterolora::prelude::*;"),
    code("""
let mut ws = Workspace::open(Task::Mrpc, Settings::quick().tracking("tracking/mlflow.db"))?
    .with_experiment("04-comparing-runs-and-budgets")?;
let space = SearchSpace::lora_qv();
let set = ws.score_many(&["grad-norm", "w0-grad-spectrum"], &space)?;
set
"""),
    md("## The trials: two budgets per method"),
    code("""
let cfg = ws.train_config();
let grad = set.get("grad-norm")?;
let spectrum = set.get("w0-grad-spectrum")?;
let ranks: [usize; 6] = [0, 1, 2, 4, 8, 16];
let trials = vec![
    SweepTrial::new("uniform-r1", "uniform", ws.uniform(&space, 1)?, cfg.clone()),
    SweepTrial::new("uniform-r4", "uniform", ws.uniform(&space, 4)?, cfg.clone()),
    SweepTrial::new("topk-p0.25-r4", "top-k grad-norm", ws.top_k(&space, &grad, 0.25, 4)?, cfg.clone()),
    SweepTrial::new("topk-p0.25-r16", "top-k grad-norm", ws.top_k(&space, &grad, 0.25, 16)?, cfg.clone()),
    SweepTrial::new("hetero-u1", "heterogeneous w0-grad-spectrum", ws.heterogeneous(&space, &spectrum, &ranks, "uniform:r=1")?, cfg.clone()),
    SweepTrial::new("hetero-u4", "heterogeneous w0-grad-spectrum", ws.heterogeneous(&space, &spectrum, &ranks, "uniform:r=4")?, cfg.clone()),
];
let mut plan = HtmlTable::new(["trial", "method", "slots on", "adapter parameters"]);
for t in &trials {
    plan.push_row([t.name.clone(), t.method.clone(), t.allocation.enabled().len().to_string(), t.allocation.trainable_params().to_string()]);
}
plan
"""),
    md("## Run the sweep (six short trainings, each a child run)"),
    code("""
let sweep = ws.sweep("budget-sweep", trials)?;
sweep
"""),
    md("## Accuracy against budget, from the tracker"),
    code("ws.budget_plot(\"tags.heterolora.kind = 'train'\", \"best_dev_accuracy\")?"),
    code("ws.training_runs()?"),
    code("""
let children = ws.tracker().child_runs(&sweep.parent_run_id)?;
println!("parent run {} has {} child runs", sweep.parent_run_id, children.len());
"""),
    code("ws.curves(&sweep.run_ids(), &[\"train_loss\"])?"),
    md("""
From the command line, the same chart (and the one for a study's runs):

```
heterolora plot budget --experiment 04-comparing-runs-and-budgets \\
    --tracking-uri notebooks/tracking/mlflow.db --out plots/
heterolora study ...            # the real comparison: full data, several seeds
heterolora plot budget --experiment <study name> --out plots/
```
"""),
]

for name, cells in NB.items():
    path = ROOT / f"{name}.ipynb"
    path.write_text(json.dumps(notebook(name, cells), indent=1, ensure_ascii=False) + "\n")
    print("wrote", path)
