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

use crate::addr::{PageSpan, VirtAddr, PAGE_SIZE};
use crate::errno::Errno;
use crate::frames::FrameAllocator;
use crate::message::{call_fields, Fields, Message, VM_PAGEFAULT};
use crate::paging::ForkPolicy;
use crate::paging::{FaultCode, LeafLink, Mapping, PageFlags, PagingError, PagingFormat};
use crate::region::{MemType, Region, RegionMap};
use crate::server::Vm;

/// Why a fault could not be resolved.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FaultError {
    /// The address is in no region (SIGSEGV).
    NoRegion,
    /// The region's protection forbids the access (SIGSEGV).
    Protection,
    /// No frame for the page or a page table.
    OutOfMemory,
}

impl From<FaultError> for Errno {
    fn from(e: FaultError) -> Errno {
        match e {
            FaultError::NoRegion | FaultError::Protection => Errno::EFAULT,
            FaultError::OutOfMemory => Errno::ENOMEM,
        }
    }
}

/// The leaf flags a page of `region` gets when first mapped.
#[inline]
pub(crate) fn page_flags(region: &Region) -> PageFlags {
    let mut f = PageFlags::EMPTY;
    if region.prot.accessible() {
        f |= PageFlags::USER;
    }
    if region.prot.writable() {
        f |= PageFlags::WRITE;
    }
    match region.mem {
        MemType::Shared => f | PageFlags::SHARED,
        MemType::DirectPhys { .. } => f | PageFlags::DIRECT | PageFlags::NOCACHE,
        MemType::Anon | MemType::AnonContig => f,
    }
}

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
    let va = req.addr;
    let code = req.code as u32;
    let write = code & FaultCode::WRITE != 0;
    let result = if code & FaultCode::PRESENT == 0 {
        resolve_missing(vm, slot, va, write)
    } else {
        resolve_fault(vm, slot, va, write)
    };
    if result.is_err() {
        vm.stats.signalled_faults += 1;
    }
}

/// A fault the kernel reports as "not present": the region check, then straight to
/// [`fault_in`] without looking the page up first (the kernel's error code says it is
/// missing). Should the page be present after all (a stale report), the mapping attempt
/// changes nothing and the fault is resolved the general way.
///
/// # Errors
/// See [`FaultError`]; the state is unchanged then.
#[inline]
fn resolve_missing<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    slot: usize,
    va: VirtAddr,
    write: bool,
) -> Result<(), FaultError> {
    let s = vm.slots.get(slot);
    let root = s.root;
    let region = *fault_region(&s.regions, va, write)?;
    match fault_in(vm, root, va.page_floor(), &region) {
        Err(MapFailure::Present) => resolve_fault(vm, slot, va, write),
        r => {
            r.map_err(|_| FaultError::OutOfMemory)?;
            open_link_for_write(vm, root, va.page_floor(), write)
        }
    }
}

/// After a write fault mapped its page: under on-demand fork the leaf table may still be
/// linked read-only (it is this space's own after the map, so no frame is needed to let
/// writes through). The other policies never link a table read-only.
#[inline]
fn open_link_for_write<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    root: crate::addr::Frame,
    page: VirtAddr,
    write: bool,
) -> Result<(), FaultError> {
    if write && vm.fork_policy == ForkPolicy::Share && P::leaf_link(&vm.mem, root, page) != LeafLink::Writable
    {
        P::unshare(&mut vm.mem, root, page).map_err(|_| FaultError::OutOfMemory)?;
    }
    Ok(())
}

/// Why [`fault_in`] mapped nothing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum MapFailure {
    /// No frame for the page or a page table.
    OutOfMemory,
    /// The page is mapped already.
    Present,
}

impl From<PagingError> for MapFailure {
    #[inline]
    fn from(e: PagingError) -> MapFailure {
        match e {
            PagingError::AlreadyMapped(_) => MapFailure::Present,
            _ => MapFailure::OutOfMemory,
        }
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

/// Resolves one fault of the process in `slot` at `va` (`map_pf`).
///
/// # Errors
/// See [`FaultError`]; the state is unchanged then.
pub(crate) fn resolve_fault<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    slot: usize,
    va: VirtAddr,
    write: bool,
) -> Result<(), FaultError> {
    let s = vm.slots.get(slot);
    let root = s.root;
    let region = *fault_region(&s.regions, va, write)?;
    let page = va.page_floor();
    // Only on-demand fork links leaf tables read-only: the other policies skip the check.
    let shares = vm.fork_policy == ForkPolicy::Share;
    let found = P::translate(vm.mem.arena(), root, page);
    let link = match found {
        Some(_) if write && shares => P::leaf_link(&vm.mem, root, page),
        _ => LeafLink::Writable,
    };
    match found {
        None => {
            fault_in(vm, root, page, &region).map_err(|_| FaultError::OutOfMemory)?;
            open_link_for_write(vm, root, page, write)
        }
        Some(m) if link != LeafLink::Writable => unshare_and_write(vm, root, page, m, link),
        Some(m) if write && !m.flags.contains(PageFlags::WRITE) => break_cow(vm, root, page, m),
        Some(m) if !m.flags.contains(PageFlags::USER) => {
            // Protection raised again after a PROT_NONE period: restore user access.
            P::protect_range(
                &mut vm.mem,
                root,
                PageSpan { start: page, pages: 1 },
                PageFlags::USER,
                PageFlags::EMPTY,
            )
            .map_err(|_| FaultError::OutOfMemory)?;
            Ok(())
        }
        Some(_) => {
            vm.stats.spurious_faults += 1;
            Ok(())
        }
    }
}

/// Maps a missing page of `region`: a zeroed frame, or the region's device frame. On
/// failure nothing changed (a frame taken from the pre-zeroed pool goes back to it).
#[inline]
fn fault_in<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    root: crate::addr::Frame,
    page: VirtAddr,
    region: &Region,
) -> Result<(), MapFailure> {
    let flags = page_flags(region);
    if let MemType::DirectPhys { base } = region.mem {
        let frame = base.add((page.0 - region.start.0) / PAGE_SIZE);
        return Ok(P::map(&mut vm.mem, root, page, Mapping { frame, flags })?);
    }
    let z = vm.pool.take_zeroed(&mut vm.mem).ok_or(MapFailure::OutOfMemory)?;
    if let Err(e) = P::map(&mut vm.mem, root, page, Mapping { frame: z.frame, flags }) {
        vm.pool.give_back(&mut vm.mem, z);
        return Err(e.into());
    }
    if z.pooled {
        vm.stats.prezeroed_fills += 1;
    }
    vm.stats.zero_fills += 1;
    Ok(())
}

/// A write to a present page under a leaf table linked read-only (on-demand fork; `link`
/// says how): make the table this space's own (a copy while another space links it),
/// then proceed as for any write. Allocate-then-commit: the page's copy is allocated
/// before anything changes whenever the write will need one — when the table is copied
/// (every private frame in it becomes shared), or when the page's frame is shared
/// already (a sharer copied the table away, and opening the link turns such pages
/// copy-on-write) — so a refused fault leaves entries and link as they were.
fn unshare_and_write<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    root: crate::addr::Frame,
    page: VirtAddr,
    m: Mapping,
    link: LeafLink,
) -> Result<(), FaultError> {
    let private = !m.flags.intersects(PageFlags::SHARED | PageFlags::DIRECT);
    let spare = if private && (link == LeafLink::Shared || vm.mem.refs().get(m.frame) > 1) {
        Some(vm.alloc_any().ok_or(FaultError::OutOfMemory)?)
    } else {
        None
    };
    let m = match P::unshare(&mut vm.mem, root, page) {
        Ok(Some(m)) => m,
        _ => {
            if let Some(f) = spare {
                vm.mem.unref(f);
            }
            return Err(FaultError::OutOfMemory);
        }
    };
    if m.flags.contains(PageFlags::WRITE) {
        debug_assert!(spare.is_none());
        return Ok(());
    }
    match spare {
        Some(copy) => {
            vm.mem.arena_mut().copy_frame(m.frame, copy);
            let flags = m.flags.difference(PageFlags::COW | PageFlags::ACCESSED | PageFlags::DIRTY)
                | PageFlags::WRITE;
            // The table is this space's own now: replace needs no frame.
            if P::replace(&mut vm.mem, root, page, Mapping { frame: copy, flags }).is_err() {
                vm.mem.unref(copy);
                return Err(FaultError::OutOfMemory);
            }
            vm.stats.cow_copies += 1;
            Ok(())
        }
        None => break_cow(vm, root, page, m),
    }
}

/// A write to a present read-only page of a writable region: copy-on-write.
fn break_cow<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    root: crate::addr::Frame,
    page: VirtAddr,
    m: Mapping,
) -> Result<(), FaultError> {
    let one = PageSpan { start: page, pages: 1 };
    let private = !m.flags.intersects(PageFlags::SHARED | PageFlags::DIRECT);
    if !private || vm.mem.refs().get(m.frame) == 1 {
        P::protect_range(&mut vm.mem, root, one, PageFlags::WRITE, PageFlags::COW)
            .map_err(|_| FaultError::OutOfMemory)?;
        vm.stats.cow_reuses += 1;
        return Ok(());
    }
    let copy = vm.alloc_any().ok_or(FaultError::OutOfMemory)?;
    vm.mem.arena_mut().copy_frame(m.frame, copy);
    let flags =
        m.flags.difference(PageFlags::COW | PageFlags::ACCESSED | PageFlags::DIRTY) | PageFlags::WRITE;
    if P::replace(&mut vm.mem, root, page, Mapping { frame: copy, flags }).is_err() {
        vm.mem.unref(copy);
        return Err(FaultError::OutOfMemory);
    }
    vm.stats.cow_copies += 1;
    Ok(())
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
        let ok = match P::translate(vm.mem.arena(), root, page) {
            None => false,
            Some(m) => {
                m.flags.contains(PageFlags::USER)
                    && (!write
                        || (m.flags.contains(PageFlags::WRITE)
                            && (vm.fork_policy != ForkPolicy::Share
                                || P::leaf_link(&vm.mem, root, page) == LeafLink::Writable)))
            }
        };
        if !ok {
            resolve_fault(vm, slot, page, write)?;
        }
        page = VirtAddr(page.0 + PAGE_SIZE);
    }
    Ok(())
}
