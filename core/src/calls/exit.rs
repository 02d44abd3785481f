//! VM_WILLEXIT and VM_EXIT: tear a process down.
//!
//! Replaces `servers/vm/exit.c` (`do_willexit`, `do_exit`, `free_proc`, `clear_proc`).
//! Exit requires the WILLEXIT announcement first (§20.9). Every mapping's reference is
//! dropped and every page table freed; the slot keeps its endpoint so that the next tenant
//! gets the next generation. A process with DMA buffers has them released instead of the
//! seed's `release_dma` panic (§21.7).

use crate::endpoint::Endpoint;
use crate::errno::Errno;
use crate::frames::FrameAllocator;
use crate::message::{call_fields, Fields, Message, VM_EXIT, VM_WILLEXIT};
use crate::paging::PagingFormat;
use crate::server::{CallResult, Reply, Vm};

call_fields! {
    /// `VM_WILLEXIT` from PM: `proc` is about to exit.
    pub struct WillExitRequest for VM_WILLEXIT {
        /// The process (`VMWE_ENDPOINT`).
        proc: Endpoint = m1_i1 / set_m1_i1,
    }
}

call_fields! {
    /// `VM_EXIT` from PM: `proc` has exited.
    pub struct ExitRequest for VM_EXIT {
        /// The process (`VME_ENDPOINT`).
        proc: Endpoint = m1_i1 / set_m1_i1,
    }
}

/// `do_willexit`: m1_i1 endpoint. Marks the process as exiting.
///
/// # Errors
/// `EINVAL` for a bad endpoint.
pub(crate) fn do_willexit<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    _caller: usize,
    msg: &mut Message,
) -> CallResult {
    let slot = vm.proc_slot(WillExitRequest::decode(msg).proc)?;
    vm.slots.get_mut(slot).exiting = true;
    Ok(Reply::Now)
}

/// `do_exit`: m1_i1 endpoint. Frees the process's memory and slot.
///
/// # Errors
/// `EINVAL` for a bad endpoint or an unannounced exit.
pub(crate) fn do_exit<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    _caller: usize,
    msg: &mut Message,
) -> CallResult {
    let ep = ExitRequest::decode(msg).proc;
    let slot = vm.proc_slot(ep)?;
    if !vm.slots.get(slot).exiting {
        return Err(Errno::EINVAL);
    }
    let mut old = vm.slots.release(slot);
    vm.destroy_space(old.root, old.regions.as_slice());
    vm.acl.release(old.acl);
    // The free slot keeps the region list's buffer for its next tenant.
    old.regions.clear();
    vm.slots.get_mut(slot).regions = old.regions;
    if old.has_dma {
        vm.dma.release_all(ep);
    }
    Ok(Reply::Now)
}
