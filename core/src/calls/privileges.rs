//! VM_RS_SET_PRIV and VM_RS_UPDATE: call masks and live update, for RS only.
//!
//! Replaces `servers/vm/rs.c` (`do_rs_set_priv`, `do_rs_update`) and `swap_proc` of
//! `utility.c`. Both calls are refused (EPERM) unless they come from RS itself, whatever
//! the ACL says. A new mask is interned in the call-mask table (`ENOSPC` when the table
//! is full). RS_UPDATE validates both endpoints before changing anything (§21.24) and
//! swaps the two slots' contents — page tables, regions, masks, brk, flags — keeping each
//! slot's endpoint.

use crate::acl::{CallMask, CALL_MASK_BYTES};
use crate::addr::VirtAddr;
use crate::endpoint::{Endpoint, RS_PROC_NR};
use crate::errno::Errno;
use crate::frames::FrameAllocator;
use crate::message::{call_fields, Fields, Message, VM_RS_SET_PRIV, VM_RS_UPDATE};
use crate::paging::PagingFormat;
use crate::server::{CallResult, Reply, Vm};

fn require_rs<F: FrameAllocator, P: PagingFormat>(vm: &Vm<F, P>, caller: usize) -> Result<(), Errno> {
    if vm.slots.get(caller).endpoint == RS_PROC_NR {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

call_fields! {
    /// `VM_RS_SET_PRIV` from RS: set `proc`'s call mask to the one at `mask` in RS's
    /// memory (0: change nothing).
    pub struct SetPrivRequest for VM_RS_SET_PRIV {
        /// The process (`VM_RS_NR`).
        proc: Endpoint = m2_i1 / set_m2_i1,
        /// The mask's address in the caller's memory, or 0 (`VM_RS_BUF`).
        mask: VirtAddr = m2_l1 / set_m2_l1,
    }
}

call_fields! {
    /// `VM_RS_UPDATE` from RS: swap two processes' memory (live update).
    pub struct RsUpdateRequest for VM_RS_UPDATE {
        /// One process (`VM_RS_SRC_ENDPT`).
        src: Endpoint = m1_i1 / set_m1_i1,
        /// The other (`VM_RS_DST_ENDPT`).
        dst: Endpoint = m1_i2 / set_m1_i2,
    }
}

/// `do_rs_set_priv`: m2_i1 endpoint, m2_l1 address of the 6-byte mask in RS's memory
/// (0: change nothing).
///
/// # Errors
/// `EPERM` not from RS; `EINVAL` bad endpoint; `EFAULT` unreadable mask; `ENOSPC` mask
/// table full.
pub(crate) fn do_rs_set_priv<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    caller: usize,
    msg: &mut Message,
) -> CallResult {
    require_rs(vm, caller)?;
    let req = SetPrivRequest::decode(msg);
    let target = vm.proc_slot(req.proc)?;
    if req.mask.0 == 0 {
        return Ok(Reply::Now);
    }
    let mut wire = [0u8; CALL_MASK_BYTES];
    vm.copy_from_user(caller, req.mask, &mut wire)?;
    let id = vm.acl.intern(CallMask::from_wire(wire))?;
    let s = vm.slots.get_mut(target);
    let old = core::mem::replace(&mut s.acl, id);
    vm.acl.release(old);
    Ok(Reply::Now)
}

/// `do_rs_update`: m1_i1 source, m1_i2 destination endpoints.
///
/// # Errors
/// `EPERM` not from RS; `EINVAL` bad endpoints or the same process twice.
pub(crate) fn do_rs_update<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    caller: usize,
    msg: &mut Message,
) -> CallResult {
    require_rs(vm, caller)?;
    let req = RsUpdateRequest::decode(msg);
    let a = vm.proc_slot(req.src)?;
    let b = vm.proc_slot(req.dst)?;
    if a == b {
        return Err(Errno::EINVAL);
    }
    let (sa, sb) = vm.slots.pair_mut(a, b);
    let (ea, eb) = (sa.endpoint, sb.endpoint);
    core::mem::swap(sa, sb);
    sa.endpoint = ea;
    sb.endpoint = eb;
    vm.dma.swap_owners(ea, eb);
    Ok(Reply::Now)
}
