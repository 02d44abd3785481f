//! VM_BRK: move a process's break.
//!
//! Replaces `servers/vm/break.c` (`do_brk`, `real_brk`, `adjust`) and `region.c`'s
//! `map_region_extend`/`map_region_shrink`. The heap is the range `[heap_start,
//! round_up(brk))`. Growing claims the pages above it as demand-zero memory if they are
//! free of other regions (mmaps, the stack), and keeps one free page between the heap and
//! the stack (`adjust`'s `SAFETY_CLICKS`, kept only against the stack: a mapping placed
//! right above the heap may be reached exactly); shrinking unmaps and frees the pages
//! above the new break and shrinks the region (§21.21: the seed never freed). A refused
//! brk changes nothing.

use crate::addr::{VirtAddr, PAGE_SIZE};
use crate::endpoint::Endpoint;
use crate::errno::Errno;
use crate::frames::FrameAllocator;
use crate::layout::data_top;
use crate::message::{call_fields, Fields, Message, VM_BRK};
use crate::paging::PagingFormat;
use crate::region::{MapProt, MemType, Region, RegionTag};
use crate::server::{CallResult, Reply, Vm};

call_fields! {
    /// `VM_BRK` from PM: set `proc`'s break to `addr`.
    pub struct BrkRequest for VM_BRK {
        /// The process (`VMB_ENDPOINT`).
        proc: Endpoint = m1_i1 / set_m1_i1,
        /// The new break (`VMB_ADDR`).
        addr: VirtAddr = m1_p1 / set_m1_p1,
    }
}

/// `do_brk`: m1_i1 endpoint, m1_p1 new break.
///
/// # Errors
/// `EINVAL` for a bad endpoint; `ENOMEM` below the heap start, when the heap would run
/// into another region, or come within a page of the stack.
pub(crate) fn do_brk<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    _caller: usize,
    msg: &mut Message,
) -> CallResult {
    let req = BrkRequest::decode(msg);
    let slot = vm.proc_slot(req.proc)?;
    let new = req.addr;
    let s = vm.slots.get(slot);
    if new < s.heap_start || new.0 >= data_top::<P>().0 {
        return Err(Errno::ENOMEM);
    }
    let round = |v: VirtAddr| VirtAddr((v.0 + PAGE_SIZE - 1) & !(PAGE_SIZE - 1));
    let cur_end = round(s.brk).max(s.heap_start);
    let new_end = round(new);
    if new_end > cur_end {
        // Usually a page above the new end is free too; else the pages up to the new end
        // must be, and the region starting there must not be the stack.
        let guard = VirtAddr(new_end.0.checked_add(PAGE_SIZE).ok_or(Errno::ENOMEM)?);
        if !s.regions.is_free(cur_end, guard)
            && (!s.regions.is_free(cur_end, new_end)
                || s.regions.find(new_end).is_some_and(|r| r.tag == RegionTag::Stack))
        {
            return Err(Errno::ENOMEM);
        }
        let s = vm.slots.get_mut(slot);
        s.regions.insert(Region {
            start: cur_end,
            pages: (new_end.0 - cur_end.0) / PAGE_SIZE,
            mem: MemType::Anon,
            prot: MapProt::RW,
            tag: RegionTag::Heap,
        });
    } else if new_end < cur_end {
        super::mmap::unmap_range(vm, slot, new_end, cur_end)?;
    }
    vm.slots.get_mut(slot).brk = new;
    Ok(Reply::Now)
}
