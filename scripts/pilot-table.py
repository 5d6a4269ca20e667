#!/usr/bin/env python3
"""The protocol pilot's table (results/pilot/README.md) from the records scripts/pilot.sh writes:
dev accuracy and dev cross-entropy after every epoch of each configuration.

    python3 scripts/pilot-table.py > results/pilot/table.md
"""

import glob
import json
import os

PRIOR_CE = 0.624  # cross-entropy of always predicting MRPC's dev class prior


def main():
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "results", "pilot")
    rows = []
    for path in sorted(glob.glob(os.path.join(here, "*.json"))):
        r = json.load(open(path))
        evals = [e for e in r["result"]["evals"] if e.get("epoch_end", True)]
        acc = [100 * e["metrics"]["accuracy"] for e in evals]
        ce = [e["metrics"]["loss"] for e in evals]
        best_ce = min(range(len(ce)), key=lambda i: ce[i])
        rows.append((os.path.basename(path)[:-5], r["config"], acc, ce, best_ce, r["result"].get("wall_time_s")))
    print("| configuration | dev accuracy after each epoch | last | dev cross-entropy after each epoch | lowest (epoch) | train wall s |")
    print("|---|---|---|---|---|---|")
    for name, cfg, acc, ce, best, wall in rows:
        flags = cfg.split("linear decay, ", 1)[-1]
        print(f"| {name}: {flags} | {', '.join(f'{a:.2f}' for a in acc)} | **{acc[-1]:.2f}** | "
              f"{', '.join(f'{c:.3f}' for c in ce)} | {ce[best]:.3f} ({best + 1}) | {wall or 0:.0f} |")
    print(f"\nMajority class 68.38%; the class prior's cross-entropy {PRIOR_CE}.")


if __name__ == "__main__":
    main()
