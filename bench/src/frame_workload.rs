//! Frame-allocator workloads shared by the Criterion and callgrind benches, run the same
//! way over our strategies and the peer crates: the [`Frames`] interface every candidate
//! is driven through, the *fragmented pool* (single frames) and the *contiguous* pools
//! (16 frames, 512 frames 2 MiB-aligned) of `reference/anchors.md` §3.
//!
//! Replaces nothing in MINIX: it measures what `alloc_mem`/`free_mem` of
//! `servers/vm/alloc.c` cost under each strategy.

use vmstorm_core::rng::SplitMix64;
use vmstorm_core::{Frame, FrameAllocator};

/// Frames of the pools: 262,144 frames = 1 GiB of 4 KiB frames.
pub const POOL_FRAMES: u64 = 262_144;

/// A frame allocator as the workloads drive it: frame numbers in `0..frames`.
///
/// Every implementation's four operations are `#[inline(never)]`: each row then counts the
/// allocator's own code plus one call, the same for every candidate, instead of whatever
/// LLVM chose to inline into the benchmark loop (which moved with unrelated changes: one
/// row by 15 %, then 34 %, between builds of the same allocator source).
pub trait Frames {
    /// Short name used in benchmark ids.
    fn name(&self) -> &'static str;
    /// An allocator over frames `0..frames`, all free.
    fn with_frames(frames: u64) -> Self
    where
        Self: Sized;
    /// One frame, or `None` when none is free.
    fn alloc(&mut self) -> Option<u64>;
    /// Frees one frame.
    fn free(&mut self, frame: u64);
    /// `count` consecutive frames, the first a multiple of `align` frames.
    fn alloc_contiguous(&mut self, count: u64, align: u64) -> Option<u64>;
    /// Frees `count` consecutive frames from `first`.
    fn free_contiguous(&mut self, first: u64, count: u64);
}

impl<F: FrameAllocator> Frames for F {
    fn name(&self) -> &'static str {
        FrameAllocator::name(self)
    }
    fn with_frames(frames: u64) -> Self {
        <F as FrameAllocator>::with_frames(frames)
    }
    #[inline(never)]
    fn alloc(&mut self) -> Option<u64> {
        FrameAllocator::alloc(self).map(|f| f.0)
    }
    #[inline(never)]
    fn free(&mut self, frame: u64) {
        FrameAllocator::free(self, Frame(frame));
    }
    #[inline(never)]
    fn alloc_contiguous(&mut self, count: u64, align: u64) -> Option<u64> {
        FrameAllocator::alloc_contiguous(self, count, align).map(|f| f.0)
    }
    #[inline(never)]
    fn free_contiguous(&mut self, first: u64, count: u64) {
        FrameAllocator::free_contiguous(self, Frame(first), count);
    }
}

/// Takes every frame the allocator will give, one at a time; returns them sorted.
fn drain<A: Frames>(alloc: &mut A) -> Vec<u64> {
    let mut all = Vec::new();
    while let Some(f) = alloc.alloc() {
        all.push(f);
    }
    all.sort_unstable();
    all
}

/// Frees `frames` highest address first (cheap for list-based allocators, and the same
/// final state for every allocator).
fn free_descending<A: Frames>(alloc: &mut A, frames: &mut [u64]) {
    frames.sort_unstable();
    for &f in frames.iter().rev() {
        alloc.free(f);
    }
}

/// The *fragmented pool*: a uniformly random half of the frames free; one step frees a
/// random live frame and allocates one frame.
#[derive(Debug)]
pub struct Fragmented<A> {
    /// The allocator under test.
    pub alloc: A,
    live: Vec<u64>,
    rng: SplitMix64,
}

impl<A: Frames> Fragmented<A> {
    /// Builds the state over `frames` frames from `seed`.
    pub fn build(frames: u64, seed: u64) -> Self {
        let mut alloc = A::with_frames(frames);
        let all = drain(&mut alloc);
        let mut rng = SplitMix64::new(seed);
        let (mut to_free, mut live): (Vec<u64>, Vec<u64>) = all.into_iter().partition(|_| rng.coin());
        free_descending(&mut alloc, &mut to_free);
        rng.shuffle(&mut live);
        Fragmented { alloc, live, rng }
    }

    /// Number of frames held by the workload.
    pub fn live(&self) -> usize {
        self.live.len()
    }

    /// One operation: free a random live frame, allocate one.
    ///
    /// # Panics
    /// If the allocator finds no free frame (it just got one back).
    // Always inlined: whether LLVM inlined it varied with unrelated changes (a call per
    // step moved a row by 15 %), and the harness rows must cost the same in every build.
    #[inline(always)]
    pub fn step(&mut self) {
        let i = self.rng.below(self.live.len() as u64) as usize;
        let f = self.live[i];
        self.alloc.free(f);
        self.live[i] = self.alloc.alloc().expect("a frame was just freed");
    }
}

/// A *contiguous* pool: the lower half fragmented by single used frames (no free run of
/// 16), the upper half cut into 512-frame blocks of which a random 75 % are free; one step
/// allocates `count` contiguous frames aligned to `align` and frees them again.
#[derive(Debug)]
pub struct Contiguous<A> {
    /// The allocator under test.
    pub alloc: A,
    count: u64,
    align: u64,
}

impl<A: Frames> Contiguous<A> {
    /// Builds the state over `frames` frames from `seed`, for runs of `count` frames.
    pub fn build(frames: u64, count: u64, align: u64, seed: u64) -> Self {
        let mut alloc = A::with_frames(frames);
        let all = drain(&mut alloc);
        let mut rng = SplitMix64::new(seed);
        let blocks = frames.div_ceil(512) as usize;
        let block_free: Vec<bool> = (0..blocks).map(|_| rng.below(4) != 0).collect();
        let half = frames / 2;
        let mut to_free: Vec<u64> = all
            .into_iter()
            .filter(|&f| {
                if f < half {
                    // Every 16th frame stays used, and a random quarter of the others.
                    f % 16 != 15 && rng.below(4) != 0
                } else {
                    block_free[(f / 512) as usize]
                }
            })
            .collect();
        free_descending(&mut alloc, &mut to_free);
        Contiguous { alloc, count, align }
    }

    /// One operation: allocate the run and free it.
    ///
    /// # Panics
    /// If the allocator cannot find the run (the pool always has one).
    // Always inlined: whether LLVM inlined it varied with unrelated changes (a call per
    // step moved a row by 15 %), and the harness rows must cost the same in every build.
    #[inline(always)]
    pub fn step(&mut self) {
        let f = self.alloc.alloc_contiguous(self.count, self.align).expect("the pool has free blocks");
        self.alloc.free_contiguous(f, self.count);
    }
}

/// An allocator that does no work (returns the frame freed last): running a workload over
/// it measures the harness alone, to subtract from the others' instruction counts.
#[derive(Debug)]
pub struct Harness {
    next: u64,
    frames: u64,
}

impl Frames for Harness {
    fn name(&self) -> &'static str {
        "harness"
    }
    fn with_frames(frames: u64) -> Self {
        Harness { next: 0, frames }
    }
    #[inline(never)]
    fn alloc(&mut self) -> Option<u64> {
        if self.next < self.frames {
            self.next += 1;
            Some(self.next - 1)
        } else {
            None
        }
    }
    #[inline(never)]
    fn free(&mut self, frame: u64) {
        self.next = std::hint::black_box(frame);
    }
    #[inline(never)]
    fn alloc_contiguous(&mut self, count: u64, _align: u64) -> Option<u64> {
        Some(std::hint::black_box(count))
    }
    #[inline(never)]
    fn free_contiguous(&mut self, first: u64, _count: u64) {
        std::hint::black_box(first);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::{BitmapAllocator, BuddySystem, SummaryBuddy};
    use vmstorm_core::frames::AllocJob;
    use vmstorm_core::{AllocKind, FrameAllocator};

    fn exercise<A: Frames>() {
        let frames = 16_384;
        let mut w = Fragmented::<A>::build(frames, 3);
        let live = w.live();
        assert!(live > frames as usize / 3 && live < frames as usize * 2 / 3, "{live}");
        for _ in 0..2000 {
            w.step();
        }
        assert_eq!(w.live(), live);
        for (count, align) in [(16, 1), (512, 512)] {
            let mut c = Contiguous::<A>::build(frames, count, align, 3);
            let f = c.alloc.alloc_contiguous(count, align).expect("a run");
            assert_eq!(f % align, 0);
            assert!(f >= frames / 2, "runs of {count} only fit in the upper half, got {f}");
            c.alloc.free_contiguous(f, count);
            for _ in 0..100 {
                c.step();
            }
        }
    }

    #[test]
    fn every_candidate_runs_every_workload() {
        struct Ours;
        impl AllocJob for Ours {
            type Output = ();
            fn run<F: FrameAllocator>(self) {
                exercise::<F>()
            }
        }
        for &kind in AllocKind::ALL {
            kind.dispatch(Ours);
        }
        exercise::<BitmapAllocator>();
        exercise::<BuddySystem>();
        exercise::<SummaryBuddy>();
    }
}
