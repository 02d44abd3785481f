//! The ratio table of `results/RATIOS.md`: every row of DESIGN §6, like for like, from one
//! or more Criterion runs (`<dir>/<group>/<id>/new/estimates.json`), with instruction
//! counts per operation from the committed callgrind baseline (`results/iai/baseline.tsv`).
//!
//! Each row names our **default** strategy's figure and our **best** one (with its id),
//! the best peer crate's and the host kernel's, all with the same page-table format; the
//! Linux figure carries the cost of a null system call from the same run, and its ratio is
//! given raw and net of the kernel entries the operation needs. With several runs every
//! figure is the median with min and max, and a row whose ratio moved more than
//! [`MOVED_LIMIT`] between runs is flagged.
//!
//! Benchmark ids follow one convention: in each group ours start with `ours-`, the peers
//! with `peer-`, and the host kernel's are in the `linux` group.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Median time per iteration (ns) of every Criterion benchmark of one run, keyed `group/id`.
pub type Times = BTreeMap<String, f64>;
/// Instructions (`ir` column: the whole count) keyed `group/function.id`.
pub type Counts = BTreeMap<String, u64>;

/// A ratio that moved by more than this fraction between runs (max ÷ min − 1) is flagged.
pub const MOVED_LIMIT: f64 = 0.20;

/// The Criterion id of the null system call, timed in the same run as the Linux rows.
pub const NULL_SYSCALL: &str = "linux/null_syscall";

/// Reads every `<group>/<id>/new/estimates.json` under a Criterion output directory.
pub fn read_criterion(dir: &Path) -> Times {
    let mut out = Times::new();
    let Ok(groups) = std::fs::read_dir(dir) else { return out };
    for g in groups.flatten() {
        let Ok(ids) = std::fs::read_dir(g.path()) else { continue };
        for id in ids.flatten() {
            let est = id.path().join("new").join("estimates.json");
            let Ok(text) = std::fs::read_to_string(&est) else { continue };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
            if let Some(ns) = v["median"]["point_estimate"].as_f64() {
                let key = format!("{}/{}", g.file_name().to_string_lossy(), id.file_name().to_string_lossy());
                out.insert(key, ns);
            }
        }
    }
    out
}

/// Reads the `bench` and `ir` columns of a callgrind TSV (missing file: empty).
pub fn read_counts(path: &Path) -> Counts {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("bench\t"))
        .filter_map(|l| {
            let mut cols = l.split('\t');
            let bench = cols.next()?;
            let ir = cols.next()?.parse().ok()?;
            Some((bench.to_string(), ir))
        })
        .collect()
}

/// Which benchmarks of a group a figure comes from: ids starting with `prefix` and
/// containing every string of `contains`, none of `excludes`; the fastest is taken,
/// divided by `per_iter` operations per iteration.
#[derive(Clone, Copy, Debug)]
pub struct Pick {
    /// Criterion group.
    pub group: &'static str,
    /// Id prefix (`ours-`, `peer-`, or a full id).
    pub prefix: &'static str,
    /// Strings the id must contain (the page-table format, for one).
    pub contains: &'static [&'static str],
    /// Strings the id must not contain.
    pub excludes: &'static [&'static str],
    /// Operations per iteration.
    pub per_iter: f64,
    /// `prefix` is the whole id (one benchmark, not the fastest of those it starts).
    pub exact: bool,
}

/// An instruction count per operation: `(bench - harness) / ops`.
#[derive(Clone, Copy, Debug)]
pub struct IrPick {
    /// The bench (`group/function.id`).
    pub bench: &'static str,
    /// The harness bench to subtract, if any.
    pub harness: Option<&'static str>,
    /// Operations per bench run.
    pub ops: f64,
}

/// One row of DESIGN §6.
#[derive(Clone, Debug)]
pub struct Row {
    /// The operation, as DESIGN §6 names it.
    pub operation: &'static str,
    /// The default strategy's benchmark (one id).
    pub default: Option<Pick>,
    /// Our candidates for the best figure.
    pub best: Option<Pick>,
    /// The peers' candidates.
    pub peer: Option<Pick>,
    /// The host kernel's figure and the kernel entries (traps) it needs per operation.
    pub linux: Option<(Pick, f64)>,
    /// Target time per operation, ns (judged on the default's median).
    pub target_ns: Option<f64>,
    /// The default's instruction count per operation.
    pub ir: Option<IrPick>,
    /// Target instructions per operation.
    pub target_ir: Option<f64>,
    /// A speed-up row instead of a time: (one, many, target): met when one ÷ many ≥ target.
    pub speedup: Option<(Pick, Pick, f64)>,
    /// What is compared, or what is missing by design.
    pub note: &'static str,
}

const fn exact(group: &'static str, id: &'static str) -> Pick {
    Pick { group, prefix: id, contains: &[], excludes: &[], per_iter: 1.0, exact: true }
}

const fn id(group: &'static str, id: &'static str, per_iter: f64) -> Option<Pick> {
    Some(Pick { group, prefix: id, contains: &[], excludes: &[], per_iter, exact: true })
}

const fn ours(group: &'static str, contains: &'static [&'static str], per_iter: f64) -> Option<Pick> {
    Some(Pick { group, prefix: "ours-", contains, excludes: &[], per_iter, exact: false })
}

const fn peers(group: &'static str, per_iter: f64) -> Option<Pick> {
    Some(Pick { group, prefix: "peer-", contains: &[], excludes: &[], per_iter, exact: false })
}

const fn linux(id: &'static str, entries: f64) -> Option<(Pick, f64)> {
    linux_in("linux", id, entries)
}

const fn linux_in(group: &'static str, id: &'static str, entries: f64) -> Option<(Pick, f64)> {
    Some((Pick { group, prefix: id, contains: &[], excludes: &[], per_iter: 1.0, exact: true }, entries))
}

/// Our fastest in x86-64 tables, zeroing in the fault (the pre-zeroed rows have their own).
const fn ours_x64(group: &'static str) -> Option<Pick> {
    Some(Pick {
        group,
        prefix: "ours-",
        contains: X64,
        excludes: &["prezeroed"],
        per_iter: 1.0,
        exact: false,
    })
}

/// The default strategy's allocator, fork and zeroing policies (hot list + buddy, cow, zeroing
/// in the fault) in x86-64 tables: like for like with the peers' and Linux's 4-level tables.
const DEFAULT_X64: &str = "ours-hot+buddy-x86-64";

const X64: &[&str] = &["x86-64"];

/// Our fastest allocator without a hot list in front (the allocators' own mechanics).
const fn bare(group: &'static str) -> Option<Pick> {
    Some(Pick { group, prefix: "ours-", contains: &[], excludes: &["hot"], per_iter: 1.0, exact: false })
}

const FRAMES_NOTE: &str = "default: the hot list in front of buddy (a free and the next alloc meet in \
     it); best: the bare allocators; Ir: buddy's own, net of the harness";

/// The rows of DESIGN §6, in its order, plus informational rows after them.
pub fn rows() -> Vec<Row> {
    let row = |operation, default, best, peer, target_ns| Row {
        operation,
        default,
        best,
        peer,
        linux: None,
        target_ns,
        ir: None,
        target_ir: None,
        speedup: None,
        note: "",
    };
    let fork = |operation, group, pages: &'static str, timing: &'static str, target, note| {
        // Warm loop, fork+exit, or cold caches: the default (cow) against the best policy
        // timed the same way; the peer only in the warm loop (its fork has no exit).
        let (default, excludes): (&'static str, &'static [&'static str]) = match timing {
            "warm" => ("ours-cow-x86-64", &["-with-exit", "-cold"]),
            "exit" => ("ours-cow-x86-64-with-exit", &[]),
            _ => ("ours-cow-x86-64-cold", &[]),
        };
        let contains: &'static [&'static str] = match timing {
            "warm" => X64,
            "exit" => &["x86-64-with-exit"],
            _ => &["x86-64-cold"],
        };
        let peer = if timing == "warm" { peers(pages, 1.0) } else { None };
        Row {
            note,
            ..row(
                operation,
                id(group, default, 1.0),
                Some(Pick { group, prefix: "ours-", contains, excludes, per_iter: 1.0, exact: false }),
                peer,
                target,
            )
        }
    };
    vec![
        Row {
            ir: Some(IrPick {
                bench: "vmstorm/buddy_fragmented.ops1000",
                harness: Some("peers/harness_fragmented.ops1000"),
                ops: 1000.0,
            }),
            target_ir: Some(30.0),
            note: FRAMES_NOTE,
            ..row(
                "frame alloc+free, fragmented pool",
                id("frames_fragmented", "ours-hot+buddy", 1.0),
                bare("frames_fragmented"),
                peers("frames_fragmented", 1.0),
                Some(6.0),
            )
        },
        Row {
            ir: Some(IrPick {
                bench: "vmstorm/buddy_contig16.ops100",
                harness: Some("peers/harness_contig16.ops100"),
                ops: 100.0,
            }),
            target_ir: Some(80.0),
            note: FRAMES_NOTE,
            ..row(
                "contiguous 16 frames",
                id("frames_contig16", "ours-hot+buddy", 1.0),
                bare("frames_contig16"),
                peers("frames_contig16", 1.0),
                Some(8.0),
            )
        },
        Row {
            note: FRAMES_NOTE,
            ..row(
                "contiguous 512 frames, 2 MiB-aligned",
                id("frames_contig512", "ours-hot+buddy", 1.0),
                bare("frames_contig512"),
                peers("frames_contig512", 1.0),
                Some(15.0),
            )
        },
        row(
            "map 4 KiB page, sequential, x86-64 (amortized in map_range)",
            id("map_seq", "ours-x86-64", 512.0),
            ours("map_seq", X64, 512.0),
            peers("map_seq", 512.0),
            Some(3.0),
        ),
        Row {
            ir: Some(IrPick {
                bench: "vmstorm/ours_x86_64_translate_random.ops1000",
                harness: Some("peers/harness_translate_random.ops1000"),
                ops: 1000.0,
            }),
            target_ir: Some(30.0),
            ..row(
                "translate, x86-64, random, beyond L2",
                id("translate_random", "ours-x86-64", 1.0),
                ours("translate_random", X64, 1.0),
                peers("translate_random", 1.0),
                Some(6.0),
            )
        },
        fork(
            "fork of 1,000 mapped pages, x86-64, warm loop",
            "vm_fork_1k",
            "fork_tables_1k",
            "warm",
            Some(1_400.0),
            "ours through the server (refcounts included); peer: its tables iterated into a child",
        ),
        fork("fork of 1,000 mapped pages, x86-64, fork+exit", "vm_fork_1k", "", "exit", None, ""),
        fork("fork of 1,000 mapped pages, x86-64, cold caches", "vm_fork_1k", "", "cold", None, ""),
        fork(
            "fork of 100,000 mapped pages, x86-64, warm loop",
            "vm_fork_100k",
            "fork_tables_100k",
            "warm",
            Some(100_000.0),
            "ours through the server (refcounts included); peer: its tables iterated into a child",
        ),
        fork("fork of 100,000 mapped pages, x86-64, fork+exit", "vm_fork_100k", "", "exit", None, ""),
        fork("fork of 100,000 mapped pages, x86-64, cold caches", "vm_fork_100k", "", "cold", None, ""),
        Row {
            ir: Some(IrPick { bench: "server/fork_pages.share_1k", harness: None, ops: 1.0 }),
            note: "on-demand fork (`share`): leaf tables shared, not copied; not the default",
            ..row(
                "fork of 1,000 mapped pages, shared leaf tables, x86-64",
                None,
                id("vm_fork_1k", "ours-share-x86-64", 1.0),
                peers("fork_tables_1k", 1.0),
                Some(400.0),
            )
        },
        Row {
            note: "on-demand fork (`share`): leaf tables shared, not copied; not the default",
            ..row(
                "fork of 100,000 mapped pages, shared leaf tables, x86-64",
                None,
                id("vm_fork_100k", "ours-share-x86-64", 1.0),
                peers("fork_tables_100k", 1.0),
                Some(1_000.0),
            )
        },
        Row {
            ir: Some(IrPick { bench: "server/fault_unshare.tables16", harness: None, ops: 16.0 }),
            note: "end to end: copy of one full leaf table, then the page's COW copy",
            ..row(
                "first write under a shared leaf table, x86-64",
                id("vm_fault_unshare", DEFAULT_X64, 1.0),
                None,
                None,
                Some(1_000.0),
            )
        },
        Row {
            ir: Some(IrPick { bench: "server/fault_zero.pages64", harness: None, ops: 64.0 }),
            linux: linux("page_fault1", 1.0),
            note: "zeroing in the fault, a byte written into each page, as page_fault1 does",
            ..row(
                "demand-zero fault, end to end through the message loop, x86-64",
                id("vm_fault_zero", DEFAULT_X64, 1.0),
                ours_x64("vm_fault_zero"),
                None,
                Some(200.0),
            )
        },
        Row {
            ir: Some(IrPick { bench: "server/fault_prezeroed.refill_pages64", harness: None, ops: 64.0 }),
            linux: linux("page_fault1", 1.0),
            note: "pre-zeroed pool, its refill timed with the faults: amortized per fault",
            ..row(
                "demand-zero fault from the pre-zeroed pool, refill included, x86-64",
                None,
                id("vm_fault_zero", "ours-hot+buddy-x86-64-prezeroed-refill", 1.0),
                None,
                None,
            )
        },
        Row {
            linux: linux("page_fault1", 1.0),
            note: "the default strategy itself: MINIX's 2-level tables against Linux's 4-level, \
                   not like for like",
            ..row(
                "demand-zero fault, the default strategy (hot+buddy, i386 tables)",
                id("vm_fault_zero", "ours-hot+buddy-i386", 1.0),
                None,
                None,
                None,
            )
        },
        Row {
            linux: linux_in("folio_fault", "linux-page_fault1-16k", 0.25),
            note: "per 4 KiB page written: one fault per 16 KiB folio; Linux with 16 KiB mTHP alone \
                   (root and VMSTORM_MTHP=1 only)",
            ..row(
                "write fault per 4 KiB page touched, 16 KiB folios, x86-64",
                id("folio_fault", "ours-hot+buddy-x86-64-16k", 1.0),
                None,
                None,
                None,
            )
        },
        Row {
            linux: linux_in("folio_fault", "linux-page_fault1-64k", 1.0 / 16.0),
            note: "per 4 KiB page written: one fault per 64 KiB folio; Linux with 64 KiB mTHP alone \
                   (root and VMSTORM_MTHP=1 only)",
            ..row(
                "write fault per 4 KiB page touched, 64 KiB folios, x86-64",
                id("folio_fault", "ours-hot+buddy-x86-64-64k", 1.0),
                None,
                None,
                None,
            )
        },
        Row {
            linux: linux_in("folio_fault", "linux-page_fault1-2048k", 1.0 / 512.0),
            note: "per 4 KiB page written: one fault per 2 MiB page (a PS entry); Linux with PMD THP \
                   alone (root and VMSTORM_MTHP=1 only)",
            ..row(
                "write fault per 4 KiB page touched, 2 MiB pages, x86-64",
                id("folio_fault", "ours-hot+buddy-x86-64-2m", 1.0),
                None,
                None,
                None,
            )
        },
        Row {
            speedup: Some((
                exact("folio_fault", "zero_2m_per_4k"),
                exact("folio_fault", "ours-hot+buddy-x86-64-2m"),
                0.8,
            )),
            note:
                "zeroing 2 MiB (per 4 KiB) ÷ the 2 MiB fault per 4 KiB page: ≥ 0.8 is ≤ 1.25× zeroing 2 MiB",
            ..row("2 MiB pages: zeroing 2 MiB ÷ the huge-page fault", None, None, None, None)
        },
        Row {
            speedup: Some((
                exact("folio_fault", "zero_4k_hot"),
                exact("folio_fault", "ours-hot+buddy-x86-64-64k"),
                0.8,
            )),
            note: "zeroing one cache-hot 4 KiB frame ÷ the 64 KiB-folio fault per page: ≥ 0.8 is \
                   ≤ 1.25× zeroing",
            ..row("64 KiB folios: zeroing 4 KiB (hot) ÷ cost per page touched", None, None, None, None)
        },
        Row {
            speedup: Some((
                exact("folio_fault", "zero_4k_cold"),
                exact("folio_fault", "ours-hot+buddy-x86-64-64k"),
                0.8,
            )),
            note: "zeroing 4 KiB frames that have left the caches (as a storm's are) ÷ the same",
            ..row("64 KiB folios: zeroing 4 KiB (cold) ÷ cost per page touched", None, None, None, None)
        },
        Row {
            note:
                "locality: the hot list hands the frames just freed back; cold-bitset: next-fit's cold frames",
            ..row(
                "demand-zero fault right after a free of as many pages, x86-64",
                id("vm_fault_refault", DEFAULT_X64, 1.0),
                ours_x64("vm_fault_refault"),
                None,
                None,
            )
        },
        Row {
            ir: Some(IrPick { bench: "server/fault_cow.pages64", harness: None, ops: 64.0 }),
            linux: linux("cow_fault", 1.0),
            ..row(
                "COW fault with copy, x86-64",
                id("vm_fault_cow", DEFAULT_X64, 1.0),
                ours_x64("vm_fault_cow"),
                None,
                Some(400.0),
            )
        },
        Row {
            linux: linux("mmap1", 2.0),
            note: "Linux: two system calls; ours: two calls into the server, no trap",
            ..row(
                "mmap+munmap untouched (128 MiB)",
                id("vm_mmap", DEFAULT_X64, 1.0),
                ours_x64("vm_mmap"),
                None,
                Some(100.0),
            )
        },
        Row {
            linux: linux("fork_exec_wait", 4.0),
            note: "Linux also runs /bin/true's own start-up",
            ..row(
                "fork+exec+exit of a small image, x86-64",
                id("vm_exec", DEFAULT_X64, 1.0),
                ours_x64("vm_exec"),
                None,
                Some(5_000.0),
            )
        },
        Row {
            ir: Some(IrPick { bench: "server/dispatch_in_place.ops1000", harness: None, ops: 1000.0 }),
            target_ir: Some(25.0),
            note: "in place, as MINIX answers from its receive buffer (the bench loop's ~5 Ir included); \
                   through `handle`, which copies the 64-byte message in and out: 73 Ir",
            ..row(
                "dispatch + ACL + reply of a trivial call",
                id("vm_dispatch", DEFAULT_X64, 1.0),
                ours_x64("vm_dispatch"),
                None,
                None,
            )
        },
        Row {
            speedup: Some((exact("storm_mixed", "ours-1-shard"), exact("storm_mixed", "ours-2-shards"), 1.8)),
            note: "mixed storm, default strategy; time per storm, 1 shard ÷ 2 shards",
            ..row("shards on 2 cores", None, None, None, None)
        },
        Row {
            linux: linux("brk1", 2.0),
            note: "informational",
            ..row("brk +4 KiB / −4 KiB pair", id("vm_brk", DEFAULT_X64, 1.0), ours_x64("vm_brk"), None, None)
        },
        Row {
            linux: linux("fork_exit_wait", 3.0),
            note: "informational",
            ..row(
                "fork+exit of a small process, x86-64",
                id("vm_fork_exit", DEFAULT_X64, 1.0),
                ours_x64("vm_fork_exit"),
                None,
                None,
            )
        },
    ]
}

/// The fastest matching benchmark of one run: `(id, ns per operation)`.
pub fn best(times: &Times, p: Pick) -> Option<(String, f64)> {
    let head = format!("{}/", p.group);
    times
        .iter()
        .filter_map(|(k, &ns)| {
            let id = k.strip_prefix(&head)?;
            let ok = if p.exact { id == p.prefix } else { id.starts_with(p.prefix) }
                && p.contains.iter().all(|c| id.contains(c))
                && !p.excludes.iter().any(|c| id.contains(c));
            ok.then(|| (id.to_string(), ns / p.per_iter))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// The default's instruction count per operation, net of the harness.
pub fn ir_per_op(counts: &Counts, p: IrPick) -> Option<f64> {
    let harness = match p.harness {
        Some(h) => *counts.get(h)? as f64,
        None => 0.0,
    };
    counts.get(p.bench).map(|&ir| (ir as f64 - harness) / p.ops)
}

/// A time for a table cell.
pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{ns:.1} ns")
    }
}

/// Median, min and max of some values (none: `None`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// Median (of an even count: the mean of the middle two).
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// How many values.
    pub n: usize,
}

impl Spread {
    /// The spread of `v`, or `None` when empty.
    pub fn of(v: &[f64]) -> Option<Spread> {
        if v.is_empty() {
            return None;
        }
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 };
        Some(Spread { median, min: s[0], max: s[n - 1], n })
    }

    /// Whether the values moved by more than [`MOVED_LIMIT`] (max ÷ min − 1).
    pub fn moved(&self) -> bool {
        self.n > 1 && self.min > 0.0 && self.max / self.min - 1.0 > MOVED_LIMIT
    }

    fn time(&self) -> String {
        if self.n > 1 {
            format!("{} ({}–{})", fmt_ns(self.median), fmt_ns(self.min), fmt_ns(self.max))
        } else {
            fmt_ns(self.median)
        }
    }

    fn ratio(&self) -> String {
        if self.n > 1 {
            format!("{:.2}× ({:.2}–{:.2})", self.median, self.min, self.max)
        } else {
            format!("{:.2}×", self.median)
        }
    }
}

/// Per-run values of a pick (runs where it is missing are left out).
fn values(runs: &[Times], p: Option<Pick>) -> Vec<f64> {
    p.map(|p| runs.iter().filter_map(|t| best(t, p).map(|b| b.1)).collect()).unwrap_or_default()
}

/// Per-run `num ÷ den` where both are present in that run.
fn ratios(
    runs: &[Times],
    num: impl Fn(&Times) -> Option<f64>,
    den: impl Fn(&Times) -> Option<f64>,
) -> Vec<f64> {
    runs.iter()
        .filter_map(|t| match (num(t), den(t)) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        })
        .collect()
}

/// The id the best pick chose most often over the runs (ties: the first run's).
fn best_id(runs: &[Times], p: Pick) -> Option<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut first = None;
    for t in runs {
        if let Some((id, _)) = best(t, p) {
            first.get_or_insert_with(|| id.clone());
            *seen.entry(id).or_default() += 1;
        }
    }
    let top = seen.values().copied().max()?;
    let first = first?;
    if seen.get(&first) == Some(&top) {
        return Some(first);
    }
    seen.into_iter().find(|(_, n)| *n == top).map(|(id, _)| id)
}

fn short(id: &str) -> &str {
    id.trim_start_matches("ours-").trim_start_matches("peer-")
}

/// The Markdown table (and its preamble) from one or more runs.
pub fn render(runs: &[Times], counts: &Counts, header: &str) -> String {
    let mut s = String::new();
    s.push_str(header);
    let _ = writeln!(
        s,
        "\n| operation | ours: default | ours: best (which) | best peer (which) | Linux [null syscall] | \
         peer ÷ ours default | Linux ÷ ours default: raw / net of the trap | target (on the default) | \
         Ir/op default (target) | met | runs |"
    );
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    let null = |t: &Times| t.get(NULL_SYSCALL).copied();
    for r in rows() {
        if let Some((one, many, target)) = r.speedup {
            let x = ratios(runs, |t| best(t, one).map(|b| b.1), |t| best(t, many).map(|b| b.1));
            let (cell, met, runs_cell) = match Spread::of(&x) {
                Some(sp) => (
                    sp.ratio(),
                    if sp.median >= target { "**yes**" } else { "no" },
                    moved_cell(sp.n, sp.moved()),
                ),
                None => ("—".to_string(), "not measured", "—".to_string()),
            };
            let _ = writeln!(
                s,
                "| {} | {cell} | — | — | — | — | — | ≥ {target}× | — | {met}{} | {runs_cell} |",
                r.operation,
                note(r.note)
            );
            continue;
        }
        let default = Spread::of(&values(runs, r.default));
        let best_sp = Spread::of(&values(runs, r.best));
        let peer = Spread::of(&values(runs, r.peer));
        let lin = Spread::of(&values(runs, r.linux.map(|l| l.0)));
        let nulls = Spread::of(&runs.iter().filter_map(null).collect::<Vec<_>>());
        let def_of = |t: &Times| r.default.and_then(|p| best(t, p)).map(|b| b.1);
        let peer_ratio = Spread::of(&ratios(runs, |t| r.peer.and_then(|p| best(t, p)).map(|b| b.1), def_of));
        let lin_raw =
            Spread::of(&ratios(runs, |t| r.linux.and_then(|(p, _)| best(t, p)).map(|b| b.1), def_of));
        let lin_net = Spread::of(&ratios(
            runs,
            |t| {
                let (p, entries) = r.linux?;
                let l = best(t, p)?.1;
                Some(l - entries * null(t)?)
            },
            def_of,
        ));
        let ir = r.ir.and_then(|p| ir_per_op(counts, p));

        let cell_time = |v: &Option<Spread>| v.map(|x| x.time()).unwrap_or_else(|| "—".into());
        let best_cell = match (best_sp, r.best.and_then(|p| best_id(runs, p))) {
            (Some(b), Some(id)) => format!("{} ({})", b.time(), short(&id)),
            _ => "—".into(),
        };
        let peer_cell = match (peer, r.peer.and_then(|p| best_id(runs, p))) {
            (Some(p), Some(id)) => format!("{} ({})", p.time(), short(&id)),
            _ => "—".into(),
        };
        let linux_cell = match (lin, r.linux) {
            (Some(l), Some((_, entries))) => format!(
                "{} [{}; {entries} entr{}]",
                l.time(),
                nulls.map(|n| fmt_ns(n.median)).unwrap_or_else(|| "not measured".into()),
                if entries == 1.0 { "y" } else { "ies" }
            ),
            _ => "—".into(),
        };
        let ratio_cell = |v: &Option<Spread>| v.map(|x| x.ratio()).unwrap_or_else(|| "—".into());
        let linux_ratio = match (lin_raw, lin_net) {
            (Some(a), Some(b)) => format!("{} / {}", a.ratio(), b.ratio()),
            (Some(a), None) => format!("{} / —", a.ratio()),
            _ => "—".into(),
        };
        let time_met = match (default, r.target_ns) {
            (Some(d), Some(t)) => Some(d.median <= t),
            _ => None,
        };
        let ir_met = match (ir, r.target_ir) {
            (Some(i), Some(t)) => Some(i <= t),
            _ => None,
        };
        let met = match (time_met, ir_met) {
            (None, None) if default.is_none() && best_sp.is_none() => format!("not measured{}", note(r.note)),
            (None, None) => format!("no target{}", note(r.note).replace(" (informational)", "")),
            (t, i) => {
                let ok = t.unwrap_or(true) && i.unwrap_or(true);
                format!("{}{}", if ok { "**yes**" } else { "no" }, note(r.note))
            }
        };
        let target = r.target_ns.map(fmt_ns).unwrap_or_else(|| "—".into());
        let ir_cell = match (ir, r.target_ir) {
            (Some(i), Some(t)) => format!("{i:.1} (≤ {t})"),
            (None, Some(t)) => format!("— (≤ {t})"),
            (Some(i), None) => format!("{i:.1}"),
            (None, None) => "—".into(),
        };
        let moved = [peer_ratio, lin_raw, default, best_sp].iter().flatten().any(Spread::moved);
        let n = [default, best_sp, peer, lin].iter().flatten().map(|x| x.n).max().unwrap_or(0);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.operation,
            cell_time(&default),
            best_cell,
            peer_cell,
            linux_cell,
            ratio_cell(&peer_ratio),
            linux_ratio,
            target,
            ir_cell,
            met,
            moved_cell(n, moved)
        );
    }
    s
}

fn moved_cell(n: usize, moved: bool) -> String {
    match (n, moved) {
        (0, _) => "—".into(),
        (n, true) => format!("{n}, **moved > {:.0} %**", MOVED_LIMIT * 100.0),
        (n, false) => n.to_string(),
    }
}

fn note(n: &str) -> String {
    if n.is_empty() {
        String::new()
    } else {
        format!(" ({n})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(scale: f64) -> Times {
        [
            ("frames_fragmented/ours-hot+buddy", 5.0),
            ("frames_fragmented/ours-bitset", 6.0),
            ("frames_fragmented/ours-holelist", 60_000.0),
            ("frames_fragmented/peer-frame-alloc", 35.0),
            ("frames_fragmented/peer-bitmap-allocator", 30.0),
            ("map_seq/ours-x86-64", 1024.0),
            ("map_seq/ours-i386", 512.0),
            ("map_seq/peer-x86_64", 2048.0),
            ("linux/null_syscall", 100.0),
            ("linux/page_fault1", 2300.0),
            ("vm_fault_zero/ours-hot+buddy-x86-64", 300.0 * scale),
            ("vm_fault_zero/ours-bitset-x86-64", 200.0),
            ("vm_fault_zero/ours-hot+buddy-i386", 100.0),
            ("vm_fault_zero/ours-hot+buddy-x86-64-prezeroed-refill", 50.0),
            ("storm_mixed/ours-1-shard", 1_000_000.0),
            ("storm_mixed/ours-2-shards", 540_000.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn line<'a>(out: &'a str, what: &str) -> &'a str {
        out.lines().find(|l| l.contains(what)).unwrap()
    }

    #[test]
    fn best_keeps_to_the_rows_format_and_excludes() {
        let t = run(1.0);
        let p = ours("map_seq", X64, 512.0).unwrap();
        // i386 is faster but the row asks for x86-64; 1024 ns per 512 pages.
        assert_eq!(best(&t, p).unwrap(), ("ours-x86-64".to_string(), 2.0));
        let f = ours_x64("vm_fault_zero").unwrap();
        // The pre-zeroed row is faster but is not zeroing in the fault; i386 is not x86-64.
        assert_eq!(best(&t, f).unwrap().0, "ours-bitset-x86-64");
        let hot_only = Pick { contains: &["hot", "x86-64"], ..f };
        assert_eq!(best(&t, hot_only).unwrap().0, "ours-hot+buddy-x86-64");
        // A default pick is one id, not the fastest of the ids it starts.
        let d = id("vm_fault_zero", DEFAULT_X64, 1.0).unwrap();
        assert_eq!(best(&t, d).unwrap(), ("ours-hot+buddy-x86-64".to_string(), 300.0));
        assert!(best(&t, Pick { group: "nope", ..p }).is_none());
    }

    #[test]
    fn ir_is_net_of_the_harness_per_operation() {
        let c: Counts = [("a/x.ops", 31_000u64), ("h/h.ops", 6_000)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let p = IrPick { bench: "a/x.ops", harness: Some("h/h.ops"), ops: 1000.0 };
        assert_eq!(ir_per_op(&c, p), Some(25.0));
        assert_eq!(ir_per_op(&c, IrPick { harness: Some("h/none"), ..p }), None);
        assert_eq!(ir_per_op(&c, IrPick { bench: "a/missing", ..p }), None);
    }

    #[test]
    fn spread_and_the_moved_flag() {
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        assert!(s.moved());
        assert!(!Spread::of(&[1.0, 1.1, 1.19]).unwrap().moved());
        assert!(!Spread::of(&[1.0]).unwrap().moved());
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[1.0, 4.0]).unwrap().median, 2.5);
    }

    #[test]
    fn table_shows_default_and_best_and_the_trap() {
        let out = render(&[run(1.0)], &Counts::new(), "# head\n");
        assert!(out.starts_with("# head\n"));
        assert_eq!(
            out.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| operation")).count(),
            rows().len()
        );
        let frag = line(&out, "fragmented pool");
        assert!(frag.contains("| 5.0 ns | 6.0 ns (bitset) | 30.0 ns (bitmap-allocator) |"), "{frag}");
        assert!(frag.contains("6.00×") && frag.contains("**yes**"), "{frag}");
        let fault = line(&out, "demand-zero fault, end to end");
        // Default 300 ns (judged against the 200 ns target), best bitset's 200 ns, neither the
        // i386 nor the pre-zeroed figure picked; Linux 2.3 µs, 2.2 µs net of one 100 ns entry.
        assert!(fault.contains("| 300.0 ns | 200.0 ns (bitset-x86-64) |"), "{fault}");
        assert!(fault.contains("2.30 µs [100.0 ns; 1 entry]") && fault.contains("7.67× / 7.33×"), "{fault}");
        assert!(fault.contains("| no"), "{fault}");
        let shards = line(&out, "shards on 2 cores");
        assert!(shards.contains("1.85×") && shards.contains("**yes**"), "{shards}");
        let shared = line(&out, "shared leaf tables, x86-64 |");
        assert!(shared.contains("not measured"), "{shared}");
    }

    #[test]
    fn three_runs_give_median_min_max_and_flag_a_moving_row() {
        let runs = [run(1.0), run(1.5), run(1.05)];
        let out = render(&runs, &Counts::new(), "");
        let fault = line(&out, "demand-zero fault, end to end");
        assert!(fault.contains("315.0 ns (300.0 ns–450.0 ns)"), "{fault}");
        assert!(fault.contains("3, **moved > 20 %**"), "{fault}");
        let frag = line(&out, "fragmented pool");
        assert!(frag.ends_with("| 3 |"), "{frag}");
    }
}
