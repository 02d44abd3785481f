//! Physical frame allocation: the [`FrameAllocator`] strategy trait, the per-frame
//! reference counts beside it, and [`PhysMem`], which bundles arena, allocator and counts.
//!
//! Replaces `servers/vm/alloc.c` (`alloc_mem`, `free_mem`, `alloc_pages`, `free_pages`,
//! the free-range AVL tree) and the `refcount` field of `struct phys_block` (a u8 in 2010,
//! which wrapped past 255 sharers: here it is a u32 per frame, §21.9).
//!
//! Strategies live one per file, listed once in the registry of `kind.rs`
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
    fn set(&mut self, frame: Frame, count: u32) {
        self.counts[frame.index()] = count;
    }
    /// Adds one reference.
    #[inline]
    fn inc(&mut self, frame: Frame) {
        self.counts[frame.index()] += 1;
    }
    /// All counts, indexed by frame number.
    pub fn as_slice(&self) -> &[u32] {
        &self.counts
    }
}

/// The reference counts and the allocator, borrowed together apart from the arena, so
/// that a pass over a page table held in the arena can drop references as it goes.
/// [`Counts::unref`] is the one place where a reference is dropped and a frame freed.
#[derive(Debug)]
pub struct Counts<'a, F> {
    refs: &'a mut [u32],
    alloc: &'a mut F,
}

impl<F: FrameAllocator> Counts<'_, F> {
    /// The count of `frame`.
    #[inline(always)]
    pub fn get(&self, frame: Frame) -> u32 {
        self.refs[frame.index()]
    }
    /// Adds one reference.
    #[inline(always)]
    pub fn inc(&mut self, frame: Frame) {
        self.refs[frame.index()] += 1;
    }
    /// Drops one reference; frees the frame when it was the last. Returns whether it was
    /// freed.
    #[inline(always)]
    pub fn unref(&mut self, frame: Frame) -> bool {
        let c = &mut self.refs[frame.index()];
        debug_assert!(*c > 0, "{frame:?} dereferenced below zero");
        *c -= 1;
        if *c == 0 {
            self.alloc.free(frame);
            true
        } else {
            false
        }
    }
}

/// The physical memory of one server: the arena, its allocator and the reference counts,
/// plus a count of frames used as page tables. The fields are private: a frame's count
/// changes only through the methods here (allocation sets it to 1, [`PhysMem::share`]
/// adds one, [`Counts::unref`] drops one and frees at zero), and the table-frame count
/// only through [`PhysMem::alloc_table_uninit`] and [`PhysMem::free_table`].
#[derive(Debug)]
pub struct PhysMem<F> {
    /// The frames' contents.
    arena: Arena,
    /// Which frames are free.
    alloc: F,
    /// How many references each frame has.
    refs: FrameRefs,
    /// Frames currently used as page tables (roots included).
    table_frames: u64,
    /// Present entries of every page-table frame (0 for any other frame), so that "is
    /// this table empty?" is one load. Kept beside the tables rather than in the unused
    /// bits of their entries because i386 entries have only three such bits (a count up
    /// to 1024 needs eleven), and because a table shared by several directories (on-demand
    /// fork) has one count wherever it is linked from; two bytes per frame.
    live: Vec<u16>,
    /// Huge entries (a directory entry with `PS`, mapping a whole block) present in
    /// every address space together, so that a range operation looks for one to split
    /// only when there is any.
    huge_entries: u64,
    /// Huge entries split into leaf tables since boot.
    huge_splits: u64,
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
        let live = vec![0; arena.frames() as usize];
        PhysMem { arena, alloc, refs, table_frames: 0, live, huge_entries: 0, huge_splits: 0 }
    }

    /// The frames' contents.
    #[inline(always)]
    pub fn arena(&self) -> &Arena {
        &self.arena
    }

    /// The frames' contents, writable.
    #[inline(always)]
    pub fn arena_mut(&mut self) -> &mut Arena {
        &mut self.arena
    }

    /// The reference counts (read-only: they change through the methods of `PhysMem`).
    #[inline(always)]
    pub fn refs(&self) -> &FrameRefs {
        &self.refs
    }

    /// The allocator (read-only).
    #[inline(always)]
    pub fn allocator(&self) -> &F {
        &self.alloc
    }

    /// The allocator itself, for tests and fault injection that arm or break it on
    /// purpose; frames taken from it directly have no reference count.
    #[inline(always)]
    pub fn allocator_mut(&mut self) -> &mut F {
        &mut self.alloc
    }

    /// Frames currently used as page tables (roots included).
    #[inline(always)]
    pub fn table_frames(&self) -> u64 {
        self.table_frames
    }

    /// The number of present entries of the page table in `table`.
    #[inline(always)]
    pub fn live(&self, table: Frame) -> u16 {
        self.live[table.index()]
    }

    /// Sets the number of present entries of the page table in `table` (after a pass
    /// that wrote the whole table).
    #[inline(always)]
    pub fn set_live(&mut self, table: Frame, n: u16) {
        self.live[table.index()] = n;
    }

    /// `n` more present entries in the page table in `table`.
    #[inline(always)]
    pub fn add_live(&mut self, table: Frame, n: u16) {
        self.live[table.index()] += n;
    }

    /// `n` fewer present entries in the page table in `table`; returns how many are left.
    #[inline(always)]
    pub fn sub_live(&mut self, table: Frame, n: u16) -> u16 {
        let c = &mut self.live[table.index()];
        debug_assert!(*c >= n, "{table:?} has fewer than {n} present entries");
        *c -= n;
        *c
    }

    /// Huge entries present in every address space together.
    #[inline(always)]
    pub fn huge_entries(&self) -> u64 {
        self.huge_entries
    }

    /// Huge entries split into leaf tables since boot.
    #[inline(always)]
    pub fn huge_splits(&self) -> u64 {
        self.huge_splits
    }

    /// `n` more huge entries (mapped or copied by fork).
    #[inline]
    pub(crate) fn add_huge(&mut self, n: u64) {
        self.huge_entries += n;
    }

    /// `n` fewer huge entries (split, or dropped with their frames' references); `split`
    /// counts them as splits too.
    #[inline]
    pub(crate) fn sub_huge(&mut self, n: u64, split: bool) {
        debug_assert!(self.huge_entries >= n, "fewer than {n} huge entries");
        self.huge_entries -= n;
        if split {
            self.huge_splits += n;
        }
    }

    /// Undoes one split that its call could not complete (the huge entry is back).
    #[inline]
    pub(crate) fn unsplit(&mut self) {
        self.huge_entries += 1;
        self.huge_splits -= 1;
    }

    /// The arena and the counts borrowed apart (see [`Counts`]).
    #[inline(always)]
    pub fn split(&mut self) -> (&mut Arena, Counts<'_, F>) {
        (&mut self.arena, Counts { refs: &mut self.refs.counts, alloc: &mut self.alloc })
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

    /// Allocates `count` consecutive frames, the first aligned to `align` frames, each
    /// with reference count 1; contents as they were. `None` when no such run is free.
    pub fn alloc_contiguous(&mut self, count: u64, align: u64) -> Option<Frame> {
        let first = self.alloc.alloc_contiguous(count, align)?;
        for c in &mut self.refs.counts[first.index()..first.index() + count as usize] {
            debug_assert_eq!(*c, 0, "allocator returned a referenced frame");
            *c = 1;
        }
        Some(first)
    }

    /// Allocates a frame for a page table (reference count 1, counted in the table
    /// frames) and leaves its contents as they were, for a caller that overwrites every
    /// entry. The one place the table-frame count goes up.
    #[inline]
    pub fn alloc_table_uninit(&mut self) -> Option<Frame> {
        let f = self.alloc_frame()?;
        self.table_frames += 1;
        Some(f)
    }

    /// Allocates a zeroed frame for a page table (reference count 1, counted in the
    /// table frames).
    #[inline]
    pub fn alloc_table(&mut self) -> Option<Frame> {
        let f = self.alloc_table_uninit()?;
        self.arena.zero_frame(f);
        Some(f)
    }

    /// Frees a page-table frame obtained from [`PhysMem::alloc_table`] (its one
    /// reference goes).
    #[inline]
    pub fn free_table(&mut self, frame: Frame) {
        debug_assert_eq!(self.refs.get(frame), 1);
        self.refs.set(frame, 0);
        self.live[frame.index()] = 0;
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
        self.split().1.unref(frame)
    }

    /// Number of free frames.
    #[inline]
    pub fn free_frames(&self) -> u64 {
        self.alloc.free_count()
    }

    /// Sets a frame's count by hand, to break an invariant on purpose in a test.
    #[cfg(test)]
    pub(crate) fn set_ref_for_test(&mut self, frame: Frame, count: u32) {
        self.refs.set(frame, count);
    }
}
