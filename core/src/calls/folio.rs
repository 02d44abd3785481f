//! Large anonymous folios on the demand-zero write fault: Linux's multi-size THP (mTHP)
//! as a fault-path strategy ([`FolioSize`]).
//!
//! MINIX maps one 4 KiB page per fault (`map_pf` → `map_handle_memory`); there is nothing
//! of it to replace. This module adds the kernel's policy (Linux 6.8+, `mm/memory.c`:
//! `do_anonymous_page` → `alloc_anon_folio`) beside it, with these rules:
//!
//! - **Only a write fault** on a **private anonymous** region allocates a large folio. A
//!   read fault of anonymous memory maps the shared zero page in Linux and allocates
//!   nothing; vmstorm has no zero page (a read fault gets a zeroed frame, as in MINIX), so
//!   reads stay 4 KiB and are counted as such. Shared memory and direct physical regions
//!   never get folios.
//! - **Where the whole block fits**: the naturally aligned block of the folio size around
//!   the faulting page lies inside the region (`thp_vma_suitable_order`), and none of its
//!   entries is present (`pte_range_none`). A partly populated block falls back — the
//!   kernel does not fill the holes of a block with a large folio either.
//! - **Fallback order**: one size is enabled at a time (as one `hugepages-<size>kB/enabled`
//!   set to `always` with the others `never`); when no aligned run of free frames is
//!   found, the fault falls back to 4 KiB (Linux tries each lower enabled order, then 0;
//!   with one size enabled that is the same order of tries). Running out of frames on the
//!   large path is therefore never a fault failure.
//! - **Under an on-demand fork's read-only leaf link** the fault stays 4 KiB (the table is
//!   not this space's to fill; Linux has no shared leaf tables to compare with).
//!
//! How a folio is carried: its frames come from the allocator's contiguous path, aligned
//! to their count, and **every page holds its own reference** (the paging module's
//! ownership rule, unchanged). So fork shares each page copy-on-write as before (Linux's
//! `copy_present_ptes` batches the same per-page work), a copy-on-write fault copies one
//! 4 KiB page (as Linux's `wp_page_copy` does for a large folio), and a partial munmap,
//! mprotect, mremap or discard treats each page on its own. Where vmstorm differs from the
//! kernel on purpose: a page of a large folio that is unmapped is freed at once (the
//! folio is, in effect, split immediately), where Linux keeps the folio whole and queues it
//! for a deferred split, freeing the unmapped part only under memory pressure; and a COW
//! fault on a page that is this space's alone reuses it whatever its folio (Linux reuses
//! only an exclusive folio). Fault counts — the figure the host comparison checks — are
//! unaffected by either choice; resident frames are lower than the kernel's by the
//! unmapped-but-unsplit part.

use crate::addr::{PageSpan, VirtAddr, PAGE_SIZE};
use crate::frames::FrameAllocator;
use crate::paging::{LeafLink, PageWalk, PagingFormat};
use crate::region::{MemType, Region};
use crate::server::{FolioSize, Vm};

/// Maps a large folio around the missing page of `w` (in `region`, for a write fault) when
/// the rules above allow it: allocates the aligned block's frames contiguous, zeroes them
/// and maps the block. Returns whether it did; when not, nothing has changed and the
/// caller maps one page.
#[inline(never)]
pub(crate) fn fault_in_folio<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    root: crate::addr::Frame,
    w: &PageWalk,
    region: &Region,
) -> bool {
    let size = vm.folio;
    if size == FolioSize::K4 || region.mem != MemType::Anon || w.link != LeafLink::Writable {
        return false;
    }
    let pages = size.pages();
    let bytes = pages * PAGE_SIZE;
    let start = w.page.0 & !(bytes - 1);
    let Some(end) = start.checked_add(bytes) else { return false };
    if start < region.start.0 || end > region.start.0 + region.pages * PAGE_SIZE {
        return false;
    }
    if !P::block_absent(&vm.mem, w, pages) {
        return false;
    }
    let Some(first) = vm.mem.alloc_contiguous(pages, pages) else {
        vm.stats.folio_fallbacks += 1;
        return false;
    };
    for i in 0..pages {
        vm.mem.arena_mut().zero_frame(first.add(i));
    }
    let span = PageSpan { start: VirtAddr(start), pages };
    if P::map_range(&mut vm.mem, root, span, first, region.leaf_flags()).is_err() {
        // No frame for a page table (or a frame out of the format's reach): give the run
        // back and let the 4 KiB path try.
        for i in 0..pages {
            vm.mem.unref(first.add(i));
        }
        vm.stats.folio_fallbacks += 1;
        return false;
    }
    vm.stats.folio_faults += 1;
    vm.stats.folio_pages += pages;
    vm.stats.zero_fills += 1;
    true
}
