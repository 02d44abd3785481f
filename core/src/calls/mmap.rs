//! VM_MMAP, VM_MUNMAP and VM_MUNMAP_TEXT.
//!
//! Replaces `servers/vm/mmap.c` (`do_mmap`, `do_munmap`) and `region.c`'s
//! `map_page_region`, `region_find_slot` and `map_unmap_region`. Placement is first fit at
//! or above the hint (default: the stack top, as the seed's `vm_stacktop`), so MINIX's
//! test44 layout holds: consecutive mmaps land at consecutive addresses. Fixes of §21:
//! length 0 or a hint beyond the top is EINVAL (§21.3); PROT is honoured (§21.13);
//! `MAP_SHARED` anonymous memory is preallocated and shared writable across fork (§21.4);
//! munmap removes any page range of any regions, splitting them (§21.22); a failed call
//! changes nothing (preallocation failures free what they took, §21.19). `MAP_FIXED` is an
//! extension flag: the range is cleared and mapped exactly there.

use crate::addr::{Frame, PageSpan, VirtAddr, PAGE_SIZE};
use crate::errno::Errno;
use crate::frames::FrameAllocator;
use crate::layout::{data_top, mmap_base};
use crate::message::{call_fields, FieldValue, Fields, Message, VM_MMAP, VM_MUNMAP};
use crate::paging::{Mapping, PageFlags, PagingFormat};
use crate::region::{MapProt, MemType, Region, RegionTag};
use crate::server::{CallResult, Reply, Vm};

use super::user_range;

bitflags::bitflags! {
    /// mmap flags (`MAP_*` of MINIX's `sys/mman.h`, plus the `MAP_FIXED` extension).
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
    pub struct MapFlags: u16 {
        /// Share the memory with children (and through VM_REMAP).
        const SHARED = 0x01;
        /// Private copy-on-write memory.
        const PRIVATE = 0x02;
        /// Anonymous memory (no file).
        const ANON = 0x04;
        /// Allocate every page now.
        const PREALLOC = 0x08;
        /// Physically contiguous (implies PREALLOC).
        const CONTIG = 0x10;
        /// Below 16 MiB physical (accepted; the arena has no such zone).
        const LOWER16M = 0x20;
        /// 64 KiB physical alignment (honoured for CONTIG).
        const ALIGN64K = 0x40;
        /// Below 1 MiB physical (accepted; the arena has no such zone).
        const LOWER1M = 0x80;
        /// Extension: map exactly at the address, replacing what is there.
        const FIXED = 0x100;
    }
}

impl MapFlags {
    /// Every known flag.
    pub const KNOWN: MapFlags = MapFlags::all();
}

impl FieldValue<i16> for MapFlags {
    #[inline(always)]
    fn from_raw(raw: i16) -> MapFlags {
        MapFlags::from_bits_retain(raw as u16)
    }
    #[inline(always)]
    fn to_raw(self) -> i16 {
        self.bits() as i16
    }
}

call_fields! {
    /// `VM_MMAP` from a process (libc's `mmap`).
    pub struct MmapRequest for VM_MMAP {
        /// Hint, or the exact address with [`MapFlags::FIXED`] (`VMM_ADDR`).
        addr: u64 = m5_l1 / set_m5_l1,
        /// Length in bytes (`VMM_LEN`).
        len: u64 = m5_l2 / set_m5_l2,
        /// Protection (`VMM_PROT`).
        prot: MapProt = m5_s1 / set_m5_s1,
        /// Flags (`VMM_FLAGS`).
        flags: MapFlags = m5_s2 / set_m5_s2,
        /// File descriptor, -1 for anonymous memory (`VMM_FD`).
        fd: i32 = m5_i1 / set_m5_i1,
        /// File offset (`VMM_OFFSET`).
        offset: i32 = m5_i2 / set_m5_i2,
    }
}

call_fields! {
    /// `VM_MMAP`'s reply.
    pub struct MmapReply for VM_MMAP {
        /// Where the memory was mapped (`VMM_RETADDR`).
        addr: VirtAddr = m5_l1 / set_m5_l1,
    }
}

call_fields! {
    /// `VM_MUNMAP` and `VM_MUNMAP_TEXT` from a process (libc's `munmap`).
    pub struct MunmapRequest for VM_MUNMAP {
        /// Start (`VMUM_ADDR`).
        addr: u64 = m1_p1 / set_m1_p1,
        /// Length in bytes (`VMUM_LEN`).
        len: u64 = m1_p2 / set_m1_p2,
    }
}

/// `do_mmap`: m5_l1 hint, m5_l2 length, m5_s1 prot, m5_s2 flags, m5_i1 fd → m5_l1
/// address.
///
/// # Errors
/// `EINVAL` (zero length, bad prot or flags, anonymous with an fd, bad fixed address or
/// hint); `ENOSYS` for a file mapping; `ENOMEM` (no room, no frames).
pub(crate) fn do_mmap<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    caller: usize,
    msg: &mut Message,
) -> CallResult {
    let req = MmapRequest::decode(msg);
    let MmapRequest { flags, prot, fd, .. } = req;
    if flags.bits() & !MapFlags::KNOWN.bits() != 0 || prot.bits() & !MapProt::ALL.bits() != 0 {
        return Err(Errno::EINVAL);
    }
    if flags.contains(MapFlags::ANON) && fd != -1 {
        return Err(Errno::EINVAL);
    }
    if !flags.contains(MapFlags::ANON) && fd != -1 {
        return Err(Errno::ENOSYS);
    }
    if flags.contains(MapFlags::SHARED | MapFlags::PRIVATE) {
        return Err(Errno::EINVAL);
    }
    let len = req.len;
    let top = data_top::<P>().0;
    if len == 0 || len > top {
        return Err(Errno::EINVAL);
    }
    let pages = len.div_ceil(PAGE_SIZE);
    let hint = req.addr;
    let start = if flags.contains(MapFlags::FIXED) {
        let (s, _) = user_range(hint, len, top)?;
        if s.0 == 0 {
            return Err(Errno::EINVAL);
        }
        s
    } else {
        let min = if hint == 0 { mmap_base::<P>().0 } else { hint };
        if min >= top {
            return Err(Errno::EINVAL);
        }
        vm.slots.get(caller).regions.first_fit(VirtAddr(min), VirtAddr(top), pages).ok_or(Errno::ENOMEM)?
    };
    let shared = flags.contains(MapFlags::SHARED);
    let contig = flags.contains(MapFlags::CONTIG);
    let mem = if shared {
        MemType::Shared
    } else if contig {
        MemType::AnonContig
    } else {
        MemType::Anon
    };
    let region = Region { start, pages, mem, prot, tag: RegionTag::None };
    let prealloc = flags.contains(MapFlags::PREALLOC) || shared || contig;
    let align = if flags.contains(MapFlags::ALIGN64K) { 16 } else { 1 };
    map_region(vm, caller, region, prealloc, contig, align, flags.contains(MapFlags::FIXED))?;
    MmapReply { addr: start }.encode(msg);
    Ok(Reply::Now)
}

/// Maps a new region into the process in `slot`: frames first (if preallocating), then
/// page tables, then the region list; a failure undoes every step. With `replace`, what
/// was in the range before is unmapped, and restored if the new mapping fails.
pub(crate) fn map_region<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    slot: usize,
    region: Region,
    prealloc: bool,
    contig: bool,
    align: u64,
    replace: bool,
) -> Result<(), Errno> {
    let span = region.span();
    let root = vm.slots.get(slot).root;
    let flags = region.leaf_flags();
    // 1. Frames.
    let mut frames: Vec<Frame> = Vec::new();
    let mut first = None;
    if prealloc && contig {
        let f = vm.mem.alloc_contiguous(span.pages, align).ok_or(Errno::ENOMEM)?;
        for i in 0..span.pages {
            vm.mem.arena_mut().zero_frame(f.add(i));
        }
        first = Some(f);
    } else if prealloc {
        frames.reserve(span.pages as usize);
        for _ in 0..span.pages {
            match vm.alloc_zeroed() {
                Some(f) => frames.push(f),
                None => {
                    for f in frames {
                        vm.mem.unref(f);
                    }
                    return Err(Errno::ENOMEM);
                }
            }
        }
    }
    // 2. Clear the range (MAP_FIXED), keeping what was there alive for a rollback.
    let mut saved: Vec<(VirtAddr, Mapping)> = Vec::new();
    if replace {
        // Own the range's leaf tables first (all or nothing) so that the unmap below and
        // the rollback's maps need no copy of a shared table.
        if P::protect_range(&mut vm.mem, root, span, PageFlags::EMPTY, PageFlags::EMPTY).is_err() {
            for f in frames {
                vm.mem.unref(f);
            }
            if let Some(f) = first {
                for i in 0..span.pages {
                    vm.mem.unref(f.add(i));
                }
            }
            return Err(Errno::ENOMEM);
        }
        P::for_each_mapping(vm.mem.arena(), root, span, &mut |va, m| saved.push((va, m)));
        for (_, m) in &saved {
            if !m.flags.contains(PageFlags::DIRECT) {
                vm.mem.share(m.frame);
            }
        }
        let unmapped = P::unmap_range(&mut vm.mem, root, span);
        debug_assert!(unmapped.is_ok(), "the range's tables are this space's own");
        vm.note_splits();
    }
    // 3. Page tables.
    let mapped = if let Some(f) = first {
        P::map_range(&mut vm.mem, root, span, f, flags).is_ok()
    } else {
        let mut ok = true;
        for (i, f) in frames.iter().enumerate() {
            if P::map(&mut vm.mem, root, span.start.add_pages(i as u64), Mapping { frame: *f, flags })
                .is_err()
            {
                // Only this call's pages are in the span: no table to copy.
                let _ = P::unmap_range(&mut vm.mem, root, span);
                for f in &frames[i..] {
                    vm.mem.unref(*f);
                }
                ok = false;
                break;
            }
        }
        ok
    };
    if !mapped {
        if let Some(f) = first {
            for i in 0..span.pages {
                vm.mem.unref(f.add(i));
            }
        }
        for (va, m) in saved {
            let restored = P::map(&mut vm.mem, root, va, m);
            debug_assert!(restored.is_ok(), "restoring a MAP_FIXED range needs only freed tables");
            if restored.is_err() && !m.flags.contains(PageFlags::DIRECT) {
                vm.mem.unref(m.frame);
            }
        }
        return Err(Errno::ENOMEM);
    }
    for (_, m) in saved {
        if !m.flags.contains(PageFlags::DIRECT) {
            vm.mem.unref(m.frame);
        }
    }
    // 4. Regions.
    let regions = &mut vm.slots.get_mut(slot).regions;
    if replace {
        let r = regions.isolate(span.start, span.end());
        regions.remove_indices(r);
    }
    if region.mem == MemType::Anon {
        regions.insert(region);
    } else {
        regions.insert_unmerged(region);
    }
    Ok(())
}

/// Unmaps `[start, end)` of the process in `slot`: its pages are unmapped (frames freed
/// at their last reference), then every region piece inside is removed. Returns whether
/// any region intersected the range (nothing changes when none did).
///
/// # Errors
/// `ENOMEM` when a leaf table shared by an on-demand fork must be copied and no frame is
/// left; nothing has changed then.
pub(crate) fn unmap_range<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    slot: usize,
    start: VirtAddr,
    end: VirtAddr,
) -> Result<bool, Errno> {
    let s = vm.slots.get(slot);
    if s.regions.is_free(start, end) {
        return Ok(false);
    }
    let root = s.root;
    // Pages first: that can fail, the regions cannot. Pages are mapped only inside
    // regions, so one walk over the range unmaps exactly theirs.
    P::unmap_range(&mut vm.mem, root, PageSpan { start, pages: (end.0 - start.0) / PAGE_SIZE })?;
    vm.note_splits();
    let s = vm.slots.get_mut(slot);
    let r = s.regions.isolate(start, end);
    s.regions.remove_indices(r);
    Ok(true)
}

/// `do_munmap` (VM_MUNMAP and VM_MUNMAP_TEXT; the text base is the identity in the flat
/// model): m1_p1 address, m1_p2 length.
///
/// # Errors
/// `EINVAL` for an unaligned address, a zero length or a range beyond the top; `EFAULT`
/// when no region intersects the range.
pub(crate) fn do_munmap<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    caller: usize,
    msg: &mut Message,
) -> CallResult {
    let req = MunmapRequest::decode(msg);
    let (start, end) = user_range(req.addr, req.len, P::VA_END)?;
    if !unmap_range(vm, caller, start, end)? {
        return Err(Errno::EFAULT);
    }
    Ok(Reply::Now)
}
