//! Running the comparison matrix: traces generated (and, with `--verify`, every cell
//! verified) in parallel, then every cell timed alone, one after the other.

use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;

use super::report::{self, ReportMeta};
use super::Cell;
use crate::cli::CompareArgs;
use crate::metrics::{RunReport, VerifyCounts, Workload};
use crate::op::Trace;
use crate::progress::Progress;
use crate::run::PlayJob;
use crate::storms::{generate, StormKind};
use crate::strategy::{matrix, with_vm, ReportNames, Strategy};
use crate::trace::{self, ensure_touches, ImportOptions, TouchOptions};

/// The `make -j2` trace embedded in the binary (the default comparison's real workload).
const MAKE_TRACE: &str = include_str!("../../tests/fixtures/make.vmtrace");

/// What a comparison produced.
#[derive(Debug)]
pub struct CompareOutcome {
    /// The terminal table.
    pub table: String,
    /// Path of `REPORT.md`.
    pub report: PathBuf,
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

/// Runs the comparison `a` describes and writes its report.
///
/// # Errors
/// An unknown workload or strategy, an unreadable trace, a failed replay or verification,
/// or a report that cannot be written.
pub fn run(a: &CompareArgs, command: &str) -> Result<CompareOutcome, String> {
    let t0 = Instant::now();
    let strategies = matrix(&a.alloc, &a.paging, &a.fork, &a.zero)?;
    let names: Vec<String> = if a.storms.is_empty() {
        StormKind::ALL.iter().map(|k| k.name().to_string()).chain(["make".to_string()]).collect()
    } else {
        a.storms.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
    };
    if names.is_empty() {
        return Err("--storms names no workload".into());
    }
    // Generation and verification are untimed: run them on every core.
    let jobs: Vec<Job> = names.par_iter().map(|n| workload(n, a)).collect::<Result<_, _>>()?;
    let verified: Vec<Option<VerifyCounts>> = if a.verify {
        let pairs: Vec<(usize, usize)> =
            (0..jobs.len()).flat_map(|j| (0..strategies.len()).map(move |s| (j, s))).collect();
        pairs
            .par_iter()
            .map(|&(j, s)| verify_cell(&jobs[j], &strategies[s], a.mem_bytes()).map(Some))
            .collect::<Result<_, _>>()?
    } else {
        vec![None; jobs.len() * strategies.len()]
    };
    // Timing: one cell at a time.
    let progress = Progress::new((jobs.len() * strategies.len()) as u64, "cells");
    let mut cells = Vec::new();
    for (j, job) in jobs.iter().enumerate() {
        for (si, s) in strategies.iter().enumerate() {
            let play = PlayJob {
                ops: &job.trace.ops,
                verify: false,
                warmup: true,
                barrier: None,
                progress: None,
                repeats: 3,
            };
            let m = with_vm(s, a.mem_bytes(), play)
                .map_err(|e| format!("cannot boot the server: {e}"))?
                .map_err(|e| format!("{} under {s}: {e}", job.label))?;
            let mut report = RunReport::new(&job.work, &s.names(), 1, &m);
            report.verify = verified[j * strategies.len() + si];
            cells.push(Cell::new(job.label.clone(), s.label(), report, &m));
            progress.advance(1);
        }
    }
    progress.finish();
    let meta = ReportMeta {
        command: command.to_string(),
        seed: a.seed,
        mem_bytes: a.mem_bytes(),
        quick: a.quick,
        elapsed: t0.elapsed().as_secs_f64(),
        machine: machine(),
    };
    let files = report::write(&a.out, &cells, &meta)?;
    Ok(CompareOutcome { table: report::terminal_table(&cells), report: files[0].clone(), cells })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_trace_stays_valid() {
        let l = trace::load_bytes(MAKE_TRACE.as_bytes(), "make.vmtrace", &ImportOptions::default()).unwrap();
        let t = repeat(&l.trace, 3);
        assert_eq!(t.ops.len(), l.trace.ops.len() * 3);
        trace::validate(&t).unwrap();
    }
}
