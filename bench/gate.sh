#!/usr/bin/env bash
# The CI instruction-count gate: runs the callgrind benches (benches/icount.rs) and compares
# each benchmark's Ir with the committed baseline results/iai/baseline.tsv. Fails when a
# benchmark's Ir grew by more than VMSTORM_GATE_LIMIT percent (default 2), when the
# baseline is missing, or when a benchmark has no baseline row (or a row without a bench).
# The gated count is the whole cost of each bench, glibc's memset/memcpy/memmove included
# (a change that zeroes or copies more bytes fails like any other extra work); the part in
# those functions is printed beside it (see bench/callgrind_ir.py). Counts are exact: the
# same commit gives the same counts run after run and from any checkout path (bench/iai-env.sh).
# Installs iai-callgrind-runner 0.16.1 when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LIMIT=${VMSTORM_GATE_LIMIT:-2}
BASELINE=$ROOT/results/iai/baseline.tsv
MACHINE=$ROOT/results/iai/MACHINE.txt
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$TARGET/iai-gate
export PATH="$HOME/.cargo/bin:$PATH"

source "$ROOT/bench/iai-env.sh"

if [[ ! -s $BASELINE ]]; then
    echo "GATE FAILURE: no baseline at results/iai/baseline.tsv."
    echo "Create it deliberately with bench/refresh-baseline.sh and commit results/iai/."
    exit 1
fi

rm -rf "$OUT"
mkdir -p "$OUT"
echo "running the callgrind benches (results in $OUT)"
run_icount "$OUT/home" "$OUT/icount.log" || {
    tail -40 "$OUT/icount.log"
    echo "GATE FAILURE: the callgrind benches did not run (log above, full log: $OUT/icount.log)"
    exit 1
}
python3 "$ROOT/bench/callgrind_ir.py" collect "$OUT/home" >"$OUT/current.tsv"

if python3 "$ROOT/bench/callgrind_ir.py" compare "$BASELINE" "$OUT/current.tsv" "$LIMIT"; then
    echo "gate: ok (no benchmark above +$LIMIT % Ir)"
    exit 0
fi
echo
echo "The instruction-count gate failed (limit +$LIMIT % Ir against results/iai/baseline.tsv)."
echo "Real regression or machine change? Counts are exact for one binary, toolchain and CPU"
echo "model; glibc picks its memset/memcpy by CPU features, and valgrind and rustc move counts too:"
echo "  baseline machine: $(grep -E '^(cpu|valgrind|rustc):' "$MACHINE" 2>/dev/null | tr '\n' ' ')"
echo "  this machine:     $(machine_line)"
echo "If the two lines differ, re-run on the baseline's machine kind (or, if the new machine is"
echo "the reference from now on, refresh the baseline deliberately: bench/refresh-baseline.sh)."
echo "If they are the same, the change is real: look at the named benchmarks with"
echo "  callgrind_annotate $OUT/home/<pkg>/icount/<group>/<bench>/callgrind.*.out"
echo "and fix it, or, when it is an accepted trade-off, refresh the baseline with"
echo "bench/refresh-baseline.sh in a commit that names the benchmarks and says why."
exit 1
