//! VM_DISCARD (extension, 0xC2C): `madvise(MADV_DONTNEED)`.
//!
//! No MINIX counterpart; modelled on Linux's `MADV_DONTNEED` for private anonymous
//! memory: the pages are unmapped and their frames dropped, and the next touch faults in
//! a zeroed page. Shared, contiguous and device pages are left in place (their contents
//! are what a refault would show).

use crate::addr::{PageSpan, PAGE_SIZE};
use crate::errno::Errno;
use crate::frames::FrameAllocator;
use crate::message::{call_fields, Fields, Message, VM_DISCARD};
use crate::paging::{PageFlags, PagingFormat};
use crate::region::MemType;
use crate::server::{CallResult, Reply, Vm};

use super::user_range;

call_fields! {
    /// `VM_DISCARD` from a process (extension: `madvise(MADV_DONTNEED)`).
    pub struct DiscardRequest for VM_DISCARD {
        /// Start.
        addr: u64 = m5_l1 / set_m5_l1,
        /// Length in bytes.
        len: u64 = m5_l2 / set_m5_l2,
    }
}

/// `madvise(DONTNEED)`: m5_l1 address, m5_l2 length.
///
/// # Errors
/// `EINVAL` unaligned address, zero length, beyond the top; `ENOMEM` when part of the
/// range is not mapped.
pub(crate) fn do_discard<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    caller: usize,
    msg: &mut Message,
) -> CallResult {
    let req = DiscardRequest::decode(msg);
    let (start, end) = user_range(req.addr, req.len, P::VA_END)?;
    let s = vm.slots.get(caller);
    if !s.regions.covers(start, end) {
        return Err(Errno::ENOMEM);
    }
    let root = s.root;
    let mut spans = Vec::new();
    for r in &s.regions.as_slice()[s.regions.overlapping(start, end)] {
        if r.mem == MemType::Anon {
            let a = r.start.max(start);
            let b = r.end().min(end);
            spans.push(PageSpan { start: a, pages: (b.0 - a.0) / PAGE_SIZE });
        }
    }
    if spans.len() > 1 {
        // Several pieces: first make every leaf table of the range this space's own
        // (a no-op protection change, all or nothing), so that no unmap below can fail.
        let all = PageSpan { start, pages: (end.0 - start.0) / PAGE_SIZE };
        P::protect_range(&mut vm.mem, root, all, PageFlags::EMPTY, PageFlags::EMPTY)?;
    }
    for span in spans {
        P::unmap_range(&mut vm.mem, root, span)?;
    }
    vm.note_splits();
    Ok(Reply::Now)
}
