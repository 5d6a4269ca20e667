#!/usr/bin/env bash
# Test build and suite times of several commits on one target folder whose dependencies are
# already built: the second and third steps of scripts/cold-build-bench.sh without its 18-minute
# dependency build, so the commits can be alternated over several rounds.
#
#   bash scripts/test-build-bench.sh [--rounds N] [--no-run-tests] REV...
#
# For each round and each REV (in the order given, alternating): check REV out in one worktree,
# `cargo clean -p` the workspace's own packages, `cargo build --locked` (not timed: what the
# cold bench's first step leaves behind), then time `cargo test --locked --no-run` and (unless
# --no-run-tests, and only in the first round) `cargo test --locked`.
#
# The target folder is ${TEST_BENCH_DIR:-target/test-bench}/target; it starts as a copy of this
# clone's target/debug (dependencies built with this Cargo.lock's versions and features), made once.
# HOLD_PGID=<process group> stops that group (SIGSTOP) during the timed steps and resumes it
# after (SIGCONT), so that a long run beside the benchmark (a study) does not disturb the timings;
# the untimed builds run beside it. Nothing else should run during the timed steps.
# Prints one line per timed step and a Markdown table of the medians.
set -euo pipefail

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }
rounds=2
run_tests=1
revs=()
while (($#)); do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --rounds) rounds="$2"; shift ;;
    --no-run-tests) run_tests=0 ;;
    -*) echo "test-build-bench: unknown option $1" >&2; exit 2 ;;
    *) revs+=("$1") ;;
  esac
  shift
done
((${#revs[@]})) || { usage; exit 2; }

root="$(git rev-parse --show-toplevel)"
dir="${TEST_BENCH_DIR:-$root/target/test-bench}"
wt="$dir/wt"
export CARGO_TARGET_DIR="$dir/target"
mkdir -p "$dir"
if [[ ! -d "$CARGO_TARGET_DIR/debug" ]]; then
  [[ -d "$root/target/debug" ]] || { echo "test-build-bench: build this clone first (cargo build)" >&2; exit 1; }
  echo "copying target/debug (once) ..."
  mkdir -p "$CARGO_TARGET_DIR"
  cp -a "$root/target/debug" "$CARGO_TARGET_DIR/debug"
fi
if [[ ! -d "$wt" ]]; then
  git -C "$root" worktree add --detach "$wt" "${revs[0]}" >/dev/null
fi
for shared in datasets .venv; do
  if [[ -d "$root/$shared" ]]; then rm -rf "${wt:?}/$shared"; ln -s "$root/$shared" "$wt/$shared"; fi
done

hold() { [[ -n "${HOLD_PGID:-}" ]] && kill -STOP -- "-$HOLD_PGID" 2>/dev/null || true; }
release() { [[ -n "${HOLD_PGID:-}" ]] && kill -CONT -- "-$HOLD_PGID" 2>/dev/null || true; }
trap release EXIT

declare -A times
timed() { # key, then the command; records the wall time in seconds
  local key="$1"; shift
  local t0 t1 status=""
  hold
  t0=$(date +%s.%N)
  if ! "$@" >"$dir/last.log" 2>&1; then status=" (failed)"; fi
  t1=$(date +%s.%N)
  release
  local s
  s=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
  times[$key]="${times[$key]:-} $s"
  echo "$key: $s s$status"
  [[ -z "$status" ]] || tail -5 "$dir/last.log"
}

for ((r = 1; r <= rounds; r++)); do
  for rev in "${revs[@]}"; do
    git -C "$wt" checkout -q --detach "$rev"
    for shared in datasets .venv; do
      if [[ -d "$root/$shared" && ! -e "$wt/$shared" ]]; then ln -s "$root/$shared" "$wt/$shared"; fi
    done
    cd "$wt"
    for p in $(cargo metadata --no-deps --format-version 1 | python3 -c \
      'import json,sys; print(" ".join(p["name"] for p in json.load(sys.stdin)["packages"]))'); do
      cargo clean -q -p "$p" 2>/dev/null || true
    done
    cargo build -q --locked >"$dir/build.log" 2>&1 || { echo "test-build-bench: cargo build failed at $rev; see $dir/build.log" >&2; exit 1; }
    timed "$rev test-build" cargo test --locked --no-run
    if [[ $run_tests == 1 && $r == 1 ]]; then
      timed "$rev test-run" cargo test --locked
    fi
    cd "$root"
  done
done

median() { python3 -c "import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print(f'{statistics.median(v):.0f} s (' + ', '.join(f'{x:.0f}' for x in v) + ')')" "$@"; }
echo
printf '| step |'; for rev in "${revs[@]}"; do printf ' %s |' "$rev"; done; echo
printf '|---|'; for _ in "${revs[@]}"; do printf -- '---|'; done; echo
for step in test-build test-run; do
  [[ -n "${times[${revs[0]} $step]:-}" ]] || continue
  printf '| %s |' "$step"
  for rev in "${revs[@]}"; do printf ' %s |' "$(median ${times[$rev $step]})"; done
  echo
done
