//! A shadow of every process's address space, kept in ids and page offsets, that checks a
//! sequence of ops for consistency.
//!
//! The replayer plays ops into the VM server as PM and the kernel would; an op naming a dead
//! process, an unknown mapping or an unmapped page would make it send requests MINIX's PM
//! never sends (the 2010 server panicked on several of them, see its defects list). The
//! shadow is the MINIX `vmproc` table and region lists reduced to what an op can refer to:
//! per process the image sizes, the heap size and, per mapping id, which pages are mapped
//! with which protection. [`validate`] runs a whole trace through it; touch synthesis uses it
//! to know what may be touched.

use hashbrown::{HashMap, HashSet};

use crate::op::{ImageSize, MapId, MapKind, MapSpec, Op, Pid, Place, Prot, Trace};

/// Largest page count or offset any op may carry (2^40 pages = 4 PiB): a larger one is
/// garbage, and every sum of two such values fits in a `u64`.
pub const MAX_PAGES: u64 = 1 << 40;

/// One mapping as seen by one process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapShadow {
    /// Extent in pages: offsets `[0, pages)` may be named.
    pub pages: u64,
    /// Backing.
    pub kind: MapKind,
    /// Protection it was created with.
    pub created: Prot,
    /// Mapped page ranges `[start, end)` with their protection, sorted and disjoint.
    pub segs: Vec<(u64, u64, Prot)>,
}

impl MapShadow {
    fn new(spec: &MapSpec) -> MapShadow {
        MapShadow {
            pages: spec.pages,
            kind: spec.kind,
            created: spec.prot,
            segs: vec![(0, spec.pages, spec.prot)],
        }
    }

    /// Mapped pages.
    pub fn live_pages(&self) -> u64 {
        self.segs.iter().map(|s| s.1 - s.0).sum()
    }

    /// Whether every page of `[start, end)` is mapped, and the union of their protections
    /// and the intersection (`(all, any)`), or `None` when some page is not mapped.
    pub fn covered(&self, start: u64, end: u64) -> Option<(Prot, Prot)> {
        let mut at = start;
        let mut all = Prot::from_bits(7).unwrap_or(Prot::NONE);
        let mut any = Prot::NONE;
        for &(s, e, p) in &self.segs {
            if e <= at {
                continue;
            }
            if s > at || at >= end {
                break;
            }
            all = Prot::from_bits(all.bits() & p.bits()).unwrap_or(Prot::NONE);
            any = any.union(p);
            at = e;
        }
        (at >= end).then_some((all, any))
    }

    /// Removes `[start, end)` from the mapped ranges (pages not mapped are skipped).
    fn cut(&mut self, start: u64, end: u64) {
        let mut out = Vec::with_capacity(self.segs.len() + 1);
        for &(s, e, p) in &self.segs {
            if e <= start || s >= end {
                out.push((s, e, p));
                continue;
            }
            if s < start {
                out.push((s, start, p));
            }
            if e > end {
                out.push((end, e, p));
            }
        }
        self.segs = out;
    }

    /// Sets the protection of `[start, end)`, which must be mapped.
    fn protect(&mut self, start: u64, end: u64, prot: Prot) {
        self.cut(start, end);
        let at = self.segs.partition_point(|s| s.0 < start);
        self.segs.insert(at, (start, end, prot));
    }
}

/// One process of the shadow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcShadow {
    /// Image sizes of its last exec (or its parent's).
    pub image: ImageSize,
    /// Heap pages above the initial break.
    pub heap_pages: u64,
    /// Its mappings by id.
    pub maps: HashMap<MapId, MapShadow>,
    /// Mapped pages of all its mappings, kept as they change (summing `maps` on every op
    /// made loading quadratic in live mappings).
    map_pages: u64,
}

impl ProcShadow {
    /// Pages of virtual memory the process has: image, heap and mapped pages. Constant time.
    pub fn virtual_pages(&self) -> u64 {
        let i = self.image;
        i.text_pages + i.data_pages + i.bss_pages + i.stack_pages + self.heap_pages + self.map_pages
    }

    /// Mapped pages of all its mappings (the running total behind [`Self::virtual_pages`]).
    pub fn mapped_pages(&self) -> u64 {
        self.map_pages
    }
}

/// Peak sizes seen while applying ops: what a replayer must be able to hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Most virtual pages one process had at once (must fit the paging format's user space:
    /// about 786,000 pages of 4 KiB under `i386`).
    pub peak_process_pages: u64,
    /// Most virtual pages of all live processes together (an upper bound on the frames a
    /// replay touching everything needs, without copy-on-write sharing).
    pub peak_total_pages: u64,
    /// Most processes alive at once.
    pub peak_processes: u64,
    /// Processes created.
    pub processes: u64,
}

/// An op that does not fit the state before it: its index in the trace and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShadowError {
    /// Index of the op in the trace.
    pub index: usize,
    /// What is wrong, naming pids and ids.
    pub message: String,
}

/// The shadow state of every process.
#[derive(Clone, Debug, Default)]
pub struct Shadow {
    procs: HashMap<Pid, ProcShadow>,
    seen_pids: HashSet<Pid>,
    seen_ids: HashSet<MapId>,
    total_pages: u64,
    footprint: Footprint,
}

fn range_ok(what: &str, offset: u64, pages: u64, extent: u64) -> Result<(u64, u64), String> {
    if pages == 0 {
        return Err(format!("{what}: empty range (pages=0)"));
    }
    if offset > MAX_PAGES || pages > MAX_PAGES || offset + pages > extent {
        return Err(format!(
            "{what}: pages {offset}..{} outside its {extent} pages",
            offset.saturating_add(pages)
        ));
    }
    Ok((offset, offset + pages))
}

impl Shadow {
    /// An empty shadow: no process exists.
    pub fn new() -> Shadow {
        Shadow::default()
    }

    /// The live process `pid`, if any.
    pub fn process(&self, pid: Pid) -> Option<&ProcShadow> {
        self.procs.get(&pid)
    }

    /// Peak sizes so far.
    pub fn footprint(&self) -> Footprint {
        self.footprint
    }

    /// Live processes.
    pub fn live(&self) -> usize {
        self.procs.len()
    }

    fn proc_mut(&mut self, pid: Pid) -> Result<&mut ProcShadow, String> {
        self.procs.get_mut(&pid).ok_or_else(|| format!("{pid} is not a live process"))
    }

    fn map_mut(&mut self, pid: Pid, id: MapId) -> Result<&mut MapShadow, String> {
        self.proc_mut(pid)?.maps.get_mut(&id).ok_or_else(|| format!("{pid} has no mapping {id}"))
    }

    fn new_id(&mut self, id: MapId) -> Result<(), String> {
        if !self.seen_ids.insert(id) {
            return Err(format!("mapping id {id} created twice"));
        }
        Ok(())
    }

    /// Applies `op`, or explains why it does not fit the current state (the state is then
    /// unchanged).
    pub fn apply(&mut self, op: &Op) -> Result<(), String> {
        if matches!(op, Op::Touch { .. } | Op::Discard { .. }) {
            // Sizes do not change.
            return self.apply_inner(op);
        }
        let before = op_pid_pages(self, op);
        self.apply_inner(op)?;
        let after = op_pid_pages(self, op);
        self.total_pages = self.total_pages - before + after;
        let f = &mut self.footprint;
        f.peak_total_pages = f.peak_total_pages.max(self.total_pages);
        f.peak_process_pages = f.peak_process_pages.max(after);
        f.peak_processes = f.peak_processes.max(self.procs.len() as u64);
        Ok(())
    }

    fn apply_inner(&mut self, op: &Op) -> Result<(), String> {
        match *op {
            Op::Fork { parent, child, .. } => {
                if parent == child {
                    return Err(format!("{parent} forks itself"));
                }
                let copy =
                    self.procs.get(&parent).ok_or_else(|| format!("{parent} is not a live process"))?.clone();
                if !self.seen_pids.insert(child) {
                    return Err(format!("fork child {child} already used"));
                }
                self.procs.insert(child, copy);
                self.footprint.processes += 1;
            }
            Op::Exec { pid, image } => {
                for v in [image.text_pages, image.data_pages, image.bss_pages, image.stack_pages] {
                    if v > MAX_PAGES {
                        return Err(format!("{pid}: image size {v} pages is absurd"));
                    }
                }
                if image.stack_pages == 0 {
                    return Err(format!("{pid}: image without stack pages"));
                }
                if let Some(p) = self.procs.get_mut(&pid) {
                    p.image = image;
                    p.heap_pages = 0;
                    p.maps.clear();
                    p.map_pages = 0;
                } else if self.seen_pids.insert(pid) {
                    self.procs
                        .insert(pid, ProcShadow { image, heap_pages: 0, maps: HashMap::new(), map_pages: 0 });
                    self.footprint.processes += 1;
                } else {
                    return Err(format!("{pid} has exited and cannot exec"));
                }
            }
            Op::Exit { pid } => {
                self.procs.remove(&pid).ok_or_else(|| format!("{pid} is not a live process"))?;
            }
            Op::Mmap { pid, id, spec } => {
                self.proc_mut(pid)?;
                range_ok("mmap", 0, spec.pages, MAX_PAGES)?;
                self.new_id(id)?;
                let p = self.proc_mut(pid)?;
                p.maps.insert(id, MapShadow::new(&spec));
                p.map_pages += spec.pages;
            }
            Op::MmapOver { pid, id, over, offset, spec } => {
                let m = self.map_mut(pid, over)?;
                let (s, e) = range_ok("mmap over", offset, spec.pages, m.pages)?;
                if m.covered(s, e).is_none() {
                    return Err(format!("{pid}: mmap over {over} pages {s}..{e}, not all mapped"));
                }
                if self.seen_ids.contains(&id) {
                    return Err(format!("mapping id {id} created twice"));
                }
                self.map_mut(pid, over)?.cut(s, e);
                self.new_id(id)?;
                let p = self.proc_mut(pid)?;
                p.maps.insert(id, MapShadow::new(&spec));
                // [s, e) was all mapped (checked above), so the cut removed e - s pages.
                p.map_pages = p.map_pages - (e - s) + spec.pages;
            }
            Op::Munmap { pid, id, offset, pages } => {
                let m = self.map_mut(pid, id)?;
                let (s, e) = range_ok("munmap", offset, pages, m.pages)?;
                if m.covered(s, e).is_none() {
                    return Err(format!("{pid}: munmap {id} pages {s}..{e}, not all mapped"));
                }
                m.cut(s, e);
                let empty = m.segs.is_empty();
                let p = self.proc_mut(pid)?;
                p.map_pages -= e - s;
                if empty {
                    p.maps.remove(&id);
                }
            }
            Op::Mprotect { pid, id, offset, pages, prot } => {
                let m = self.map_mut(pid, id)?;
                let (s, e) = range_ok("mprotect", offset, pages, m.pages)?;
                if m.covered(s, e).is_none() {
                    return Err(format!("{pid}: mprotect {id} pages {s}..{e}, not all mapped"));
                }
                m.protect(s, e, prot);
            }
            Op::Mremap { pid, id, new_pages } => {
                let m = self.map_mut(pid, id)?;
                range_ok("mremap", 0, new_pages, MAX_PAGES)?;
                let live = m.live_pages();
                if m.segs.first().map(|s| s.0) != Some(0) || m.covered(0, live).is_none() {
                    return Err(format!(
                        "{pid}: mremap {id} with holes (only a whole mapping from page 0 moves)"
                    ));
                }
                let last = m.segs.last().map(|s| s.2).unwrap_or(m.created);
                if new_pages < live {
                    m.cut(new_pages, live);
                } else if new_pages > live {
                    m.segs.push((live, new_pages, last));
                }
                m.pages = new_pages;
                let p = self.proc_mut(pid)?;
                p.map_pages = p.map_pages - live + new_pages;
            }
            Op::Brk { pid, heap_pages } => {
                if heap_pages > MAX_PAGES {
                    return Err(format!("{pid}: brk of {heap_pages} pages is absurd"));
                }
                self.proc_mut(pid)?.heap_pages = heap_pages;
            }
            Op::Discard { pid, id, offset, pages } => {
                let m = self.map_mut(pid, id)?;
                let (s, e) = range_ok("discard", offset, pages, m.pages)?;
                if m.covered(s, e).is_none() {
                    return Err(format!("{pid}: discard {id} pages {s}..{e}, not all mapped"));
                }
            }
            Op::Touch { pid, place, pages, write } => {
                let p = self.proc_mut(pid)?;
                let img = p.image;
                let (extent, what) = match place {
                    Place::Text(_) => (img.text_pages, "text"),
                    Place::Data(_) => (img.data_pages + img.bss_pages, "data"),
                    Place::Heap(_) => (p.heap_pages, "heap"),
                    Place::Stack(_) => (img.stack_pages, "stack"),
                    Place::Map(id, _) => {
                        let m = p.maps.get(&id).ok_or_else(|| format!("{pid} has no mapping {id}"))?;
                        (m.pages, "mapping")
                    }
                };
                let (s, e) = range_ok(&format!("touch {what}"), place.offset(), pages, extent)?;
                if let Place::Map(id, _) = place {
                    let m = &p.maps[&id];
                    let (all, _) = m
                        .covered(s, e)
                        .ok_or_else(|| format!("{pid}: touch {id} pages {s}..{e}, not all mapped"))?;
                    if !all.accessible() || (write && !all.writable()) {
                        return Err(format!(
                            "{pid}: {} of {id} pages {s}..{e} not allowed by protection {all}",
                            if write { "write" } else { "read" }
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

fn op_pid_pages(s: &Shadow, op: &Op) -> u64 {
    let pid = match *op {
        Op::Fork { child, .. } => child,
        _ => op.pid(),
    };
    s.procs.get(&pid).map(ProcShadow::virtual_pages).unwrap_or(0)
}

/// Checks that every op of `trace` fits the state the ops before it leave: processes exist
/// and are not reused, mapping ids are created once and named only by processes that have
/// them, ranges are mapped, touches respect protections. Returns the footprint, or the first
/// inconsistent op's index and why.
pub fn validate(trace: &Trace) -> Result<Footprint, ShadowError> {
    let mut s = Shadow::new();
    for (index, op) in trace.ops.iter().enumerate() {
        s.apply(op).map_err(|message| ShadowError { index, message })?;
    }
    Ok(s.footprint())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(pages: u64, prot: Prot) -> MapSpec {
        MapSpec { pages, prot, kind: MapKind::Private, prealloc: false }
    }

    fn trace(ops: Vec<Op>) -> Trace {
        Trace { ops, ..Trace::default() }
    }

    const P1: Pid = Pid(1);
    const P2: Pid = Pid(2);
    const M1: MapId = MapId(1);
    const M2: MapId = MapId(2);

    fn exec(pid: Pid) -> Op {
        Op::Exec { pid, image: ImageSize::DEFAULT }
    }

    use crate::op::ForkKind;

    #[test]
    fn consistent_trace_passes_with_footprint() {
        let t = trace(vec![
            exec(P1),
            Op::Mmap { pid: P1, id: M1, spec: spec(10, Prot::NONE) },
            Op::MmapOver { pid: P1, id: M2, over: M1, offset: 2, spec: spec(3, Prot::RW) },
            Op::Touch { pid: P1, place: Place::Map(M2, 0), pages: 3, write: true },
            Op::Fork { parent: P1, child: P2, kind: ForkKind::Fork },
            Op::Munmap { pid: P2, id: M1, offset: 0, pages: 2 },
            Op::Mremap { pid: P2, id: M2, new_pages: 5 },
            Op::Exit { pid: P2 },
            Op::Exit { pid: P1 },
        ]);
        let f = validate(&t).unwrap();
        let img = 32 + 4 + 4 + 8;
        assert_eq!(f.peak_process_pages, img + 10);
        assert_eq!(f.peak_total_pages, 2 * (img + 10));
        assert_eq!(f.processes, 2);
    }

    #[test]
    fn running_mapped_total_matches_the_mappings_after_every_op() {
        let ops = vec![
            exec(P1),
            Op::Mmap { pid: P1, id: M1, spec: spec(10, Prot::NONE) },
            Op::MmapOver { pid: P1, id: M2, over: M1, offset: 2, spec: spec(3, Prot::RW) },
            Op::Mprotect { pid: P1, id: M1, offset: 6, pages: 2, prot: Prot::READ },
            Op::Fork { parent: P1, child: P2, kind: ForkKind::Fork },
            Op::Munmap { pid: P2, id: M1, offset: 0, pages: 2 },
            Op::Mremap { pid: P2, id: M2, new_pages: 7 },
            Op::Mremap { pid: P1, id: M2, new_pages: 1 },
            Op::Munmap { pid: P1, id: M2, offset: 0, pages: 1 },
            Op::Mmap { pid: P2, id: MapId(3), spec: spec(4, Prot::RW) },
            exec(P2),
            Op::Mmap { pid: P2, id: MapId(4), spec: spec(5, Prot::RW) },
        ];
        let mut s = Shadow::new();
        for (i, op) in ops.iter().enumerate() {
            s.apply(op).unwrap_or_else(|e| panic!("op {i}: {e}"));
            for pid in [P1, P2] {
                if let Some(p) = s.process(pid) {
                    let sum: u64 = p.maps.values().map(MapShadow::live_pages).sum();
                    assert_eq!(p.mapped_pages(), sum, "{pid} after op {i}");
                }
            }
        }
        assert_eq!(s.process(P1).unwrap().mapped_pages(), 7);
        assert_eq!(s.process(P2).unwrap().mapped_pages(), 5);
    }

    #[test]
    fn inconsistencies_are_reported_with_index() {
        let cases: Vec<(Vec<Op>, &str)> = vec![
            (vec![Op::Exit { pid: P1 }], "not a live process"),
            (
                vec![
                    exec(P1),
                    Op::Mmap { pid: P1, id: M1, spec: spec(2, Prot::READ) },
                    Op::Touch { pid: P1, place: Place::Map(M1, 0), pages: 1, write: true },
                ],
                "not allowed",
            ),
            (
                vec![
                    exec(P1),
                    Op::Mmap { pid: P1, id: M1, spec: spec(2, Prot::RW) },
                    Op::Mmap { pid: P1, id: M1, spec: spec(2, Prot::RW) },
                ],
                "created twice",
            ),
            (
                vec![
                    exec(P1),
                    Op::Mmap { pid: P1, id: M1, spec: spec(4, Prot::RW) },
                    Op::Munmap { pid: P1, id: M1, offset: 1, pages: 1 },
                    Op::Touch { pid: P1, place: Place::Map(M1, 0), pages: 3, write: false },
                ],
                "not all mapped",
            ),
            (vec![exec(P1), Op::Exit { pid: P1 }, exec(P1)], "cannot exec"),
            (vec![exec(P1), Op::Touch { pid: P1, place: Place::Heap(0), pages: 1, write: true }], "outside"),
        ];
        for (ops, want) in cases {
            let n = ops.len();
            let e = validate(&trace(ops)).unwrap_err();
            assert_eq!(e.index, n - 1, "{e:?}");
            assert!(e.message.contains(want), "{e:?} lacks {want}");
        }
    }
}
