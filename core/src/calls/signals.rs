//! VM_PUSH_SIG, VM_NOTIFY_SIG and VM_QUERY_EXIT.
//!
//! Replaces `servers/vm/signal.c` (`do_push_sig`) and `queryexit.c` (`do_notify_sig`,
//! `do_query_exit`, the fixed `{avail, ep}` array). The flat model has no segment
//! bookkeeping to adjust: PUSH_SIG checks the target and reports the stack top as the old
//! stack pointer (VM does not track user stack pointers). The exit queue keeps the seed's
//! rules (no duplicates, ENOMEM when full) and answers `NONE` on an empty queue instead of
//! an uninitialized value (§21.18). The notification to the IPC server is counted, not
//! sent (there is no IPC server process in the emulation).

use crate::endpoint::{Endpoint, NONE};
use crate::errno::Errno;
use crate::frames::FrameAllocator;
use crate::message::Message;
use crate::paging::PagingFormat;
use crate::server::{CallResult, Reply, Vm};

/// Size of a signal frame pushed on a stack (sigcontext and the handler's arguments).
pub const SIGFRAME_BYTES: u64 = 256;

/// `do_push_sig`: m1_i1 endpoint → m1_p1 old stack pointer.
///
/// # Errors
/// The `vm_isokendpt` error; `ENOMEM` when the process has no stack region for a frame.
pub(crate) fn do_push_sig<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    _caller: usize,
    msg: &mut Message,
) -> CallResult {
    let slot = vm.slots.lookup(Endpoint(msg.m1_i1()))?;
    let s = vm.slots.get(slot);
    let sp = s.stack_top;
    let frame = crate::addr::VirtAddr(sp.0.saturating_sub(SIGFRAME_BYTES));
    if s.regions.find(frame).is_none() {
        return Err(Errno::ENOMEM);
    }
    msg.set_m1_p1(sp.0);
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
    let ep = Endpoint(msg.m1_i1());
    let ipc = msg.m1_i2();
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
    msg.set_m2_i1(ep.0);
    msg.set_m2_i2(i32::from(!vm.exits.is_empty()));
    Ok(Reply::Now)
}
