#!/usr/bin/env bash
# Execute every notebook in notebooks/ headlessly in the evcxr Rust kernel, in place, stopping
# at the first cell error (non-zero exit). The committed notebooks carry the outputs of this run.
#
#   scripts/run-notebooks.sh                 # all notebooks
#   scripts/run-notebooks.sh notebooks/01-quick-start.ipynb
#
# Sets up what it needs, once per machine:
# - a Python venv with Jupyter's execution parts (.venv-notebooks, or $NOTEBOOK_VENV);
# - evcxr_jupyter (`cargo install evcxr_jupyter --locked`, ~10 min) and rust-src, when missing;
# - the `rust` Jupyter kernel (`evcxr_jupyter --install`).
# evcxr compiles heterolora and its dependencies itself, in $EVCXR_TMPDIR (default
# ~/.cache/heterolora/evcxr; outside the checkout, because a crate below the project's folder
# would be taken for a member of its Cargo workspace): the first run takes 10-20 minutes more,
# later runs reuse it. The model and
# MRPC must have been fetched (`heterolora fetch model all-MiniLM-L6-v2`, `heterolora fetch
# glue MRPC`), or HETEROLORA_MODEL_DIR / HETEROLORA_GLUE_DIR must point at them.
# The notebooks log to their own tracker store, notebooks/tracking/ (git-ignored).
# A notebook whose saved outputs contain this checkout's absolute path fails the run: committed
# outputs must not name a machine's folders (print paths with heterolora::notebook::display_path).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="${NOTEBOOK_VENV:-$ROOT/.venv-notebooks}"
TIMEOUT="${NOTEBOOK_CELL_TIMEOUT:-3600}"
# Not below $ROOT: cargo would take evcxr's crate for a member of heterolora's workspace
# ("current package believes it's in a workspace when it's not").
export EVCXR_TMPDIR="${EVCXR_TMPDIR:-${XDG_CACHE_HOME:-$HOME/.cache}/heterolora/evcxr}"
PATH="$HOME/.cargo/bin:$PATH"

log() { printf '[run-notebooks] %s\n' "$*" >&2; }

if [ ! -x "$VENV/bin/jupyter-nbconvert" ]; then
    log "creating $VENV with nbconvert, nbclient, jupyter-client, ipykernel"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet nbclient nbformat nbconvert jupyter-client ipykernel
fi

if ! command -v evcxr_jupyter >/dev/null 2>&1; then
    log "installing evcxr_jupyter (cargo install evcxr_jupyter --locked; ~10 minutes)"
    cargo install evcxr_jupyter --locked
fi
if command -v rustup >/dev/null 2>&1 && ! rustup component list --installed | grep -q '^rust-src'; then
    # Without rust-src evcxr cannot infer the types of `let` bindings.
    rustup component add rust-src
fi

# Register the kernel inside the venv: evcxr_jupyter --install and Jupyter both honour
# JUPYTER_PATH, so nothing is written to the user's Jupyter folders.
export JUPYTER_PATH="$VENV/share/jupyter"
if [ ! -f "$JUPYTER_PATH/kernels/rust/kernel.json" ]; then
    log "registering the evcxr kernel in $JUPYTER_PATH"
    mkdir -p "$JUPYTER_PATH"
    evcxr_jupyter --install
fi

# evcxr's cell libraries link the standard library dynamically, and their run path (relative to
# cargo's deps/ folder, one level below where evcxr loads them from) can miss the toolchain: name
# the toolchain's library folder for the kernel.
SYSROOT="$(rustc --print sysroot)"
HOST="$(rustc -vV | sed -n 's/^host: //p')"
export LD_LIBRARY_PATH="$SYSROOT/lib/rustlib/$HOST/lib:$SYSROOT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# Pin evcxr's dependency resolution to the project's lock file, so the notebooks build the same
# versions as `cargo build` (evcxr's crate resolves its own otherwise).
mkdir -p "$EVCXR_TMPDIR"
if [ ! -f "$EVCXR_TMPDIR/Cargo.lock" ] && [ -f "$ROOT/Cargo.lock" ]; then
    cp "$ROOT/Cargo.lock" "$EVCXR_TMPDIR/Cargo.lock"
fi

if [ "$#" -gt 0 ]; then
    notebooks=("$@")
else
    notebooks=("$ROOT"/notebooks/*.ipynb)
fi

mkdir -p "$ROOT/notebooks/tracking"
for nb in "${notebooks[@]}"; do
    log "executing $nb"
    start=$(date +%s)
    "$VENV/bin/jupyter" nbconvert --to notebook --execute --inplace \
        --ExecutePreprocessor.kernel_name=rust \
        --ExecutePreprocessor.timeout="$TIMEOUT" \
        "$nb"
    log "$nb: done in $(( $(date +%s) - start )) s"
    if grep -nF "$ROOT/" "$nb" >&2; then
        log "$nb: the outputs above name this checkout's absolute path ($ROOT); print paths relative to the notebook"
        exit 1
    fi
done
log "all notebooks executed without errors"
