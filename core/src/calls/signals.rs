//! VM_PUSH_SIG, VM_NOTIFY_SIG and VM_QUERY_EXIT.
//!
//! Replaces `servers/vm/signal.c` (`do_push_sig`) and `queryexit.c` (`do_notify_sig`,
//! `do_query_exit`, the fixed `{avail, ep}` array). The flat model has no segment
//! bookkeeping to adjust: PUSH_SIG checks the target and reports the stack top as the old
//! stack pointer (VM does not track user stack pointers). The exit queue keeps the seed's
//! rules (no duplicates, ENOMEM when full) and answers `NONE` on an empty queue instead of
//! an uninitialized value (§21.18). The notification to the IPC server is counted, not
//! sent (there is no IPC server process in the emulation).

use crate::addr::VirtAddr;
use crate::endpoint::{Endpoint, NONE};
use crate::errno::Errno;
use crate::frames::FrameAllocator;
use crate::message::{call_fields, Fields, Message, VM_NOTIFY_SIG, VM_PUSH_SIG, VM_QUERY_EXIT};
use crate::paging::PagingFormat;
use crate::server::{CallResult, Reply, Vm};

/// Size of a signal frame pushed on a stack (sigcontext and the handler's arguments).
pub const SIGFRAME_BYTES: u64 = 256;

call_fields! {
    /// `VM_PUSH_SIG` from PM: room for a signal frame on `proc`'s stack.
    pub struct PushSigRequest for VM_PUSH_SIG {
        /// The process (`VMPS_ENDPOINT`).
        proc: Endpoint = m1_i1 / set_m1_i1,
    }
}

call_fields! {
    /// `VM_PUSH_SIG`'s reply.
    pub struct PushSigReply for VM_PUSH_SIG {
        /// The old stack pointer (`VMPS_OLD_SP`).
        old_sp: VirtAddr = m1_p1 / set_m1_p1,
    }
}

call_fields! {
    /// `VM_NOTIFY_SIG` from PM: queue `proc`'s exit for the IPC server `ipc`.
    pub struct NotifySigRequest for VM_NOTIFY_SIG {
        /// The exited process (`VM_NOTIFY_SIG_ENDPOINT`).
        proc: Endpoint = m1_i1 / set_m1_i1,
        /// The IPC server's endpoint, 0 for none (`VM_NOTIFY_SIG_IPC`).
        ipc: i32 = m1_i2 / set_m1_i2,
    }
}

call_fields! {
    /// `VM_QUERY_EXIT`'s reply (the request has no field).
    pub struct QueryExitReply for VM_QUERY_EXIT {
        /// An exited process, `NONE` if none (`VM_QUERY_RET_PT`).
        proc: Endpoint = m2_i1 / set_m2_i1,
        /// Whether more are queued (`VM_QUERY_IS_MORE`).
        more: i32 = m2_i2 / set_m2_i2,
    }
}

/// `do_push_sig`: m1_i1 endpoint → m1_p1 old stack pointer.
///
/// # Errors
/// The `vm_isokendpt` error; `ENOMEM` when the process has no stack region for a frame.
pub(crate) fn do_push_sig<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    _caller: usize,
    msg: &mut Message,
) -> CallResult {
    // MINIX answers push-sig with `vm_isokendpt`'s own error.
    let slot = vm.slots.lookup(PushSigRequest::decode(msg).proc)?;
    let s = vm.slots.get(slot);
    let sp = s.stack_top;
    let frame = VirtAddr(sp.0.saturating_sub(SIGFRAME_BYTES));
    if s.regions.find(frame).is_none() {
        return Err(Errno::ENOMEM);
    }
    PushSigReply { old_sp: sp }.encode(msg);
    Ok(Reply::Now)
}

/// `do_notify_sig`: m1_i1 endpoint, m1_i2 IPC server endpoint (0: none).
///
/// # Errors
/// `ENOMEM` when the queue is full.
pub(crate) fn do_notify_sig<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    _caller: usize,
    msg: &mut Message,
) -> CallResult {
    let NotifySigRequest { proc: ep, ipc } = NotifySigRequest::decode(msg);
    if !vm.exits.push(ep) {
        return Err(Errno::ENOMEM);
    }
    if ipc != 0 && ipc != ep.0 {
        vm.exits.notified += 1;
    }
    Ok(Reply::Now)
}

/// `do_query_exit`: → m2_i1 an exited endpoint (`NONE` if none), m2_i2 whether more wait.
///
/// # Errors
/// None: always OK.
pub(crate) fn do_query_exit<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    _caller: usize,
    msg: &mut Message,
) -> CallResult {
    let ep = vm.exits.pop().unwrap_or(NONE);
    QueryExitReply { proc: ep, more: i32::from(!vm.exits.is_empty()) }.encode(msg);
    Ok(Reply::Now)
}
