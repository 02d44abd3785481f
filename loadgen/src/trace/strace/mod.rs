//! The strace importer: an `strace -f` log of a real run becomes a [`Trace`] of
//! address-independent ops.
//!
//! Two passes (see the reference notes on strace traces): `join` turns lines into ordered,
//! joined, decoded events and builds nothing else; `emit` walks them with a per-process
//! interval map from Linux page ranges to (mapping id, offset) and emits ops. The result is
//! what MINIX's PM would have asked of VM had it run the same programs: `VM_FORK` for every
//! fork and vfork, `VM_EXEC_NEWMEM` for every successful exec, `VM_MMAP`/`VM_MUNMAP` per
//! mapping piece, `VM_BRK` for heap changes, `VM_EXIT` for every process.
//!
//! Lenient with real logs (lines it does not understand are counted in the
//! [`ImportReport`], calls it does not model are ignored), strict with garbage (a text that
//! is not an strace log, or a log whose last line is cut, is a [`TraceError`] naming the
//! line) and with calls the replay needs: a fork, exec, mmap, munmap, mprotect, mremap, brk,
//! madvise or shmat whose text cannot be decoded stops the import at the first, with the
//! count, unless [`ImportOptions::skip_undecoded`] asks to count and go on. Numbers in the
//! `-X raw` and `-X verbose` forms (`0x3 /* PROT_READ|PROT_WRITE */`) are read as numbers.
//!
//! **Exec image sizes.** The kernel maps a program's own segments inside `execve`; strace
//! never shows them (only the shared libraries `ld.so` maps afterwards, which become ordinary
//! file mappings). So by default an exec gets [`ImageSize::DEFAULT`](crate::op::ImageSize::DEFAULT)'s text, data and bss (a
//! small static program) and a stack of 8 pages plus the arguments and environment the
//! `execve` line shows. With [`ImportOptions::read_elf`] the program file named in `execve`
//! is read when it exists on this machine: text = pages of its non-writable `PT_LOAD`
//! segments, data = file pages of its writable ones, bss = their zero-filled tail (each at
//! least one page) — what `record` uses, since the program was just run here. Fixture
//! imports leave it off so they do not depend on the machine.

pub(crate) mod args;
pub(crate) mod emit;
pub(crate) mod join;
mod line;
pub(crate) mod space;

use std::collections::BTreeMap;
use std::fmt;

use crate::op::{MapId, Pid, Trace};
use crate::trace::TraceError;

/// How to import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportOptions {
    /// Largest size kept of a reservation (`PROT_NONE` or `MAP_NORESERVE`: malloc arenas,
    /// thread stacks), in pages; larger ones are clamped to a window of this size and
    /// reported. Default 1024 pages (4 MiB).
    pub reserve_clamp_pages: u64,
    /// Largest size kept of any other mapping, in pages. Default 65,536 (256 MiB), so that
    /// a 64-bit trace fits a 32-bit `i386` space.
    pub map_clamp_pages: u64,
    /// Treat any line that is not strace output, and any modelled call whose text cannot be
    /// read, as an error instead of counting it.
    pub strict: bool,
    /// Read exec image sizes from the program files named in `execve` when they exist here.
    pub read_elf: bool,
    /// Import a log even when calls the replay needs (fork, exec, mmap, ...) could not be
    /// decoded, counting them; by default such a log is refused, naming the first.
    pub skip_undecoded: bool,
    /// Import a perf capture that lost events (`PERF_RECORD_LOST`) instead of refusing it.
    pub allow_lost: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            reserve_clamp_pages: 1024,
            map_clamp_pages: 65536,
            strict: false,
            read_elf: false,
            skip_undecoded: false,
            allow_lost: false,
        }
    }
}

/// A mapping kept smaller than Linux made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clamp {
    /// Line of the `mmap`.
    pub line: usize,
    /// The process.
    pub pid: Pid,
    /// The mapping.
    pub id: MapId,
    /// Pages Linux mapped.
    pub pages: u64,
    /// Pages kept in the trace.
    pub kept: u64,
    /// Whether it was a reservation (`PROT_NONE`/`MAP_NORESERVE`).
    pub reservation: bool,
}

/// What the importer saw, kept, approximated and skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Lines read.
    pub lines: usize,
    /// Calls seen (an unfinished/resumed pair counts once).
    pub syscalls: usize,
    /// Ops emitted.
    pub ops: usize,
    /// Processes (trace pids) created.
    pub processes: usize,
    /// Threads and `CLONE_VM` children folded into their process.
    pub threads: usize,
    /// Forks (without vforks).
    pub forks: usize,
    /// Vforks.
    pub vforks: usize,
    /// Successful execs.
    pub execs: usize,
    /// Execs that failed with an error (no op).
    pub failed_execs: usize,
    /// Exits emitted.
    pub exits: usize,
    /// Exits added for processes still alive at the end of the log or whose pid was reused
    /// without an exit line.
    pub implicit_exits: usize,
    /// Root processes whose first event was not a successful exec: an exec with the
    /// default image was added.
    pub synthetic_execs: usize,
    /// Linux pids used again by a later process.
    pub pid_reuses: usize,
    /// Mappings clamped.
    pub clamped: Vec<Clamp>,
    /// Ops dropped or shortened because they fell outside a clamped window.
    pub clipped_ops: usize,
    /// `MAP_FIXED` mappings not inside one existing mapping, placed anywhere instead.
    pub relocated_fixed: usize,
    /// Mappings that a new non-fixed mapping overlapped (an unmap the log did not show).
    pub stale_overlaps: usize,
    /// `mremap`s of part of a mapping, replayed as unmap + a new mapping.
    pub mremap_fallbacks: usize,
    /// Ranges of `munmap`/`mprotect`/`madvise`/`mremap` outside every known mapping (the
    /// program's own segments, the brk heap, the stack).
    pub unknown_ranges: usize,
    /// Memory calls that failed (nothing to replay), and `brk` calls refused.
    pub failed_calls: usize,
    /// Calls with no VM effect, by name (`wait4`, `kill`, `madvise(MADV_HUGEPAGE)`, ...).
    pub ignored_calls: BTreeMap<String, usize>,
    /// Lines that are not strace output.
    pub unrecognized_lines: usize,
    /// The first of them.
    pub first_unrecognized: Option<usize>,
    /// Modelled calls whose text could not be decoded.
    pub unusable_calls: usize,
    /// The first of them.
    pub first_unusable: Option<usize>,
    /// Decoded calls that cannot be replayed: a range beyond any address space (a length of
    /// 2^64 - 1), a process cloning itself.
    pub dropped_calls: usize,
    /// The first of them.
    pub first_dropped: Option<usize>,
    /// Calls interrupted by a signal and reissued (`= ? ERESTARTSYS`): not failures.
    pub restarted_calls: usize,
    /// `shmat` attaches, not replayed (the log does not show the segment's size).
    pub shm_attaches: usize,
    /// The first of them.
    pub first_shmat: Option<usize>,
    /// `mremap(MREMAP_DONTUNMAP)` moves, replayed as a discard of the old range and a new
    /// mapping.
    pub dontunmap_moves: usize,
    /// `<... resumed>` lines without their `<unfinished ...>` head.
    pub orphan_resumed: usize,
    /// `<unfinished ...>` heads never resumed.
    pub unfinished_at_end: usize,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} lines, {} calls -> {} ops; {} processes ({} forks, {} vforks, {} execs, {} exits), {} threads folded",
            self.lines, self.syscalls, self.ops, self.processes, self.forks, self.vforks,
            self.execs, self.exits, self.threads
        )?;
        let mut notes = Vec::new();
        let mut add = |n: usize, what: &str| {
            if n > 0 {
                notes.push(format!("{n} {what}"));
            }
        };
        add(self.failed_execs, "failed execs");
        add(self.implicit_exits, "implicit exits");
        add(self.synthetic_execs, "synthetic execs");
        add(self.pid_reuses, "pid reuses");
        add(self.clamped.len(), "clamped mappings");
        add(self.clipped_ops, "clipped ops");
        add(self.relocated_fixed, "relocated MAP_FIXED");
        add(self.stale_overlaps, "stale overlaps");
        add(self.mremap_fallbacks, "mremap fallbacks");
        add(self.unknown_ranges, "ranges outside known mappings");
        add(self.failed_calls, "failed memory calls");
        add(self.restarted_calls, "restarted calls");
        add(self.dontunmap_moves, "MREMAP_DONTUNMAP moves (discard + new mapping)");
        add(self.orphan_resumed, "orphan resumed lines");
        add(self.unfinished_at_end, "unfinished calls never resumed");
        if !notes.is_empty() {
            writeln!(f, "  {}", notes.join(", "))?;
        }
        if let Some(l) = self.first_unrecognized {
            writeln!(f, "  {} lines not understood (first: line {l})", self.unrecognized_lines)?;
        }
        if let Some(l) = self.first_unusable {
            writeln!(f, "  {} calls could not be decoded (first: line {l})", self.unusable_calls)?;
        }
        if let Some(l) = self.first_dropped {
            writeln!(
                f,
                "  {} calls dropped: range outside any address space (first: line {l})",
                self.dropped_calls
            )?;
        }
        if let Some(l) = self.first_shmat {
            writeln!(
                f,
                "  {} shmat attaches not replayed: the segment size is not in the log (first: line {l})",
                self.shm_attaches
            )?;
        }
        for c in &self.clamped {
            writeln!(
                f,
                "  line {}: {} {} clamped from {} to {} pages{}",
                c.line,
                c.pid,
                c.id,
                c.pages,
                c.kept,
                if c.reservation { " (reservation)" } else { "" }
            )?;
        }
        Ok(())
    }
}

/// Imports an strace log. `name` names the source: errors say `name:line: ...` and the
/// header's source is `strace:` + its file stem. The trace has no touches
/// ([`crate::trace::synthesize_touches`] adds them).
pub fn import_strace(
    text: &str,
    name: &str,
    options: &ImportOptions,
) -> Result<(Trace, ImportReport), TraceError> {
    import_strace_lines(text, name, options).map(|(t, r, _)| (t, r))
}

/// [`import_strace`], also giving for every op the log line it came from (`None` for the
/// exits added at the end).
pub fn import_strace_lines(
    text: &str,
    name: &str,
    options: &ImportOptions,
) -> Result<(Trace, ImportReport, Vec<Option<usize>>), TraceError> {
    let joined = join::join(text, name, options.strict)?;
    if let (n @ 1.., Some(line)) = joined.unusable {
        if !options.skip_undecoded {
            return Err(TraceError::line(
                name,
                line,
                format!(
                    "{}: the first of {n} call{} the replay needs that could not be decoded; \
                     --skip-undecoded imports the rest without {}",
                    joined.first_unusable_why,
                    if n == 1 { "" } else { "s" },
                    if n == 1 { "it" } else { "them" }
                ),
            ));
        }
    }
    let mut report = ImportReport {
        lines: joined.lines,
        syscalls: joined.syscalls,
        unrecognized_lines: joined.unrecognized.0,
        first_unrecognized: joined.unrecognized.1,
        unusable_calls: joined.unusable.0,
        first_unusable: joined.unusable.1,
        orphan_resumed: joined.orphan_resumed,
        unfinished_at_end: joined.unfinished_at_end,
        ..ImportReport::default()
    };
    let stem = std::path::Path::new(name).file_stem().and_then(|s| s.to_str()).unwrap_or(name);
    let (trace, lines) = emit::emit(&joined.events, options, &mut report, &format!("strace:{stem}"));
    report.ops = trace.ops.len();
    Ok((trace, report, lines))
}
