//! Binary buddy frame allocator: free blocks of `2^k` frames aligned to `2^k`, one free list
//! per order, split on allocation and merged with their buddy on free.
//!
//! An alternative to `servers/vm/alloc.c`'s free-range AVL tree (`alloc_pages`,
//! `free_pages`), kept for comparison with the bitset and the hole list.
//!
//! No per-block heap object: the free lists are intrusive, linked through one flat array
//! of per-frame records (`next`, `prev`: frame numbers, [`NIL`] at the ends; `order`: the
//! order of the free block that starts at the frame, or [`NOT_HEAD`]). A bit per order in
//! `nonempty` finds the smallest usable order with one `trailing_zeros`.
//!
//! Frame counts that are not a power of two are seeded as maximal aligned blocks, so no
//! block ever extends past the last frame and a block whose buddy would is never merged.
//! Merging is eager: two free buddies of the same order never coexist, hence every fully
//! free aligned range of `2^k` frames lies inside one free block of order `>= k`.
//!
//! `alloc_contiguous(count, align)` takes a block of order `max(ceil(log2 count),
//! log2 align)` and gives the tail past `count` back, so exactly `count` frames are used.
//! It can fail while a suitable run exists, when that run is not inside one such block (a
//! run that straddles a buddy boundary, or an unaligned run): the buddy system trades
//! exactness for O(log n) operations. Frame numbers are `u32`: at most `2^32 - 1` frames.

use super::FrameAllocator;
use crate::addr::Frame;

/// End of a free list.
const NIL: u32 = u32::MAX;
/// `Link::order` of a frame that does not start a free block.
const NOT_HEAD: u8 = u8::MAX;

/// Binary buddy allocator with intrusive per-order free lists in flat arrays.
#[derive(Clone, Debug)]
pub struct Buddy {
    frames: u64,
    free: u64,
    /// First block of each order's free list.
    heads: [u32; 33],
    /// Bit `k` set iff the list of order `k` is not empty.
    nonempty: u64,
    /// Per-frame list links and block order, one cache-friendly record per frame.
    links: Vec<Link>,
}

/// What a frame holds when it starts a free block: its list neighbours and the block's
/// order (`order == NOT_HEAD` when the frame starts no free block). Kept together so a
/// merge or an unlink touches one record per block.
#[derive(Clone, Copy, Debug)]
struct Link {
    /// Next block in the same free list.
    next: u32,
    /// Previous block in the same free list.
    prev: u32,
    /// Order of the free block starting here, or `NOT_HEAD`.
    order: u8,
}

impl Buddy {
    /// Pushes the free block `b` of order `k` on its list.
    #[inline]
    fn push(&mut self, b: u32, k: u32) {
        let head = self.heads[k as usize];
        self.links[b as usize].next = head;
        self.links[b as usize].prev = NIL;
        if head != NIL {
            self.links[head as usize].prev = b;
        }
        self.heads[k as usize] = b;
        self.nonempty |= 1 << k;
        self.links[b as usize].order = k as u8;
    }

    /// Pops the first block of order `k` (the list is not empty).
    #[inline]
    fn pop(&mut self, k: u32) -> u32 {
        let b = self.heads[k as usize];
        debug_assert_ne!(b, NIL);
        let next = self.links[b as usize].next;
        self.heads[k as usize] = next;
        if next == NIL {
            self.nonempty &= !(1 << k);
        } else {
            self.links[next as usize].prev = NIL;
        }
        self.links[b as usize].order = NOT_HEAD;
        b
    }

    /// Removes the free block `b` of order `k` from the middle of its list.
    #[inline]
    fn unlink(&mut self, b: u32, k: u32) {
        let (prev, next) = (self.links[b as usize].prev, self.links[b as usize].next);
        if prev == NIL {
            self.heads[k as usize] = next;
            if next == NIL {
                self.nonempty &= !(1 << k);
            }
        } else {
            self.links[prev as usize].next = next;
        }
        if next != NIL {
            self.links[next as usize].prev = prev;
        }
        self.links[b as usize].order = NOT_HEAD;
    }

    /// Frees block `b` of order `k`, merging it with free buddies.
    #[inline]
    fn free_block(&mut self, mut b: u32, mut k: u32) {
        while k < 32 {
            let buddy = b ^ (1 << k);
            if buddy as u64 >= self.frames || self.links[buddy as usize].order != k as u8 {
                break;
            }
            self.unlink(buddy, k);
            b &= !(1 << k);
            k += 1;
        }
        self.push(b, k);
    }

    /// Takes a free block of order `k` or larger, splits it down to order `k`, and returns
    /// its first frame.
    #[inline]
    fn take_block(&mut self, k: u32) -> Option<u32> {
        let usable = self.nonempty & (!0u64 << k);
        if usable == 0 {
            return None;
        }
        let mut have = usable.trailing_zeros();
        let b = self.pop(have);
        while have > k {
            have -= 1;
            self.push(b + (1 << have), have);
        }
        Some(b)
    }

    /// Frees `start..start + count` as maximal aligned blocks; with `merge`, each is merged
    /// with its free buddies.
    fn free_span(&mut self, start: u64, count: u64, merge: bool) {
        let end = start + count;
        let mut f = start;
        while f < end {
            let k = f.trailing_zeros().min(63 - (end - f).leading_zeros()).min(32);
            if merge {
                self.free_block(f as u32, k);
            } else {
                self.push(f as u32, k);
            }
            f += 1 << k;
        }
    }

    /// The order of the free block that contains `frame`, if any.
    pub fn free_order(&self, frame: Frame) -> Option<u32> {
        if frame.0 >= self.frames {
            return None;
        }
        (0..=32u32).find(|&k| {
            let head = frame.0 & !((1u64 << k) - 1);
            self.links[head as usize].order == k as u8
        })
    }
}

impl FrameAllocator for Buddy {
    fn with_frames(frames: u64) -> Self {
        assert!(frames < NIL as u64, "the buddy allocator holds at most 2^32 - 1 frames");
        let n = frames as usize;
        let mut b = Buddy {
            frames,
            free: frames,
            heads: [NIL; 33],
            nonempty: 0,
            links: vec![Link { next: NIL, prev: NIL, order: NOT_HEAD }; n],
        };
        b.free_span(0, frames, false);
        b
    }

    #[inline]
    fn alloc(&mut self) -> Option<Frame> {
        let b = self.take_block(0)?;
        self.free -= 1;
        Some(Frame(b as u64))
    }

    fn alloc_contiguous(&mut self, count: u64, align: u64) -> Option<Frame> {
        let align = align.max(1);
        if count == 0 || count > self.free || !align.is_power_of_two() {
            return None;
        }
        let k = count.next_power_of_two().max(align).trailing_zeros();
        if k > 32 {
            return None;
        }
        let b = self.take_block(k)? as u64;
        self.free_span(b + count, (1 << k) - count, false);
        self.free -= count;
        Some(Frame(b))
    }

    #[inline]
    fn free(&mut self, frame: Frame) {
        if frame.0 >= self.frames {
            debug_assert!(false, "freeing {frame:?} beyond {} frames", self.frames);
            return;
        }
        debug_assert!(!self.is_free(frame), "freeing free {frame:?}");
        self.free_block(frame.0 as u32, 0);
        self.free += 1;
    }

    fn free_contiguous(&mut self, first: Frame, count: u64) {
        if first.0 > self.frames || count > self.frames - first.0 {
            debug_assert!(false, "freeing {first:?}+{count} beyond {} frames", self.frames);
            return;
        }
        debug_assert!((0..count).all(|i| !self.is_free(first.add(i))), "freeing free frames");
        self.free_span(first.0, count, true);
        self.free += count;
    }

    #[inline]
    fn free_count(&self) -> u64 {
        self.free
    }

    fn is_free(&self, frame: Frame) -> bool {
        self.free_order(frame).is_some()
    }

    fn name(&self) -> &'static str {
        "buddy"
    }

    fn check_invariants(&self) -> Result<(), String> {
        let mut free = 0u64;
        for k in 0..=32u32 {
            let mut b = self.heads[k as usize];
            if (b != NIL) != (self.nonempty >> k & 1 == 1) {
                return Err(format!("non-empty mask wrong for order {k}"));
            }
            let mut prev = NIL;
            while b != NIL {
                let (start, size) = (b as u64, 1u64 << k);
                if start % size != 0 || start + size > self.frames {
                    return Err(format!("block {start:#x} of order {k} misplaced"));
                }
                if self.links[b as usize].order != k as u8 || self.links[b as usize].prev != prev {
                    return Err(format!("block {start:#x} of order {k} badly linked"));
                }
                let buddy = start ^ size;
                if buddy + size <= self.frames && self.links[buddy as usize].order == k as u8 {
                    return Err(format!("block {start:#x} and its buddy both free at order {k}"));
                }
                free += size;
                prev = b;
                b = self.links[b as usize].next;
            }
        }
        let heads = self.links.iter().filter(|l| l.order != NOT_HEAD).count();
        let listed: usize = (0..=32).map(|k| self.list_len(k)).sum();
        if heads != listed {
            return Err(format!("{heads} block heads but {listed} listed blocks"));
        }
        if free != self.free {
            return Err(format!("free count {} but lists hold {free}", self.free));
        }
        Ok(())
    }
}

impl Buddy {
    /// Number of free blocks of order `k`.
    fn list_len(&self, k: usize) -> usize {
        let mut n = 0;
        let mut b = self.heads[k];
        while b != NIL {
            n += 1;
            b = self.links[b as usize].next;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_maximal_aligned_blocks() {
        let b = Buddy::with_frames(13); // 8 + 4 + 1
        assert_eq!(b.free_order(Frame(0)), Some(3));
        assert_eq!(b.free_order(Frame(9)), Some(2));
        assert_eq!(b.free_order(Frame(12)), Some(0));
        assert_eq!(b.free_order(Frame(13)), None);
        assert_eq!(b.free_count(), 13);
        b.check_invariants().unwrap();
    }

    #[test]
    fn split_and_merge_back() {
        let mut b = Buddy::with_frames(16);
        let f = b.alloc().unwrap();
        assert_eq!(f, Frame(0));
        assert_eq!(b.free_order(Frame(1)), Some(0));
        assert_eq!(b.free_order(Frame(2)), Some(1));
        assert_eq!(b.free_order(Frame(8)), Some(3));
        b.check_invariants().unwrap();
        b.free(f);
        assert_eq!(b.free_order(Frame(0)), Some(4));
        b.check_invariants().unwrap();
    }

    #[test]
    fn contiguous_uses_exact_count_and_alignment() {
        let mut b = Buddy::with_frames(100);
        let f = b.alloc_contiguous(5, 1).unwrap();
        // Seeded as 64 + 32 + 4: the smallest block of order >= 3 is the 32 at frame 64.
        assert_eq!(f, Frame(64));
        assert_eq!(b.free_count(), 95);
        assert!(b.is_free(Frame(69)) && b.is_free(Frame(71)) && !b.is_free(Frame(68)));
        let g = b.alloc_contiguous(3, 32).unwrap();
        assert_eq!(g.0 % 32, 0);
        b.check_invariants().unwrap();
        b.free_contiguous(f, 5);
        b.free_contiguous(g, 3);
        assert_eq!(b.free_count(), 100);
        assert_eq!(b.free_order(Frame(0)), Some(6));
        b.check_invariants().unwrap();
    }

    #[test]
    fn fails_across_buddy_boundary() {
        // Frames 0..8 with 3 and 4 used: free runs 0..3 and 5..8; no block of order 2 exists.
        let mut b = Buddy::with_frames(8);
        let all = b.alloc_contiguous(8, 1).unwrap();
        b.free_contiguous(all, 3);
        b.free_contiguous(Frame(5), 3);
        assert_eq!(b.alloc_contiguous(3, 1), None);
        let two = b.alloc_contiguous(2, 1).unwrap();
        assert!(two == Frame(0) || two == Frame(6));
        b.check_invariants().unwrap();
    }

    #[test]
    fn bad_input_is_refused() {
        let mut b = Buddy::with_frames(64);
        assert_eq!(b.alloc_contiguous(0, 1), None);
        assert_eq!(b.alloc_contiguous(65, 1), None);
        assert_eq!(b.alloc_contiguous(1, 3), None);
        assert_eq!(b.alloc_contiguous(1, 128), None);
        assert_eq!(b.free_count(), 64);
        b.check_invariants().unwrap();
    }
}
