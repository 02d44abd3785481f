//! VM_INFO: statistics, memory usage and region listings for IS.
//!
//! Replaces `do_info` of `servers/vm/utility.c` (with `get_usage_info` and
//! `get_region_info` of `region.c`). Results are copied into the caller's buffer after a
//! kernel memory request makes it present and writable (as the seed's `handle_memory`
//! before `sys_datacopy`). Layouts (little endian):
//! * `VMIW_STATS`: `{pagesize, total, free, largest}` as four u64 (pages);
//! * `VMIW_USAGE`: `{total, common, shared}` bytes as three u64 (common: pages mapped by
//!   more than one process, under every fork policy; shared: those in shared regions);
//! * `VMIW_REGION`: up to 64 entries `{addr u64, length u64, prot u32, flags u32}`
//!   (flags: `MAP_SHARED` for shared regions), starting at the first region at or above
//!   `next`; `count` and `next` are updated in the reply.

use crate::addr::{Frame, VirtAddr, PAGE_SIZE};
use crate::endpoint::Endpoint;
use crate::errno::Errno;
use crate::frames::FrameAllocator;
use crate::message::{call_fields, Fields, Message, VM_INFO};
use crate::paging::{PageFlags, PagingFormat};
use crate::region::MemType;
use crate::server::{CallResult, Reply, Vm};

/// `VMIW_STATS`.
pub const VMIW_STATS: i32 = 1;
/// `VMIW_USAGE`.
pub const VMIW_USAGE: i32 = 2;
/// `VMIW_REGION`.
pub const VMIW_REGION: i32 = 3;
/// `MAX_VRI_COUNT`: most region entries per call.
pub const MAX_VRI_COUNT: usize = 64;
/// Bytes of one region entry.
pub const REGION_INFO_BYTES: usize = 24;

call_fields! {
    /// `VM_INFO` from IS: statistics, a process's usage or its regions, copied to `buf`.
    pub struct InfoRequest for VM_INFO {
        /// What: `VMIW_STATS`, `VMIW_USAGE` or `VMIW_REGION` (`VMI_WHAT`).
        what: i32 = m2_i1 / set_m2_i1,
        /// The process, for usage and regions (`VMI_EP`).
        proc: Endpoint = m2_i2 / set_m2_i2,
        /// Most regions to list (`VMI_COUNT`).
        count: i32 = m2_i3 / set_m2_i3,
        /// The buffer in the caller's memory (`VMI_PTR`).
        buf: VirtAddr = m2_p1 / set_m2_p1,
        /// The address to list regions from (`VMI_NEXT`).
        next: u64 = m2_l1 / set_m2_l1,
    }
}

call_fields! {
    /// `VM_INFO`'s reply for `VMIW_REGION`.
    pub struct InfoReply for VM_INFO {
        /// Regions listed (`VMI_COUNT`).
        count: i32 = m2_i3 / set_m2_i3,
        /// Where the next listing starts (`VMI_NEXT`).
        next: u64 = m2_l1 / set_m2_l1,
    }
}

/// `do_info`: m2_i1 what, m2_i2 endpoint (USAGE, REGION), m2_i3 count, m2_p1 buffer,
/// m2_l1 next.
///
/// # Errors
/// `EINVAL` unknown `what` or bad endpoint; `EFAULT`/`ENOMEM` from the copy out.
pub(crate) fn do_info<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    caller: usize,
    msg: &mut Message,
) -> CallResult {
    let req = InfoRequest::decode(msg);
    let buf = req.buf;
    let out: Vec<u8> = match req.what {
        VMIW_STATS => {
            let total = vm.total_frames();
            let mut largest = 0u64;
            let mut run = 0u64;
            for f in 0..total {
                if vm.mem.allocator().is_free(Frame(f)) {
                    run += 1;
                    largest = largest.max(run);
                } else {
                    run = 0;
                }
            }
            [PAGE_SIZE, total, vm.free_frames(), largest].iter().flat_map(|v| v.to_le_bytes()).collect()
        }
        VMIW_USAGE => {
            let slot = vm.proc_slot(req.proc)?;
            let s = vm.slots.get(slot);
            // Mapped by more than one process, under every fork policy.
            let sharers = crate::calls::shared::sharer_counts(vm, |_| true);
            let (mut total, mut common, mut shared) = (0u64, 0u64, 0u64);
            for r in s.regions.as_slice() {
                P::for_each_mapping(vm.mem.arena(), s.root, r.span(), &mut |_, m| {
                    total += PAGE_SIZE;
                    let direct = m.flags.contains(PageFlags::DIRECT);
                    if !direct && sharers.get(&m.frame.0).is_some_and(|&n| n > 1) {
                        common += PAGE_SIZE;
                        if r.mem == MemType::Shared {
                            shared += PAGE_SIZE;
                        }
                    }
                });
            }
            [total, common, shared].iter().flat_map(|v| v.to_le_bytes()).collect()
        }
        VMIW_REGION => {
            let slot = vm.proc_slot(req.proc)?;
            let count = usize::try_from(req.count).unwrap_or(0).min(MAX_VRI_COUNT);
            let next = req.next;
            let regions = vm.slots.get(slot).regions.as_slice();
            let from = regions.partition_point(|r| r.start.0 < next);
            let chosen = &regions[from..(from + count).min(regions.len())];
            let mut out = Vec::with_capacity(chosen.len() * REGION_INFO_BYTES);
            for r in chosen {
                out.extend_from_slice(&r.start.0.to_le_bytes());
                out.extend_from_slice(&(r.pages * PAGE_SIZE).to_le_bytes());
                out.extend_from_slice(&u32::from(r.prot.bits()).to_le_bytes());
                let flags: u32 = if r.mem == MemType::Shared { 1 } else { 0 };
                out.extend_from_slice(&flags.to_le_bytes());
            }
            let new_next = chosen.last().map_or(next, |r| r.end().0);
            let emitted = chosen.len();
            if !out.is_empty() {
                vm.copy_to_user(caller, buf, &out)?;
            }
            InfoReply { count: emitted as i32, next: new_next }.encode(msg);
            return Ok(Reply::Now);
        }
        _ => return Err(Errno::EINVAL),
    };
    vm.copy_to_user(caller, buf, &out)?;
    Ok(Reply::Now)
}
