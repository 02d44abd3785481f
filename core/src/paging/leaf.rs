//! The passes over one table's entries that several operations share: dropping a leaf
//! table's references, the fork passes (copy-on-write, private copy of a shared table,
//! eager copy, the on-demand-fork directory pass), and destroying a table tree.
//!
//! Replaces the inner loops of MINIX's `pt_free`, `map_copy_ph_block`/`map_writept` and
//! `pt_copy` (`region.c`, `arch/i386/pagetable.c`). A leaf table is handled eight entries
//! (one cache line) at a time: a branch-free (vectorised) pass writes the entries, then a
//! second pass over the same line bumps each counted frame's reference count. (Eight
//! measured faster than sixteen or 32.)

use crate::addr::Frame;
use crate::frames::{FrameAllocator, PhysMem};
use crate::paging::entry::{self, Pte, COW, DIRECT, PRESENT, WRITE};
use crate::paging::layout::{entries, entry_frame, Layout, RUN};
use crate::paging::tree::{walk_tree, Enter, TreeVisitor};
use crate::paging::PagingError;
use core::convert::Infallible;

/// Leaf entries handled together when skipping empty runs of a leaf table.
const LEAF_RUN: usize = 8;

/// Drops the references of a leaf table's present entries (empty runs skipped).
#[inline]
pub(crate) fn unref_leaves<L: Layout, F: FrameAllocator>(mem: &mut PhysMem<F>, leaf: Frame) {
    let (arena, mut counts) = mem.split();
    for run in L::table(arena, leaf).chunks_exact(RUN) {
        if L::Pte::all_zero(run) {
            continue;
        }
        for e in run {
            let e = e.raw();
            if e & (PRESENT | DIRECT) == PRESENT {
                counts.unref(entry_frame::<L>(e));
            }
        }
    }
}

/// Writes consecutive leaf entries `base + va`, `base + va + 4096`, … into `t`.
#[inline(always)]
pub(crate) fn fill<L: Layout>(t: &mut [L::Pte], base: u64, va: u64) {
    let e = base.wrapping_add(va);
    // Each entry from its index (no chain from one entry to the next), so the loop
    // vectorises.
    for (k, slot) in t.iter_mut().enumerate() {
        *slot = L::Pte::from_raw(e.wrapping_add((k as u64) << 12));
    }
}

/// The on-demand-fork directory pass: the child's directory `child` links the same leaf
/// tables as `parent`, both links read-only, one more reference per leaf table. A huge
/// entry has no leaf table to share: it is forked copy-on-write, as the leaf entries of a
/// shared table would be when it is first copied (see `paging::huge`).
#[inline]
pub(crate) fn share_leaf_tables<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    parent: Frame,
    child: Frame,
) {
    let huge = if mem.huge_entries() != 0 {
        crate::paging::huge::share_huge_entries::<L, F>(mem, parent)
    } else {
        Vec::new()
    };
    let (arena, mut counts) = mem.split();
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
                counts.inc(entry_frame::<L>(e));
            } else {
                *ce = L::Pte::ZERO;
            }
        }
    }
    mem.set_live(child, mem.live(parent));
    if !huge.is_empty() {
        crate::paging::huge::unshare_huge_links::<L, F>(mem, parent, &huge);
    }
}

/// The copy-on-write leaf pass: child entry = parent entry, with private writable pages
/// turned read-only + COW on both sides ([`entry::fork_cow`], branch-free), then one more
/// reference per counted frame. Runs of empty entries are skipped.
#[inline]
pub(crate) fn copy_leaf_cow<L: Layout, F: FrameAllocator>(mem: &mut PhysMem<F>, parent: Frame, child: Frame) {
    let (arena, mut counts) = mem.split();
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
                counts.inc(entry_frame::<L>(e));
            }
        }
    }
    mem.set_live(child, mem.live(parent));
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
    let (arena, mut counts) = mem.split();
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
                counts.inc(entry_frame::<L>(e));
            }
        }
    }
    mem.set_live(copy, mem.live(shared));
}

/// The eager leaf pass: private pages are copied into new frames (writable again if they
/// were copy-on-write), shared and direct entries are shared as in the COW pass. On
/// failure the rest of `child` is zeroed, so it is a consistent partial copy.
///
/// # Errors
/// [`PagingError::OutOfFrames`].
pub(crate) fn copy_leaf_eager<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    parent: Frame,
    child: Frame,
) -> Result<(), PagingError> {
    for i in 0..entries::<L>() {
        let e = L::table(mem.arena(), parent)[i].raw();
        let ce = if e & PRESENT == 0 {
            0
        } else if entry::is_private(e) {
            let Some(copy) = mem.alloc_frame() else {
                L::table_mut(mem.arena_mut(), child)[i..].fill(L::Pte::ZERO);
                let made =
                    L::table(mem.arena(), child)[..i].iter().filter(|e| e.raw() & PRESENT != 0).count();
                mem.set_live(child, made as u16);
                return Err(PagingError::OutOfFrames);
            };
            // The copy is cold and not read soon: stream it past the caches.
            mem.arena_mut().copy_frame_streaming(entry_frame::<L>(e), copy);
            let e = if e & COW != 0 { (e & !COW) | WRITE } else { e };
            (e & !L::ADDR_MASK) | copy.start_address().0
        } else {
            if e & DIRECT == 0 {
                mem.share(entry_frame::<L>(e));
            }
            e
        };
        L::table_mut(mem.arena_mut(), child)[i] = L::Pte::from_raw(ce);
    }
    mem.set_live(child, mem.live(parent));
    Ok(())
}

/// The tree visitor that frees every table it reaches after its entries: a leaf table
/// linked by other spaces too only loses this link's reference, any other leaf table
/// drops its pages' references and is freed.
struct Destroy;

impl<L: Layout, F: FrameAllocator> TreeVisitor<L, PhysMem<F>> for Destroy {
    type Error = Infallible;

    #[inline(always)]
    fn enter(&mut self, mem: &mut PhysMem<F>, t: Frame, level: usize, _va: u64) -> Result<Enter, Infallible> {
        if level > 0 {
            return Ok(Enter::Walk);
        }
        if mem.refs().get(t) > 1 {
            // Still linked by another space: only this link's reference goes.
            mem.unref(t);
        } else {
            unref_leaves::<L, F>(mem, t);
            mem.free_table(t);
        }
        Ok(Enter::Done)
    }

    #[inline(always)]
    fn huge(&mut self, mem: &mut PhysMem<F>, _: Frame, _: usize, raw: u64, _: u64) -> Result<(), Infallible> {
        crate::paging::huge::unref_block::<L, F>(mem, raw);
        mem.sub_huge(1, false);
        Ok(())
    }

    #[inline(always)]
    fn leave(&mut self, mem: &mut PhysMem<F>, t: Frame, _level: usize) -> Result<(), Infallible> {
        mem.free_table(t);
        Ok(())
    }
}

/// Frees the table `t` at `level` and everything below it.
pub(crate) fn destroy_table<L: Layout, F: FrameAllocator>(mem: &mut PhysMem<F>, t: Frame, level: usize) {
    let Ok(()) = walk_tree::<L, PhysMem<F>, Destroy>(mem, &mut Destroy, t, level, 0);
}
