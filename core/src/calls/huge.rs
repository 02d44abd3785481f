//! Huge pages on the fault path: Linux's PMD-mapped transparent huge pages as a strategy
//! ([`HugePolicy`]), one page-directory entry with `PS` mapping a whole block
//! ([`PagingFormat::HUGE_PAGES`] pages: 2 MiB on x86-64, 4 MiB on i386).
//!
//! MINIX maps one 4 KiB page per fault (`map_pf` → `map_handle_memory`) and has no huge
//! pages; there is nothing of it to replace. The rules below follow Linux
//! (`mm/huge_memory.c`, `mm/memory.c`), read for this module:
//!
//! - **Where** (`__handle_mm_fault` → `create_huge_pmd` → `do_huge_pmd_anonymous_page`,
//!   `thp_vma_suitable_order`): a fault in a **private anonymous** region whose naturally
//!   aligned block around the page lies wholly inside the region, and whose directory
//!   entry is empty (`pmd_none`: no leaf table, no huge entry). A block with a leaf table
//!   (some page already mapped by 4 KiB entries) never becomes huge on a fault (Linux
//!   leaves that to khugepaged's collapse, which vmstorm does not model). Shared memory
//!   and direct physical regions never get huge entries. Under [`HugePolicy::Never`] none
//!   of this runs (one compare on the fault path).
//! - **Write fault**: a block of frames from the allocator's contiguous path, aligned to
//!   its count, zeroed, mapped writable by one huge entry (`__do_huge_pmd_anonymous_page`).
//! - **Read fault**: the **huge zero page** (`mm_get_huge_zero_folio`,
//!   `set_huge_zero_folio`): one zeroed block the server allocates on the first such
//!   fault and keeps for good, mapped read-only. How it is referenced: the server pins it
//!   with one reference per frame, and **every mapping holds its own reference per frame
//!   as well** — the ownership rule of every other mapping — so unmap, split, fork and exit
//!   need no case of their own, the pinned frames never reach zero, and a write fault can
//!   never take it for this space's own (its counts are at least 2). The sanity checker
//!   counts the pin. (Linux counts references on the huge zero folio itself, not per page
//!   and mapping, and its shrinker may free it when no process uses it; vmstorm keeps it.)
//!   A split of a huge-zero mapping keeps its frames page by page (Linux's
//!   `__split_huge_zero_page_pmd` maps the 4 KiB zero page in every entry instead; vmstorm
//!   has no 4 KiB zero page).
//! - **Fallback order** (`VM_FAULT_FALLBACK` → `handle_pte_fault` → `do_anonymous_page`
//!   → `alloc_anon_folio`): huge block → the anonymous folio size if one is set
//!   ([`crate::calls::folio`]) → 4 KiB. A block that cannot be had (no aligned free run:
//!   Linux's `THP_FAULT_FALLBACK`; or no frame for a table above the directory) is counted
//!   in `huge_fallbacks` and is never a fault failure; running out at the last fallback
//!   fails the fault with the state as it was.
//! - **Write to a huge-zero mapping** (`do_huge_pmd_wp_page` → `do_huge_zero_wp_pmd`,
//!   Linux 6.x): a fresh zeroed block replaces it; when none can be had (a fallback), the
//!   entry is split and the written page copied alone, as Linux falls back to
//!   `__split_huge_pmd` and the 4 KiB copy-on-write (`do_wp_page`).
//! - **Write to a read-only huge entry** (after fork; `do_huge_pmd_wp_page`): when every
//!   frame of the block is this space's alone (Linux: the folio is exclusive), the entry
//!   is made writable again; else it is split into a leaf table and the one written page
//!   takes the 4 KiB copy-on-write path. Nothing is allocated before the copy's frame and
//!   the leaf table are both in hand.
//! - **Fork** (`copy_huge_pmd`): the child gets the huge entry too, both sides read-only
//!   (a writable private entry becomes COW), one more reference per frame. Under the
//!   other fork policies: on-demand fork ([`ForkPolicy::Share`](crate::paging::ForkPolicy::Share)) shares leaf tables, and
//!   a huge entry has none, so it is forked copy-on-write exactly as above (what the
//!   leaf entries of a shared table get when it is first copied); eager fork
//!   ([`ForkPolicy::Copy`](crate::paging::ForkPolicy::Copy)) copies the block into a new aligned block at once, and fails
//!   the fork like a 4 KiB page copy that finds no frame when none is free.
//! - **Split** (`__split_huge_pmd`): munmap, mprotect, mremap, discard and anything else
//!   that changes entries in a range ([`PagingFormat::unmap_range`],
//!   [`PagingFormat::protect_range`]) first split every huge entry their range touches
//!   into a leaf table of the same frames and flags, all or none. Because every frame of
//!   a block holds its own reference, a split moves no count; an unmapped page's frame is
//!   freed at once.
//! - **Exit** (`zap_huge_pmd`): the whole block's references go with the address space.
//!
//! Where vmstorm differs from Linux on purpose:
//! - Linux deposits a preallocated page table with every huge PMD, the huge zero page's
//!   included (`pte_alloc_one` + `pgtable_trans_huge_deposit`; a fault that cannot get it
//!   is an OOM, not a fallback), so that a split can never fail; vmstorm allocates the
//!   leaf table when it splits, so a call that must split fails with `ENOMEM` (nothing
//!   changed) when no frame is left, a huge page costs no table frame until then, and a
//!   huge fault never fails for want of one.
//! - A range covering a whole block is split too, then cleared or changed page by page
//!   (Linux's `zap_huge_pmd`/`change_huge_pmd` act on the PMD itself): the result is the
//!   same, the cost is one transient table frame.
//! - After a split Linux keeps the large folio whole and queues it for a deferred split,
//!   freeing a partly unmapped folio's unmapped pages only under memory pressure; vmstorm
//!   frees each unmapped page at once (the folio module's rule).
//! - No khugepaged: blocks already populated by 4 KiB pages are never collapsed.
//! - Under on-demand fork a huge entry is copied as above (Linux has no shared leaf
//!   tables to compare with).

use crate::addr::{Frame, VirtAddr, PAGE_SIZE};
use crate::frames::FrameAllocator;
use crate::paging::{LeafLink, Mapping, PageFlags, PageWalk, PagingFormat};
use crate::region::{MemType, Region};
use crate::server::{HugePolicy, Vm};

use super::fault_error::FaultError;

/// Maps a huge entry over the missing page of `w` (in `region`) when the rules above
/// allow it: a zeroed block for a write, the huge zero page for a read. Returns whether
/// it did; when not, nothing has changed and the caller takes the smaller paths.
#[inline(never)]
pub(crate) fn fault_in_huge<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    root: Frame,
    w: &PageWalk,
    region: &Region,
    write: bool,
) -> bool {
    debug_assert_ne!(vm.huge, HugePolicy::Never);
    if region.mem != MemType::Anon || w.link != LeafLink::Writable || w.has_leaf_table() {
        return false;
    }
    let n = P::HUGE_PAGES;
    let bytes = n * PAGE_SIZE;
    let start = w.page.0 & !(bytes - 1);
    let Some(end) = start.checked_add(bytes) else { return false };
    if start < region.start.0 || end > region.end().0 || end > P::VA_END {
        return false;
    }
    let flags = region.leaf_flags();
    if write {
        let Some(first) = vm.mem.alloc_contiguous(n, n) else {
            vm.stats.huge_fallbacks += 1;
            return false;
        };
        for k in 0..n {
            vm.mem.arena_mut().zero_frame(first.add(k));
        }
        if P::map_huge(&mut vm.mem, root, VirtAddr(start), first, flags).is_err() {
            // No frame for a table above the directory, or a block beyond the format's
            // reach: give the block back and let the smaller paths try.
            unref_block(vm, first);
            vm.stats.huge_fallbacks += 1;
            return false;
        }
        vm.stats.huge_faults += 1;
        vm.stats.zero_fills += 1;
        return true;
    }
    let (zero, fresh) = match vm.huge_zero {
        Some(z) => (z, false),
        None => {
            let Some(z) = vm.mem.alloc_contiguous(n, n) else {
                vm.stats.huge_fallbacks += 1;
                return false;
            };
            for k in 0..n {
                vm.mem.arena_mut().zero_frame(z.add(k));
            }
            (z, true)
        }
    };
    // The mapping's own reference per frame, beside the server's pin.
    for k in 0..n {
        vm.mem.share(zero.add(k));
    }
    let ro = flags.difference(PageFlags::WRITE);
    if P::map_huge(&mut vm.mem, root, VirtAddr(start), zero, ro).is_err() {
        unref_block(vm, zero);
        if fresh {
            unref_block(vm, zero);
        }
        vm.stats.huge_fallbacks += 1;
        return false;
    }
    vm.huge_zero = Some(zero);
    vm.stats.huge_zero_maps += 1;
    true
}

/// Drops one reference of every frame of the block from `first`.
fn unref_block<F: FrameAllocator, P: PagingFormat>(vm: &mut Vm<F, P>, first: Frame) {
    for k in 0..P::HUGE_PAGES {
        vm.mem.unref(first.add(k));
    }
}

/// A write fault on a page of a huge entry (`w`, mapping `m`): see the rules above
/// (the huge zero page replaced, a private block made writable again, else a split and
/// the 4 KiB copy-on-write of the one page).
///
/// # Errors
/// [`FaultError::OutOfMemory`] when neither a replacement block nor the split's table
/// and the page's copy can be had; nothing has changed then.
#[inline(never)]
pub(crate) fn write_fault<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    w: &mut PageWalk,
    m: Mapping,
) -> Result<(), FaultError> {
    if m.flags.contains(PageFlags::WRITE) {
        vm.stats.spurious_faults += 1;
        return Ok(());
    }
    let n = P::HUGE_PAGES;
    let first = Frame(m.frame.0 & !(n - 1));
    let writable =
        m.flags.difference(PageFlags::COW | PageFlags::ACCESSED | PageFlags::DIRTY) | PageFlags::WRITE;
    if vm.huge_zero == Some(first) {
        if let Some(block) = vm.mem.alloc_contiguous(n, n) {
            for k in 0..n {
                vm.mem.arena_mut().zero_frame(block.add(k));
            }
            if P::replace_huge_at(&mut vm.mem, w, block, writable).is_ok() {
                vm.stats.huge_faults += 1;
                vm.stats.zero_fills += 1;
                return Ok(());
            }
            unref_block(vm, block);
        }
        vm.stats.huge_fallbacks += 1;
    } else if (0..n).all(|k| vm.mem.refs().get(first.add(k)) == 1) {
        P::reflag_at(&mut vm.mem, w, PageFlags::WRITE, PageFlags::COW)
            .map_err(|_| FaultError::OutOfMemory)?;
        vm.stats.cow_reuses += 1;
        return Ok(());
    }
    // Split, then copy the one page: both frames in hand before anything changes.
    let copy = vm.alloc_any().ok_or(FaultError::OutOfMemory)?;
    if P::split_at(&mut vm.mem, w).is_err() {
        vm.mem.unref(copy);
        return Err(FaultError::OutOfMemory);
    }
    vm.stats.huge_splits = vm.mem.huge_splits();
    let Some(m) = w.mapping else { unreachable!("a split keeps every page mapped") };
    super::cow::write_copy(vm, w, m, copy)
}
