//! The workspace's one seeded pseudo-random generator: splitmix64 (Steele, Lea and Flood),
//! a 64-bit counter through a mixer, a few instructions per draw.
//!
//! The core itself draws nothing; the storms and touch synthesis of the load generator, the
//! benches' workloads and the tests' garbage messages all use this one, fixed forever so
//! that a seed keeps naming the same storm across versions (a library generator could change
//! its stream in a minor release). It stands in for the `random()` calls of MINIX's stress
//! tests, with the seed made explicit.

/// A splitmix64 generator.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator whose stream is fixed by `seed`.
    pub const fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    #[inline(always)]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (0 when `n` is 0), by multiply-high instead of a division (no
    /// modulo bias worth noting).
    #[inline(always)]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A value in `lo..=hi` (`lo` when `hi <= lo`).
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p` (clamped to `0..=1`).
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64) < p
    }

    /// A fair coin.
    #[inline(always)]
    pub fn coin(&mut self) -> bool {
        self.next_u64() >> 63 == 1
    }

    /// An index chosen with probability proportional to `weights` (0 when all are 0).
    pub fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < w {
                return i;
            }
            x -= w;
        }
        0
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }

    /// Fills `bytes` with random bytes.
    pub fn fill(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_stream() {
        // splitmix64's published first outputs for seed 0.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn ranges_hold_and_are_deterministic() {
        let mut r = SplitMix64::new(7);
        let mut s = SplitMix64::new(7);
        for _ in 0..1000 {
            let x = r.below(13);
            assert!(x < 13);
            assert_eq!(x, s.below(13));
            let v = r.between(3, 5);
            assert!((3..=5).contains(&v));
            assert_eq!(r.weighted(&[0, 4, 0]), 1);
            s.between(3, 5);
            s.weighted(&[0, 4, 0]);
        }
        assert_eq!(r.below(0), 0);
        assert_eq!(r.between(9, 2), 9);
        assert!(!r.chance(0.0));
        assert!(r.chance(1.0));
    }

    #[test]
    fn shuffle_is_a_permutation_and_fill_covers_every_byte() {
        let mut v: Vec<u32> = (0..1000).collect();
        SplitMix64::new(1).shuffle(&mut v);
        assert_ne!(v, (0..1000).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..1000).collect::<Vec<_>>());
        let mut b = [0u8; 61];
        SplitMix64::new(3).fill(&mut b);
        assert!(b[56..].iter().any(|&x| x != 0));
    }
}
