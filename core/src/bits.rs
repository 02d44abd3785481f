//! Bit tricks on `u64` words, in one place: masks, find-first-set, runs of set bits inside a
//! word, and a word-at-a-time search for a run of set bits across a slice of words.
//!
//! Replaces the bit-by-bit loops of MINIX's `servers/vm` bitmaps (`GET_BIT`/`SET_BIT` over
//! `bitchunk_t`) and of the hole search in `alloc.c`: every search here inspects a whole
//! word per step. Bit `i` of word `w` stands for item `64 * w + i`; a set bit means "free"
//! (or "member") in every caller.

/// Bits in a word.
pub const WORD_BITS: u64 = 64;

/// Word with the low `n` bits set (`n` in `0..=64`).
#[inline]
pub const fn mask_low(n: u32) -> u64 {
    if n >= 64 {
        !0
    } else {
        (1u64 << n) - 1
    }
}

/// Word with bits `lo..lo + len` set (`lo < 64`, `1 <= len`, `lo + len <= 64`); branch-free.
#[inline]
pub const fn mask_range(lo: u32, len: u32) -> u64 {
    (!0u64 >> (64 - len)) << lo
}

/// The lowest set bit of `w`, if any (find first set).
#[inline]
pub const fn first_set(w: u64) -> Option<u32> {
    if w == 0 {
        None
    } else {
        Some(w.trailing_zeros())
    }
}

/// The lowest set bit of `w` at position `from` or above (`from < 64`), if any.
#[inline]
pub const fn first_set_from(w: u64, from: u32) -> Option<u32> {
    first_set(w & (!0u64 << from))
}

/// `w` with its lowest set bit cleared.
#[inline]
pub const fn clear_lowest(w: u64) -> u64 {
    w & w.wrapping_sub(1)
}

/// Bits at the positions inside a word that are multiples of `align`, indexed by
/// `log2(align)` for `align` in `1..=64`.
const ALIGNED_STARTS: [u64; 7] = [
    !0,
    0x5555_5555_5555_5555,
    0x1111_1111_1111_1111,
    0x0101_0101_0101_0101,
    0x0001_0001_0001_0001,
    0x0000_0001_0000_0001,
    0x0000_0000_0000_0001,
];

/// Word with a bit at every position that is a multiple of `align` (a power of two in
/// `1..=64`; larger alignments give bit 0 only, which is right for a word whose first bit is
/// aligned).
#[inline]
pub fn aligned_starts(align: u64) -> u64 {
    debug_assert!(align.is_power_of_two());
    ALIGNED_STARTS[(align.trailing_zeros() as usize).min(6)]
}

/// Starts of runs: bit `i` of the result is set iff bits `i..i + n` of `w` are all set
/// (`n` in `1..=64`; runs never extend past bit 63). Doubles the run length with one
/// shift-and per step up to the largest power of two `p <= n`, then one last shift-and by
/// `n - p` (two overlapping runs of `p` cover `n`): `floor(log2 n) + 1` steps.
#[inline]
pub const fn run_starts(w: u64, n: u32) -> u64 {
    let mut x = w;
    let mut have = 1;
    while have * 2 <= n {
        x &= x >> have;
        have *= 2;
    }
    x & (x >> (n - have))
}

/// Starts of runs of clear bits: bit `i` is set iff bits `i..i + n` of `w` are all clear.
#[inline]
pub const fn zero_run_starts(w: u64, n: u32) -> u64 {
    run_starts(!w, n)
}

/// `x` rounded up to a multiple of `align` (a power of two).
#[inline]
pub const fn align_up(x: u64, align: u64) -> u64 {
    (x + align - 1) & !(align - 1)
}

/// Stores `value` into every word of `words` with an explicit loop of word stores, eight
/// words (a 512-bit block) per step.
///
/// The value goes through [`std::hint::black_box`] first, so the compiler cannot recognise
/// the loop as a fill and replace it with a `memset` call: glibc picks its `memset` by CPU
/// model, and a short fill (a few words of a bitmap) costs less inline than the call.
#[inline]
pub fn fill_words(words: &mut [u64], value: u64) {
    let v = std::hint::black_box(value);
    let (blocks, rest) = words.as_chunks_mut::<8>();
    if let [b] = blocks {
        // One block, as for a 2 MiB run: no loop at all.
        *b = [v; 8];
    } else {
        for b in blocks {
            *b = [v; 8];
        }
    }
    for w in rest {
        *w = v;
    }
}

/// First position `p >= 64 * from` with `p % align == 0` such that bits `p..p + n` of the
/// bit array `words` are all set; exact first fit over the array.
///
/// `n >= 1`; `align` is a power of two. `next_nonzero(i)` must return the first index
/// `>= i` of a non-zero word (or `None`): a summary lets the search jump over empty words
/// instead of reading them. Short runs (`n <= 64`) are found inside a word with
/// [`run_starts`]; runs that cross words are followed as a carry: the free bits at the top of
/// one word, whole free words, then the free bits at the bottom of the next. With
/// `align > 64`, only aligned words can start a run and the others are stepped over.
pub fn find_run(
    words: &[u64],
    from: usize,
    n: u64,
    align: u64,
    mut next_nonzero: impl FnMut(usize) -> Option<usize>,
) -> Option<u64> {
    debug_assert!(n >= 1 && align.is_power_of_two());
    let in_word = if n <= WORD_BITS { aligned_starts(align) } else { 0 };
    let word_step = (align / WORD_BITS).max(1) as usize;
    let mut run_start = 0u64;
    let mut run_len = 0u64;
    let mut i = from;
    while i < words.len() {
        let w = words[i];
        let base = i as u64 * WORD_BITS;
        if run_len == 0 {
            if w == 0 {
                i = next_nonzero(i + 1)?;
                continue;
            }
            if i & (word_step - 1) != 0 {
                i = (i | (word_step - 1)) + 1;
                continue;
            }
        }
        if w == !0 {
            if run_len == 0 {
                run_start = base;
            }
            run_len += WORD_BITS;
            let a = align_up(run_start, align);
            if a + n <= run_start + run_len {
                return Some(a);
            }
            i += 1;
            continue;
        }
        if run_len > 0 {
            let a = align_up(run_start, align);
            if a + n <= base + w.trailing_ones() as u64 {
                return Some(a);
            }
        }
        if n <= WORD_BITS {
            let mask = if align <= WORD_BITS || base & (align - 1) == 0 { in_word } else { 0 };
            let starts = run_starts(w, n as u32) & mask;
            if starts != 0 {
                return Some(base + starts.trailing_zeros() as u64);
            }
        }
        run_len = w.leading_ones() as u64;
        run_start = base + WORD_BITS - run_len;
        i += 1;
    }
    None
}

/// [`find_run`] without a summary: reads every word.
pub fn find_run_plain(words: &[u64], from: usize, n: u64, align: u64) -> Option<u64> {
    find_run(words, from, n, align, |i| words.get(i..)?.iter().position(|&w| w != 0).map(|p| p + i))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit-by-bit reference for `find_run`.
    fn naive(words: &[u64], n: u64, align: u64) -> Option<u64> {
        let bits = words.len() as u64 * 64;
        let get = |p: u64| words[(p / 64) as usize] >> (p % 64) & 1 == 1;
        (0..bits).step_by(align as usize).find(|&p| p + n <= bits && (p..p + n).all(get))
    }

    #[test]
    fn masks() {
        assert_eq!(mask_low(0), 0);
        assert_eq!(mask_low(3), 0b111);
        assert_eq!(mask_low(64), !0);
        assert_eq!(mask_range(4, 2), 0b11_0000);
        assert_eq!(mask_range(0, 64), !0);
        assert_eq!(mask_range(63, 1), 1 << 63);
        assert_eq!(first_set(0), None);
        assert_eq!(first_set(0b1000), Some(3));
        assert_eq!(first_set_from(0b1001, 1), Some(3));
        assert_eq!(clear_lowest(0b1100), 0b1000);
        assert_eq!(align_up(65, 64), 128);
        assert_eq!(align_up(64, 64), 64);
        for len in 0..20 {
            let mut words = [7u64; 22];
            fill_words(&mut words[1..1 + len], !0);
            assert!(words[1..1 + len].iter().all(|&w| w == !0), "len {len}");
            assert!(words[..1].iter().chain(&words[1 + len..]).all(|&w| w == 7), "len {len}");
        }
    }

    #[test]
    fn aligned_start_patterns() {
        for shift in 0..=6u32 {
            let align = 1u64 << shift;
            let expect = (0..64).filter(|i| i % align == 0).fold(0u64, |m, i| m | 1 << i);
            assert_eq!(aligned_starts(align), expect, "align {align}");
        }
        assert_eq!(aligned_starts(512), 1);
    }

    #[test]
    fn run_starts_matches_naive() {
        let samples = [0u64, !0, 0xF0F0, 0x00FF_FF00_0000_FFFF, 0x8000_0000_0000_0001, 0x7FFF_FFFF_FFFF_FFFE];
        for &w in &samples {
            for n in 1..=64u32 {
                let expect = (0..64u32)
                    .filter(|&i| i + n <= 64 && (i..i + n).all(|b| w >> b & 1 == 1))
                    .fold(0u64, |m, i| m | 1 << i);
                assert_eq!(run_starts(w, n), expect, "w {w:#x} n {n}");
                assert_eq!(zero_run_starts(!w, n), expect);
            }
        }
    }

    #[test]
    fn find_run_matches_naive() {
        // A pseudo-random pattern with runs of many lengths, plus whole free words.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut words = Vec::new();
        for k in 0..40 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            words.push(match k % 5 {
                0 => !0,
                1 => x | x >> 1 | x >> 2,
                2 => 0,
                _ => x,
            });
        }
        for n in [1u64, 2, 3, 7, 16, 31, 63, 64, 65, 100, 128, 129, 300] {
            for align in [1u64, 2, 4, 8, 64, 128, 512] {
                assert_eq!(find_run_plain(&words, 0, n, align), naive(&words, n, align), "n {n} a {align}");
            }
        }
    }

    #[test]
    fn find_run_crosses_words() {
        let words = [0xF000_0000_0000_0000, !0, 0x7, 0];
        assert_eq!(find_run_plain(&words, 0, 70, 1), Some(60));
        assert_eq!(find_run_plain(&words, 0, 71, 1), Some(60));
        assert_eq!(find_run_plain(&words, 0, 72, 1), None);
        assert_eq!(find_run_plain(&words, 0, 8, 8), Some(64));
        assert_eq!(find_run_plain(&words, 0, 67, 64), Some(64));
        assert_eq!(find_run_plain(&words, 0, 68, 64), None);
    }
}
