//! VM_BRK: move a process's break.
//!
//! Replaces `servers/vm/break.c` (`do_brk`, `real_brk`, `adjust`) and `region.c`'s
//! `map_region_extend`/`map_region_shrink`. The heap is the range `[heap_start,
//! round_up(brk))`. Growing claims the pages above it as demand-zero memory if they, and a
//! one-page safety gap above them, are free of other regions (the stack, mmaps); shrinking
//! unmaps and frees the pages above the new break and shrinks the region (§21.21: the seed
//! never freed). A refused brk changes nothing.

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
/// `EINVAL` for a bad endpoint; `ENOMEM` below the heap start, or when the heap would
/// run into another region.
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
        let guard = new_end.0.checked_add(PAGE_SIZE).ok_or(Errno::ENOMEM)?;
        if !s.regions.is_free(cur_end, VirtAddr(guard)) {
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
