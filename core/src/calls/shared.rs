//! VM_REMAP, VM_SHM_UNMAP, VM_GETPHYS and VM_GETREF: System V shared memory for IPC.
//!
//! Replaces `do_remap`, `do_shared_unmap`, `do_get_phys` and `do_get_refcount` of
//! `servers/vm/mmap.c` and `region.c`'s `map_remap`. A shared region (from
//! `mmap(MAP_SHARED)`, always preallocated) can be mapped into another process: the same
//! frames, one more reference each, mapped shared and writable. Fixes of §21: no lookup
//! panics for processes without regions (§21.6), a page-table failure is ENOMEM with the
//! destination unchanged (§21.8), error replies carry zeroed outputs (§21.18), and
//! reference counts are u32 (§21.9).

use crate::addr::{PageSpan, VirtAddr, PAGE_SIZE};
use crate::errno::Errno;
use crate::frames::FrameAllocator;
use crate::layout::{data_top, mmap_base};
use crate::message::Message;
use crate::paging::{Mapping, PageFlags, PagingFormat};
use crate::region::{MemType, Region, RegionTag};
use crate::server::{CallResult, Reply, Vm};

use super::mmap::unmap_range;
use super::target_slot;

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
    let dst = target_slot(vm, caller, msg.m1_i1()).map_err(|_| Errno::EINVAL)?;
    let src = target_slot(vm, caller, msg.m1_i2()).map_err(|_| Errno::EINVAL)?;
    let sa = VirtAddr(msg.m1_p2());
    let da = msg.m1_p1();
    let size = u64::try_from(msg.m1_i3()).map_err(|_| Errno::EFAULT)?;
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
    P::for_each_mapping(&vm.mem.arena, src_root, region.span(), &mut |va, m| pages.push((va, m)));
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
    msg.set_m1_p3(start.0);
    Ok(Reply::Now)
}

/// The shared region starting exactly at `addr` of the process named by `raw`.
fn shared_region_at<F: FrameAllocator, P: PagingFormat>(
    vm: &Vm<F, P>,
    caller: usize,
    raw: i32,
    addr: u64,
    not_found: Errno,
) -> Result<(usize, Region), Errno> {
    let slot = target_slot(vm, caller, raw).map_err(|_| Errno::EINVAL)?;
    let r = *vm.slots.get(slot).regions.find(VirtAddr(addr)).ok_or(not_found)?;
    if r.start.0 != addr || r.mem != MemType::Shared {
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
    let (slot, r) = shared_region_at(vm, caller, msg.m2_i1(), msg.m2_l1() as u64, Errno::EFAULT)?;
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
    msg.set_m2_l2(0);
    let (slot, r) = shared_region_at(vm, caller, msg.m2_i1(), msg.m2_l1() as u64, Errno::EINVAL)?;
    let m = P::translate(&vm.mem.arena, vm.slots.get(slot).root, r.start).ok_or(Errno::EINVAL)?;
    msg.set_m2_l2(m.frame.start_address().0 as i64);
    Ok(Reply::Now)
}

/// `do_get_refcount`: m2_i1 endpoint, m2_l1 region start → m2_i2 reference count of its
/// first page's frame.
///
/// # Errors
/// `EINVAL` bad endpoint or not the start of a shared region.
pub(crate) fn do_get_refcount<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    caller: usize,
    msg: &mut Message,
) -> CallResult {
    msg.set_m2_i2(0);
    let (slot, r) = shared_region_at(vm, caller, msg.m2_i1(), msg.m2_l1() as u64, Errno::EINVAL)?;
    let m = P::translate(&vm.mem.arena, vm.slots.get(slot).root, r.start).ok_or(Errno::EINVAL)?;
    let count = vm.mem.refs.get(m.frame);
    msg.set_m2_i2(i32::try_from(count).unwrap_or(i32::MAX));
    Ok(Reply::Now)
}
