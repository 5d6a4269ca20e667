#!/usr/bin/env bash
# The test command: installs what the test suite needs when it is missing, then runs
# `cargo test` with this script's arguments (`bash scripts/test.sh --lib assets`).
#
# What the tests need, and where it comes from:
#   .venv with mlflow            scripts/requirements-ci.txt (tests/tracking/mlflow_compat.rs reads it back)
#   the model                    `heterolora fetch model` (pinned sources, sha256-verified)
#   the GLUE tasks               `heterolora fetch glue --from ../shared/datasets/glue` when that
#                                folder exists, else `heterolora fetch glue` (the official download)
#   Slurm (slurm-wlm, munge)     apt, as root; without it the Slurm cluster test is left out
# With HETEROLORA_MODEL_DIR / HETEROLORA_GLUE_DIR set, the tests read those folders directly and
# nothing is fetched for them. Every step checks first, so a second run prints nothing of its own.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "scripts/test.sh: $*" >&2; }
data="${HETEROLORA_DATA_DIR:-datasets}"

# 1. Python tools. Checking for the module (not importing it) keeps this step instant.
if ! .venv/bin/python -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("mlflow") is None)' 2>/dev/null; then
  say "installing the Python tools of scripts/requirements-ci.txt into .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements-ci.txt
fi

# 2. The model, unless a model folder is named.
if [ -z "${HETEROLORA_MODEL_DIR:-}" ]; then
  model="$data/models/all-MiniLM-L6-v2"
  if ! [ -f "$model/model.safetensors" ] || ! [ -f "$model/config.json" ] || ! [ -f "$model/tokenizer.json" ]; then
    say "fetching the model into $model"
    cargo run -q -- fetch model
  fi
fi

# 3. Every GLUE task of datasets/manifests/glue.json, unless a GLUE folder is named.
if [ -z "${HETEROLORA_GLUE_DIR:-}" ]; then
  missing=()
  for task in $(grep -o '"task": "[^"]*"' datasets/manifests/glue.json | cut -d'"' -f4 | sort -u); do
    [ -f "$data/glue/$task/dev.tsv" ] || missing+=("$task")
  done
  if ((${#missing[@]})); then
    src=../shared/datasets/glue
    if [ -d "$src" ]; then
      say "copying GLUE ${missing[*]} from $src into $data/glue (verified)"
      cargo run -q -- fetch glue --from "$src"
    else
      say "downloading GLUE ${missing[*]} into $data/glue (official archives, verified)"
      cargo run -q -- fetch glue
    fi
  fi
fi

# 4. Slurm (Debian's slurm-wlm and munge) for the test that submits a study's job array to a
#    single-node cluster (scripts/slurm-local.sh starts it); left out where it cannot be installed.
if [ "${HETEROLORA_TEST_SLURM:-1}" != 0 ] && ! command -v slurmctld >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing slurm-wlm and munge (a single-node Slurm for tests/study/study_slurm_cluster.rs)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null
  else
    say "Slurm is not installed and cannot be installed here (needs root and apt): the Slurm cluster test is left out"
    export HETEROLORA_TEST_SLURM=0
  fi
fi

# 5. The tests.
exec cargo test "$@"
