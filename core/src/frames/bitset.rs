//! A frame allocator: a hierarchical bitset, one bit per frame (1 = free).
//!
//! Replaces the free-range AVL tree of `servers/vm/alloc.c` (`alloc_pages`, `free_pages`)
//! and the hole list behind `alloc_mem`/`free_mem`.
//!
//! Why one file of ~800 lines: 650 are the allocator (one data structure whose single,
//! whole-word and contiguous searches share the two summary levels and must stay in step
//! with them), the rest its unit tests; splitting the searches would spread one invariant
//! over several files.
//!
//! Layout: `leaf[w]` holds frames `64w..64w+64`; bits past the last frame are 0 (never
//! free). Two [`Summary`] sets sit above the leaves, each with a level-1 bit per leaf word
//! and a level-2 bit per level-1 word:
//! * `any`: leaf word `w` has at least one free frame — single allocations descend it with
//!   `trailing_zeros`;
//! * `full`: leaf word `w` is entirely free — long runs are searched over it, 64 frames per
//!   bit, and short runs take a whole free word when the cursor word has none.
//!
//! Policy (locality first, exactness as a fallback):
//! * `alloc` is next fit: the lowest free frame of the word the last allocation came from,
//!   else the next word with a free frame (wrapping around);
//! * `alloc_contiguous(n <= 64, align <= 64)` first looks inside the word its last short
//!   run came from, then takes the lowest entirely free word;
//! * `alloc_contiguous` of longer or coarser-aligned runs first tries the words its last
//!   long run came from, then takes the lowest run of entirely free words (found over
//!   `full`; when an aligned run cannot cross a level-1 word, as for 512 frames aligned to
//!   512, each level-1 word is tested whole with one mask);
//! * a run of whole words inside one level-1 word (up to 4,096 frames, such as a 2 MiB
//!   block) is taken and returned with one mask on each summary and a loop of word stores;
//! * when those fast paths fail, an exact first-fit word-at-a-time scan of the leaves
//!   (skipping empty words through `any`) finds any run that exists, so `None` means no
//!   such run exists.

use super::FrameAllocator;
use crate::addr::Frame;
use crate::bits::{self, mask_low, WORD_BITS};

/// A two-level set of word indices: bit `i` of `l1` is "word `i` qualifies", bit `j` of
/// `l2` is "`l1[j]` is not zero".
#[derive(Clone, Debug)]
struct Summary {
    l1: Vec<u64>,
    l2: Vec<u64>,
}

impl Summary {
    /// An empty summary over `items` word indices.
    fn new(items: usize) -> Self {
        let l1_words = items.div_ceil(64).max(1);
        let l2_words = l1_words.div_ceil(64).max(1);
        Summary { l1: vec![0; l1_words], l2: vec![0; l2_words] }
    }

    #[inline(always)]
    fn set(&mut self, i: usize) {
        let w = &mut self.l1[i / 64];
        if *w == 0 {
            self.l2[i / 4096] |= 1 << ((i / 64) % 64);
        }
        *w |= 1 << (i % 64);
    }

    #[inline(always)]
    fn clear(&mut self, i: usize) {
        let w = &mut self.l1[i / 64];
        *w &= !(1 << (i % 64));
        if *w == 0 {
            self.l2[i / 4096] &= !(1 << ((i / 64) % 64));
        }
    }

    /// Sets the bits of `m` in level-1 word `j` (`m` not zero).
    #[inline(always)]
    fn set_mask(&mut self, j: usize, m: u64) {
        self.l1[j] |= m;
        self.l2[j / 64] |= 1 << (j % 64);
    }

    /// Clears the bits of `m` in level-1 word `j`.
    #[inline(always)]
    fn clear_mask(&mut self, j: usize, m: u64) {
        let w = self.l1[j] & !m;
        self.l1[j] = w;
        if w == 0 {
            self.l2[j / 64] &= !(1 << (j % 64));
        }
    }

    /// Sets indices `lo..hi`.
    fn set_range(&mut self, lo: usize, hi: usize) {
        let mut i = lo;
        while i < hi {
            let bit = (i % 64) as u32;
            let len = (64 - bit).min((hi - i) as u32);
            let w = &mut self.l1[i / 64];
            if *w == 0 {
                self.l2[i / 4096] |= 1 << ((i / 64) % 64);
            }
            *w |= bits::mask_range(bit, len);
            i += len as usize;
        }
    }

    /// Clears indices `lo..hi`.
    fn clear_range(&mut self, lo: usize, hi: usize) {
        let mut i = lo;
        while i < hi {
            let bit = (i % 64) as u32;
            let len = (64 - bit).min((hi - i) as u32);
            let w = &mut self.l1[i / 64];
            *w &= !bits::mask_range(bit, len);
            if *w == 0 {
                self.l2[i / 4096] &= !(1 << ((i / 64) % 64));
            }
            i += len as usize;
        }
    }

    /// Whether indices `lo..hi` are all set.
    #[inline]
    fn all_set(&self, lo: usize, hi: usize) -> bool {
        let mut i = lo;
        while i < hi {
            let bit = (i % 64) as u32;
            let len = (64 - bit).min((hi - i) as u32);
            let m = bits::mask_range(bit, len);
            if self.l1[i / 64] & m != m {
                return false;
            }
            i += len as usize;
        }
        true
    }

    #[inline]
    fn contains(&self, i: usize) -> bool {
        self.l1[i / 64] >> (i % 64) & 1 == 1
    }

    /// The first level-1 word index `>= j` whose word is not zero.
    #[inline]
    fn next_nonzero_l1(&self, j: usize) -> Option<usize> {
        let mut k = j / 64;
        if k >= self.l2.len() {
            return None;
        }
        let mut m = self.l2[k] & (!0u64 << (j % 64));
        loop {
            if m != 0 {
                return Some(k * 64 + m.trailing_zeros() as usize);
            }
            k += 1;
            if k >= self.l2.len() {
                return None;
            }
            m = self.l2[k];
        }
    }

    /// The first index `>= i` in the set.
    #[inline]
    fn find_from(&self, i: usize) -> Option<usize> {
        let j = i / 64;
        if j >= self.l1.len() {
            return None;
        }
        let m = self.l1[j] & (!0u64 << (i % 64));
        if m != 0 {
            return Some(j * 64 + m.trailing_zeros() as usize);
        }
        let j = self.next_nonzero_l1(j + 1)?;
        Some(j * 64 + self.l1[j].trailing_zeros() as usize)
    }
}

/// Hierarchical bitset frame allocator with "any free" and "all free" summaries and
/// search cursors; see the module documentation for the policy.
#[derive(Clone, Debug)]
pub struct Bitset {
    frames: u64,
    free: u64,
    /// One bit per frame, 1 = free.
    leaf: Vec<u64>,
    /// Leaf words with a free frame.
    any: Summary,
    /// Leaf words entirely free.
    full: Summary,
    /// Leaf word of the last single allocation.
    cursor: usize,
    /// First frame of the last short contiguous allocation: tried first by the next one
    /// (an allocate-free-allocate cycle gets the same frames back without a search).
    run_hint: u64,
    /// First frame (word-aligned) of the last long contiguous allocation, tried first by
    /// the next long one.
    long_hint: u64,
}

impl Bitset {
    /// Marks the frames of mask `m` in leaf word `i` used (they are free).
    #[inline]
    fn take_bits(&mut self, i: usize, m: u64) {
        let w = self.leaf[i];
        debug_assert_eq!(w & m, m, "taking used frames");
        let nw = w & !m;
        self.leaf[i] = nw;
        if w == !0 {
            self.full.clear(i);
        }
        if nw == 0 {
            self.any.clear(i);
        }
    }

    /// Marks the frames of mask `m` in leaf word `i` free; returns how many were used.
    #[inline]
    fn return_bits(&mut self, i: usize, m: u64) -> u64 {
        let w = self.leaf[i];
        let nw = w | m;
        self.leaf[i] = nw;
        if w == 0 {
            self.any.set(i);
        }
        if nw == !0 {
            self.full.set(i);
        }
        if w & m == 0 {
            m.count_ones() as u64
        } else {
            (m & !w).count_ones() as u64
        }
    }

    /// Updates the summaries after leaf word `i` went from `w` to `nw` by freeing frames.
    #[inline(always)]
    fn returned_slow(&mut self, i: usize, w: u64, nw: u64) {
        if w == 0 {
            self.any.set(i);
        }
        if nw == !0 {
            self.full.set(i);
        }
    }

    /// Updates the summaries after leaf word `i` went from `w` to `nw` by taking frames.
    #[inline(always)]
    fn taken_slow(&mut self, i: usize, w: u64, nw: u64) {
        if w == !0 {
            self.full.clear(i);
        }
        if nw == 0 {
            self.any.clear(i);
        }
    }

    /// Takes the free frames of mask `m` in leaf word `i` (single-word fast path).
    #[inline(always)]
    fn take_in_word(&mut self, i: usize, m: u64, count: u64) {
        let w = self.leaf[i];
        debug_assert_eq!(w & m, m, "taking used frames");
        let nw = w & !m;
        self.leaf[i] = nw;
        self.free -= count;
        self.taken_slow(i, w, nw);
    }

    /// `free` off the fast path: summary changes, bad input.
    #[inline(never)]
    fn free_slow(&mut self, frame: Frame) {
        let f = frame.0;
        if f >= self.frames {
            debug_assert!(false, "freeing {frame:?} beyond {} frames", self.frames);
            return;
        }
        let i = (f / WORD_BITS) as usize;
        let m = 1u64 << (f % WORD_BITS);
        let w = self.leaf[i];
        if w & m != 0 {
            debug_assert!(false, "freeing free {frame:?}");
            return;
        }
        let nw = w | m;
        self.leaf[i] = nw;
        self.free += 1;
        self.returned_slow(i, w, nw);
    }

    /// Takes the `words` entirely free leaf words `m` of level-1 word `j` (`start` is the
    /// first frame of the lowest one): word stores, then one mask on each summary.
    #[inline(always)]
    fn take_words(&mut self, start: u64, j: usize, m: u64, words: u64) {
        let (w0, words) = ((start / WORD_BITS) as usize, words as usize);
        debug_assert!(self.leaf[w0..w0 + words].iter().all(|&w| w == !0), "taking used frames");
        bits::fill_words(&mut self.leaf[w0..w0 + words], 0);
        self.full.clear_mask(j, m);
        self.any.clear_mask(j, m);
        self.free -= words as u64 * WORD_BITS;
    }

    /// Returns the `words` entirely used leaf words `m` of level-1 word `j` (`start` is the
    /// first frame of the lowest one).
    #[inline(always)]
    fn return_words(&mut self, start: u64, j: usize, m: u64, words: u64) {
        let (w0, words) = ((start / WORD_BITS) as usize, words as usize);
        bits::fill_words(&mut self.leaf[w0..w0 + words], !0);
        self.any.set_mask(j, m);
        self.full.set_mask(j, m);
        self.free += words as u64 * WORD_BITS;
    }

    /// Second half of `alloc` when the cursor word cannot serve: moves the cursor to the
    /// next word with a free frame (wrapping around) and takes its lowest free frame.
    #[inline(never)]
    fn alloc_moving_cursor(&mut self) -> Option<Frame> {
        let mut i = self.cursor;
        if self.leaf[i] == 0 {
            i = match self.any.find_from(i) {
                Some(i) => i,
                None => self.any.find_from(0)?,
            };
            self.cursor = i;
        }
        let w = self.leaf[i];
        self.take_in_word(i, w & w.wrapping_neg(), 1);
        Some(Frame(i as u64 * WORD_BITS + w.trailing_zeros() as u64))
    }

    /// `alloc_contiguous` when the hint does not serve.
    #[inline(never)]
    fn alloc_contiguous_searching(&mut self, count: u64, align: u64) -> Option<Frame> {
        let align = align.max(1);
        if count == 0 || count > self.free || !align.is_power_of_two() {
            return None;
        }
        if count <= WORD_BITS && align <= WORD_BITS {
            return self.alloc_short(count, align);
        }
        let h = self.long_hint;
        let start = if h & (align - 1) == 0 && self.words_free(h, count) {
            h
        } else {
            match self.whole_words(count, align) {
                Some(s) if s + count <= self.frames => {
                    self.long_hint = s;
                    s
                }
                _ => self.first_fit(count, align)?,
            }
        };
        self.take_range(start, count);
        Some(Frame(start))
    }

    /// Whether the frames `start..start + count` (`start` a multiple of 64) are free,
    /// looking at the "all free" summary for whole words and at the leaf for the tail.
    #[inline]
    fn words_free(&self, start: u64, count: u64) -> bool {
        let end = start + count;
        if end > self.frames {
            return false;
        }
        let (w0, w1, tail) =
            ((start / WORD_BITS) as usize, (end / WORD_BITS) as usize, (end % WORD_BITS) as u32);
        self.full.all_set(w0, w1) && (tail == 0 || self.leaf[w1] & mask_low(tail) == mask_low(tail))
    }

    /// Short runs (`count <= 64`, `align <= 64`) once the hint failed: the hint's word, then
    /// the lowest entirely free word, then exact first fit.
    #[inline]
    fn alloc_short(&mut self, count: u64, align: u64) -> Option<Frame> {
        let i = (self.run_hint / WORD_BITS) as usize;
        let starts = bits::run_starts(self.leaf[i], count as u32) & bits::aligned_starts(align);
        let start = if starts != 0 {
            i as u64 * WORD_BITS + starts.trailing_zeros() as u64
        } else {
            self.short_run_elsewhere(count, align)?
        };
        self.run_hint = start;
        let (i, bit) = ((start / WORD_BITS) as usize, (start % WORD_BITS) as u32);
        if bit as u64 + count <= WORD_BITS {
            self.take_in_word(i, bits::mask_range(bit, count as u32), count);
        } else {
            self.take_range(start, count);
        }
        Some(Frame(start))
    }

    /// A short run outside the hint's word: the lowest entirely free word, else the exact
    /// first fit (which may cross into the next word).
    #[inline(never)]
    fn short_run_elsewhere(&self, count: u64, align: u64) -> Option<u64> {
        match self.full.find_from(0) {
            Some(w) => Some(w as u64 * WORD_BITS),
            None => self.first_fit(count, align),
        }
    }

    /// Marks the free frames `start..start + count` used.
    fn take_range(&mut self, start: u64, count: u64) {
        let end = start + count;
        let (i0, lo) = ((start / WORD_BITS) as usize, (start % WORD_BITS) as u32);
        let (i1, hi) = ((end / WORD_BITS) as usize, (end % WORD_BITS) as u32);
        if i0 == i1 {
            self.take_bits(i0, bits::mask_range(lo, hi - lo));
        } else {
            let mut whole = i0;
            if lo != 0 {
                self.take_bits(i0, !0u64 << lo);
                whole += 1;
            }
            if whole < i1 {
                debug_assert!(self.leaf[whole..i1].iter().all(|&w| w == !0), "taking used frames");
                bits::fill_words(&mut self.leaf[whole..i1], 0);
                self.any.clear_range(whole, i1);
                self.full.clear_range(whole, i1);
            }
            if hi != 0 {
                self.take_bits(i1, mask_low(hi));
            }
        }
        self.free -= count;
    }

    /// Marks the used frames `start..start + count` free (in bounds).
    fn return_range(&mut self, start: u64, count: u64) {
        let end = start + count;
        let (i0, lo) = ((start / WORD_BITS) as usize, (start % WORD_BITS) as u32);
        let (i1, hi) = ((end / WORD_BITS) as usize, (end % WORD_BITS) as u32);
        let mut freed = 0;
        if i0 == i1 {
            freed += self.return_bits(i0, bits::mask_range(lo, hi - lo));
        } else {
            let mut whole = i0;
            if lo != 0 {
                freed += self.return_bits(i0, !0u64 << lo);
                whole += 1;
            }
            if whole < i1 {
                let words = &mut self.leaf[whole..i1];
                if words.iter().fold(0, |acc, w| acc | w) == 0 {
                    freed += (i1 - whole) as u64 * WORD_BITS;
                } else {
                    freed += words.iter().map(|w| (!w).count_ones() as u64).sum::<u64>();
                }
                bits::fill_words(words, !0);
                self.any.set_range(whole, i1);
                self.full.set_range(whole, i1);
            }
            if hi != 0 {
                freed += self.return_bits(i1, mask_low(hi));
            }
        }
        debug_assert_eq!(freed, count, "freeing free frames in {start:#x}+{count}");
        self.free += freed;
    }

    /// `free_contiguous` off the fast path: runs across words, summary updates, bad input.
    #[inline(never)]
    fn free_contiguous_slow(&mut self, first: Frame, count: u64) {
        if first.0 > self.frames || count > self.frames - first.0 {
            debug_assert!(false, "freeing {first:?}+{count} beyond {} frames", self.frames);
            return;
        }
        if count > 0 {
            self.return_range(first.0, count);
        }
    }

    /// Exact first fit over the leaves.
    fn first_fit(&self, count: u64, align: u64) -> Option<u64> {
        let any = &self.any;
        bits::find_run(&self.leaf, 0, count, align, |i| any.find_from(i))
    }

    /// The lowest run of `ceil(count / 64)` entirely free words whose first word is a
    /// multiple of `align / 64`, as a frame number.
    fn whole_words(&self, count: u64, align: u64) -> Option<u64> {
        let words = count.div_ceil(WORD_BITS);
        let word_align = (align / WORD_BITS).max(1);
        let full = &self.full;
        if words <= word_align && word_align <= 64 {
            // An aligned run cannot cross a level-1 word: test each non-zero one whole.
            let starts = bits::aligned_starts(word_align);
            let mut j = full.next_nonzero_l1(0)?;
            loop {
                let s = bits::run_starts(full.l1[j], words as u32) & starts;
                if s != 0 {
                    return Some((j as u64 * 64 + s.trailing_zeros() as u64) * WORD_BITS);
                }
                j = full.next_nonzero_l1(j + 1)?;
            }
        }
        let w = bits::find_run(&full.l1, 0, words, word_align, |j| full.next_nonzero_l1(j))?;
        Some(w * WORD_BITS)
    }
}

impl FrameAllocator for Bitset {
    fn with_frames(frames: u64) -> Self {
        let words = frames.div_ceil(WORD_BITS).max(1) as usize;
        let mut b = Bitset {
            frames,
            free: 0,
            leaf: vec![0; words],
            any: Summary::new(words),
            full: Summary::new(words),
            cursor: 0,
            run_hint: 0,
            long_hint: 0,
        };
        if frames > 0 {
            b.return_range(0, frames);
        }
        b
    }

    #[inline]
    fn alloc(&mut self) -> Option<Frame> {
        let i = self.cursor;
        let w = self.leaf[i];
        let nw = bits::clear_lowest(w);
        // Common case: the cursor word keeps free frames and was not entirely free. `nw`
        // is even (its lowest set bit went), and it is 0 or `!0 << 1` exactly when the
        // word empties or was full: one compare after subtracting 2 tells both apart.
        if nw.wrapping_sub(2) < !0 - 3 {
            self.leaf[i] = nw;
            self.free -= 1;
            return Some(Frame(i as u64 * WORD_BITS + w.trailing_zeros() as u64));
        }
        self.alloc_moving_cursor()
    }

    #[inline(always)]
    fn alloc_contiguous(&mut self, count: u64, align: u64) -> Option<Frame> {
        // `(align | h) & (align - 1) == 0`: `align` is 0 or a power of two and divides `h`
        // (with 0, "no alignment", only `h == 0` passes; the search handles the rest).
        if count.wrapping_sub(1) < WORD_BITS {
            // Short run: the frames at the hint, when they fit in its word and are free again.
            let h = self.run_hint;
            let bit = (h % WORD_BITS) as u32;
            if (bit as u64 + count <= WORD_BITS) & ((align | h) & align.wrapping_sub(1) == 0) {
                let i = (h / WORD_BITS) as usize;
                let m = bits::mask_range(bit, count as u32);
                if self.leaf[i] & m == m {
                    self.take_in_word(i, m, count);
                    return Some(Frame(h));
                }
            }
        } else if count > WORD_BITS {
            // Whole words: the words at the long hint (a multiple of 64), when they lie in
            // one level-1 word of `full` and are all free again.
            let h = self.long_hint;
            let (words, off) = (count / WORD_BITS, (h / WORD_BITS) % 64);
            if count.is_multiple_of(WORD_BITS)
                & (words <= 64 - off)
                & ((align | h) & align.wrapping_sub(1) == 0)
            {
                let j = (h / (64 * WORD_BITS)) as usize;
                let m = bits::mask_range(off as u32, words as u32);
                if self.full.l1[j] & m == m {
                    self.take_words(h, j, m, words);
                    return Some(Frame(h));
                }
            }
        }
        self.alloc_contiguous_searching(count, align)
    }

    #[inline]
    fn free(&mut self, frame: Frame) {
        let f = frame.0;
        // Fast path: a used frame whose word keeps a used frame and already had a free one
        // (no summary changes).
        if f < self.frames {
            let i = (f / WORD_BITS) as usize;
            let w = self.leaf[i];
            let nw = w | 1u64 << (f % WORD_BITS);
            if (nw != w) & (w != 0) & (nw != !0) {
                self.leaf[i] = nw;
                self.free += 1;
                return;
            }
        }
        self.free_slow(frame);
    }

    #[inline(always)]
    fn free_contiguous(&mut self, first: Frame, count: u64) {
        let f = first.0;
        let in_pool = (f < self.frames) & (count <= self.frames.wrapping_sub(f));
        if count.wrapping_sub(1) < WORD_BITS {
            // Used frames inside one word.
            let bit = (f % WORD_BITS) as u32;
            if (bit as u64 + count <= WORD_BITS) & in_pool {
                let i = (f / WORD_BITS) as usize;
                let m = bits::mask_range(bit, count as u32);
                let w = self.leaf[i];
                let nw = w | m;
                if w & m == 0 {
                    self.leaf[i] = nw;
                    self.free += count;
                    self.returned_slow(i, w, nw);
                    return;
                }
            }
        } else if count > WORD_BITS {
            // Whole used words inside one level-1 word of the summaries.
            let (words, off) = (count / WORD_BITS, (f / WORD_BITS) % 64);
            if (f | count).is_multiple_of(WORD_BITS) & (words <= 64 - off) & in_pool {
                let j = (f / (64 * WORD_BITS)) as usize;
                let m = bits::mask_range(off as u32, words as u32);
                if self.any.l1[j] & m == 0 {
                    self.return_words(f, j, m, words);
                    return;
                }
            }
        }
        self.free_contiguous_slow(first, count);
    }

    #[inline]
    fn free_count(&self) -> u64 {
        self.free
    }

    fn is_free(&self, frame: Frame) -> bool {
        frame.0 < self.frames && self.leaf[(frame.0 / WORD_BITS) as usize] >> (frame.0 % WORD_BITS) & 1 == 1
    }

    fn name(&self) -> &'static str {
        "bitset"
    }

    fn check_invariants(&self) -> Result<(), String> {
        let mut free = 0;
        for (i, &w) in self.leaf.iter().enumerate() {
            free += w.count_ones() as u64;
            if self.any.contains(i) != (w != 0) {
                return Err(format!("any-free summary wrong for word {i}"));
            }
            if self.full.contains(i) != (w == !0) {
                return Err(format!("all-free summary wrong for word {i}"));
            }
        }
        for s in [&self.any, &self.full] {
            for (j, &w) in s.l1.iter().enumerate() {
                if (s.l2[j / 64] >> (j % 64) & 1 == 1) != (w != 0) {
                    return Err(format!("level-2 summary wrong for level-1 word {j}"));
                }
            }
        }
        let tail = self.frames % WORD_BITS;
        if tail != 0 && self.leaf[self.leaf.len() - 1] >> tail != 0 {
            return Err("frames past the end marked free".into());
        }
        if free != self.free {
            return Err(format!("free count {} but {free} bits set", self.free));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_pool_counts_and_bounds() {
        for frames in [0u64, 1, 63, 64, 65, 4099] {
            let b = Bitset::with_frames(frames);
            assert_eq!(b.free_count(), frames);
            assert!(!b.is_free(Frame(frames)));
            if frames > 0 {
                assert!(b.is_free(Frame(frames - 1)));
            }
            b.check_invariants().unwrap();
        }
    }

    #[test]
    fn alloc_all_then_none_then_free_all() {
        let mut b = Bitset::with_frames(130);
        let mut got: Vec<u64> = (0..130).map(|_| b.alloc().unwrap().0).collect();
        assert_eq!(b.alloc(), None);
        assert_eq!(b.free_count(), 0);
        got.sort_unstable();
        assert_eq!(got, (0..130).collect::<Vec<_>>());
        for f in got {
            b.free(Frame(f));
        }
        assert_eq!(b.free_count(), 130);
        b.check_invariants().unwrap();
    }

    #[test]
    fn next_fit_reuses_the_cursor_word() {
        let mut b = Bitset::with_frames(256);
        let f = b.alloc().unwrap();
        assert_eq!(f, Frame(0));
        b.free_contiguous(Frame(0), 0);
        b.free(f);
        assert_eq!(b.alloc(), Some(Frame(0)));
    }

    #[test]
    fn contiguous_aligned_and_exact() {
        let mut b = Bitset::with_frames(4099);
        let a = b.alloc_contiguous(16, 16).unwrap();
        assert_eq!(a.0 % 16, 0);
        let big = b.alloc_contiguous(512, 512).unwrap();
        assert_eq!(big.0 % 512, 0);
        assert_eq!(b.free_count(), 4099 - 528);
        // The last, partial word holds frames 4096..4099: a run of 3 there, nothing longer.
        b.free_contiguous(big, 512);
        b.free_contiguous(a, 16);
        b.take_range(0, 4096);
        assert_eq!(b.alloc_contiguous(4, 1), None);
        assert_eq!(b.alloc_contiguous(3, 1), Some(Frame(4096)));
        b.check_invariants().unwrap();
    }

    #[test]
    fn contiguous_falls_back_to_exact_scan() {
        // Every word has frames used at both ends, so no word is entirely free.
        let mut b = Bitset::with_frames(64 * 8);
        for w in 0..8 {
            b.take_range(w * 64, 1);
            b.take_range(w * 64 + 63, 1);
        }
        b.take_range(5 * 64 + 10, 1);
        assert_eq!(b.alloc_contiguous(62, 1), Some(Frame(1)));
        // Runs of 62 start at odd frames only.
        assert_eq!(b.alloc_contiguous(62, 2), None);
        assert_eq!(b.alloc_contiguous(40, 8), Some(Frame(64 + 8)));
        b.check_invariants().unwrap();
    }

    #[test]
    fn long_run_across_words_with_small_alignment() {
        let mut b = Bitset::with_frames(64 * 4);
        b.take_range(0, 10);
        b.take_range(64 * 2 + 20, 64 + 44);
        // Free: 10..148. No two whole free words in a row start a 130-run at a word start.
        assert_eq!(b.alloc_contiguous(130, 2), Some(Frame(10)));
        assert_eq!(b.free_count(), 8);
        b.check_invariants().unwrap();
    }

    #[test]
    fn whole_word_runs_reuse_their_words_and_keep_summaries() {
        // Three level-1 groups of 4,096 frames plus a partial word.
        let frames = 3 * 4096 + 5;
        let mut b = Bitset::with_frames(frames);
        b.take_range(0, 1);
        let first = b.alloc_contiguous(512, 512).unwrap();
        assert_eq!(first, Frame(512));
        b.check_invariants().unwrap();
        b.free_contiguous(first, 512);
        b.check_invariants().unwrap();
        // Freed and asked for again: the same block, through the hint.
        assert_eq!(b.alloc_contiguous(512, 512), Some(first));
        let second = b.alloc_contiguous(1024, 1024).unwrap();
        assert_eq!(second, Frame(1024));
        // A run that crosses a level-1 word (frames 3584..4608).
        b.take_range(2048, 1536);
        let across = b.alloc_contiguous(1024, 512).unwrap();
        assert_eq!(across, Frame(3584));
        b.check_invariants().unwrap();
        assert_eq!(b.free_count(), frames - 1 - 512 - 1024 - 1536 - 1024);
        b.free_contiguous(across, 1024);
        b.free_contiguous(second, 1024);
        b.free_contiguous(first, 512);
        b.free_contiguous(Frame(2048), 1536);
        b.free(Frame(0));
        assert_eq!(b.free_count(), frames);
        b.check_invariants().unwrap();
        // The whole pool but the partial word in whole words, then nothing aligned is left.
        assert_eq!(b.alloc_contiguous(3 * 4096, 4096), Some(Frame(0)));
        assert_eq!(b.alloc_contiguous(512, 512), None);
        assert_eq!(b.alloc_contiguous(5, 1), Some(Frame(3 * 4096)));
        b.check_invariants().unwrap();
    }

    #[test]
    fn long_free_outside_the_pool_or_of_free_words_changes_nothing() {
        let mut b = Bitset::with_frames(4096 + 100);
        let run = b.alloc_contiguous(512, 512).unwrap();
        let before = b.clone();
        // Past the end: the words exist in the summaries' last level-1 word only.
        if !cfg!(debug_assertions) {
            b.free_contiguous(Frame(4096 + 64), 512);
            b.free_contiguous(Frame(u64::MAX - 63), 128);
            assert_eq!(b.free_count(), before.free_count());
            b.check_invariants().unwrap();
        }
        b.free_contiguous(run, 512);
        assert_eq!(b.free_count(), 4096 + 100);
        b.check_invariants().unwrap();
    }

    #[test]
    fn alignment_zero_means_none() {
        let mut b = Bitset::with_frames(200);
        assert_eq!(b.alloc_contiguous(3, 0), Some(Frame(0)));
        assert_eq!(b.alloc_contiguous(3, 0), Some(Frame(3)));
        // Long runs take whole free words first, as with alignment 1.
        assert_eq!(b.alloc_contiguous(128, 0), Some(Frame(64)));
        assert_eq!(b.alloc_contiguous(58, 0), Some(Frame(6)));
        b.check_invariants().unwrap();
    }

    #[test]
    fn bad_input_leaves_state_unchanged() {
        let mut b = Bitset::with_frames(100);
        assert_eq!(b.alloc_contiguous(0, 1), None);
        assert_eq!(b.alloc_contiguous(101, 1), None);
        assert_eq!(b.alloc_contiguous(4, 3), None);
        assert_eq!(b.alloc_contiguous(1, 128), Some(Frame(0)));
        assert_eq!(b.alloc_contiguous(1, 128), None);
        assert_eq!(b.free_count(), 99);
        b.check_invariants().unwrap();
    }
}
