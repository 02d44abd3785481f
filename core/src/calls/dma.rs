//! VM_ADDDMA, VM_DELDMA and VM_GETDMA: the DMA buffer table.
//!
//! Replaces `dmatab[NR_DMA]` and `do_adddma`/`do_deldma`/`do_getdma` of
//! `servers/vm/alloc.c`. Fixes of §21: a full table is `ENOSPC`, not a panic (§21.7); a
//! process with DMA buffers may exit (its entries are released); the `has_dma` flag is
//! cleared when its last entry goes; VM_GETDMA is `EAGAIN` as in the seed (nothing sets
//! the release flags, §21.17).

use crate::endpoint::Endpoint;
use crate::errno::Errno;
use crate::frames::FrameAllocator;
use crate::message::Message;
use crate::paging::PagingFormat;
use crate::server::{CallResult, DmaEntry, Reply, Vm};

/// `do_adddma`: m2_i1 endpoint, m2_l1 start, m2_l2 size.
///
/// # Errors
/// `EINVAL` bad endpoint; `ENOSPC` table full.
pub(crate) fn do_adddma<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    _caller: usize,
    msg: &mut Message,
) -> CallResult {
    let ep = Endpoint(msg.m2_i1());
    let slot = vm.slots.lookup(ep).map_err(|_| Errno::EINVAL)?;
    if !vm.dma.insert(DmaEntry { proc: ep, base: msg.m2_l1(), size: msg.m2_l2() }) {
        return Err(Errno::ENOSPC);
    }
    vm.slots.get_mut(slot).has_dma = true;
    Ok(Reply::Now)
}

/// `do_deldma`: m2_i1 endpoint, m2_l1 start, m2_l2 size (exact match).
///
/// # Errors
/// `ESRCH` when no entry matches.
pub(crate) fn do_deldma<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    _caller: usize,
    msg: &mut Message,
) -> CallResult {
    let want = DmaEntry { proc: Endpoint(msg.m2_i1()), base: msg.m2_l1(), size: msg.m2_l2() };
    if !vm.dma.remove(want) {
        return Err(Errno::ESRCH);
    }
    if !vm.dma.has(want.proc) {
        if let Ok(slot) = vm.slots.lookup(want.proc) {
            vm.slots.get_mut(slot).has_dma = false;
        }
    }
    Ok(Reply::Now)
}

/// `do_getdma`: always `EAGAIN` (no buffer is ever marked for release).
///
/// # Errors
/// `EAGAIN`.
pub(crate) fn do_getdma<F: FrameAllocator, P: PagingFormat>(
    _vm: &mut Vm<F, P>,
    _caller: usize,
    msg: &mut Message,
) -> CallResult {
    msg.set_m2_i1(0).set_m2_l1(0).set_m2_l2(0);
    Err(Errno::EAGAIN)
}
