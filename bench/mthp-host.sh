#!/usr/bin/env bash
# mthp-host.sh: the host kernel's page-fault counts for the folio fixture programs under each
# anonymous folio size, measured with the kernel's own knobs.
#
# What it measures. For every program of loadgen/tests/fixtures/folio/programs.tsv and every
# size of $SIZES it sets the transparent-huge-page knobs so that the kernel allocates
# anonymous memory in folios of that size only, runs the program once to warm the page cache,
# then $RUNS times under `perf stat -e page-faults,minor-faults -x,` (the program and its
# children, counted by perf's software events; one event per fault the kernel handles, in
# user or kernel mode) and records the median, minimum and maximum. It also reads the chosen
# size's `stats/anon_fault_alloc` and `stats/anon_fault_fallback` counters around the runs, so
# the table says how many folios of that size were allocated per run and how often the kernel
# had to fall back to a smaller size (no free contiguous memory). Those two counters are
# system-wide: other processes faulting at the same time add to them (the fault counts do not).
#
#   size  hugepages-<k>kB/enabled                   transparent_hugepage/enabled
#   4k    every size never                          unchanged
#   16k   16kB always, every other size never       unchanged
#   64k   64kB always, every other size never       unchanged
#   2M    2048kB inherit, every other size never    always (PMD-mapped THP)
#
# At 2M the count depends on where address-space randomization places each large mapping
# (whether it holds a whole aligned 2 MiB block), so that size is run $RUNS_2M times (default
# 21) to show the spread; every single count goes to results/folio/host-runs.tsv.
#
# `defrag` is left as it is unless DEFRAG is set (then it is set to $DEFRAG for the runs).
# khugepaged stays as it is: it wakes every khugepaged/scan_sleep_millisecs (10 s here) and
# may collapse a PTE-mapped 2 MiB range into a PMD, which would save a program later faults
# at 2M; the programs run for well under a second, and /proc/vmstat's thp_collapse_alloc is
# read around each program's runs (column khugepaged_collapses: 0 means no collapse at all on
# the machine meanwhile, so none in the measured programs).
# No tracefs or debugfs is needed: perf's software counters and sysfs are enough.
#
# Every knob written is restored to the value it had before the script started, when the
# script ends for any reason (normal end, a failing command, Ctrl-C, SIGTERM); the knobs are
# printed before and after and the script fails if any differs afterwards. Only SIGKILL
# escapes the trap: the original values are printed first so they can be written back by hand.
#
# Run as root from anywhere inside the repository, with perf, gcc, mawk and python3:
#   sudo bash bench/mthp-host.sh                 # RUNS=7 RUNS_2M=21 SIZES="4k 16k 64k 2M"
#   sudo RUNS=9 SIZES="16k 64k" bash bench/mthp-host.sh
#   sudo PROBE=1 bash bench/mthp-host.sh         # also runs bench/mthp-probe.c at each size
# Output: results/folio/host-faults.tsv (one row per program and size; page_faults_ratio is
# the 4k median divided by this size's median), results/folio/host-runs.tsv (every run's
# count) and results/folio/host.tsv (host facts).
# Address-space randomization stays on: at 2M the count depends on where each large mapping
# lands, which the min-max columns show.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FIX=$ROOT/loadgen/tests/fixtures/folio
OUTDIR=${OUTDIR:-$ROOT/results/folio}
RUNS=${RUNS:-7}
RUNS_2M=${RUNS_2M:-21}
SIZES=${SIZES:-"4k 16k 64k 2M"}
T=/sys/kernel/mm/transparent_hugepage

die() { echo "mthp-host.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (it writes $T)"
[ -r "$T/enabled" ] || die "$T/enabled missing: this kernel has no transparent huge pages"
command -v perf >/dev/null || die "perf not found"
case $RUNS in '' | *[!0-9]* | 0) die "RUNS must be a positive integer, not '$RUNS'" ;; esac
case $RUNS_2M in '' | *[!0-9]* | 0) die "RUNS_2M must be a positive integer, not '$RUNS_2M'" ;; esac
vmstat() { awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }' /proc/vmstat; }

# The selected word of a sysfs choice file ("always [madvise] never" -> madvise).
current() { sed -n 's/.*\[\(.*\)\].*/\1/p' "$1"; }

# Every knob this script may write: the per-size files that exist, enabled, defrag.
KNOBS=()
for f in "$T"/hugepages-*kB/enabled; do [ -w "$f" ] && KNOBS+=("$f"); done
KNOBS+=("$T/enabled" "$T/defrag")
declare -A SAVED=()
for f in "${KNOBS[@]}"; do SAVED[$f]=$(current "$f"); done
[ ${#KNOBS[@]} -gt 2 ] || die "no writable $T/hugepages-*kB/enabled: this kernel (< 6.8) has no mTHP"

snapshot() { for f in "${KNOBS[@]}"; do printf '  %s = %s\n' "${f#"$T"/}" "$(current "$f")"; done; }

RESTORED=0
restore() {
    [ "$RESTORED" = 1 ] && return 0
    RESTORED=1
    local f bad=0
    # The top-level file first: a size set to inherit then takes its original meaning at once.
    for f in "$T/enabled" "$T/defrag" "${KNOBS[@]}"; do
        if [ "$(current "$f")" != "${SAVED[$f]}" ]; then
            echo "${SAVED[$f]}" > "$f" || bad=1
        fi
    done
    echo "knobs after (restored):"
    snapshot
    for f in "${KNOBS[@]}"; do
        if [ "$(current "$f")" != "${SAVED[$f]}" ]; then
            echo "mthp-host.sh: $f is '$(current "$f")', was '${SAVED[$f]}'" >&2
            bad=1
        fi
    done
    [ $bad = 0 ] || { echo "mthp-host.sh: could not restore every knob" >&2; return 1; }
    echo "every knob is back to its original value"
}
on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    restore || rc=1
    rm -rf "${WORK:-}"
    exit $rc
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "knobs before:"
snapshot

set_knob() { # file value
    [ "$(current "$1")" = "$2" ] || echo "$2" > "$1"
}

# Sizes in kB that have a per-size control here.
AVAILABLE=$(for f in "$T"/hugepages-*kB/enabled; do [ -w "$f" ] && basename "$(dirname "$f")"; done |
    sed 's/hugepages-\([0-9]*\)kB/\1/' | sort -n | tr '\n' ' ')
AVAILABLE=${AVAILABLE% }

size_kb() {
    case $1 in
        4k) echo 4 ;; 2M) echo 2048 ;;
        *k) echo "${1%k}" ;;
        *) die "size '$1' is not 4k, <n>k or 2M" ;;
    esac
}

configure() { # size
    local kb f
    kb=$(size_kb "$1")
    if [ "$kb" != 4 ] && [ ! -w "$T/hugepages-${kb}kB/enabled" ]; then
        die "size $1 has no control here (available: $AVAILABLE kB)"
    fi
    if [ "$1" = 2M ]; then set_knob "$T/enabled" always; else set_knob "$T/enabled" "${SAVED[$T/enabled]}"; fi
    if [ -n "${DEFRAG:-}" ]; then set_knob "$T/defrag" "$DEFRAG"; fi
    # Everything off first, then the one size on, so no moment has two sizes enabled.
    for f in "$T"/hugepages-*kB/enabled; do
        [ -w "$f" ] || continue
        [ "$f" = "$T/hugepages-${kb}kB/enabled" ] || set_knob "$f" never
    done
    case $kb in
        4) ;;
        2048) set_knob "$T/hugepages-2048kB/enabled" inherit ;;
        *) set_knob "$T/hugepages-${kb}kB/enabled" always ;;
    esac
}

stat_of() { # size counter -> value, or 0 when the size has no stats
    local f="$T/hugepages-$(size_kb "$1")kB/stats/$2"
    if [ -r "$f" ]; then cat "$f"; else echo 0; fi
}

WORK=$(mktemp -d)
export BIN=$WORK/bin
mkdir -p "$BIN" "$OUTDIR"

# Programs: name, source, command.
NAMES=() CMDS=()
while IFS=$'\t' read -r name src cmd; do
    [ -z "$name" ] || [ "${name:0:1}" = "#" ] && continue
    if [ "$src" != - ]; then gcc -O1 -o "$BIN/$name" "$FIX/$src"; fi
    NAMES+=("$name")
    CMDS+=("$cmd")
done < "$FIX/programs.tsv"
[ ${#NAMES[@]} -gt 0 ] || die "no programs in $FIX/programs.tsv"
if [ -n "${PROBE:-}" ]; then gcc -O1 -o "$BIN/mthp-probe" "$ROOT/bench/mthp-probe.c"; fi

# One counted run: prints "page-faults minor-faults".
count() { # command
    local o=$WORK/stat
    (cd "$FIX" && perf stat -x, -o "$o" -e page-faults,minor-faults -- sh -c "$1" >/dev/null)
    awk -F, '$3 == "page-faults" { p = $1 } $3 == "minor-faults" { m = $1 }
        END { if (p == "" || m == "") exit 1; print p, m }' "$o"
}

# median, min, max of the numbers on stdin.
summary() { sort -n | awk '{ v[NR] = $1 } END { printf "%d\t%d\t%d", (NR % 2 ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)), v[1], v[NR] }'; }

RAW=$WORK/rows
: > "$RAW"
printf 'program\tsize\trun\tpage_faults\n' > "$WORK/runs"
for size in $SIZES; do
    configure "$size"
    echo "size $size:"
    runs=$RUNS
    [ "$size" = 2M ] && runs=$RUNS_2M
    for i in "${!NAMES[@]}"; do
        name=${NAMES[$i]} cmd=${CMDS[$i]}
        count "$cmd" >/dev/null # warm the page cache
        a0=$(stat_of "$size" anon_fault_alloc) f0=$(stat_of "$size" anon_fault_fallback)
        c0=$(vmstat thp_collapse_alloc)
        : > "$WORK/pf" && : > "$WORK/mf"
        for r in $(seq "$runs"); do
            out=$(count "$cmd") || die "$name: perf stat failed at $size"
            read -r pf mf <<< "$out"
            echo "$pf" >> "$WORK/pf" && echo "$mf" >> "$WORK/mf"
            printf '%s\t%s\t%s\t%s\n' "$name" "$size" "$r" "$pf" >> "$WORK/runs"
        done
        a1=$(stat_of "$size" anon_fault_alloc) f1=$(stat_of "$size" anon_fault_fallback)
        c1=$(vmstat thp_collapse_alloc)
        pfs=$(summary < "$WORK/pf") mfs=$(summary < "$WORK/mf")
        alloc=$(awk -v a="$((a1 - a0))" -v n="$runs" 'BEGIN { printf "%.1f", a / n }')
        fallback=$(awk -v a="$((f1 - f0))" -v n="$runs" 'BEGIN { printf "%.1f", a / n }')
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$size" "$runs" "$pfs" "$mfs" "$alloc" "$fallback" \
            "$((c1 - c0))" >> "$RAW"
        printf '  %-10s page-faults median/min/max %s   folios/run %s fallbacks/run %s khugepaged collapses %s\n' \
            "$name" "$(tr '\t' / <<< "$pfs")" "$alloc" "$fallback" "$((c1 - c0))"
    done
    if [ -n "${PROBE:-}" ]; then
        "$BIN/mthp-probe" > "$OUTDIR/probe-$size.txt"
        sed 's/^/  probe: /' "$OUTDIR/probe-$size.txt"
    fi
done

{
    printf 'program\tsize\truns\tpage_faults_median\tpage_faults_min\tpage_faults_max\tminor_faults_median'
    printf '\tminor_faults_min\tminor_faults_max\thost_folio_allocs_per_run\thost_fallbacks_per_run'
    printf '\tkhugepaged_collapses\tpage_faults_ratio\n'
    awk -F'\t' -v OFS='\t' '{ row[NR] = $0; if ($2 == "4k") base[$1] = $4 }
        END { for (i = 1; i <= NR; i++) { split(row[i], f, "\t")
            r = (f[1] in base && f[4] > 0) ? sprintf("%.2f", base[f[1]] / f[4]) : "-"
            print row[i], r } }' "$RAW"
} > "$OUTDIR/host-faults.tsv"
cp "$WORK/runs" "$OUTDIR/host-runs.tsv"

{
    printf 'fact\tvalue\n'
    printf 'kernel\t%s\n' "$(uname -r)"
    printf 'machine\t%s\n' "$(uname -m)"
    printf 'perf\t%s\n' "$(perf --version)"
    printf 'cpus\t%s\n' "$(nproc)"
    printf 'mem_total_kb\t%s\n' "$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
    printf 'mthp_sizes_kb\t%s\n' "$AVAILABLE"
    printf 'pmd_size\t%s\n' "$(cat "$T/hpage_pmd_size")"
    for f in "${KNOBS[@]}"; do printf '%s\t%s\n' "${f#"$T"/}" "${SAVED[$f]}"; done
    for f in use_zero_page shrink_underused khugepaged/max_ptes_none khugepaged/pages_to_scan \
        khugepaged/scan_sleep_millisecs khugepaged/defrag; do
        [ -r "$T/$f" ] && printf '%s\t%s\n' "$f" "$(cat "$T/$f")"
    done
    for f in "$T"/*; do # files this script does not know (vendor knobs) are listed, not read into meaning
        case ${f##*/} in enabled | defrag | hpage_pmd_size | shmem_enabled | use_zero_page | shrink_underused | khugepaged | hugepages-*) ;;
            *) [ -f "$f" ] && printf 'other:%s\t%s\n' "${f##*/}" "$(cat "$f" 2>/dev/null)" ;; esac
    done
    printf 'randomize_va_space\t%s\n' "$(cat /proc/sys/kernel/randomize_va_space)"
    printf 'defrag_during_runs\t%s\n' "${DEFRAG:-unchanged}"
    printf 'runs\t%s\n' "$RUNS"
    printf 'runs_2M\t%s\n' "$RUNS_2M"
    printf 'sizes\t%s\n' "$SIZES"
    printf 'commit\t%s\n' "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    printf 'date\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$OUTDIR/host.tsv"

echo "wrote ${OUTDIR#"$ROOT"/}/host-faults.tsv, host-runs.tsv and host.tsv"
