#!/usr/bin/env python3
"""Writes the notebooks in notebooks/ from the cell lists below (without outputs).

The committed notebooks carry the outputs of `scripts/run-notebooks.sh`; run this only to change
their code, then run that script to execute them again. With names, only those notebooks are
written (`python3 scripts/make_notebooks.py 01 05`), so the others keep their outputs.
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "notebooks"

SETUP = """:cache 4096
:dep heterolora = { package = "heterolora-notebook", path = "../crates/notebook" }"""

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

GPU_MD = """
## The same training on a GPU

Not executed here: the machine that ran this notebook has no GPU (its outputs come from two CPU
cores), so this cell is shown as code, not run, and no GPU time is claimed for it. On a machine
with an NVIDIA GPU, build the kernel's copy of heterolora with the `cuda` feature (it needs the
CUDA toolkit's `nvcc` where evcxr compiles; `scripts/build-cuda.sh` shows one way to get it) and
ask the settings for the device:

```rust
:dep heterolora = { package = "heterolora-notebook", path = "../crates/notebook", features = ["cuda"] }
use heterolora::prelude::*;
let ws = Workspace::open(Task::Mrpc, Settings::tutorial().device("cuda").tracking("tracking/mlflow.db"))?
    .with_experiment("01-quick-start-gpu")?;
let space = SearchSpace::lora_qv();
let result = ws.train("tutorial-uniform-r8-gpu", &ws.uniform(&space, 8)?, ws.train_config())?;
result
```

`device("cuda")` is the first GPU (`"cuda:1"` the second, `"auto"` a GPU when there is one).
"""

NB["01-quick-start"] = [
    md("""
# 01 · Quick start: a LoRA model that learns in a few minutes

Score where LoRA adapters could go in all-MiniLM-L6-v2 with a zero-cost proxy, choose an
allocation, fine-tune on GLUE MRPC (is sentence B a paraphrase of sentence A?), then reload the
saved adapter and look at its predictions: a confusion matrix and the pairs it got wrong.

This notebook uses the **tutorial** settings (`Settings::tutorial()`): the whole MRPC training
split (3,668 pairs) and dev split (408 pairs), sequences cut at 64 tokens, two epochs of batch 32
at learning rate 2e-3 with linear decay after a 6% warm-up. The training cell takes a few
minutes on two CPU cores. Always answering the majority class ("equivalent") scores 68.4% on dev:
a model that learned must beat that.
"""),
    md(SETUP_MD),
    code(SETUP),
    code("use heterolora::prelude::*;"),
    md("""
## Assets

The model and the GLUE data must be fetched once (`heterolora fetch model all-MiniLM-L6-v2`,
`heterolora fetch glue MRPC`); these calls fail with that advice when they are missing.
(`display_path` prints paths relative to this folder.)
"""),
    code("""
use heterolora::notebook::display_path;
let model_dir = heterolora::assets::require_model_dir("all-MiniLM-L6-v2")?;
let glue_dir = heterolora::assets::require_glue_dir(Task::Mrpc)?;
println!("model: {}\\nGLUE:  {}", display_path(&model_dir), display_path(&glue_dir));
"""),
    md("""
## A workspace: model, data and tracker

`Workspace` loads the model with MRPC's classification head and the scoring batches, and logs
every run to a tracker store. These notebooks use their own store, `notebooks/tracking/mlflow.db`,
so they never write into your `tracking/`.
"""),
    code("""
let mut ws = Workspace::open(Task::Mrpc, Settings::tutorial().tracking("tracking/mlflow.db"))?
    .with_experiment("01-quick-start")?;
ws
"""),
    code("ws.examples(Split::Train, 5)?"),
    code("ws.model()"),
    md("""
## Score the candidate slots

A LoRA adapter on a frozen linear map `y = W0 x + b` adds a low-rank update:
`y = W0 x + b + (alpha / r) · B A x`, with `A` (r × d_in) random and `B` (d_out × r) zero at the
start, so a fresh adapter changes nothing until it is trained. The search space here is LoRA on
the attention query and value maps of every layer: 12 slots.

`grad-norm` scores each slot by how strongly the task loss pulls on a fresh adapter there:
`||dL/dA||_F + ||dL/dB||_F`, with the gradients summed over the first 8 training batches. (With
`B = 0`, `dL/dA` is zero, so this is `||dL/dB||_F`; notebook 02 shows the proxies this blinds.)
"""),
    code("""
let space = SearchSpace::lora_qv();
let scores = ws.score("grad-norm", &space)?;
scores
"""),
    code("ws.plot_scores(&scores, None)?"),
    md("""
## Allocate: the top quarter at rank 8

HeteroLoRA's static top-k keeps the best-scored fraction `p` of the slots. Here `p = 0.25`
keeps 3 of 12 slots at `r = 8`: 18,432 adapter parameters, exactly the budget of rank 2 on all
12 slots. Notebook 03 trains it against the dynamic variant.
"""),
    code("""
let alloc = ws.top_k(&space, &scores, 0.25, 8)?;
alloc
"""),
    code("ws.plot_allocation(&alloc)?"),
    md("""
## Fine-tune: a model that leaves the majority class

Here we train LoRA's reference configuration, rank 8 on every query and value map (73,728
adapter parameters), with the tutorial recipe: the whole training split, two epochs, a dev
evaluation at each epoch's end. Progress lines appear as it runs; the run is logged to the
tracker (parameters, loss and learning rate every 2 steps, dev metrics, the allocation and the
trained adapters as artifacts). How long it takes depends on what else the machine runs: the
output below, 77.2% dev accuracy with seed 0, took 453 s on two cores shared with a study.
"""),
    code("""
let uniform8 = ws.uniform(&space, 8)?;
let result = ws.train("tutorial-uniform-r8", &uniform8, ws.train_config())?;
result
"""),
    code("""
println!(
    "best dev accuracy {:.2}% (majority class 68.38%), {} optimiser steps in {:.0} s",
    100.0 * result.best_metric.unwrap(),
    result.steps,
    result.wall_time_s
);
"""),
    md("""
## Reload the saved adapter for inference

Training saved the final adapters with the classification head in PEFT's format
(`adapter_config.json` and `adapter_model.safetensors`) as artifacts of its tracker run.
`saved_adapters` finds that folder from the run id; `load_adapters` puts them on a fresh copy of
the base model, as a separate program would (PEFT's `PeftModel.from_pretrained` reads the same
folder).
"""),
    code("""
use heterolora::predict::Which;
let run_id = result.run_id.clone().unwrap();
let adapter_dir = ws.saved_adapters(&run_id, Which::Final)?;
println!("adapters of run {}: {}", &run_id[..8], display_path(&adapter_dir));
let mut files: Vec<String> = std::fs::read_dir(&adapter_dir).unwrap()
    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
    .collect();
files.sort();
for f in &files {
    let bytes = std::fs::metadata(adapter_dir.join(f)).unwrap().len();
    println!("  {f:<28} {bytes:>9} bytes");
};
"""),
    code("""
let reloaded = ws.load_adapters(&adapter_dir)?;
println!(
    "reloaded: {} adapter parameters on {} slots, {} in the classification head",
    reloaded.slot_params().values().sum::<usize>(),
    reloaded.adapter_slots().len(),
    reloaded.head_params()
);
"""),
    md("""
## Predictions: confusion matrix and misclassified pairs

The reloaded model scores the dev split in the trainer's evaluation batches, so its accuracy
equals the one training logged for its last epoch. The confusion matrix counts gold classes
(rows) against predictions (columns); below it, the pairs the model got wrong with the highest
confidence.
"""),
    code("""
let report = ws.predict(&reloaded, Split::Dev, 5)?;
report
"""),
    code("""
let logged = result.final_metrics().unwrap()["accuracy"];
println!(
    "dev accuracy: reloaded adapters {:.4}, logged by training {:.4}, majority class {:.4}",
    report.metrics["accuracy"], logged, report.majority_rate()
);
"""),
    md("## Dev metrics, from the tracker"),
    code("ws.training_runs()?"),
    md(GPU_MD),
]

NB["02-proxies-and-search"] = [
    md("""
# 02 · Proxies and search

Several zero-cost proxies score the same slots from one shared gradient pass; how far do their
rankings agree, and which of them can see anything at all in a fresh adapter? Then three ways to
spend a budget: the same rank everywhere, the paper's static top-k, and a rank per slot chosen
under an exact parameter budget.

No training here, so the quick settings (`Settings::quick()`: 4 scoring batches of 16) suffice.
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
## The proxies

A slot `m` is a frozen map `y = W0 x + b` with a LoRA adapter `y += (alpha / r) · B A x`. A
*fresh* adapter, the one a proxy scores before any training, has `A` random (Kaiming-uniform)
and `B = 0`. `L` is the task loss; gradients are summed over the first N training batches
(unshuffled). `||·||_F` is the Frobenius norm, `⊙` the elementwise product.

| proxy | score of slot m | looks at |
|---|---|---|
| `constant` | 1 (ties broken at random: the random baseline) | nothing |
| `grad-norm` | `‖dL/dA‖_F + ‖dL/dB‖_F` | the adapter's gradients |
| `snip` | `Σ ‖A ⊙ dL/dA‖ + Σ ‖B ⊙ dL/dB‖` (sums of absolute values) | adapter weights × gradients |
| `synflow` | as `snip` with every weight replaced by its absolute value, an all-ones input and one batch | adapter weights × gradients |
| `fisher` | `Σ_c 0.5 · mean_n (Σ_s z · dL/dz)²` over the slot's output `z` (per output channel `c`) | the slot's output and its gradient |
| `snip-w0` | `Σ ‖W0 ⊙ dL/dW0‖` | the frozen weight |
| `w0-grad-norm` | `‖dL/dW0‖_F` | the frozen weight's gradient |
| `w0-grad-spectrum` | `Σ_{i ≤ r} σ_i(dL/dW0)²`, and what each extra rank adds | the frozen weight's gradient |

**Why fresh adapters blind SNIP and SynFlow.** The adapter's output is `(alpha / r) · B A x`, so
`dL/dA = (alpha / r) · Bᵀ (dL/dy) xᵀ`: zero while `B = 0`. Then `A ⊙ dL/dA = 0`, and
`B ⊙ dL/dB = 0` because `B` itself is zero: every term of SNIP and SynFlow vanishes, every slot
scores exactly 0, and a top-k on those scores is the random baseline in disguise. `grad-norm`
survives only through `dL/dB = (alpha / r) · (dL/dy)(A x)ᵀ`. The `w0-*` proxies avoid the
problem by looking at `dL/dW0`, the direction a LoRA update `ΔW = (alpha / r) · B A` moves the
frozen weight; and on *partly trained* adapters (`B ≠ 0`, as in dynamic re-allocation, notebook
03) SNIP and SynFlow see again.

The check, on this model:
"""),
    code("""
let space = SearchSpace::lora_qv();
let blind = ws.score_many(&["snip", "synflow"], &space)?;
for name in ["snip", "synflow"] {
    let s = blind.get(name)?;
    let largest = s.values.values().fold(0.0f64, |m, v| m.max(v.abs()));
    println!("{name:<8} on fresh adapters: largest |score| over {} slots = {largest}", s.values.len());
}
println!("every slot ties at 0: a top-k on these scores is a random choice");
"""),
    md("""
## Five informative proxies, one gradient pass

`grad-norm` and `fisher` look at fresh adapters; `snip-w0`, `w0-grad-norm` and
`w0-grad-spectrum` at the frozen weights' gradients (the last also says what each extra rank is
worth, which the heterogeneous allocator uses). The table below shows each proxy's best slots and
the Spearman rank correlation between every pair.
"""),
    code("""
let set = ws.score_many(&["grad-norm", "fisher", "snip-w0", "w0-grad-norm", "w0-grad-spectrum"], &space)?;
set
"""),
    code("set.heatmap(\"fisher\")?"),
    code("set.scatter(\"grad-norm\", \"w0-grad-norm\")?"),
    md("""
## LoRA-adapted shortcuts

HeteroLoRA also scores shortcut connections as adapter slots: each is
`S(x) = Ws x + (alpha_s / r) · Bs As x` with `Ws` frozen, either the identity (a low-rank
correction of an existing residual: `residual1` around attention, `residual2` around the
feed-forward block) or zero (a new low-rank path: `shortcut1` from a layer's input to its output,
`shortcut2` from the previous layer). The same proxy on the larger space:
"""),
    code("""
let wide = SearchSpace::lora_qv_shortcuts();
let wide_scores = ws.score("grad-norm", &wide)?;
ws.plot_scores(&wide_scores, None)?
"""),
    md("""
## Three allocations, one budget

All three below train the same number of adapter parameters (rank 2 on all 12 slots):
uniform, the top quarter at rank 8 (static top-k: `k = floor(p · M)` slots, ties at the
threshold filled at random), and a heterogeneous rank per slot from {1, 2, 4, 8, 16}
maximising the summed `w0-grad-spectrum` gain under that budget (a knapsack).
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
# 03 · Fine-tuning, dynamic re-allocation and tracking

Two tracked training runs at the same budget (3 of 12 q,v slots at rank 8, 18,432 adapter
parameters): HeteroLoRA's **static** top-k, chosen once before training, and its **dynamic**
variant, which re-chooses the slots during training. Then the re-allocation timeline and
everything read back from the tracker: the runs table, a filtered query, training curves and one
metric's history. The store is MLflow's own format:
`mlflow ui --backend-store-uri sqlite:///notebooks/tracking/mlflow.db` opens it.

Tutorial settings (`Settings::tutorial()`: whole training and dev splits), one epoch per run
here; each training cell takes a few minutes on two CPU cores. One seed says little about which method is
better: for that, `heterolora study` (notebook 05).
"""),
    md(SETUP_MD),
    code(SETUP),
    code("""
use heterolora::prelude::*;
use heterolora::search::DynamicSchedule;
"""),
    code("""
let mut ws = Workspace::open(Task::Mrpc, Settings::tutorial().tracking("tracking/mlflow.db"))?
    .with_experiment("03-fine-tuning-and-tracking")?;
let space = SearchSpace::lora_qv();
let scores = ws.score("grad-norm", &space)?;
let top = ws.top_k(&space, &scores, 0.25, 8)?;
ws
"""),
    md("""
## Static top-k

Scored once on fresh adapters (`grad-norm`), the top quarter trained for one epoch (the tutorial
recipe with `.epochs(1)`, to keep this notebook's two trainings to about ten minutes on two
shared cores; `heterolora study` trains longer). Besides the evaluation at the epoch's end,
`.eval_every(40)` adds a dev evaluation every 40 optimiser steps for the curves below. Progress lines (step, loss, learning rate, throughput) are printed as the
run goes.
"""),
    code("""
let cfg = ws.train_config().epochs(1).eval_every(40);
let static_run = ws.train("static-topk-grad-norm-r8", &top, cfg.clone())?;
static_run
"""),
    md("""
## Dynamic re-allocation

A static choice is made on adapters that have not learned anything yet (`B = 0`, see notebook
02). The dynamic variant revisits it while training: at every point of its schedule (the
reference's: every 0.2 epoch and at the start of each epoch) it

1. switches **every** candidate slot on (creating an adapter where there was none),
2. rescores all of them with `grad-norm` on the **current** weights (the same 8 scoring batches),
3. keeps only the top k (here 3) on for the steps that follow.

Switched-off adapters keep their weights (they are neither used nor updated) and come back as
they were when they are chosen again, so the budget of adapters in use stays 18,432 parameters
at every step. Every re-allocation is logged: `realloc.score.<slot>`, `realloc.enabled.<slot>`
and `realloc.churn` (slots that changed) as metrics at its step, the whole log as the
`reallocations.json` artifact.
"""),
    code("""
let dynamic_run = ws.train_dynamic("dynamic-topk-grad-norm-r8", &space, &scores, 0.25, 8, DynamicSchedule::default(), cfg.clone())?;
dynamic_run
"""),
    md("""
## The re-allocation timeline

Which slots were on after each re-allocation (x: the optimiser step it happened at), read from
the run's `reallocations.json` in the tracker (`heterolora plot timeline` draws the same).

In the committed run every re-allocation (steps 0, 23, 46, 69 and 92) kept the same three slots,
the value maps of layers 3, 4 and 5, which the static scores had chosen too: the churn below is 0
throughout, so this dynamic run trained exactly what the static one did, and their dev metrics
agree to the last digit. Whether the choice moves depends on the run (its length, the budget,
the seed); the timeline and `realloc.churn` are where to see it.
"""),
    code("ws.timeline(dynamic_run.run_id.as_deref().unwrap())?"),
    code("ws.history(dynamic_run.run_id.as_deref().unwrap(), \"realloc.churn\")?"),
    md("## The runs, from the tracker"),
    code("ws.training_runs()?"),
    code("ws.runs_where(\"params.allocation.method = 'topk' and metrics.best_dev_accuracy > 0.684\")?"),
    md("## Training curves"),
    code("""
let ids = vec![static_run.run_id.clone().unwrap(), dynamic_run.run_id.clone().unwrap()];
ws.curves(&ids, &["train_loss", "dev_accuracy", "dev_f1"])?
"""),
    code("ws.history(&ids[0], \"dev_accuracy\")?"),
    md("""
The same curves and the timeline from the command line:

```
heterolora plot curves --experiment 03-fine-tuning-and-tracking \\\\
    --tracking-uri notebooks/tracking/mlflow.db --out plots/
heterolora plot timeline --tracking-uri notebooks/tracking/mlflow.db --run <run id> --out plots/
```
"""),
]

NB["04-comparing-runs-and-budgets"] = [
    md("""
# 04 · Comparing runs and budgets

A small sweep: uniform ranks, proxy top-k and heterogeneous ranks at two budgets each, trained as
child runs of one parent run, then the dev accuracy against the trainable-parameter budget and
the runs table, both read from the tracker.

With the quick settings (320 training examples, one epoch, one seed) the runs stay at or near the
majority class of the 200 dev examples (68.5% accuracy): the chart shows the mechanics, not a
result (notebooks 01 and 03 train with the tutorial settings, which learn). The real comparison
(the whole training split, several seeds, the reference protocol) is
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

NB["05-study"] = [
    md("# 05 · The study: does HeteroLoRA beat uniform LoRA at the same budget?\n\n`heterolora study` compares methods at the same trainable-parameter budget, seed by seed. Under\nthe default protocol (`cpu6`: 6 epochs over the full training split) it runs the four core\nmethods on seeds 0-4: uniform LoRA r = 2 on every query and value map (the equal-budget\nbaseline), static HeteroLoRA (grad-norm, top 25% at r = 8), random allocation and dynamic\nHeteroLoRA. Every (method, seed) is a child run of one parent run in the tracker; a study can be\nstopped and continued (finished children are skipped).\n\nThis notebook shows the plan and its exact budgets, runs a two-method smoke study on 128\ntraining examples, and reads the committed MRPC results (`results/mrpc/`), which the command\nline produced with `heterolora study --task mrpc` (20 children, about 2 hours on 2 cores), and the\nSTS-B results (`results/stsb/`, `heterolora study --task stsb`): the same question on a regression task."),
    md("The first cell compiles `heterolora` inside the evcxr kernel (10-20 minutes the first time)."),
    code(":cache 4096\n:dep heterolora = { package = \"heterolora-notebook\", path = \"../crates/notebook\" }"),
    code("use heterolora::data::Task;\nuse heterolora::study::{AssetSource, Method, Protocol, Study, StudyConfig, StudyReport};\nuse heterolora::tracking::Tracker;"),
    md("## The protocol and the methods\n\nThe protocol is a validated struct (its doc comment has the parameter table). `Protocol::cpu6()`\nis the default, chosen by a pilot (`results/pilot/`): there the equal-budget baseline leaves the\nmajority class by a clear margin. `Protocol::paper()` is the authors' 20-epoch protocol for a GPU."),
    code("let protocol = Protocol::cpu6();\nprintln!(\"{}\", protocol.describe());\nfor m in Method::core() {\n    println!(\"{:<20} {}\", m.name, m.description);\n};"),
    md("## The plan: exact budgets and what is already done\n\n3 of the 12 q,v modules at r = 8 cost 18,432 parameters, exactly uniform r = 2 on all 12.\nThe plan needs only the model's `config.json`; the committed records say which children are done."),
    code("let tracker = Tracker::open(\"../tracking/mlflow.db\")?;\nlet cfg = StudyConfig::new(Task::Mrpc, protocol.clone()).results_dir(\"../results/mrpc\");\nlet mut study = Study::new(cfg.clone(), tracker.clone(), Box::new(AssetSource::new(None, None)));\nprintln!(\"{}\", study.plan()?);"),
    md("## A smoke study: two methods, one seed, 128 training examples\n\nA separate study name and the notebooks' own tracker store (`notebooks/tracking/mlflow.db`) keep it apart from the real one. With so few examples the numbers are\nnoise; the point is the mechanics: child runs under one parent, the report from the tracker.\nRun this cell twice: the second time both children are skipped."),
    code("// The smoke study logs to the notebooks' own store, never to the project's tracking/.\nlet nb_tracker = Tracker::open(\"tracking/mlflow.db\")?;\nlet mut smoke = protocol.clone();\nsmoke.name = \"smoke\".into();\nsmoke.epochs = 1;\nsmoke.limit_train = Some(128);\nlet smoke_cfg = StudyConfig::new(Task::Mrpc, smoke)\n    .name(\"mrpc-notebook-smoke6\")\n    .methods(Method::select(&[\"uniform-r2,static-grad-norm\".to_string()])?)\n    .seeds(vec![0])\n    .results_dir(\"tracking/notebook-smoke\");\nlet mut s = Study::new(smoke_cfg.clone(), nb_tracker.clone(), Box::new(AssetSource::new(None, None)));\nlet outcome = s.run(&mut |line| println!(\"{line}\"))?;\nprintln!(\"finished {:?}, skipped {:?}, failed {:?}\", outcome.finished, outcome.skipped, outcome.failed);\nStudyReport::collect(Some(&nb_tracker), &smoke_cfg)?"),
    md("## The MRPC results\n\nFrom the tracker where it has them, else from the committed child records in\n`results/mrpc/children/` (so this works on a fresh clone). The summary, table and figures are the\nones `heterolora study report --task mrpc` writes; nothing is typed by hand. The verdict comes from\nthe paired 95% t interval over seeds."),
    code("let report = StudyReport::collect(Some(&tracker), &cfg)?;\nprintln!(\"{}\", report.summary_markdown());\nreport"),
    md("Each method's difference from uniform r = 2, seed by seed (dots), with the mean and its 95% t\ninterval; the dashed line is the paper's +1.6."),
    code("match heterolora::plot::study::paired_figure(&report)? {\n    Some(fig) => fig.evcxr_display(),\n    None => println!(\"no method shares a seed with the baseline yet\"),\n};"),
    md("Last-epoch dev accuracy against adapter parameters: every seed, and the mean ± std per method."),
    code("match heterolora::plot::study::budget_figure(&report)? {\n    Some(fig) => fig.evcxr_display(),\n    None => println!(\"no MRPC child run has finished yet\"),\n};"),
    md("## STS-B: the same question on a regression task\n\nSTS-B scores sentence pairs for similarity from 0 to 5 (5,749 training and 1,500 dev pairs); the\nprimary metric is dev Pearson correlation at the last epoch, with the dev mean squared error beside\nit. Its child records keep every dev prediction, so the bootstrap resamples the dev pairs within\neach seed as well as the seeds (the two-level bootstrap). Same four core methods, same budget,\nsame `cpu6` protocol; the summary says how many children have finished."),
    code("let stsb_cfg = StudyConfig::new(Task::Stsb, protocol.clone()).results_dir(\"../results/stsb\");\nlet stsb = StudyReport::collect(Some(&tracker), &stsb_cfg)?;\nprintln!(\"{}\", stsb.summary_markdown());\nstsb"),
    code("match heterolora::plot::study::paired_figure(&stsb)? {\n    Some(fig) => fig.evcxr_display(),\n    None => println!(\"no STS-B method shares a seed with the baseline yet\"),\n};"),
    md("## RTE under the authors' protocol\n\nRTE (2,490 training and 277 dev pairs, entailment or not) stays at the majority class under the\n6-epoch recipes (`results/pilot-rte/`). Under `Protocol::paper()` (20 epochs, batch 8, lr 2e-4,\nconstant rate) the baseline leaves it, so this study uses that protocol: the four core methods on\nseeds 0-4, `heterolora study --task rte --protocol paper --methods core --seeds 0,1,2,3,4`. A child\ntakes 35-55 minutes on this CPU, so the study runs across sessions from committed checkpoints;\nthe summary says how many children have finished, and gives no verdict before two paired seeds."),
    code("let rte_cfg = StudyConfig::new(Task::Rte, Protocol::paper())\n    .methods(Method::core())\n    .seeds(vec![0, 1, 2, 3, 4])\n    .results_dir(\"../results/rte-paper\");\nlet rte = StudyReport::collect(Some(&tracker), &rte_cfg)?;\nprintln!(\"{}\", rte.summary_markdown());\nrte"),
    code("match heterolora::plot::study::paired_figure(&rte)? {\n    Some(fig) => fig.evcxr_display(),\n    None => println!(\"no RTE method shares a seed with the baseline yet\"),\n};"),
]

wanted = sys.argv[1:]
unknown = [w for w in wanted if not any(n.startswith(w) for n in NB)]
if unknown:
    sys.exit(f"no notebook named {', '.join(unknown)}; the notebooks are {', '.join(NB)}")
for name, cells in NB.items():
    if wanted and not any(name.startswith(w) for w in wanted):
        continue
    path = ROOT / f"{name}.ipynb"
    path.write_text(json.dumps(notebook(name, cells), indent=1, ensure_ascii=False) + "\n")
    print("wrote", path)
