//! VM_REMAP, VM_SHM_UNMAP, VM_GETPHYS and VM_GETREF: System V shared memory for IPC.
//!
//! Replaces `do_remap`, `do_shared_unmap`, `do_get_phys` and `do_get_refcount` of
//! `servers/vm/mmap.c` and `region.c`'s `map_remap`. A shared region (from
//! `mmap(MAP_SHARED)`, always preallocated) can be mapped into another process: the same
//! frames, one more reference each, mapped shared and writable. Fixes of §21: no lookup
//! panics for processes without regions (§21.6), a page-table failure is ENOMEM with the
//! destination unchanged (§21.8), error replies carry zeroed outputs (§21.18), and
//! reference counts are u32 (§21.9).
//!
//! Sharers. MINIX's `do_get_refcount` answers a frame's reference count, which there is
//! the number of mappings. Here a frame's count is one per leaf entry, and under
//! on-demand fork a leaf table linked by several directories holds one entry for all of
//! them (that is what keeps that fork O(tables)). The number of mappings of a frame is
//! therefore derived, by one function, `sharer_counts`: the sum, over the leaf entries
//! mapping it, of the number of directory links to the entry's table (that table's
//! reference count). VM_GETREF, VM_INFO's usage figures and the invariant checks (which
//! compare it with a walk of every process) all use it, so it is right under every fork
//! policy: under `cow` and `copy` every table has one link and the figure is the frame's
//! count.

use crate::addr::{PageSpan, VirtAddr, PAGE_SIZE};
use crate::endpoint::Endpoint;
use crate::errno::Errno;
use crate::frames::FrameAllocator;
use crate::layout::{data_top, mmap_base};
use crate::message::{call_fields, Fields, Message, VM_GETPHYS, VM_GETREF, VM_REMAP, VM_SHM_UNMAP};
use crate::paging::{Mapping, PageFlags, PagingFormat};
use crate::region::{MemType, Region, RegionTag};
use crate::server::{CallResult, Reply, Vm};
use std::collections::{HashMap, HashSet};

use super::mmap::unmap_range;
use super::target_slot;

call_fields! {
    /// `VM_REMAP` from the IPC server: map `src`'s shared region at `src_addr` (of `size`
    /// bytes) into `dst` at `dst_addr`, or anywhere for 0 (`SELF` allowed for both).
    pub struct RemapRequest for VM_REMAP {
        /// The destination process (`VMRE_D`).
        dst: Endpoint = m1_i1 / set_m1_i1,
        /// The source process (`VMRE_S`).
        src: Endpoint = m1_i2 / set_m1_i2,
        /// Destination address or 0 (`VMRE_DA`).
        dst_addr: u64 = m1_p1 / set_m1_p1,
        /// Source region start (`VMRE_SA`).
        src_addr: VirtAddr = m1_p2 / set_m1_p2,
        /// Size in bytes (`VMRE_SIZE`).
        size: i32 = m1_i3 / set_m1_i3,
    }
}

call_fields! {
    /// `VM_REMAP`'s reply.
    pub struct RemapReply for VM_REMAP {
        /// Where the region was mapped (`VMRE_RETA`).
        addr: VirtAddr = m1_p3 / set_m1_p3,
    }
}

call_fields! {
    /// `VM_SHM_UNMAP` from the IPC server: unmap `proc`'s shared region at `addr`.
    pub struct ShmUnmapRequest for VM_SHM_UNMAP {
        /// The process (`VMUN_ENDPT`).
        proc: Endpoint = m2_i1 / set_m2_i1,
        /// The region start (`VMUN_ADDR`).
        addr: VirtAddr = m2_l1 / set_m2_l1,
    }
}

call_fields! {
    /// `VM_GETPHYS` from the IPC server: the physical address of `proc`'s shared region
    /// at `addr`.
    pub struct GetPhysRequest for VM_GETPHYS {
        /// The process (`VMPHYS_ENDPT`).
        proc: Endpoint = m2_i1 / set_m2_i1,
        /// The region start (`VMPHYS_ADDR`).
        addr: VirtAddr = m2_l1 / set_m2_l1,
    }
}

call_fields! {
    /// `VM_GETPHYS`'s reply.
    pub struct GetPhysReply for VM_GETPHYS {
        /// Physical address of the region's first page (`VMPHYS_RETA`).
        phys: i64 = m2_l2 / set_m2_l2,
    }
}

call_fields! {
    /// `VM_GETREF` from the IPC server: the reference count of `proc`'s shared region at
    /// `addr`.
    pub struct GetRefRequest for VM_GETREF {
        /// The process (`VMREFCNT_ENDPT`).
        proc: Endpoint = m2_i1 / set_m2_i1,
        /// The region start (`VMREFCNT_ADDR`).
        addr: VirtAddr = m2_l1 / set_m2_l1,
    }
}

call_fields! {
    /// `VM_GETREF`'s reply.
    pub struct GetRefReply for VM_GETREF {
        /// The reference count of the region's first page (`VMREFCNT_RETC`).
        count: i32 = m2_i2 / set_m2_i2,
    }
}

/// `do_remap`: m1_i1 destination, m1_i2 source (SELF allowed for both), m1_p1 destination
/// address or 0, m1_p2 source address, m1_i3 size → m1_p3 destination address.
///
/// # Errors
/// `EINVAL` bad endpoints, or the region does not land at a requested address; `EFAULT`
/// when the source is not a whole shared region; `ENOMEM`.
pub(crate) fn do_remap<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    caller: usize,
    msg: &mut Message,
) -> CallResult {
    let req = RemapRequest::decode(msg);
    let dst = target_slot(vm, caller, req.dst)?;
    let src = target_slot(vm, caller, req.src)?;
    let sa = req.src_addr;
    let da = req.dst_addr;
    if req.size < 0 {
        return Err(Errno::EFAULT);
    }
    let size = req.size as u64;
    let region = *vm.slots.get(src).regions.find(sa).ok_or(Errno::EFAULT)?;
    if region.start != sa || region.mem != MemType::Shared || size.div_ceil(PAGE_SIZE) != region.pages {
        return Err(Errno::EFAULT);
    }
    let top = data_top::<P>();
    let min = if da == 0 { mmap_base::<P>() } else { VirtAddr(da) };
    if min >= top {
        return Err(Errno::EINVAL);
    }
    let start = vm.slots.get(dst).regions.first_fit(min, top, region.pages).ok_or(Errno::ENOMEM)?;
    if da != 0 && start.0 != da {
        return Err(Errno::EINVAL);
    }
    let src_root = vm.slots.get(src).root;
    let dst_root = vm.slots.get(dst).root;
    let mut pages = Vec::with_capacity(region.pages as usize);
    P::for_each_mapping(vm.mem.arena(), src_root, region.span(), &mut |va, m| pages.push((va, m)));
    let span = PageSpan { start, pages: region.pages };
    for &(va, m) in &pages {
        let at = VirtAddr(start.0 + (va.0 - region.start.0));
        vm.mem.share(m.frame);
        let flags = m.flags.difference(PageFlags::ACCESSED | PageFlags::DIRTY);
        if P::map(&mut vm.mem, dst_root, at, Mapping { frame: m.frame, flags }).is_err() {
            vm.mem.unref(m.frame);
            // Only this call's pages are in the span: no table to copy.
            let _ = P::unmap_range(&mut vm.mem, dst_root, span);
            return Err(Errno::ENOMEM);
        }
    }
    vm.slots.get_mut(dst).regions.insert_unmerged(Region { start, tag: RegionTag::None, ..region });
    RemapReply { addr: start }.encode(msg);
    Ok(Reply::Now)
}

/// The shared region starting exactly at `addr` of process `proc` (`SELF` allowed).
fn shared_region_at<F: FrameAllocator, P: PagingFormat>(
    vm: &Vm<F, P>,
    caller: usize,
    proc: Endpoint,
    addr: VirtAddr,
    not_found: Errno,
) -> Result<(usize, Region), Errno> {
    let slot = target_slot(vm, caller, proc)?;
    let r = *vm.slots.get(slot).regions.find(addr).ok_or(not_found)?;
    if r.start != addr || r.mem != MemType::Shared {
        return Err(not_found);
    }
    Ok((slot, r))
}

/// `do_shared_unmap`: m2_i1 endpoint, m2_l1 region start.
///
/// # Errors
/// `EINVAL` bad endpoint; `EFAULT` not the start of a shared region.
pub(crate) fn do_shared_unmap<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    caller: usize,
    msg: &mut Message,
) -> CallResult {
    let req = ShmUnmapRequest::decode(msg);
    let (slot, r) = shared_region_at(vm, caller, req.proc, req.addr, Errno::EFAULT)?;
    unmap_range(vm, slot, r.start, r.end())?;
    Ok(Reply::Now)
}

/// `do_get_phys`: m2_i1 endpoint, m2_l1 region start → m2_l2 physical address of its
/// first page.
///
/// # Errors
/// `EINVAL` bad endpoint or not the start of a shared region.
pub(crate) fn do_get_phys<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    caller: usize,
    msg: &mut Message,
) -> CallResult {
    let req = GetPhysRequest::decode(msg);
    GetPhysReply { phys: 0 }.encode(msg);
    let (slot, r) = shared_region_at(vm, caller, req.proc, req.addr, Errno::EINVAL)?;
    let m = P::translate(vm.mem.arena(), vm.slots.get(slot).root, r.start).ok_or(Errno::EINVAL)?;
    GetPhysReply { phys: m.frame.start_address().0 as i64 }.encode(msg);
    Ok(Reply::Now)
}

/// `do_get_refcount`: m2_i1 endpoint, m2_l1 region start → m2_i2 the number of mappings
/// of its first page's frame (processes mapping it, see [`sharer_counts`]).
///
/// # Errors
/// `EINVAL` bad endpoint or not the start of a shared region.
pub(crate) fn do_get_refcount<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    caller: usize,
    msg: &mut Message,
) -> CallResult {
    let req = GetRefRequest::decode(msg);
    GetRefReply { count: 0 }.encode(msg);
    let (slot, r) = shared_region_at(vm, caller, req.proc, req.addr, Errno::EINVAL)?;
    let m = P::translate(vm.mem.arena(), vm.slots.get(slot).root, r.start).ok_or(Errno::EINVAL)?;
    let count = sharer_counts(vm, |r| r.mem == MemType::Shared).get(&m.frame.0).copied().unwrap_or(0);
    GetRefReply { count: i32::try_from(count).unwrap_or(i32::MAX) }.encode(msg);
    Ok(Reply::Now)
}

/// The number of mappings of every counted frame mapped in a region that `regions`
/// selects, over all processes: for each leaf entry mapping the frame, the number of
/// directory links to the entry's table (its reference count). A table linked by several
/// processes is counted once, so the cost is that of the distinct entries. A frame is
/// mapped only in regions of its kind (shared frames in shared regions), so selecting
/// the regions of one kind gives exact figures for that kind's frames.
pub(crate) fn sharer_counts<F: FrameAllocator, P: PagingFormat>(
    vm: &Vm<F, P>,
    regions: impl Fn(&Region) -> bool,
) -> HashMap<u64, u32> {
    let mut counts: HashMap<u64, u32> = HashMap::new();
    // (leaf table, address) of every entry counted: the same entry is reached from every
    // process linking its table.
    let mut entries: HashSet<(u64, u64)> = HashSet::new();
    for i in vm.slots.in_use_indices() {
        let s = vm.slots.get(i);
        for r in s.regions.as_slice().iter().filter(|r| regions(r)) {
            P::for_each_leaf_mapping(vm.mem.arena(), s.root, r.span(), &mut |t, va, m| {
                if !m.flags.contains(PageFlags::DIRECT) && entries.insert((t.0, va.0)) {
                    *counts.entry(m.frame.0).or_default() += vm.mem.refs().get(t);
                }
            });
        }
    }
    counts
}
