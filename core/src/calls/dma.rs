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
use crate::message::{call_fields, Fields, Message, VM_ADDDMA, VM_DELDMA, VM_GETDMA};
use crate::paging::PagingFormat;
use crate::server::{CallResult, DmaEntry, Reply, Vm};

call_fields! {
    /// `VM_ADDDMA` from PM: `proc` owns the DMA buffer `[base, base + size)`.
    pub struct AddDmaRequest for VM_ADDDMA {
        /// The owner (`VMAD_EP`).
        proc: Endpoint = m2_i1 / set_m2_i1,
        /// Base (`VMAD_START`).
        base: i64 = m2_l1 / set_m2_l1,
        /// Size (`VMAD_SIZE`).
        size: i64 = m2_l2 / set_m2_l2,
    }
}

call_fields! {
    /// `VM_DELDMA` from PM: forget the DMA buffer (an exact match of `VM_ADDDMA`'s).
    pub struct DelDmaRequest for VM_DELDMA {
        /// The owner (`VMDD_EP`).
        proc: Endpoint = m2_i1 / set_m2_i1,
        /// Base (`VMDD_START`).
        base: i64 = m2_l1 / set_m2_l1,
        /// Size (`VMDD_SIZE`).
        size: i64 = m2_l2 / set_m2_l2,
    }
}

call_fields! {
    /// `VM_GETDMA`'s reply (the request has no field): a buffer to release.
    pub struct GetDmaReply for VM_GETDMA {
        /// The owner (`VMGD_PROCP`).
        proc: Endpoint = m2_i1 / set_m2_i1,
        /// Base (`VMGD_BASEP`).
        base: i64 = m2_l1 / set_m2_l1,
        /// Size (`VMGD_SIZEP`).
        size: i64 = m2_l2 / set_m2_l2,
    }
}

/// `do_adddma`: m2_i1 endpoint, m2_l1 start, m2_l2 size.
///
/// # Errors
/// `EINVAL` bad endpoint; `ENOSPC` table full.
pub(crate) fn do_adddma<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    _caller: usize,
    msg: &mut Message,
) -> CallResult {
    let req = AddDmaRequest::decode(msg);
    let slot = vm.proc_slot(req.proc)?;
    if !vm.dma.insert(DmaEntry { proc: req.proc, base: req.base, size: req.size }) {
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
    let req = DelDmaRequest::decode(msg);
    let want = DmaEntry { proc: req.proc, base: req.base, size: req.size };
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
    GetDmaReply { proc: Endpoint(0), base: 0, size: 0 }.encode(msg);
    Err(Errno::EAGAIN)
}
