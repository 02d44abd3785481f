//! frame-alloc 0.1.0's `SummaryBuddyAllocator` (a buddy allocator whose per-order bitmaps
//! live in the managed pool, with summary words and CAS loops) as a [`Frames`] candidate.
//!
//! The crate keeps its metadata inside the pool, so the pool is real memory: an anonymous
//! mapping whose addresses serve as the "physical" addresses; the frames its bitmaps use
//! are simply never handed out.

use crate::frame_workload::Frames;
use core::num::NonZeroUsize;
use core::ptr::NonNull;
use frame_alloc::{PageSize, PhysicalAllocator, Provenance, RegionInit, SummaryBuddyAllocator};
use memmap2::{MmapMut, MmapOptions};

/// 4 KiB frames.
const BASE: PageSize = PageSize::from_log2(12);
/// Orders 0..=10: blocks up to 4 MiB, as in the crate's own example.
const ORDERS: usize = 11;
/// Alignment of the pool: the largest block.
const MAX_BLOCK: usize = 4096 << (ORDERS - 1);

/// Pointers into the pool are the pool's own (exposed) addresses: phys == virt.
#[derive(Debug)]
pub struct PoolProvenance;

// SAFETY: `create` returns a pointer to the address it is given, with the provenance that
// `SummaryBuddy::with_frames` exposed for the whole pool mapping, which outlives the
// allocator; the allocator only passes addresses inside the pool it was initialised with.
unsafe impl Provenance for PoolProvenance {
    unsafe fn create(phys: usize) -> NonNull<u8> {
        // SAFETY: the allocator never passes address 0 (the pool is a live mapping).
        unsafe { NonNull::new_unchecked(core::ptr::with_exposed_provenance_mut(phys)) }
    }

    unsafe fn destroy<T>(ptr: NonNull<T>) -> usize {
        ptr.addr().get()
    }
}

/// The allocator and the pool mapping it manages.
pub struct SummaryBuddy {
    inner: SummaryBuddyAllocator<ORDERS, PoolProvenance>,
    base: usize,
    // Declared last: dropped after the allocator that points into it.
    _pool: MmapMut,
}

impl std::fmt::Debug for SummaryBuddy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SummaryBuddy").field("base", &self.base).finish_non_exhaustive()
    }
}

impl SummaryBuddy {
    #[inline]
    fn frame_of(&self, phys: usize) -> u64 {
        ((phys - self.base) >> 12) as u64
    }

    #[inline]
    fn phys_of(&self, frame: u64) -> usize {
        self.base + ((frame as usize) << 12)
    }
}

impl Frames for SummaryBuddy {
    fn name(&self) -> &'static str {
        "frame-alloc"
    }

    fn with_frames(frames: u64) -> Self {
        let len = frames as usize * 4096;
        let mut pool = MmapOptions::new()
            .len(len + MAX_BLOCK)
            .no_reserve_swap()
            .map_anon()
            .expect("map the frame-alloc pool");
        let start = pool.as_mut_ptr().expose_provenance();
        let base = start.next_multiple_of(MAX_BLOCK);
        let inner = SummaryBuddyAllocator::new(BASE);
        // SAFETY: `[base, base + len)` lies inside the live mapping `pool` (we mapped
        // `MAX_BLOCK` extra bytes to align it), which this struct owns and outlives the
        // allocator; nothing else reads or writes it; `base` is 4 MiB aligned and `len` a
        // multiple of 4 KiB; this is the allocator's one initialisation, single-threaded.
        unsafe { inner.init_region(base, len) };
        SummaryBuddy { inner, base, _pool: pool }
    }

    #[inline(never)]
    fn alloc(&mut self) -> Option<u64> {
        let p = self.inner.allocate_physical(BASE, NonZeroUsize::MIN).ok()?;
        Some(self.frame_of(p))
    }

    #[inline(never)]
    fn free(&mut self, frame: u64) {
        let p = self.phys_of(frame);
        // SAFETY: the workloads free only frames this allocator returned, once each.
        unsafe { self.inner.deallocate_physical(BASE, NonZeroUsize::MIN, p) };
    }

    /// Blocks are naturally aligned to their rounded size; a larger alignment is refused.
    #[inline(never)]
    fn alloc_contiguous(&mut self, count: u64, align: u64) -> Option<u64> {
        let n = NonZeroUsize::new(count as usize)?;
        if align > count.next_power_of_two() {
            return None;
        }
        let p = self.inner.allocate_physical(BASE, n).ok()?;
        Some(self.frame_of(p))
    }

    #[inline(never)]
    fn free_contiguous(&mut self, first: u64, count: u64) {
        let Some(n) = NonZeroUsize::new(count as usize) else { return };
        let p = self.phys_of(first);
        // SAFETY: the workloads free exactly the runs this allocator returned, with the
        // count they asked for, once each.
        unsafe { self.inner.deallocate_physical(BASE, n, p) };
    }
}
