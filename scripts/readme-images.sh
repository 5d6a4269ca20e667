#!/usr/bin/env bash
# The README's charts, from the notebooks' tracker store (fill it with scripts/run-notebooks.sh):
#   scripts/readme-images.sh [path/to/heterolora]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
HL="${1:-cargo run --quiet --bin heterolora --}"
STORE=notebooks/tracking/mlflow.db
OUT=docs/images
$HL plot budget --experiment 04-comparing-runs-and-budgets --tracking-uri "$STORE" \
    --filter "tags.heterolora.kind = 'train'" --metric best_dev_accuracy \
    --title "MRPC dev accuracy against adapter parameters (quick settings)" \
    --out "$OUT" --name budget --format png --width 800 --height 450
$HL plot curves --experiment 03-fine-tuning-and-tracking --tracking-uri "$STORE" \
    --metrics train_loss,dev_accuracy --smoothing 0.6 \
    --title "Training curves: top-k grad-norm r=8 vs uniform r=2 (quick settings)" \
    --out "$OUT" --name curves --format png --width 800 --height 450
# The allocation and score heat maps come from a scoring run's artifact.
SCORES=$(ls -t notebooks/tracking/artifacts/*/*/artifacts/scores.grad-norm.json | head -1)
$HL plot scores "$SCORES" --title "grad-norm scores of the LoRA q/v slots (MRPC, 4 batches)" \
    --out "$OUT" --name scores --format png --width 640 --height 400
