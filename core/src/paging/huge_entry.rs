//! The huge entry as data: a page-directory entry with `PS` set that maps a whole
//! naturally aligned block (512 pages = 2 MiB on x86-64, 1024 pages = 4 MiB on i386 with
//! PSE). Here: encoding and decoding one, finding one under an address or in a range, and
//! the reference steps on its frames (drop, share, the fork's copy-on-write marking).
//!
//! MINIX has no huge pages; these are the data halves of Linux's `pmd_mkhuge`,
//! `pmd_trans_huge` and the reference steps of `copy_huge_pmd` and `zap_huge_pmd`. The
//! operations that build or split tables around a huge entry are in `crate::paging::huge`,
//! which states the ownership rule: every 4 KiB frame of a huge entry holds one reference.

use crate::addr::Frame;
use crate::arena::Arena;
use crate::frames::{FrameAllocator, PhysMem};
use crate::paging::entry::{self, Pte, HUGE, PRESENT};
use crate::paging::layout::{entries, entry_frame, index, next_boundary, shift, Layout};
use crate::paging::{Mapping, PageFlags};

/// 4 KiB pages in a huge block of the format.
#[inline(always)]
pub(crate) const fn block_pages<L: Layout>() -> u64 {
    entries::<L>() as u64
}

/// The huge entry mapping the block from `first` with `flags`.
#[inline]
pub(crate) fn huge_entry<L: Layout>(first: Frame, flags: PageFlags) -> u64 {
    PRESENT | HUGE | L::HUGE_MARK | entry::to_raw(flags) | first.start_address().0
}

/// The mapping of the page at `va` through the huge entry `e`.
#[inline]
pub(crate) fn huge_mapping<L: Layout>(e: u64, va: u64) -> Mapping {
    Mapping { frame: entry_frame::<L>(e).add(index::<L>(va, 0) as u64), flags: entry::from_raw(e) }
}

/// Whether the raw entry `e` of a directory is a present huge entry.
#[inline(always)]
pub(crate) const fn is_huge(e: u64) -> bool {
    e & (PRESENT | HUGE) == PRESENT | HUGE
}

/// The directory entry covering `va` — (directory, index, raw entry) — when every table
/// above it is present.
#[inline]
pub(crate) fn dir_entry<L: Layout>(arena: &Arena, root: Frame, va: u64) -> Option<(Frame, usize, u64)> {
    if va >= L::VA_END {
        return None;
    }
    let mut t = root;
    let mut l = L::LEVELS - 1;
    while l > 1 {
        let e = L::table(arena, t)[index::<L>(va, l)].raw();
        if e & PRESENT == 0 {
            return None;
        }
        t = entry_frame::<L>(e);
        l -= 1;
    }
    let i = index::<L>(va, 1);
    Some((t, i, L::table(arena, t)[i].raw()))
}

/// The huge entry mapping `va`, if one does: (directory, index, raw entry).
#[inline]
pub(crate) fn huge_at<L: Layout>(arena: &Arena, root: Frame, va: u64) -> Option<(Frame, usize, u64)> {
    dir_entry::<L>(arena, root, va).filter(|&(_, _, e)| is_huge(e))
}

/// Calls `f(directory, index, raw entry, first address)` for every huge entry mapping
/// part of `start..end`, in address order.
pub(crate) fn for_each_huge<L: Layout>(
    arena: &Arena,
    root: Frame,
    start: u64,
    end: u64,
    f: &mut dyn FnMut(Frame, usize, u64, u64),
) {
    let end = end.min(L::VA_END);
    let mut va = start;
    'blocks: while va < end {
        let mut t = root;
        let mut l = L::LEVELS - 1;
        while l > 1 {
            let e = L::table(arena, t)[index::<L>(va, l)].raw();
            if e & PRESENT == 0 {
                va = next_boundary::<L>(va, l);
                continue 'blocks;
            }
            t = entry_frame::<L>(e);
            l -= 1;
        }
        // This directory's part of the range.
        let stop = next_boundary::<L>(va, 2).min(end);
        let base = va & !((1u64 << shift::<L>(2)) - 1);
        for i in index::<L>(va, 1)..=index::<L>(stop - 1, 1) {
            let e = L::table(arena, t)[i].raw();
            if is_huge(e) {
                f(t, i, e, base + ((i as u64) << shift::<L>(1)));
            }
        }
        va = stop;
    }
}

/// Drops the reference of every frame of the huge entry `e`.
#[inline]
pub(crate) fn unref_block<L: Layout, F: FrameAllocator>(mem: &mut PhysMem<F>, e: u64) {
    let first = entry_frame::<L>(e);
    let (_, mut counts) = mem.split();
    for k in 0..block_pages::<L>() {
        counts.unref(first.add(k));
    }
}

/// Adds a reference to every frame of the huge entry `e`.
#[inline]
pub(crate) fn share_block<L: Layout, F: FrameAllocator>(mem: &mut PhysMem<F>, e: u64) {
    let first = entry_frame::<L>(e);
    let (_, mut counts) = mem.split();
    for k in 0..block_pages::<L>() {
        counts.inc(first.add(k));
    }
}

/// The fork of one huge entry `e` of the parent's directory `parent` (index `i`) into
/// the child's directory `child`, copy-on-write: a private writable entry loses WRITE and
/// gains COW on both sides, every frame gains a reference.
pub(crate) fn fork_huge_cow<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    parent: Frame,
    child: Frame,
    i: usize,
    e: u64,
) {
    let ne = entry::fork_cow(e);
    L::table_mut(mem.arena_mut(), parent)[i] = L::Pte::from_raw(ne);
    L::table_mut(mem.arena_mut(), child)[i] = L::Pte::from_raw(ne);
    share_block::<L, F>(mem, e);
    mem.add_huge(1);
}

/// On-demand fork's directory pass meets huge entries as links: before it, each huge
/// entry of `parent` is forked copy-on-write (a writable private entry becomes COW, one
/// more reference per frame); the pass then copies it to the child read-only and adds a
/// reference to its first frame as for a leaf table, which [`unshare_huge_links`] takes
/// back. Returns the indices of the huge entries.
#[cold]
#[inline(never)]
pub(crate) fn share_huge_entries<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    parent: Frame,
) -> Vec<usize> {
    let mut found = Vec::new();
    for i in 0..entries::<L>() {
        let e = L::table(mem.arena(), parent)[i].raw();
        if is_huge(e) {
            L::table_mut(mem.arena_mut(), parent)[i] = L::Pte::from_raw(entry::fork_cow(e));
            share_block::<L, F>(mem, e);
            mem.add_huge(1);
            found.push(i);
        }
    }
    found
}

/// The end of [`share_huge_entries`]: the leaf-table reference the directory pass added
/// to each huge entry's first frame goes again.
#[cold]
#[inline(never)]
pub(crate) fn unshare_huge_links<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    parent: Frame,
    found: &[usize],
) {
    for &i in found {
        let e = L::table(mem.arena(), parent)[i].raw();
        mem.unref(entry_frame::<L>(e));
    }
}
