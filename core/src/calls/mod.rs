//! The call handlers, one file per call family.
//!
//! Replaces the `do_*` functions of `servers/vm/{exit,fork,break,exec,mmap,pagefaults,
//! alloc,rs,signal,queryexit,utility}.c`. Every handler has the signature
//! `fn(&mut Vm<F, P>, caller_slot, &mut Message) -> CallResult`: the caller is already
//! validated and ACL-checked, inputs are read from the message, outputs written into it
//! (the reply is the request edited in place), and a failure leaves the state exactly as
//! it was (allocate, then commit).
//!
//! Message fields per call (where MINIX used an `int` for an address or a length, the
//! 64-bit field of the same layout is used):
//!
//! | call | in | out |
//! |---|---|---|
//! | VM_EXIT, VM_WILLEXIT | m1_i1 endpoint | |
//! | VM_FORK | m1_i1 parent, m1_i2 child slot | m1_i3 child endpoint |
//! | VM_BRK | m1_i1 endpoint, m1_p1 address | |
//! | VM_EXEC_NEWMEM | m1_i1 endpoint, m1_p1 args pointer (caller's memory), m1_i2 args size | m1_p2 stack top, m1_i3 flags |
//! | VM_PUSH_SIG | m1_i1 endpoint | m1_p1 old stack pointer |
//! | VM_MMAP | m5_l1 hint, m5_l2 length, m5_s1 prot, m5_s2 flags, m5_i1 fd, m5_i2 offset | m5_l1 address |
//! | VM_MUNMAP, VM_MUNMAP_TEXT | m1_p1 address, m1_p2 length | |
//! | VM_MAP_PHYS | m1_i1 target (SELF ok), m1_p2 physical address, m1_i2 length | m1_p3 address |
//! | VM_UNMAP_PHYS | m1_i1 target (SELF ok), m1_p1 address | |
//! | VM_ADDDMA, VM_DELDMA | m2_i1 endpoint, m2_l1 start, m2_l2 size | |
//! | VM_GETDMA | | m2_i1 endpoint, m2_l1 base, m2_l2 size |
//! | VM_REMAP | m1_i1 dst, m1_i2 src (SELF ok), m1_p1 dst address or 0, m1_p2 src address, m1_i3 size | m1_p3 address |
//! | VM_SHM_UNMAP | m2_i1 endpoint, m2_l1 address | |
//! | VM_GETPHYS | m2_i1 endpoint, m2_l1 address | m2_l2 physical address |
//! | VM_GETREF | m2_i1 endpoint, m2_l1 address | m2_i2 reference count |
//! | VM_RS_SET_PRIV | m2_i1 endpoint, m2_l1 mask pointer (RS's memory) or 0 | |
//! | VM_RS_UPDATE | m1_i1 src, m1_i2 dst | |
//! | VM_NOTIFY_SIG | m1_i1 endpoint, m1_i2 ipc endpoint | |
//! | VM_QUERY_EXIT | | m2_i1 endpoint (NONE if none), m2_i2 more |
//! | VM_INFO | m2_i1 what, m2_i2 endpoint, m2_i3 count, m2_p1 buffer, m2_l1 next | m2_i3 count, m2_l1 next |
//! | VM_MPROTECT | m5_l1 address, m5_l2 length, m5_s1 prot | |
//! | VM_MREMAP | m5_l1 old address, m5_l2 old length, m5_l3 new length, m5_s2 flags | m5_l1 address |
//! | VM_DISCARD | m5_l1 address, m5_l2 length | |
//! | VM_PAGEFAULT | m1_p1 address (CR2), m1_i2 x86 error code | no reply |

pub mod brk;
pub mod discard;
pub mod dma;
pub mod exec;
pub mod exit;
pub mod fault;
pub mod fork;
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
/// The `vm_isokendpt` error.
pub(crate) fn target_slot<F: FrameAllocator, P: PagingFormat>(
    vm: &Vm<F, P>,
    caller: usize,
    raw: i32,
) -> Result<usize, Errno> {
    if Endpoint(raw) == SELF {
        return Ok(caller);
    }
    vm.slots.lookup(Endpoint(raw))
}
