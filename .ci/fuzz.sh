#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 30) on the stable toolchain
# (`--sanitizer none`), starting from the committed seeds in fuzz/corpus/<target>/.
# FUZZ_TARGETS (space-separated) limits the run to some targets.
# The message target's time is split evenly over the six allocator x paging format pairs
# (VMSTORM_FUZZ_PAIR pins each run to one; fork and zeroing policies still come from the
# input), so every pair is fuzzed on every run.
# New inputs go to a scratch corpus, so the committed seeds stay small; crashes go to
# fuzz/artifacts/<target>/ and fail the run. Installs cargo-fuzz when missing.
# Prints one summary line per target (per pair for the message target): executions,
# coverage, corpus size.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
secs=${1:-30}
FUZZ_VERSION=0.13.2

if ! cargo fuzz --version 2>/dev/null | grep -q "$FUZZ_VERSION"; then
    echo "installing cargo-fuzz $FUZZ_VERSION"
    cargo install cargo-fuzz --version "$FUZZ_VERSION" --locked --quiet
fi

cd fuzz
targets=$(cargo fuzz list)
cargo fuzz build --sanitizer none
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
pairs="bitset-x86_64 bitset-i386 buddy-x86_64 buddy-i386 holelist-x86_64 holelist-i386"

# fuzz_one TARGET SECONDS LABEL: one libFuzzer run and its summary line.
fuzz_one() {
    local t=$1 s=$2 label=$3
    local log="$scratch/$label.log"
    local dict=()
    if [ -f "dict/$t.dict" ]; then dict=(-dict="dict/$t.dict"); fi
    # Message sequences get long (up to 200 steps); the seeds are short.
    if [ "$t" = vm_messages ]; then dict+=(-max_len=4096 -len_control=0); fi
    local result
    if cargo fuzz run --sanitizer none "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$s" -print_final_stats=1 "${dict[@]}" >"$log" 2>&1; then
        result=ok
    else
        result=FAILED
        status=1
        tail -n 40 "$log"
    fi
    local execs last cov ft corp
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.*corp: \([0-9]*\).*/\1/p' <<<"$last")
    echo "fuzz $label: $result, ${s}s, executions ${execs}, coverage ${cov:-?} edges, features ${ft:-?}, corpus ${corp:-?}"
}

for t in ${FUZZ_TARGETS:-$targets}; do
    mkdir -p "$scratch/$t" "corpus/$t"
    if [ "$t" = vm_messages ]; then
        per=$(( secs / 6 > 0 ? secs / 6 : 1 ))
        for pair in $pairs; do
            VMSTORM_FUZZ_PAIR=$pair fuzz_one "$t" "$per" "$t[$pair]"
        done
    else
        fuzz_one "$t" "$secs" "$t"
    fi
done
exit $status
