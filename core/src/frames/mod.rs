//! Physical frame allocation: the [`FrameAllocator`] strategy trait, the per-frame
//! reference counts beside it, and [`PhysMem`], which bundles arena, allocator and counts.
//!
//! Replaces `servers/vm/alloc.c` (`alloc_mem`, `free_mem`, `alloc_pages`, `free_pages`,
//! the free-range AVL tree) and the `refcount` field of `struct phys_block` (a u8 in 2010,
//! which wrapped past 255 sharers: here it is a u32 per frame, §21.9).
//!
//! Strategies live one per file, listed once in the registry of [`kind`]
//! ([`crate::with_allocators`]), and are compared by the benches: `bitset` (hierarchical
//! bitset with summary words, the default), `buddy`, `holelist` (MINIX 3.1's first-fit hole
//! list, the baseline) and `lifo` (a free stack). `hotlist` puts a LIFO list of recently
//! freed, cache-hot frames in front of any of them (an axis of its own, not a registry
//! line); `inject` wraps any of them to fail the N-th allocation.

mod hotlist;
mod inject;
mod kind;

// `mod bitset; pub use bitset::Bitset;` and so on, one pair per line of the registry.
crate::with_allocators!([crate::__declare_allocator_modules] {});

pub use holelist::Hole;
pub use hotlist::{HotList, HOT_FRAMES};
pub use inject::FailingAllocator;
pub use kind::{AllocJob, AllocKind, UnknownAllocKind};

use crate::addr::Frame;
use crate::arena::Arena;

/// A physical frame allocator strategy over frames `0..frames`.
///
/// Contract shared by every implementation:
/// * `with_frames(n)` starts with every frame `0..n` free;
/// * `alloc` returns a free frame and marks it used, or `None` when none is free;
/// * `alloc_contiguous(count, align)` returns the first of `count` consecutive free frames
///   whose first frame number is a multiple of `align` (a power of two; 0 and 1 mean no
///   alignment), or `None` (also for `count == 0`);
/// * `free`/`free_contiguous` return used frames; freeing a free frame is a caller bug
///   (checked by `debug_assert!` and by the sanity checks, not on the hot path);
/// * `free_count` is the exact number of free frames.
pub trait FrameAllocator {
    /// An allocator owning frames `0..frames`, all free.
    fn with_frames(frames: u64) -> Self
    where
        Self: Sized;
    /// Allocates one frame.
    fn alloc(&mut self) -> Option<Frame>;
    /// Allocates `count` consecutive frames, the first aligned to `align` frames.
    fn alloc_contiguous(&mut self, count: u64, align: u64) -> Option<Frame>;
    /// Frees one frame.
    fn free(&mut self, frame: Frame);
    /// Frees `count` consecutive frames from `first`.
    fn free_contiguous(&mut self, first: Frame, count: u64);
    /// The number of free frames.
    fn free_count(&self) -> u64;
    /// Whether `frame` is currently free (for sanity checks; need not be fast).
    fn is_free(&self, frame: Frame) -> bool;
    /// Short strategy name as used on the command line (its name in the registry).
    fn name(&self) -> &'static str;
    /// Checks the strategy's internal consistency (summaries, lists and counters agree);
    /// slow, for tests and sanity checks.
    ///
    /// # Errors
    /// A description of the first inconsistency found.
    fn check_invariants(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Per-frame reference counts: how many page-table entries (and other owners, such as a
/// page-table frame's one owner) hold each frame. A flat `u32` array indexed by frame.
#[derive(Clone, Debug)]
pub struct FrameRefs {
    counts: Vec<u32>,
}

impl FrameRefs {
    /// Counts for `frames` frames, all zero.
    pub fn new(frames: u64) -> Self {
        FrameRefs { counts: vec![0; frames as usize] }
    }
    /// The count of `frame`.
    #[inline]
    pub fn get(&self, frame: Frame) -> u32 {
        self.counts[frame.index()]
    }
    /// Sets the count of `frame`.
    #[inline]
    pub fn set(&mut self, frame: Frame, count: u32) {
        self.counts[frame.index()] = count;
    }
    /// Adds one reference; returns the new count.
    #[inline]
    pub fn inc(&mut self, frame: Frame) -> u32 {
        let c = &mut self.counts[frame.index()];
        *c += 1;
        *c
    }
    /// Drops one reference; returns the new count.
    #[inline]
    pub fn dec(&mut self, frame: Frame) -> u32 {
        let c = &mut self.counts[frame.index()];
        debug_assert!(*c > 0, "{frame:?} dereferenced below zero");
        *c -= 1;
        *c
    }
    /// All counts, indexed by frame number.
    pub fn as_slice(&self) -> &[u32] {
        &self.counts
    }
    /// All counts, writable, indexed by frame number (for bulk updates such as fork).
    pub fn as_mut_slice(&mut self) -> &mut [u32] {
        &mut self.counts
    }
}

/// The physical memory of one server: the arena, its allocator and the reference counts,
/// plus a count of frames used as page tables.
#[derive(Debug)]
pub struct PhysMem<F> {
    /// The frames' contents.
    pub arena: Arena,
    /// Which frames are free.
    pub alloc: F,
    /// How many references each frame has.
    pub refs: FrameRefs,
    /// Frames currently used as page tables (roots included).
    pub table_frames: u64,
}

impl<F: FrameAllocator> PhysMem<F> {
    /// Physical memory over `arena`, every frame free.
    pub fn new(arena: Arena) -> Self {
        let frames = arena.frames();
        Self::with_allocator(arena, F::with_frames(frames))
    }

    /// Physical memory over `arena` with a given (fresh) allocator.
    pub fn with_allocator(arena: Arena, alloc: F) -> Self {
        let refs = FrameRefs::new(arena.frames());
        PhysMem { arena, alloc, refs, table_frames: 0 }
    }

    /// Allocates one frame with reference count 1; its contents are whatever was there.
    #[inline]
    pub fn alloc_frame(&mut self) -> Option<Frame> {
        let f = self.alloc.alloc()?;
        debug_assert_eq!(self.refs.get(f), 0, "allocator returned a referenced {f:?}");
        self.refs.set(f, 1);
        Some(f)
    }

    /// Allocates one zeroed frame with reference count 1.
    #[inline]
    pub fn alloc_zeroed(&mut self) -> Option<Frame> {
        let f = self.alloc_frame()?;
        self.arena.zero_frame(f);
        Some(f)
    }

    /// Allocates a zeroed frame for a page table (reference count 1, counted in
    /// `table_frames`).
    #[inline]
    pub fn alloc_table(&mut self) -> Option<Frame> {
        let f = self.alloc_zeroed()?;
        self.table_frames += 1;
        Some(f)
    }

    /// Frees a page-table frame obtained from [`PhysMem::alloc_table`].
    #[inline]
    pub fn free_table(&mut self, frame: Frame) {
        debug_assert_eq!(self.refs.get(frame), 1);
        self.refs.set(frame, 0);
        self.table_frames -= 1;
        self.alloc.free(frame);
    }

    /// Adds a reference to an allocated frame.
    #[inline]
    pub fn share(&mut self, frame: Frame) {
        self.refs.inc(frame);
    }

    /// Drops a reference; frees the frame when it was the last. Returns whether it was freed.
    #[inline]
    pub fn unref(&mut self, frame: Frame) -> bool {
        if self.refs.dec(frame) == 0 {
            self.alloc.free(frame);
            true
        } else {
            false
        }
    }

    /// Number of free frames.
    #[inline]
    pub fn free_frames(&self) -> u64 {
        self.alloc.free_count()
    }
}
