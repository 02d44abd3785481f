//! Copying a whole address space for fork: copy-on-write (per-page, structural table
//! copy), shared leaf tables (on-demand fork) or eager (every private page copied at once).
//!
//! Replaces MINIX's `map_proc_copy`/`map_copy_region` + `map_writept` + `pt_writemap`
//! loop (`region.c`, `pagetable.c`), which re-walked from the root for every page. Here
//! the parent's tables are copied one table frame at a time by the tree walk
//! ([`super::tree`]), skipping runs of empty entries; the leaf passes are in
//! [`super::leaf`].
//!
//! In `Share` mode (on-demand fork, as in the On-Demand-Fork paper, EuroSys 2021) only the
//! upper levels are copied: the child's directory entries point at the parent's leaf
//! tables, whose reference count goes up by one per link, and both links lose WRITE. The
//! leaf entries are not touched, so fork costs one pass over the directories whatever the
//! number of pages; the first modification under such a link copies that one table (see
//! `Cursor::writable_leaf` and the rule in the [`super`] module documentation).
//!
//! Allocate-then-commit: every table frame the child needs is allocated before anything
//! is written (they are chained through their first word while they wait), so copy-on-
//! write fork cannot fail halfway. Eager fork also allocates page frames as it goes; if
//! one is refused, the partly built child (always a consistent address space) is
//! destroyed. Either way the parent is untouched on error and nothing leaks.

use crate::addr::Frame;
use crate::frames::{FrameAllocator, PhysMem};
use crate::paging::entry::Pte;
use crate::paging::layout::{Layout, MAX_LEVELS};
use crate::paging::leaf::{copy_leaf_cow, copy_leaf_eager, destroy_table, share_leaf_tables};
use crate::paging::tree::{walk_space, Enter, TreeVisitor};
use crate::paging::{huge, ForkPolicy, PagingError};
use core::convert::Infallible;

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
            let Some(f) = mem.alloc_table_uninit() else {
                s.free(mem);
                return Err(PagingError::OutOfFrames);
            };
            if f.0 >= L::FRAME_END {
                mem.free_table(f);
                s.free(mem);
                return Err(PagingError::OutOfFrames);
            }
            mem.arena_mut().table64_mut(f)[0] = s.head;
            s.head = f.0;
        }
        Ok(s)
    }

    /// Takes one frame; its contents are garbage, to be overwritten entirely.
    #[inline]
    fn take<F: FrameAllocator>(&mut self, mem: &PhysMem<F>) -> Frame {
        debug_assert_ne!(self.head, NIL, "table count was wrong");
        let f = Frame(self.head);
        self.head = mem.arena().table64(f)[0];
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

/// Counts the tables of a space (root included); leaf tables only when `leaves`.
struct CountTables {
    leaves: bool,
    n: u64,
}

impl<L: Layout, F: FrameAllocator> TreeVisitor<L, PhysMem<F>> for CountTables {
    type Error = Infallible;

    #[inline(always)]
    fn enter(&mut self, _: &mut PhysMem<F>, _: Frame, level: usize, _: u64) -> Result<Enter, Infallible> {
        self.n += 1;
        // Without leaf tables, a directory's entries need no look.
        Ok(if level == 0 || (level == 1 && !self.leaves) { Enter::Done } else { Enter::Walk })
    }

    #[inline(always)]
    fn link(
        &mut self,
        _: &mut PhysMem<F>,
        _: Frame,
        level: usize,
        _: usize,
        _: u64,
        _: u64,
    ) -> Result<bool, Infallible> {
        Ok(level > 1 || self.leaves)
    }
}

/// Builds the child's tables while the walk goes over the parent's: `child[l]` is the
/// child's table at level `l` on the path of the walk (taken from the spares when the
/// walk links into the parent's table at that level). An upper table starts as a copy
/// of the parent's (eager fork: zeroed, so that a failure leaves the child consistent),
/// so empty entries need no step of their own.
struct CopyTables<'s> {
    spares: &'s mut Spares,
    mode: ForkPolicy,
    child: [Frame; MAX_LEVELS],
}

impl<L: Layout, F: FrameAllocator> TreeVisitor<L, PhysMem<F>> for CopyTables<'_> {
    type Error = PagingError;

    #[inline(always)]
    fn enter(&mut self, mem: &mut PhysMem<F>, t: Frame, level: usize, _: u64) -> Result<Enter, PagingError> {
        let child = self.child[level];
        match (level, self.mode) {
            (0, ForkPolicy::Cow | ForkPolicy::Share) => copy_leaf_cow::<L, F>(mem, t, child),
            (0, ForkPolicy::Copy) => copy_leaf_eager::<L, F>(mem, t, child)?,
            (1, ForkPolicy::Share) => share_leaf_tables::<L, F>(mem, t, child),
            (_, ForkPolicy::Copy) => {
                // Eager fork can fail below: zero the table first so that a failure
                // leaves the child consistent (every entry owns what it links, or is 0;
                // the count is then too high, but the child is destroyed at once).
                L::table_mut(mem.arena_mut(), child).fill(L::Pte::ZERO);
                mem.set_live(child, mem.live(t));
                return Ok(Enter::Walk);
            }
            _ => {
                // Start from the parent's entries (empty ones are then right already);
                // `link` points every present one at the child's own table.
                mem.arena_mut().copy_frame(t, child);
                mem.set_live(child, mem.live(t));
                return Ok(Enter::Walk);
            }
        }
        Ok(Enter::Done)
    }

    /// A huge entry of the parent's directory `t`: copy-on-write, or (eager fork) a copy
    /// of the block. (On-demand fork's directory pass deals with its own.)
    #[inline(always)]
    fn huge(
        &mut self,
        mem: &mut PhysMem<F>,
        t: Frame,
        i: usize,
        raw: u64,
        _: u64,
    ) -> Result<(), PagingError> {
        match self.mode {
            ForkPolicy::Copy => huge::fork_huge_copy::<L, F>(mem, self.child[1], i, raw),
            ForkPolicy::Cow | ForkPolicy::Share => {
                huge::fork_huge_cow::<L, F>(mem, t, self.child[1], i, raw);
                Ok(())
            }
        }
    }

    #[inline(always)]
    fn link(
        &mut self,
        mem: &mut PhysMem<F>,
        _: Frame,
        level: usize,
        i: usize,
        raw: u64,
        _: u64,
    ) -> Result<bool, PagingError> {
        let sub = self.spares.take(mem);
        L::table_mut(mem.arena_mut(), self.child[level])[i] =
            L::Pte::from_raw((raw & !L::ADDR_MASK) | sub.start_address().0);
        self.child[level - 1] = sub;
        Ok(true)
    }
}

/// See [`crate::paging::PagingFormat::fork_copy`].
pub(crate) fn fork_copy<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    parent: Frame,
    mode: ForkPolicy,
) -> Result<Frame, PagingError> {
    let mut count = CountTables { leaves: mode != ForkPolicy::Share, n: 0 };
    let Ok(()) = walk_space::<L, PhysMem<F>, CountTables>(mem, &mut count, parent);
    let mut spares = Spares::alloc::<L, F>(mem, count.n)?;
    let child = spares.take(mem);
    let mut copy = CopyTables { spares: &mut spares, mode, child: [child; MAX_LEVELS] };
    let result = walk_space::<L, PhysMem<F>, CopyTables>(mem, &mut copy, parent);
    if result.is_err() {
        destroy_table::<L, F>(mem, child, L::LEVELS - 1);
    }
    spares.free(mem);
    result.map(|()| child)
}
