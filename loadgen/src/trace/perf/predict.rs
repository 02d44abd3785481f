//! The page faults the host kernel would take for a perf capture's program with anonymous
//! folios of another size: `predicted_host_faults` of `vmstorm replay CAPTURE --folio SIZE`.
//!
//! MINIX has no counterpart (4 KiB pages only). The prediction cannot come from the replay
//! itself: the trace names memory by mapping and page offset and replays into vmstorm's own
//! addresses, so the replay's server never sees the alignment Linux decided with. Instead
//! the capture's recorded faults are replayed a second time, with the facts the importer
//! kept for each ([`TouchFault`]: virtual page, error code, area kind, `MAP_STACK`, the
//! area's extent in the fault's 2 MiB block):
//!
//! - **The folio decision is the server's.** A server is booted with the folio size on; each
//!   traced process gets a process of its own (forked from INIT, or from its parent's), and
//!   every fault in private anonymous memory (not `MAP_STACK`, which Linux keeps at 4 KiB) is
//!   touched there at its **recorded virtual address**, after the process's region inside the
//!   fault's 2 MiB block has been made exactly the fact's window (`MAP_FIXED` maps of the
//!   missing runs, which the server merges as Linux merges VMAs; unmaps of the rest). A
//!   missing-page write takes a folio when the server's fault path maps one
//!   (`folio_faults` moves): by `vmstorm_core::calls::folio`'s rules, the same code a replay
//!   runs, not a copy of them.
//! - **The count is the model's.** The server has no zero page and no file pages, so the
//!   faults Linux takes are counted by a per-process model of which pages are present and
//!   how (writable, read-only, huge zero page): every recorded fault counts as it was
//!   recorded unless an earlier folio made its page present and writable; a read of a
//!   missing page maps it read-only (a later write faults again); fork makes writable pages
//!   read-only in both; exec empties the process; munmap and discard remove pages (a
//!   mapping's address is learnt from its first recorded fault). Every anonymous page the
//!   model makes present is touched in the server too, so the server's "none of the block's
//!   entries is present" sees what Linux had.
//!
//! At 2 MiB ([`PMD_PAGES`]: PMD-mapped THP, which the server does not have yet) the model's
//! own rule decides: a whole 2 MiB window, no page table yet for the block, the huge zero
//! page on a read. `docs/large-folios.md` §9–10 give Linux's rules and this design.

use std::collections::{HashMap, HashSet};

use vmstorm_core::client::{self, MapFlags, MapProt, MmapArgs};
use vmstorm_core::endpoint::INIT_PROC_NR;
use vmstorm_core::{
    Access, Endpoint, FolioSize, FrameAllocator, PagingFormat, PagingKind, Strategy, VirtAddr, Vm, VmConfig,
    VmJob, PAGE_SIZE,
};

use super::facts::{TouchFault, PMD_PAGES};
use crate::op::{MapId, Op, Pid, Place};

/// A page's state in the model.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PageState {
    /// Mapped writable: a later access takes no fault.
    Writable,
    /// Mapped read-only (the zero page, a file page, or shared after a fork): a write faults.
    ReadOnly,
    /// Part of a 2 MiB range mapped to the huge zero page: a write takes one fault for it all.
    HugeZero,
}

/// Why no prediction could be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoPrediction {
    /// The facts do not pair with the trace's touches (one fact per touch, in order).
    FactsDoNotMatch {
        /// Touches in the trace.
        touches: usize,
        /// Facts kept by the importer.
        facts: usize,
    },
    /// A folio size the model does not take (a power of two of pages up to [`PMD_PAGES`]).
    BadSize(u64),
    /// The server the anonymous faults are replayed into refused a step (or had no aligned
    /// run of frames for a folio, which Linux would have had).
    Server(String),
}

impl std::fmt::Display for NoPrediction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoPrediction::FactsDoNotMatch { touches, facts } => {
                write!(f, "the capture's {facts} fault facts do not pair with its {touches} touches")
            }
            NoPrediction::BadSize(p) => write!(f, "{p} pages is not a folio size"),
            NoPrediction::Server(m) => write!(f, "replaying the anonymous faults into the server: {m}"),
        }
    }
}

/// The host's predicted page faults for the capture `ops` (with its facts `facts`, one per
/// touch, in order) with anonymous folios of `folio` (4 KiB: the capture's own count when
/// it was recorded with large folios off).
///
/// # Errors
/// Facts that do not pair with the touches.
pub fn predict_host_faults(ops: &[Op], facts: &[TouchFault], folio: FolioSize) -> Result<u64, NoPrediction> {
    predict_with_pages(ops, facts, folio.pages())
}

/// [`predict_host_faults`] for a folio of `pages` pages: 1 (4 KiB), a power of two up to
/// 256 (mTHP: the server decides each anonymous write fault), or [`PMD_PAGES`]
/// (PMD-mapped THP with the huge zero page: this module's own rule, the server has no PMD
/// folios yet).
///
/// # Errors
/// Facts that do not pair with the touches, a size that is not a folio size, or a server
/// step that failed.
pub fn predict_with_pages(ops: &[Op], facts: &[TouchFault], pages: u64) -> Result<u64, NoPrediction> {
    if !pages.is_power_of_two() || pages > PMD_PAGES {
        return Err(NoPrediction::BadSize(pages));
    }
    let touches = ops.iter().filter(|op| matches!(op, Op::Touch { .. })).count();
    if touches != facts.len() {
        return Err(NoPrediction::FactsDoNotMatch { touches, facts: facts.len() });
    }
    let Some(size) = FolioSize::ALL.into_iter().find(|f| f.pages() == pages && pages > 1) else {
        return run(ops, facts, pages, &mut NoServer);
    };
    // The default strategy in x86-64 tables whatever the replay's: the recorded addresses
    // need x86-64's 47-bit user space, and the allocator and fork policy do not change a
    // folio decision while the arena has aligned runs (a fallback fails the prediction,
    // below).
    let strategy = Strategy { folio: size, paging: PagingKind::X86_64, ..Strategy::default() };
    strategy
        .with_vm(VmConfig::with_bytes(ARENA_BYTES), Job { ops, facts, pages })
        .map_err(|e| NoPrediction::Server(format!("cannot boot: {e}")))?
}

/// The arena of the prediction's server: the anonymous pages a capture touches, with their
/// folios (host memory is taken only as frames are used).
const ARENA_BYTES: u64 = 1 << 30;

/// The replay of the ops and facts through the model, the anonymous faults through `anon`.
fn run(ops: &[Op], facts: &[TouchFault], pages: u64, anon: &mut dyn Anon) -> Result<u64, NoPrediction> {
    let mut m = Model { pages, ..Model::default() };
    let mut facts = facts.iter();
    for op in ops {
        match *op {
            Op::Fork { parent, child, .. } => {
                m.fork(parent, child);
                anon.fork(parent, child)?;
            }
            Op::Exec { pid, .. } => {
                m.state.insert(pid, HashMap::new());
                m.tables.insert(pid, HashSet::new());
                anon.gone(pid)?;
            }
            Op::Exit { pid } => anon.gone(pid)?,
            Op::Munmap { pid, id, offset, pages: n } | Op::Discard { pid, id, offset, pages: n } => {
                if let Some(&b) = m.base.get(&(pid, id)) {
                    // A bogus capture may name ranges past the address space: clip, and
                    // visit the pages the model holds rather than the range.
                    let start = b.saturating_add(offset);
                    let end = start.saturating_add(n);
                    m.state.entry(pid).or_default().retain(|p, _| !(start..end).contains(p));
                    anon.dropped(pid, start, end - start, matches!(op, Op::Discard { .. }))?;
                }
            }
            Op::Touch { pid, place, .. } => {
                // Counted above: one fact per touch.
                let Some(f) = facts.next() else { break };
                if let Place::Map(id, off) = place {
                    m.base.insert((pid, id), f.page.wrapping_sub(off));
                }
                m.touch(pid, f, anon)?;
            }
            _ => {}
        }
    }
    Ok(m.faults)
}

/// Where the model's private anonymous pages are mirrored, and who decides whether a
/// missing-page write takes a folio.
trait Anon {
    /// `child` is a fork of `parent`.
    fn fork(&mut self, parent: Pid, child: Pid) -> Result<(), NoPrediction>;
    /// `pid` exited or replaced its image.
    fn gone(&mut self, pid: Pid) -> Result<(), NoPrediction>;
    /// `pid`'s pages `[page, page + n)` were unmapped (or discarded).
    fn dropped(&mut self, pid: Pid, page: u64, n: u64, discard: bool) -> Result<(), NoPrediction>;
    /// `pid` accessed the page of `f` (private anonymous, not `MAP_STACK`) and the model
    /// made it present; returns whether the access mapped a large folio around it.
    fn touch(&mut self, pid: Pid, f: &TouchFault, write: bool) -> Result<bool, NoPrediction>;
}

/// No mirror: no large folio is ever taken (4 KiB), or the model's PMD rule decides.
struct NoServer;

impl Anon for NoServer {
    fn fork(&mut self, _: Pid, _: Pid) -> Result<(), NoPrediction> {
        Ok(())
    }
    fn gone(&mut self, _: Pid) -> Result<(), NoPrediction> {
        Ok(())
    }
    fn dropped(&mut self, _: Pid, _: u64, _: u64, _: bool) -> Result<(), NoPrediction> {
        Ok(())
    }
    fn touch(&mut self, _: Pid, _: &TouchFault, _: bool) -> Result<bool, NoPrediction> {
        Ok(false)
    }
}

/// The prediction on a booted server with the folio size on.
struct Job<'a> {
    ops: &'a [Op],
    facts: &'a [TouchFault],
    pages: u64,
}

impl VmJob for Job<'_> {
    type Output = Result<u64, NoPrediction>;
    fn run<F: FrameAllocator, P: PagingFormat>(self, vm: &mut Vm<F, P>) -> Self::Output {
        let mut server = Server { vm, procs: HashMap::new(), covered: HashMap::new() };
        let n = run(self.ops, self.facts, self.pages, &mut server)?;
        let fallbacks = server.vm.stats().folio_fallbacks;
        if fallbacks > 0 {
            return Err(NoPrediction::Server(format!("{fallbacks} folio faults found no free aligned run")));
        }
        Ok(n)
    }
}

/// The traced processes' private anonymous memory at its recorded virtual addresses, in
/// the server: one process per traced process (forked from INIT, or from its parent), a
/// private anonymous region over each fault's window, and the model's anonymous pages
/// touched in order. The server's large-folio fault path makes the folio decision.
struct Server<'v, F: FrameAllocator, P: PagingFormat> {
    vm: &'v mut Vm<F, P>,
    procs: HashMap<Pid, Endpoint>,
    /// Pages of each process's 2 MiB blocks covered by a region the prediction mapped
    /// (bit `i` of block `b`: page `b * 512 + i`).
    covered: HashMap<(Pid, u64), [u64; 8]>,
}

fn server_err(what: &str, e: impl std::fmt::Display) -> NoPrediction {
    NoPrediction::Server(format!("{what}: {e}"))
}

impl<F: FrameAllocator, P: PagingFormat> Server<'_, F, P> {
    fn endpoint(&mut self, pid: Pid) -> Result<Endpoint, NoPrediction> {
        if let Some(&ep) = self.procs.get(&pid) {
            return Ok(ep);
        }
        let ep = client::fork(self.vm, INIT_PROC_NR).map_err(|e| server_err("fork from INIT", e))?;
        self.procs.insert(pid, ep);
        Ok(ep)
    }

    /// Makes the region inside `f`'s 2 MiB block exactly its window: maps the window's
    /// uncovered runs (`MAP_FIXED`, merged with their neighbours by the server as Linux
    /// merges the VMAs) and unmaps covered pages outside it.
    fn shape(&mut self, pid: Pid, ep: Endpoint, f: &TouchFault) -> Result<(), NoPrediction> {
        let block = f.page / PMD_PAGES;
        let bits = self.covered.entry((pid, block)).or_insert([0; 8]);
        let base = block * PMD_PAGES;
        let want = |i: u64| (f.window.0..f.window.1).contains(&(base + i));
        let has = |bits: &[u64; 8], i: u64| bits[(i / 64) as usize] & (1 << (i % 64)) != 0;
        let mut runs: Vec<(u64, u64, bool)> = Vec::new();
        let mut i = 0;
        while i < PMD_PAGES {
            let (w, h) = (want(i), has(bits, i));
            if w == h {
                i += 1;
                continue;
            }
            let start = i;
            while i < PMD_PAGES && want(i) == w && has(bits, i) == h {
                i += 1;
            }
            runs.push((start, i, w));
        }
        for &(s, e, map) in &runs {
            (s..e).for_each(|i| {
                let w = &mut bits[(i / 64) as usize];
                if map {
                    *w |= 1 << (i % 64)
                } else {
                    *w &= !(1 << (i % 64))
                }
            });
        }
        for (s, e, map) in runs {
            let va = VirtAddr((base + s) * PAGE_SIZE);
            let len = (e - s) * PAGE_SIZE;
            if map {
                let args = MmapArgs {
                    addr: Some(va),
                    len,
                    prot: MapProt::RW,
                    flags: MapFlags::ANON | MapFlags::PRIVATE | MapFlags::FIXED,
                };
                client::mmap(self.vm, ep, &args)
                    .map_err(|e| server_err(&format!("mmap at {:#x}", va.0), e))?;
            } else {
                client::munmap(self.vm, ep, va, len)
                    .map_err(|e| server_err(&format!("munmap at {:#x}", va.0), e))?;
            }
        }
        Ok(())
    }
}

impl<F: FrameAllocator, P: PagingFormat> Anon for Server<'_, F, P> {
    fn fork(&mut self, parent: Pid, child: Pid) -> Result<(), NoPrediction> {
        let pep = self.endpoint(parent)?;
        let cep = client::fork(self.vm, pep).map_err(|e| server_err("fork", e))?;
        if let Some(old) = self.procs.insert(child, cep) {
            client::exit(self.vm, old).map_err(|e| server_err("exit", e))?;
        }
        let inherited: Vec<_> =
            self.covered.iter().filter(|((q, _), _)| *q == parent).map(|((_, b), v)| (*b, *v)).collect();
        self.covered.retain(|(q, _), _| *q != child);
        self.covered.extend(inherited.into_iter().map(|(b, v)| ((child, b), v)));
        Ok(())
    }

    fn gone(&mut self, pid: Pid) -> Result<(), NoPrediction> {
        if let Some(ep) = self.procs.remove(&pid) {
            client::exit(self.vm, ep).map_err(|e| server_err("exit", e))?;
        }
        self.covered.retain(|(q, _), _| *q != pid);
        Ok(())
    }

    fn dropped(&mut self, pid: Pid, page: u64, n: u64, discard: bool) -> Result<(), NoPrediction> {
        let Some(&ep) = self.procs.get(&pid) else { return Ok(()) };
        let end = page.saturating_add(n);
        // Only the covered pages are the prediction's to drop; others were never mapped.
        let mut blocks: Vec<u64> = self
            .covered
            .keys()
            .filter(|(q, b)| *q == pid && b * PMD_PAGES < end && (b + 1) * PMD_PAGES > page)
            .map(|&(_, b)| b)
            .collect();
        blocks.sort_unstable();
        let bit = |i: u64| ((i / 64) as usize, 1u64 << (i % 64));
        for block in blocks {
            let base = block * PMD_PAGES;
            let Some(bits) = self.covered.get_mut(&(pid, block)) else { continue };
            let (from, to) = (page.max(base) - base, end.min(base + PMD_PAGES) - base);
            let mut i = from;
            while i < to {
                let (w, m) = bit(i);
                if bits[w] & m == 0 {
                    i += 1;
                    continue;
                }
                let s = i;
                while i < to && bits[bit(i).0] & bit(i).1 != 0 {
                    i += 1;
                }
                let (va, len) = (VirtAddr((base + s) * PAGE_SIZE), (i - s) * PAGE_SIZE);
                if discard {
                    client::discard(self.vm, ep, va, len).map_err(|e| server_err("discard", e))?;
                } else {
                    (s..i).for_each(|x| bits[bit(x).0] &= !bit(x).1);
                    client::munmap(self.vm, ep, va, len).map_err(|e| server_err("munmap", e))?;
                }
            }
        }
        Ok(())
    }

    fn touch(&mut self, pid: Pid, f: &TouchFault, write: bool) -> Result<bool, NoPrediction> {
        let ep = self.endpoint(pid)?;
        self.shape(pid, ep, f)?;
        let before = self.vm.stats().folio_faults;
        let va = VirtAddr(f.page * PAGE_SIZE);
        client::touch(self.vm, ep, va, Access { write, user: true })
            .map_err(|e| server_err(&format!("touch of {:#x}", va.0), e))?;
        Ok(self.vm.stats().folio_faults != before)
    }
}

/// Per-process page states and the predicted count.
#[derive(Default)]
struct Model {
    /// Folio size in pages.
    pages: u64,
    state: HashMap<Pid, HashMap<u64, PageState>>,
    /// 2 MiB blocks of each process that have a page table (PMD model only).
    tables: HashMap<Pid, HashSet<u64>>,
    /// Linux page of offset 0 of each mapping, learnt from its touches.
    base: HashMap<(Pid, MapId), u64>,
    faults: u64,
}

impl Model {
    fn fork(&mut self, parent: Pid, child: Pid) {
        let p = self.state.entry(parent).or_default();
        p.values_mut().for_each(|s| {
            if *s == PageState::Writable {
                *s = PageState::ReadOnly
            }
        });
        let copy = p.clone();
        self.state.insert(child, copy);
        let t = self.tables.entry(parent).or_default().clone();
        self.tables.insert(child, t);
        let inherited: Vec<_> =
            self.base.iter().filter(|((q, _), _)| *q == parent).map(|((_, id), b)| (*id, *b)).collect();
        self.base.extend(inherited.into_iter().map(|(id, b)| ((child, id), b)));
    }

    fn set(&mut self, pid: Pid, from: u64, n: u64, s: PageState) {
        let m = self.state.entry(pid).or_default();
        (from..from + n).for_each(|p| {
            m.insert(p, s);
        });
    }

    fn touch(&mut self, pid: Pid, f: &TouchFault, anon: &mut dyn Anon) -> Result<(), NoPrediction> {
        let pages = self.pages;
        let block = f.page & !(pages - 1);
        let cur = self.state.entry(pid).or_default().get(&f.page).copied();
        if pages == PMD_PAGES {
            let pmd = f.page / PMD_PAGES;
            if cur == Some(PageState::HugeZero) {
                if f.write() {
                    self.faults += 1;
                    self.set(pid, block, pages, PageState::Writable);
                }
                return Ok(());
            }
            let t = self.tables.entry(pid).or_default();
            let whole = f.anon_private() && !f.no_huge && f.window == (block, block + pages);
            if cur.is_none() && !f.present() && whole && !t.contains(&pmd) {
                self.faults += 1;
                let s = if f.write() { PageState::Writable } else { PageState::HugeZero };
                self.set(pid, block, pages, s);
                return Ok(());
            }
            if cur.is_none() {
                t.insert(pmd);
            }
        }
        // Private anonymous memory a folio may cover: mirrored in the server, so that its
        // "none of the block's entries is present" sees what the model has present.
        let mirrored = f.anon_private() && !f.no_huge;
        match (cur, f.present(), f.write()) {
            (Some(PageState::Writable), _, _) | (Some(_), _, false) => {}
            (Some(_), _, true) | (None, true, _) => {
                self.faults += 1;
                self.set(pid, f.page, 1, PageState::Writable);
                if mirrored && cur.is_none() {
                    anon.touch(pid, f, false)?;
                }
            }
            (None, false, false) => {
                self.faults += 1;
                self.set(pid, f.page, 1, PageState::ReadOnly);
                if mirrored {
                    anon.touch(pid, f, false)?;
                }
            }
            (None, false, true) => {
                self.faults += 1;
                // The server's fault path decides: a whole aligned folio when the block
                // lies inside the region (the window) and none of its pages is present.
                if mirrored && anon.touch(pid, f, true)? {
                    self.set(pid, block, pages, PageState::Writable);
                } else {
                    self.set(pid, f.page, 1, PageState::Writable);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{MapKind, Prot};
    use crate::trace::perf::AreaKind;

    fn heap_write(page: u64, window: (u64, u64)) -> TouchFault {
        TouchFault { page, code: 0x6, kind: AreaKind::Heap, prot: Prot::RW, no_huge: false, window }
    }

    fn touches(n: usize) -> Vec<Op> {
        (0..n as u64)
            .map(|k| Op::Touch { pid: Pid(1), place: Place::Heap(k), pages: 1, write: true })
            .collect()
    }

    #[test]
    fn a_folio_absorbs_the_faults_of_its_block_only_when_it_fits() {
        // Only the server maps folios here (the model has no mTHP rule of its own), so the
        // counts below 8 are its decisions.
        // 8 writes to consecutive heap pages, the heap 16 KiB-aligned and 8 pages long.
        let facts: Vec<TouchFault> = (0..8).map(|k| heap_write(0x1000 + k, (0x1000, 0x1008))).collect();
        let ops = touches(8);
        assert_eq!(predict_host_faults(&ops, &facts, FolioSize::K4), Ok(8));
        assert_eq!(predict_host_faults(&ops, &facts, FolioSize::K16), Ok(2));
        assert_eq!(predict_host_faults(&ops, &facts, FolioSize::K32), Ok(1));
        // 64 KiB does not fit in the 8-page heap: every fault stays 4 KiB.
        assert_eq!(predict_host_faults(&ops, &facts, FolioSize::K64), Ok(8));
    }

    #[test]
    fn a_partly_populated_block_falls_back_and_stack_mappings_never_take_folios() {
        // A read of page 1 maps it (zero page): the write to page 0 then sees its block
        // partly populated and stays 4 KiB.
        let mut facts = vec![heap_write(0x2001, (0x2000, 0x2010)), heap_write(0x2000, (0x2000, 0x2010))];
        facts[0].code = 0x4;
        facts.push(heap_write(0x2002, (0x2000, 0x2010)));
        assert_eq!(predict_host_faults(&touches(3), &facts, FolioSize::K16), Ok(3));
        let stack: Vec<TouchFault> = (0..4)
            .map(|k| TouchFault {
                kind: AreaKind::Map(MapKind::Private),
                no_huge: true,
                ..heap_write(0x3000 + k, (0x3000, 0x3004))
            })
            .collect();
        assert_eq!(predict_host_faults(&touches(4), &stack, FolioSize::K16), Ok(4));
    }

    #[test]
    fn an_unmapped_block_takes_a_folio_again_and_bogus_ranges_are_clipped() {
        let map = |page: u64| TouchFault {
            kind: AreaKind::Map(MapKind::Private),
            ..heap_write(page, (0x4000, 0x4010))
        };
        let (pid, id) = (Pid(1), MapId(1));
        let touch = |k: u64| Op::Touch { pid, place: Place::Map(id, k), pages: 1, write: true };
        let ops = vec![
            touch(0),
            touch(1),
            Op::Munmap { pid, id, offset: 0, pages: 4 },
            touch(1),
            touch(2),
            // Past the end of any address space: clipped, not a panic or a long loop.
            Op::Munmap { pid, id, offset: u64::MAX - 2, pages: u64::MAX },
            Op::Discard { pid, id, offset: 8, pages: 1 << 40 },
        ];
        let facts = [map(0x4000), map(0x4001), map(0x4001), map(0x4002)];
        // One folio, then (the block unmapped and empty again) one more.
        assert_eq!(predict_host_faults(&ops, &facts, FolioSize::K16), Ok(2));
        assert_eq!(predict_host_faults(&ops, &facts, FolioSize::K4), Ok(4));
    }

    #[test]
    fn facts_that_do_not_pair_are_refused() {
        let facts = vec![heap_write(0x1000, (0x1000, 0x1004))];
        assert_eq!(
            predict_host_faults(&touches(2), &facts, FolioSize::K16),
            Err(NoPrediction::FactsDoNotMatch { touches: 2, facts: 1 })
        );
        assert_eq!(predict_with_pages(&touches(1), &facts, 3), Err(NoPrediction::BadSize(3)));
    }
}
