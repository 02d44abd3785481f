//! bitmap-allocator 0.4.6 (a 16-ary tree of `u16` bitsets, lowest free bit first) as a
//! [`Frames`] candidate.

use crate::frame_workload::Frames;
use bitmap_allocator::{BitAlloc, BitAlloc1M};

/// `BitAlloc1M` (up to 1,048,576 frames), boxed: the tree is 137 KiB.
pub struct BitmapAllocator {
    bits: Box<BitAlloc1M>,
}

impl std::fmt::Debug for BitmapAllocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BitmapAllocator").finish_non_exhaustive()
    }
}

impl Frames for BitmapAllocator {
    fn name(&self) -> &'static str {
        "bitmap-allocator"
    }

    fn with_frames(frames: u64) -> Self {
        assert!(frames as usize <= BitAlloc1M::CAP, "bitmap-allocator holds at most 2^20 frames");
        let mut bits = Box::new(BitAlloc1M::DEFAULT);
        bits.insert(0..frames as usize);
        BitmapAllocator { bits }
    }

    #[inline(never)]
    fn alloc(&mut self) -> Option<u64> {
        self.bits.alloc().map(|f| f as u64)
    }

    #[inline(never)]
    fn free(&mut self, frame: u64) {
        self.bits.dealloc(frame as usize);
    }

    #[inline(never)]
    fn alloc_contiguous(&mut self, count: u64, align: u64) -> Option<u64> {
        let align_log2 = align.max(1).trailing_zeros() as usize;
        self.bits.alloc_contiguous(None, count as usize, align_log2).map(|f| f as u64)
    }

    #[inline(never)]
    fn free_contiguous(&mut self, first: u64, count: u64) {
        self.bits.dealloc_contiguous(first as usize, count as usize);
    }
}
