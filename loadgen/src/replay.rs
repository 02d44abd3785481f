//! Plays ops into the VM server through messages, as PM, libc and the kernel would, timing
//! each op, and with `--verify` checks what the processes see.
//!
//! Fork, exec, exit and brk go out as PM's requests, mmap and friends as the process's own,
//! touches through the soft MMU, which raises the kernel's `VM_PAGEFAULT` on a miss
//! ([`vmstorm_core::client`]). Ops name memory by mapping id and page offset; the replayer
//! keeps per process the `MapId -> address` table of what the server returned, so a trace
//! recorded on 64-bit Linux lands wherever the server's placement policy (first fit at or
//! above the hint) puts it, in an x86-64 or an i386 space alike. A process whose first op is
//! its exec is forked from INIT first, as a process started by the system would be.
//!
//! Every op goes through the same steps (`Replayer::call`): resolve the process and
//! mapping, send the request timed, turn a refusal into a [`ReplayError`], update the
//! address tables, and tell the observer. With `--verify` the observer is a
//! [`crate::verify`] model that checks contents, isolation, invariants and leaks; its time is
//! kept out of the run's seconds.

use std::fmt;
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use vmstorm_core::client::{self, ExecImage, ExecLayout, MapFlags, MapProt, MmapArgs, TouchError};
use vmstorm_core::endpoint::INIT_PROC_NR;
use vmstorm_core::{
    Access, Endpoint, Errno, FolioSize, FrameAllocator, HugePolicy, PagingFormat, VirtAddr, Vm, PAGE_SIZE,
};

use crate::bloat::Bloat;
use crate::metrics::{Metrics, ServerCounters};
use crate::op::{MapId, MapKind, MapSpec, Op, Pid, Place, Prot};
use crate::progress::Progress;
use crate::trace::text::op_line;
use crate::verify::{Spaces, Verifier};

/// How to replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayOptions {
    /// Check contents, isolation, invariants and leaks (untimed).
    pub verify: bool,
    /// Ops between two invariant checks when verifying.
    pub check_every: u64,
    /// Record per-op latencies (off for warm-up passes).
    pub timed: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions { verify: false, check_every: 2000, timed: true }
    }
}

/// A replay failure: the op (index in the stream and its `.vmtrace` line) and what went
/// wrong — a call refused, a process signalled, or a verification check failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayError {
    /// Index of the op (0-based) in the ops played, `None` for end-of-run checks.
    pub index: Option<u64>,
    /// The op's `.vmtrace` line.
    pub op: Option<String>,
    /// What went wrong.
    pub message: String,
}

impl ReplayError {
    /// The error told by the trace's own position first: `FILE:LINE: op N ...: why`.
    pub fn located(&self, sources: &crate::trace::Sources) -> String {
        match self.index {
            Some(i) => format!("{}: {self}", sources.locate(i)),
            None => format!("{}: {self}", sources.file),
        }
    }
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.index, &self.op) {
            (Some(i), Some(op)) => write!(
                f,
                "op {i} `{}`: {}",
                op.split_whitespace().collect::<Vec<_>>().join(" "),
                self.message
            ),
            (Some(i), None) => write!(f, "op {i}: {}", self.message),
            _ => write!(f, "end of replay: {}", self.message),
        }
    }
}

impl std::error::Error for ReplayError {}

fn errno_msg(what: &str, e: Errno) -> String {
    if e == Errno::ENOMEM {
        format!("{what}: {e} (the arena is too small for this workload; try a larger --mem)")
    } else {
        format!("{what}: {e}")
    }
}

/// Frames a fault may need at most: the page and a page table at each level below the top
/// (x86-64 has four levels).
const FAULT_FRAMES: u64 = 4;

/// Why the server refused a fault (the core reports only that the process was signalled):
/// with fewer free frames than a fault may need, the arena ran out, and a larger `--mem` is
/// suggested only while a larger arena exists; otherwise the access itself was refused.
fn refused_fault(code: u32, free: u64, total: u64) -> String {
    if free >= FAULT_FRAMES {
        // Not for lack of frames: the access itself was refused (outside the process's
        // memory, or a write where it may only read).
        let what = if code & 2 != 0 { "write" } else { "read" };
        return format!(
            "the server refused a {what} fault (code {code:#x}) with {free} of {total} frames free: \
             the access is outside the process's memory or not allowed there"
        );
    }
    let bytes = total * PAGE_SIZE;
    let hint = if bytes < vmstorm_core::arena::MAX_ARENA_BYTES {
        format!("try a larger --mem (now {} MiB)", bytes >> 20)
    } else {
        "the arena is at its largest; replay fewer processes or a lower --touch-fraction".to_string()
    };
    format!("out of frames on a fault: {} of the arena's {total} frames are in use; {hint}", total - free)
}

#[cfg(test)]
mod refused_fault_tests {
    use super::*;

    #[test]
    fn out_of_frames_suggests_more_memory_only_while_there_can_be_more() {
        let m = refused_fault(0x6, 0, 1024);
        assert!(m.contains("out of frames") && m.contains("--mem (now 4 MiB)"), "{m}");
        let max = vmstorm_core::arena::MAX_ARENA_BYTES / PAGE_SIZE;
        let m = refused_fault(0x6, 1, max);
        assert!(m.contains("out of frames") && !m.contains("--mem"), "{m}");
        let m = refused_fault(0x7, 500, 1024);
        assert!(m.contains("write fault") && !m.contains("--mem") && !m.contains("out of frames"), "{m}");
    }
}

/// What a heap above `base` in the address space of `ep` runs into: its name, its address,
/// and the heap bytes the layout leaves below it.
fn heap_room<F: FrameAllocator, P: PagingFormat>(
    vm: &Vm<F, P>,
    ep: Endpoint,
    base: u64,
) -> Option<(&'static str, u64, u64)> {
    let snap = vm.snapshot();
    let slot = snap.slots.iter().find(|s| s.endpoint == ep)?;
    use vmstorm_core::region::RegionTag;
    let above = slot.regions.iter().find(|r| r.start.0 >= base && r.tag != RegionTag::Heap)?;
    let (what, gap) = if above.tag == RegionTag::Stack { ("the stack", PAGE_SIZE) } else { ("a mapping", 0) };
    Some((what, above.start.0, above.start.0.saturating_sub(gap).saturating_sub(base)))
}

/// Why a heap of `heap_pages` above `base` does not fit the address space of `ep`: what it
/// runs into, and how much heap the layout leaves. A larger arena cannot help.
fn heap_room_msg<F: FrameAllocator, P: PagingFormat>(
    vm: &Vm<F, P>,
    ep: Endpoint,
    base: u64,
    heap_pages: u64,
) -> String {
    let mib = |b: u64| b >> 20;
    let want = format!("brk to a heap of {} MiB: {}", mib(pages(heap_pages)), Errno::ENOMEM);
    let Some((what, at, room)) = heap_room(vm, ep, base) else { return want };
    format!(
        "{want} (it would run into {what} at {:#x}: the {} address-space layout leaves {} MiB for the heap; a larger --mem cannot help)",
        at,
        P::NAME,
        mib(room)
    )
}

/// Where a mapping is in one process.
#[derive(Clone, Copy, Debug)]
struct MapAddr {
    base: u64,
    /// Pages from `base` still mapped (the trace only resizes whole mappings from page 0).
    live: u64,
    /// A shared mapping: its pages are the same for every process that maps them.
    shared: bool,
}

#[derive(Clone, Debug)]
struct Proc {
    ep: Endpoint,
    layout: ExecLayout,
    heap: u64,
    /// The heap was clamped to what the address-space layout leaves (a 64-bit program's
    /// heap replayed into an i386 space): touches past `heap` are skipped and counted.
    heap_clamped: bool,
    maps: HashMap<MapId, MapAddr>,
    parent: Option<Pid>,
}

/// The replay's processes, as the verifier sees them.
#[derive(Debug, Default)]
struct Procs(HashMap<Pid, Proc>);

impl Spaces for Procs {
    fn endpoint(&self, pid: Pid) -> Option<Endpoint> {
        self.0.get(&pid).map(|p| p.ep)
    }
    fn mapping(&self, pid: Pid, id: MapId) -> Option<(u64, u64)> {
        self.0.get(&pid)?.maps.get(&id).map(|m| (m.base, m.live))
    }
}

/// Plays ops into one server.
pub struct Replayer<'v, F: FrameAllocator, P: PagingFormat> {
    vm: &'v mut Vm<F, P>,
    opts: ReplayOptions,
    boot_free: u64,
    procs: Procs,
    index: u64,
    metrics: Metrics,
    /// The `--verify` observer.
    verify: Option<Verifier>,
    start: ServerCounters,
    wall: Duration,
    /// Most frames (and page-table frames) in use after any op of this replay.
    peak_frames: u64,
    peak_pt: u64,
    /// Bytes of the server's large folios (0 when they are off).
    folio_bytes: u64,
    /// Bytes of the server's huge pages (0 when they are off).
    huge_bytes: u64,
    /// Folio pages not yet touched.
    bloat: Bloat,
}

impl<F: FrameAllocator, P: PagingFormat> fmt::Debug for Replayer<'_, F, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replayer").field("index", &self.index).field("procs", &self.procs.0.len()).finish()
    }
}

fn counters<F: FrameAllocator, P: PagingFormat>(vm: &Vm<F, P>) -> ServerCounters {
    let s = vm.stats();
    ServerCounters {
        faults: s.faults,
        zero_fills: s.zero_fills,
        cow_copies: s.cow_copies,
        cow_reuses: s.cow_reuses,
        spurious: s.spurious_faults,
        signalled: s.signalled_faults,
        frames_peak: s.frames_peak,
        pt_pages_peak: s.pt_pages_peak,
        folio_faults: s.folio_faults,
        folio_pages: s.folio_pages,
        folio_fallbacks: s.folio_fallbacks,
        huge_faults: s.huge_faults,
        huge_pages: s.huge_faults * P::HUGE_PAGES,
        huge_zero_maps: s.huge_zero_maps,
        huge_fallbacks: s.huge_fallbacks,
        huge_splits: s.huge_splits,
    }
}

fn map_prot(p: Prot) -> MapProt {
    MapProt::from_bits_retain(u16::from(p.bits()))
}

const fn pages(n: u64) -> u64 {
    n * PAGE_SIZE
}

impl<'v, F: FrameAllocator, P: PagingFormat> Replayer<'v, F, P> {
    /// A replayer over `vm`; `boot_free` is `vm.free_frames()` right after boot (what must be
    /// free again when every process has exited).
    pub fn new(vm: &'v mut Vm<F, P>, boot_free: u64, opts: ReplayOptions) -> Self {
        let start = counters(vm);
        let folio_bytes = match vm.folio_size() {
            FolioSize::K4 => 0,
            f => f.pages() * PAGE_SIZE,
        };
        let huge_bytes = match vm.huge_policy() {
            HugePolicy::Never => 0,
            HugePolicy::Always => P::HUGE_PAGES * PAGE_SIZE,
        };
        Replayer {
            vm,
            opts,
            boot_free,
            procs: Procs::default(),
            index: 0,
            metrics: Metrics::new(),
            verify: opts.verify.then(|| Verifier::new(opts.check_every)),
            start,
            wall: Duration::ZERO,
            peak_frames: 0,
            peak_pt: 0,
            folio_bytes,
            huge_bytes,
            bloat: Bloat::default(),
        }
    }

    /// Ops played so far.
    pub fn played(&self) -> u64 {
        self.index
    }

    fn err(&self, op: &Op, message: String) -> ReplayError {
        ReplayError { index: Some(self.index), op: Some(op_line(op)), message }
    }

    fn proc(&self, op: &Op, pid: Pid) -> Result<&Proc, ReplayError> {
        self.procs.0.get(&pid).ok_or_else(|| self.err(op, format!("{pid} is not a live process")))
    }

    fn proc_mut(&mut self, pid: Pid) -> &mut Proc {
        self.procs.0.get_mut(&pid).expect("looked up before the call")
    }

    fn map(&self, op: &Op, pid: Pid, id: MapId) -> Result<(Endpoint, MapAddr), ReplayError> {
        let p = self.proc(op, pid)?;
        let m = p.maps.get(&id).copied().ok_or_else(|| self.err(op, format!("{pid} has no mapping {id}")))?;
        Ok((p.ep, m))
    }

    /// Plays every op of `ops`, advancing `progress` (if any) every few thousand ops.
    ///
    /// # Errors
    /// The first op that fails.
    pub fn play_all(&mut self, ops: &[Op], progress: Option<&Progress>) -> Result<(), ReplayError> {
        let t0 = Instant::now();
        let mut result = Ok(());
        for (i, op) in ops.iter().enumerate() {
            if let Err(e) = self.play(op) {
                result = Err(e);
                break;
            }
            if i % 4096 == 4095 {
                if let Some(p) = progress {
                    p.advance(4096);
                }
            }
        }
        self.wall += t0.elapsed();
        result
    }

    /// Plays one op (timed when the options say so).
    ///
    /// # Errors
    /// A refused call, a signalled process, or a failed verification check.
    pub fn play(&mut self, op: &Op) -> Result<(), ReplayError> {
        self.play_inner(op)?;
        // The server's idle work (refilling the pre-zeroed pool) happens between
        // messages: outside the op's latency, inside the wall time.
        self.vm.idle();
        self.peak_frames = self.peak_frames.max(self.vm.frames_in_use());
        self.peak_pt = self.peak_pt.max(self.vm.pt_pages());
        self.index += 1;
        let played = self.index;
        self.observe(None, |v, vm, _| v.after_op(vm, played))
    }

    /// Sends one request for `op`, timed when the options say so; a refusal becomes the
    /// op's error, `what: errno`.
    #[inline]
    fn call<T>(
        &mut self,
        op: &Op,
        what: &str,
        f: impl FnOnce(&mut Vm<F, P>) -> Result<T, Errno>,
    ) -> Result<T, ReplayError> {
        let r = if self.opts.timed {
            let t = Instant::now();
            let r = f(self.vm);
            self.metrics.record(op.kind(), t.elapsed().as_nanos() as u64);
            r
        } else {
            f(self.vm)
        };
        r.map_err(|e| self.err(op, errno_msg(what, e)))
    }

    /// Tells the verifier (when verifying) about what `op` did; its time is kept apart.
    #[inline]
    fn observe(
        &mut self,
        op: Option<&Op>,
        f: impl FnOnce(&mut Verifier, &mut Vm<F, P>, &Procs) -> Result<(), String>,
    ) -> Result<(), ReplayError> {
        let Some(v) = self.verify.as_mut() else { return Ok(()) };
        let t = Instant::now();
        let r = f(v, self.vm, &self.procs);
        v.time += t.elapsed();
        r.map_err(|message| ReplayError { index: Some(self.index), op: op.map(op_line), message })
    }

    /// Tells the verifier (when verifying) of a change to the memory it models.
    #[inline]
    fn note(&mut self, f: impl FnOnce(&mut Verifier)) {
        if let Some(v) = self.verify.as_mut() {
            let t = Instant::now();
            f(v);
            v.time += t.elapsed();
        }
    }

    fn play_inner(&mut self, op: &Op) -> Result<(), ReplayError> {
        match *op {
            Op::Fork { parent, child, .. } => {
                let pep = self.proc(op, parent)?.ep;
                let cep = match self.call(op, "fork", |vm| Ok(client::fork(vm, pep)))? {
                    Ok(ep) => ep,
                    // MINIX's fork answers EAGAIN when the process table is full.
                    Err(Errno::EAGAIN) => {
                        let n = self.vm.slot_count();
                        return Err(self.err(
                            op,
                            format!("fork: process table full ({n} slots); replay with a larger --slots"),
                        ));
                    }
                    Err(e) => return Err(self.err(op, errno_msg("fork", e))),
                };
                let mut c = self.procs.0[&parent].clone();
                c.ep = cep;
                c.parent = Some(parent);
                self.procs.0.insert(child, c);
                self.observe(Some(op), |v, vm, procs| v.forked(vm, procs, parent, child))?;
            }
            Op::Exec { pid, image } => self.exec(op, pid, &image)?,
            Op::Exit { pid } => {
                let ep = self.proc(op, pid)?.ep;
                self.call(op, "exit", |vm| client::exit(vm, ep))?;
                self.bloat.gone(pid);
                let parent = self.procs.0.remove(&pid).and_then(|p| p.parent);
                self.observe(Some(op), |v, vm, procs| v.exited(vm, procs, pid, parent))?;
            }
            Op::Mmap { pid, id, spec } => {
                let ep = self.proc(op, pid)?.ep;
                let args = mmap_args(None, &spec);
                let va = self.call(op, "mmap", |vm| client::mmap(vm, ep, &args))?;
                self.new_map(pid, id, va.0, &spec);
            }
            Op::MmapOver { pid, id, over, offset, spec } => {
                let (ep, o) = self.map(op, pid, over)?;
                let at = o.base + pages(offset);
                // MAP_FIXED, as the recorded program did: the server replaces whatever is
                // mapped in the range in one call, and restores it if the call fails.
                let mut args = mmap_args(Some(VirtAddr(at)), &spec);
                args.flags |= MapFlags::FIXED;
                let va = self.call(op, "mmap over", |vm| client::mmap(vm, ep, &args))?;
                debug_assert_eq!(va.0, at, "MAP_FIXED places at the address asked for");
                self.bloat.dropped(pid, at, pages(spec.pages));
                self.note(|v| {
                    v.dropped(pid, at, pages(spec.pages));
                    // Part of a shared mapping is gone from this process: stop modelling it
                    // here (its other pages are no longer contiguous with the object's).
                    if o.shared {
                        v.unmapped(pid, over);
                    }
                });
                self.new_map(pid, id, va.0, &spec);
            }
            Op::Munmap { pid, id, offset, pages: n } => {
                let (ep, m) = self.map(op, pid, id)?;
                let at = m.base + pages(offset);
                self.call(op, "munmap", |vm| client::munmap(vm, ep, VirtAddr(at), pages(n)))?;
                self.bloat.dropped(pid, at, pages(n));
                // The whole mapping, or (shared) a hole that leaves the object's pages apart.
                let gone = (offset == 0 && offset + n >= m.live) || (m.shared && offset + n < m.live);
                if let Some(m) = self.proc_mut(pid).maps.get_mut(&id) {
                    if offset + n >= m.live {
                        m.live = m.live.min(offset);
                    }
                }
                self.note(|v| {
                    v.dropped(pid, at, pages(n));
                    if gone {
                        v.unmapped(pid, id);
                    }
                });
            }
            Op::Mprotect { pid, id, offset, pages: n, prot } => {
                let (ep, m) = self.map(op, pid, id)?;
                let at = VirtAddr(m.base + pages(offset));
                self.call(op, "mprotect", |vm| client::mprotect(vm, ep, at, pages(n), map_prot(prot)))?;
                if m.shared && prot.bits() & Prot::READ.bits() == 0 {
                    // Unreadable pages cannot be probed when another process writes them.
                    self.note(|v| v.unmapped(pid, id));
                }
            }
            Op::Mremap { pid, id, new_pages } => {
                let (ep, m) = self.map(op, pid, id)?;
                let (old, old_len) = (m.base, pages(m.live));
                let new_len = pages(new_pages);
                let va = self
                    .call(op, "mremap", |vm| client::mremap(vm, ep, VirtAddr(old), old_len, new_len, true))?;
                self.proc_mut(pid).maps.insert(id, MapAddr { base: va.0, live: new_pages, ..m });
                // Pages that moved are counted where they were: a folio is not followed.
                self.bloat.dropped(pid, old, old_len);
                let keep = old_len.min(new_len);
                self.note(|v| {
                    v.dropped(pid, old + keep, old_len.saturating_sub(keep));
                    v.moved(pid, old, keep, va.0);
                });
            }
            Op::Brk { pid, heap_pages } => {
                let p = self.proc(op, pid)?;
                let (ep, base, old) = (p.ep, p.layout.brk.0, p.heap);
                let new_brk = VirtAddr(base + pages(heap_pages));
                let r = self.call(op, "brk", |vm| Ok(client::brk(vm, ep, new_brk)))?;
                let mut heap_pages = heap_pages;
                if let Err(e) = r {
                    // Growing claims no frame: ENOMEM there is the layout, not the arena. The
                    // heap is clamped to the room the layout leaves, and reported, as the
                    // importer clamps mappings too large for the space.
                    let layout = e == Errno::ENOMEM && heap_pages > old;
                    if !layout {
                        return Err(self.err(op, errno_msg("brk", e)));
                    }
                    let room = heap_room(self.vm, ep, base).map_or(0, |(_, _, room)| room / PAGE_SIZE);
                    let clamped = room.min(heap_pages);
                    if clamped > old {
                        let to = VirtAddr(base + pages(clamped));
                        if let Err(e) = client::brk(self.vm, ep, to) {
                            let msg = if e == Errno::ENOMEM {
                                heap_room_msg(self.vm, ep, base, heap_pages)
                            } else {
                                errno_msg("brk", e)
                            };
                            return Err(self.err(op, msg));
                        }
                    }
                    heap_pages = clamped.max(old);
                    self.metrics.heap_clamp.brks += 1;
                    self.proc_mut(pid).heap_clamped = true;
                }
                self.proc_mut(pid).heap = heap_pages;
                if heap_pages < old {
                    self.bloat.dropped(pid, new_brk.0, pages(old - heap_pages));
                    self.note(|v| v.dropped(pid, new_brk.0, pages(old - heap_pages)));
                }
            }
            Op::Discard { pid, id, offset, pages: n } => {
                let (ep, m) = self.map(op, pid, id)?;
                let at = m.base + pages(offset);
                self.call(op, "discard", |vm| client::discard(vm, ep, VirtAddr(at), pages(n)))?;
                if !m.shared {
                    self.bloat.dropped(pid, at, pages(n));
                }
                // Shared pages keep their contents (the object holds them); private ones are
                // zero on the next touch.
                if !m.shared {
                    self.note(|v| v.dropped(pid, at, pages(n)));
                }
            }
            Op::Touch { pid, place, pages: n, write } => self.touch(op, pid, place, n, write)?,
        }
        Ok(())
    }

    /// Records mapping `id` of `pid` at `base`.
    fn new_map(&mut self, pid: Pid, id: MapId, base: u64, spec: &MapSpec) {
        let shared = spec.kind == MapKind::Shared;
        self.proc_mut(pid).maps.insert(id, MapAddr { base, live: spec.pages, shared });
        self.note(|v| v.mapped(pid, id, shared));
    }

    fn exec(&mut self, op: &Op, pid: Pid, image: &crate::op::ImageSize) -> Result<(), ReplayError> {
        let img = ExecImage {
            text_bytes: pages(image.text_pages),
            data_bytes: pages(image.data_pages),
            bss_bytes: pages(image.bss_pages),
            stack_bytes: pages(image.stack_pages),
        };
        let (ep, fresh) = match self.procs.0.get(&pid) {
            Some(p) => (p.ep, false),
            None => {
                // A process started by the system: PM forks it from INIT first.
                let ep = client::fork(self.vm, INIT_PROC_NR)
                    .map_err(|e| self.err(op, errno_msg("fork from INIT", e)))?;
                (ep, true)
            }
        };
        let layout = match self.call(op, "exec", |vm| client::exec(vm, ep, &img)) {
            Ok(l) => l,
            Err(e) => {
                if fresh {
                    let _ = client::exit(self.vm, ep);
                }
                return Err(e);
            }
        };
        self.bloat.gone(pid);
        let parent = self.procs.0.get(&pid).and_then(|p| p.parent);
        self.procs
            .0
            .insert(pid, Proc { ep, layout, heap: 0, heap_clamped: false, maps: HashMap::new(), parent });
        self.note(|v| v.exec(pid));
        Ok(())
    }

    fn touch(&mut self, op: &Op, pid: Pid, place: Place, n: u64, write: bool) -> Result<(), ReplayError> {
        let proc = self.proc(op, pid)?;
        // Pages past a clamped heap are not there to touch: skip and count them.
        let n = match place {
            Place::Heap(k) if proc.heap_clamped && k + n > proc.heap => {
                let kept = proc.heap.saturating_sub(k);
                self.metrics.heap_clamp.pages_skipped += n - kept;
                if kept == 0 {
                    return Ok(());
                }
                kept
            }
            _ => n,
        };
        let proc = self.proc(op, pid)?;
        let ep = proc.ep;
        let l = &proc.layout;
        // Where the first page is; whether its contents are checked (text is read-only);
        // the mapping id when it is a shared mapping.
        let (first, checked, shared) = match place {
            Place::Text(k) => (l.text.0 + pages(k), false, None),
            Place::Data(k) => (l.data.0 + pages(k), true, None),
            Place::Heap(k) => (l.brk.0 + pages(k), true, None),
            Place::Stack(k) => (l.stack_top.0 - pages(k + 1), true, None),
            Place::Map(id, k) => {
                let m = proc.maps.get(&id).ok_or_else(|| self.err(op, format!("no mapping {id}")))?;
                (m.base + pages(k), true, m.shared.then_some(id))
            }
        };
        // Every place is contiguous in the address space except the stack, which grows down.
        let down = matches!(place, Place::Stack(_));
        let va_of = |k: u64| if down { first - pages(k) } else { first + pages(k) };
        let access = Access { write, user: true };
        self.metrics.pages_touched += n;
        let (folio_bytes, huge_bytes) = (self.folio_bytes, self.huge_bytes);
        let mut folios = Vec::new();
        let r = self.call(op, "touch", |vm| {
            if folio_bytes == 0 && huge_bytes == 0 {
                for k in 0..n {
                    if let Err(e) = client::touch(vm, ep, VirtAddr(va_of(k)), access) {
                        return Ok(Err((k, e)));
                    }
                }
            } else {
                // Note the pages whose fault mapped a folio or a huge block, for the bloat.
                for k in 0..n {
                    let before = (vm.stats().folio_faults, vm.stats().huge_faults);
                    if let Err(e) = client::touch(vm, ep, VirtAddr(va_of(k)), access) {
                        return Ok(Err((k, e)));
                    }
                    if vm.stats().huge_faults != before.1 {
                        folios.push((va_of(k) & !(huge_bytes - 1), huge_bytes));
                    } else if vm.stats().folio_faults != before.0 {
                        folios.push((va_of(k) & !(folio_bytes - 1), folio_bytes));
                    }
                }
            }
            Ok(Ok(()))
        })?;
        if folio_bytes != 0 || huge_bytes != 0 {
            for &(block, bytes) in &folios {
                self.bloat.folio_mapped(pid, block, bytes / PAGE_SIZE);
            }
            let done = match r {
                Ok(()) => n,
                Err((k, _)) => k + 1,
            };
            for k in 0..done {
                self.bloat.touched(pid, va_of(k));
            }
        }
        if let Err((k, e)) = r {
            let what = match e {
                TouchError::Signalled(code) => {
                    refused_fault(code.0, self.vm.free_frames(), self.vm.total_frames())
                }
                e => e.to_string(),
            };
            return Err(self.err(op, format!("touch of page {k} at {:#x}: {what}", va_of(k))));
        }
        if checked {
            self.observe(Some(op), |v, vm, procs| {
                v.touched(vm, procs, pid, ep, place, first, n, write, shared)
            })?;
        }
        Ok(())
    }

    /// Ends the replay: exits processes the ops left alive, checks invariants and (verify)
    /// that every frame is free again; returns the measurements.
    ///
    /// # Errors
    /// A failing exit or a failed final check.
    pub fn finish(mut self) -> Result<Metrics, ReplayError> {
        let left: Vec<(Pid, Endpoint)> = self.procs.0.iter().map(|(&p, s)| (p, s.ep)).collect();
        for (pid, ep) in left {
            client::exit(self.vm, ep).map_err(|e| ReplayError {
                index: None,
                op: None,
                message: errno_msg(&format!("exit of {pid} left alive by the trace"), e),
            })?;
        }
        self.procs.0.clear();
        // Verification during the ops, inside the wall time: left out of the run's seconds.
        let verify_time = self.verify.as_ref().map_or(Duration::ZERO, |v| v.time);
        let verified = match self.verify.as_mut() {
            Some(v) => {
                let t = Instant::now();
                let r = v.finish(self.vm, self.boot_free);
                v.time += t.elapsed();
                Some(r.map_err(|message| ReplayError { index: None, op: None, message })?)
            }
            None => None,
        };
        let end = counters(self.vm);
        let mut m = self.metrics;
        m.seconds = self.wall.saturating_sub(verify_time).as_secs_f64();
        m.server = ServerCounters {
            faults: end.faults - self.start.faults,
            zero_fills: end.zero_fills - self.start.zero_fills,
            cow_copies: end.cow_copies - self.start.cow_copies,
            cow_reuses: end.cow_reuses - self.start.cow_reuses,
            spurious: end.spurious - self.start.spurious,
            signalled: end.signalled - self.start.signalled,
            // The server's own peaks count from boot (warm-up included): use this replay's.
            frames_peak: self.peak_frames.min(end.frames_peak),
            pt_pages_peak: self.peak_pt.min(end.pt_pages_peak),
            folio_faults: end.folio_faults - self.start.folio_faults,
            folio_pages: end.folio_pages - self.start.folio_pages,
            folio_fallbacks: end.folio_fallbacks - self.start.folio_fallbacks,
            huge_faults: end.huge_faults - self.start.huge_faults,
            huge_pages: end.huge_pages - self.start.huge_pages,
            huge_zero_maps: end.huge_zero_maps - self.start.huge_zero_maps,
            huge_fallbacks: end.huge_fallbacks - self.start.huge_fallbacks,
            huge_splits: end.huge_splits - self.start.huge_splits,
        };
        m.folio_untouched = self.bloat.total();
        m.verify = verified;
        Ok(m)
    }
}

fn mmap_args(addr: Option<VirtAddr>, spec: &MapSpec) -> MmapArgs {
    let mut flags = MapFlags::ANON;
    flags |= if spec.kind == MapKind::Shared { MapFlags::SHARED } else { MapFlags::PRIVATE };
    if spec.prealloc {
        flags |= MapFlags::PREALLOC;
    }
    MmapArgs { addr, len: pages(spec.pages), prot: map_prot(spec.prot), flags }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::text::parse_text;
    use vmstorm_core::{Bitset, VmConfig, X86_64};

    const SHARED: &str = "exec     p1 text=2 data=1 bss=1 stack=2\n\
                          mmap     p1 m1 pages=4 rw- shared\n\
                          touch    p1 m1+0 pages=2 w\n\
                          fork     p1 p2\n\
                          touch    p2 m1+0 pages=1 w\n\
                          touch    p1 m1+0 pages=1 r\n";

    /// The ops of `.vmtrace` op lines.
    fn ops(lines: &str) -> Vec<Op> {
        let n = lines.lines().filter(|l| !l.trim().is_empty()).count();
        parse_text(&format!("# vmtrace v1 page=4096 src=test\n{lines}end ops={n}\n"), "test").unwrap().ops
    }

    #[test]
    fn every_process_mapping_a_shared_page_sees_the_last_write() {
        let mut vm = Vm::<Bitset, X86_64>::boot(VmConfig::with_bytes(16 << 20)).unwrap();
        let free = vm.free_frames();
        let opts = ReplayOptions { verify: true, check_every: 1, timed: true };
        let mut r = Replayer::new(&mut vm, free, opts);
        r.play_all(&ops(SHARED), None).unwrap();
        // p1's read saw p2's write through the shared mapping: checked, and p1 was probed
        // when p2 wrote.
        let m = r.finish().unwrap();
        let v = m.verify.unwrap();
        assert!(v.ok && v.checked > 6, "{v:?}");
    }

    #[test]
    fn a_shared_page_that_lost_the_last_write_is_reported() {
        let mut vm = Vm::<Bitset, X86_64>::boot(VmConfig::with_bytes(16 << 20)).unwrap();
        let free = vm.free_frames();
        let opts = ReplayOptions { verify: true, check_every: 1000, timed: false };
        let mut r = Replayer::new(&mut vm, free, opts);
        r.play_all(&ops(SHARED), None).unwrap();
        // Something other than the trace overwrites page 1 of the shared mapping (as a server
        // that gave the processes different frames would show them different contents).
        let (p1, base) = {
            let p = &r.procs.0[&Pid(1)];
            (p.ep, p.maps[&MapId(1)].base)
        };
        client::write_user(r.vm, p1, VirtAddr(base + PAGE_SIZE), &[0xaa; 16]).unwrap();
        let e = r.play_all(&ops("touch p2 m1+1 pages=1 r\n"), None).unwrap_err();
        assert!(e.message.contains("verify: p2 page") && e.message.contains("should hold p1's write"), "{e}");
    }

    #[test]
    fn a_hole_in_one_process_s_shared_mapping_is_not_probed() {
        let mut vm = Vm::<Bitset, X86_64>::boot(VmConfig::with_bytes(16 << 20)).unwrap();
        let free = vm.free_frames();
        let opts = ReplayOptions { verify: true, check_every: 1, timed: true };
        let mut r = Replayer::new(&mut vm, free, opts);
        let text = format!(
            "{SHARED}munmap   p2 m1+1 pages=1\ntouch    p1 m1+1 pages=1 w\nmprotect p1 m1+2 pages=1 ---\n\
             touch    p2 m1+2 pages=1 w\ntouch    p2 m1+0 pages=1 r\n"
        );
        r.play_all(&ops(&text), None).unwrap();
        assert!(r.finish().unwrap().verify.unwrap().ok);
    }

    #[test]
    fn discarded_shared_pages_keep_their_contents() {
        let mut vm = Vm::<Bitset, X86_64>::boot(VmConfig::with_bytes(16 << 20)).unwrap();
        let free = vm.free_frames();
        let opts = ReplayOptions { verify: true, check_every: 1, timed: true };
        let mut r = Replayer::new(&mut vm, free, opts);
        let text = format!("{SHARED}discard  p2 m1+0 pages=2\ntouch    p1 m1+0 pages=2 r\nexit     p2\ntouch    p1 m1+1 pages=1 r\n");
        r.play_all(&ops(&text), None).unwrap();
        assert!(r.finish().unwrap().verify.unwrap().ok);
    }
}
