//! Page faults and the kernel's memory requests.
//!
//! Replaces `servers/vm/pagefaults.c` (`do_pagefaults`, `do_memory`, `handle_memory`) and
//! `region.c`'s `map_pf`, `map_handle_memory` and `map_clone_ph_block`. A fault is
//! resolved per page: not present → demand-zero (or the device frame of a direct region);
//! present but read-only in a writable region → copy-on-write break (the frame is private
//! again: just make it writable; else copy it). No region, or an access the region's
//! protection forbids, is reported as a signalled fault (counted) and VM keeps running;
//! running out of memory on the fault path is signalled the same way. Nothing here
//! asserts on input (§21.1, §21.4).

use crate::addr::{VirtAddr, PAGE_SIZE};
use crate::calls::cow::{break_cow, write_copy};
pub use crate::calls::fault_error::FaultError;
use crate::calls::{folio, huge};
use crate::errno::Errno;
use crate::frames::FrameAllocator;
use crate::message::{call_fields, Fields, Message, VM_PAGEFAULT};
use crate::paging::{FaultCode, LeafLink, Mapping, PageFlags, PageWalk, PagingFormat};
use crate::region::{MemType, Region, RegionMap};
use crate::server::{FolioSize, HugePolicy, Vm};

call_fields! {
    /// `VM_PAGEFAULT` from the kernel (the faulting process is the message's source).
    pub struct PagefaultRequest for VM_PAGEFAULT {
        /// The faulting address, CR2 (`VPF_ADDR`).
        addr: VirtAddr = m1_p1 / set_m1_p1,
        /// The x86 error code, [`FaultCode`] bits (`VPF_FLAGS`).
        code: i32 = m1_i2 / set_m1_i2,
    }
}

/// `VM_PAGEFAULT` from the kernel: resolve, or signal the process. Never replies.
pub(crate) fn do_pagefault<F: FrameAllocator, P: PagingFormat>(vm: &mut Vm<F, P>, msg: &Message) {
    vm.stats.faults += 1;
    let Ok(slot) = vm.slots.lookup(msg.source) else {
        vm.stats.refused += 1;
        return;
    };
    let req = PagefaultRequest::decode(msg);
    let write = req.code as u32 & FaultCode::WRITE != 0;
    // The error code's present bit is not needed: the one walk below reads the entry.
    if resolve_fault(vm, slot, req.addr, write).is_err() {
        vm.stats.signalled_faults += 1;
    }
}

/// The region of `regions` holding `va`, checked for the access (by reference, so that
/// the caller's one copy is all that is copied).
///
/// # Errors
/// [`FaultError::NoRegion`], or [`FaultError::Protection`] when the region forbids it.
#[inline(always)]
fn fault_region(regions: &RegionMap, va: VirtAddr, write: bool) -> Result<&Region, FaultError> {
    let region = regions.find(va).ok_or(FaultError::NoRegion)?;
    if !region.prot.accessible() || (write && !region.prot.writable()) {
        return Err(FaultError::Protection);
    }
    Ok(region)
}

/// Resolves one fault of the process in `slot` at `va` (`map_pf`): the region check, one
/// walk to the page ([`PageWalk`]), and the steps the entry calls for, each on that walk.
///
/// # Errors
/// See [`FaultError`]; the state is unchanged then.
#[inline]
pub(crate) fn resolve_fault<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    slot: usize,
    va: VirtAddr,
    write: bool,
) -> Result<(), FaultError> {
    let s = vm.slots.get(slot);
    let root = s.root;
    let region = *fault_region(&s.regions, va, write)?;
    let mut w = P::walk(&vm.mem, root, va);
    match w.mapping {
        None => {
            if vm.huge != HugePolicy::Never && huge::fault_in_huge(vm, root, &w, &region, write) {
                return Ok(());
            }
            if write && vm.folio != FolioSize::K4 && folio::fault_in_folio(vm, root, &w, &region) {
                return Ok(());
            }
            fault_in(vm, &mut w, &region)?;
            // Under a read-only link (on-demand fork) the map found the table this space's
            // own, or copied it: a write needs the link opened, which takes no frame.
            if write {
                P::unshare_at(&mut vm.mem, &mut w).map_err(|_| FaultError::OutOfMemory)?;
            }
            Ok(())
        }
        Some(m) if write && w.link != LeafLink::Writable => unshare_and_write(vm, &mut w, m),
        Some(m) if write && !m.flags.contains(PageFlags::WRITE) => break_cow(vm, &mut w, m),
        Some(m) if !m.flags.contains(PageFlags::USER) => {
            // Protection raised again after a PROT_NONE period: restore user access.
            P::reflag_at(&mut vm.mem, &mut w, PageFlags::USER, PageFlags::EMPTY)
                .map_err(|_| FaultError::OutOfMemory)?;
            Ok(())
        }
        Some(_) => {
            vm.stats.spurious_faults += 1;
            Ok(())
        }
    }
}

/// Maps the missing page of `w` in `region`: a zeroed frame, or the region's device
/// frame. On failure nothing changed (a frame taken from the pre-zeroed pool goes back
/// to it).
#[inline]
fn fault_in<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    w: &mut PageWalk,
    region: &Region,
) -> Result<(), FaultError> {
    let flags = region.leaf_flags();
    if let MemType::DirectPhys { base } = region.mem {
        let frame = base.add((w.page.0 - region.start.0) / PAGE_SIZE);
        return P::map_at(&mut vm.mem, w, Mapping { frame, flags }).map_err(|_| FaultError::OutOfMemory);
    }
    let z = vm.pool.take_zeroed(&mut vm.mem).ok_or(FaultError::OutOfMemory)?;
    if P::map_at(&mut vm.mem, w, Mapping { frame: z.frame, flags }).is_err() {
        vm.pool.give_back(&mut vm.mem, z);
        return Err(FaultError::OutOfMemory);
    }
    if z.pooled {
        vm.stats.prezeroed_fills += 1;
    }
    vm.stats.zero_fills += 1;
    Ok(())
}

/// A write to a page of a huge entry: [`huge::write_fault`]. A write to a present page
/// under a leaf table linked read-only (on-demand fork): make
/// the table this space's own (a copy while another space links it), then proceed as for
/// any write. Allocate-then-commit: the page's copy is allocated before anything changes
/// whenever the write will need one — when the table is copied (every private frame in it
/// becomes shared), or when the page's frame is shared already (a sharer copied the table
/// away, and opening the link turns such pages copy-on-write) — so a refused fault leaves
/// entries and link as they were.
fn unshare_and_write<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    w: &mut PageWalk,
    m: Mapping,
) -> Result<(), FaultError> {
    if w.link == LeafLink::Huge {
        return huge::write_fault(vm, w, m);
    }
    let private = !m.flags.intersects(PageFlags::SHARED | PageFlags::DIRECT);
    let spare = if private && (w.link == LeafLink::Shared || vm.mem.refs().get(m.frame) > 1) {
        Some(vm.alloc_any().ok_or(FaultError::OutOfMemory)?)
    } else {
        None
    };
    if P::unshare_at(&mut vm.mem, w).is_err() {
        if let Some(f) = spare {
            vm.mem.unref(f);
        }
        return Err(FaultError::OutOfMemory);
    }
    let Some(m) = w.mapping else { unreachable!("unsharing keeps the walked page mapped") };
    if m.flags.contains(PageFlags::WRITE) {
        debug_assert!(spare.is_none());
        return Ok(());
    }
    match spare {
        Some(copy) => write_copy(vm, w, m, copy),
        None => break_cow(vm, w, m),
    }
}

/// `handle_memory`: makes `[va, va + len)` of the process in `slot` present (and
/// writable if `write`). The whole range is checked before anything changes.
///
/// # Errors
/// `EFAULT` when part of the range is in no region or forbids the access; `ENOMEM`.
pub(crate) fn handle_memory<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    slot: usize,
    va: VirtAddr,
    len: u64,
    write: bool,
) -> Result<(), Errno> {
    if len == 0 {
        return Ok(());
    }
    let end = va.0.checked_add(len).ok_or(Errno::EFAULT)?;
    let start = va.page_floor();
    let end = end.checked_add(PAGE_SIZE - 1).ok_or(Errno::EFAULT)? & !(PAGE_SIZE - 1);
    {
        let regions = &vm.slots.get(slot).regions;
        if !regions.covers(start, VirtAddr(end)) {
            return Err(Errno::EFAULT);
        }
        for r in &regions.as_slice()[regions.overlapping(start, VirtAddr(end))] {
            if !r.prot.accessible() || (write && !r.prot.writable()) {
                return Err(Errno::EFAULT);
            }
        }
    }
    let root = vm.slots.get(slot).root;
    let mut page = start;
    while page.0 < end {
        let w = P::walk(&vm.mem, root, page);
        let ok = match w.mapping {
            None => false,
            Some(m) => {
                m.flags.contains(PageFlags::USER)
                    && (!write
                        || (m.flags.contains(PageFlags::WRITE)
                            && matches!(w.link, LeafLink::Writable | LeafLink::Huge)))
            }
        };
        if !ok {
            resolve_fault(vm, slot, page, write)?;
        }
        page = VirtAddr(page.0 + PAGE_SIZE);
    }
    Ok(())
}
