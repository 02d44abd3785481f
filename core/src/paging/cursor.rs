//! A walk cursor: remembers the tables on the path to the last leaf table it found, so
//! that walking to a neighbouring page (or the next leaf table) re-reads only the levels
//! that changed instead of walking again from the root.
//!
//! Replaces the per-page `pt_writemap` loop of MINIX (`arch/i386/pagetable.c`), which
//! recomputed the directory entry for every page. Range operations in `ops` step through
//! their span one leaf table at a time with a cursor.

use crate::addr::Frame;
use crate::frames::{FrameAllocator, PhysMem};
use crate::paging::entry::{Pte, PRESENT, TABLE_LINK};
use crate::paging::layout::{empty_outside, entry_frame, index, shift, Layout, MAX_LEVELS};
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
    #[inline]
    pub fn find(&mut self, arena: &crate::arena::Arena, va: u64) -> Result<Frame, u64> {
        let mut l = self.lowest_valid(va);
        while l > 0 {
            let e = L::table(arena, self.path[l])[index::<L>(va, l)].raw();
            if e & PRESENT == 0 {
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
    #[inline]
    pub fn find_or_alloc<F: FrameAllocator>(
        &mut self,
        mem: &mut PhysMem<F>,
        va: u64,
    ) -> Result<Frame, PagingError> {
        let mut l = self.lowest_valid(va);
        // The level of the first table this call linked in, if any.
        let mut first_new: Option<usize> = None;
        while l > 0 {
            let idx = index::<L>(va, l);
            let e = L::table(&mem.arena, self.path[l])[idx].raw();
            let next = if e & PRESENT != 0 {
                entry_frame::<L>(e)
            } else {
                let Some(t) = crate::paging::layout::alloc_table::<L, F>(mem) else {
                    if let Some(top) = first_new {
                        self.unwind(mem, va, top, l);
                    }
                    return Err(PagingError::OutOfFrames);
                };
                L::table_mut(&mut mem.arena, self.path[l])[idx] =
                    L::Pte::from_raw(t.start_address().0 | TABLE_LINK);
                first_new.get_or_insert(l);
                t
            };
            l -= 1;
            self.path[l] = next;
            self.tag[l] = va >> shift::<L>(l + 1);
        }
        Ok(self.path[0])
    }

    /// Undoes a failed `find_or_alloc`: the tables at levels `bottom..top` on `va`'s path
    /// were just allocated (and are empty but for their one link); free them and clear the
    /// link in the level-`top` table.
    fn unwind<F: FrameAllocator>(&mut self, mem: &mut PhysMem<F>, va: u64, top: usize, bottom: usize) {
        for l in bottom..top {
            mem.free_table(self.path[l]);
            self.tag[l] = INVALID;
        }
        L::table_mut(&mut mem.arena, self.path[top])[index::<L>(va, top)] = L::Pte::ZERO;
    }

    /// The table at `level` on the path of the last walk (`level` 1 is the directory that
    /// links the leaf table).
    #[inline(always)]
    pub fn table_at(&self, level: usize) -> Frame {
        self.path[level]
    }

    /// Replaces the leaf table of the last walk (after the directory entry was pointed at
    /// a private copy of it).
    #[inline(always)]
    pub fn set_leaf(&mut self, leaf: Frame) {
        self.path[0] = leaf;
    }

    /// Releases the leaf table on `va`'s path, which the last `find` returned and which
    /// this space no longer uses (it is empty, or shared and dropped whole): a table only
    /// this space links is freed, a shared one loses one reference. Clears the link and
    /// goes on up freeing every table this leaves empty. The root is never freed.
    pub fn release_empty<F: FrameAllocator>(&mut self, mem: &mut PhysMem<F>, va: u64) {
        let mut l = 0;
        loop {
            if l == 0 && mem.refs.get(self.path[0]) > 1 {
                mem.refs.dec(self.path[0]);
            } else {
                mem.free_table(self.path[l]);
            }
            self.tag[l] = INVALID;
            let idx = index::<L>(va, l + 1);
            let parent = L::table_mut(&mut mem.arena, self.path[l + 1]);
            parent[idx] = L::Pte::ZERO;
            if l + 2 == L::LEVELS || !empty_outside(parent, idx..idx + 1) {
                return;
            }
            l += 1;
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
        assert_eq!(cur.find(&mem.arena, va), Err(next_boundary::<X86_64>(va, 3)));
        let leaf = cur.find_or_alloc(&mut mem, va).unwrap();
        assert_eq!(mem.table_frames, 4);
        assert_eq!(cur.find(&mem.arena, va), Ok(leaf));
        // A fresh cursor walks to the same leaf; a neighbour in the same 2 MiB shares it.
        assert_eq!(Cursor::<X86_64>::new(root).find(&mem.arena, va + 0x1000), Ok(leaf));
        // Another 2 MiB region under the same directory: only a leaf table is added.
        let other = cur.find_or_alloc(&mut mem, va + (2 << 20)).unwrap();
        assert_ne!(other, leaf);
        assert_eq!(mem.table_frames, 5);
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
        cur.find(&mem.arena, a).unwrap();
        cur.release_empty(&mut mem, a);
        assert_eq!(mem.free_frames(), free - 3, "the directory still holds b's table");
        assert!(cur.find(&mem.arena, a).is_err());
        cur.find(&mem.arena, b).unwrap();
        cur.release_empty(&mut mem, b);
        assert_eq!(mem.free_frames(), free, "every table but the root is gone");
        assert!(crate::paging::layout::all_zero(mem.arena.table64(root)));
    }

    #[test]
    fn failed_allocation_leaves_no_table_behind() {
        let mut mem: PhysMem<Bitset> = PhysMem::new(Arena::with_frames(3).unwrap());
        let root = mem.alloc_table().unwrap();
        let mut cur = Cursor::<X86_64>::new(root);
        // Two frames left: PDPT and PD fit, the leaf table does not.
        assert_eq!(cur.find_or_alloc(&mut mem, 0x1000), Err(PagingError::OutOfFrames));
        assert_eq!((mem.free_frames(), mem.table_frames), (2, 1));
        assert!(crate::paging::layout::all_zero(mem.arena.table64(root)));
    }
}
