//! The pool of pre-zeroed frames ([`ZeroPolicy::Prezeroed`]): frames zeroed off the fault
//! path (with streaming stores, by the server's `idle`), taken by demand-zero allocations and
//! handed back whenever the allocator runs dry. Pool frames count as free.
//!
//! MINIX 3 (2010) zeroes every demand-zero frame in the fault; this pool is filled where
//! the seed's loop runs `pt_cycle` (when no message waits).

use super::ZeroPolicy;
use crate::addr::Frame;
use crate::frames::{FrameAllocator, PhysMem};

/// Target size of the pre-zeroed pool.
pub const PREZERO_POOL: usize = 64;

/// The pre-zeroed frames and the zeroing policy that decides where a zeroed frame comes
/// from first.
#[derive(Clone, Debug)]
pub struct ZeroPool {
    frames: Vec<Frame>,
    policy: ZeroPolicy,
}

/// A zeroed frame with one reference, and whether it came from the pool (so that a
/// failed map gives it back where it came from).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Zeroed {
    /// The frame.
    pub frame: Frame,
    /// Taken from the pool (else from the allocator, zeroed now).
    pub pooled: bool,
}

impl ZeroPool {
    /// An empty pool under `policy`.
    pub fn new(policy: ZeroPolicy) -> ZeroPool {
        ZeroPool { frames: Vec::with_capacity(PREZERO_POOL), policy }
    }

    /// The zeroing policy.
    #[inline]
    pub fn policy(&self) -> ZeroPolicy {
        self.policy
    }

    /// Frames in the pool.
    #[inline]
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether the pool is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The pooled frames.
    pub fn iter(&self) -> impl Iterator<Item = &Frame> {
        self.frames.iter()
    }

    /// A zeroed frame: under [`ZeroPolicy::Prezeroed`] from the pool first, else from the
    /// allocator first (zeroed now); the other source is the fallback.
    #[inline(always)]
    pub(crate) fn take_zeroed<F: FrameAllocator>(&mut self, mem: &mut PhysMem<F>) -> Option<Zeroed> {
        let (frame, pooled) = match self.policy {
            ZeroPolicy::Prezeroed => match self.frames.pop() {
                Some(f) => (f, true),
                None => (mem.alloc_zeroed()?, false),
            },
            ZeroPolicy::OnFault => match mem.alloc_zeroed() {
                Some(f) => (f, false),
                None => (self.frames.pop()?, true),
            },
        };
        Some(Zeroed { frame, pooled })
    }

    /// Gives back a frame from [`ZeroPool::take_zeroed`] that was not used (still zero):
    /// to the pool, or to the allocator.
    #[cold]
    #[inline(never)]
    pub(crate) fn give_back<F: FrameAllocator>(&mut self, mem: &mut PhysMem<F>, z: Zeroed) {
        if z.pooled {
            self.frames.push(z.frame);
        } else {
            mem.unref(z.frame);
        }
    }

    /// A frame with one reference and unspecified contents (the pool is the fallback).
    #[inline]
    pub(crate) fn take_any<F: FrameAllocator>(&mut self, mem: &mut PhysMem<F>) -> Option<Frame> {
        mem.alloc_frame().or_else(|| self.frames.pop())
    }

    /// Refills the pool under [`ZeroPolicy::Prezeroed`] (a no-op otherwise), keeping at
    /// least a quarter of the free frames out of it.
    pub(crate) fn refill<F: FrameAllocator>(&mut self, mem: &mut PhysMem<F>) {
        if self.policy != ZeroPolicy::Prezeroed {
            return;
        }
        while self.frames.len() < PREZERO_POOL && mem.free_frames() > 4 * PREZERO_POOL as u64 {
            let Some(f) = mem.alloc_frame() else { break };
            mem.arena_mut().zero_frame_streaming(f);
            self.frames.push(f);
        }
    }

    /// Gives every pooled frame back to the allocator.
    pub(crate) fn drain<F: FrameAllocator>(&mut self, mem: &mut PhysMem<F>) {
        while let Some(f) = self.frames.pop() {
            mem.unref(f);
        }
    }
}
