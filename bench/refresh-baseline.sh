#!/usr/bin/env bash
# Refreshes the instruction-count baseline deliberately: runs the callgrind benches twice,
# checks the two runs agree exactly, and writes results/iai/baseline.tsv and
# results/iai/MACHINE.txt (CPU model, valgrind, rustc, glibc: what the counts depend on;
# and the commit measured). The code must be committed first (only results/ may differ
# from HEAD), so that the commit named is the code measured; then commit results/iai/ in a
# commit that says why the baseline moved:
#
#   git commit ...                       # the code change
#   bash bench/refresh-baseline.sh       # measures HEAD twice, writes results/iai/
#   git add results/iai && git commit -m "iai baseline: <which benches, figures, why>"
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$TARGET/iai-refresh
export PATH="$HOME/.cargo/bin:$PATH"

source "$ROOT/bench/iai-env.sh"

if [[ -n $(git status --porcelain -- . ':!results') ]]; then
    git status --short -- . ':!results'
    echo "uncommitted changes outside results/: commit the code first, so that MACHINE.txt"
    echo "names the commit actually measured"
    exit 1
fi
COMMIT=$(git rev-parse HEAD)

rm -rf "$OUT"
mkdir -p "$OUT"
for run in 1 2; do
    echo "run $run of the callgrind benches"
    run_icount "$OUT/home$run" "$OUT/icount$run.log" || {
        tail -40 "$OUT/icount$run.log"; echo "the callgrind benches failed"; exit 1; }
    python3 "$ROOT/bench/callgrind_ir.py" collect "$OUT/home$run" >"$OUT/run$run.tsv"
done
if ! cmp -s "$OUT/run1.tsv" "$OUT/run2.tsv"; then
    diff "$OUT/run1.tsv" "$OUT/run2.tsv" || true
    echo "two runs of the same binary gave different counts: not refreshing (find the"
    echo "non-determinism first: hash seeds, threads, time)"
    exit 1
fi
if [[ $(git rev-parse HEAD) != "$COMMIT" ]]; then
    echo "HEAD moved while measuring: not refreshing"; exit 1
fi
mkdir -p "$ROOT/results/iai"
cp "$OUT/run1.tsv" "$ROOT/results/iai/baseline.tsv"
{
    cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
    echo "cpu: $cpu"
    echo "cpu flags: $(grep -m1 '^flags' /proc/cpuinfo | grep -o -w -E 'avx2|avx512f|erms|fsrm|sse4_2' | sort -u | tr '\n' ' ')"
    echo "valgrind: $(valgrind --version)"
    echo "rustc: $(rustc --version | cut -d' ' -f2)"
    echo "glibc: $(ldd --version | head -1 | awk '{print $NF}')"
    echo "commit: $COMMIT (the code measured; results/iai/ is committed after it)"
} >"$ROOT/results/iai/MACHINE.txt"
echo "baseline written: results/iai/baseline.tsv ($(($(wc -l <"$ROOT/results/iai/baseline.tsv") - 1)) benchmarks)"
cat "$ROOT/results/iai/MACHINE.txt"
