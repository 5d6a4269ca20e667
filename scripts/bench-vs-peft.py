#!/usr/bin/env python3
"""Training-step throughput and peak memory of heterolora and of PyTorch + PEFT, side by side.

Runs `heterolora bench train` and `scripts/bench_peft_train_step.py` alternately (the order
flips every round), on the same MRPC batches (LoRA q,v r = 8, batch 32, 2 threads each), for two
batch kinds: length-bucketed with dynamic padding, and padded to a fixed 128 tokens. Prints a
Markdown table of the medians over rounds with the throughput ratio, and writes it with every raw
record to --out (JSON and Markdown). Run it on an otherwise idle machine.

    python3 scripts/bench-vs-peft.py --heterolora target/release/heterolora \\
        --python /path/to/venv-with-torch/bin/python --rounds 3 --steps 20

The Python environment needs torch, transformers, peft and tokenizers.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

KINDS = {
    "bucketed": ["--bucket"],
    "fixed-128": ["--fixed-len"],
}


def run_json(cmd, env):
    t0 = time.time()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"failed ({out.returncode}): {' '.join(cmd)}")
    line = [l for l in out.stdout.splitlines() if l.startswith("{")][-1]
    rec = json.loads(line)
    rec["process_seconds"] = time.time() - t0
    return rec


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--heterolora", default="target/release/heterolora", help="the heterolora binary")
    ap.add_argument("--python", default=sys.executable, help="a Python with torch, transformers, peft")
    ap.add_argument("--model", default=os.environ.get("HETEROLORA_MODEL_DIR", "datasets/models/all-MiniLM-L6-v2"))
    ap.add_argument("--glue", default=os.environ.get("HETEROLORA_GLUE_DIR", "datasets/glue"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--kinds", default="bucketed,fixed-128")
    ap.add_argument("--out", default="results/bench/train-vs-peft", help="path prefix for .json and .md")
    args = ap.parse_args()

    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    common = ["--steps", str(args.steps), "--warmup", str(args.warmup), "--batch-size", str(args.batch_size), "--max-len", "128"]
    ours = [args.heterolora, "bench", "train", "--model", args.model, "--glue", args.glue] + common
    peer = [args.python, os.path.join(here, "bench_peft_train_step.py"), "--model", args.model, "--glue", args.glue,
            "--device", "cpu", "--threads", str(args.threads)] + common
    kinds = [k for k in args.kinds.split(",") if k]
    records = []
    for r in range(args.rounds):
        for kind in kinds:
            pair = [("heterolora", ours), ("torch+peft", peer)]
            if r % 2 == 1:
                pair.reverse()
            for name, cmd in pair:
                rec = run_json(cmd + KINDS[kind], env)
                rec.update(impl=name, kind=kind, round=r)
                records.append(rec)
                peak = rec.get("peak_memory_mib") or rec.get("max_rss_mib")
                print(f"round {r} {kind:9} {name:10} {rec['examples_per_sec']:7.2f} examples/s  "
                      f"peak {peak:6.0f} MiB  loss {rec['last_loss']:.4f}", file=sys.stderr, flush=True)

    def med(kind, impl, key):
        vals = [x[key] for x in records if x["kind"] == kind and x["impl"] == impl and x.get(key) is not None]
        return statistics.median(vals) if vals else float("nan")

    def peak(x):
        return x.get("peak_memory_mib") or x.get("max_rss_mib")

    for x in records:
        x["peak_mib"] = peak(x)
    lines = [
        f"| batches ({args.batch_size} MRPC pairs, LoRA q,v r = 8, {args.threads} threads) | implementation | "
        "examples/s (median) | all rounds | peak RSS MiB | heterolora / PyTorch |",
        "|---|---|---|---|---|---|",
    ]
    for kind in kinds:
        ratio = med(kind, "heterolora", "examples_per_sec") / med(kind, "torch+peft", "examples_per_sec")
        for impl in ["heterolora", "torch+peft"]:
            runs = ", ".join(f"{x['examples_per_sec']:.1f}" for x in records if x["kind"] == kind and x["impl"] == impl)
            lines.append(
                f"| {kind} | {impl} | {med(kind, impl, 'examples_per_sec'):.2f} | {runs} | "
                f"{med(kind, impl, 'peak_mib'):.0f} | {f'**{ratio:.2f}x**' if impl == 'heterolora' else ''} |"
            )
    table = "\n".join(lines)
    print(table)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    meta = {"rounds": args.rounds, "steps": args.steps, "warmup": args.warmup, "threads": args.threads,
            "heterolora": os.path.basename(args.heterolora), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
            "load_before": os.getloadavg()}
    with open(args.out + ".json", "w") as f:
        json.dump({"meta": meta, "records": records}, f, indent=1)
    with open(args.out + ".md", "w") as f:
        f.write(f"Generated by `scripts/bench-vs-peft.py` on {meta['date']} ({meta['cpu']}, {args.rounds} rounds, "
                f"{args.steps} timed steps after {args.warmup}).\n\n{table}\n")


if __name__ == "__main__":
    main()
