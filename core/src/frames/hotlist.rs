//! Locality as a strategy: [`HotList`] keeps the most recently freed frames in a small LIFO
//! stack in front of any [`FrameAllocator`] and hands them out first, so a frame freed a
//! moment ago — still in the CPU caches — is the next one zeroed or copied into.
//!
//! It is the idea of Linux's per-cpu page lists (`struct per_cpu_pages`, refilled from and
//! drained to the buddy allocator in batches) applied to the MINIX server, which had no such
//! list: `alloc_mem` in `servers/vm/alloc.c` always searched the free-range tree, and the
//! next-fit strategies here walk away from the frames just freed. Single-frame `alloc` and
//! `free` go through the list; contiguous requests go to the inner allocator, and when one
//! fails the list is drained back first (as Linux drains its pcp lists before failing a
//! high-order allocation), so the wrapper never reports out-of-memory while frames sit in it.

use super::FrameAllocator;
use crate::addr::Frame;

/// Frames the hot list holds at most: 1 MiB of 4 KiB frames, about one core's L2 cache.
pub const HOT_FRAMES: usize = 256;

/// A bounded LIFO list of recently freed frames in front of the allocator `A`.
///
/// Frames on the list are free to this allocator and allocated to `A`; `free_count` and
/// `is_free` count them as free.
#[derive(Clone, Debug)]
pub struct HotList<A> {
    inner: A,
    hot: Vec<Frame>,
}

impl<A: FrameAllocator> HotList<A> {
    /// Wraps `inner` (its free frames stay with it; the list starts empty).
    pub fn new(inner: A) -> Self {
        HotList { inner, hot: Vec::with_capacity(HOT_FRAMES) }
    }

    /// Frames currently on the hot list.
    pub fn hot_len(&self) -> usize {
        self.hot.len()
    }

    /// The allocator behind the list.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    /// Gives every frame on the list back to the inner allocator.
    pub fn drain(&mut self) {
        while let Some(f) = self.hot.pop() {
            self.inner.free(f);
        }
    }
}

impl<A: FrameAllocator> FrameAllocator for HotList<A> {
    fn with_frames(frames: u64) -> Self {
        HotList::new(A::with_frames(frames))
    }

    #[inline]
    fn alloc(&mut self) -> Option<Frame> {
        match self.hot.pop() {
            Some(f) => Some(f),
            None => self.inner.alloc(),
        }
    }

    fn alloc_contiguous(&mut self, count: u64, align: u64) -> Option<Frame> {
        if let Some(f) = self.inner.alloc_contiguous(count, align) {
            return Some(f);
        }
        if self.hot.is_empty() {
            return None;
        }
        self.drain();
        self.inner.alloc_contiguous(count, align)
    }

    #[inline]
    fn free(&mut self, frame: Frame) {
        debug_assert!(!self.is_free(frame), "{frame:?} freed twice");
        if self.hot.len() < HOT_FRAMES {
            self.hot.push(frame);
        } else {
            self.inner.free(frame);
        }
    }

    fn free_contiguous(&mut self, first: Frame, count: u64) {
        self.inner.free_contiguous(first, count);
    }

    fn free_count(&self) -> u64 {
        self.inner.free_count() + self.hot.len() as u64
    }

    fn is_free(&self, frame: Frame) -> bool {
        self.hot.contains(&frame) || self.inner.is_free(frame)
    }

    fn name(&self) -> &'static str {
        match self.inner.name() {
            "bitset" => "hot+bitset",
            "buddy" => "hot+buddy",
            "holelist" => "hot+holelist",
            "lifo" => "hot+lifo",
            _ => "hot",
        }
    }

    fn check_invariants(&self) -> Result<(), String> {
        self.inner.check_invariants()?;
        if self.hot.len() > HOT_FRAMES {
            return Err(format!("hot list holds {} frames, more than {HOT_FRAMES}", self.hot.len()));
        }
        for (i, f) in self.hot.iter().enumerate() {
            if self.inner.is_free(*f) {
                return Err(format!("{f:?} is on the hot list and free in the inner allocator"));
            }
            if self.hot[..i].contains(f) {
                return Err(format!("{f:?} is on the hot list twice"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::{Bitset, Buddy, HoleList};

    fn lifo_reuse<A: FrameAllocator>() {
        let mut a = HotList::<A>::with_frames(1024);
        let total = a.free_count();
        let frames: Vec<Frame> = (0..8).map(|_| a.alloc().unwrap()).collect();
        for &f in &frames {
            a.free(f);
        }
        assert_eq!(a.free_count(), total);
        assert_eq!(a.hot_len(), 8);
        // The last frame freed is the first handed out, then the one before it.
        assert_eq!(a.alloc(), Some(frames[7]));
        assert_eq!(a.alloc(), Some(frames[6]));
        assert!(!a.is_free(frames[7]) && a.is_free(frames[0]));
        a.check_invariants().unwrap();
    }

    #[test]
    fn last_freed_is_first_reused_over_every_allocator() {
        lifo_reuse::<Bitset>();
        lifo_reuse::<Buddy>();
        lifo_reuse::<HoleList>();
    }

    #[test]
    fn list_is_bounded_and_overflow_goes_to_the_inner_allocator() {
        let mut a = HotList::<Bitset>::with_frames(4096);
        let frames: Vec<Frame> = (0..HOT_FRAMES + 10).map(|_| a.alloc().unwrap()).collect();
        for &f in &frames {
            a.free(f);
        }
        assert_eq!(a.hot_len(), HOT_FRAMES);
        assert_eq!(a.free_count(), 4096);
        assert_eq!(a.inner().free_count(), 4096 - HOT_FRAMES as u64);
        a.check_invariants().unwrap();
    }

    #[test]
    fn contiguous_request_drains_the_list_before_failing() {
        // Every frame allocated, then all freed onto the list (and past it): a run of 512
        // exists only once the list is given back.
        let mut a = HotList::<Buddy>::with_frames(512);
        let frames: Vec<Frame> = (0..512).map(|_| a.alloc().unwrap()).collect();
        assert_eq!(a.alloc(), None);
        for &f in &frames {
            a.free(f);
        }
        assert_eq!(a.hot_len(), HOT_FRAMES);
        assert_eq!(a.alloc_contiguous(512, 512), Some(Frame(0)));
        assert_eq!(a.hot_len(), 0);
        assert_eq!(a.free_count(), 0);
        a.free_contiguous(Frame(0), 512);
        assert_eq!(a.free_count(), 512);
        a.check_invariants().unwrap();
    }

    #[test]
    fn exhaustion_is_none_not_a_panic() {
        let mut a = HotList::<HoleList>::with_frames(4);
        for _ in 0..4 {
            a.alloc().unwrap();
        }
        assert_eq!(a.alloc(), None);
        assert_eq!(a.alloc_contiguous(2, 1), None);
        assert_eq!(a.name(), "hot+holelist");
    }
}
