//! VM_MREMAP (extension, 0xC2B): shrink, grow or move a mapping.
//!
//! No MINIX counterpart; modelled on `mremap(2)`. The old range must lie inside one
//! region. Shrinking unmaps the tail. Growing extends in place when the old range ends at
//! the region's end and the pages above are free; otherwise, with `MREMAP_MAYMOVE`, the
//! pages move to a first-fit range (the same frames, remapped: no copy), and the old range
//! is released. Only private anonymous memory can grow or move; shared, contiguous and
//! device regions can only shrink. A failure changes nothing.

use crate::addr::{PageSpan, VirtAddr, PAGE_SIZE};
use crate::errno::Errno;
use crate::frames::FrameAllocator;
use crate::layout::{data_top, mmap_base};
use crate::message::{call_fields, Fields, Message, VM_MREMAP};
use crate::paging::{Mapping, PageFlags, PagingFormat};
use crate::region::{MemType, Region};
use crate::server::{CallResult, Reply, Vm};

use super::mmap::unmap_range;
use super::user_range;

/// `MREMAP_MAYMOVE`: the mapping may move.
pub const MREMAP_MAYMOVE: i16 = 1;

call_fields! {
    /// `VM_MREMAP` from a process (extension: `mremap`).
    pub struct MremapRequest for VM_MREMAP {
        /// Old start.
        addr: u64 = m5_l1 / set_m5_l1,
        /// Old length in bytes.
        old_len: u64 = m5_l2 / set_m5_l2,
        /// New length in bytes.
        new_len: u64 = m5_l3 / set_m5_l3,
        /// Flags ([`MREMAP_MAYMOVE`]).
        flags: i16 = m5_s2 / set_m5_s2,
    }
}

call_fields! {
    /// `VM_MREMAP`'s reply.
    pub struct MremapReply for VM_MREMAP {
        /// The mapping's (new) start.
        addr: VirtAddr = m5_l1 / set_m5_l1,
    }
}

/// `mremap`: m5_l1 old address, m5_l2 old length, m5_l3 new length, m5_s2 flags → m5_l1
/// new address.
///
/// # Errors
/// `EINVAL` bad address or lengths, unknown flags, growing a non-anonymous region;
/// `EFAULT` when the old range is not inside one region; `ENOMEM` no room or no frames.
pub(crate) fn do_mremap<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    caller: usize,
    msg: &mut Message,
) -> CallResult {
    let req = MremapRequest::decode(msg);
    let flags = req.flags;
    if flags & !MREMAP_MAYMOVE != 0 {
        return Err(Errno::EINVAL);
    }
    let top = data_top::<P>().0;
    let (start, old_end) = user_range(req.addr, req.old_len, top)?;
    let new_len = req.new_len;
    let (_, new_end) = user_range(start.0, new_len, u64::MAX)?;
    let s = vm.slots.get(caller);
    let region = *s.regions.find(start).ok_or(Errno::EFAULT)?;
    if old_end > region.end() {
        return Err(Errno::EFAULT);
    }
    if new_end <= old_end {
        if new_end < old_end {
            unmap_range(vm, caller, new_end, old_end)?;
        }
        MremapReply { addr: start }.encode(msg);
        return Ok(Reply::Now);
    }
    if region.mem != MemType::Anon {
        return Err(Errno::EINVAL);
    }
    let grow_pages = (new_end.0 - old_end.0) / PAGE_SIZE;
    if old_end == region.end() && new_end.0 <= top && s.regions.is_free(old_end, new_end) {
        let s = vm.slots.get_mut(caller);
        s.regions.insert(Region { start: old_end, pages: grow_pages, ..region });
        MremapReply { addr: start }.encode(msg);
        return Ok(Reply::Now);
    }
    if flags & MREMAP_MAYMOVE == 0 {
        return Err(Errno::ENOMEM);
    }
    let old_pages = (old_end.0 - start.0) / PAGE_SIZE;
    let new_pages = old_pages + grow_pages;
    let to = s.regions.first_fit(mmap_base::<P>(), VirtAddr(top), new_pages).ok_or(Errno::ENOMEM)?;
    let root = s.root;
    let old_span = PageSpan { start, pages: old_pages };
    let new_span = PageSpan { start: to, pages: new_pages };
    let mut pages = Vec::new();
    P::for_each_mapping(vm.mem.arena(), root, old_span, &mut |va, m| pages.push((va, m)));
    for &(va, m) in &pages {
        let at = VirtAddr(to.0 + (va.0 - start.0));
        vm.mem.share(m.frame);
        // Moved read-only first: the frame is referenced twice until the old range is gone,
        // and under shared leaf tables it stays referenced by the table another space
        // still uses. Write access is granted below, per page, once the old range is gone.
        let mut flags = m.flags.difference(PageFlags::ACCESSED | PageFlags::DIRTY);
        if flags.contains(PageFlags::WRITE) {
            flags = flags.difference(PageFlags::WRITE).union(PageFlags::COW);
        }
        if P::map(&mut vm.mem, root, at, Mapping { frame: m.frame, flags }).is_err() {
            vm.mem.unref(m.frame);
            // Only this call's pages are in the new span: no table to copy.
            let _ = P::unmap_range(&mut vm.mem, root, new_span);
            return Err(Errno::ENOMEM);
        }
    }
    if unmap_range(vm, caller, start, old_end).is_err() {
        let _ = P::unmap_range(&mut vm.mem, root, new_span);
        return Err(Errno::ENOMEM);
    }
    if region.prot.writable() {
        // WRITE where the frame is now this space's alone, COW where it is still shared.
        // The new span's tables were made by this call, so nothing is shared there and
        // this cannot fail.
        let granted = P::protect_range(&mut vm.mem, root, new_span, PageFlags::WRITE, PageFlags::EMPTY);
        debug_assert!(granted.is_ok(), "protecting freshly built tables needs no frame");
    }
    let s = vm.slots.get_mut(caller);
    s.regions.insert(Region { start: to, pages: new_pages, ..region });
    MremapReply { addr: to }.encode(msg);
    Ok(Reply::Now)
}
