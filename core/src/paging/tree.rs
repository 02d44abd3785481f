//! The one walk over the whole table tree of an address space: every table reached from
//! a root, depth first, runs of empty entries skipped. Listing the tables, listing the
//! leaf tables, counting them, copying the tree for fork and destroying it are visitors
//! of this walk ([`TreeVisitor`]); the walk itself is written once here.
//!
//! Replaces the table loops of MINIX's `pt_free` and `pt_copy`/`map_proc_copy`
//! (`arch/i386/pagetable.c`, `region.c`), which each walked the directory by hand.

use crate::addr::Frame;
use crate::arena::Arena;
use crate::frames::{FrameAllocator, PhysMem};
use crate::paging::entry::{Pte, PRESENT};
use crate::paging::layout::{entries, entry_frame, is_huge_entry, shift, Layout, RUN};

/// What a walk reads the tables from: an arena, or the physical memory holding one.
pub(crate) trait HasArena {
    /// The arena holding the tables.
    fn tables(&self) -> &Arena;
}

impl HasArena for &Arena {
    #[inline(always)]
    fn tables(&self) -> &Arena {
        self
    }
}

impl<F: FrameAllocator> HasArena for PhysMem<F> {
    #[inline(always)]
    fn tables(&self) -> &Arena {
        self.arena()
    }
}

// The walk keeps one bit per run of entries.
const _: () = assert!(1024 / RUN <= 64 && RUN <= 64);

/// What a visitor wants after [`TreeVisitor::enter`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Enter {
    /// Visit the table's entries (never those of a leaf table: they are pages), then
    /// call [`TreeVisitor::leave`].
    Walk,
    /// The visitor has dealt with the table: neither its entries nor `leave`.
    Done,
}

/// The steps of a tree walk. `C` is what the walk reads the tables from and what the
/// visitor may change (the walk re-reads a table after every step).
pub(crate) trait TreeVisitor<L: Layout, C> {
    /// Why a walk stops early.
    type Error;

    /// Reaching the table `t` at `level`, which covers the addresses from `va`.
    fn enter(&mut self, ctx: &mut C, t: Frame, level: usize, va: u64) -> Result<Enter, Self::Error>;

    /// The present entry `raw` at index `i` of the level-`level` table `t`, linking a
    /// table that covers the addresses from `va`. Returns whether to walk into it.
    #[inline(always)]
    fn link(
        &mut self,
        _ctx: &mut C,
        _t: Frame,
        _level: usize,
        _i: usize,
        _raw: u64,
        _va: u64,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }

    /// The huge entry `raw` at index `i` of the directory `t`, mapping the block from
    /// `va` (the walk never descends into one).
    #[inline(always)]
    fn huge(&mut self, _ctx: &mut C, _t: Frame, _i: usize, _raw: u64, _va: u64) -> Result<(), Self::Error> {
        Ok(())
    }

    /// Entries `i .. i + n` of the level-`level` table `t` are empty.
    #[inline(always)]
    fn empty(&mut self, _ctx: &mut C, _t: Frame, _level: usize, _i: usize, _n: usize) {}

    /// After the entries of the table `t` at `level`.
    #[inline(always)]
    fn leave(&mut self, _ctx: &mut C, _t: Frame, _level: usize) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Walks the tree under the table `t` at `level` (covering from `va`) with `v`.
///
/// # Errors
/// The visitor's first error; the walk stops there.
pub(crate) fn walk_tree<L: Layout, C: HasArena, V: TreeVisitor<L, C>>(
    ctx: &mut C,
    v: &mut V,
    t: Frame,
    level: usize,
    va: u64,
) -> Result<(), V::Error> {
    if v.enter(ctx, t, level, va)? == Enter::Done {
        return Ok(());
    }
    if level > 0 {
        // Which runs of entries hold anything, from one look at the table (the visitor
        // never changes the table being walked, only tables below it or elsewhere).
        let mut used = 0u64;
        for (r, run) in L::table(ctx.tables(), t).chunks_exact(RUN).enumerate() {
            used |= u64::from(!L::Pte::all_zero(run)) << r;
        }
        for r in 0..entries::<L>() / RUN {
            let first = r * RUN;
            if used & (1 << r) == 0 {
                v.empty(ctx, t, level, first, RUN);
                continue;
            }
            // One bit per present entry of the run, then each present entry read where it
            // is (no copy of the run: the visitor changes no entry of this table).
            let mut present = 0u64;
            for (k, e) in L::table(ctx.tables(), t)[first..first + RUN].iter().enumerate() {
                present |= u64::from(e.raw() & PRESENT != 0) << k;
            }
            let mut k = 0;
            while present != 0 {
                let gap = present.trailing_zeros() as usize;
                if gap > 0 {
                    v.empty(ctx, t, level, first + k, gap);
                }
                let i = first + k + gap;
                let e = L::table(ctx.tables(), t)[i].raw();
                let sub_va = va + ((i as u64) << shift::<L>(level));
                if is_huge_entry(e, level) {
                    v.huge(ctx, t, i, e, sub_va)?;
                } else if v.link(ctx, t, level, i, e, sub_va)? {
                    walk_tree::<L, C, V>(ctx, v, entry_frame::<L>(e), level - 1, sub_va)?;
                }
                present = (present >> gap) >> 1;
                k += gap + 1;
            }
            if k < RUN {
                v.empty(ctx, t, level, first + k, RUN - k);
            }
        }
    }
    v.leave(ctx, t, level)
}

/// Walks the whole tree of the address space rooted at `root`.
///
/// # Errors
/// The visitor's first error.
#[inline]
pub(crate) fn walk_space<L: Layout, C: HasArena, V: TreeVisitor<L, C>>(
    ctx: &mut C,
    v: &mut V,
    root: Frame,
) -> Result<(), V::Error> {
    walk_tree::<L, C, V>(ctx, v, root, L::LEVELS - 1, 0)
}
