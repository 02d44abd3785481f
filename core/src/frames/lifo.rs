//! A LIFO free stack: single frames come back in the reverse order of their release, so the
//! frame freed last (still warm in the host's caches) is the next one handed out, as Linux's
//! per-CPU page lists do. Contiguous requests fall back to a first-fit scan.
//!
//! MINIX had no such list (`alloc_mem` always searched its holes from the lowest address);
//! it is the fourth strategy of the registry, and the example of adding one.
//!
//! The stack holds every free frame once; `slot[f]` is frame `f`'s index in it (or
//! [`USED`]), so a frame taken by a contiguous request leaves the stack in O(1) by
//! swapping the top into its place.

use super::FrameAllocator;
use crate::addr::Frame;
use crate::bits::align_up;

/// `slot` value of a frame in use.
const USED: u32 = u32::MAX;

/// Free frames as a stack, with each frame's position in it. Frame numbers fit in `u32`
/// (the arena is at most 32 GiB, 2^23 frames).
#[derive(Clone, Debug)]
pub struct Lifo {
    stack: Vec<u32>,
    slot: Vec<u32>,
}

impl Lifo {
    #[inline]
    fn take(&mut self, frame: u64) {
        let at = self.slot[frame as usize];
        debug_assert_ne!(at, USED, "taking used frame {frame}");
        let top = self.stack.pop().expect("a free frame is on the stack");
        if u64::from(top) != frame {
            self.stack[at as usize] = top;
            self.slot[top as usize] = at;
        }
        self.slot[frame as usize] = USED;
    }

    #[inline]
    fn put(&mut self, frame: u64) {
        if self.slot.get(frame as usize) != Some(&USED) {
            debug_assert!(false, "freeing free or out-of-range frame {frame}");
            return;
        }
        self.slot[frame as usize] = self.stack.len() as u32;
        self.stack.push(frame as u32);
    }
}

impl FrameAllocator for Lifo {
    fn with_frames(frames: u64) -> Self {
        let frames = frames.min(u64::from(USED));
        // Lowest frame on top: a fresh allocator hands frames out in address order.
        let stack: Vec<u32> = (0..frames as u32).rev().collect();
        let slot = (0..frames as u32).map(|f| frames as u32 - 1 - f).collect();
        Lifo { stack, slot }
    }

    #[inline]
    fn alloc(&mut self) -> Option<Frame> {
        let f = self.stack.pop()?;
        self.slot[f as usize] = USED;
        Some(Frame(u64::from(f)))
    }

    fn alloc_contiguous(&mut self, count: u64, align: u64) -> Option<Frame> {
        let align = align.max(1);
        if count == 0 || count > self.stack.len() as u64 || !align.is_power_of_two() {
            return None;
        }
        if count == 1 && align == 1 {
            return self.alloc();
        }
        // First fit: a candidate start, moved past each used frame met.
        let n = self.slot.len() as u64;
        let mut start = 0u64;
        let mut f = 0u64;
        while start.checked_add(count)? <= n {
            if f == start + count {
                for g in start..start + count {
                    self.take(g);
                }
                return Some(Frame(start));
            }
            if self.slot[f as usize] == USED {
                start = align_up(f + 1, align);
                f = start;
            } else {
                f += 1;
            }
        }
        None
    }

    #[inline]
    fn free(&mut self, frame: Frame) {
        self.put(frame.0);
    }

    fn free_contiguous(&mut self, first: Frame, count: u64) {
        for f in first.0..first.0.saturating_add(count) {
            self.put(f);
        }
    }

    fn free_count(&self) -> u64 {
        self.stack.len() as u64
    }

    fn is_free(&self, frame: Frame) -> bool {
        self.slot.get(frame.index()).is_some_and(|&s| s != USED)
    }

    fn name(&self) -> &'static str {
        "lifo"
    }

    fn check_invariants(&self) -> Result<(), String> {
        for (i, &f) in self.stack.iter().enumerate() {
            match self.slot.get(f as usize) {
                Some(&s) if s as usize == i => {}
                other => return Err(format!("stack[{i}] = frame {f}, whose slot is {other:?}")),
            }
        }
        let free = self.slot.iter().filter(|&&s| s != USED).count();
        if free != self.stack.len() {
            return Err(format!("{free} frames have a slot but the stack holds {}", self.stack.len()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_freed_frame_comes_back_first() {
        let mut a = Lifo::with_frames(16);
        let got: Vec<Frame> = (0..4).map(|_| a.alloc().unwrap()).collect();
        assert_eq!(got, [Frame(0), Frame(1), Frame(2), Frame(3)]);
        a.free(Frame(1));
        a.free(Frame(3));
        assert_eq!(a.alloc(), Some(Frame(3)));
        assert_eq!(a.alloc(), Some(Frame(1)));
        a.check_invariants().unwrap();
    }

    #[test]
    fn contiguous_runs_are_first_fit_and_aligned() {
        let mut a = Lifo::with_frames(64);
        assert_eq!(a.alloc_contiguous(3, 1), Some(Frame(0)));
        assert_eq!(a.alloc_contiguous(4, 8), Some(Frame(8)));
        assert_eq!(a.alloc_contiguous(5, 1), Some(Frame(3)));
        assert_eq!(a.free_count(), 64 - 12);
        assert!(!a.is_free(Frame(9)) && a.is_free(Frame(12)));
        assert_eq!(a.alloc_contiguous(65, 1), None);
        assert_eq!(a.alloc_contiguous(60, 1), None);
        a.free_contiguous(Frame(0), 3);
        a.free_contiguous(Frame(8), 4);
        a.free_contiguous(Frame(3), 5);
        assert_eq!(a.alloc_contiguous(64, 64), Some(Frame(0)));
        assert_eq!(a.alloc(), None);
        a.check_invariants().unwrap();
    }
}
