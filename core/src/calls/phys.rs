//! VM_MAP_PHYS and VM_UNMAP_PHYS: device (direct physical) memory.
//!
//! Replaces `do_map_phys`, `do_unmap_phys` and `map_perm_check` of `servers/vm/mmap.c`.
//! Direct regions map fixed physical frames uncached (§21.13) and are never counted or
//! freed. The arena is RAM owned by VM, so only physical ranges beyond it (device memory)
//! can be mapped. Fixes of §21: an unaligned physical address is rounded down and the
//! offset added to the reply (§21.5); VM_UNMAP_PHYS against another process is refused
//! (§21.10).

use crate::addr::{Frame, VirtAddr, PAGE_SIZE};
use crate::endpoint::{Endpoint, TTY_PROC_NR};
use crate::errno::Errno;
use crate::frames::FrameAllocator;
use crate::layout::{data_top, mmap_base};
use crate::message::{call_fields, Fields, Message, VM_MAP_PHYS, VM_UNMAP_PHYS};
use crate::paging::PagingFormat;
use crate::region::{MapProt, MemType, Region, RegionTag};
use crate::server::{CallResult, Reply, Vm};

use super::mmap::unmap_range;
use super::target_slot;

call_fields! {
    /// `VM_MAP_PHYS` from a driver: map `len` bytes of device memory at `phys` into
    /// `target` (`SELF` allowed).
    pub struct MapPhysRequest for VM_MAP_PHYS {
        /// The process to map into (`VMMP_EP`).
        target: Endpoint = m1_i1 / set_m1_i1,
        /// Physical address (`VMMP_PHADDR`).
        phys: u64 = m1_p2 / set_m1_p2,
        /// Length in bytes (`VMMP_LEN`).
        len: i32 = m1_i2 / set_m1_i2,
    }
}

call_fields! {
    /// `VM_MAP_PHYS`'s reply.
    pub struct MapPhysReply for VM_MAP_PHYS {
        /// Where the memory was mapped (`VMMP_VADDR_REPLY`).
        addr: VirtAddr = m1_p3 / set_m1_p3,
    }
}

call_fields! {
    /// `VM_UNMAP_PHYS` from a driver: unmap the device region of `target` (`SELF`
    /// allowed) containing `addr`.
    pub struct UnmapPhysRequest for VM_UNMAP_PHYS {
        /// The process (`VMUP_EP`).
        target: Endpoint = m1_i1 / set_m1_i1,
        /// An address inside the region (`VMUP_VADDR`).
        addr: VirtAddr = m1_p1 / set_m1_p1,
    }
}

/// `do_map_phys`: m1_i1 target (SELF allowed), m1_p2 physical address, m1_i2 length →
/// m1_p3 virtual address.
///
/// # Errors
/// `EINVAL` bad target, zero or negative length, a range beyond what an entry can hold;
/// `EPERM` mapping for another process (unless TTY), or a range inside the arena (RAM);
/// `ENOMEM`.
pub(crate) fn do_map_phys<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    caller: usize,
    msg: &mut Message,
) -> CallResult {
    let req = MapPhysRequest::decode(msg);
    let target = target_slot(vm, caller, req.target)?;
    if target != caller && vm.slots.get(caller).endpoint != TTY_PROC_NR {
        return Err(Errno::EPERM);
    }
    if req.len <= 0 {
        return Err(Errno::EINVAL);
    }
    let len = req.len as u64;
    let phys = req.phys;
    let offset = phys % PAGE_SIZE;
    let base = Frame(phys / PAGE_SIZE);
    let pages = (offset + len).div_ceil(PAGE_SIZE);
    if base.0.checked_add(pages).is_none_or(|end| end > P::FRAME_END) {
        return Err(Errno::EINVAL);
    }
    if base.0 < vm.total_frames() {
        return Err(Errno::EPERM);
    }
    let start = vm
        .slots
        .get(target)
        .regions
        .first_fit(mmap_base::<P>(), data_top::<P>(), pages)
        .ok_or(Errno::ENOMEM)?;
    let region =
        Region { start, pages, mem: MemType::DirectPhys { base }, prot: MapProt::RW, tag: RegionTag::None };
    map_direct(vm, target, region)?;
    MapPhysReply { addr: VirtAddr(start.0 + offset) }.encode(msg);
    Ok(Reply::Now)
}

fn map_direct<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    slot: usize,
    region: Region,
) -> Result<(), Errno> {
    let MemType::DirectPhys { base } = region.mem else { return Err(Errno::EINVAL) };
    let root = vm.slots.get(slot).root;
    P::map_range(&mut vm.mem, root, region.span(), base, region.leaf_flags())?;
    vm.slots.get_mut(slot).regions.insert_unmerged(region);
    Ok(())
}

/// `do_unmap_phys`: m1_i1 target (SELF allowed), m1_p1 an address inside the region.
///
/// # Errors
/// `EINVAL` bad target or not a direct region; `EPERM` another process's mapping.
pub(crate) fn do_unmap_phys<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    caller: usize,
    msg: &mut Message,
) -> CallResult {
    let req = UnmapPhysRequest::decode(msg);
    let target = target_slot(vm, caller, req.target)?;
    if target != caller {
        return Err(Errno::EPERM);
    }
    let r = *vm.slots.get(target).regions.find(req.addr).ok_or(Errno::EINVAL)?;
    if !matches!(r.mem, MemType::DirectPhys { .. }) {
        return Err(Errno::EINVAL);
    }
    unmap_range(vm, target, r.start, r.end())?;
    Ok(Reply::Now)
}
