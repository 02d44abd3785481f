//! VM_MPROTECT (extension, 0xC2A): change the protection of a page range.
//!
//! No MINIX counterpart (the 2010 server ignored PROT entirely, §21.13); modelled on
//! `mprotect(2)`. Regions are split at the range edges, get the new protection, and are
//! merged back where possible; present pages are updated in place: write permission is
//! granted through the format's `protect_range`, which keeps shared-frame private pages
//! copy-on-write, and `PROT_NONE` clears the user bit so the soft MMU faults.

use crate::addr::{PageSpan, PAGE_SIZE};
use crate::errno::Errno;
use crate::frames::FrameAllocator;
use crate::message::{call_fields, Fields, Message, VM_MPROTECT};
use crate::paging::{PageFlags, PagingFormat};
use crate::region::MapProt;
use crate::server::{CallResult, Reply, Vm};

use super::user_range;

call_fields! {
    /// `VM_MPROTECT` from a process (extension: `mprotect`).
    pub struct MprotectRequest for VM_MPROTECT {
        /// Start.
        addr: u64 = m5_l1 / set_m5_l1,
        /// Length in bytes.
        len: u64 = m5_l2 / set_m5_l2,
        /// The new protection.
        prot: MapProt = m5_s1 / set_m5_s1,
    }
}

/// `mprotect`: m5_l1 address, m5_l2 length, m5_s1 prot.
///
/// # Errors
/// `EINVAL` unaligned address, zero length, unknown prot bits, range beyond the top;
/// `ENOMEM` when part of the range is not mapped.
pub(crate) fn do_mprotect<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    caller: usize,
    msg: &mut Message,
) -> CallResult {
    let req = MprotectRequest::decode(msg);
    let prot = req.prot;
    if prot.bits() & !MapProt::ALL.bits() != 0 {
        return Err(Errno::EINVAL);
    }
    let (start, end) = user_range(req.addr, req.len, P::VA_END)?;
    let s = vm.slots.get_mut(caller);
    if !s.regions.covers(start, end) {
        return Err(Errno::ENOMEM);
    }
    let root = s.root;
    let span = PageSpan { start, pages: (end.0 - start.0) / PAGE_SIZE };
    let (set, clear) = match (prot.accessible(), prot.writable()) {
        (false, _) => (PageFlags::EMPTY, PageFlags::USER | PageFlags::WRITE | PageFlags::COW),
        (true, false) => (PageFlags::USER, PageFlags::WRITE | PageFlags::COW),
        (true, true) => (PageFlags::USER | PageFlags::WRITE, PageFlags::EMPTY),
    };
    // Pages first: it can fail (a shared leaf table to copy), the regions cannot.
    P::protect_range(&mut vm.mem, root, span, set, clear)?;
    vm.note_splits();
    let s = vm.slots.get_mut(caller);
    let range = s.regions.isolate(start, end);
    for i in range.clone() {
        if let Some(r) = s.regions.get_mut(i) {
            r.prot = prot;
        }
    }
    s.regions.merge_range(range);
    Ok(Reply::Now)
}
