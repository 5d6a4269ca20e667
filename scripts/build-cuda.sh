#!/usr/bin/env bash
# The CUDA build of heterolora on a machine without a GPU or CUDA toolkit, for the H200 device (sm_90,
# driver CUDA 13.0). Not needed by the CPU build or CI. See docs/gpu.md.
#
#   bash scripts/build-cuda.sh            # everything: wheels, link folder, stub, build, dist/heterolora-cuda.xz
#   bash scripts/build-cuda.sh --prepare  # only the wheels, the link folder and the stub (no cargo build)
#
# Steps:
#   1. CUDA 13.0 compiler, headers and libraries from the Python wheels of scripts/requirements-cuda.txt into
#      .venv-cuda/ (about 1.2 GB; skipped when already installed from the same file).
#   2. A link folder, target-cuda/cuda-link/: unversioned symlinks (libcublas.so -> .../libcublas.so.13, ...)
#      because the wheels ship only versioned files, and a link-time libcuda.so stub (soname libcuda.so.1) made
#      by scripts/make-libcuda-stub.py: the driver library is in no wheel. Its symbol list: `nm -u` of cudarc's
#      rlib when a previous build left one, else the `pub fn cu*` declarations of cudarc's driver sources (a
#      superset, read before any build). If the link still misses a symbol, the stub is remade from the rlib
#      (which the failed build has by then) and the build retried once: only the link is redone.
#   3. cargo build --features cuda --bin heterolora into target-cuda/ (a separate target dir: the CPU build's
#      artifacts stay intact), CUDA_COMPUTE_CAP=90 (Hopper), the link folder passed by LIBRARY_PATH (RUSTFLAGS
#      would change every crate's fingerprint). Profile: CUDA_BUILD_PROFILE (default dev, as the CPU benchmarks).
#   4. dist/heterolora-cuda (stripped), dist/heterolora-cuda.xz (what is carried to the device; xz with the x86 filter) and
#      dist/heterolora-cuda.json (sizes, times, versions, the binary's NEEDED libraries).
# pip and cargo run under `nice -n 19`. Environment: CUDA_VENV (.venv-cuda), CUDA_TARGET_DIR (target-cuda),
# CUDA_BUILD_PROFILE (dev), CUDA_COMPUTE_CAP (90), PYTHON (python3), CARGO_BUILD_JOBS (cargo's default).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

prepare_only=0
case "${1:-}" in
  --prepare) prepare_only=1 ;;
  "") ;;
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) echo "usage: $0 [--prepare]" >&2; exit 2 ;;
esac

say() { echo "build-cuda.sh [$(date -u +%H:%M:%S)]: $*" >&2; }
venv="${CUDA_VENV:-.venv-cuda}"
target="${CUDA_TARGET_DIR:-target-cuda}"
profile="${CUDA_BUILD_PROFILE:-dev}"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
reqs=scripts/requirements-cuda.txt
linkdir="$target/cuda-link"
t_start=$(date +%s)

# 1. The wheels. A stamp holds the checksum of the requirements they were installed from.
stamp="$venv/.requirements-cuda.sha256"
want=$(sha256sum "$reqs" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing the CUDA 13.0 wheels of $reqs into $venv (about 1.2 GB)"
  [ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
  nice -n 19 "$venv/bin/pip" install -q --disable-pip-version-check -r "$reqs"
  echo "$want" > "$stamp"
fi
t_wheels=$(date +%s)

# The CUDA root: the folder of the wheels with bin/nvcc (site-packages/nvidia/cu13).
cuda_root=$("$venv/bin/python" - <<'EOF'
import glob, os, sys
import nvidia
for base in nvidia.__path__:
    for nvcc in sorted(glob.glob(os.path.join(base, "*", "bin", "nvcc"))):
        print(os.path.dirname(os.path.dirname(nvcc))); sys.exit(0)
sys.exit("no bin/nvcc under " + ":".join(nvidia.__path__))
EOF
)
say "CUDA root: $cuda_root ($("$cuda_root/bin/nvcc" --version | grep -o 'release [0-9.]*'))"

# 2. The link folder: unversioned symlinks to every library of the wheels, and the driver stub.
mkdir -p "$linkdir"
"$venv/bin/python" - "$linkdir" <<'EOF'
import glob, os, re, sys
import nvidia
out = sys.argv[1]
for base in nvidia.__path__:
    for lib in sorted(glob.glob(os.path.join(base, "**", "lib", "lib*.so.*"), recursive=True)):
        m = re.match(r"(lib[^.]+)\.so\.\d+$", os.path.basename(lib))
        if not m:
            continue
        link = os.path.join(out, m.group(1) + ".so")
        if os.path.islink(link):
            os.remove(link)
        if not os.path.exists(link):
            os.symlink(os.path.abspath(lib), link)
EOF

find_rlib() { ls -t "$target"/*/deps/libcudarc-*.rlib 2>/dev/null | head -1 || true; }
make_stub() {
  local rlib; rlib=$(find_rlib)
  if [ -n "$rlib" ]; then
    python3 scripts/make-libcuda-stub.py --out "$linkdir" --rlib "$rlib"
  else
    # cudarc's sources, as the lock file pins them (cargo metadata fetches them if needed)
    local src
    src=$(cargo metadata --format-version 1 --features cuda --locked 2>/dev/null | python3 -c '
import json, os, sys
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "cudarc":
        print(os.path.dirname(p["manifest_path"])); break')
    [ -n "$src" ] || { say "cudarc not found by cargo metadata"; exit 1; }
    python3 scripts/make-libcuda-stub.py --out "$linkdir" --cudarc-src "$src"
  fi
}
[ -f "$linkdir/libcuda.so" ] || make_stub
say "link folder $linkdir: $(ls "$linkdir" | grep -c '\.so$') libraries"
t_prep=$(date +%s)
[ "$prepare_only" = 1 ] && { say "prepared (--prepare): no build"; exit 0; }

# 3. The build.
export PATH="$cuda_root/bin:$PATH" CUDA_HOME="$cuda_root" CUDA_PATH="$cuda_root" CUDA_ROOT="$cuda_root"
export LIBRARY_PATH="$root/$linkdir${LIBRARY_PATH:+:$LIBRARY_PATH}"
# the wheels' libraries depend on each other (libcublas.so.13 needs libcublasLt.so.13): let the linker find them
export LD_LIBRARY_PATH="$root/$linkdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
build() {
  nice -n 19 cargo build --locked --features cuda --profile "$profile" --target-dir "$target" --bin heterolora
}
say "cargo build --features cuda --profile $profile --target-dir $target (CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP)"
if ! build; then
  rlib=$(find_rlib)
  [ -n "$rlib" ] || { say "build failed before cudarc was built"; exit 1; }
  say "build failed: remaking the stub from $rlib and retrying the link once"
  make_stub
  build
fi
t_build=$(date +%s)

# 4. Check the stub covered cudarc's needs, then strip and compress.
outdir=$([ "$profile" = dev ] && echo debug || echo "$profile")
bin="$target/$outdir/heterolora"
rlib=$(find_rlib)
missing=$(comm -23 <(nm -u "$rlib" 2>/dev/null | awk '$1=="U"{print $2}' | grep -E '^cu[A-Z]' | sort -u) \
                   <(sort -u "$linkdir/libcuda-stub.symbols") | wc -l)
[ "$missing" = 0 ] || { say "the stub lacks $missing symbols of $rlib"; exit 1; }
mkdir -p dist
strip -o dist/heterolora-cuda "$bin"
rm -f dist/heterolora-cuda.xz
# The x86 branch filter before LZMA2 at 9e: 14.8 MB against 15.5 MB for plain `xz -6` (measured on the
# first build; about a minute of one core). Decompressing needs nothing beyond a plain `xz -d`.
nice -n 19 xz --x86 --lzma2=preset=9e -T1 -k dist/heterolora-cuda
t_end=$(date +%s)
size() { stat -c %s "$1"; }
needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | paste -sd, -)
cat > dist/heterolora-cuda.json <<EOF
{"binary": "dist/heterolora-cuda.xz", "profile": "$profile", "compute_cap": "$CUDA_COMPUTE_CAP",
 "nvcc": "$("$cuda_root/bin/nvcc" --version | grep -o 'V[0-9][0-9.]*' | tail -1)",
 "commit": "$(git rev-parse --short HEAD)", "dirty": $(git diff --quiet HEAD -- src crates Cargo.toml Cargo.lock && echo false || echo true), "built_utc": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
 "bytes_raw": $(size "$bin"), "bytes_stripped": $(size dist/heterolora-cuda), "bytes_xz": $(size dist/heterolora-cuda.xz),
 "stub_symbols": $(wc -l < "$linkdir/libcuda-stub.symbols"), "needed": "$needed",
 "seconds": {"wheels": $((t_wheels - t_start)), "prepare": $((t_prep - t_wheels)), "cargo": $((t_build - t_prep)),
             "strip_xz": $((t_end - t_build)), "total": $((t_end - t_start))}}
EOF
cat dist/heterolora-cuda.json
say "done in $((t_end - t_start)) s: dist/heterolora-cuda.xz ($(size dist/heterolora-cuda.xz) bytes)"
