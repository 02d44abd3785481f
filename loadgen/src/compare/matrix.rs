//! Running the comparison matrix: traces generated (and, with `--verify`, every cell
//! verified) in parallel, then every cell timed alone, one after the other, in interleaved
//! rounds; or one cell of it (`--cell N`), or cell files joined (`--merge DIR`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use super::clock::thread_cpu;
use super::report::{self, ReportMeta};
use super::Cell;
use crate::cli::CompareArgs;
use vmstorm_core::{FrameAllocator, PagingFormat, Vm};

use crate::metrics::{Metrics, RunReport, VerifyCounts, Workload};
use crate::op::Trace;
use crate::progress::Progress;
use crate::replay::{ReplayError, ReplayOptions, Replayer};
use crate::run::{warm_arena, warm_up, PlayJob};
use crate::storms::{generate, StormKind};
use crate::strategy::{matrix, with_folio, with_hot, with_huge, with_vm, ReportNames, Strategy, VmJob};
use crate::trace::{self, ensure_touches, ImportOptions, TouchOptions};

/// The `make -j2` trace embedded in the binary (the default comparison's real workload).
const MAKE_TRACE: &str = include_str!("../../tests/fixtures/make.vmtrace");

/// What a comparison produced.
#[derive(Debug)]
pub struct CompareOutcome {
    /// The terminal table.
    pub table: String,
    /// Path of `REPORT.md` (or of the cell file with `--cell`; none with `--cells`).
    pub report: Option<PathBuf>,
    /// Every measured cell.
    pub cells: Vec<Cell>,
}

struct Job {
    label: String,
    work: Workload,
    trace: Trace,
}

fn workload(name: &str, a: &CompareArgs) -> Result<Job, String> {
    let touch = TouchOptions { fraction: 0.25, seed: a.seed, ..TouchOptions::default() };
    if let Ok(kind) = name.parse::<StormKind>() {
        let scale = if a.quick { kind.quick_scale() } else { kind.default_scale() };
        let work = Workload::Storm { name: kind.name().to_string(), seed: a.seed, scale };
        return Ok(Job { label: kind.name().to_string(), work, trace: generate(kind, a.seed, scale) });
    }
    let (label, t) = if name == "make" {
        let l = trace::load_bytes(MAKE_TRACE.as_bytes(), "make.vmtrace", &ImportOptions::default())
            .map_err(|e| e.to_string())?;
        ("make".to_string(), l.trace)
    } else {
        let path = std::path::Path::new(name);
        if !path.exists() {
            let storms: Vec<&str> = StormKind::ALL.iter().map(|k| k.name()).collect();
            return Err(format!(
                "--storms: unknown workload '{}': not a storm ({}), not make, and no trace file of that name",
                crate::trace::clip(name, 64),
                storms.join(", ")
            ));
        }
        let l = trace::load_with(path, &ImportOptions::default()).map_err(|e| e.to_string())?;
        let label =
            path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| name.to_string());
        (label, l.trace)
    };
    let t = ensure_touches(t, &touch).map_err(|e| format!("{name}: {e}"))?;
    // A real trace is short: repeat it so that a cell lasts long enough to measure.
    let reps = if a.quick { 4 } else { 20 };
    let t = repeat(&t, reps);
    Ok(Job { label: label.clone(), work: Workload::Trace(label), trace: t })
}

/// `trace` played `n` times in a row with fresh pids and mapping ids each time.
fn repeat(trace: &Trace, n: u32) -> Trace {
    use crate::op::{MapId, Op, Pid, Place};
    let max_pid = trace.ops.iter().map(|o| o.pid().0).chain(trace.ops.iter().filter_map(|o| match o {
        Op::Fork { child, .. } => Some(child.0),
        _ => None,
    }));
    let pid_span = max_pid.max().unwrap_or(0) + 1;
    let map_span = trace
        .ops
        .iter()
        .filter_map(|o| match o {
            Op::Mmap { id, .. } | Op::MmapOver { id, .. } => Some(id.0),
            _ => None,
        })
        .max()
        .unwrap_or(0)
        + 1;
    let mut out =
        Trace { header: trace.header.clone(), ops: Vec::with_capacity(trace.ops.len() * n as usize) };
    for r in 0..n {
        let p = |x: Pid| Pid(x.0 + r * pid_span);
        let m = |x: MapId| MapId(x.0 + r * map_span);
        let pl = |x: Place| match x {
            Place::Map(id, k) => Place::Map(m(id), k),
            other => other,
        };
        for op in &trace.ops {
            out.ops.push(match *op {
                Op::Fork { parent, child, kind } => Op::Fork { parent: p(parent), child: p(child), kind },
                Op::Exec { pid, image } => Op::Exec { pid: p(pid), image },
                Op::Exit { pid } => Op::Exit { pid: p(pid) },
                Op::Mmap { pid, id, spec } => Op::Mmap { pid: p(pid), id: m(id), spec },
                Op::MmapOver { pid, id, over, offset, spec } => {
                    Op::MmapOver { pid: p(pid), id: m(id), over: m(over), offset, spec }
                }
                Op::Munmap { pid, id, offset, pages } => Op::Munmap { pid: p(pid), id: m(id), offset, pages },
                Op::Mprotect { pid, id, offset, pages, prot } => {
                    Op::Mprotect { pid: p(pid), id: m(id), offset, pages, prot }
                }
                Op::Mremap { pid, id, new_pages } => Op::Mremap { pid: p(pid), id: m(id), new_pages },
                Op::Brk { pid, heap_pages } => Op::Brk { pid: p(pid), heap_pages },
                Op::Discard { pid, id, offset, pages } => {
                    Op::Discard { pid: p(pid), id: m(id), offset, pages }
                }
                Op::Touch { pid, place, pages, write } => {
                    Op::Touch { pid: p(pid), place: pl(place), pages, write }
                }
            });
        }
    }
    out
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if cpu.is_empty() {
        format!("{cores} cores")
    } else {
        format!("{cpu}, {cores} cores")
    }
}

fn verify_cell(job: &Job, s: &Strategy, mem: u64) -> Result<VerifyCounts, String> {
    let play = PlayJob {
        ops: &job.trace.ops,
        verify: true,
        warmup: false,
        barrier: None,
        progress: None,
        repeats: 1,
    };
    let m = with_vm(s, mem, play)
        .map_err(|e| format!("cannot boot the server: {e}"))?
        .map_err(|e| format!("{} under {s}: {e}", job.label))?;
    Ok(m.verify.unwrap_or_default())
}

/// One timing round of one cell on a freshly booted server: the untimed warm-up of
/// [`warm_up`], then every free frame of the arena handed out and written once, then timed
/// passes of the ops until `min_secs` of the thread's CPU time have passed in them. Gives
/// the round's throughput (all passes' ops over their CPU time) and the metrics of the pass
/// with the median throughput.
#[derive(Clone, Copy)]
struct Round<'a> {
    ops: &'a [crate::op::Op],
    min_secs: f64,
}

/// Most timed passes in one round (a very short workload stops here).
const MAX_PASSES: usize = 200;

impl VmJob for Round<'_> {
    type Output = Result<(f64, Metrics), ReplayError>;

    fn run<F: FrameAllocator, P: PagingFormat>(self, vm: &mut Vm<F, P>) -> Self::Output {
        let boot_free = vm.free_frames();
        warm_up(vm, boot_free, self.ops)?;
        // The whole arena, not only what the workload used in its warm-up pass: a next-fit
        // allocator walks the arena pass after pass, and a frame the host has never mapped
        // costs a Linux page fault (1-2 µs) the first time it is written, charged to the
        // strategy that reached it first. A real machine's RAM is always there. The second
        // sweep reaches the frames the first one kept back for page tables (its allocator
        // starts where the first one stopped, or finds them already written).
        warm_arena(vm, u64::MAX)?;
        warm_arena(vm, u64::MAX)?;
        let mut passes: Vec<Metrics> = Vec::new();
        let (mut ops, mut cpu) = (0u64, Duration::ZERO);
        while passes.len() < MAX_PASSES && (passes.is_empty() || cpu.as_secs_f64() < self.min_secs) {
            let mut r = Replayer::new(vm, boot_free, ReplayOptions::default());
            let c0 = thread_cpu();
            r.play_all(self.ops, None)?;
            let spent = thread_cpu().saturating_sub(c0);
            let mut m = r.finish()?;
            // The pass's rate on the CPU clock too, so the median pass is picked by it.
            m.seconds = spent.as_secs_f64();
            ops += m.ops;
            cpu += spent;
            passes.push(m);
        }
        passes.sort_by(|a, b| a.ops_per_sec().total_cmp(&b.ops_per_sec()));
        let mid = passes.len() / 2;
        let secs = cpu.as_secs_f64();
        let rate = if secs > 0.0 { ops as f64 / secs } else { 0.0 };
        Ok((rate, passes.swap_remove(mid)))
    }
}

/// Runs `round` on a fresh server of strategy `s` over `mem` bytes, its arena advised to
/// use transparent huge pages (`MADV_HUGEPAGE`): a kernel reaches RAM through a direct map
/// of 2 MiB or 1 GiB pages, so neither the host's 4 KiB page faults on first touch nor its
/// 4 KiB TLB misses belong to the strategy, and booting and warming the arena costs a
/// thirtieth of the host faults. A host that refuses the advice gets a 4 KiB arena.
fn boot_round(
    s: &Strategy,
    mem: u64,
    round: Round<'_>,
) -> Result<Result<(f64, Metrics), ReplayError>, String> {
    let mut config = s.config(mem);
    config.arena.huge_pages = true;
    match s.with_vm(config, round) {
        Ok(r) => Ok(r),
        Err(_) => with_vm(s, mem, round).map_err(|e| format!("cannot boot the server: {e}")),
    }
}

/// CPU time of timed play per round: long enough that the clock and one scheduler tick are
/// small beside it.
fn round_secs(quick: bool) -> f64 {
    if quick {
        0.015
    } else {
        0.05
    }
}

/// The comparison's axes: the workload names and the strategies, in report order. Cell
/// `i` is workload `i / strategies.len()` under strategy `i % strategies.len()`.
fn axes(a: &CompareArgs) -> Result<(Vec<String>, Vec<Strategy>), String> {
    let strategies = with_huge(
        with_folio(with_hot(matrix(&a.alloc, &a.paging, &a.fork, &a.zero)?, &a.hot)?, &a.folio)?,
        &a.huge,
    )?;
    let mut names: Vec<String> = if a.storms.is_empty() && !a.traces.is_empty() {
        Vec::new()
    } else if a.storms.is_empty() {
        StormKind::ALL.iter().map(|k| k.name().to_string()).chain(["make".to_string()]).collect()
    } else {
        a.storms.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
    };
    names.extend(a.traces.iter().map(|p| p.display().to_string()));
    if names.is_empty() {
        return Err("--storms names no workload".into());
    }
    Ok((names, strategies))
}

/// The cell list of `--cells`: one line per cell, `index<TAB>workload<TAB>strategy`.
fn cell_list(names: &[String], strategies: &[Strategy]) -> String {
    let mut out = String::new();
    for (j, n) in names.iter().enumerate() {
        for (si, s) in strategies.iter().enumerate() {
            out.push_str(&format!("{}\t{n}\t{s}\n", j * strategies.len() + si));
        }
    }
    out
}

/// Times the cells `pairs` (indices into `jobs` and `strategies`), every round of every
/// cell interleaved: round 1 of each cell, then round 2 of each, and so on.
fn time_cells(
    jobs: &[Job],
    strategies: &[Strategy],
    pairs: &[(usize, usize)],
    a: &CompareArgs,
    verified: &[Option<VerifyCounts>],
) -> Result<Vec<Cell>, String> {
    let rounds = a.rounds() as usize;
    let progress = Progress::new((pairs.len() * rounds) as u64, "cell rounds");
    let mut results: Vec<Vec<(f64, Metrics)>> = vec![Vec::with_capacity(rounds); pairs.len()];
    for _ in 0..rounds {
        for (k, &(j, si)) in pairs.iter().enumerate() {
            let (job, s) = (&jobs[j], &strategies[si]);
            let round = Round { ops: &job.trace.ops, min_secs: round_secs(a.quick) };
            let r =
                boot_round(s, a.mem_bytes(), round)?.map_err(|e| format!("{} under {s}: {e}", job.label))?;
            results[k].push(r);
            progress.advance(1);
        }
    }
    progress.finish();
    let mut cells = Vec::with_capacity(pairs.len());
    for (k, (mut res, &(j, si))) in results.into_iter().zip(pairs).enumerate() {
        let (job, s) = (&jobs[j], &strategies[si]);
        let rates: Vec<f64> = res.iter().map(|r| r.0).collect();
        // The report's figures (latency, counters) come from the median round.
        res.sort_by(|x, y| x.0.total_cmp(&y.0));
        let (_, m) = res.swap_remove(res.len() / 2);
        let mut report = RunReport::new(&job.work, &s.names(), 1, &m);
        report.verify = verified[k];
        let mut cell = Cell::new(job.label.clone(), s.label(), report, &m);
        cell.rounds = rates;
        cell.report.ops_per_sec = cell.ops_per_sec();
        cells.push(cell);
    }
    Ok(cells)
}

fn meta(a: &CompareArgs, command: &str, elapsed: f64) -> ReportMeta {
    ReportMeta {
        command: command.to_string(),
        seed: a.seed,
        mem_bytes: a.mem_bytes(),
        quick: a.quick,
        elapsed,
        machine: machine(),
        rounds: a.rounds(),
    }
}

/// A cell as `--cell N` writes it: the cell and how it was run.
#[derive(serde::Serialize, serde::Deserialize)]
struct CellFile {
    index: usize,
    seed: u64,
    mem_bytes: u64,
    quick: bool,
    rounds: u32,
    seconds: f64,
    machine: String,
    cell: Cell,
}

/// Runs the comparison `a` describes and writes its report; or, with `--cells`, lists the
/// cells; with `--cell N`, runs that one cell and writes its file; with `--merge DIR`,
/// joins cell files into the report.
///
/// # Errors
/// An unknown workload or strategy, an unreadable trace, a failed replay or verification,
/// a cell index out of range, unreadable cell files, or a report that cannot be written.
pub fn run(a: &CompareArgs, command: &str) -> Result<CompareOutcome, String> {
    let t0 = Instant::now();
    if let Some(dir) = &a.merge {
        return merge(dir, &a.out_dir(), command);
    }
    let (names, strategies) = axes(a)?;
    if a.cells {
        return Ok(CompareOutcome { table: cell_list(&names, &strategies), report: None, cells: Vec::new() });
    }
    let total = names.len() * strategies.len();
    let wanted: Vec<usize> = match a.cell {
        Some(n) if n >= total => {
            return Err(format!("--cell {n}: this comparison has cells 0 to {} (see --cells)", total - 1))
        }
        Some(n) => vec![n / strategies.len()],
        None => (0..names.len()).collect(),
    };
    // Generation and verification are untimed: run them on every core.
    let jobs: Vec<Job> = wanted.par_iter().map(|&j| workload(&names[j], a)).collect::<Result<_, _>>()?;
    let pairs: Vec<(usize, usize)> = match a.cell {
        Some(n) => vec![(0, n % strategies.len())],
        None => (0..jobs.len()).flat_map(|j| (0..strategies.len()).map(move |s| (j, s))).collect(),
    };
    let verified: Vec<Option<VerifyCounts>> = if a.verify {
        pairs
            .par_iter()
            .map(|&(j, s)| verify_cell(&jobs[j], &strategies[s], a.mem_bytes()).map(Some))
            .collect::<Result<_, _>>()?
    } else {
        vec![None; pairs.len()]
    };
    let cells = time_cells(&jobs, &strategies, &pairs, a, &verified)?;
    let out = a.out_dir();
    if let Some(n) = a.cell {
        std::fs::create_dir_all(&out).map_err(|e| format!("{}: cannot create: {e}", out.display()))?;
        let m = meta(a, command, t0.elapsed().as_secs_f64());
        let file = CellFile {
            index: n,
            seed: m.seed,
            mem_bytes: m.mem_bytes,
            quick: m.quick,
            rounds: m.rounds,
            seconds: m.elapsed,
            machine: m.machine,
            cell: cells[0].clone(),
        };
        let path = out.join(format!("cell-{n}.json"));
        let text = serde_json::to_string_pretty(&file).map_err(|e| format!("cell {n}: {e}"))?;
        std::fs::write(&path, text).map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
        return Ok(CompareOutcome { table: report::terminal_table(&cells), report: Some(path), cells });
    }
    let files = report::write(&out, &cells, &meta(a, command, t0.elapsed().as_secs_f64()))?;
    Ok(CompareOutcome { table: report::terminal_table(&cells), report: Some(files[0].clone()), cells })
}

/// `--merge DIR`: every `cell-N.json` of `dir`, in index order, into one report in `out`.
fn merge(dir: &Path, out: &Path, command: &str) -> Result<CompareOutcome, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: cannot read: {e}", dir.display()))?;
    let mut files: Vec<CellFile> = Vec::new();
    for e in entries {
        let path = e.map_err(|e| format!("{}: cannot read: {e}", dir.display()))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        if !(name.starts_with("cell-") && name.ends_with(".json")) {
            continue;
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let f: CellFile =
            serde_json::from_str(&text).map_err(|e| format!("{}: not a cell file: {e}", path.display()))?;
        files.push(f);
    }
    if files.is_empty() {
        return Err(format!("{}: no cell-N.json files to merge", dir.display()));
    }
    files.sort_by_key(|f| f.index);
    if let Some(w) = files.windows(2).find(|w| w[0].index == w[1].index) {
        return Err(format!("{}: cell {} appears twice", dir.display(), w[0].index));
    }
    let first = &files[0];
    let m = ReportMeta {
        command: command.to_string(),
        seed: first.seed,
        mem_bytes: first.mem_bytes,
        quick: first.quick,
        elapsed: files.iter().map(|f| f.seconds).sum(),
        machine: first.machine.clone(),
        rounds: first.rounds,
    };
    let cells: Vec<Cell> = files.into_iter().map(|f| f.cell).collect();
    let written = report::write(out, &cells, &m)?;
    Ok(CompareOutcome { table: report::terminal_table(&cells), report: Some(written[0].clone()), cells })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(out: &Path) -> CompareArgs {
        CompareArgs {
            storms: vec!["fork".into(), "fault".into()],
            alloc: "bitset".into(),
            paging: "all".into(),
            hot: "all".into(),
            folio: "4k".into(),
            mem: Some(32 << 20),
            rounds: Some(2),
            out: Some(out.to_path_buf()),
            ..CompareArgs::quick_default()
        }
    }

    fn rows(cells: &[Cell]) -> Vec<(String, String, u64, u64, u64)> {
        cells
            .iter()
            .map(|c| {
                let r = &c.report;
                (c.workload.clone(), c.strategy.clone(), r.ops, r.faults, r.cow_copies)
            })
            .collect()
    }

    #[test]
    fn cells_cell_and_merge_give_the_same_report_as_one_run() {
        let dir = std::env::temp_dir().join(format!("vmstorm-cells-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let whole = run(&args(&dir.join("whole")), "compare").unwrap();
        // 2 workloads × (bitset/x86-64, bitset/i386) × (without, with a hot list).
        assert_eq!(whole.cells.len(), 8);
        assert!(whole.cells.iter().all(|c| c.rounds.len() == 2 && c.ops_per_sec() > 0.0));

        let list = run(&CompareArgs { cells: true, ..args(&dir.join("parts")) }, "compare").unwrap();
        assert!(list.report.is_none() && list.cells.is_empty());
        let lines: Vec<&str> = list.table.lines().collect();
        assert_eq!(lines.len(), 8);
        assert_eq!(lines[0], "0\tfork\tbitset/x86-64");
        assert_eq!(lines[7], "7\tfault\thot+bitset/i386");
        // Run the cells in any order, as a scheduler would.
        for n in (0..lines.len()).rev() {
            let one = run(&CompareArgs { cell: Some(n), ..args(&dir.join("parts")) }, "compare").unwrap();
            assert_eq!(one.report.unwrap(), dir.join("parts").join(format!("cell-{n}.json")));
        }
        let merged = CompareArgs { merge: Some(dir.join("parts")), ..args(&dir.join("merged")) };
        let merged = run(&merged, "compare --merge").unwrap();
        assert_eq!(rows(&merged.cells), rows(&whole.cells));
        let whole_md = std::fs::read_to_string(dir.join("whole/REPORT.md")).unwrap();
        let merged_md = std::fs::read_to_string(dir.join("merged/REPORT.md")).unwrap();
        let cell_rows = |md: &str| -> Vec<String> {
            // The per-cell work table: the same in both, timings aside.
            md.lines()
                .filter(|l| l.starts_with("| `") && l.matches(" | ").count() == 7)
                .map(String::from)
                .collect()
        };
        assert_eq!(cell_rows(&whole_md), cell_rows(&merged_md));
        assert_eq!(cell_rows(&whole_md).len(), 8);

        let bad = run(&CompareArgs { cell: Some(8), ..args(&dir.join("parts")) }, "compare").unwrap_err();
        assert!(bad.contains("cells 0 to 7"), "{bad}");
        let empty = run(&CompareArgs { merge: Some(dir.join("whole")), ..args(&dir) }, "c").unwrap_err();
        assert!(empty.contains("no cell-N.json"), "{empty}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn user_traces_become_rows_and_bad_ones_one_error() {
        let dir = std::env::temp_dir().join(format!("vmstorm-trace-rows-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let t = dir.join("mine.vmtrace");
        std::fs::write(&t, MAKE_TRACE).unwrap();
        let a = CompareArgs {
            storms: vec!["fork".into()],
            traces: vec![t.clone()],
            alloc: "bitset".into(),
            paging: "x86-64".into(),
            hot: "off".into(),
            folio: "4k".into(),
            mem: Some(64 << 20),
            rounds: Some(1),
            out: Some(dir.join("out")),
            ..CompareArgs::quick_default()
        };
        let out = run(&a, "compare").unwrap();
        let workloads: Vec<&str> = out.cells.iter().map(|c| c.workload.as_str()).collect();
        assert_eq!(workloads, ["fork", "mine"]);
        let missing = CompareArgs { traces: vec![dir.join("nope.vmtrace")], ..a };
        let e = run(&missing, "compare").unwrap_err();
        assert!(e.contains("nope.vmtrace") && !e.contains('\n'), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn repeated_trace_stays_valid() {
        let l = trace::load_bytes(MAKE_TRACE.as_bytes(), "make.vmtrace", &ImportOptions::default()).unwrap();
        let t = repeat(&l.trace, 3);
        assert_eq!(t.ops.len(), l.trace.ops.len() * 3);
        trace::validate(&t).unwrap();
    }
}
