//! A walk cursor: remembers the tables on the path to the last leaf table it found, so
//! that walking to a neighbouring page (or the next leaf table) re-reads only the levels
//! that changed instead of walking again from the root.
//!
//! Replaces the per-page `pt_writemap` loop of MINIX (`arch/i386/pagetable.c`), which
//! recomputed the directory entry for every page. Range operations in `ops` step through
//! their span one leaf table at a time with a cursor (`spans`).
//!
//! The sharing rule of on-demand fork ("is this leaf table shared? then copy it before
//! changing it") is said once, as [`Cursor::writable_leaf`]; a call that may fail after
//! such copies records them in an [`Unshares`] list to restore the sharing exactly.

use crate::addr::Frame;
use crate::frames::{FrameAllocator, PhysMem};
use crate::paging::entry::{Pte, PRESENT, TABLE_LINK, WRITE};
use crate::paging::layout::{
    alloc_table_uninit, entry_frame, index, is_huge_entry, link_offset, shift, Layout, MAX_LEVELS,
};
use crate::paging::leaf::{copy_leaf_private, unref_leaves};
use crate::paging::PagingError;
use core::marker::PhantomData;

/// Tag of a path slot that holds no valid table.
const INVALID: u64 = u64::MAX;

/// The cached path of one walk. `path[l]` is the table at level `l`; it is valid for `va`
/// when `tag[l] == va >> shift(l + 1)`. The root (level `LEVELS - 1`) is always valid.
#[derive(Debug)]
pub struct Cursor<L: Layout> {
    path: [Frame; MAX_LEVELS],
    tag: [u64; MAX_LEVELS],
    _format: PhantomData<L>,
}

impl<L: Layout> Cursor<L> {
    /// A cursor over the address space rooted at `root`.
    #[inline]
    pub fn new(root: Frame) -> Self {
        let mut path = [Frame(0); MAX_LEVELS];
        path[L::LEVELS - 1] = root;
        Cursor { path, tag: [INVALID; MAX_LEVELS], _format: PhantomData }
    }

    /// The lowest level whose cached table covers `va` (the root if none lower does).
    #[inline(always)]
    fn lowest_valid(&self, va: u64) -> usize {
        let mut l = 0;
        while l < L::LEVELS - 1 && self.tag[l] != va >> shift::<L>(l + 1) {
            l += 1;
        }
        l
    }

    /// The leaf table that maps `va`, or `Err(next)` when a table on the way is missing:
    /// nothing is mapped from `va` up to `next` (the end of the missing table's region).
    ///
    /// The range operations call it only on ranges without huge entries (they split them
    /// first); [`Cursor::find_leaf_or_huge`] is the walk that may meet one.
    #[inline]
    pub fn find(&mut self, arena: &crate::arena::Arena, va: u64) -> Result<Frame, u64> {
        self.find_at::<false>(arena, va)
    }

    /// [`Cursor::find`] where a huge entry may map `va`: it links no leaf table, so it
    /// ends the walk as a missing table does (`Err` with the end of its block).
    #[inline]
    pub fn find_leaf_or_huge(&mut self, arena: &crate::arena::Arena, va: u64) -> Result<Frame, u64> {
        self.find_at::<true>(arena, va)
    }

    #[inline(always)]
    fn find_at<const HUGE: bool>(&mut self, arena: &crate::arena::Arena, va: u64) -> Result<Frame, u64> {
        let mut l = self.lowest_valid(va);
        while l > 0 {
            let e = L::table(arena, self.path[l])[index::<L>(va, l)].raw();
            debug_assert!(HUGE || !is_huge_entry(e, l), "a range walk met a huge entry at {va:#x}");
            if e & PRESENT == 0 || (HUGE && is_huge_entry(e, l)) {
                return Err(crate::paging::layout::next_boundary::<L>(va, l));
            }
            l -= 1;
            self.path[l] = entry_frame::<L>(e);
            self.tag[l] = va >> shift::<L>(l + 1);
        }
        Ok(self.path[0])
    }

    /// The leaf table for `va`, allocating the missing tables on the way. On failure the
    /// tables allocated by this call are freed again and nothing has changed.
    ///
    /// # Errors
    /// [`PagingError::OutOfFrames`].
    /// [`PagingError::AlreadyMapped`] when a huge entry maps `va`.
    #[inline]
    pub fn find_or_alloc<F: FrameAllocator>(
        &mut self,
        mem: &mut PhysMem<F>,
        va: u64,
    ) -> Result<Frame, PagingError> {
        self.find_or_alloc_to::<F, 0>(mem, va)
    }

    /// The directory (level-1 table) for `va`, allocating the missing tables above it,
    /// as [`Cursor::find_or_alloc`] does.
    ///
    /// # Errors
    /// [`PagingError::OutOfFrames`].
    #[inline]
    pub fn find_or_alloc_dir<F: FrameAllocator>(
        &mut self,
        mem: &mut PhysMem<F>,
        va: u64,
    ) -> Result<Frame, PagingError> {
        self.find_or_alloc_to::<F, 1>(mem, va)
    }

    /// [`Cursor::find_or_alloc`] down to the table at level `BOTTOM`.
    #[inline(always)]
    fn find_or_alloc_to<F: FrameAllocator, const BOTTOM: usize>(
        &mut self,
        mem: &mut PhysMem<F>,
        va: u64,
    ) -> Result<Frame, PagingError> {
        let mut l = self.lowest_valid(va).max(BOTTOM);
        // The level of the first table this call linked in, if any.
        let mut first_new: Option<usize> = None;
        while l > BOTTOM {
            let idx = index::<L>(va, l);
            let e = L::table(mem.arena(), self.path[l])[idx].raw();
            let next = if e & PRESENT != 0 {
                if is_huge_entry(e, l) {
                    // Every table above a present entry was there already: nothing to undo.
                    return Err(PagingError::AlreadyMapped(crate::addr::VirtAddr(va & !0xfff)));
                }
                entry_frame::<L>(e)
            } else {
                let Some(t) = crate::paging::layout::alloc_table::<L, F>(mem) else {
                    if let Some(top) = first_new {
                        self.unwind(mem, va, top, l);
                    }
                    return Err(PagingError::OutOfFrames);
                };
                L::table_mut(mem.arena_mut(), self.path[l])[idx] =
                    L::Pte::from_raw(t.start_address().0 | TABLE_LINK);
                mem.add_live(self.path[l], 1);
                first_new.get_or_insert(l);
                t
            };
            l -= 1;
            self.path[l] = next;
            self.tag[l] = va >> shift::<L>(l + 1);
        }
        Ok(self.path[BOTTOM])
    }

    /// Undoes a failed `find_or_alloc`: the tables at levels `bottom..top` on `va`'s path
    /// were just allocated (and are empty but for their one link); free them and clear the
    /// link in the level-`top` table.
    fn unwind<F: FrameAllocator>(&mut self, mem: &mut PhysMem<F>, va: u64, top: usize, bottom: usize) {
        for l in bottom..top {
            mem.free_table(self.path[l]);
            self.tag[l] = INVALID;
        }
        L::table_mut(mem.arena_mut(), self.path[top])[index::<L>(va, top)] = L::Pte::ZERO;
        mem.sub_live(self.path[top], 1);
    }

    /// The table at `level` on the path of the last walk (`level` 1 is the directory that
    /// links the leaf table).
    #[inline(always)]
    pub fn table_at(&self, level: usize) -> Frame {
        self.path[level]
    }

    /// Whether the leaf table of the last walk is linked by other address spaces too
    /// (on-demand fork): its entries are then not this space's to change.
    #[inline(always)]
    pub fn leaf_shared<F: FrameAllocator>(&self, mem: &PhysMem<F>) -> bool {
        table_shared(mem, self.path[0])
    }

    /// The leaf table of the last walk (which found it for `va`), made this space's own
    /// so that its entries may be changed. A table with reference count 1 is already ours
    /// (even behind a read-only link; `unshare` restores the link for writes). A table
    /// linked by several directories is copied (one 4 KiB pass: private writable pages
    /// become COW in the copy, every counted frame gains a reference), the shared table
    /// loses this space's reference, and the link points at the copy, writable. The copy
    /// is recorded in `undo`.
    ///
    /// # Errors
    /// [`PagingError::OutOfFrames`] for the copy; nothing has changed then.
    #[inline(always)]
    pub fn writable_leaf<F: FrameAllocator>(
        &mut self,
        mem: &mut PhysMem<F>,
        va: u64,
        undo: &mut Unshares,
    ) -> Result<Frame, PagingError> {
        if !self.leaf_shared(mem) {
            return Ok(self.path[0]);
        }
        self.copy_leaf(mem, va, undo)
    }

    /// The copy of [`Cursor::writable_leaf`].
    #[inline(never)]
    fn copy_leaf<F: FrameAllocator>(
        &mut self,
        mem: &mut PhysMem<F>,
        va: u64,
        undo: &mut Unshares,
    ) -> Result<Frame, PagingError> {
        let (leaf, dir, idx) = (self.path[0], self.path[1], index::<L>(va, 1));
        let copy = copy_shared_leaf::<L, F>(mem, dir, idx, leaf)?;
        self.path[0] = copy;
        undo.0.push(Unshared { dir, idx, old: leaf, new: copy });
        Ok(copy)
    }

    /// Releases the leaf table on `va`'s path, which the last `find` returned and which
    /// this space no longer uses (it is empty, or shared and dropped whole): a table only
    /// this space links is freed, a shared one loses one reference. Clears the link and
    /// goes on up freeing every table this leaves empty. The root is never freed.
    pub fn release_empty<F: FrameAllocator>(&mut self, mem: &mut PhysMem<F>, va: u64) {
        let mut l = 0;
        loop {
            if l == 0 && self.leaf_shared(mem) {
                mem.unref(self.path[0]);
            } else {
                mem.free_table(self.path[l]);
            }
            self.tag[l] = INVALID;
            L::table_mut(mem.arena_mut(), self.path[l + 1])[index::<L>(va, l + 1)] = L::Pte::ZERO;
            if mem.sub_live(self.path[l + 1], 1) != 0 || l + 2 == L::LEVELS {
                return;
            }
            l += 1;
        }
    }
}

/// Copies the shared leaf table `leaf`, linked from entry `idx` of `dir`, out of sharing
/// for this space: one 4 KiB pass (private writable pages become COW in the copy, every
/// counted frame gains a reference), the shared table loses this space's reference, and
/// the link points at the copy, writable. Returns the copy.
///
/// # Errors
/// [`PagingError::OutOfFrames`] for the copy; nothing has changed then.
pub(crate) fn copy_shared_leaf<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    dir: Frame,
    idx: usize,
    leaf: Frame,
) -> Result<Frame, PagingError> {
    let copy = alloc_table_uninit::<L, F>(mem).ok_or(PagingError::OutOfFrames)?;
    copy_leaf_private::<L, F>(mem, leaf, copy);
    mem.unref(leaf);
    let link = L::table(mem.arena(), dir)[idx].raw();
    L::table_mut(mem.arena_mut(), dir)[idx] =
        L::Pte::from_raw((link & !L::ADDR_MASK) | copy.start_address().0 | WRITE);
    Ok(copy)
}

/// Whether the table `t` is linked by several directories (on-demand fork): the sharing
/// rule's one test, a load of the count the frame array holds.
#[inline(always)]
pub fn table_shared<F: FrameAllocator>(mem: &PhysMem<F>, t: Frame) -> bool {
    mem.refs().get(t) > 1
}

/// The leaf table mapping `va` when every table on the way is present, found as the
/// hardware walks (arena offsets, no path kept), else `None`: the first step of the
/// one-page operations, which fall back to a [`Cursor`] when they must build, copy or
/// free a table. A non-present upper entry is 0, so `entry - PRESENT` wraps past the
/// arena and one compare tests both "present" and "inside the arena".
#[inline(always)]
pub fn leaf_of<L: Layout>(arena: &crate::arena::Arena, root: Frame, va: u64) -> Option<Frame> {
    leaf_at::<L>(arena, root, va).map(|t| Frame(t >> 12))
}

/// [`leaf_of`] as the arena byte offset of the leaf table (a frame's first byte, at most
/// [`Arena::last_frame_offset`](crate::arena::Arena::last_frame_offset)): the form the
/// one-page operations use, whose entry loads take that offset, so the walk's last bounds
/// check is also the leaf load's.
#[inline(always)]
pub fn leaf_at<L: Layout>(arena: &crate::arena::Arena, root: Frame, va: u64) -> Option<u64> {
    leaf_path::<L>(arena, root, va).map(|p| p.leaf)
}

/// Where [`leaf_path`] found `va`'s leaf table, as arena byte offsets.
#[derive(Clone, Copy, Debug)]
pub struct LeafPath {
    /// The table holding the leaf table's link (level 1).
    pub dir: u64,
    /// The link entry itself (its WRITE bit says whether the link is read-only).
    pub link: u64,
    /// The leaf table.
    pub leaf: u64,
}

/// The walk of [`leaf_at`], also noting the directory and the link on the way (the fault
/// path's [`super::PageWalk`] needs both; a caller that does not read them pays nothing).
/// `None` also when a huge entry maps `va` (no leaf table there): the callers look for
/// one off their common path.
#[inline(always)]
pub fn leaf_path<L: Layout>(arena: &crate::arena::Arena, root: Frame, va: u64) -> Option<LeafPath> {
    let last = arena.last_frame_offset();
    let mut p = LeafPath { dir: 0, link: 0, leaf: root.start_address().0 };
    let mut l = L::LEVELS - 1;
    while l > 0 {
        let e = L::entry(arena, p.leaf, index::<L>(va, l));
        (p.dir, p.link) = (p.leaf, e);
        p.leaf = link_offset::<L>(e);
        if p.leaf > last || (L::HUGE_MARK == 0 && is_huge_entry(e, l)) {
            return None;
        }
        l -= 1;
    }
    Some(p)
}

/// A leaf table that a call copied out of sharing ([`Cursor::writable_leaf`]).
#[derive(Clone, Copy, Debug)]
struct Unshared {
    /// The directory holding the link.
    dir: Frame,
    /// The link's index in `dir`.
    idx: usize,
    /// The shared table the link pointed at.
    old: Frame,
    /// The private copy it points at now.
    new: Frame,
}

/// The leaf tables one call copied out of sharing, kept so that a later failure of the
/// same call can restore the sharing exactly ([`Unshares::undo`]).
#[derive(Debug, Default)]
pub struct Unshares(Vec<Unshared>);

impl Unshares {
    /// No copies yet.
    #[inline(always)]
    pub fn new() -> Self {
        Unshares(Vec::new())
    }

    /// Undoes the copies (newest first): each copy's references are dropped and it is
    /// freed, and its link points read-only at the shared table again.
    pub fn undo<L: Layout, F: FrameAllocator>(&mut self, mem: &mut PhysMem<F>) {
        while let Some(u) = self.0.pop() {
            unref_leaves::<L, F>(mem, u.new);
            mem.free_table(u.new);
            mem.share(u.old);
            let link = L::table(mem.arena(), u.dir)[u.idx].raw();
            L::table_mut(mem.arena_mut(), u.dir)[u.idx] =
                L::Pte::from_raw((link & !(L::ADDR_MASK | WRITE)) | u.old.start_address().0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::Arena;
    use crate::frames::Bitset;
    use crate::paging::layout::next_boundary;
    use crate::paging::X86_64;

    fn mem() -> PhysMem<Bitset> {
        PhysMem::new(Arena::with_frames(64).unwrap())
    }

    #[test]
    fn find_skips_missing_regions_and_find_or_alloc_builds_the_path() {
        let mut mem = mem();
        let root = mem.alloc_table().unwrap();
        let mut cur = Cursor::<X86_64>::new(root);
        let va = 0x7f12_3456_7000;
        // Nothing below the root: skip to the end of the 512 GiB region.
        assert_eq!(cur.find(mem.arena(), va), Err(next_boundary::<X86_64>(va, 3)));
        let leaf = cur.find_or_alloc(&mut mem, va).unwrap();
        assert_eq!(mem.table_frames(), 4);
        assert_eq!(cur.find(mem.arena(), va), Ok(leaf));
        // A fresh cursor walks to the same leaf; a neighbour in the same 2 MiB shares it.
        assert_eq!(Cursor::<X86_64>::new(root).find(mem.arena(), va + 0x1000), Ok(leaf));
        // Another 2 MiB region under the same directory: only a leaf table is added.
        let other = cur.find_or_alloc(&mut mem, va + (2 << 20)).unwrap();
        assert_ne!(other, leaf);
        assert_eq!(mem.table_frames(), 5);
    }

    #[test]
    fn release_empty_frees_up_to_the_root() {
        let mut mem = mem();
        let root = mem.alloc_table().unwrap();
        let free = mem.free_frames();
        let mut cur = Cursor::<X86_64>::new(root);
        let a = 0x40_0000;
        let b = 0x60_0000; // next leaf table, same directory
        cur.find_or_alloc(&mut mem, a).unwrap();
        cur.find_or_alloc(&mut mem, b).unwrap();
        assert_eq!(mem.free_frames(), free - 4);
        cur.find(mem.arena(), a).unwrap();
        cur.release_empty(&mut mem, a);
        assert_eq!(mem.free_frames(), free - 3, "the directory still holds b's table");
        assert!(cur.find(mem.arena(), a).is_err());
        cur.find(mem.arena(), b).unwrap();
        cur.release_empty(&mut mem, b);
        assert_eq!(mem.free_frames(), free, "every table but the root is gone");
        assert!(crate::paging::layout::all_zero(mem.arena().table64(root)));
    }

    #[test]
    fn failed_allocation_leaves_no_table_behind() {
        let mut mem: PhysMem<Bitset> = PhysMem::new(Arena::with_frames(3).unwrap());
        let root = mem.alloc_table().unwrap();
        let mut cur = Cursor::<X86_64>::new(root);
        // Two frames left: PDPT and PD fit, the leaf table does not.
        assert_eq!(cur.find_or_alloc(&mut mem, 0x1000), Err(PagingError::OutOfFrames));
        assert_eq!((mem.free_frames(), mem.table_frames()), (2, 1));
        assert!(crate::paging::layout::all_zero(mem.arena().table64(root)));
    }
}
