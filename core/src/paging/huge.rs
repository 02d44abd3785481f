//! Huge entries: a page-directory entry with `PS` set maps a whole naturally aligned
//! block (one leaf table's span: 512 pages = 2 MiB on x86-64, 1024 pages = 4 MiB on
//! i386 with PSE) instead of linking a leaf table. Here: mapping one, splitting one into a
//! leaf table (and undoing the splits), replacing one, and the eager fork's copy of one.
//!
//! MINIX has no huge pages; this is the page-table half of Linux's PMD-mapped THP
//! (`mm/huge_memory.c`: `set_pmd_at` of a huge PMD, `__split_huge_pmd_locked`,
//! `zap_huge_pmd`, `copy_huge_pmd`). The fault-path rules are in `crate::calls::huge`.
//!
//! Ownership: **every 4 KiB frame of a huge entry holds one reference**, as if the block
//! were mapped by a leaf table of consecutive entries (the module's ownership rule,
//! unchanged). So a split only writes a leaf table of N entries with the same frames and
//! flags (no count moves), fork adds one reference per frame, and dropping a huge entry
//! drops one per frame. The frames are consecutive and the first is aligned to N frames
//! (physical alignment is frame-number alignment in the arena). A huge entry's flags
//! are those of a leaf entry (WRITE, USER, A, D, COW) plus `PS` and, on formats that have
//! one, [`Layout::HUGE_MARK`]; SHARED and DIRECT regions never get one.
//!
//! Walks: the one-compare walks (`leaf_path`, `translate`, the cursor's `find`) stop at a
//! huge entry as at a missing table (free on x86-64 through `HUGE_MARK`; one test of `PS`
//! on i386) and look at it off their common path; a [`PageWalk`] through one has the link
//! [`LeafLink::Huge`](crate::paging::LeafLink::Huge). The tree walk hands huge entries to
//! its visitors' `huge` step and never descends into one. Range operations that change
//! entries (unmap, protect) split the huge entries their range touches first, all or none
//! (one table frame each; [`PagingError::OutOfFrames`] and nothing changed when they
//! cannot), and undo the splits when the operation itself then fails. [`PhysMem`] counts
//! the huge entries of all spaces, so a range operation looks for one only when any exist.
//!
//! The huge entry as data (encode, decode, find, and the reference steps on its frames) is
//! `crate::paging::huge_entry`, below the walks that meet one; this file builds and splits
//! tables around it.

use crate::addr::{Frame, VirtAddr, PAGE_SIZE};
use crate::frames::{FrameAllocator, PhysMem};
use crate::paging::cursor::Cursor;
use crate::paging::entry::{self, Pte, HUGE, TABLE_LINK, WRITE};
pub(crate) use crate::paging::huge_entry::{
    block_pages, for_each_huge, fork_huge_cow, huge_at, huge_entry, huge_mapping, share_huge_entries,
    unref_block, unshare_huge_links,
};
use crate::paging::layout::check_frames;
use crate::paging::layout::{alloc_table_uninit, entries, entry_frame, index, Layout};
use crate::paging::leaf::fill;
use crate::paging::walk::{walk, PageWalk};
use crate::paging::{LeafLink, Mapping, PageFlags, PagingError};

/// Maps the block at `va` (aligned to the block) to the frames from `first` (aligned to
/// the block's page count) with one huge entry, building the tables above the directory
/// as needed. Consumes one reference per frame.
///
/// # Errors
/// [`PagingError::AddressOutOfRange`] for an address beyond the format or not aligned,
/// [`PagingError::FrameOutOfRange`] for frames beyond reach or not aligned,
/// [`PagingError::AlreadyMapped`] when the directory entry is in use (a leaf table or a
/// huge entry), [`PagingError::OutOfFrames`] for a table. Nothing has changed then.
pub(crate) fn map_huge<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    root: Frame,
    va: VirtAddr,
    first: Frame,
    flags: PageFlags,
) -> Result<(), PagingError> {
    let n = block_pages::<L>();
    if va.0 & (n * PAGE_SIZE - 1) != 0 || va.0 >= L::VA_END {
        return Err(PagingError::AddressOutOfRange(va));
    }
    if first.0 & (n - 1) != 0 {
        return Err(PagingError::FrameOutOfRange(first));
    }
    check_frames::<L>(mem.arena(), first, n, flags)?;
    let dir = Cursor::<L>::new(root).find_or_alloc_dir(mem, va.0)?;
    let i = index::<L>(va.0, 1);
    // A directory just built is empty: an entry in use means it was there before, and
    // nothing was allocated.
    if L::table(mem.arena(), dir)[i].raw() != 0 {
        return Err(PagingError::AlreadyMapped(va));
    }
    L::table_mut(mem.arena_mut(), dir)[i] = L::Pte::from_raw(huge_entry::<L>(first, flags));
    mem.add_live(dir, 1);
    mem.add_huge(1);
    Ok(())
}

/// Writes the leaf table `t` (allocated, contents garbage) as the split of the huge
/// entry `e` at index `i` of `dir`, and links it there in the huge entry's place.
fn split_into<L: Layout, F: FrameAllocator>(mem: &mut PhysMem<F>, dir: Frame, i: usize, e: u64, t: Frame) {
    // Entry k: the huge entry's flags and address, less PS and the mark, plus k pages.
    let base = e & !(HUGE | L::HUGE_MARK);
    fill::<L>(L::table_mut(mem.arena_mut(), t), base, 0);
    mem.set_live(t, entries::<L>() as u16);
    L::table_mut(mem.arena_mut(), dir)[i] = L::Pte::from_raw(t.start_address().0 | TABLE_LINK);
    mem.sub_huge(1, true);
}

/// The huge entries one call split, kept so that a later failure of the same call can
/// put them back exactly ([`Splits::undo`]).
#[derive(Debug, Default)]
pub(crate) struct Splits(Vec<(Frame, usize, u64, Frame)>);

impl Splits {
    /// How many entries were split.
    pub(crate) fn count(&self) -> u64 {
        self.0.len() as u64
    }

    /// Puts the huge entries back and frees their leaf tables (whose entries the call
    /// has not changed).
    pub(crate) fn undo<L: Layout, F: FrameAllocator>(self, mem: &mut PhysMem<F>) {
        for &(dir, i, e, t) in self.0.iter().rev() {
            L::table_mut(mem.arena_mut(), dir)[i] = L::Pte::from_raw(e);
            mem.free_table(t);
            mem.unsplit();
        }
    }
}

/// Splits every huge entry mapping part of `start..end` into a leaf table, all or none.
///
/// # Errors
/// [`PagingError::OutOfFrames`] for a table; nothing has changed then.
pub(crate) fn split_range<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    root: Frame,
    start: u64,
    end: u64,
) -> Result<Splits, PagingError> {
    let mut found = Vec::new();
    for_each_huge::<L>(mem.arena(), root, start, end, &mut |dir, i, e, _| found.push((dir, i, e)));
    let mut tables = Vec::with_capacity(found.len());
    for _ in 0..found.len() {
        let Some(t) = alloc_table_uninit::<L, F>(mem) else {
            for t in tables {
                mem.free_table(t);
            }
            return Err(PagingError::OutOfFrames);
        };
        tables.push(t);
    }
    let mut splits = Splits(Vec::with_capacity(found.len()));
    for ((dir, i, e), t) in found.into_iter().zip(tables) {
        split_into::<L, F>(mem, dir, i, e, t);
        splits.0.push((dir, i, e, t));
    }
    Ok(splits)
}

/// Runs the range operation `op` on `start..end` after splitting the huge entries it
/// touches (when there are any at all); when `op` fails the splits are undone.
///
/// # Errors
/// [`PagingError::OutOfFrames`] for a split, or `op`'s error; nothing has changed then.
#[inline(always)]
pub(crate) fn split_then<L: Layout, F: FrameAllocator, T>(
    mem: &mut PhysMem<F>,
    root: Frame,
    start: u64,
    end: u64,
    op: impl FnOnce(&mut PhysMem<F>) -> Result<T, PagingError>,
) -> Result<T, PagingError> {
    if mem.huge_entries() == 0 {
        return op(mem);
    }
    split_then_huge::<L, F, T>(mem, root, start, end, op)
}

/// [`split_then`] when huge entries exist (kept off the path of the spaces without).
#[cold]
#[inline(never)]
fn split_then_huge<L: Layout, F: FrameAllocator, T>(
    mem: &mut PhysMem<F>,
    root: Frame,
    start: u64,
    end: u64,
    op: impl FnOnce(&mut PhysMem<F>) -> Result<T, PagingError>,
) -> Result<T, PagingError> {
    let splits = split_range::<L, F>(mem, root, start, end)?;
    op(mem).inspect_err(|_| splits.undo::<L, F>(mem))
}

/// Splits the huge entry of the walk `w` into a leaf table; `w` follows (its link is
/// [`LeafLink::Writable`] afterwards).
///
/// # Errors
/// [`PagingError::NotMapped`] when `w` is not through a huge entry;
/// [`PagingError::OutOfFrames`] for the table (nothing has changed then).
pub(crate) fn split_at<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    w: &mut PageWalk,
) -> Result<(), PagingError> {
    if w.link != LeafLink::Huge {
        return Err(PagingError::NotMapped(w.page));
    }
    let i = index::<L>(w.page.0, 1);
    let e = L::table(mem.arena(), w.dir)[i].raw();
    let t = alloc_table_uninit::<L, F>(mem).ok_or(PagingError::OutOfFrames)?;
    split_into::<L, F>(mem, w.dir, i, e, t);
    *w = walk::<L, F>(mem, w.root, w.page);
    Ok(())
}

/// Replaces the huge entry of the walk `w` by one mapping the block from `first` with
/// `flags` (consuming one reference per new frame, dropping one per old frame). Returns
/// the old entry's mapping of the block's first page.
///
/// # Errors
/// [`PagingError::NotMapped`] when `w` is not through a huge entry; the frame errors of
/// [`map_huge`]. Nothing has changed then.
pub(crate) fn replace_huge_at<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    w: &mut PageWalk,
    first: Frame,
    flags: PageFlags,
) -> Result<Mapping, PagingError> {
    if w.link != LeafLink::Huge {
        return Err(PagingError::NotMapped(w.page));
    }
    let n = block_pages::<L>();
    if first.0 & (n - 1) != 0 {
        return Err(PagingError::FrameOutOfRange(first));
    }
    check_frames::<L>(mem.arena(), first, n, flags)?;
    let i = index::<L>(w.page.0, 1);
    let old = L::table(mem.arena(), w.dir)[i].raw();
    L::table_mut(mem.arena_mut(), w.dir)[i] = L::Pte::from_raw(huge_entry::<L>(first, flags));
    unref_block::<L, F>(mem, old);
    w.mapping = Some(huge_mapping::<L>(huge_entry::<L>(first, flags), w.page.0));
    Ok(Mapping { frame: entry_frame::<L>(old), flags: entry::from_raw(old) })
}

/// The eager fork of one huge entry: the child's directory `child` gets, at index `i`, a
/// huge entry to a copy of the block (a new aligned run; writable again if it was
/// copy-on-write).
///
/// # Errors
/// [`PagingError::OutOfFrames`] when no aligned run of free frames is left (eager fork
/// fails then, as it does when a 4 KiB page copy finds no frame).
pub(crate) fn fork_huge_copy<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    child: Frame,
    i: usize,
    e: u64,
) -> Result<(), PagingError> {
    let n = block_pages::<L>();
    let copy = mem.alloc_contiguous(n, n).ok_or(PagingError::OutOfFrames)?;
    if copy.0 + n > L::FRAME_END {
        let (_, mut counts) = mem.split();
        for k in 0..n {
            counts.unref(copy.add(k));
        }
        return Err(PagingError::OutOfFrames);
    }
    let src = entry_frame::<L>(e);
    for k in 0..n {
        mem.arena_mut().copy_frame_streaming(src.add(k), copy.add(k));
    }
    let e = if e & entry::COW != 0 { (e & !entry::COW) | WRITE } else { e };
    L::table_mut(mem.arena_mut(), child)[i] = L::Pte::from_raw((e & !L::ADDR_MASK) | copy.start_address().0);
    mem.add_huge(1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::Arena;
    use crate::frames::Bitset;
    use crate::paging::{Access, ForkPolicy, PageSpan, PagingFormat, I386, X86_64};

    const RW: PageFlags = PageFlags::WRITE.union(PageFlags::USER);

    fn check<P: PagingFormat>() {
        let n = P::HUGE_PAGES;
        let mut mem: PhysMem<Bitset> = PhysMem::new(Arena::with_frames(4 * n).unwrap());
        let root = P::new_root(&mut mem).unwrap();
        let free = mem.free_frames();
        let va = VirtAddr(8 * n * PAGE_SIZE);
        let first = mem.alloc_contiguous(n, n).unwrap();
        assert_eq!(
            P::map_huge(&mut mem, root, VirtAddr(va.0 + PAGE_SIZE), first, RW),
            Err(PagingError::AddressOutOfRange(VirtAddr(va.0 + PAGE_SIZE)))
        );
        P::map_huge(&mut mem, root, va, first, RW).unwrap();
        assert_eq!(mem.huge_entries(), 1);
        assert_eq!(P::map_huge(&mut mem, root, va, first, RW), Err(PagingError::AlreadyMapped(va)));
        let last = va.add_pages(n - 1);
        assert_eq!(
            P::translate(mem.arena(), root, last),
            Some(Mapping { frame: first.add(n - 1), flags: RW })
        );
        let w = P::walk(&mem, root, last);
        assert_eq!((w.mapping.map(|m| m.frame), w.link), (Some(first.add(n - 1)), LeafLink::Huge));
        // The MMU sets A and D in the huge entry.
        let m = P::hw_translate(mem.arena_mut(), root, va.add_pages(3), Access { write: true, user: true })
            .unwrap();
        assert_eq!(m.frame, first.add(3));
        let f = P::translate(mem.arena(), root, va).unwrap().flags;
        assert!(f.contains(PageFlags::ACCESSED | PageFlags::DIRTY), "{f:?}");
        // Fork shares it copy-on-write, one more reference per frame.
        let child = P::fork_copy(&mut mem, root, ForkPolicy::Cow).unwrap();
        assert_eq!(mem.refs().get(first.add(n - 1)), 2);
        assert_eq!(
            P::translate(mem.arena(), child, va).unwrap().flags,
            f.difference(PageFlags::WRITE) | PageFlags::COW
        );
        P::destroy(&mut mem, child);
        assert_eq!(mem.refs().get(first), 1);
        // A one-page unmap splits the entry; the rest stays mapped to the same frames.
        assert_eq!(P::unmap_range(&mut mem, root, PageSpan { start: va.add_pages(1), pages: 1 }), Ok(1));
        assert_eq!((mem.huge_entries(), mem.huge_splits()), (0, 1));
        assert_eq!(P::translate(mem.arena(), root, va.add_pages(1)), None);
        assert_eq!(P::translate(mem.arena(), root, va.add_pages(2)).unwrap().frame, first.add(2));
        assert_eq!(mem.refs().get(first.add(1)), 0);
        P::unmap_range(&mut mem, root, PageSpan { start: va, pages: n }).unwrap();
        assert_eq!(mem.free_frames(), free);
    }

    #[test]
    fn a_huge_entry_maps_translates_forks_and_splits_in_both_formats() {
        check::<X86_64>();
        check::<I386>();
    }
}
