//! MINIX 3.1's first-fit hole list, kept as the baseline the other strategies are measured
//! against: faithful rather than fast.
//!
//! Replaces the classic `hole[_NR_HOLES]` list of `servers/vm/alloc.c` (`alloc_mem`,
//! `free_mem`, `del_slot`, `merge`): a list of holes `(base, len)` sorted by address;
//! `alloc_mem` walks it from the lowest address and carves the request from the start of
//! the first hole big enough; `free_mem` walks it to the insertion point and merges the
//! freed range with the holes on either side. Here the list is a flat `Vec` (the fixed
//! table and its "hole table full" panic are gone) and both walks stay linear, as in MINIX.
//!
//! One difference: MINIX's `PAF_ALIGN64K` asked for 64 KiB extra and leaked the tail; here
//! any power-of-two alignment is honoured by carving the aligned part out of a hole and
//! keeping the head and the tail as holes.

use super::FrameAllocator;
use crate::addr::Frame;
use crate::bits::align_up;

/// One free range of frames: `base..base + len`, `len > 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hole {
    /// First free frame.
    pub base: u64,
    /// Number of free frames.
    pub len: u64,
}

impl Hole {
    /// One past the last free frame.
    #[inline]
    pub fn end(self) -> u64 {
        self.base + self.len
    }
}

/// First-fit hole list over frames, sorted by address, neighbours always merged.
#[derive(Clone, Debug)]
pub struct HoleList {
    frames: u64,
    free: u64,
    holes: Vec<Hole>,
}

impl HoleList {
    /// The holes, lowest address first.
    pub fn holes(&self) -> &[Hole] {
        &self.holes
    }
}

impl FrameAllocator for HoleList {
    fn with_frames(frames: u64) -> Self {
        let holes = if frames > 0 { vec![Hole { base: 0, len: frames }] } else { Vec::new() };
        HoleList { frames, free: frames, holes }
    }

    fn alloc(&mut self) -> Option<Frame> {
        self.alloc_contiguous(1, 1)
    }

    fn alloc_contiguous(&mut self, count: u64, align: u64) -> Option<Frame> {
        let align = align.max(1);
        if count == 0 || count > self.free || !align.is_power_of_two() {
            return None;
        }
        // alloc_mem: the first hole, by address, that holds the (aligned) request.
        let (i, start) = self.holes.iter().enumerate().find_map(|(i, h)| {
            let start = align_up(h.base, align);
            (start.checked_add(count)? <= h.end()).then_some((i, start))
        })?;
        let hole = self.holes[i];
        let head = Hole { base: hole.base, len: start - hole.base };
        let tail = Hole { base: start + count, len: hole.end() - start - count };
        match (head.len > 0, tail.len > 0) {
            (false, false) => {
                self.holes.remove(i);
            }
            (true, false) => self.holes[i] = head,
            (false, true) => self.holes[i] = tail,
            (true, true) => {
                self.holes[i] = head;
                self.holes.insert(i + 1, tail);
            }
        }
        self.free -= count;
        Some(Frame(start))
    }

    fn free(&mut self, frame: Frame) {
        self.free_contiguous(frame, 1);
    }

    fn free_contiguous(&mut self, first: Frame, count: u64) {
        if first.0 > self.frames || count > self.frames - first.0 {
            debug_assert!(false, "freeing {first:?}+{count} beyond {} frames", self.frames);
            return;
        }
        if count == 0 {
            return;
        }
        let (base, end) = (first.0, first.0 + count);
        // free_mem: walk to the first hole above the freed range.
        let i = self.holes.iter().position(|h| h.base >= base).unwrap_or(self.holes.len());
        let prev = i.checked_sub(1).map(|p| self.holes[p]);
        let next = self.holes.get(i).copied();
        if prev.is_some_and(|p| p.end() > base) || next.is_some_and(|n| n.base < end) {
            debug_assert!(false, "freeing free frames in {first:?}+{count}");
            return;
        }
        let joins_prev = prev.is_some_and(|p| p.end() == base);
        let joins_next = next.is_some_and(|n| n.base == end);
        match (joins_prev, joins_next) {
            (true, true) => {
                self.holes[i - 1].len += count + self.holes[i].len;
                self.holes.remove(i);
            }
            (true, false) => self.holes[i - 1].len += count,
            (false, true) => self.holes[i] = Hole { base, len: count + self.holes[i].len },
            (false, false) => self.holes.insert(i, Hole { base, len: count }),
        }
        self.free += count;
    }

    fn free_count(&self) -> u64 {
        self.free
    }

    fn is_free(&self, frame: Frame) -> bool {
        let i = self.holes.partition_point(|h| h.end() <= frame.0);
        self.holes.get(i).is_some_and(|h| h.base <= frame.0)
    }

    fn name(&self) -> &'static str {
        "holelist"
    }

    fn check_invariants(&self) -> Result<(), String> {
        let mut free = 0;
        for (i, h) in self.holes.iter().enumerate() {
            if h.len == 0 || h.end() > self.frames {
                return Err(format!("hole {i} {h:?} empty or out of bounds"));
            }
            if i > 0 && self.holes[i - 1].end() >= h.base {
                return Err(format!("hole {i} {h:?} overlaps or touches its predecessor"));
            }
            free += h.len;
        }
        if free != self.free {
            return Err(format!("free count {} but holes hold {free}", self.free));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_fit_from_the_lowest_hole() {
        let mut h = HoleList::with_frames(100);
        assert_eq!(h.alloc_contiguous(10, 1), Some(Frame(0)));
        assert_eq!(h.alloc_contiguous(10, 1), Some(Frame(10)));
        h.free_contiguous(Frame(0), 10);
        assert_eq!(h.alloc(), Some(Frame(0)));
        assert_eq!(h.alloc_contiguous(10, 1), Some(Frame(20)));
        assert_eq!(h.holes(), &[Hole { base: 1, len: 9 }, Hole { base: 30, len: 70 }]);
        h.check_invariants().unwrap();
    }

    #[test]
    fn free_merges_both_neighbours() {
        let mut h = HoleList::with_frames(30);
        h.alloc_contiguous(30, 1).unwrap();
        h.free_contiguous(Frame(0), 10);
        h.free_contiguous(Frame(20), 10);
        assert_eq!(h.holes().len(), 2);
        h.free_contiguous(Frame(10), 10);
        assert_eq!(h.holes(), &[Hole { base: 0, len: 30 }]);
        h.check_invariants().unwrap();
    }

    #[test]
    fn alignment_keeps_head_and_tail() {
        let mut h = HoleList::with_frames(100);
        h.alloc().unwrap();
        assert_eq!(h.alloc_contiguous(8, 16), Some(Frame(16)));
        assert_eq!(h.holes(), &[Hole { base: 1, len: 15 }, Hole { base: 24, len: 76 }]);
        assert!(h.is_free(Frame(15)) && !h.is_free(Frame(16)) && h.is_free(Frame(24)));
        assert_eq!(h.free_count(), 91);
        h.check_invariants().unwrap();
    }

    #[test]
    fn bad_input_is_refused() {
        let mut h = HoleList::with_frames(10);
        assert_eq!(h.alloc_contiguous(0, 1), None);
        assert_eq!(h.alloc_contiguous(11, 1), None);
        assert_eq!(h.alloc_contiguous(2, 6), None);
        assert_eq!(h.alloc_contiguous(1, 16), Some(Frame(0)));
        assert_eq!(h.alloc_contiguous(1, 16), None);
        assert_eq!(h.free_count(), 9);
        h.check_invariants().unwrap();
    }
}
