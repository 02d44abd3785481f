# Sourced by bench/gate.sh and bench/refresh-baseline.sh: makes sure valgrind and
# iai-callgrind-runner 0.16.1 (the exact version of the iai-callgrind library) are
# installed, and describes the machine the counts come from.

if ! command -v valgrind >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq valgrind >/dev/null
    else
        echo "valgrind is missing (apt-get install valgrind)"; exit 1
    fi
fi
if ! command -v python3 >/dev/null; then
    echo "python3 is missing (it reads the callgrind files)"; exit 1
fi
if ! cargo install --list | grep -q '^iai-callgrind-runner v0.16.1:'; then
    echo "installing iai-callgrind-runner 0.16.1"
    cargo install iai-callgrind-runner --version 0.16.1 --locked
fi

# One line naming what the instruction counts depend on.
machine_line() {
    local cpu
    cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
    echo "cpu: $cpu valgrind: $(valgrind --version) rustc: $(rustc --version | cut -d' ' -f2)"
}

# Runs the callgrind benches into the iai-callgrind home directory $1, logging to $2.
#
# Counts must not depend on where the repository is checked out or on the caller's
# environment: glibc's memmove/memset loop a number of times that depends on a buffer's
# alignment, and where the heap's buffers land depends on the length of the program's path
# (the bench harness copies its arguments to the heap before any bench runs). So the bench
# binary is built, copied to a temporary path of fixed length and run from there under a
# minimal fixed environment. Two checkouts at different paths then give the same counts.
run_icount() {
    local home=$1 log=$2 bin tmp
    cargo bench --workspace --bench icount --no-run --message-format=json-render-diagnostics \
        >"$log.build.json" 2>"$log" || { cat "$log"; return 1; }
    bin=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "icount" and m.get("executable"):
        print(m["executable"])
' "$log.build.json" | tail -1)
    [[ -x $bin ]] || { echo "the icount bench binary was not built (see $log)"; return 1; }
    tmp=$(mktemp -d /tmp/vmstorm-iai.XXXXXXXXXX)
    cp "$bin" "$tmp/icount"
    # The runner asks cargo about the workspace, so it starts in the repository; the
    # working directory does not move the counts, the program's path does.
    env -i PATH="$HOME/.cargo/bin:/usr/local/bin:/usr/bin:/bin" HOME="$HOME" \
        "$tmp/icount" --home="$home" --nosummary --bench >>"$log" 2>&1
    local rc=$?
    rm -rf "$tmp"
    return $rc
}
