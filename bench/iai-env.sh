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
