#!/usr/bin/env bash
# RATIOS.md from three runs of the Criterion time bench: runs `cargo bench --bench time`
# three times (each run's estimates kept apart), then has the `ratios` binary merge them
# into one table with min / median / max per row and a flag on every row whose ratio moved
# by more than 20 % between runs.
#
#   bash bench/ratios3.sh                  # the published figures: results/RATIOS.md
#   bash bench/ratios3.sh --try 'vm_fault_zero|linux'
#                                          # a reduced run (Criterion filter, short
#                                          # measurement) into target/ratios3/RATIOS.md
#
# Timing: each bench measures for VMSTORM_MEASURE seconds (default 0.6) after
# VMSTORM_WARMUP seconds of warm-up (default 0.15), chosen so that the three runs of about
# 110 benches and their set-up stay within about 12 minutes on 2 cores (the reduced run
# above, seven groups at 0.2 s, took 154 s for three runs on a busy machine). Run it on a
# quiet machine: the last column flags rows that moved more than 20 % between runs. Run as
# root, it also times the host at 16 and 64 KiB mTHP (see VMSTORM_MTHP below).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$TARGET/ratios3
MEASURE=${VMSTORM_MEASURE:-0.6}
WARMUP=${VMSTORM_WARMUP:-0.15}
FILTER=""
DEST=$ROOT/results/RATIOS.md
if [[ ${1:-} == --try ]]; then
    FILTER=${2:?"--try needs a Criterion filter (a regex over group/id)"}
    MEASURE=${VMSTORM_MEASURE:-0.2}
    WARMUP=${VMSTORM_WARMUP:-0.05}
    DEST=$OUT/RATIOS.md
elif [[ $# -gt 0 ]]; then
    echo "usage: bash bench/ratios3.sh [--try FILTER]"; exit 2
fi
export PATH="$HOME/.cargo/bin:$PATH"
# The published table carries the host's fault at each mTHP size beside ours: as root the
# folio_fault group sets the host's knobs for its Linux rows and restores them (set
# VMSTORM_MTHP=0 to leave the host's settings alone; those rows are then skipped).
if [[ $(id -u) == 0 ]]; then
    export VMSTORM_MTHP=${VMSTORM_MTHP:-1}
fi

rm -rf "$OUT"
mkdir -p "$OUT"
# The code measured, noted now (the table is rendered after the runs).
commit=$(git rev-parse --short=12 HEAD)
if [[ -n $(git status --porcelain --untracked-files=no) ]]; then commit="$commit with uncommitted changes"; fi
echo "$commit" >"$OUT/commit"
cargo bench --workspace --bench time --no-run >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
start=$(date +%s)
for run in 1 2 3; do
    echo "run $run of 3 of the time bench (measurement ${MEASURE}s, warm-up ${WARMUP}s${FILTER:+, filter $FILTER})"
    rm -rf "$TARGET/criterion"
    # shellcheck disable=SC2086
    cargo bench --workspace --bench time -- --measurement-time "$MEASURE" --warm-up-time "$WARMUP" \
        ${FILTER:+"$FILTER"} >"$OUT/run$run.log" 2>&1 || { tail -30 "$OUT/run$run.log"; exit 1; }
    mv "$TARGET/criterion" "$OUT/run$run"
done
echo "three runs in $(( $(date +%s) - start )) s"
cargo run --release -q -p vmstorm-bench --bin ratios -- \
    --criterion "$OUT/run1" --criterion "$OUT/run2" --criterion "$OUT/run3" --out "$DEST" \
    --commit "$(cat "$OUT/commit")"
echo "wrote $DEST"
