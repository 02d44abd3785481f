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
//! With verification on, every write touch stores a 16-byte signature (pid, place, page,
//! generation) at the start of the page, every touch first checks the page holds what the
//! model says (the last signature written by this process or inherited at fork, or zeros
//! for memory that is new, discarded or shrunk away); after a fork a sample of the child's
//! pages is checked against the parent's, and after an exit a sample of the parent's pages
//! that the child overwrote is checked (the child's writes must not show through). The
//! server's invariants are checked every [`ReplayOptions::check_every`] ops and at the end,
//! and when every process has exited the free-frame count must equal the one after boot.
//! Verification work is not timed. This replaces the MINIX test suite's content checks
//! (`test44`'s patterns in mapped pages) and VM's `SANITYCHECK` runs.

use std::fmt;
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use vmstorm_core::client::{self, ExecImage, ExecLayout, MapFlags, MapProt, MmapArgs, TouchError};
use vmstorm_core::endpoint::INIT_PROC_NR;
use vmstorm_core::{
    Access, Endpoint, Errno, FrameAllocator, PagingFormat, SanityLevel, VirtAddr, Vm, PAGE_SIZE,
};

use crate::metrics::{Metrics, ServerCounters, VerifyCounts};
use crate::op::{MapId, MapKind, MapSpec, Op, Pid, Place, Prot};
use crate::progress::Progress;
use crate::trace::text::op_line;

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
    let snap = vm.snapshot();
    let Some(slot) = snap.slots.iter().find(|s| s.endpoint == ep) else { return want };
    use vmstorm_core::region::RegionTag;
    let Some(above) = slot.regions.iter().find(|r| r.start.0 >= base && r.tag != RegionTag::Heap) else {
        return want;
    };
    let (what, gap) = if above.tag == RegionTag::Stack { ("the stack", PAGE_SIZE) } else { ("a mapping", 0) };
    let room = above.start.0.saturating_sub(gap).saturating_sub(base);
    format!(
        "{want} (it would run into {what} at {:#x}: the {} address-space layout leaves {} MiB for the heap; a larger --mem cannot help)",
        above.start.0,
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
    /// Shared mappings are not content-checked (their pages change under other processes).
    shared: bool,
}

/// A 16-byte page signature.
type Sig = [u8; 16];
const ZERO: Sig = [0; 16];

#[derive(Clone, Debug)]
struct Proc {
    ep: Endpoint,
    layout: ExecLayout,
    heap: u64,
    maps: HashMap<MapId, MapAddr>,
    parent: Option<Pid>,
    /// Verification model: page address -> last signature (absent = zeros).
    model: HashMap<u64, Sig>,
}

/// Plays ops into one server.
pub struct Replayer<'v, F: FrameAllocator, P: PagingFormat> {
    vm: &'v mut Vm<F, P>,
    opts: ReplayOptions,
    boot_free: u64,
    procs: HashMap<Pid, Proc>,
    index: u64,
    generation: u32,
    metrics: Metrics,
    checked: u64,
    start: ServerCounters,
    wall: Duration,
    /// Most frames (and page-table frames) in use after any op of this replay.
    peak_frames: u64,
    peak_pt: u64,
}

impl<F: FrameAllocator, P: PagingFormat> fmt::Debug for Replayer<'_, F, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replayer").field("index", &self.index).field("procs", &self.procs.len()).finish()
    }
}

fn counters<F: FrameAllocator, P: PagingFormat>(vm: &Vm<F, P>) -> ServerCounters {
    let s = vm.stats();
    ServerCounters {
        faults: s.faults,
        zero_fills: s.zero_fills,
        cow_copies: s.cow_copies,
        frames_peak: s.frames_peak,
        pt_pages_peak: s.pt_pages_peak,
    }
}

fn map_prot(p: Prot) -> MapProt {
    MapProt(u16::from(p.bits()))
}

const fn pages(n: u64) -> u64 {
    n * PAGE_SIZE
}

impl<'v, F: FrameAllocator, P: PagingFormat> Replayer<'v, F, P> {
    /// A replayer over `vm`; `boot_free` is `vm.free_frames()` right after boot (what must be
    /// free again when every process has exited).
    pub fn new(vm: &'v mut Vm<F, P>, boot_free: u64, opts: ReplayOptions) -> Self {
        let start = counters(vm);
        Replayer {
            vm,
            opts,
            boot_free,
            procs: HashMap::new(),
            index: 0,
            generation: 0,
            metrics: Metrics::new(),
            checked: 0,
            start,
            wall: Duration::ZERO,
            peak_frames: 0,
            peak_pt: 0,
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
        self.procs.get(&pid).ok_or_else(|| self.err(op, format!("{pid} is not a live process")))
    }

    fn map(&self, op: &Op, pid: Pid, id: MapId) -> Result<MapAddr, ReplayError> {
        self.proc(op, pid)?
            .maps
            .get(&id)
            .copied()
            .ok_or_else(|| self.err(op, format!("{pid} has no mapping {id}")))
    }

    /// The address of page `n` of `place` in `proc`, and whether its contents are checked.
    fn place_va(&self, op: &Op, proc: &Proc, place: Place, n: u64) -> Result<(u64, bool), ReplayError> {
        let l = &proc.layout;
        Ok(match place {
            Place::Text(k) => (l.text.0 + pages(k + n), false),
            Place::Data(k) => (l.data.0 + pages(k + n), true),
            Place::Heap(k) => (l.brk.0 + pages(k + n), true),
            Place::Stack(k) => (l.stack_top.0 - pages(k + n + 1), true),
            Place::Map(id, k) => {
                let m = proc.maps.get(&id).ok_or_else(|| self.err(op, format!("no mapping {id}")))?;
                (m.base + pages(k + n), !m.shared)
            }
        })
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
        let r = self.play_inner(op);
        if r.is_ok() {
            // The server's idle work (refilling the pre-zeroed pool) happens between
            // messages: outside the op's latency, inside the wall time.
            self.vm.idle();
            self.peak_frames = self.peak_frames.max(self.vm.frames_in_use());
            self.peak_pt = self.peak_pt.max(self.vm.pt_pages());
            self.index += 1;
            if self.opts.verify && self.index.is_multiple_of(self.opts.check_every.max(1)) {
                self.check_invariants(SanityLevel::Functions)?;
            }
        }
        r
    }

    fn check_invariants(&mut self, level: SanityLevel) -> Result<(), ReplayError> {
        self.checked += 1;
        self.vm.check_invariants(level).map_err(|e| ReplayError {
            index: Some(self.index),
            op: None,
            message: format!("server invariant broken: {e}"),
        })
    }

    #[inline]
    fn timed<T>(&mut self, op: &Op, f: impl FnOnce(&mut Vm<F, P>) -> T) -> T {
        if self.opts.timed {
            let t = Instant::now();
            let r = f(self.vm);
            let ns = t.elapsed().as_nanos() as u64;
            self.metrics.record(op.kind(), ns);
            r
        } else {
            f(self.vm)
        }
    }

    fn play_inner(&mut self, op: &Op) -> Result<(), ReplayError> {
        match *op {
            Op::Fork { parent, child, .. } => {
                let pep = self.proc(op, parent)?.ep;
                let cep = self
                    .timed(op, |vm| client::fork(vm, pep))
                    .map_err(|e| self.err(op, errno_msg("fork", e)))?;
                let mut c = self.procs[&parent].clone();
                c.ep = cep;
                c.parent = Some(parent);
                if !self.opts.verify {
                    c.model.clear();
                }
                self.procs.insert(child, c);
                if self.opts.verify {
                    self.probe_inherited(op, child)?;
                }
            }
            Op::Exec { pid, image } => {
                let img = ExecImage {
                    text_bytes: pages(image.text_pages),
                    data_bytes: pages(image.data_pages),
                    bss_bytes: pages(image.bss_pages),
                    stack_bytes: pages(image.stack_pages),
                };
                let (ep, fresh) = match self.procs.get(&pid) {
                    Some(p) => (p.ep, false),
                    None => {
                        // A process started by the system: PM forks it from INIT first.
                        let ep = client::fork(self.vm, INIT_PROC_NR)
                            .map_err(|e| self.err(op, errno_msg("fork from INIT", e)))?;
                        (ep, true)
                    }
                };
                let layout = match self.timed(op, |vm| client::exec(vm, ep, &img)) {
                    Ok(l) => l,
                    Err(e) => {
                        if fresh {
                            let _ = client::exit(self.vm, ep);
                        }
                        return Err(self.err(op, errno_msg("exec", e)));
                    }
                };
                let parent = self.procs.get(&pid).and_then(|p| p.parent);
                self.procs.insert(
                    pid,
                    Proc { ep, layout, heap: 0, maps: HashMap::new(), parent, model: HashMap::new() },
                );
            }
            Op::Exit { pid } => {
                let ep = self.proc(op, pid)?.ep;
                self.timed(op, |vm| client::exit(vm, ep)).map_err(|e| self.err(op, errno_msg("exit", e)))?;
                let gone = self.procs.remove(&pid);
                if let (true, Some(gone)) = (self.opts.verify, gone) {
                    self.probe_isolation(op, &gone)?;
                }
            }
            Op::Mmap { pid, id, spec } => {
                let ep = self.proc(op, pid)?.ep;
                let args = mmap_args(None, &spec);
                let va = self
                    .timed(op, |vm| client::mmap(vm, ep, &args))
                    .map_err(|e| self.err(op, errno_msg("mmap", e)))?;
                let m = MapAddr { base: va.0, live: spec.pages, shared: spec.kind == MapKind::Shared };
                self.procs.get_mut(&pid).map(|p| p.maps.insert(id, m));
            }
            Op::MmapOver { pid, id, over, offset, spec } => {
                let ep = self.proc(op, pid)?.ep;
                let o = self.map(op, pid, over)?;
                let at = o.base + pages(offset);
                let len = pages(spec.pages);
                // MAP_FIXED, as the recorded program did: the server replaces whatever is
                // mapped in the range in one call, and restores it if the call fails.
                let mut args = mmap_args(Some(VirtAddr(at)), &spec);
                args.flags = args.flags | MapFlags::FIXED;
                let va = self
                    .timed(op, |vm| client::mmap(vm, ep, &args))
                    .map_err(|e| self.err(op, errno_msg("mmap over", e)))?;
                debug_assert_eq!(va.0, at, "MAP_FIXED places at the address asked for");
                let p = self.procs.get_mut(&pid).expect("checked above");
                drop_range(&mut p.model, at, len);
                p.maps.insert(
                    id,
                    MapAddr { base: va.0, live: spec.pages, shared: spec.kind == MapKind::Shared },
                );
            }
            Op::Munmap { pid, id, offset, pages: n } => {
                let ep = self.proc(op, pid)?.ep;
                let m = self.map(op, pid, id)?;
                let at = m.base + pages(offset);
                self.timed(op, |vm| client::munmap(vm, ep, VirtAddr(at), pages(n)))
                    .map_err(|e| self.err(op, errno_msg("munmap", e)))?;
                let p = self.procs.get_mut(&pid).expect("checked above");
                drop_range(&mut p.model, at, pages(n));
                if let Some(m) = p.maps.get_mut(&id) {
                    if offset + n >= m.live {
                        m.live = m.live.min(offset);
                    }
                }
            }
            Op::Mprotect { pid, id, offset, pages: n, prot } => {
                let ep = self.proc(op, pid)?.ep;
                let m = self.map(op, pid, id)?;
                let at = VirtAddr(m.base + pages(offset));
                self.timed(op, |vm| client::mprotect(vm, ep, at, pages(n), map_prot(prot)))
                    .map_err(|e| self.err(op, errno_msg("mprotect", e)))?;
            }
            Op::Mremap { pid, id, new_pages } => {
                let ep = self.proc(op, pid)?.ep;
                let m = self.map(op, pid, id)?;
                let (old, old_len) = (m.base, pages(m.live));
                let va = self
                    .timed(op, |vm| client::mremap(vm, ep, VirtAddr(old), old_len, pages(new_pages), true))
                    .map_err(|e| self.err(op, errno_msg("mremap", e)))?;
                let p = self.procs.get_mut(&pid).expect("checked above");
                let keep = old_len.min(pages(new_pages));
                drop_range(&mut p.model, old + keep, old_len.saturating_sub(keep));
                if va.0 != old {
                    let moved: Vec<(u64, Sig)> = p
                        .model
                        .iter()
                        .filter(|(&a, _)| a >= old && a < old + keep)
                        .map(|(&a, &s)| (a, s))
                        .collect();
                    for (a, _) in &moved {
                        p.model.remove(a);
                    }
                    for (a, s) in moved {
                        p.model.insert(a - old + va.0, s);
                    }
                }
                p.maps.insert(id, MapAddr { base: va.0, live: new_pages, shared: m.shared });
            }
            Op::Brk { pid, heap_pages } => {
                let p = self.proc(op, pid)?;
                let (ep, base, old) = (p.ep, p.layout.brk.0, p.heap);
                let new_brk = VirtAddr(base + pages(heap_pages));
                self.timed(op, |vm| client::brk(vm, ep, new_brk)).map_err(|e| {
                    // Growing claims no frame: ENOMEM there is the layout, not the arena.
                    let layout = e == Errno::ENOMEM && heap_pages > old;
                    self.err(
                        op,
                        if layout {
                            heap_room_msg(self.vm, ep, base, heap_pages)
                        } else {
                            errno_msg("brk", e)
                        },
                    )
                })?;
                let p = self.procs.get_mut(&pid).expect("checked above");
                if heap_pages < old {
                    drop_range(&mut p.model, new_brk.0, pages(old - heap_pages));
                }
                p.heap = heap_pages;
            }
            Op::Discard { pid, id, offset, pages: n } => {
                let ep = self.proc(op, pid)?.ep;
                let m = self.map(op, pid, id)?;
                let at = m.base + pages(offset);
                self.timed(op, |vm| client::discard(vm, ep, VirtAddr(at), pages(n)))
                    .map_err(|e| self.err(op, errno_msg("discard", e)))?;
                let p = self.procs.get_mut(&pid).expect("checked above");
                drop_range(&mut p.model, at, pages(n));
            }
            Op::Touch { pid, place, pages: n, write } => self.touch(op, pid, place, n, write)?,
        }
        Ok(())
    }

    fn touch(&mut self, op: &Op, pid: Pid, place: Place, n: u64, write: bool) -> Result<(), ReplayError> {
        let proc = self.proc(op, pid)?;
        let ep = proc.ep;
        let (first, checked) = self.place_va(op, proc, place, 0)?;
        // Every place is contiguous in the address space except the stack, which grows down.
        let down = matches!(place, Place::Stack(_));
        let va_of = |k: u64| if down { first - pages(k) } else { first + pages(k) };
        let access = Access { write, user: true };
        let r = self.timed(op, |vm| {
            for k in 0..n {
                if let Err(e) = client::touch(vm, ep, VirtAddr(va_of(k)), access) {
                    return Err((k, e));
                }
            }
            Ok(())
        });
        if let Err((k, e)) = r {
            let what = match e {
                TouchError::Signalled(code) => format!("process signalled on a fault (code {:#x})", code.0),
                e => e.to_string(),
            };
            return Err(self.err(op, format!("touch of page {k} at {:#x}: {what}", va_of(k))));
        }
        if self.opts.verify && checked {
            for k in 0..n {
                let va = va_of(k);
                self.check_page(op, pid, va)?;
                if write {
                    self.generation = self.generation.wrapping_add(1);
                    let sig = signature(pid, place, k, self.generation);
                    client::write_user(self.vm, ep, VirtAddr(va), &sig).map_err(|e| {
                        self.err(op, format!("verify: writing the signature at {va:#x}: {e}"))
                    })?;
                    self.procs.get_mut(&pid).expect("checked above").model.insert(va, sig);
                }
            }
        }
        Ok(())
    }

    /// Checks that page `va` of `pid` holds what the model says.
    fn check_page(&mut self, op: &Op, pid: Pid, va: u64) -> Result<(), ReplayError> {
        let p = self.proc(op, pid)?;
        let (ep, want) = (p.ep, p.model.get(&va).copied().unwrap_or(ZERO));
        let mut got = ZERO;
        client::read_user(self.vm, ep, VirtAddr(va), &mut got)
            .map_err(|e| self.err(op, format!("verify: reading {va:#x} of {pid}: {e}")))?;
        self.checked += 1;
        if got != want {
            return Err(self.err(
                op,
                format!(
                    "verify: {pid} page {va:#x} holds {} but should hold {}",
                    describe(&got),
                    describe(&want)
                ),
            ));
        }
        Ok(())
    }

    /// After a fork: a sample of the child's pages must hold the parent's contents.
    fn probe_inherited(&mut self, op: &Op, child: Pid) -> Result<(), ReplayError> {
        let sample: Vec<u64> = self.procs[&child].model.keys().take(8).copied().collect();
        for va in sample {
            self.check_page(op, child, va)?;
        }
        Ok(())
    }

    /// After `gone` exited: the parent's pages that differed from the child's must still hold
    /// the parent's contents (the child's writes did not reach them), sampled.
    fn probe_isolation(&mut self, op: &Op, gone: &Proc) -> Result<(), ReplayError> {
        let Some(parent) = gone.parent else { return Ok(()) };
        let Some(pp) = self.procs.get(&parent) else { return Ok(()) };
        let sample: Vec<u64> = gone
            .model
            .iter()
            .filter(|(&va, sig)| pp.model.get(&va).is_some_and(|s| s != *sig))
            .map(|(&va, _)| va)
            .take(8)
            .collect();
        for va in sample {
            self.check_page(op, parent, va)?;
        }
        Ok(())
    }

    /// Ends the replay: exits processes the ops left alive, checks invariants and (verify)
    /// that every frame is free again; returns the measurements.
    ///
    /// # Errors
    /// A failing exit or a failed final check.
    pub fn finish(mut self) -> Result<Metrics, ReplayError> {
        let left: Vec<(Pid, Endpoint)> = self.procs.iter().map(|(&p, s)| (p, s.ep)).collect();
        for (pid, ep) in left {
            client::exit(self.vm, ep).map_err(|e| ReplayError {
                index: None,
                op: None,
                message: errno_msg(&format!("exit of {pid} left alive by the trace"), e),
            })?;
        }
        self.procs.clear();
        if self.opts.verify {
            self.check_invariants(SanityLevel::Detail).map_err(|e| ReplayError { index: None, ..e })?;
            let free = self.vm.free_frames();
            self.checked += 1;
            if free != self.boot_free {
                return Err(ReplayError {
                    index: None,
                    op: None,
                    message: format!(
                        "verify: {} frames free after every process exited, {} after boot: {} leaked",
                        free,
                        self.boot_free,
                        self.boot_free as i64 - free as i64
                    ),
                });
            }
        }
        let end = counters(self.vm);
        let mut m = self.metrics;
        m.seconds = self.wall.as_secs_f64();
        m.server = ServerCounters {
            faults: end.faults - self.start.faults,
            zero_fills: end.zero_fills - self.start.zero_fills,
            cow_copies: end.cow_copies - self.start.cow_copies,
            // The server's own peaks count from boot (warm-up included): use this replay's.
            frames_peak: self.peak_frames.min(end.frames_peak),
            pt_pages_peak: self.peak_pt.min(end.pt_pages_peak),
        };
        if self.opts.verify {
            m.verify = Some(VerifyCounts { checked: self.checked, ok: true });
        }
        Ok(m)
    }
}

fn mmap_args(addr: Option<VirtAddr>, spec: &MapSpec) -> MmapArgs {
    let mut flags = MapFlags::ANON;
    flags = flags | if spec.kind == MapKind::Shared { MapFlags::SHARED } else { MapFlags::PRIVATE };
    if spec.prealloc {
        flags = flags | MapFlags::PREALLOC;
    }
    MmapArgs { addr, len: pages(spec.pages), prot: map_prot(spec.prot), flags }
}

fn drop_range(model: &mut HashMap<u64, Sig>, at: u64, len: u64) {
    if model.is_empty() || len == 0 {
        return;
    }
    if len / PAGE_SIZE < model.len() as u64 {
        for k in 0..len / PAGE_SIZE {
            model.remove(&(at + pages(k)));
        }
    } else {
        model.retain(|&a, _| a < at || a >= at + len);
    }
}

fn signature(pid: Pid, place: Place, page: u64, generation: u32) -> Sig {
    let tag: u32 = match place {
        Place::Text(_) => 0xffff_fff1,
        Place::Data(_) => 0xffff_fff2,
        Place::Heap(_) => 0xffff_fff3,
        Place::Stack(_) => 0xffff_fff4,
        Place::Map(id, _) => id.0,
    };
    let mut s = [0u8; 16];
    s[0..4].copy_from_slice(&pid.0.to_le_bytes());
    s[4..8].copy_from_slice(&tag.to_le_bytes());
    s[8..12].copy_from_slice(&((place.offset() + page) as u32).to_le_bytes());
    // Never all zero: generation 0 is skipped by the caller's increment before use.
    s[12..16].copy_from_slice(&generation.max(1).to_le_bytes());
    s
}

fn describe(s: &Sig) -> String {
    if *s == ZERO {
        return "zeros".to_string();
    }
    let w = |i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    let place = match w(4) {
        0xffff_fff1 => "text".to_string(),
        0xffff_fff2 => "data".to_string(),
        0xffff_fff3 => "heap".to_string(),
        0xffff_fff4 => "stack".to_string(),
        id => format!("m{id}"),
    };
    format!("p{}'s write #{} to {place}+{}", w(0), w(12), w(8))
}
