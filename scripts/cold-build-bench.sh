#!/usr/bin/env bash
# Cold build and test times of two commits, each in its own worktree and empty target folder,
# one after the other: `cargo build`, then `cargo test --no-run` on top of it (what a fresh
# clone's test command compiles), then `cargo test` (the suite itself, warm).
#
#   bash scripts/cold-build-bench.sh BEFORE [AFTER] [--no-run-tests]
#   bash scripts/cold-build-bench.sh - [AFTER]     # AFTER only (BEFORE measured earlier)
#
# AFTER defaults to HEAD. BEFORE must build on its own: some commits made while several
# engineers worked at once do not (8444c3a and 4ad575d import a module that a later commit adds);
# for issue 17's restructure the candidate is d4c893d, the commit before them. The worktrees
# share this clone's `datasets/` (symlinked) so that the integration tests find the model and
# GLUE (and `.venv`, MLflow, when present). Run it on an idle machine: a build or a training run
# beside it makes the times worthless. Prints one line per step and a Markdown table; the
# worktrees and their targets go under ${COLD_BENCH_DIR:-target/cold-bench} and are removed at
# the end unless COLD_BENCH_KEEP=1.
set -euo pipefail

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
[[ "${1:-}" == "-h" || "${1:-}" == "--help" || $# -lt 1 ]] && { usage; exit 0; }

root="$(git rev-parse --show-toplevel)"
before="$1"
after="HEAD"
run_tests=1
for a in "${@:2}"; do
  case "$a" in
    --no-run-tests) run_tests=0 ;;
    -*) echo "cold-build-bench: unknown option $a" >&2; exit 2 ;;
    *) after="$a" ;;
  esac
done
dir="${COLD_BENCH_DIR:-$root/target/cold-bench}"
mkdir -p "$dir"

declare -A results
timed() { # label, then the command; prints and records the wall time in seconds
  local label="$1"; shift
  local t0 t1
  t0=$(date +%s.%N)
  local failed=""
  if ! "$@" >"$dir/$label.log" 2>&1; then
    echo "cold-build-bench: '$*' failed for $label; see $dir/$label.log" >&2
    tail -20 "$dir/$label.log" >&2
    # A failing test still times the suite; a failing build leaves nothing to time.
    [[ "$label" == *test-run ]] || exit 1
    failed=" (failed)"
  fi
  t1=$(date +%s.%N)
  results[$label]="$(python3 -c "print(f'{$t1 - $t0:.1f}')")$failed"
  echo "$label: ${results[$label]} s"
}

sides="before after"
[[ "$before" == "-" ]] && sides="after"
for side in $sides; do
  rev="${!side}"
  wt="$dir/$side"
  git -C "$root" worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
  git -C "$root" worktree add --detach "$wt" "$rev" >/dev/null
  for shared in datasets .venv; do
    if [[ -d "$root/$shared" ]]; then rm -rf "${wt:?}/$shared"; ln -s "$root/$shared" "$wt/$shared"; fi
  done
  commit=$(git -C "$wt" rev-parse --short HEAD)
  echo "$side = $commit ($(git -C "$wt" log -1 --format=%s | cut -c1-70))"
  export CARGO_TARGET_DIR="$wt/target"
  cd "$wt"
  timed "$side-build" cargo build --locked
  timed "$side-test-build" cargo test --locked --no-run
  if [[ $run_tests == 1 ]]; then
    timed "$side-test-run" cargo test --locked
  fi
  cd "$root"
  unset CARGO_TARGET_DIR
done

echo
echo "| step | before | after |"
echo "|---|---|---|"
for step in build test-build test-run; do
  [[ -n "${results[after-$step]:-}" ]] || continue
  echo "| $step | ${results[before-$step]:--} s | ${results[after-$step]} s |"
done

if [[ "${COLD_BENCH_KEEP:-0}" != 1 ]]; then
  for side in before after; do git -C "$root" worktree remove --force "$dir/$side" 2>/dev/null || true; done
fi
