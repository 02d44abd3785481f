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
//! At 2 MiB ([`PMD_PAGES`]: PMD-mapped THP, `--huge always`) the model's own rule decides: a
//! whole 2 MiB window, no page table yet for the block, the huge zero page on a read, a
//! write to it taking a whole page. At the recorded placement the server (booted with huge
//! pages on, in x86-64 tables: 2 MiB blocks as the host's) is fed the same accesses and
//! must make the same decision at every PMD fault and map no huge page elsewhere, or the
//! prediction fails: the rule is the core's, restated here only because
//! [`predict_range`] replays a capture hundreds of times without a server. [`predict_range`] gives the least and most
//! faults over the placements address-space randomization may choose, with two placement
//! rules of the kernel the server has no counterpart of (mappings the kernel aligns to
//! 2 MiB, and those placed after them, keep their place on the grid). `docs/large-folios.md`
//! §9–11 give Linux's rules and this design.

use hashbrown::{HashMap, HashSet};

use vmstorm_core::client::{self, MapFlags, MapProt, MmapArgs};
use vmstorm_core::endpoint::INIT_PROC_NR;
use vmstorm_core::{
    Access, Endpoint, FolioSize, FrameAllocator, HugePolicy, PagingFormat, PagingKind, Strategy, VirtAddr,
    Vm, VmConfig, VmJob, PAGE_SIZE,
};

use super::facts::{Base, TouchFault, PMD_PAGES};
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
/// touch, in order) with anonymous folios of `folio` below 2 MiB and PMD-mapped 2 MiB pages
/// when `huge` is `always` (4 KiB and `never`: the capture's own count when it was recorded
/// with large folios off), at the placement the capture recorded.
///
/// # Errors
/// Facts that do not pair with the touches, or a server step that failed.
pub fn predict_host_faults(
    ops: &[Op],
    facts: &[TouchFault],
    folio: FolioSize,
    huge: HugePolicy,
) -> Result<u64, NoPrediction> {
    predict(ops, facts, folio.pages(), huge == HugePolicy::Always)
}

/// [`predict_host_faults`] for a folio of `pages` pages: 1 (4 KiB), a power of two up to
/// 256 (mTHP: the server decides each anonymous write fault), or [`PMD_PAGES`]
/// (PMD-mapped THP alone, with the huge zero page: this module's rule).
///
/// # Errors
/// Facts that do not pair with the touches, a size that is not a folio size, or a server
/// step that failed.
pub fn predict_with_pages(ops: &[Op], facts: &[TouchFault], pages: u64) -> Result<u64, NoPrediction> {
    if !pages.is_power_of_two() || pages > PMD_PAGES {
        return Err(NoPrediction::BadSize(pages));
    }
    if pages == PMD_PAGES {
        predict(ops, facts, 1, true)
    } else {
        predict(ops, facts, pages, false)
    }
}

/// The prediction with mTHP folios of `pages` pages (1: none) and PMD pages when `huge`.
fn predict(ops: &[Op], facts: &[TouchFault], pages: u64, huge: bool) -> Result<u64, NoPrediction> {
    let touches = ops.iter().filter(|op| matches!(op, Op::Touch { .. })).count();
    if touches != facts.len() {
        return Err(NoPrediction::FactsDoNotMatch { touches, facts: facts.len() });
    }
    let size = FolioSize::ALL.into_iter().find(|f| f.pages() == pages).unwrap_or(FolioSize::K4);
    if size == FolioSize::K4 && !huge {
        return run(ops, facts, pages, huge, &mut NoServer);
    }
    // The default strategy in x86-64 tables (2 MiB huge pages, as the host's) whatever the
    // replay's: the recorded addresses need x86-64's 47-bit user space, and the allocator
    // and fork policy do not change a folio decision while the arena has aligned runs (a
    // fallback fails the prediction, below). With huge pages the model decides each PMD
    // fault and the server must make the same decision (else the prediction fails).
    let policy = if huge { HugePolicy::Always } else { HugePolicy::Never };
    let strategy = Strategy { folio: size, huge: policy, paging: PagingKind::X86_64, ..Strategy::default() };
    strategy
        .with_vm(VmConfig::with_bytes(ARENA_BYTES), Job { ops, facts, pages, huge })
        .map_err(|e| NoPrediction::Server(format!("cannot boot: {e}")))?
}

/// The host's predicted page faults with PMD-mapped 2 MiB pages (and 4 KiB below them) over
/// the placements address-space randomization may give the capture's areas: `[min, max]`.
///
/// Each exec'd image's areas move with the base that placed them ([`Base`]: the mmap base,
/// the `brk` start, the stack top, a PIE's load base), independently of the others and at
/// 4 KiB granularity; areas the kernel aligns to 2 MiB ([`Base::Aligned`]) do not move.
/// Only a base's position modulo 2 MiB changes what fits in whole 2 MiB blocks, so every
/// shift from 0 to 511 pages of each (image, base) pair holding private anonymous faults is
/// replayed with the others at their recorded places; the pairs never share a 2 MiB block
/// (different processes, or bases far apart), so the range adds up the smallest and the
/// largest change each pair can make alone.
///
/// # Errors
/// As [`predict_with_pages`].
pub fn predict_range(ops: &[Op], facts: &[TouchFault]) -> Result<(u64, u64), NoPrediction> {
    predict_range_sampled(ops, facts, 1)
}

/// [`predict_range`] trying every `step`-th shift only (1: every shift).
///
/// # Errors
/// As [`predict_with_pages`].
pub fn predict_range_sampled(
    ops: &[Op],
    facts: &[TouchFault],
    step: u64,
) -> Result<(u64, u64), NoPrediction> {
    let recorded = predict(ops, facts, 1, true)?;
    let images = image_of_touches(ops);
    let touch_pids: Vec<Pid> = ops
        .iter()
        .filter_map(|op| match *op {
            Op::Touch { pid, .. } => Some(pid),
            _ => None,
        })
        .collect();
    let class = |i: usize| (images[i], facts[i].base);
    let mut classes: Vec<(u64, Base)> = (0..facts.len())
        .filter(|&i| facts[i].eligible() && facts[i].base != Base::Aligned)
        .map(class)
        .collect();
    classes.sort_unstable();
    classes.dedup();
    let (mut lo, mut hi) = (recorded, recorded);
    for c in classes {
        // Only the processes that ran the image count differently: replay their ops alone.
        let pids: HashSet<Pid> =
            (0..facts.len()).filter(|&i| images[i] == c.0).map(|i| touch_pids[i]).collect();
        let (sub_ops, sub_facts) = only(ops, facts, &pids);
        let mine: Vec<bool> =
            (0..facts.len()).filter(|&i| pids.contains(&touch_pids[i])).map(|i| class(i) == c).collect();
        let here = run(&sub_ops, &sub_facts, 1, true, &mut NoServer)?;
        let (mut less, mut more) = (0u64, 0u64);
        for by in (step.max(1)..PMD_PAGES).step_by(step.max(1) as usize) {
            let moved: Vec<TouchFault> =
                sub_facts.iter().zip(&mine).map(|(f, &m)| if m { moved(f, by) } else { *f }).collect();
            let n = run(&sub_ops, &moved, 1, true, &mut NoServer)?;
            less = less.max(here.saturating_sub(n));
            more = more.max(n.saturating_sub(here));
        }
        lo = lo.saturating_sub(less);
        hi += more;
    }
    Ok((lo, hi))
}

/// The ops of the processes `pids` (and forks from or into them) with the facts of their
/// touches.
fn only(ops: &[Op], facts: &[TouchFault], pids: &HashSet<Pid>) -> (Vec<Op>, Vec<TouchFault>) {
    let (mut o, mut f) = (Vec::new(), Vec::new());
    let mut facts = facts.iter();
    for op in ops {
        let keep = match *op {
            Op::Fork { parent, child, .. } => pids.contains(&parent) || pids.contains(&child),
            Op::Exec { pid, .. } | Op::Exit { pid } | Op::Munmap { pid, .. } | Op::Discard { pid, .. } => {
                pids.contains(&pid)
            }
            Op::Touch { pid, .. } => {
                let Some(t) = facts.next() else { break };
                if pids.contains(&pid) {
                    f.push(*t);
                }
                pids.contains(&pid)
            }
            _ => false,
        };
        if keep {
            o.push(*op);
        }
    }
    (o, f)
}

/// Pages a shifted area is also moved by, so that it overlaps no area left in place (a
/// multiple of 2 MiB: alignment is unchanged).
const AWAY: u64 = 1 << 40;

/// `f` placed `by` pages (less than 2 MiB) higher by its base, and away from the areas that
/// stay (see [`AWAY`]).
fn moved(f: &TouchFault, by: u64) -> TouchFault {
    let g = f.shifted(f.base, by);
    TouchFault { page: g.page + AWAY, window: (g.window.0 + AWAY, g.window.1 + AWAY), ..g }
}

/// For every touch of `ops`, in order, the exec'd image its process runs: a number that
/// changes at each exec and passes to forked children (they share the parent's layout).
fn image_of_touches(ops: &[Op]) -> Vec<u64> {
    let mut image: HashMap<Pid, u64> = HashMap::new();
    let mut next = 0u64;
    let mut fresh = || {
        next += 1;
        next
    };
    let mut out = Vec::new();
    for op in ops {
        match *op {
            Op::Fork { parent, child, .. } => {
                let p = *image.entry(parent).or_insert_with(&mut fresh);
                image.insert(child, p);
            }
            Op::Exec { pid, .. } => {
                image.insert(pid, fresh());
            }
            Op::Touch { pid, .. } => out.push(*image.entry(pid).or_insert_with(&mut fresh)),
            _ => {}
        }
    }
    out
}

/// The arena of the prediction's server: the anonymous pages a capture touches, with their
/// folios (host memory is taken only as frames are used).
const ARENA_BYTES: u64 = 1 << 30;

/// The replay of the ops and facts through the model (mTHP folios of `pages` pages, PMD
/// pages when `huge`), the anonymous faults through `anon`.
fn run(
    ops: &[Op],
    facts: &[TouchFault],
    pages: u64,
    huge: bool,
    anon: &mut dyn Anon,
) -> Result<u64, NoPrediction> {
    let mut m = Model { pages, huge, ..Model::default() };
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
    /// made it present; returns what the access mapped around it.
    fn touch(&mut self, pid: Pid, f: &TouchFault, write: bool) -> Result<Mapped, NoPrediction>;
    /// The model made a PMD decision (`huge`: it mapped a huge page or the huge zero page,
    /// or replaced the huge zero page; else it did not) where the server's access
    /// `mapped`: checks that the server agrees.
    fn check(&mut self, huge: bool, mapped: Mapped);
}

/// What a mirrored access mapped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mapped {
    /// One page (or nothing new).
    Page,
    /// A large folio below PMD size.
    Folio,
    /// A huge page or the huge zero page.
    Huge,
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
    fn touch(&mut self, _: Pid, _: &TouchFault, _: bool) -> Result<Mapped, NoPrediction> {
        Ok(Mapped::Page)
    }
    fn check(&mut self, _: bool, _: Mapped) {}
}

/// The prediction on a booted server with the folio size on.
struct Job<'a> {
    ops: &'a [Op],
    facts: &'a [TouchFault],
    pages: u64,
    huge: bool,
}

impl VmJob for Job<'_> {
    type Output = Result<u64, NoPrediction>;
    fn run<F: FrameAllocator, P: PagingFormat>(self, vm: &mut Vm<F, P>) -> Self::Output {
        let mut server = Server { vm, procs: HashMap::new(), covered: HashMap::new(), disagreements: 0 };
        let n = run(self.ops, self.facts, self.pages, self.huge, &mut server)?;
        let fallbacks = server.vm.stats().folio_fallbacks + server.vm.stats().huge_fallbacks;
        if fallbacks > 0 {
            return Err(NoPrediction::Server(format!("{fallbacks} folio faults found no free aligned run")));
        }
        if server.disagreements > 0 {
            return Err(NoPrediction::Server(format!(
                "the server's huge-page decision differs from the model's at {} faults",
                server.disagreements
            )));
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
    /// PMD decisions of the model the server did not make alike.
    disagreements: u64,
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

    fn touch(&mut self, pid: Pid, f: &TouchFault, write: bool) -> Result<Mapped, NoPrediction> {
        let ep = self.endpoint(pid)?;
        self.shape(pid, ep, f)?;
        let s = self.vm.stats();
        let before = (s.folio_faults, s.huge_faults + s.huge_zero_maps);
        let va = VirtAddr(f.page * PAGE_SIZE);
        client::touch(self.vm, ep, va, Access { write, user: true })
            .map_err(|e| server_err(&format!("touch of {:#x}", va.0), e))?;
        let s = self.vm.stats();
        Ok(if s.huge_faults + s.huge_zero_maps != before.1 {
            Mapped::Huge
        } else if s.folio_faults != before.0 {
            Mapped::Folio
        } else {
            Mapped::Page
        })
    }

    fn check(&mut self, huge: bool, mapped: Mapped) {
        if huge != (mapped == Mapped::Huge) {
            self.disagreements += 1;
        }
    }
}

/// Per-process page states and the predicted count.
#[derive(Default)]
struct Model {
    /// mTHP folio size in pages (1: 4 KiB only).
    pages: u64,
    /// PMD-mapped 2 MiB pages tried first.
    huge: bool,
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
        if self.huge {
            let pmd = f.page / PMD_PAGES;
            let start = pmd * PMD_PAGES;
            if cur == Some(PageState::HugeZero) {
                if f.write() {
                    // The write replaces the huge zero page with a huge page.
                    self.faults += 1;
                    self.set(pid, start, PMD_PAGES, PageState::Writable);
                    let mapped = anon.touch(pid, f, true)?;
                    anon.check(true, mapped);
                }
                return Ok(());
            }
            let t = self.tables.entry(pid).or_default();
            let whole = f.eligible() && f.window == (start, start + PMD_PAGES);
            if cur.is_none() && !f.present() && whole && !t.contains(&pmd) {
                self.faults += 1;
                let s = if f.write() { PageState::Writable } else { PageState::HugeZero };
                self.set(pid, start, PMD_PAGES, s);
                let mapped = anon.touch(pid, f, f.write())?;
                anon.check(true, mapped);
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
                    let mapped = anon.touch(pid, f, false)?;
                    anon.check(false, mapped);
                }
            }
            (None, false, false) => {
                self.faults += 1;
                self.set(pid, f.page, 1, PageState::ReadOnly);
                if mirrored {
                    let mapped = anon.touch(pid, f, false)?;
                    anon.check(false, mapped);
                }
            }
            (None, false, true) => {
                self.faults += 1;
                // The server's fault path decides: a whole aligned folio when the block
                // lies inside the region (the window) and none of its pages is present.
                let mapped = if mirrored { anon.touch(pid, f, true)? } else { Mapped::Page };
                anon.check(false, mapped);
                if mapped == Mapped::Folio {
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
        TouchFault {
            page,
            code: 0x6,
            kind: AreaKind::Heap,
            prot: Prot::RW,
            no_huge: false,
            window,
            reach: window,
            base: Base::Brk,
        }
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
        assert_eq!(predict_host_faults(&ops, &facts, FolioSize::K4, HugePolicy::Never), Ok(8));
        assert_eq!(predict_host_faults(&ops, &facts, FolioSize::K16, HugePolicy::Never), Ok(2));
        assert_eq!(predict_host_faults(&ops, &facts, FolioSize::K32, HugePolicy::Never), Ok(1));
        // 64 KiB does not fit in the 8-page heap: every fault stays 4 KiB.
        assert_eq!(predict_host_faults(&ops, &facts, FolioSize::K64, HugePolicy::Never), Ok(8));
    }

    #[test]
    fn a_partly_populated_block_falls_back_and_stack_mappings_never_take_folios() {
        // A read of page 1 maps it (zero page): the write to page 0 then sees its block
        // partly populated and stays 4 KiB.
        let mut facts = vec![heap_write(0x2001, (0x2000, 0x2010)), heap_write(0x2000, (0x2000, 0x2010))];
        facts[0].code = 0x4;
        facts.push(heap_write(0x2002, (0x2000, 0x2010)));
        assert_eq!(predict_host_faults(&touches(3), &facts, FolioSize::K16, HugePolicy::Never), Ok(3));
        let stack: Vec<TouchFault> = (0..4)
            .map(|k| TouchFault {
                kind: AreaKind::Map(MapKind::Private),
                no_huge: true,
                ..heap_write(0x3000 + k, (0x3000, 0x3004))
            })
            .collect();
        assert_eq!(predict_host_faults(&touches(4), &stack, FolioSize::K16, HugePolicy::Never), Ok(4));
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
        assert_eq!(predict_host_faults(&ops, &facts, FolioSize::K16, HugePolicy::Never), Ok(2));
        assert_eq!(predict_host_faults(&ops, &facts, FolioSize::K4, HugePolicy::Never), Ok(4));
    }

    /// Writes to every page of a private anonymous mapping of `n` pages at `start`, placed by
    /// `base`.
    fn mapping_writes(start: u64, n: u64, base: Base) -> (Vec<Op>, Vec<TouchFault>) {
        let (pid, id) = (Pid(1), MapId(1));
        let ops =
            (0..n).map(|k| Op::Touch { pid, place: Place::Map(id, k), pages: 1, write: true }).collect();
        let facts = (0..n)
            .map(|k| {
                let page = start + k;
                let (bs, be) = super::super::facts::pmd_block(page);
                let reach = (start.max(bs.saturating_sub(PMD_PAGES)), (start + n).min(be + PMD_PAGES));
                TouchFault {
                    kind: AreaKind::Map(MapKind::Private),
                    base,
                    reach,
                    ..heap_write(page, super::super::facts::clip_to_block(page, start, start + n))
                }
            })
            .collect();
        (ops, facts)
    }

    #[test]
    fn a_2mib_page_needs_a_whole_block_and_the_range_covers_every_placement() {
        // 600 pages (2.3 MiB) starting on a 2 MiB boundary: one PMD fault for the first
        // 512 pages, 88 at 4 KiB for the rest.
        let (ops, facts) = mapping_writes(0x4_0000, 600, Base::Mmap);
        assert_eq!(predict_host_faults(&ops, &facts, FolioSize::K4, HugePolicy::Always), Ok(89));
        assert_eq!(predict_host_faults(&ops, &facts, FolioSize::K4, HugePolicy::Never), Ok(600));
        assert_eq!(predict_with_pages(&ops, &facts, PMD_PAGES), Ok(89));
        // Placed 4 KiB to 1696 KiB further on it holds no whole block (600 faults); from
        // 1696 KiB on, the next block is whole again (89).
        assert_eq!(predict_range(&ops, &facts), Ok((89, 600)));
        // Recorded where no block fits: the range is the same.
        let (ops, facts) = mapping_writes(0x4_0000 + 100, 600, Base::Mmap);
        assert_eq!(predict_host_faults(&ops, &facts, FolioSize::K4, HugePolicy::Always), Ok(600));
        assert_eq!(predict_range(&ops, &facts), Ok((89, 600)));
        // Sampling every 64th shift still finds both ends here.
        assert_eq!(predict_range_sampled(&ops, &facts, 64), Ok((89, 600)));
        // 300 pages never hold a whole block wherever they are.
        let (ops, facts) = mapping_writes(0x4_0000, 300, Base::Brk);
        assert_eq!(predict_range(&ops, &facts), Ok((300, 300)));
    }

    #[test]
    fn kernel_aligned_and_stack_mappings_do_not_move() {
        // A mapping the kernel put on a 2 MiB boundary (its length a multiple of 2 MiB)
        // stays aligned in every run: 2 faults for 4 MiB, no range.
        let (ops, facts) = mapping_writes(0x4_0000, 1024, Base::Aligned);
        assert_eq!(predict_host_faults(&ops, &facts, FolioSize::K4, HugePolicy::Always), Ok(2));
        assert_eq!(predict_range(&ops, &facts), Ok((2, 2)));
        // MAP_STACK (VM_NOHUGEPAGE): 4 KiB wherever it is.
        let (ops, mut facts) = mapping_writes(0x4_0000, 600, Base::Mmap);
        facts.iter_mut().for_each(|f| f.no_huge = true);
        assert_eq!(predict_host_faults(&ops, &facts, FolioSize::K4, HugePolicy::Always), Ok(600));
        assert_eq!(predict_range(&ops, &facts), Ok((600, 600)));
    }

    #[test]
    fn a_read_maps_the_huge_zero_page_and_the_write_after_it_one_page_of_2mib() {
        let (ops, mut facts) = mapping_writes(0x4_0000, 512, Base::Mmap);
        facts[0].code = 0x4;
        // Read: the huge zero page (1); the first write replaces it with a 2 MiB page (1);
        // the other writes find their pages present.
        assert_eq!(predict_host_faults(&ops, &facts, FolioSize::K4, HugePolicy::Always), Ok(2));
        // With a page table already there (a 4 KiB fault in the block first), none.
        let (ops, mut facts) = mapping_writes(0x4_0000, 512, Base::Mmap);
        facts[0].window = (facts[0].page, facts[0].page + 1);
        assert_eq!(predict_host_faults(&ops, &facts, FolioSize::K4, HugePolicy::Always), Ok(512));
    }

    #[test]
    fn facts_that_do_not_pair_are_refused() {
        let facts = vec![heap_write(0x1000, (0x1000, 0x1004))];
        assert_eq!(
            predict_host_faults(&touches(2), &facts, FolioSize::K16, HugePolicy::Never),
            Err(NoPrediction::FactsDoNotMatch { touches: 2, facts: 1 })
        );
        assert_eq!(predict_with_pages(&touches(1), &facts, 3), Err(NoPrediction::BadSize(3)));
    }
}
