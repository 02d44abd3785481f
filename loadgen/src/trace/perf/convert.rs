//! Pass 2 of the perf importer: time-ordered records to ops, through the same emitter the
//! strace importer uses, plus one touch per fault.
//!
//! System calls become the strace importer's decoded calls (a `sys_enter` joined with its
//! `sys_exit` per thread, as strace joins `<unfinished ...>` with `<... resumed>`), so
//! vfork, failed execs, pid reuse, `MAP_FIXED` overlays, clamped reservations and the
//! address-independent (mapping, offset) naming behave exactly as for strace logs.
//! What perf adds:
//!
//! - **Forks** come from perf's `PERF_RECORD_FORK` (a thread when the child joins the
//!   parent's thread group, else a process; `vfork` and `clone(CLONE_VM|CLONE_VFORK)` are
//!   vforks by the pending call's flags; `clone3`'s flags live in user memory that a
//!   tracepoint does not copy, so a `clone3` process is a fork).
//! - **Execs** come from `sched:sched_process_exec`. The kernel maps the program, its
//!   interpreter, the stack and the vDSO inside `execve`; perf's `MMAP2` records of that
//!   window give the exec image (text = the program's read-only segments, data = its
//!   writable ones, bss = the anonymous mapping right after them, stack = `[stack]`) and
//!   the other mappings become ordinary mappings after the exec. Faults taken inside
//!   `execve` (the kernel writing the arguments and clearing bss) are played after it.
//! - **Faults** become [`Op::Touch`]es of one page: in a mapping (by the emitter's interval
//!   map and clamp windows), or in the program's text, data, heap (above the initial break)
//!   or stack (counted down from the top; a stack grown below its exec size enlarges the
//!   exec image). The access is a write when the error code's write bit is set. A fault
//!   that lands nowhere known (a mapping made before the capture, a clamped-away window) is
//!   counted and not replayed. This is MINIX's `do_pagefaults` queue, recorded.

use hashbrown::{HashMap, HashSet};

use super::decode::{Call, Rec, RecKind};
use super::facts::{self, AreaKind, Base, TouchFault, PMD_PAGES};
use super::report::Placement;
use crate::op::{ImageSize, MapId, MapKind, Op, Pid, Place, Prot};
use crate::trace::strace::args::{CloneKind, Sys};
use crate::trace::strace::emit::Emitter;
use crate::trace::strace::join::{EvKind, Event};

const PAGE_SHIFT: u32 = 12;
/// `CLONE_VM`, `CLONE_VFORK`.
const CLONE_VM: u64 = 0x100;
const CLONE_VFORK: u64 = 0x4000;
/// `MAP_PRIVATE`, `MAP_SHARED`, `MAP_FIXED`, `MAP_ANONYMOUS`.
const MAP_SHARED: u64 = 1;
const MAP_PRIVATE: u64 = 2;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_STACK: u64 = 0x2_0000;
/// Deepest stack page placed below the top (8 MiB, Linux's default stack limit).
const STACK_MAX_PAGES: u64 = 2048;

/// Where a process's exec image lies in Linux pages.
#[derive(Clone, Copy, Debug)]
struct Image {
    text: (u64, u64),
    data: (u64, u64),
    /// The anonymous bss mapping after the data (empty when there is none).
    bss: (u64, u64),
    stack_top: Option<u64>,
    /// Lowest page of the stack VMA so far: Linux grows it down to each fault below.
    stack_low: u64,
    /// Index of the exec op, enlarged when the stack grows.
    exec_op: usize,
}

#[derive(Clone, Debug)]
struct MapRec {
    addr: u64,
    len: u64,
    prot: u32,
    shared: bool,
    path: String,
}

#[derive(Clone, Debug, Default)]
struct ExecBuf {
    maps: Vec<MapRec>,
    faults: Vec<(usize, u64, u64)>,
}

pub(crate) struct Converter<'a> {
    pub e: Emitter<'a>,
    pending: HashMap<u32, (Call, [u64; 5])>,
    execing: HashMap<u32, ExecBuf>,
    images: HashMap<usize, Image>,
    pub placed: Placement,
    /// Kind, protection and `MAP_STACK` of every mapping id emitted so far.
    maps: HashMap<MapId, (MapKind, Prot, bool)>,
    /// Mapping ids whose place on the 2 MiB grid randomization does not change: the kernel
    /// put them on a 2 MiB boundary (private anonymous, no address hint, a length that is a
    /// multiple of 2 MiB), or they were placed after such a mapping (top-down, right below
    /// it: a gap the alignment left is under 2 MiB, too small for a mapping that can hold a
    /// whole block).
    pmd_aligned: HashSet<MapId>,
    /// Processes that made a kernel-aligned mapping since their exec.
    grid_fixed: HashSet<Pid>,
    /// One per touch emitted, in order.
    pub touch_faults: Vec<TouchFault>,
}

/// What a fault fell in: kind, protection, `MAP_STACK`, window in its 2 MiB block.
type Area = (AreaKind, Prot, bool, (u64, u64));

/// `[start, end)` clipped to the three 2 MiB blocks centred on `page`'s (see
/// [`TouchFault::reach`]).
fn clip_to_reach(page: u64, start: u64, end: u64) -> (u64, u64) {
    let (bs, be) = facts::pmd_block(page);
    let (s, e) = (start.max(bs.saturating_sub(PMD_PAGES)), end.min(be.saturating_add(PMD_PAGES)));
    if s < e {
        (s, e)
    } else {
        (page, page)
    }
}

fn failed(ret: i64) -> bool {
    (-4095..0).contains(&ret)
}

/// Whether an MMAP2 path names a file (perf calls anonymous memory `//anon`, and special
/// mappings `[stack]`, `[vdso]`, ...).
fn is_file(path: &str) -> bool {
    path.starts_with('/') && !path.starts_with("//anon")
}

impl<'a> Converter<'a> {
    pub fn new(e: Emitter<'a>) -> Converter<'a> {
        Converter {
            e,
            pending: HashMap::new(),
            execing: HashMap::new(),
            images: HashMap::new(),
            placed: Placement::default(),
            maps: HashMap::new(),
            pmd_aligned: HashSet::new(),
            grid_fixed: HashSet::new(),
            touch_faults: Vec::new(),
        }
    }

    fn emit(&mut self, line: usize, tid: u32, kind: EvKind) {
        self.e.line = line;
        let stack = matches!(kind, EvKind::Sys(Sys::Mmap { flags, .. }) if flags & MAP_STACK != 0);
        let placed = matches!(kind, EvKind::Sys(Sys::Mmap { addr: 0, flags, .. }) if flags & MAP_FIXED == 0);
        let aligned = matches!(kind, EvKind::Sys(Sys::Mmap { len, flags, .. })
            if placed && flags & MAP_SHARED == 0 && flags & MAP_ANONYMOUS != 0
                && len > 0 && len % (PMD_PAGES << PAGE_SHIFT) == 0);
        let before = self.e.ops.len();
        self.e.event(&Event { line, tid, kind });
        // What the ops say of each mapping id, for the facts of later faults.
        for op in &self.e.ops[before..] {
            match *op {
                Op::Mmap { id, spec, pid } | Op::MmapOver { id, spec, pid, .. } => {
                    self.maps.insert(id, (spec.kind, spec.prot, stack));
                    let fresh = placed && matches!(*op, Op::Mmap { .. });
                    if fresh && (aligned || self.grid_fixed.contains(&pid)) {
                        self.pmd_aligned.insert(id);
                    } else {
                        self.pmd_aligned.remove(&id);
                    }
                    if fresh && aligned {
                        self.grid_fixed.insert(pid);
                    }
                }
                Op::Exec { pid, .. } => {
                    self.grid_fixed.remove(&pid);
                }
                Op::Fork { parent, child, .. } => {
                    if self.grid_fixed.contains(&parent) {
                        self.grid_fixed.insert(child);
                    } else {
                        self.grid_fixed.remove(&child);
                    }
                }
                Op::Mprotect { id, prot, .. } => {
                    if let Some(m) = self.maps.get_mut(&id) {
                        m.1 = prot;
                    }
                }
                _ => {}
            }
        }
    }

    fn known(&mut self, tid: u32) -> Option<usize> {
        self.e.process_of(tid)
    }

    /// Feeds one record.
    pub fn rec(&mut self, r: &Rec) {
        let tid = r.tid;
        match &r.kind {
            RecKind::Enter { call, args } => match call {
                Call::Execve => {
                    self.execing.insert(tid, ExecBuf::default());
                }
                Call::ExitGroup => self.emit(r.index, tid, EvKind::Sys(Sys::ExitGroup)),
                _ => {
                    self.pending.insert(tid, (*call, *args));
                }
            },
            RecKind::Exit { call, ret } => self.exit(r.index, tid, *call, *ret),
            RecKind::Fork { parent_pid, parent_tid, child_pid, child_tid } => {
                let kind = if child_pid == parent_pid {
                    CloneKind::Thread
                } else {
                    match self.pending.get(parent_tid) {
                        Some((Call::Vfork, _)) => CloneKind::Vfork,
                        Some((Call::Clone, a)) if a[0] & CLONE_VM != 0 => {
                            if a[0] & CLONE_VFORK != 0 {
                                CloneKind::Vfork
                            } else {
                                CloneKind::SharedVm
                            }
                        }
                        _ => CloneKind::Fork,
                    }
                };
                let parent = self.known(*parent_tid);
                let before = self.e.procs.len();
                self.emit(r.index, *parent_tid, EvKind::Sys(Sys::Clone { kind, child: Some(*child_tid) }));
                if self.e.procs.len() > before {
                    // A new process: it inherits the parent's image layout.
                    if let Some(img) = parent.and_then(|p| self.images.get(&p).copied()) {
                        self.images.insert(self.e.procs.len() - 1, img);
                    }
                }
            }
            RecKind::TaskExit { .. } => {
                if let Some(buf) = self.execing.remove(&tid) {
                    self.placed.unplaced += buf.faults.len() as u64;
                }
                self.pending.remove(&tid);
                self.emit(r.index, tid, EvKind::Gone);
            }
            RecKind::Exec { path, old_tid } => self.exec(r.index, tid, *old_tid, path),
            RecKind::Map { addr, len, prot, shared, path } => {
                let m = MapRec { addr: *addr, len: *len, prot: *prot, shared: *shared, path: path.clone() };
                if let Some(buf) = self.execing.get_mut(&tid) {
                    buf.maps.push(m);
                } else if self.known(tid).is_none() {
                    self.execing.entry(tid).or_default().maps.push(m);
                }
            }
            RecKind::Fault { addr, code, .. } => {
                if let Some(buf) = self.execing.get_mut(&tid) {
                    buf.faults.push((r.index, *addr, *code));
                } else if let Some(g) = self.known(tid) {
                    self.fault_in(r.index, g, *addr, *code);
                } else {
                    self.execing.entry(tid).or_default().faults.push((r.index, *addr, *code));
                }
            }
        }
    }

    fn exit(&mut self, line: usize, tid: u32, call: Call, ret: i64) {
        if call == Call::Execve {
            if ret != 0 {
                // A failed exec: faults taken meanwhile were in the old image.
                if let Some(buf) = self.execing.remove(&tid) {
                    for (i, a, c) in buf.faults {
                        self.fault(i, tid, a, c);
                    }
                }
                let sys = Sys::Exec { path: String::new(), arg_bytes: 0, ok: false, failed: true };
                self.emit(line, tid, EvKind::Sys(sys));
            }
            return;
        }
        let Some((c, a)) = self.pending.remove(&tid) else { return };
        if c != call {
            return;
        }
        let name = call.name();
        let sys = if failed(ret) {
            Sys::Failed(name.to_string())
        } else {
            let r = ret as u64;
            match call {
                Call::Mmap => Sys::Mmap { addr: a[0], len: a[1], prot: a[2], flags: a[3], ret: r },
                Call::Munmap => Sys::Munmap { addr: a[0], len: a[1] },
                Call::Mprotect => Sys::Mprotect { addr: a[0], len: a[1], prot: a[2] },
                Call::Mremap => Sys::Mremap { old: a[0], old_len: a[1], new_len: a[2], flags: a[3], ret: r },
                Call::Brk => Sys::Brk { req: a[0], ret: r },
                // MADV_DONTNEED 4, MADV_FREE 8, MADV_REMOVE 9 free pages; other advice does not.
                Call::Madvise if matches!(a[2], 4 | 8 | 9) => Sys::Discard { addr: a[0], len: a[1] },
                Call::Madvise => Sys::Ignored(format!("madvise({})", a[2])),
                // Forks were handled at their PERF_RECORD_FORK.
                Call::Clone | Call::Clone3 | Call::Vfork | Call::Execve | Call::ExitGroup => return,
            }
        };
        self.emit(line, tid, EvKind::Sys(sys));
    }

    fn exec(&mut self, line: usize, tid: u32, old_tid: u32, path: &str) {
        let buf = self.execing.remove(&old_tid).or_else(|| self.execing.remove(&tid)).unwrap_or_default();
        self.execing.remove(&tid);
        if old_tid != tid {
            self.emit(line, tid, EvKind::Superseded(old_tid));
        }
        let layout = image_layout(&buf.maps);
        self.e.image_override = layout.as_ref().map(|l| l.0);
        self.emit(
            line,
            tid,
            EvKind::Sys(Sys::Exec { path: path.to_string(), arg_bytes: 0, ok: true, failed: false }),
        );
        self.e.image_override = None;
        let Some(g) = self.known(tid) else { return };
        let exec_op = self.e.ops.len().saturating_sub(1);
        match (layout, self.e.ops.last()) {
            (Some((_, mut img, used)), Some(Op::Exec { .. })) => {
                img.exec_op = exec_op;
                self.images.insert(g, img);
                // The other mappings execve made (interpreter, vDSO) become ordinary ones.
                for (k, m) in buf.maps.iter().enumerate() {
                    if used.contains(&k) {
                        continue;
                    }
                    self.exec_map(line, tid, g, m);
                }
            }
            _ => {
                self.images.remove(&g);
            }
        }
        for (i, a, c) in buf.faults {
            self.fault(i, tid, a, c);
        }
    }

    fn exec_map(&mut self, line: usize, tid: u32, g: usize, m: &MapRec) {
        let s = m.addr >> PAGE_SHIFT;
        let e = (m.addr.saturating_add(m.len)).div_ceil(1 << PAGE_SHIFT);
        if s >= e {
            return;
        }
        let over = !self.e.procs[g].space.pieces(s, e).is_empty();
        let mut flags = if m.shared { MAP_SHARED } else { MAP_PRIVATE };
        if !is_file(&m.path) {
            flags |= MAP_ANONYMOUS;
        }
        if over {
            flags |= MAP_FIXED;
        }
        let sys = Sys::Mmap { addr: m.addr, len: m.len, prot: m.prot as u64, flags, ret: m.addr };
        self.emit(line, tid, EvKind::Sys(sys));
    }

    fn fault(&mut self, line: usize, tid: u32, addr: u64, code: u64) {
        match self.known(tid) {
            Some(g) => self.fault_in(line, g, addr, code),
            None => self.placed.unplaced += 1,
        }
    }

    /// Places a fault of process `g` and emits its touch.
    fn fault_in(&mut self, line: usize, g: usize, addr: u64, code: u64) {
        self.e.line = line;
        let page = addr >> PAGE_SHIFT;
        let mut write = code & 2 != 0;
        let mut area = (AreaKind::Heap, Prot::RW, false, (page, page + 1));
        // The area clipped to the three 2 MiB blocks around the fault's, and its base.
        let reach: (u64, u64);
        let mut base = Base::Brk;
        let place = if let Some(p) = self.e.procs[g].space.pieces(page, page + 1).first().copied() {
            self.e.use_window(p.id, p.off);
            match self.e.translate(p.id, p.off, 1) {
                Some((off, _)) => {
                    self.placed.map += 1;
                    let (a, r) = self.map_area(g, page, p.id);
                    (area, reach) = (a, r);
                    base = if self.pmd_aligned.contains(&p.id) { Base::Aligned } else { Base::Mmap };
                    Place::Map(p.id, off)
                }
                None => {
                    self.placed.clipped += 1;
                    return;
                }
            }
        } else if let Some(img) = self.images.get(&g).copied() {
            let heap = self.heap_place(g, page);
            base = Base::Image;
            if (img.text.0..img.text.1).contains(&page) {
                if write {
                    self.placed.text_writes_as_reads += 1;
                    write = false;
                }
                self.placed.text += 1;
                area = (AreaKind::Text, Prot::RX, false, facts::clip_to_block(page, img.text.0, img.text.1));
                reach = clip_to_reach(page, img.text.0, img.text.1);
                Place::Text(page - img.text.0)
            } else if (img.data.0..img.data.1).contains(&page) {
                self.placed.data += 1;
                let (kind, s, e) = if (img.bss.0..img.bss.1).contains(&page) {
                    (AreaKind::Bss, img.bss.0, img.bss.1)
                } else {
                    (AreaKind::Data, img.data.0, img.bss.0)
                };
                area = (kind, Prot::RW, false, facts::clip_to_block(page, s, e));
                reach = clip_to_reach(page, s, e);
                Place::Data(page - img.data.0)
            } else if let Some(h) = heap {
                self.placed.heap += 1;
                (area.3, reach) = self.heap_window(g, page);
                base = Base::Brk;
                h
            } else if let Some((n, top)) =
                img.stack_top.filter(|&t| page < t && t - page <= STACK_MAX_PAGES).map(|t| (t - 1 - page, t))
            {
                let low = img.stack_low.min(page);
                if let Some(i) = self.images.get_mut(&g) {
                    i.stack_low = low;
                }
                area = (AreaKind::Stack, Prot::RW, false, facts::clip_to_block(page, low, top));
                reach = clip_to_reach(page, low, top);
                base = Base::Stack;
                if let Some(Op::Exec { image, .. }) = self.e.ops.get_mut(img.exec_op) {
                    if image.stack_pages <= n {
                        image.stack_pages = n + 1;
                        self.placed.stack_grown += 1;
                    }
                }
                self.placed.stack += 1;
                Place::Stack(n)
            } else {
                self.placed.unplaced += 1;
                return;
            }
        } else if let Some(h) = self.heap_place(g, page) {
            self.placed.heap += 1;
            (area.3, reach) = self.heap_window(g, page);
            h
        } else {
            self.placed.unplaced += 1;
            return;
        };
        let pid = self.e.procs[g].pid;
        self.e.ops.push(Op::Touch { pid, place, pages: 1, write });
        let (kind, prot, no_huge, window) = area;
        self.touch_faults.push(TouchFault {
            page,
            code: code as u8,
            kind,
            prot,
            no_huge,
            window,
            reach,
            base,
        });
    }

    /// The mapping `id` holding `page` of process `g`: its kind, protection, `MAP_STACK`
    /// flag, and the run of alike mappings around the page inside its 2 MiB block; then
    /// the run clipped to the three blocks around it.
    fn map_area(&self, g: usize, page: u64, id: MapId) -> (Area, (u64, u64)) {
        let me = self.maps.get(&id).copied().unwrap_or((MapKind::File, Prot::NONE, false));
        let (bs, be) = facts::pmd_block(page);
        let ranges: Vec<(u64, u64, bool)> = self.e.procs[g]
            .space
            .pieces(bs.saturating_sub(PMD_PAGES), be.saturating_add(PMD_PAGES))
            .iter()
            .map(|q| (q.start, q.end, self.maps.get(&q.id) == Some(&me)))
            .collect();
        let (s, e) = facts::run_around(page, &ranges).unwrap_or((page, page + 1));
        let window = facts::clip_to_block(page, s, e);
        ((AreaKind::Map(me.0), me.1, me.2, window), clip_to_reach(page, s, e))
    }

    /// The heap of process `g` around `page`, clipped to its 2 MiB block, then to the
    /// three blocks around it.
    fn heap_window(&self, g: usize, page: u64) -> ((u64, u64), (u64, u64)) {
        let p = &self.e.procs[g];
        match p.brk_base {
            Some(b) => {
                let (s, e) = (b >> PAGE_SHIFT, (b >> PAGE_SHIFT) + p.heap_pages);
                (facts::clip_to_block(page, s, e), clip_to_reach(page, s, e))
            }
            None => ((page, page + 1), (page, page + 1)),
        }
    }

    fn heap_place(&self, g: usize, page: u64) -> Option<Place> {
        let p = &self.e.procs[g];
        let base = p.brk_base? >> PAGE_SHIFT;
        (page >= base && page < base + p.heap_pages).then(|| Place::Heap(page - base))
    }

    /// Faults of tasks whose exec never completed.
    pub fn leftover_faults(&self) -> u64 {
        self.execing.values().map(|b| b.faults.len() as u64).sum()
    }
}

/// The exec image from the mappings `execve` made: its size, where it lies, and which of
/// the mappings it accounts for. `None` when no program file was mapped.
fn image_layout(maps: &[MapRec]) -> Option<(ImageSize, Image, Vec<usize>)> {
    let exe = maps.iter().find(|m| is_file(&m.path))?.path.clone();
    let mut used = Vec::new();
    let mut text: Option<(u64, u64)> = None;
    let mut data: Option<(u64, u64)> = None;
    for (k, m) in maps.iter().enumerate() {
        if m.path != exe {
            continue;
        }
        let s = m.addr >> PAGE_SHIFT;
        let e = (m.addr.saturating_add(m.len)).div_ceil(1 << PAGE_SHIFT);
        let writable = m.prot & 2 != 0;
        let slot = if writable || data.is_some() { &mut data } else { &mut text };
        *slot = Some(match *slot {
            None => (s, e),
            Some((a, b)) => (a.min(s), b.max(e)),
        });
        used.push(k);
    }
    let mut text = text.unwrap_or((0, 0));
    let mut data = data.unwrap_or((text.1, text.1));
    // The loader first maps the whole file read-only, then overlays the segments: the text
    // ends where the data begins.
    text.1 = text.1.min(data.0).max(text.0);
    let data_pages = data.1 - data.0;
    // bss: the anonymous mapping the loader put right after the data.
    let mut bss_pages = 0;
    let mut bss = (data.1, data.1);
    if let Some((k, m)) = maps
        .iter()
        .enumerate()
        .find(|(_, m)| !is_file(&m.path) && !m.path.starts_with('[') && m.addr >> PAGE_SHIFT == data.1)
    {
        let e = (m.addr.saturating_add(m.len)).div_ceil(1 << PAGE_SHIFT);
        bss_pages = e - data.1;
        bss = (data.1, e);
        data.1 = e;
        used.push(k);
    }
    let mut stack_top = None;
    let mut stack_low = u64::MAX;
    let mut stack_pages = ImageSize::DEFAULT.stack_pages;
    if let Some((k, m)) = maps.iter().enumerate().find(|(_, m)| m.path == "[stack]") {
        let s = m.addr >> PAGE_SHIFT;
        let e = (m.addr.saturating_add(m.len)).div_ceil(1 << PAGE_SHIFT);
        stack_top = Some(e);
        stack_low = s;
        stack_pages = (e - s).max(1);
        used.push(k);
    }
    let size = ImageSize { text_pages: text.1 - text.0, data_pages, bss_pages, stack_pages };
    Some((size, Image { text, data, bss, stack_top, stack_low, exec_op: 0 }, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(addr: u64, len: u64, prot: u32, path: &str) -> MapRec {
        MapRec { addr, len, prot, shared: false, path: path.to_string() }
    }

    #[test]
    fn exec_image_from_the_mappings_execve_made() {
        // As perf saw dash exec: stack, the whole file read-only, segments over it, bss,
        // then the interpreter.
        let maps = vec![
            m(0x7ffd_0000_0000, 0x21000, 3, "[stack]"),
            m(0x5000_0000, 0x22000, 1, "/usr/bin/dash"),
            m(0x5000_4000, 0x13000, 5, "/usr/bin/dash"),
            m(0x5001_7000, 0x6000, 1, "/usr/bin/dash"),
            m(0x5001_d000, 0x3000, 3, "/usr/bin/dash"),
            m(0x5002_0000, 0x2000, 3, "//anon"),
            m(0x7f00_0000_0000, 0x35000, 1, "/usr/lib/ld.so"),
        ];
        let (size, img, used) = image_layout(&maps).unwrap();
        assert_eq!(size, ImageSize { text_pages: 0x1d, data_pages: 3, bss_pages: 2, stack_pages: 0x21 });
        assert_eq!(img.text, (0x50000, 0x5001d));
        assert_eq!(img.data, (0x5001d, 0x50022));
        assert_eq!(img.stack_top, Some(0x7_ffd0_0021));
        // Everything but the interpreter is part of the image.
        assert_eq!(used.len(), 6);
        assert!(!used.contains(&6));
    }

    #[test]
    fn no_program_file_means_no_layout() {
        assert!(image_layout(&[m(0x1000, 0x1000, 3, "[stack]"), m(0x5000, 0x1000, 3, "//anon")]).is_none());
        assert!(!is_file("//anon") && !is_file("[vdso]") && is_file("/bin/sh"));
    }
}
