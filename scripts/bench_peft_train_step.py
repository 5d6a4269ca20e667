#!/usr/bin/env python3
"""Reference timing of one LoRA training step in PyTorch + PEFT, to compare with
`heterolora bench train` side by side.

Same work as the Rust benchmark: all-MiniLM-L6-v2 with a 2-label classification head, LoRA on
query and value (r=8, lora_alpha=16, dropout 0, PEFT's task_type SEQ_CLS so the head trains too),
AdamW (lr 5e-4, weight decay 0.01), batches of 32 MRPC training pairs taken in file order,
tokenised with the model's tokenizer.json, truncated to --max-len and padded to the longest pair
of each batch (or, with --bucket, batches of pairs sorted by length). One "step" is
forward + backward + clip-free optimiser step + zero_grad.

With --dtype bf16 the step is the usual PEFT mixed-precision set-up, the counterpart of
`heterolora bench train --precision bf16`: the model loaded with torch_dtype=bfloat16, the LoRA
factors and the classifier head (every trainable parameter) in float32, and the forward under
torch.autocast(bfloat16).

Needs torch, transformers, peft and tokenizers (not a dependency of the Rust crate; run by hand):

    python3 scripts/bench_peft_train_step.py \
        --model datasets/models/all-MiniLM-L6-v2 --glue datasets/glue --device cpu

Prints one JSON line with examples/s and peak memory, and a human summary on stderr.
"""

import argparse
import csv
import json
import os
import resource
import sys
import time


def read_mrpc(glue_dir, limit):
    path = os.path.join(glue_dir, "MRPC", "train.tsv")
    pairs = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(rows)  # header: Quality, #1 ID, #2 ID, #1 String, #2 String
        for row in rows:
            if len(row) < 5:
                continue
            pairs.append((row[3], row[4], int(row[0])))
            if len(pairs) >= limit:
                break
    return pairs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.environ.get("HETEROLORA_MODEL_DIR", "datasets/models/all-MiniLM-L6-v2"))
    ap.add_argument("--glue", default=os.environ.get("HETEROLORA_GLUE_DIR", "datasets/glue"))
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"],
                    help="bf16: bf16 frozen model, f32 trainable parameters, forward under autocast")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--bucket", action="store_true", help="sort pairs by length before batching")
    ap.add_argument("--fixed-len", action="store_true", help="pad every batch to --max-len tokens")
    ap.add_argument("--profile", metavar="FILE", help="after timing, profile the timed batches again with "
                    "torch.profiler and write the self-CPU time per operator (JSON) to FILE")
    args = ap.parse_args()

    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from tokenizers import Tokenizer
    from transformers import BertForSequenceClassification

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)

    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=args.max_len, strategy="longest_first")
    n_batches = args.warmup + args.steps
    pairs = read_mrpc(args.glue, n_batches * args.batch_size)
    encs = tok.encode_batch([(a, b) for a, b, _ in pairs])
    items = list(zip(encs, [y for _, _, y in pairs]))
    if args.bucket:
        items.sort(key=lambda it: len(it[0].ids))
    batches = []
    for i in range(0, len(items), args.batch_size):
        chunk = items[i : i + args.batch_size]
        if len(chunk) < args.batch_size:
            break
        longest = max(len(e.ids) for e, _ in chunk)
        if args.fixed_len:
            longest = max(longest, args.max_len)
        ids = torch.zeros(len(chunk), longest, dtype=torch.long)
        tt = torch.zeros_like(ids)
        mask = torch.zeros_like(ids)
        for j, (e, _) in enumerate(chunk):
            n = len(e.ids)
            ids[j, :n] = torch.tensor(e.ids)
            tt[j, :n] = torch.tensor(e.type_ids)
            mask[j, :n] = 1
        labels = torch.tensor([y for _, y in chunk])
        batches.append(tuple(t.to(device) for t in (ids, tt, mask, labels)))
    while len(batches) < n_batches:  # fewer pairs than asked: cycle
        batches.append(batches[len(batches) % max(1, len(batches))])

    bf16 = args.dtype == "bf16"
    model = BertForSequenceClassification.from_pretrained(
        args.model, num_labels=2, torch_dtype=torch.bfloat16 if bf16 else torch.float32
    )
    cfg = LoraConfig(
        task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["query", "value"]
    )
    model = get_peft_model(model, cfg).to(device)
    if bf16:
        # PEFT upcasts the LoRA factors itself; the head it copies to train stays bf16 unless told.
        for p in model.parameters():
            if p.requires_grad:
                p.data = p.data.float()
    model.train()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4, weight_decay=0.01)

    def step(b):
        ids, tt, mask, labels = b
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(input_ids=ids, token_type_ids=tt, attention_mask=mask, labels=labels)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return out.loss

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for b in batches[: args.warmup]:
        step(b)
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    tokens = 0
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    for b in batches[args.warmup :]:
        loss = step(b)
        tokens += b[0].numel()
    sync()
    dt = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    examples = args.steps * args.batch_size
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        peak_kind = "cuda_max_memory_allocated_mib"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        peak_kind = "max_rss_mib"
    report = {
        "framework": f"torch {torch.__version__} + peft",
        "device": str(device),
        "precision": args.dtype,
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "max_len": args.max_len,
        "bucket": args.bucket,
        "fixed_len": args.fixed_len,
        "steps": args.steps,
        "trainable_params": trainable,
        "mean_padded_len": tokens / (args.steps * args.batch_size),
        "seconds": dt,
        "ms_per_step": 1000 * dt / args.steps,
        "examples_per_sec": examples / dt,
        # CPU time of all threads during the timed steps: the work done, whatever the machine's load.
        "cpu_seconds": cpu,
        "examples_per_cpu_sec": examples / cpu if cpu > 0 else None,
        peak_kind: peak,
        "last_loss": float(loss.detach()),
    }
    if args.profile:
        profile(torch, step, batches[args.warmup :], args.profile)
    print(json.dumps(report))
    print(
        f"torch+peft {device} {args.dtype}: {report['examples_per_sec']:.2f} examples/s wall, "
        f"{report['examples_per_cpu_sec'] or 0:.2f} examples per CPU-second, "
        f"{report['ms_per_step']:.0f} ms/step, peak {peak:.0f} MiB ({peak_kind}), "
        f"{trainable} trainable params",
        file=sys.stderr,
    )


def profile(torch, step, batches, path):
    """Self CPU time per operator over `batches`, largest first, as JSON (and a table on stderr)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for b in batches:
            step(b)
    avgs = prof.key_averages()
    rows = sorted(
        ({"op": a.key, "calls": a.count, "self_cpu_ms": a.self_cpu_time_total / 1000.0} for a in avgs),
        key=lambda r: -r["self_cpu_ms"],
    )
    total = sum(r["self_cpu_ms"] for r in rows)
    with open(path, "w") as f:
        json.dump({"steps": len(batches), "total_self_cpu_ms": total, "ops": rows}, f, indent=1)
    print(avgs.table(sort_by="self_cpu_time_total", row_limit=25), file=sys.stderr)


if __name__ == "__main__":
    main()
