//! The range passes of the page-table operations: checking a range, making the leaf
//! tables of a range this space's own before a change that cannot be undone page by
//! page, clearing a range (unmap and the rollback of a failed map), and the one-page
//! unmap. Each is a visitor of the span walk ([`walk_spans`]).
//!
//! Replaces the range loops of MINIX's `map_unmap_region`/`pt_writemap`
//! (`region.c`, `arch/i386/pagetable.c`).

use crate::addr::{Frame, PageSpan};
use crate::arena::Arena;
use crate::frames::{FrameAllocator, PhysMem};
use crate::paging::cursor::{leaf_at, table_shared, Cursor, Unshares};
use crate::paging::entry::{Pte, DIRECT, PRESENT};
use crate::paging::layout::{entry_frame, index, next_boundary, Layout};
use crate::paging::spans::{walk_spans, Existing, LeafSpan};
use crate::paging::PagingError;

/// `span` clipped to the format's address space, as `start..end` byte addresses.
#[inline]
pub(crate) fn clip<L: Layout>(span: PageSpan) -> (u64, u64) {
    let end = span.end().0.min(L::VA_END);
    (span.start.0.min(end), end)
}

/// Whether the entries of `s` are all empty (nothing there to change, so a shared table
/// need not be copied for them).
#[inline]
pub(crate) fn span_free<L: Layout>(arena: &Arena, s: &LeafSpan) -> bool {
    L::table(arena, s.leaf)[s.i0..s.i0 + s.n].iter().all(|e| e.raw() & PRESENT == 0)
}

/// Makes every leaf table holding a present page in the ranges this space's own, before
/// a change that cannot be undone page by page (with `partial_only`, only the tables a
/// range covers in part: an unmap drops a whole shared table without copying it). All
/// or none: on failure the copies made are undone.
///
/// # Errors
/// [`PagingError::OutOfFrames`]; nothing has changed then.
pub(crate) fn own_spans<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    root: Frame,
    ranges: &[(u64, u64)],
    partial_only: bool,
) -> Result<(), PagingError> {
    let mut cur = Cursor::<L>::new(root);
    let mut undo = Unshares::new();
    for &(start, end) in ranges {
        let r = walk_spans::<L, _, Existing, PagingError>(mem, &mut cur, start, end, |mem, cur, s| {
            if cur.leaf_shared(mem) && !(partial_only && s.whole::<L>()) && !span_free::<L>(mem.arena(), &s) {
                cur.writable_leaf(mem, s.va, &mut undo)?;
            }
            Ok(())
        });
        if let Err(e) = r {
            undo.undo::<L, F>(mem);
            return Err(e);
        }
    }
    Ok(())
}

/// Clears every present leaf entry in `start..end`, dropping its reference when `drop`
/// (else the caller keeps it: the rollback of a failed map, whose tables are all this
/// space's own), and frees the tables this leaves empty. A shared leaf table the span
/// covers entirely just loses this space's link and reference; one covered in part is
/// copied first. Returns the number of entries cleared.
///
/// # Errors
/// [`PagingError::OutOfFrames`] for such a copy (only when `drop`); nothing has changed.
pub(crate) fn clear_range<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    root: Frame,
    start: u64,
    end: u64,
    drop: bool,
) -> Result<u64, PagingError> {
    let first_end = next_boundary::<L>(start, 1);
    if drop && first_end < end {
        // Over several leaf tables only the two end tables can be covered in part (the
        // others are dropped whole if shared), so only they may need a copy.
        let leaf_bytes = 1u64 << crate::paging::layout::shift::<L>(1);
        let last_start = (end - 1) & !(leaf_bytes - 1);
        let first = (start, first_end);
        let last = (last_start, end);
        // A table covered whole is dropped, not copied: only partial ends are walked.
        match (first_end - start < leaf_bytes, end - last_start < leaf_bytes) {
            (true, true) => own_spans::<L, F>(mem, root, &[first, last], true)?,
            (true, false) => own_spans::<L, F>(mem, root, &[first], true)?,
            (false, true) => own_spans::<L, F>(mem, root, &[last], true)?,
            (false, false) => {}
        }
    }
    let mut cur = Cursor::<L>::new(root);
    let mut cleared = 0;
    walk_spans::<L, _, Existing, PagingError>(mem, &mut cur, start, end, |mem, cur, s| {
        let mut leaf = s.leaf;
        if cur.leaf_shared(mem) {
            debug_assert!(drop, "a map's rollback met a shared table");
            if s.whole::<L>() {
                cleared += u64::from(mem.live(leaf));
                cur.release_empty(mem, s.va);
                return Ok(());
            }
            if span_free::<L>(mem.arena(), &s) {
                return Ok(());
            }
            leaf = cur.writable_leaf(mem, s.va, &mut Unshares::new())?;
        }
        let (arena, mut counts) = mem.split();
        let mut here = 0;
        for slot in &mut L::table_mut(arena, leaf)[s.i0..s.i0 + s.n] {
            let e = slot.raw();
            if e & PRESENT != 0 {
                *slot = L::Pte::ZERO;
                here += 1;
                if drop && e & DIRECT == 0 {
                    counts.unref(entry_frame::<L>(e));
                }
            }
        }
        cleared += u64::from(here);
        if mem.sub_live(leaf, here) == 0 {
            cur.release_empty(mem, s.va);
        }
        Ok(())
    })?;
    Ok(cleared)
}

/// Unmaps the page at `va` (one walk, one entry; the table's count of present entries
/// says whether it is empty now). Returns the number of pages unmapped (0 or 1).
///
/// # Errors
/// [`PagingError::OutOfFrames`] when the page is under a leaf table shared with another
/// space and the copy finds no frame; nothing has changed then.
#[inline(always)]
pub(crate) fn unmap_one<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    root: Frame,
    va: u64,
) -> Result<u64, PagingError> {
    let Some(t) = leaf_at::<L>(mem.arena(), root, va) else {
        return unmap_one_huge::<L, F>(mem, root, va);
    };
    let i = index::<L>(va, 0);
    let e = L::entry(mem.arena(), t, i);
    if e & PRESENT == 0 {
        return Ok(0);
    }
    // The common case: the table is this space's own and keeps other pages.
    let leaf = Frame(t >> 12);
    if table_shared(mem, leaf) || mem.live(leaf) <= 1 {
        return unmap_last::<L, F>(mem, root, va, e);
    }
    L::store(mem.arena_mut(), t + (i * core::mem::size_of::<L::Pte>()) as u64, 0);
    mem.sub_live(leaf, 1);
    if e & DIRECT == 0 {
        mem.unref(entry_frame::<L>(e));
    }
    Ok(1)
}

/// The rest of [`unmap_one`] for the present entry `e` of `va` whose leaf table is
/// shared (copied first) or holds no other page (freed after, with the tables this
/// empties): a walk that keeps its path.
#[inline(never)]
fn unmap_last<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    root: Frame,
    va: u64,
    e: u64,
) -> Result<u64, PagingError> {
    let mut cur = Cursor::<L>::new(root);
    if cur.find(mem.arena(), va).is_err() {
        return Ok(0);
    }
    let leaf = cur.writable_leaf(mem, va, &mut Unshares::new())?;
    L::table_mut(mem.arena_mut(), leaf)[index::<L>(va, 0)] = L::Pte::ZERO;
    if e & DIRECT == 0 {
        mem.unref(entry_frame::<L>(e));
    }
    if mem.sub_live(leaf, 1) == 0 {
        cur.release_empty(mem, va);
    }
    Ok(1)
}

/// [`unmap_one`] where no leaf table maps `va`: a page of a huge entry is unmapped by
/// splitting the entry first (a table frame; on failure nothing has changed), else
/// nothing is mapped there.
///
/// # Errors
/// [`PagingError::OutOfFrames`] for the split.
#[cold]
#[inline(never)]
fn unmap_one_huge<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    root: Frame,
    va: u64,
) -> Result<u64, PagingError> {
    if mem.huge_entries() == 0 || crate::paging::huge::huge_at::<L>(mem.arena(), root, va).is_none() {
        return Ok(0);
    }
    crate::paging::huge::split_range::<L, F>(mem, root, va, va + 4096)?;
    // A private leaf table of a whole block now: the one-entry path.
    unmap_one::<L, F>(mem, root, va)
}
