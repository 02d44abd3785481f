//! The one walk over the leaf spans of an address range: for each leaf table that maps
//! part of `start..end`, the visitor gets the table and the run of its entries inside
//! the range. Every range operation (map, unmap, protect, the sharing checks before
//! them, listing mappings) is a visitor of this walk; the walk is written once here and
//! inlined into each.
//!
//! Replaces the per-range loops of MINIX's `map_writept`/`pt_writemap` (`region.c`,
//! `arch/i386/pagetable.c`), which walked from the directory for every page.

use crate::addr::Frame;
use crate::frames::{FrameAllocator, PhysMem};
use crate::paging::cursor::Cursor;
use crate::paging::layout::{entries, index, next_boundary, Layout};
use crate::paging::tree::HasArena;
use crate::paging::PagingError;

/// One leaf table's part of a range: entries `i0 .. i0 + n` of `leaf` map `va .. stop`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LeafSpan {
    /// First address of the part.
    pub va: u64,
    /// End of the part.
    pub stop: u64,
    /// The leaf table, as the cursor found it.
    pub leaf: Frame,
    /// Index of the first entry.
    pub i0: usize,
    /// Number of entries.
    pub n: usize,
}

impl LeafSpan {
    /// Whether the part is the whole table.
    #[inline(always)]
    pub fn whole<L: Layout>(&self) -> bool {
        self.n == entries::<L>()
    }
}

/// How the walk gets a leaf table: [`Existing`] skips the parts of the range without
/// one, [`Allocating`] builds the missing tables.
pub(crate) trait FindLeaf<C> {
    /// The leaf table for `va`, or `Ok(Err(next))` when nothing is mapped up to `next`.
    ///
    /// # Errors
    /// [`PagingError::OutOfFrames`] from an allocating find (nothing has changed then).
    fn leaf<L: Layout>(ctx: &mut C, cur: &mut Cursor<L>, va: u64) -> Result<Result<Frame, u64>, PagingError>;
}

/// Walk the tables that exist.
pub(crate) struct Existing;

impl<C: HasArena> FindLeaf<C> for Existing {
    #[inline(always)]
    fn leaf<L: Layout>(ctx: &mut C, cur: &mut Cursor<L>, va: u64) -> Result<Result<Frame, u64>, PagingError> {
        Ok(cur.find(ctx.tables(), va))
    }
}

/// Walk the whole range, allocating missing tables.
pub(crate) struct Allocating;

impl<F: FrameAllocator> FindLeaf<PhysMem<F>> for Allocating {
    #[inline(always)]
    fn leaf<L: Layout>(
        mem: &mut PhysMem<F>,
        cur: &mut Cursor<L>,
        va: u64,
    ) -> Result<Result<Frame, u64>, PagingError> {
        cur.find_or_alloc(mem, va).map(Ok)
    }
}

/// Calls `visit` for every leaf table's part of `start..end`, in address order, with the
/// cursor positioned on it.
///
/// # Errors
/// The first error of the find or of the visitor; the walk stops there.
#[inline(always)]
pub(crate) fn walk_spans<L, C, W, E>(
    ctx: &mut C,
    cur: &mut Cursor<L>,
    start: u64,
    end: u64,
    mut visit: impl FnMut(&mut C, &mut Cursor<L>, LeafSpan) -> Result<(), E>,
) -> Result<(), E>
where
    L: Layout,
    W: FindLeaf<C>,
    E: From<PagingError>,
{
    let mut va = start;
    while va < end {
        let leaf = match W::leaf(ctx, cur, va)? {
            Ok(t) => t,
            Err(next) => {
                va = next;
                continue;
            }
        };
        let stop = next_boundary::<L>(va, 1).min(end);
        let span = LeafSpan { va, stop, leaf, i0: index::<L>(va, 0), n: ((stop - va) >> 12) as usize };
        visit(ctx, cur, span)?;
        va = stop;
    }
    Ok(())
}
