#!/usr/bin/env python3
"""Instruction counts of the callgrind benches, for the CI gate (bench/gate.sh).

  callgrind_ir.py collect HOME            print a TSV of every benchmark under an
                                          iai-callgrind --home directory
  callgrind_ir.py compare BASE NEW LIMIT  compare two such TSVs; exit 1 when a benchmark
                                          is missing from either side or its Ir grew by
                                          more than LIMIT percent (and more than
                                          MIN_DELTA instructions)

Columns: bench, ir, net_ir, libc_string_ir. `ir` is callgrind's total for the measured
function, glibc's memset/memcpy/memmove included: it is what the gate compares, so a
change that zeroes or copies more bytes fails it like any other extra work (zeroing is
85 % of a demand-zero fault, and the hole list's memmove is its algorithm).
`libc_string_ir` is the part spent in glibc's string functions (memset, memcpy, memmove,
strlen, ...), whose implementation glibc picks at load time by CPU features (AVX2, ERMS,
...), and `net_ir` = ir - libc_string_ir: both are shown, not gated, to tell a change in
our code from a change in bytes moved. Because glibc's choice depends on the CPU, the
baseline is tied to the machine kind named in results/iai/MACHINE.txt.

A count that moves between two runs of one binary is a defect of the bench, and the
refresh refuses it. The known source: glibc's memmove/memset run a loop whose trip count
depends on the destination's alignment (it aligns to 32 or 64 bytes first), and a buffer's
alignment depends on where the heap and the stack happen to start, which moves with the
length of the program's path, its arguments and its environment. The benches pin that
(bench/iai-env.sh: fixed environment; icount.rs: 4 KiB-aligned buffers for the
memmove-heavy workloads). Only the standard library is used.
"""
import os
import re
import sys

# Changes smaller than this many instructions never fail the gate (tiny benchmarks).
MIN_DELTA = 20
LIBC_OBJ = re.compile(r"/libc[.-][^/]*$|/libc\.so")
STRING_FN = re.compile(r"^_*(mem|str|wmem|wcs|stp|rawmem)[a-z]*(_|$)")


def parse_out(path):
    """Returns (raw Ir, Ir self-spent in glibc string functions) of one callgrind file."""
    events = None
    npos = 1  # "positions: line" unless the header says more
    totals = None
    names = {"ob": {}, "fn": {}}
    ob = fn = ""
    skip_next = False
    string_ir = 0

    def name(kind, value):
        m = re.match(r"\((\d+)\)(?: (.*))?$", value)
        if not m:
            return value
        if m.group(2) is not None:
            names[kind][m.group(1)] = m.group(2)
        return names[kind].get(m.group(1), "")

    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                if skip_next:  # the inclusive cost of a call, not self cost
                    skip_next = False
                    continue
                if events is None:
                    continue
                costs = line.split()[npos:]  # trailing zero costs may be left out
                if costs and LIBC_OBJ.search(ob) and STRING_FN.match(fn):
                    string_ir += int(costs[0])
                continue
            key, _, value = line.partition("=")
            if key == "ob":
                ob = name("ob", value)
            elif key == "cob":
                name("ob", value)
            elif key == "fn":
                fn = name("fn", value)
            elif key == "cfn":
                name("fn", value)
            elif key == "calls":
                skip_next = True
            elif line.startswith("positions:"):
                npos = len(line.split(":", 1)[1].split())
            elif line.startswith("events:"):
                events = line.split(":", 1)[1].split()
            elif line.startswith("totals:") or (line.startswith("summary:") and totals is None):
                totals = line.split(":", 1)[1].split()
    if events is None or totals is None or events[0] != "Ir":
        raise SystemExit(f"{path}: not a callgrind file with Ir first")
    return int(totals[0]), string_ir


def collect(home):
    rows = []
    for d, _, files in os.walk(home):
        outs = [f for f in files if f.startswith("callgrind.") and f.endswith(".out")]
        if not outs:
            continue
        rel = os.path.relpath(d, home).split(os.sep)
        bench = "/".join(rel[-2:])  # group/function.id
        raw, libc = parse_out(os.path.join(d, sorted(outs)[0]))
        rows.append((bench, raw, raw - libc, libc))
    if not rows:
        raise SystemExit(f"no callgrind results under {home}")
    print("bench\tir\tnet_ir\tlibc_string_ir")
    for r in sorted(rows):
        print("\t".join(map(str, r)))


def read_tsv(path):
    """bench -> (ir, net_ir, libc_string_ir); `ir` is the whole count (the gated one)."""
    rows = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("bench\t"):
                if "raw_ir" in line.split("\t"):
                    raise SystemExit(f"{path}: an old baseline that gated counts net of glibc's "
                                     "string functions; refresh it with bench/refresh-baseline.sh")
                continue
            if line.startswith("#") or not line.strip():
                continue
            bench, ir, net, libc = line.rstrip("\n").split("\t")
            rows[bench] = (int(ir), int(net), int(libc))
    return rows


def compare(base_path, new_path, limit):
    base, new = read_tsv(base_path), read_tsv(new_path)
    failures = []
    print(f"{'bench':58} {'baseline Ir':>12} {'now Ir':>12} {'change':>9} {'of it mem*/str*':>16}")
    for bench in sorted(set(base) | set(new)):
        if bench not in base:
            failures.append(f"{bench}: no baseline (a new benchmark: refresh the baseline)")
            print(f"{bench:58} {'-':>12} {new[bench][0]:>12} {'new':>9}")
            continue
        if bench not in new:
            failures.append(f"{bench}: in the baseline but not run (removed? refresh the baseline)")
            print(f"{bench:58} {base[bench][0]:>12} {'-':>12} {'gone':>9}")
            continue
        b, n = base[bench][0], new[bench][0]
        pct = (n - b) * 100.0 / b if b else (0.0 if n == 0 else float("inf"))
        mark = ""
        if pct > limit and n - b > MIN_DELTA:
            mark = "  REGRESSED"
            failures.append(f"{bench}: Ir {b} -> {n} ({pct:+.2f} %, limit +{limit} %)")
        elif pct < -limit and b - n > MIN_DELTA:
            mark = "  improved (refresh the baseline to keep it)"
        lb, ln = base[bench][2], new[bench][2]
        print(f"{bench:58} {b:>12} {n:>12} {pct:>+8.2f}% {lb:>7}->{ln:<8}{mark}")
    return failures


def main(argv):
    if len(argv) == 3 and argv[1] == "collect":
        collect(argv[2])
        return 0
    if len(argv) == 5 and argv[1] == "compare":
        failures = compare(argv[2], argv[3], float(argv[4]))
        for f in failures:
            print("GATE FAILURE: " + f)
        return 1 if failures else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
