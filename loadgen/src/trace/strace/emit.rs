//! Pass 2 of the importer: joined events to ops.
//!
//! Keeps the pid tree (tid -> process, threads folded into their group, pid reuse), one
//! [`Space`] per process, each process's initial break, and per mapping id an optional clamp
//! window. Emits the ops PM would send for the same run (see [`crate::op`] for the MINIX call
//! each becomes).
//!
//! **Clamp windows.** A mapping larger than its clamp keeps `clamp` pages in the trace: a
//! window of Linux pages `[shift, shift + clamp)`. Ordinary mappings start the window at page
//! 0. A reservation's window starts where it is first used (the first `mprotect` making
//! pages accessible, `MAP_FIXED` inside it, ...), so a 128 MiB malloc arena trimmed to 64 MiB
//! alignment and then used from its middle keeps the used part. Ops outside the window are
//! dropped, ops across its edge shortened; both are counted.

use std::collections::BTreeMap;

use hashbrown::HashMap;

use super::args::{
    CloneKind, Sys, MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_NORESERVE, MAP_POPULATE, MAP_SHARED,
    MREMAP_DONTUNMAP, PROT_EXEC, PROT_READ, PROT_WRITE,
};
use super::join::{EvKind, Event};
use super::space::{Piece, Space};
use super::{Clamp, ImportOptions, ImportReport};
use crate::op::{ForkKind, ImageSize, MapId, MapKind, MapSpec, Op, Pid, Prot, Trace, TraceHeader};
use crate::trace::elf;

const PAGE_SHIFT: u32 = 12;
/// Highest Linux page number handled (57-bit addresses); larger values are garbage.
const MAX_LINUX_PAGE: u64 = 1 << 45;
/// Most notes written into the header about clamps; the report has them all.
const MAX_CLAMP_NOTES: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Leader,
    Thread,
    SharedVm,
}

#[derive(Clone, Copy, Debug)]
struct Member {
    proc: usize,
    role: Role,
}

#[derive(Clone, Debug)]
pub(crate) struct Proc {
    pub(crate) pid: Pid,
    pub(crate) alive: bool,
    has_image: bool,
    pub(crate) space: Space,
    pub(crate) brk_base: Option<u64>,
    pub(crate) heap_pages: u64,
}

#[derive(Clone, Copy, Debug)]
struct Window {
    /// First Linux page offset of the window, once chosen.
    shift: Option<u64>,
    /// Linux pages of the mapping.
    linux_pages: u64,
}

#[derive(Clone, Copy, Debug)]
struct IdMeta {
    /// Pages in the trace.
    extent: u64,
    prot: Prot,
    kind: MapKind,
    window: Option<Window>,
}

pub(crate) struct Emitter<'a> {
    opts: &'a ImportOptions,
    pub(crate) report: &'a mut ImportReport,
    pub(crate) ops: Vec<Op>,
    pub(crate) procs: Vec<Proc>,
    tids: HashMap<u32, Member>,
    ids: Vec<IdMeta>,
    names: BTreeMap<Pid, String>,
    pub(crate) line: usize,
    /// The image of the next exec, when the capture knows it (perf MMAP2 records).
    pub(crate) image_override: Option<ImageSize>,
    /// Keep the top of a clamped `MAP_STACK` reservation (where a thread stack is used)
    /// instead of choosing its window at first use (perf captures, whose faults show it).
    pub(crate) stack_window_at_top: bool,
}

fn pages_of(len: u64) -> u64 {
    len.div_ceil(1 << PAGE_SHIFT)
}

/// Linux page range `[start, end)` covering bytes `[addr, addr + len)`, if sane.
fn page_range(addr: u64, len: u64) -> Option<(u64, u64)> {
    let start = addr >> PAGE_SHIFT;
    let end = ((addr as u128 + len as u128).div_ceil(1 << PAGE_SHIFT)) as u64;
    (end <= MAX_LINUX_PAGE && start < end).then_some((start, end))
}

fn prot_of(p: u64) -> Prot {
    let mut bits = 0;
    if p & PROT_READ != 0 {
        bits |= 1;
    }
    if p & PROT_WRITE != 0 {
        bits |= 2;
    }
    if p & PROT_EXEC != 0 {
        bits |= 4;
    }
    Prot::from_bits(bits).unwrap_or(Prot::NONE)
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The ops of `events`, and for each op the line of the event it came from (`None` for the
/// exits added at the end for processes still alive).
pub(super) fn emit(
    events: &[Event],
    opts: &ImportOptions,
    report: &mut ImportReport,
    source: &str,
) -> (Trace, Vec<Option<usize>>) {
    let mut e = Emitter::new(opts, report);
    let mut lines = Vec::new();
    for ev in events {
        e.line = ev.line;
        e.event(ev);
        lines.resize(e.ops.len(), Some(ev.line));
    }
    let trace = finish(e, source);
    lines.resize(trace.ops.len(), None);
    (trace, lines)
}

impl<'a> Emitter<'a> {
    pub(crate) fn new(opts: &'a ImportOptions, report: &'a mut ImportReport) -> Emitter<'a> {
        Emitter {
            opts,
            report,
            ops: Vec::new(),
            procs: Vec::new(),
            tids: HashMap::new(),
            ids: Vec::new(),
            names: BTreeMap::new(),
            line: 0,
            image_override: None,
            stack_window_at_top: false,
        }
    }
}

/// Exits what is still alive and builds the trace.
pub(crate) fn finish(mut e: Emitter<'_>, source: &str) -> Trace {
    let opts = e.opts;
    // Processes still alive when the log ends exit now, so a replay frees everything.
    for i in 0..e.procs.len() {
        if e.procs[i].alive {
            e.report.implicit_exits += 1;
            e.exit(i);
        }
    }
    let mut notes = Vec::new();
    notes.push(format!(
        "clamp: reservations over {} pages and mappings over {} pages are kept as windows of that size",
        opts.reserve_clamp_pages, opts.map_clamp_pages
    ));
    for c in e.report.clamped.iter().take(MAX_CLAMP_NOTES) {
        notes.push(format!(
            "clamped {} {} at line {}: {} -> {} pages{}",
            c.pid,
            c.id,
            c.line,
            c.pages,
            c.kept,
            if c.reservation { " (reservation)" } else { "" }
        ));
    }
    if e.report.clamped.len() > MAX_CLAMP_NOTES {
        notes.push(format!("... and {} more clamped mappings", e.report.clamped.len() - MAX_CLAMP_NOTES));
    }
    e.report.processes = e.procs.len();
    Trace {
        header: TraceHeader { source: source.to_string(), names: e.names, notes, ..TraceHeader::default() },
        ops: e.ops,
    }
}

impl Emitter<'_> {
    fn new_proc(&mut self) -> usize {
        let pid = Pid(self.procs.len() as u32 + 1);
        self.procs.push(Proc {
            pid,
            alive: true,
            has_image: false,
            space: Space::default(),
            brk_base: None,
            heap_pages: 0,
        });
        self.procs.len() - 1
    }

    /// The live process of `tid`; with `create`, a new root process when there is none.
    /// The live process (index) thread `tid` belongs to, if any.
    pub(crate) fn process_of(&mut self, tid: u32) -> Option<usize> {
        self.member(tid, false).map(|m| m.0)
    }

    fn member(&mut self, tid: u32, create: bool) -> Option<(usize, Role)> {
        if let Some(m) = self.tids.get(&tid) {
            if self.procs[m.proc].alive {
                return Some((m.proc, m.role));
            }
            if !create {
                return None;
            }
            self.report.pid_reuses += 1;
        } else if !create {
            return None;
        }
        let p = self.new_proc();
        self.tids.insert(tid, Member { proc: p, role: Role::Leader });
        Some((p, Role::Leader))
    }

    /// Gives a root process that never exec'd an image before its first op.
    fn ensure_image(&mut self, p: usize) {
        if !self.procs[p].has_image {
            self.report.synthetic_execs += 1;
            self.procs[p].has_image = true;
            let pid = self.procs[p].pid;
            self.ops.push(Op::Exec { pid, image: ImageSize::DEFAULT });
        }
    }

    fn exit(&mut self, p: usize) {
        let pr = &mut self.procs[p];
        if !pr.alive {
            return;
        }
        pr.alive = false;
        pr.space.clear();
        let pid = pr.pid;
        if !pr.has_image {
            // Never did anything the replay could see.
            return;
        }
        self.report.exits += 1;
        self.ops.push(Op::Exit { pid });
    }

    fn fork(&mut self, parent: usize, kind: ForkKind) -> usize {
        self.ensure_image(parent);
        let c = self.new_proc();
        let src = self.procs[parent].clone();
        let child = &mut self.procs[c];
        child.has_image = true;
        child.space = src.space;
        child.brk_base = src.brk_base;
        child.heap_pages = src.heap_pages;
        let child_pid = child.pid;
        if let Some(n) = self.names.get(&src.pid).cloned() {
            self.names.insert(child_pid, n);
        }
        match kind {
            ForkKind::Fork => self.report.forks += 1,
            ForkKind::Vfork => self.report.vforks += 1,
        }
        self.ops.push(Op::Fork { parent: src.pid, child: child_pid, kind });
        c
    }

    pub(crate) fn event(&mut self, ev: &Event) {
        let tid = ev.tid;
        match &ev.kind {
            EvKind::Gone => {
                if let Some(&m) = self.tids.get(&tid) {
                    match m.role {
                        Role::Leader => self.exit(m.proc),
                        Role::Thread | Role::SharedVm => {
                            self.tids.remove(&tid);
                        }
                    }
                }
            }
            EvKind::Superseded(old) => {
                if let (Some(o), Some(l)) = (self.tids.get(old), self.tids.get(&tid)) {
                    if o.proc == l.proc && o.role != Role::Leader {
                        self.tids.remove(old);
                    }
                }
            }
            EvKind::Sys(sys) => self.sys(tid, sys),
        }
    }

    /// Counts a decoded call that cannot be replayed (a range beyond any address space, a
    /// process cloning itself): the log is damaged or not from this kind of machine.
    fn dropped(&mut self) {
        self.report.dropped_calls += 1;
        self.report.first_dropped.get_or_insert(self.line);
    }

    fn ignore(&mut self, what: &str) {
        *self.report.ignored_calls.entry(what.to_string()).or_insert(0) += 1;
    }

    fn sys(&mut self, tid: u32, sys: &Sys) {
        match sys {
            Sys::Ignored(n) => self.ignore(n),
            Sys::Failed(_) => self.report.failed_calls += 1,
            Sys::Restarted(_) => self.report.restarted_calls += 1,
            Sys::Shmat => {
                self.report.shm_attaches += 1;
                self.report.first_shmat.get_or_insert(self.line);
            }
            Sys::Clone { kind, child } => {
                let Some(child) = *child else {
                    self.report.failed_calls += 1;
                    return;
                };
                let Some((g, _)) = self.member(tid, true) else {
                    return;
                };
                match kind {
                    CloneKind::Thread | CloneKind::SharedVm => {
                        self.report.threads += 1;
                        let role = if *kind == CloneKind::Thread { Role::Thread } else { Role::SharedVm };
                        self.tids.insert(child, Member { proc: g, role });
                    }
                    CloneKind::Fork | CloneKind::Vfork => {
                        if let Some(old) = self.tids.get(&child).copied() {
                            if old.proc == g && self.procs[g].alive {
                                // A process cannot be its own child: a corrupted line.
                                self.dropped();
                                return;
                            }
                            self.report.pid_reuses += 1;
                            if old.role == Role::Leader && self.procs[old.proc].alive {
                                self.report.implicit_exits += 1;
                                self.exit(old.proc);
                            }
                        }
                        let fk = if *kind == CloneKind::Vfork { ForkKind::Vfork } else { ForkKind::Fork };
                        let c = self.fork(g, fk);
                        self.tids.insert(child, Member { proc: c, role: Role::Leader });
                    }
                }
            }
            Sys::Exec { path, arg_bytes, ok, failed } => {
                if *failed {
                    self.report.failed_execs += 1;
                }
                if !*ok {
                    return;
                }
                let Some((mut g, role)) = self.member(tid, true) else {
                    return;
                };
                if role == Role::SharedVm {
                    // A CLONE_VM child leaves its parent's space: it becomes a process.
                    g = self.fork(g, ForkKind::Vfork);
                    self.tids.insert(tid, Member { proc: g, role: Role::Leader });
                }
                let image = self.image(path, *arg_bytes);
                let p = &mut self.procs[g];
                p.has_image = true;
                p.space.clear();
                p.brk_base = None;
                p.heap_pages = 0;
                let pid = p.pid;
                self.names.insert(pid, basename(path).to_string());
                self.report.execs += 1;
                self.ops.push(Op::Exec { pid, image });
            }
            Sys::ExitGroup => {
                if let Some(&m) = self.tids.get(&tid) {
                    if m.role == Role::SharedVm {
                        self.tids.remove(&tid);
                    } else {
                        self.exit(m.proc);
                    }
                }
            }
            Sys::ExitThread => {}
            _ => {
                let Some((g, _)) = self.member(tid, true) else {
                    return;
                };
                self.ensure_image(g);
                self.memory(g, sys);
            }
        }
    }

    fn image(&mut self, path: &str, arg_bytes: u64) -> ImageSize {
        if let Some(image) = self.image_override.take() {
            return image;
        }
        let stack_pages = ImageSize::DEFAULT.stack_pages + pages_of(arg_bytes);
        let base = if self.opts.read_elf {
            elf::image_size(std::path::Path::new(path)).unwrap_or(ImageSize::DEFAULT)
        } else {
            ImageSize::DEFAULT
        };
        ImageSize { stack_pages, ..base }
    }

    fn memory(&mut self, g: usize, sys: &Sys) {
        match *sys {
            Sys::Mmap { len, prot, flags, ret, .. } => self.mmap(g, len, prot, flags, ret),
            Sys::Munmap { addr, len } => {
                let Some((s, e)) = page_range(addr, len) else {
                    self.dropped();
                    return;
                };
                let removed = self.procs[g].space.remove(s, e);
                if removed.is_empty() {
                    self.report.unknown_ranges += 1;
                }
                self.unmap_pieces(g, &removed);
            }
            Sys::Mprotect { addr, len, prot } => {
                let Some((s, e)) = page_range(addr, len) else {
                    self.dropped();
                    return;
                };
                let prot = prot_of(prot);
                let pieces = self.procs[g].space.pieces(s, e);
                if pieces.is_empty() {
                    self.report.unknown_ranges += 1;
                }
                let pid = self.procs[g].pid;
                for (id, offset, pages) in self.translate_all(&pieces, prot.accessible()) {
                    self.ids[id.0 as usize - 1].prot = prot;
                    self.ops.push(Op::Mprotect { pid, id, offset, pages, prot });
                }
            }
            Sys::Discard { addr, len } => {
                let Some((s, e)) = page_range(addr, len) else {
                    self.dropped();
                    return;
                };
                let pieces = self.procs[g].space.pieces(s, e);
                if pieces.is_empty() {
                    self.report.unknown_ranges += 1;
                }
                let pid = self.procs[g].pid;
                for (id, offset, pages) in self.translate_all(&pieces, false) {
                    self.ops.push(Op::Discard { pid, id, offset, pages });
                }
            }
            Sys::Mremap { old, old_len, new_len, flags, ret } => {
                self.mremap(g, old, old_len, new_len, flags, ret)
            }
            Sys::Brk { req, ret } => self.brk(g, req, ret),
            _ => {}
        }
    }

    fn meta(&self, id: MapId) -> &IdMeta {
        &self.ids[id.0 as usize - 1]
    }

    /// Fixes the window of a clamped reservation at its first use at `linux_off`.
    pub(crate) fn use_window(&mut self, id: MapId, linux_off: u64) {
        let m = &mut self.ids[id.0 as usize - 1];
        let extent = m.extent;
        if let Some(w) = &mut m.window {
            if w.shift.is_none() {
                w.shift = Some(linux_off.min(w.linux_pages.saturating_sub(extent)));
            }
        }
    }

    /// Trace offset and length of Linux pages `[off, off + n)` of `id`, or `None` when they
    /// fall outside its window (or its window is not chosen yet).
    pub(crate) fn translate(&self, id: MapId, off: u64, n: u64) -> Option<(u64, u64)> {
        let m = self.meta(id);
        match m.window {
            None => Some((off, n)),
            Some(w) => {
                let shift = w.shift?;
                let lo = off.max(shift);
                let hi = (off + n).min(shift + m.extent);
                (lo < hi).then(|| (lo - shift, hi - lo))
            }
        }
    }

    /// Translates pieces (choosing windows when `uses`), merging neighbours of one id.
    fn translate_all(&mut self, pieces: &[Piece], uses: bool) -> Vec<(MapId, u64, u64)> {
        let mut out: Vec<(MapId, u64, u64)> = Vec::new();
        for p in pieces {
            let n = p.end - p.start;
            if uses {
                self.use_window(p.id, p.off);
            }
            match self.translate(p.id, p.off, n) {
                Some((off, k)) => {
                    if k < n {
                        self.report.clipped_ops += 1;
                    }
                    match out.last_mut() {
                        Some(last) if last.0 == p.id && last.1 + last.2 == off => last.2 += k,
                        _ => out.push((p.id, off, k)),
                    }
                }
                None => self.report.clipped_ops += 1,
            }
        }
        out
    }

    /// Emits unmaps for pieces already removed from process `g`'s space.
    fn unmap_pieces(&mut self, g: usize, removed: &[Piece]) {
        let pid = self.procs[g].pid;
        let mut out = Vec::new();
        for p in removed {
            let m = *self.meta(p.id);
            let unchosen = matches!(m.window, Some(Window { shift: None, .. }));
            if unchosen {
                // Trimming a reservation before any use: nothing of it is in the trace's
                // window yet, unless this removes the last of it.
                if self.procs[g].space.live(p.id) == 0 {
                    out.push((p.id, 0, m.extent));
                } else {
                    self.report.clipped_ops += 1;
                }
                continue;
            }
            out.extend(self.translate_all(std::slice::from_ref(p), false));
        }
        // Merge, and unmap each trace page once even if pieces repeat (an unchosen window).
        out.sort_by_key(|&(id, off, _)| (id, off));
        out.dedup();
        let mut merged: Vec<(MapId, u64, u64)> = Vec::new();
        for (id, off, n) in out {
            match merged.last_mut() {
                Some(last) if last.0 == id && last.1 + last.2 >= off => {
                    let end = (last.1 + last.2).max(off + n);
                    last.2 = end - last.1;
                }
                _ => merged.push((id, off, n)),
            }
        }
        for (id, offset, pages) in merged {
            self.ops.push(Op::Munmap { pid, id, offset, pages });
        }
    }

    fn new_id(&mut self, meta: IdMeta) -> MapId {
        self.ids.push(meta);
        MapId(self.ids.len() as u32)
    }

    /// A new mapping placed anywhere, clamped if large; maps Linux `[s, s + pages)`.
    pub(crate) fn fresh(&mut self, g: usize, s: u64, pages: u64, prot: Prot, kind: MapKind, flags: u64) {
        let reservation = !prot.accessible() || flags & MAP_NORESERVE != 0;
        let clamp =
            if reservation { self.opts.reserve_clamp_pages } else { self.opts.map_clamp_pages }.max(1);
        let (extent, window) = if pages > clamp {
            const MAP_STACK: u64 = 0x2_0000;
            let shift = if !reservation {
                Some(0)
            } else if self.stack_window_at_top && flags & MAP_STACK != 0 {
                Some(pages - clamp)
            } else {
                None
            };
            (clamp, Some(Window { shift, linux_pages: pages }))
        } else {
            (pages, None)
        };
        let id = self.new_id(IdMeta { extent, prot, kind, window });
        let pid = self.procs[g].pid;
        if window.is_some() {
            self.report.clamped.push(Clamp { line: self.line, pid, id, pages, kept: extent, reservation });
        }
        self.ops.push(Op::Mmap {
            pid,
            id,
            spec: MapSpec { pages: extent, prot, kind, prealloc: flags & MAP_POPULATE != 0 },
        });
        self.procs[g].space.insert(s, s + pages, id, 0);
    }

    fn mmap(&mut self, g: usize, len: u64, prot: u64, flags: u64, ret: u64) {
        let Some((s, e)) = page_range(ret, len) else {
            self.dropped();
            return;
        };
        let pages = e - s;
        let prot = prot_of(prot);
        let kind = if flags & MAP_ANONYMOUS == 0 {
            MapKind::File
        } else if flags & 3 == MAP_SHARED || flags & 3 == 3 {
            MapKind::Shared
        } else {
            MapKind::Private
        };
        let existing = self.procs[g].space.pieces(s, e);
        let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
        if fixed && !existing.is_empty() {
            let first = existing[0];
            let inside_one = existing.len() == 1 && first.start == s && first.end == e;
            if inside_one {
                self.use_window(first.id, first.off);
                if let Some((off, n)) = self.translate(first.id, first.off, pages) {
                    // The part of the new mapping inside the window of the one it lies in.
                    let skip = match self.meta(first.id).window {
                        Some(Window { shift: Some(sh), .. }) => sh.saturating_sub(first.off),
                        _ => 0,
                    };
                    let window = (n < pages).then_some(Window { shift: Some(skip), linux_pages: pages });
                    if n < pages {
                        self.report.clipped_ops += 1;
                    }
                    let id = self.new_id(IdMeta { extent: n, prot, kind, window });
                    let pid = self.procs[g].pid;
                    self.ops.push(Op::MmapOver {
                        pid,
                        id,
                        over: first.id,
                        offset: off,
                        spec: MapSpec { pages: n, prot, kind, prealloc: flags & MAP_POPULATE != 0 },
                    });
                    let space = &mut self.procs[g].space;
                    space.remove(s, e);
                    space.insert(s, e, id, 0);
                    return;
                }
            }
            self.report.relocated_fixed += 1;
        } else if fixed {
            self.report.relocated_fixed += 1;
        } else if !existing.is_empty() {
            self.report.stale_overlaps += 1;
        }
        let removed = self.procs[g].space.remove(s, e);
        self.unmap_pieces(g, &removed);
        self.fresh(g, s, pages, prot, kind, flags);
    }

    fn mremap(&mut self, g: usize, old: u64, old_len: u64, new_len: u64, flags: u64, ret: u64) {
        let (Some((os, oe)), Some((ns, ne))) = (page_range(old, old_len.max(1)), page_range(ret, new_len))
        else {
            self.dropped();
            return;
        };
        let pieces = self.procs[g].space.pieces(os, oe);
        let whole = old_len > 0
            && pieces.len() == 1
            && pieces[0].start == os
            && pieces[0].end == oe
            && pieces[0].off == 0
            && self.procs[g].space.live(pieces[0].id) == oe - os
            && self.meta(pieces[0].id).window.is_none();
        let new_pages = ne - ns;
        if flags & MREMAP_DONTUNMAP != 0 {
            self.dontunmap(g, &pieces, ns, ne);
            return;
        }
        if whole && new_pages <= self.opts.map_clamp_pages.max(1) {
            let id = pieces[0].id;
            let pid = self.procs[g].pid;
            self.ops.push(Op::Mremap { pid, id, new_pages });
            self.ids[id.0 as usize - 1].extent = new_pages;
            self.procs[g].space.remove(os, oe);
            let stale = self.procs[g].space.remove(ns, ne);
            if !stale.is_empty() {
                self.report.stale_overlaps += 1;
                self.unmap_pieces(g, &stale);
            }
            self.procs[g].space.insert(ns, ne, id, 0);
            return;
        }
        if pieces.is_empty() {
            self.report.unknown_ranges += 1;
        }
        self.report.mremap_fallbacks += 1;
        let (prot, kind) = pieces
            .first()
            .map(|p| (self.meta(p.id).prot, self.meta(p.id).kind))
            .unwrap_or((Prot::RW, MapKind::Private));
        if old_len > 0 {
            let removed = self.procs[g].space.remove(os, oe);
            self.unmap_pieces(g, &removed);
        }
        let stale = self.procs[g].space.remove(ns, ne);
        self.unmap_pieces(g, &stale);
        self.fresh(g, ns, new_pages, prot, kind, 0);
    }

    /// `mremap(.., MREMAP_DONTUNMAP)`: the pages move to a new mapping and the old range
    /// stays mapped, empty (private anonymous memory reads as zeros again). Replayed as a
    /// discard of the old range and a new mapping like the old one, never as a resize.
    fn dontunmap(&mut self, g: usize, pieces: &[Piece], ns: u64, ne: u64) {
        self.report.dontunmap_moves += 1;
        if pieces.is_empty() {
            self.report.unknown_ranges += 1;
        }
        let (prot, kind) = pieces
            .first()
            .map(|p| (self.meta(p.id).prot, self.meta(p.id).kind))
            .unwrap_or((Prot::RW, MapKind::Private));
        let pid = self.procs[g].pid;
        for (id, offset, pages) in self.translate_all(pieces, false) {
            self.ops.push(Op::Discard { pid, id, offset, pages });
        }
        let stale = self.procs[g].space.remove(ns, ne);
        if !stale.is_empty() {
            self.report.stale_overlaps += 1;
            self.unmap_pieces(g, &stale);
        }
        self.fresh(g, ns, ne - ns, prot, kind, 0);
    }

    fn brk(&mut self, g: usize, req: u64, ret: u64) {
        let p = &mut self.procs[g];
        if req == 0 {
            p.brk_base.get_or_insert(ret);
            return;
        }
        if ret != req {
            // The kernel answers a refused brk with the old break.
            self.report.failed_calls += 1;
            return;
        }
        let base = *p.brk_base.get_or_insert(req);
        let pages = pages_of(req.saturating_sub(base));
        if pages != p.heap_pages {
            p.heap_pages = pages;
            let pid = p.pid;
            self.ops.push(Op::Brk { pid, heap_pages: pages });
        }
    }
}
