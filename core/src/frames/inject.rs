//! Fault injection for frame allocation: [`FailingAllocator`] wraps any strategy and makes a
//! chosen allocation fail, so every out-of-memory path can be driven by a test.
//!
//! MINIX had no such hook (its `alloc_mem` failures were reached only by exhausting real
//! memory); the 2010 server's unchecked failure paths (minix-vm §21) are why it exists.
//!
//! Typical use: run an operation once with [`FailingAllocator::never_fail`], read
//! [`FailingAllocator::allocations`] to learn how many allocations it makes, then for each
//! `n` in `1..=that` rerun it after [`FailingAllocator::fail_at`]`(n)` and check that it
//! reports out-of-memory and leaves the state unchanged.

use super::FrameAllocator;
use crate::addr::Frame;

/// When the wrapper makes an allocation fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    /// Never: every call goes to the inner allocator.
    Never,
    /// Only the allocation that brings the countdown to zero fails.
    Once(u64),
    /// Every allocation from the one that brings the countdown to zero fails.
    From(u64),
}

/// A frame allocator that delegates to `A` but fails a chosen allocation (`alloc` or
/// `alloc_contiguous`) as if memory were exhausted. Frees and queries are never affected.
#[derive(Clone, Debug)]
pub struct FailingAllocator<A> {
    inner: A,
    plan: Plan,
    allocations: u64,
    failures: u64,
}

impl<A: FrameAllocator> FailingAllocator<A> {
    /// Wraps `inner`; nothing fails until [`FailingAllocator::fail_at`] or
    /// [`FailingAllocator::fail_from`] is called.
    pub fn new(inner: A) -> Self {
        FailingAllocator { inner, plan: Plan::Never, allocations: 0, failures: 0 }
    }

    /// Makes the `n`-th allocation from now fail (`n = 1`: the next one), once; later ones
    /// succeed again. `n = 0` means never.
    pub fn fail_at(&mut self, n: u64) {
        self.plan = if n == 0 { Plan::Never } else { Plan::Once(n) };
    }

    /// Makes the `n`-th allocation from now and every one after it fail. `n = 0` means never.
    pub fn fail_from(&mut self, n: u64) {
        self.plan = if n == 0 { Plan::Never } else { Plan::From(n) };
    }

    /// Cancels any planned failure.
    pub fn never_fail(&mut self) {
        self.plan = Plan::Never;
    }

    /// Allocation calls seen (failed ones included) since creation or the last
    /// [`FailingAllocator::reset_counts`].
    pub fn allocations(&self) -> u64 {
        self.allocations
    }

    /// Allocations made to fail since creation or the last
    /// [`FailingAllocator::reset_counts`].
    pub fn injected_failures(&self) -> u64 {
        self.failures
    }

    /// Zeroes the allocation and failure counters (the plan is kept).
    pub fn reset_counts(&mut self) {
        self.allocations = 0;
        self.failures = 0;
    }

    /// The wrapped allocator.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    /// The wrapped allocator, mutably (allocations made through it are not counted).
    pub fn inner_mut(&mut self) -> &mut A {
        &mut self.inner
    }

    /// Unwraps the inner allocator.
    pub fn into_inner(self) -> A {
        self.inner
    }

    /// Counts one allocation and says whether it must fail.
    #[inline]
    fn should_fail(&mut self) -> bool {
        self.allocations += 1;
        let fail = match &mut self.plan {
            Plan::Never => false,
            Plan::Once(n) => {
                *n -= 1;
                let fire = *n == 0;
                if fire {
                    self.plan = Plan::Never;
                }
                fire
            }
            Plan::From(n) => {
                if *n > 1 {
                    *n -= 1;
                    false
                } else {
                    true
                }
            }
        };
        if fail {
            self.failures += 1;
        }
        fail
    }
}

impl<A: FrameAllocator> FrameAllocator for FailingAllocator<A> {
    fn with_frames(frames: u64) -> Self {
        FailingAllocator::new(A::with_frames(frames))
    }

    #[inline]
    fn alloc(&mut self) -> Option<Frame> {
        if self.should_fail() {
            return None;
        }
        self.inner.alloc()
    }

    fn alloc_contiguous(&mut self, count: u64, align: u64) -> Option<Frame> {
        if self.should_fail() {
            return None;
        }
        self.inner.alloc_contiguous(count, align)
    }

    #[inline]
    fn free(&mut self, frame: Frame) {
        self.inner.free(frame);
    }

    fn free_contiguous(&mut self, first: Frame, count: u64) {
        self.inner.free_contiguous(first, count);
    }

    #[inline]
    fn free_count(&self) -> u64 {
        self.inner.free_count()
    }

    fn is_free(&self, frame: Frame) -> bool {
        self.inner.is_free(frame)
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn check_invariants(&self) -> Result<(), String> {
        self.inner.check_invariants()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::Bitset;

    #[test]
    fn fails_the_nth_allocation_once() {
        let mut a = FailingAllocator::<Bitset>::with_frames(64);
        a.fail_at(3);
        assert!(a.alloc().is_some());
        assert!(a.alloc_contiguous(4, 4).is_some());
        assert_eq!(a.alloc(), None);
        assert!(a.alloc().is_some());
        assert_eq!(a.allocations(), 4);
        assert_eq!(a.injected_failures(), 1);
        assert_eq!(a.free_count(), 64 - 6);
        a.inner().check_invariants().unwrap();
    }

    #[test]
    fn fail_from_keeps_failing_until_reset() {
        let mut a = FailingAllocator::new(Bitset::with_frames(64));
        a.fail_from(2);
        assert!(a.alloc().is_some());
        assert_eq!(a.alloc(), None);
        assert_eq!(a.alloc_contiguous(2, 1), None);
        a.never_fail();
        assert!(a.alloc().is_some());
        assert_eq!(a.injected_failures(), 2);
        a.reset_counts();
        assert_eq!((a.allocations(), a.injected_failures()), (0, 0));
        a.fail_at(0);
        assert!(a.alloc().is_some());
    }

    #[test]
    fn frees_and_queries_pass_through() {
        let mut a = FailingAllocator::new(Bitset::with_frames(8));
        let f = a.alloc().unwrap();
        a.fail_at(1);
        assert!(!a.is_free(f));
        a.free(f);
        assert!(a.is_free(f));
        assert_eq!(a.free_count(), 8);
        assert_eq!(a.name(), "bitset");
        assert_eq!(a.allocations(), 1);
        assert_eq!(a.alloc(), None);
    }
}
