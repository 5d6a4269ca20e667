#!/usr/bin/env bash
# Protocol pilot for the study (issue: a study that can tell the methods apart): the equal-budget
# baseline (uniform LoRA r = 2 on every query and value map, lora_alpha 16 as the authors use) on
# MRPC, dev accuracy and cross-entropy after every epoch, under a few learning rates and epoch
# counts. Each configuration's train_result.json (per-epoch dev metrics) is copied into
# results/pilot/<name>.json; finished configurations are skipped, so the script resumes.
#
#   bash scripts/pilot.sh [path/to/heterolora]      # default: target/debug/heterolora
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/heterolora}
out=results/pilot
mkdir -p "$out"
run() {
  local name=$1; shift
  if [ -f "$out/$name.json" ]; then echo "skip $name (done)"; return; fi
  local dir; dir=$(mktemp -d)
  echo "== $name: $*"
  local t0; t0=$(date +%s)
  "$bin" train --task mrpc --allocation uniform:q,v:r=2 --batch-size 32 --max-len 128 \
    --warmup-ratio 0.06 --schedule linear --experiment pilot --run-name "$name" \
    --output "$dir" --quiet "$@" 2>&1 | tee "$dir/log"
  # train_result.json is an artifact of the tracker run the log names.
  local id; id=$(sed -n 's/^tracker run \([0-9a-f]*\) .*/\1/p' "$dir/log" | head -1)
  local result; result=$(ls tracking/artifacts/*/"$id"/artifacts/train_result.json)
  python3 - "$result" "$out/$name.json" "$(( $(date +%s) - t0 ))" "$*" <<'PY'
import json, sys
src, dst, secs, args = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
r = json.load(open(src))
r.pop("checkpoint_dir", None)  # a temporary folder of this machine, gone after the run
r = {"config": "uniform:q,v:r=2 (lora_alpha 16), batch 32, max_len 128, 6% warm-up, linear decay, " + args,
     "wall_seconds": secs, "result": r}
json.dump(r, open(dst, "w"), indent=1)
PY
  rm -rf "$dir"
}
run r2-lr2e-3-e10-s0 --lr 2e-3 --epochs 10 --seed 0
run r2-lr1e-3-e10-s0 --lr 1e-3 --epochs 10 --seed 0
# lr 5e-3 stayed at the majority class for its first 3 epochs (stopped; see README)
run r2-lr2e-3-e6-s0 --lr 2e-3 --epochs 6 --seed 0
run r2-lr2e-3-e6-s0-mean --lr 2e-3 --epochs 6 --seed 0 --head mean
run r2-lr2e-3-e6-s1 --lr 2e-3 --epochs 6 --seed 1
run r2-lr2e-3-e6-s1-mean --lr 2e-3 --epochs 6 --seed 1 --head mean
