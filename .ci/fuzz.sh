#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 30) on the stable toolchain
# (`--sanitizer none`), starting from the committed seeds in fuzz/corpus/<target>/.
# New inputs go to a scratch corpus, so the committed seeds stay small; crashes go to
# fuzz/artifacts/<target>/ and fail the run. Installs cargo-fuzz when missing.
# Prints one summary line per target: executions, coverage, corpus size.
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
for t in $targets; do
    mkdir -p "$scratch/$t" "corpus/$t"
    log="$scratch/$t.log"
    dict=()
    if [ -f "dict/$t.dict" ]; then dict=(-dict="dict/$t.dict"); fi
    # Message sequences get long (up to 200 steps); the seeds are short.
    if [ "$t" = vm_messages ]; then dict+=(-max_len=4096 -len_control=0); fi
    if cargo fuzz run --sanitizer none "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 "${dict[@]}" >"$log" 2>&1; then
        result=ok
    else
        result=FAILED
        status=1
        tail -n 40 "$log"
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.*corp: \([0-9]*\).*/\1/p' <<<"$last")
    echo "fuzz $t: $result, ${secs}s, executions ${execs}, coverage ${cov:-?} edges, features ${ft:-?}, corpus ${corp:-?}"
done
exit $status
