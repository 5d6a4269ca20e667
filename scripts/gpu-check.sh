#!/usr/bin/env bash
# The prepared device check (issue #18): one call on the H200 machine, under 8 minutes, JSON records into $OUT.
#
#   bash scripts/gpu-check.sh          # on the device: unpacks dist/heterolora-cuda.xz (carried), runs on cuda:0
#   bash scripts/gpu-check.sh --cpu    # here, no GPU: the same flow with --device cpu, tiny settings, the CPU
#                                      # binary (target/debug/heterolora); the PyTorch steps run only when
#                                      # $GPU_CHECK_PYTHON (default python3) imports torch and peft
#
# Steps, each under `timeout`, the next one run even when one fails:
#   env      nvidia-smi, the binary, LD_LIBRARY_PATH = the image's Python nvidia/*/lib folders; `ldd` first
#   parity   `heterolora bench parity` on the device and on the CPU: logits, loss and every trainable gradient
#            of the model with the committed PEFT adapters (tests/fixtures/model/peft_qv_r8) on 8 MRPC dev pairs,
#            compared tensor by tensor by scripts/compare-parity.py (relative L2 within 1e-3); then
#            `heterolora bench train` on the device and on the CPU, same MRPC batches in file order, batch 8:
#            last_loss after 1 step (the forward pass and loss of the initial model) and after 5 steps (4 AdamW
#            updates: gradients and optimiser). Dropout masks are counter-based, the same on both devices, so
#            the losses should agree within 1e-3 relative (gpu-check-summary.json: parity.pass needs both).
#   bench    the training step, heterolora vs PyTorch + PEFT (scripts/bench_peft_train_step.py) on the same
#            device and batches, batch 8, 32 and 256: examples/s, each tool's own peak memory, and the
#            largest whole-GPU memory.used sampled with nvidia-smi every 100 ms while it ran; then bf16 mixed
#            precision (--precision bf16 / --dtype bf16) at GPU_CHECK_BF16_SIZES (default 32 256; summary keys
#            "32-bf16", "256-bf16").
#   study    the paper protocol on MRPC (or GPU_CHECK_TASK: rte) (20 epochs, batch 8, lr 2e-4), core methods x seeds, GPU_CHECK_JOBS
#            children at once (one process per child, each its own tracker; the child records land in
#            results/<task>-paper/children/ as the study writes them, so a later `heterolora study` resumes).
#            Runs until the budget's end; `timeout` stops an unfinished child with SIGINT, and it saves its
#            checkpoint in results/<task>-paper/checkpoints/ (carried back in study-results.tar.gz), from which
#            the next run continues it.
# $OUT gets (at most 8 files): gpu-check.jsonl (one record per step/run), gpu-check-summary.json (parity verdict,
# throughput ratios, children finished), gpu-check.log (every command's output), study-results.tar.gz
# (results/<study>/ after the run: untar into results/), study-trackers.tar.gz (the children's trackers and
# artifacts, unfinished children's epochs included).
#
# Environment: OUT (required on the device; --cpu defaults to a temporary folder), GPU_CHECK_BUDGET_S (whole
# script, default 420), GPU_CHECK_JOBS (children at once, default 4), GPU_CHECK_PYTHON (python with torch,
# default python3), GPU_CHECK_SEEDS (default 0,13,42), GPU_CHECK_METHODS (default the five core methods),
# GPU_CHECK_TASK (the study's task, default mrpc; rte needs RTE in dist/device-data.tar.xz, packed by default),
# HETEROLORA_BIN (a binary to use instead).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

mode=gpu
case "${1:-}" in
  --cpu|--dry-run) mode=cpu ;;
  "") ;;
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) echo "usage: $0 [--cpu]" >&2; exit 2 ;;
esac

t0=$(date +%s)
budget=${GPU_CHECK_BUDGET_S:-420}
reserve=20                       # kept for the summary and the tar at the end
work=$(mktemp -d)
if [ -z "${OUT:-}" ]; then
  [ "$mode" = cpu ] || { echo "gpu-check.sh: \$OUT is not set" >&2; exit 2; }
  OUT=$(mktemp -d)
fi
mkdir -p "$OUT"
jsonl="$OUT/gpu-check.jsonl"
log="$OUT/gpu-check.log"
: > "$jsonl"; : > "$log"
py=${GPU_CHECK_PYTHON:-python3}

say() { echo "gpu-check [$(( $(date +%s) - t0 ))s]: $*" | tee -a "$log" >&2; }
left() { echo $(( budget - reserve - ($(date +%s) - t0) )); }

# rec KEY=STRING KEY:=JSON ...: one JSON record into gpu-check.jsonl (a :=value that is not JSON is kept as text)
rec() {
  python3 - "$@" >> "$jsonl" <<'EOF'
import json, sys
d = {}
for a in sys.argv[1:]:
    k, v = a.split("=", 1)
    if k.endswith(":"):
        try:
            d[k[:-1]] = json.loads(v)
        except ValueError:
            d[k[:-1]] = v
    else:
        d[k] = v
print(json.dumps(d))
EOF
}

# step NAME LIMIT_S CMD...: runs CMD under timeout (LIMIT_S or what is left of the budget), stdout into
# $work/NAME.out, both streams into the log; records the step; returns CMD's status.
step() {
  local name=$1 limit=$2; shift 2
  local t; t=$(left); [ "$t" -lt "$limit" ] || t=$limit
  if [ "$t" -lt 5 ]; then
    say "$name: skipped, out of time"; rec kind=step name="$name" status=skipped-no-time; return 124
  fi
  say "$name (limit ${t}s): $*"
  local s; s=$(date +%s)
  timeout --signal=INT --kill-after=15 "$t" "$@" > "$work/$name.out" 2> "$work/$name.err"
  local rc=$?
  { cat "$work/$name.out"; cat "$work/$name.err"; } >> "$log"
  local secs=$(( $(date +%s) - s ))
  rec kind=step name="$name" rc:="$rc" seconds:="$secs"
  [ "$rc" = 0 ] || say "$name: exit $rc after ${secs}s (stderr tail: $(tail -c 300 "$work/$name.err" | tr '\n' ' '))"
  return $rc
}
last_json() { grep '^{' "$work/$1.out" 2>/dev/null | tail -1; }

# whole-GPU memory.used sampler (MiB), around a step
smi() { command -v nvidia-smi >/dev/null && [ "$mode" = gpu ]; }
sample_start() { smi || return 0; nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 100 > "$work/smi-$1.txt" 2>/dev/null & echo $! > "$work/smi.pid"; }
sample_stop() {
  smi || { echo null; return 0; }
  kill "$(cat "$work/smi.pid")" 2>/dev/null; wait "$(cat "$work/smi.pid")" 2>/dev/null
  sort -n "$work/smi-$1.txt" | tail -1 | grep -E '^[0-9]+$' || echo null
}

# ---- env: the binary, the libraries, ldd first ----
if [ "$mode" = gpu ]; then
  device=cuda:0
  bin=${HETEROLORA_BIN:-}
  if [ -z "$bin" ]; then
    bin="$work/heterolora"
    if ! xz -dc dist/heterolora-cuda.xz > "$bin"; then
      say "cannot unpack dist/heterolora-cuda.xz (carry it: carry [\"dist/heterolora-cuda.xz\"])"
    fi
    chmod +x "$bin"
  fi
  # the image's CUDA libraries: every lib folder of the Python nvidia-* packages
  libs=$(python3 - <<'EOF'
import glob, os
try:
    import nvidia
    paths = list(nvidia.__path__)
except Exception:
    paths = []
dirs = []
for base in paths:
    for d in sorted(glob.glob(os.path.join(base, "**", "lib"), recursive=True)):
        if glob.glob(os.path.join(d, "lib*.so*")) and d not in dirs:
            dirs.append(d)
print(":".join(dirs))
EOF
)
  export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # libcuda.so.1 comes from the driver: if the loader does not know it, look in the usual places
  if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
    for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/nvidia/lib64 /usr/local/cuda/compat /usr/lib/wsl/lib; do
      [ -e "$d/libcuda.so.1" ] && { export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"; break; }
    done
  fi
  export CUDA_MODULE_LOADING=${CUDA_MODULE_LOADING:-LAZY}
else
  device=cpu
  bin=${HETEROLORA_BIN:-target/debug/heterolora}
fi
# the model and MRPC: carried as dist/device-data.tar.xz (scripts/pack-device-data.py: f16 weights, widened to
# f32 here), used through HETEROLORA_MODEL_DIR / HETEROLORA_GLUE_DIR (read as they are, never fetched into).
# --cpu uses datasets/ unless GPU_CHECK_DATA=pack.
data_note="datasets/ as it is"
if [ "$mode" = gpu ] || [ "${GPU_CHECK_DATA:-}" = pack ]; then
  if python3 scripts/pack-device-data.py unpack --archive dist/device-data.tar.xz --dest "$work/data" >> "$log" 2>&1; then
    export HETEROLORA_MODEL_DIR="$work/data/model" HETEROLORA_GLUE_DIR="$work/data/glue"
    data_note="dist/device-data.tar.xz (f16 weights widened to f32)"
  else
    say "cannot unpack dist/device-data.tar.xz (carry it); falling back to datasets/"
  fi
fi
say "mode $mode, device $device, binary $bin, data $data_note, budget ${budget}s, OUT $OUT"
step ldd 20 ldd "$bin"
missing_libs=$(grep -c 'not found' "$work/ldd.out" 2>/dev/null)
rec kind=env mode="$mode" device="$device" binary="$bin" \
  binary_bytes:="$(stat -c %s "$bin" 2>/dev/null || echo null)" \
  ldd_not_found:="${missing_libs:-0}" ldd="$(cat "$work/ldd.out" 2>/dev/null)" \
  ld_library_path="${LD_LIBRARY_PATH:-}" nproc:="$(nproc)" data="$data_note" \
  data_manifest:="$(cat "$work/data/device-data.json" 2>/dev/null || echo null)" \
  nvidia_smi="$(smi && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)" \
  commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
step version 30 "$bin" --version

# ---- parity: device vs CPU ----
# logits, loss and every trainable gradient with the committed PEFT adapters (non-zero B), 8 MRPC dev pairs
for role in device cpu; do
  dev=$([ "$role" = device ] && echo "$device" || echo cpu)
  step "parity-tensors-$role" 120 "$bin" bench parity --device "$dev" --out "$work/parity-$role.safetensors"
done
python3 scripts/compare-parity.py "$work/parity-device.safetensors" "$work/parity-cpu.safetensors" \
  > "$work/parity-compare.out" 2>> "$log"
rec kind=parity-tensors rc:="$?" result:="$(last_json parity-compare || true)"
# and the training step: same batches, 1 and 5 steps (AdamW updates on top)
for steps in 1 5; do
  for role in device cpu; do
    dev=$([ "$role" = device ] && echo "$device" || echo cpu)
    name="parity-$role-s$steps"
    step "$name" 120 "$bin" bench train --device "$dev" --batch-size 8 --steps "$steps" --warmup 0
    rec kind=parity role="$role" device="$dev" steps:="$steps" result:="$(last_json "$name" || true)"
  done
done

# ---- bench: heterolora vs PyTorch + PEFT, same device, same batches ----
if [ "$mode" = gpu ]; then
  sizes="8 32 256"; bsteps=20; bwarm=3; bsteps_large=10
  bf16_sizes=${GPU_CHECK_BF16_SIZES:-32 256}
  peft_ok=1
else
  sizes="4 8 16"; bsteps=2; bwarm=1; bsteps_large=2
  bf16_sizes=${GPU_CHECK_BF16_SIZES:-4}   # bf16 is slow on the CPU: one size shows the flow works
  if "$py" -c 'import torch, peft, transformers, tokenizers' 2>/dev/null; then peft_ok=1; else peft_ok=0; fi
fi
[ "$peft_ok" = 1 ] || { say "PyTorch + PEFT: skipped ($py lacks torch/peft/transformers; set GPU_CHECK_PYTHON)"; rec kind=bench impl=peft status=skipped-no-torch; }
# bench_pair BATCH PRECISION: heterolora, then PyTorch + PEFT, the same batches at that precision
bench_pair() {
  local bs=$1 prec=$2 n=$bsteps sfx=""
  [ "$bs" -ge 128 ] && n=$bsteps_large
  [ "$prec" = f32 ] || sfx="-$prec"
  sample_start "hl-$bs$sfx"
  step "bench-heterolora-b$bs$sfx" 120 "$bin" bench train --device "$device" --batch-size "$bs" --steps "$n" \
    --warmup "$bwarm" --precision "$prec"
  rec kind=bench impl=heterolora batch:="$bs" precision="$prec" steps:="$n" \
    gpu_mem_used_max_mib:="$(sample_stop "hl-$bs$sfx")" result:="$(last_json "bench-heterolora-b$bs$sfx" || true)"
  if [ "$peft_ok" = 1 ]; then
    pdev=$([ "$mode" = gpu ] && echo cuda || echo cpu)
    sample_start "peft-$bs$sfx"
    step "bench-peft-b$bs$sfx" 150 "$py" scripts/bench_peft_train_step.py --device "$pdev" --batch-size "$bs" \
      --steps "$n" --warmup "$bwarm" --dtype "$prec"
    rec kind=bench impl=peft batch:="$bs" precision="$prec" steps:="$n" \
      gpu_mem_used_max_mib:="$(sample_stop "peft-$bs$sfx")" result:="$(last_json "bench-peft-b$bs$sfx" || true)"
  fi
}
for bs in $sizes; do bench_pair "$bs" f32; done
for bs in $bf16_sizes; do bench_pair "$bs" bf16; done

# ---- study: as much of the paper protocol as fits ----
methods=${GPU_CHECK_METHODS:-uniform-r2,static-grad-norm,dynamic-grad-norm,random,uniform-r8}
seeds=${GPU_CHECK_SEEDS:-0,13,42}
jobs=${GPU_CHECK_JOBS:-4}
task=${GPU_CHECK_TASK:-mrpc}
if [ "$mode" = gpu ]; then
  study_name=$task-paper; results="results/$study_name"
  study_extra=()
else
  # tiny: 1 epoch on 32 examples, two methods, one seed, written outside the tree
  methods=${GPU_CHECK_METHODS:-uniform-r2,static-grad-norm}; seeds=${GPU_CHECK_SEEDS:-0}; jobs=${GPU_CHECK_JOBS:-2}
  study_name=gpucheck-cpu; results="$work/results/$study_name"
  study_extra=(--epochs 1 --limit-train 32)
fi
mkdir -p "$results/children"
before=$(ls "$results/children" 2>/dev/null | sort)
step study-plan 60 "$bin" study --task "$task" --protocol paper --name "$study_name" --results "$results" \
  --methods "$methods" --seeds "$seeds" --device "$device" --tracking-uri "$work/plan.db" "${study_extra[@]}" --dry-run
# the (seed, method) pairs, seed-major, then GPU_CHECK_JOBS workers take every JOBS-th pair
pairs=()
for s in ${seeds//,/ }; do for m in ${methods//,/ }; do pairs+=("$m@$s"); done; done
worker() {
  local w=$1 i
  for ((i = w; i < ${#pairs[@]}; i += jobs)); do
    local m=${pairs[$i]%@*} s=${pairs[$i]#*@}
    [ -f "$results/children/$m-seed$s.json" ] && continue
    step "study-w$w-$m-s$s" $(( $(left) - 30 )) "$bin" study --task "$task" --protocol paper --name "$study_name" \
      --results "$results" --methods "$m" --seeds "$s" --device "$device" \
      --tracking-uri "$work/study-w$w.db" --no-report "${study_extra[@]}"
    [ "$(left)" -ge 35 ] || break
  done
}
say "study $study_name: ${#pairs[@]} children ($methods x seeds $seeds), $jobs at once"
s_start=$(date +%s)
for ((w = 0; w < jobs; w++)); do worker "$w" & done
wait
after=$(ls "$results/children" 2>/dev/null | sort)
new=$(comm -13 <(echo "$before") <(echo "$after") | paste -sd, -)
rec kind=study name="$study_name" task="$task" device="$device" methods="$methods" seeds="$seeds" jobs:="$jobs" \
  seconds:="$(( $(date +%s) - s_start ))" new_children="$new" children_total:="$(echo "$after" | grep -c .)"
# the report, from the child records (short; the next session can redo it)
step study-report 60 "$bin" study report --task "$task" --protocol paper --name "$study_name" --results "$results" \
  --methods "$methods" --seeds "$seeds" --tracking-uri "$work/study-w0.db" "${study_extra[@]}" || true
tar -czf "$OUT/study-results.tar.gz" -C "$(dirname "$results")" "$(basename "$results")" 2>>"$log" \
  && say "study-results.tar.gz: $(stat -c %s "$OUT/study-results.tar.gz") bytes (untar into results/)"
# the children's trackers (per-epoch metrics of unfinished children too) and their artifacts, if under 15 MiB
tar -czf "$OUT/study-trackers.tar.gz" -C "$work" --exclude=./data --exclude=./heterolora --exclude=./results \
  --exclude='*.out' --exclude='*.err' --exclude='smi*' . 2>>"$log"
if [ "$(stat -c %s "$OUT/study-trackers.tar.gz" 2>/dev/null || echo 0)" -gt $((15 << 20)) ]; then
  say "study-trackers.tar.gz over 15 MiB: left out"; rm -f "$OUT/study-trackers.tar.gz"
fi

# ---- summary ----
python3 - "$jsonl" "$OUT/gpu-check-summary.json" "$(( $(date +%s) - t0 ))" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def loss(role, steps):
    for r in recs:
        if r.get("kind") == "parity" and r.get("role") == role and r.get("steps") == steps:
            res = r.get("result")
            if isinstance(res, dict):
                return res.get("last_loss")
parity = {}
ok = True
for steps in (1, 5):
    a, b = loss("device", steps), loss("cpu", steps)
    rel = abs(a - b) / max(abs(b), 1e-12) if a is not None and b is not None else None
    parity[f"loss_after_{steps}_steps"] = {"device": a, "cpu": b, "rel_diff": rel}
    ok = ok and rel is not None and rel <= 1e-3
parity["tolerance_rel"] = 1e-3
tens = next((r.get("result") for r in recs if r.get("kind") == "parity-tensors"), None)
if isinstance(tens, dict):
    tens = {k: v for k, v in tens.items() if k != "by_tensor"}  # the full table stays in gpu-check.jsonl
parity["tensors"] = tens
parity["pass"] = ok and isinstance(tens, dict) and tens.get("pass") is True
bench = {}
for r in recs:
    if r.get("kind") == "bench" and isinstance(r.get("result"), dict):
        prec = r.get("precision", "f32")
        b = bench.setdefault(str(r["batch"]) + ("" if prec == "f32" else "-" + prec), {})
        res = r["result"]
        mem, kind = res.get("peak_memory_mib"), res.get("peak_memory_kind")
        for k in ("cuda_max_memory_allocated_mib", "max_rss_mib"):  # the PyTorch script's keys
            if mem is None and k in res:
                mem, kind = res[k], k
        b[r["impl"]] = {"examples_per_sec": res.get("examples_per_sec"), "ms_per_step": res.get("ms_per_step"),
                        "mean_padded_len": res.get("mean_padded_len"), "last_loss": res.get("last_loss"),
                        "peak_memory_mib": mem, "peak_memory_kind": kind,
                        "gpu_mem_used_max_mib": r.get("gpu_mem_used_max_mib")}
for b in bench.values():
    h, p = b.get("heterolora", {}).get("examples_per_sec"), b.get("peft", {}).get("examples_per_sec")
    b["ratio_heterolora_over_peft"] = h / p if h and p else None
study = [r for r in recs if r.get("kind") == "study"]
failed = [r["name"] for r in recs if r.get("kind") == "step" and r.get("rc") not in (0, None)]
env = next((r for r in recs if r.get("kind") == "env"), {})
summary = {"mode": env.get("mode"), "device": env.get("device"), "nvidia_smi": env.get("nvidia_smi"),
           "ldd_not_found": env.get("ldd_not_found"), "parity": parity, "bench": bench,
           "study": study[-1] if study else None, "failed_steps": failed, "seconds": int(sys.argv[3])}
json.dump(summary, open(sys.argv[2], "w"), indent=1)
print(json.dumps(summary, indent=1))
EOF
say "done in $(( $(date +%s) - t0 ))s; files in $OUT: $(ls "$OUT" | paste -sd' ' -)"
rm -rf "$work"
