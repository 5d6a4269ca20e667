#!/usr/bin/env bash
# The README's charts, from real runs: the MRPC study (its tracker store and committed child
# records in results/mrpc/children/) and the LoRA q,v r = 8 run of `heterolora train`.
#   scripts/readme-images.sh [path/to/heterolora]
# Environment: STORE (tracker database, default tracking/mlflow.db), STUDY (default mrpc-cpu6),
# PROTOCOL (its words in the titles, default "6 epochs"), EXPERIMENT (default study-mrpc).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
HL="${1:-cargo run --quiet --bin heterolora --}"
STORE="${STORE:-tracking/mlflow.db}"
STUDY="${STUDY:-mrpc-cpu6}"
PROTOCOL="${PROTOCOL:-6 epochs}"
EXPERIMENT="${EXPERIMENT:-study-mrpc}"
OUT=docs/images
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

$HL plot budget --experiment "$EXPERIMENT" --tracking-uri "$STORE" \
    --filter "tags.study.name = '$STUDY' and tags.heterolora.kind = 'train' and attributes.status = 'FINISHED'" \
    --metric best_dev_accuracy \
    --title "MRPC dev accuracy against adapter parameters (study $STUDY, $PROTOCOL)" \
    --out "$OUT" --name budget --format png --width 800 --height 450
$HL plot curves --experiment "$EXPERIMENT" --tracking-uri "$STORE" \
    --filter "tags.study.name = '$STUDY' and tags.study.seed = '0' and attributes.status = 'FINISHED'" \
    --metrics train_loss,dev_accuracy --smoothing 0.6 --max-runs 12 \
    --title "Training curves of the study's seed-0 runs (MRPC, $PROTOCOL)" \
    --out "$OUT" --name curves --format png --width 800 --height 450
# The score heat map: the grad-norm scores a static child chose its slots from (committed record).
REC="results/$STUDY/children/static-grad-norm-seed0.json"
python3 - "$REC" "$TMP" <<'EOF'
import json, sys
rec = json.load(open(sys.argv[1]))
json.dump(rec["scores"], open(sys.argv[2] + "/scores.json", "w"))
json.dump(rec["allocation"], open(sys.argv[2] + "/allocation.json", "w"))
EOF
$HL plot scores "$TMP/scores.json" --allocation "$TMP/allocation.json" \
    --title "grad-norm scores of the MRPC q,v slots (outlined: trained at r = 8)" \
    --out "$OUT" --name scores --format png --width 640 --height 400
