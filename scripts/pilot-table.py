#!/usr/bin/env python3
"""A protocol pilot's table (results/pilot*/README.md) from the records scripts/pilot.sh writes:
the primary dev metric and the dev loss after every epoch of each configuration.

    python3 scripts/pilot-table.py [--task mrpc|rte|stsb] > results/<pilot folder>/table.md
"""

import argparse
import glob
import json
import os

# What the floor looks like on each task's dev split: the majority class (classification, with the
# cross-entropy of always predicting the dev class prior) or, for STS-B, the mean squared error of
# always predicting the training targets' mean (docs/study.md).
FLOOR = {
    "mrpc": ("accuracy", "cross-entropy", "Majority class 68.38%; the class prior's cross-entropy 0.624."),
    "rte": ("accuracy", "cross-entropy", "Majority class 52.71%; the class prior's cross-entropy 0.692."),
    "stsb": ("Pearson x100", "mean squared error",
             "Always predicting the training mean: Pearson undefined (0), mean squared error 2.36."),
}


def folder(task):
    return "pilot" if task == "mrpc" else f"pilot-{task}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="mrpc", choices=sorted(FLOOR))
    args = ap.parse_args()
    metric_name, loss_name, floor = FLOOR[args.task]
    key = "pearson" if args.task == "stsb" else "accuracy"
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "results", folder(args.task))
    rows = []
    for path in sorted(glob.glob(os.path.join(here, "*.json"))):
        r = json.load(open(path))
        evals = [e for e in r["result"]["evals"] if e.get("epoch_end", True)]
        primary = [100 * e["metrics"][key] for e in evals]
        loss = [e["metrics"]["loss"] for e in evals]
        best = min(range(len(loss)), key=lambda i: loss[i])
        rows.append((os.path.basename(path)[:-5], r["config"], primary, loss, best, r["result"].get("wall_time_s")))
    print(f"| configuration | dev {metric_name} after each epoch | last | dev {loss_name} after each epoch "
          "| lowest (epoch) | train wall s |")
    print("|---|---|---|---|---|---|")
    for name, cfg, primary, loss, best, wall in rows:
        flags = cfg.split("linear decay, ", 1)[-1]
        print(f"| {name}: {flags} | {', '.join(f'{a:.2f}' for a in primary)} | **{primary[-1]:.2f}** | "
              f"{', '.join(f'{c:.3f}' for c in loss)} | {loss[best]:.3f} ({best + 1}) | {wall or 0:.0f} |")
    print(f"\n{floor}")


if __name__ == "__main__":
    main()
