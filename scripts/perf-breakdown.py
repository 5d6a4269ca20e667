#!/usr/bin/env python3
"""Group a `perf record` profile of `heterolora bench train` into the categories of
docs/performance.md (matmuls, fused kernels, candle element-wise ops, memory, idle threads, ...).

    perf record -F 999 -g -o perf.data target/debug/heterolora bench train --bucket --steps 10
    python3 scripts/perf-breakdown.py perf.data            # Markdown table on stdout

Reads `perf report --no-children --sort comm,dso,symbol` (so perf must be installed); shares are of
all samples of the process, start-up (model load, tokenisation) included.
"""

import re
import subprocess
import sys

CATEGORIES = [
    ("matmul (gemm microkernels and packing)", r"gemm"),
    ("GELU forward + backward (fused)", r"heterolora_kernels::gelu"),
    ("LayerNorm + residual + dropout (fused)", r"heterolora_kernels::layer_norm"),
    ("attention softmax, mask, dropout (fused)", r"heterolora_kernels::attention"),
    ("dropout (fused)", r"heterolora_kernels::dropout"),
    ("candle element-wise ops (gradient sums, embeddings, optimiser)", r"candle_core::cpu_backend|binary_map|unary_map|candle_core::.*(affine|cmp|reduce|index)"),
    ("candle's element-wise pool spinning between ops", r"^candle-bp|BarrierGuard"),
    ("memset / memmove", r"__mem(set|move|cpy)"),
    ("malloc / free", r"malloc|_int_free|\bfree\b|cfree|malloc_consolidate"),
    ("kernel: page faults, scheduling, other", r"^\[k\]"),
    ("tokenizer and start-up", r"tokenizers|unicode|onig|regex|safetensors|serde"),
]


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else "perf.data"
    out = subprocess.run(
        ["perf", "report", "-i", data, "--no-children", "--sort", "comm,symbol", "--stdio", "-g", "none"],
        capture_output=True, text=True, check=True,
    ).stdout
    totals = {name: 0.0 for name, _ in CATEGORIES}
    other = 0.0
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+(\[[.k]\])\s+(.*)$", line)
        if not m:
            continue
        pct, comm, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4).strip()
        key = f"{comm} {sym}" if comm.startswith("candle-bp") else sym
        if kind == "[k]":
            key = "[k] " + sym
        for name, pat in CATEGORIES:
            if name.startswith("candle's") and comm.startswith("candle-bp") and kind != "[k]":
                totals[name] += pct
                break
            if re.search(pat, key):
                totals[name] += pct
                break
        else:
            other += pct
    print("| where the samples went | share |")
    print("|---|---|")
    for name, _ in CATEGORIES:
        print(f"| {name} | {totals[name]:.1f}% |")
    print(f"| everything else | {other:.1f}% |")


if __name__ == "__main__":
    main()
