//! The call handlers, one file per call family.
//!
//! Replaces the `do_*` functions of `servers/vm/{exit,fork,break,exec,mmap,pagefaults,
//! alloc,rs,signal,queryexit,utility}.c`. Every handler has the signature
//! `fn(&mut Vm<F, P>, caller_slot, &mut Message) -> CallResult`: the caller is already
//! validated and ACL-checked, inputs are read from the message, outputs written into it
//! (the reply is the request edited in place), and a failure leaves the state exactly as
//! it was (allocate, then commit).
//!
//! Message fields per call are declared once, beside each handler, as a request type
//! (and a reply type where the reply carries fields) made by
//! [`call_fields!`](crate::message): `BrkRequest`, `MmapRequest`/`MmapReply`, … The handler
//! decodes its request with [`Fields::decode`](crate::message::Fields) (plain field reads,
//! inlined) and encodes its reply; [`crate::client`] encodes the same types. Where MINIX used
//! an `int` for an address or a length, the 64-bit field of the same layout is used.
//! Endpoint fields become process slots through one function, `Vm::proc_slot`
//! (`vm_isokendpt`; a bad endpoint is `EINVAL`, as MINIX's handlers answer), or
//! `target_slot` where `SELF` is allowed.

pub mod brk;
mod cow;
pub mod discard;
pub mod dma;
pub mod exec;
pub mod exit;
pub mod fault;
mod fault_error;
pub mod folio;
pub mod fork;
pub mod huge;
pub mod info;
pub mod mmap;
pub mod mprotect;
pub mod mremap;
pub mod phys;
pub mod privileges;
pub mod shared;
pub mod signals;

use crate::addr::{VirtAddr, PAGE_SIZE};
use crate::endpoint::{Endpoint, SELF};
use crate::errno::Errno;
use crate::frames::FrameAllocator;
use crate::paging::PagingFormat;
use crate::server::Vm;

/// A page-aligned range `[start, start + round_up(len))` inside `[0, top)`.
///
/// # Errors
/// `EINVAL` for an unaligned start, a zero length, or a range that overflows or ends
/// above `top`.
pub(crate) fn user_range(addr: u64, len: u64, top: u64) -> Result<(VirtAddr, VirtAddr), Errno> {
    if !addr.is_multiple_of(PAGE_SIZE) || len == 0 {
        return Err(Errno::EINVAL);
    }
    let rounded = len.checked_add(PAGE_SIZE - 1).ok_or(Errno::EINVAL)? & !(PAGE_SIZE - 1);
    let end = addr.checked_add(rounded).ok_or(Errno::EINVAL)?;
    if end > top {
        return Err(Errno::EINVAL);
    }
    Ok((VirtAddr(addr), VirtAddr(end)))
}

/// Resolves a target endpoint field (`SELF` means the caller) to a live slot.
///
/// # Errors
/// `EINVAL` ([`Vm::proc_slot`]).
pub(crate) fn target_slot<F: FrameAllocator, P: PagingFormat>(
    vm: &Vm<F, P>,
    caller: usize,
    ep: Endpoint,
) -> Result<usize, Errno> {
    if ep == SELF {
        return Ok(caller);
    }
    vm.proc_slot(ep)
}
