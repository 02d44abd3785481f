//! The shape of a page-table format: how many levels, how many entries per table, which
//! virtual-address bits index each level, where the physical address sits in an entry.
//!
//! Replaces MINIX's `I386_VM_PDE`/`I386_VM_PTE` index macros (`arch/i386/include/vm.h`)
//! and generalises them to four levels. Level 0 is the leaf table (PT); level
//! `LEVELS - 1` is the root (PD on i386, PML4 on x86-64). An entry at level `l` covers
//! `1 << shift(l)` bytes.

use crate::addr::Frame;
use crate::arena::Arena;
use crate::paging::entry::Pte;
use crate::paging::{PageFlags, PagingError};

/// The most levels any format has (x86-64's four).
pub const MAX_LEVELS: usize = 4;

/// A format description: everything the generic operations in `ops` need to know.
/// Implemented by [`super::X86_64`] and [`super::I386`]; every such type is a
/// [`super::PagingFormat`].
pub trait Layout: 'static {
    /// The stored entry type (`u64` or `u32`).
    type Pte: Pte;
    /// Name used on the command line.
    const NAME: &'static str;
    /// Number of table levels (at most [`MAX_LEVELS`]).
    const LEVELS: usize;
    /// Virtual-address bits consumed per level (entries per table = `1 << INDEX_BITS`).
    const INDEX_BITS: u32;
    /// Exclusive end of mappable virtual addresses.
    const VA_END: u64;
    /// Exclusive end of frame numbers an entry can hold.
    const FRAME_END: u64;
    /// The physical-address bits of an entry.
    const ADDR_MASK: u64;
    /// A bit the hardware ignores in a huge directory entry that every huge entry of this
    /// format carries beside `PS`, above [`Layout::ADDR_MASK`], so that the walk's one
    /// compare ("present, and a table inside the arena") also stops at a huge entry
    /// ([`link_offset`]); 0 when the format has none (i386: a 32-bit entry has no such
    /// bit, so its walk tests `PS` itself).
    const HUGE_MARK: u64;

    /// `frame` as a table of this format.
    fn table(arena: &Arena, frame: Frame) -> &[Self::Pte];
    /// `frame` as a writable table of this format.
    fn table_mut(arena: &mut Arena, frame: Frame) -> &mut [Self::Pte];
    /// Entry `index` (taken modulo the table size) of the table at arena byte `table`,
    /// widened: the walk's load.
    fn entry(arena: &Arena, table: u64, index: usize) -> u64;
    /// The entry at arena byte `offset`, widened.
    fn load(arena: &Arena, offset: u64) -> u64;
    /// Stores the entry at arena byte `offset`.
    fn store(arena: &mut Arena, offset: u64, raw: u64);
    /// Two distinct frames as writable tables.
    fn tables_both_mut(arena: &mut Arena, a: Frame, b: Frame) -> (&mut [Self::Pte], &mut [Self::Pte]);
}

/// Allocates a zeroed table frame that an entry of this format can point to (on i386, a
/// frame below 4 GiB). A frame beyond reach is given back and counts as none.
#[inline]
pub fn alloc_table<L: Layout, F: crate::frames::FrameAllocator>(
    mem: &mut crate::frames::PhysMem<F>,
) -> Option<Frame> {
    let t = mem.alloc_table()?;
    if t.0 >= L::FRAME_END {
        mem.free_table(t);
        return None;
    }
    Some(t)
}

/// Allocates a table frame like [`alloc_table`] but leaves its contents as they were, for
/// a caller that overwrites every entry.
#[inline]
pub fn alloc_table_uninit<L: Layout, F: crate::frames::FrameAllocator>(
    mem: &mut crate::frames::PhysMem<F>,
) -> Option<Frame> {
    let t = mem.alloc_table_uninit()?;
    if t.0 >= L::FRAME_END {
        mem.free_table(t);
        return None;
    }
    Some(t)
}

/// The arena byte offset of the table the upper-level entry `e` links, or a value past
/// every arena offset when it links none: not present (such an entry is 0, so the
/// subtraction wraps), or a huge entry of a format with a [`Layout::HUGE_MARK`].
#[inline(always)]
pub const fn link_offset<L: Layout>(e: u64) -> u64 {
    (e & (L::ADDR_MASK | crate::paging::entry::PRESENT | L::HUGE_MARK))
        .wrapping_sub(crate::paging::entry::PRESENT)
}

/// Whether the level-`level` entry `e` is a huge entry (`PS` in a directory entry).
#[inline(always)]
pub const fn is_huge_entry(e: u64, level: usize) -> bool {
    level == 1 && e & crate::paging::entry::HUGE != 0
}

/// Entries per table.
#[inline(always)]
pub const fn entries<L: Layout>() -> usize {
    1 << L::INDEX_BITS
}

/// log2 of the bytes one entry at `level` covers.
#[inline(always)]
pub const fn shift<L: Layout>(level: usize) -> u32 {
    12 + level as u32 * L::INDEX_BITS
}

/// The index into the level-`level` table for `va`.
#[inline(always)]
pub const fn index<L: Layout>(va: u64, level: usize) -> usize {
    ((va >> shift::<L>(level)) as usize) & (entries::<L>() - 1)
}

/// The first address after the region that `va`'s entry at `level` covers.
#[inline(always)]
pub const fn next_boundary<L: Layout>(va: u64, level: usize) -> u64 {
    (va | ((1u64 << shift::<L>(level)) - 1)) + 1
}

/// The arena byte offset of `va`'s entry in the level-`level` table at byte `table`.
#[inline(always)]
pub const fn entry_offset<L: Layout>(table: u64, va: u64, level: usize) -> u64 {
    table + ((index::<L>(va, level) * core::mem::size_of::<L::Pte>()) as u64)
}

/// The frame an entry points to.
#[inline(always)]
pub const fn entry_frame<L: Layout>(raw: u64) -> Frame {
    Frame((raw & L::ADDR_MASK) >> 12)
}

/// Whether the table entries in `t` outside `skip` are all zero (the table is empty once
/// `skip` has been cleared). Looks past `skip` first: in a range walk, the entries after
/// it are the likeliest to be still in use.
#[inline]
pub fn empty_outside<P: Pte>(t: &[P], skip: core::ops::Range<usize>) -> bool {
    let (before, rest) = t.split_at(skip.start);
    let after = &rest[skip.end - skip.start..];
    all_zero(after) && all_zero(before)
}

/// Entries checked together when skipping empty runs of a table.
pub const RUN: usize = 32;

/// Whether every entry of `t` is zero (vectorised OR-reduction in runs).
#[inline]
pub fn all_zero<P: Pte>(t: &[P]) -> bool {
    let mut runs = t.chunks_exact(RUN);
    for r in &mut runs {
        if !P::all_zero(r) {
            return false;
        }
    }
    P::all_zero(runs.remainder())
}

/// Checks that frames `first .. first + count` fit in an entry and, unless DIRECT, lie in
/// the arena (a counted frame must have a reference count).
#[inline]
pub(crate) fn check_frames<L: Layout>(
    arena: &Arena,
    first: Frame,
    count: u64,
    flags: PageFlags,
) -> Result<(), PagingError> {
    let end = first.0.checked_add(count).ok_or(PagingError::FrameOutOfRange(first))?;
    if end > L::FRAME_END {
        return Err(PagingError::FrameOutOfRange(Frame(first.0.max(L::FRAME_END))));
    }
    if !flags.contains(PageFlags::DIRECT) && end > arena.frames() {
        return Err(PagingError::FrameOutOfRange(Frame(first.0.max(arena.frames()))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paging::{I386, X86_64};

    #[test]
    fn x86_64_indices_match_the_manual() {
        // VA 0x7f1234567000 -> pml4[254] pdpt[72] pd[418] pt[359]
        let va = 0x7f12_3456_7000;
        assert_eq!(index::<X86_64>(va, 3), 254);
        assert_eq!(index::<X86_64>(va, 2), 72);
        assert_eq!(index::<X86_64>(va, 1), 418);
        assert_eq!(index::<X86_64>(va, 0), 359);
        assert_eq!(index::<X86_64>(va, 3), x86::bits64::paging::pml4_index(x86::bits64::paging::VAddr(va)));
        assert_eq!(next_boundary::<X86_64>(va, 0), va + 0x1000);
        assert_eq!(next_boundary::<X86_64>(va, 1), 0x7f12_3460_0000);
    }

    #[test]
    fn i386_indices_match_the_manual() {
        let va = 0x0804_8123;
        assert_eq!(index::<I386>(va, 1), 32);
        assert_eq!(index::<I386>(va, 0), 72);
        assert_eq!(next_boundary::<I386>(va, 1), 0x0840_0000);
        assert_eq!(next_boundary::<I386>(0xffc0_0000, 1), 1 << 32);
    }

    #[test]
    fn emptiness_scans() {
        let mut t = [0u64; 512];
        assert!(all_zero(&t));
        t[300] = 1;
        assert!(!all_zero(&t));
        assert!(empty_outside(&t, 300..301));
        assert!(!empty_outside(&t, 0..300));
        t[511] = 1;
        assert!(!empty_outside(&t, 300..301));
    }
}
