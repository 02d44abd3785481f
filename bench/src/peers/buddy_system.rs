//! buddy_system_allocator 0.13.0's `FrameAllocator` (a `BTreeSet` of free blocks per
//! order) as a [`Frames`] candidate.

use crate::frame_workload::Frames;
use core::alloc::Layout;

/// Orders 0..=18: blocks up to 2^18 frames, enough for the 262,144-frame pool.
const ORDER: usize = 19;

/// The crate's frame allocator; sizes round up to a power of two, alignment = size.
pub struct BuddySystem {
    inner: buddy_system_allocator::FrameAllocator<ORDER>,
}

impl std::fmt::Debug for BuddySystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuddySystem").finish_non_exhaustive()
    }
}

impl Frames for BuddySystem {
    fn name(&self) -> &'static str {
        "buddy_system_allocator"
    }

    fn with_frames(frames: u64) -> Self {
        let mut inner = buddy_system_allocator::FrameAllocator::<ORDER>::new();
        inner.add_frame(0, frames as usize);
        BuddySystem { inner }
    }

    #[inline(never)]
    fn alloc(&mut self) -> Option<u64> {
        self.inner.alloc(1).map(|f| f as u64)
    }

    #[inline(never)]
    fn free(&mut self, frame: u64) {
        self.inner.dealloc(frame as usize, 1);
    }

    /// The crate aligns a block to its rounded size; an alignment above that is refused.
    #[inline(never)]
    fn alloc_contiguous(&mut self, count: u64, align: u64) -> Option<u64> {
        if count == 0 || align > count.next_power_of_two() {
            return None;
        }
        let layout = Layout::from_size_align(count as usize, align.max(1) as usize).ok()?;
        self.inner.alloc_aligned(layout).map(|f| f as u64)
    }

    #[inline(never)]
    fn free_contiguous(&mut self, first: u64, count: u64) {
        self.inner.dealloc(first as usize, count as usize);
    }
}
