//! The page faults the host kernel would take for a perf capture's program with anonymous
//! folios of another size: `predicted_host_faults` of `vmstorm replay CAPTURE --folio SIZE`.
//!
//! MINIX has no counterpart (4 KiB pages only). The prediction cannot come from the replay
//! itself: the trace names memory by mapping and page offset and replays into vmstorm's own
//! addresses, so the server's fault path never sees the alignment Linux decided with. It is
//! computed instead from the capture's recorded faults and the facts the importer kept for
//! each ([`TouchFault`]: virtual page, error code, area kind, `MAP_STACK`, the area's extent
//! in the fault's 2 MiB block), by the same rules the server's large-folio fault path
//! applies (`vmstorm_core::calls::folio`; Linux's, `docs/large-folios.md`):
//!
//! - every recorded fault on memory that is not private anonymous (file text and data,
//!   shared mappings), every read fault, every write to a present page (copy-on-write,
//!   the copy of a zero page) and every fault in a `MAP_STACK` mapping is counted as it was
//!   recorded, unless an earlier folio made its page present and writable;
//! - a missing-page write in private anonymous memory takes one fault and maps the whole
//!   naturally aligned block of the folio size when the block lies inside the area (the
//!   fact's window) and none of its pages is present in the model (the core's "inside the
//!   region" and "none of its entries is present"); later recorded faults on the block's
//!   other pages then do not happen;
//! - fork makes every writable page read-only in parent and child (a later write faults),
//!   exec empties the process, munmap and discard remove pages; a mapping's address is
//!   learnt from its first recorded fault.
//!
//! The model keeps per process which virtual pages are mapped and how. At 2 MiB
//! ([`PMD_PAGES`], the PMD path, which the server does not have yet) it also models the
//! huge zero page and the rule that a PMD fault needs the block's page table absent.

use std::collections::{HashMap, HashSet};

use vmstorm_core::FolioSize;

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
}

impl std::fmt::Display for NoPrediction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoPrediction::FactsDoNotMatch { touches, facts } => {
                write!(f, "the capture's {facts} fault facts do not pair with its {touches} touches")
            }
            NoPrediction::BadSize(p) => write!(f, "{p} pages is not a folio size"),
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
/// 256 (mTHP), or [`PMD_PAGES`] (PMD-mapped THP with the huge zero page).
///
/// # Errors
/// Facts that do not pair with the touches, or a size that is not a folio size.
pub fn predict_with_pages(ops: &[Op], facts: &[TouchFault], pages: u64) -> Result<u64, NoPrediction> {
    if !pages.is_power_of_two() || pages > PMD_PAGES {
        return Err(NoPrediction::BadSize(pages));
    }
    let touches = ops.iter().filter(|op| matches!(op, Op::Touch { .. })).count();
    if touches != facts.len() {
        return Err(NoPrediction::FactsDoNotMatch { touches, facts: facts.len() });
    }
    let mut m = Model { pages, ..Model::default() };
    let mut facts = facts.iter();
    for op in ops {
        match *op {
            Op::Fork { parent, child, .. } => m.fork(parent, child),
            Op::Exec { pid, .. } => {
                m.state.insert(pid, HashMap::new());
                m.tables.insert(pid, HashSet::new());
            }
            Op::Munmap { pid, id, offset, pages: n } | Op::Discard { pid, id, offset, pages: n } => {
                if let Some(&b) = m.base.get(&(pid, id)) {
                    let s = m.state.entry(pid).or_default();
                    (b + offset..b + offset + n).for_each(|p| {
                        s.remove(&p);
                    });
                }
            }
            Op::Touch { pid, place, .. } => {
                // Counted above: one fact per touch.
                let Some(f) = facts.next() else { break };
                if let Place::Map(id, off) = place {
                    m.base.insert((pid, id), f.page.wrapping_sub(off));
                }
                m.touch(pid, f);
            }
            _ => {}
        }
    }
    Ok(m.faults)
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

    fn touch(&mut self, pid: Pid, f: &TouchFault) {
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
                return;
            }
            let t = self.tables.entry(pid).or_default();
            let whole = f.anon_private() && !f.no_huge && f.window == (block, block + pages);
            if cur.is_none() && !f.present() && whole && !t.contains(&pmd) {
                self.faults += 1;
                let s = if f.write() { PageState::Writable } else { PageState::HugeZero };
                self.set(pid, block, pages, s);
                return;
            }
            if cur.is_none() {
                t.insert(pmd);
            }
        }
        match (cur, f.present(), f.write()) {
            (Some(PageState::Writable), _, _) | (Some(_), _, false) => {}
            (Some(_), _, true) | (None, true, _) => {
                self.faults += 1;
                self.set(pid, f.page, 1, PageState::Writable);
            }
            (None, false, false) => {
                self.faults += 1;
                self.set(pid, f.page, 1, PageState::ReadOnly);
            }
            (None, false, true) => {
                self.faults += 1;
                let m = self.state.entry(pid).or_default();
                let empty = (block..block + pages).all(|p| !m.contains_key(&p));
                if pages > 1 && pages < PMD_PAGES && f.folio_candidate(pages) && empty {
                    self.set(pid, block, pages, PageState::Writable);
                } else {
                    self.set(pid, f.page, 1, PageState::Writable);
                }
            }
        }
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
    fn facts_that_do_not_pair_are_refused() {
        let facts = vec![heap_write(0x1000, (0x1000, 0x1004))];
        assert_eq!(
            predict_host_faults(&touches(2), &facts, FolioSize::K16),
            Err(NoPrediction::FactsDoNotMatch { touches: 2, facts: 1 })
        );
        assert_eq!(predict_with_pages(&touches(1), &facts, 3), Err(NoPrediction::BadSize(3)));
    }
}
