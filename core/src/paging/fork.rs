//! Copying a whole address space for fork: copy-on-write (per-page, structural table
//! copy), shared leaf tables (on-demand fork) or eager (every private page copied at once).
//!
//! Replaces MINIX's `map_proc_copy`/`map_copy_region` + `map_writept` + `pt_writemap`
//! loop (`region.c`, `pagetable.c`), which re-walked from the root for every page. Here
//! the parent's tables are copied one table frame at a time, skipping runs of empty
//! entries. A leaf table is handled eight entries (one cache line) at a time: a
//! branch-free (vectorised) pass writes the child's entries and clears WRITE / sets COW on
//! the private writable pages of both sides, then a second pass over the same line bumps
//! each counted frame's reference count. (Eight measured faster than sixteen or 32.)
//!
//! In `Share` mode (on-demand fork, as in the On-Demand-Fork paper, EuroSys 2021) only the
//! upper levels are copied: the child's directory entries point at the parent's leaf
//! tables, whose reference count goes up by one per link, and both links lose WRITE. The
//! leaf entries are not touched, so fork costs one pass over the directories whatever the
//! number of pages; the first modification under such a link copies that one table (see
//! `ops::own_leaf` and the rule in the [`super`] module documentation).
//!
//! Allocate-then-commit: every table frame the child needs is allocated before anything
//! is written (they are chained through their first word while they wait), so copy-on-
//! write fork cannot fail halfway. Eager fork also allocates page frames as it goes; if
//! one is refused, the partly built child (always a consistent address space) is
//! destroyed. Either way the parent is untouched on error and nothing leaks.

use crate::addr::Frame;
use crate::frames::{FrameAllocator, PhysMem};
use crate::paging::entry::{self, Pte, COW, DIRECT, PRESENT, WRITE};
use crate::paging::layout::{entries, entry_frame, Layout, RUN};
use crate::paging::ops::destroy_table;
use crate::paging::{ForkPolicy, PagingError};

/// End of the chain of pre-allocated tables.
const NIL: u64 = u64::MAX;

/// Table frames allocated ahead, chained through word 0 of each frame.
struct Spares {
    head: u64,
}

impl Spares {
    /// Allocates `count` table frames, or none at all.
    fn alloc<L: Layout, F: FrameAllocator>(mem: &mut PhysMem<F>, count: u64) -> Result<Spares, PagingError> {
        let mut s = Spares { head: NIL };
        for _ in 0..count {
            let Some(f) = mem.alloc_frame() else {
                s.free(mem);
                return Err(PagingError::OutOfFrames);
            };
            mem.table_frames += 1;
            if f.0 >= L::FRAME_END {
                mem.free_table(f);
                s.free(mem);
                return Err(PagingError::OutOfFrames);
            }
            mem.arena.table64_mut(f)[0] = s.head;
            s.head = f.0;
        }
        Ok(s)
    }

    /// Takes one frame; its contents are garbage, to be overwritten entirely.
    #[inline]
    fn take<F: FrameAllocator>(&mut self, mem: &PhysMem<F>) -> Frame {
        debug_assert_ne!(self.head, NIL, "table count was wrong");
        let f = Frame(self.head);
        self.head = mem.arena.table64(f)[0];
        f
    }

    /// Frees the frames not taken.
    fn free<F: FrameAllocator>(&mut self, mem: &mut PhysMem<F>) {
        while self.head != NIL {
            let f = self.take(mem);
            mem.free_table(f);
        }
    }
}

/// The number of tables (root included) under the table `t` at `level`; leaf tables are
/// left out when `leaves` is false.
fn count_tables<L: Layout, F: FrameAllocator>(mem: &PhysMem<F>, t: Frame, level: usize, leaves: bool) -> u64 {
    let mut n = 1;
    for run in L::table(&mem.arena, t).chunks_exact(RUN) {
        if L::Pte::all_zero(run) {
            continue;
        }
        for e in run {
            let e = e.raw();
            if e & PRESENT != 0 {
                n += if level == 1 {
                    u64::from(leaves)
                } else {
                    count_tables::<L, F>(mem, entry_frame::<L>(e), level - 1, leaves)
                };
            }
        }
    }
    n
}

/// See [`crate::paging::PagingFormat::fork_copy`].
pub fn fork_copy<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    parent: Frame,
    mode: ForkPolicy,
) -> Result<Frame, PagingError> {
    let top = L::LEVELS - 1;
    let tables = count_tables::<L, F>(mem, parent, top, mode != ForkPolicy::Share);
    let mut spares = Spares::alloc::<L, F>(mem, tables)?;
    let child = spares.take(mem);
    let result = copy_table::<L, F>(mem, &mut spares, parent, child, top, mode);
    if result.is_err() {
        destroy_table::<L, F>(mem, child, top);
    }
    spares.free(mem);
    result.map(|()| child)
}

/// Fills the (garbage) table `child` at `level` as the copy of `parent`. On error (only in
/// eager mode) `child` is left a consistent partial copy: every entry either owns what
/// it points to or is zero.
fn copy_table<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    spares: &mut Spares,
    parent: Frame,
    child: Frame,
    level: usize,
    mode: ForkPolicy,
) -> Result<(), PagingError> {
    if level == 0 {
        return match mode {
            ForkPolicy::Cow | ForkPolicy::Share => {
                copy_leaf_cow::<L, F>(mem, parent, child);
                Ok(())
            }
            ForkPolicy::Copy => copy_leaf_eager::<L, F>(mem, parent, child),
        };
    }
    if level == 1 && mode == ForkPolicy::Share {
        share_leaf_tables::<L, F>(mem, parent, child);
        return Ok(());
    }
    let mut i = 0;
    while i < entries::<L>() {
        let (p, c) = L::tables_both_mut(&mut mem.arena, parent, child);
        if i % RUN == 0 && L::Pte::all_zero(&p[i..i + RUN]) {
            c[i..i + RUN].fill(L::Pte::ZERO);
            i += RUN;
            continue;
        }
        let e = p[i].raw();
        if e & PRESENT == 0 {
            c[i] = L::Pte::ZERO;
            i += 1;
            continue;
        }
        let sub = spares.take(mem);
        // Link first: the recursive call leaves the sub-table consistent even when it
        // fails, so the child can then be destroyed like any address space.
        L::table_mut(&mut mem.arena, child)[i] =
            L::Pte::from_raw((e & !L::ADDR_MASK) | sub.start_address().0);
        if let Err(err) = copy_table::<L, F>(mem, spares, entry_frame::<L>(e), sub, level - 1, mode) {
            L::table_mut(&mut mem.arena, child)[i + 1..].fill(L::Pte::ZERO);
            return Err(err);
        }
        i += 1;
    }
    Ok(())
}

/// The on-demand-fork directory pass: the child's directory `child` links the same leaf
/// tables as `parent`, both links read-only, one more reference per leaf table.
#[inline]
fn share_leaf_tables<L: Layout, F: FrameAllocator>(mem: &mut PhysMem<F>, parent: Frame, child: Frame) {
    let PhysMem { arena, refs, .. } = mem;
    let refs = refs.as_mut_slice();
    let (p, c) = L::tables_both_mut(arena, parent, child);
    for (pr, cr) in p.chunks_exact_mut(RUN).zip(c.chunks_exact_mut(RUN)) {
        if L::Pte::all_zero(pr) {
            cr.fill(L::Pte::ZERO);
            continue;
        }
        for (pe, ce) in pr.iter_mut().zip(cr.iter_mut()) {
            let e = pe.raw();
            if e & PRESENT != 0 {
                let ne = L::Pte::from_raw(e & !WRITE);
                *pe = ne;
                *ce = ne;
                refs[entry_frame::<L>(e).index()] += 1;
            } else {
                *ce = L::Pte::ZERO;
            }
        }
    }
}

/// Leaf entries handled together when skipping empty runs of a leaf table.
const LEAF_RUN: usize = 8;

/// The copy-on-write leaf pass: child entry = parent entry, with private writable pages
/// turned read-only + COW on both sides ([`entry::fork_cow`], branch-free), then one more
/// reference per counted frame. Runs of empty entries are skipped.
#[inline]
pub(crate) fn copy_leaf_cow<L: Layout, F: FrameAllocator>(mem: &mut PhysMem<F>, parent: Frame, child: Frame) {
    let PhysMem { arena, refs, .. } = mem;
    let refs = refs.as_mut_slice();
    let (p, c) = L::tables_both_mut(arena, parent, child);
    for (pr, cr) in p.chunks_exact_mut(LEAF_RUN).zip(c.chunks_exact_mut(LEAF_RUN)) {
        if L::Pte::all_zero(pr) {
            cr.fill(L::Pte::ZERO);
            continue;
        }
        for (pe, ce) in pr.iter_mut().zip(cr.iter_mut()) {
            let ne = L::Pte::from_raw(entry::fork_cow(pe.raw()));
            *pe = ne;
            *ce = ne;
        }
        for ce in cr.iter() {
            let e = ce.raw();
            if e & (PRESENT | DIRECT) == PRESENT {
                refs[entry_frame::<L>(e).index()] += 1;
            }
        }
    }
}

/// The unshare pass: `copy` becomes a private copy of the shared leaf table `shared`, its
/// private writable pages turned read-only + COW, one more reference per counted frame.
/// `shared` itself is not changed (the spaces still linking it reach it read-only).
#[inline]
pub(crate) fn copy_leaf_private<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    shared: Frame,
    copy: Frame,
) {
    let PhysMem { arena, refs, .. } = mem;
    let refs = refs.as_mut_slice();
    let (p, c) = L::tables_both_mut(arena, shared, copy);
    for (pr, cr) in p.chunks_exact(LEAF_RUN).zip(c.chunks_exact_mut(LEAF_RUN)) {
        if L::Pte::all_zero(pr) {
            cr.fill(L::Pte::ZERO);
            continue;
        }
        for (pe, ce) in pr.iter().zip(cr.iter_mut()) {
            *ce = L::Pte::from_raw(entry::fork_cow(pe.raw()));
        }
        for ce in cr.iter() {
            let e = ce.raw();
            if e & (PRESENT | DIRECT) == PRESENT {
                refs[entry_frame::<L>(e).index()] += 1;
            }
        }
    }
}

/// The eager leaf pass: private pages are copied into new frames (writable again if they
/// were copy-on-write), shared and direct entries are shared as in the COW pass.
fn copy_leaf_eager<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    parent: Frame,
    child: Frame,
) -> Result<(), PagingError> {
    for i in 0..entries::<L>() {
        let e = L::table(&mem.arena, parent)[i].raw();
        let ce = if e & PRESENT == 0 {
            0
        } else if entry::is_private(e) {
            let Some(copy) = mem.alloc_frame() else {
                L::table_mut(&mut mem.arena, child)[i..].fill(L::Pte::ZERO);
                return Err(PagingError::OutOfFrames);
            };
            // The copy is cold and not read soon: stream it past the caches.
            mem.arena.copy_frame_streaming(entry_frame::<L>(e), copy);
            let e = if e & COW != 0 { (e & !COW) | WRITE } else { e };
            (e & !L::ADDR_MASK) | copy.start_address().0
        } else {
            if e & DIRECT == 0 {
                mem.share(entry_frame::<L>(e));
            }
            e
        };
        L::table_mut(&mut mem.arena, child)[i] = L::Pte::from_raw(ce);
    }
    Ok(())
}
