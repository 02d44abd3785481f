//! A process's regions: a sorted `Vec` with binary search, split and merge.
//!
//! Replaces the singly linked `vm_regions` list of the 2010 server (O(n) `map_lookup`,
//! `region_find_slot`, `map_unmap_region`) and the AVL tree of MINIX 3.4 (`regionavl`,
//! `split_region`, `map_unmap_range`). Invariant: regions are sorted by start, do not
//! overlap, are page aligned and non-empty.

use super::Region;
use crate::addr::{VirtAddr, PAGE_SIZE};
use core::ops::Range;

/// The sorted, non-overlapping regions of one address space.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RegionMap {
    regions: Vec<Region>,
}

impl RegionMap {
    /// No region.
    pub const fn new() -> RegionMap {
        RegionMap { regions: Vec::new() }
    }

    /// The regions in address order.
    #[inline]
    pub fn as_slice(&self) -> &[Region] {
        &self.regions
    }

    /// Number of regions.
    #[inline]
    pub fn len(&self) -> usize {
        self.regions.len()
    }

    /// Whether there is no region.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    /// Makes this a copy of `other`, reusing this map's buffer.
    pub fn copy_from(&mut self, other: &RegionMap) {
        self.regions.clone_from(&other.regions);
    }

    /// Removes every region.
    pub fn clear(&mut self) {
        self.regions.clear();
    }

    /// Region `i`.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&Region> {
        self.regions.get(i)
    }

    /// Region `i`, writable. Callers keep the invariant.
    #[inline]
    pub fn get_mut(&mut self, i: usize) -> Option<&mut Region> {
        self.regions.get_mut(i)
    }

    /// The index of the region containing `va` (`map_lookup`, by binary search).
    #[inline]
    pub fn lookup(&self, va: VirtAddr) -> Option<usize> {
        let i = self.regions.partition_point(|r| r.start.0 <= va.0);
        if i > 0 && va.0 < self.regions[i - 1].end().0 {
            Some(i - 1)
        } else {
            None
        }
    }

    /// The region containing `va`.
    #[inline]
    pub fn find(&self, va: VirtAddr) -> Option<&Region> {
        self.lookup(va).map(|i| &self.regions[i])
    }

    /// Indices of the regions that intersect `[start, end)`.
    pub fn overlapping(&self, start: VirtAddr, end: VirtAddr) -> Range<usize> {
        let lo = self.regions.partition_point(|r| r.end().0 <= start.0);
        let hi = self.regions.partition_point(|r| r.start.0 < end.0);
        lo..hi.max(lo)
    }

    /// Whether no region intersects `[start, end)`.
    pub fn is_free(&self, start: VirtAddr, end: VirtAddr) -> bool {
        self.overlapping(start, end).is_empty()
    }

    /// Whether regions cover every byte of `[start, end)` (no hole).
    pub fn covers(&self, start: VirtAddr, end: VirtAddr) -> bool {
        let mut at = start.0;
        for r in &self.regions[self.overlapping(start, end)] {
            if r.start.0 > at {
                return false;
            }
            at = r.end().0;
        }
        at >= end.0
    }

    /// First fit (`region_find_slot`): the lowest page-aligned address `a >= min` with
    /// `[a, a + pages)` free and `a + pages * 4096 <= max`.
    pub fn first_fit(&self, min: VirtAddr, max: VirtAddr, pages: u64) -> Option<VirtAddr> {
        let len = pages.checked_mul(PAGE_SIZE)?;
        let mut cand = min.0.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1);
        let from = self.regions.partition_point(|r| r.end().0 <= cand);
        for r in &self.regions[from..] {
            if r.start.0 >= cand.checked_add(len)? {
                break;
            }
            cand = cand.max(r.end().0);
        }
        let end = cand.checked_add(len)?;
        (end <= max.0).then_some(VirtAddr(cand))
    }

    /// Inserts a region into a free range (the caller checked [`RegionMap::is_free`]) and
    /// merges it with compatible neighbours. Returns the index of the region holding it.
    pub fn insert(&mut self, region: Region) -> usize {
        debug_assert!(self.is_free(region.start, region.end()) && region.pages > 0);
        let i = self.regions.partition_point(|r| r.start.0 < region.start.0);
        self.regions.insert(i, region);
        self.merge_at(i)
    }

    /// Inserts without merging (shared, remapped and direct regions keep their start).
    pub fn insert_unmerged(&mut self, region: Region) -> usize {
        debug_assert!(self.is_free(region.start, region.end()) && region.pages > 0);
        let i = self.regions.partition_point(|r| r.start.0 < region.start.0);
        self.regions.insert(i, region);
        i
    }

    /// Merges region `i` with its neighbours where possible; returns its new index.
    pub fn merge_at(&mut self, mut i: usize) -> usize {
        if i + 1 < self.regions.len() && self.regions[i].merges_with(&self.regions[i + 1]) {
            self.regions[i].pages += self.regions[i + 1].pages;
            self.regions.remove(i + 1);
        }
        if i > 0 && self.regions[i - 1].merges_with(&self.regions[i]) {
            self.regions[i - 1].pages += self.regions[i].pages;
            self.regions.remove(i);
            i -= 1;
        }
        i
    }

    /// Merges every mergeable neighbour pair among indices `range` (and their outer
    /// neighbours).
    pub fn merge_range(&mut self, range: Range<usize>) {
        let mut i = range.end.min(self.regions.len());
        while i > range.start.saturating_sub(1) && i > 0 {
            i -= 1;
            self.merge_at(i);
        }
    }

    /// Splits the region strictly containing page-aligned `va` in two, if there is one.
    pub fn split_at(&mut self, va: VirtAddr) {
        if let Some(i) = self.lookup(va) {
            if self.regions[i].start != va {
                let (lo, hi) = self.regions[i].split_at(va);
                self.regions[i] = lo;
                self.regions.insert(i + 1, hi);
            }
        }
    }

    /// Splits at both ends of `[start, end)` and returns the indices of the regions now
    /// wholly inside it. Two binary searches; nothing changes when no region intersects
    /// the range.
    pub fn isolate(&mut self, start: VirtAddr, end: VirtAddr) -> Range<usize> {
        let mut lo = self.regions.partition_point(|r| r.end().0 <= start.0);
        if lo < self.regions.len() && self.regions[lo].start.0 < start.0 {
            // Region `lo` ends above `start` and begins below it: split there.
            let (below, from) = self.regions[lo].split_at(start);
            self.regions[lo] = below;
            lo += 1;
            self.regions.insert(lo, from);
        }
        let hi = lo + self.regions[lo..].partition_point(|r| r.start.0 < end.0);
        if hi > lo && self.regions[hi - 1].end().0 > end.0 {
            let (below, from) = self.regions[hi - 1].split_at(end);
            self.regions[hi - 1] = below;
            self.regions.insert(hi, from);
        }
        lo..hi
    }

    /// Removes every part of every region inside `[start, end)` (splitting at the edges);
    /// returns the removed pieces.
    pub fn remove_range(&mut self, start: VirtAddr, end: VirtAddr) -> Vec<Region> {
        let r = self.isolate(start, end);
        self.regions.drain(r).collect()
    }

    /// Removes the regions with indices `r` (as returned by [`RegionMap::isolate`]).
    #[inline]
    pub fn remove_indices(&mut self, r: Range<usize>) {
        self.regions.drain(r);
    }

    /// Removes region `i`.
    pub fn remove(&mut self, i: usize) -> Region {
        self.regions.remove(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::{MapProt, MemType, RegionTag};

    fn anon(start: u64, pages: u64) -> Region {
        Region { start: VirtAddr(start), pages, mem: MemType::Anon, prot: MapProt::RW, tag: RegionTag::None }
    }

    #[test]
    fn lookup_and_first_fit() {
        let mut m = RegionMap::new();
        m.insert_unmerged(anon(0x1000, 2));
        m.insert_unmerged(anon(0x5000, 1));
        assert_eq!(m.lookup(VirtAddr(0x2fff)), Some(0));
        assert_eq!(m.lookup(VirtAddr(0x3000)), None);
        assert_eq!(m.lookup(VirtAddr(0x5000)), Some(1));
        assert_eq!(m.lookup(VirtAddr(0)), None);
        assert_eq!(m.first_fit(VirtAddr(0), VirtAddr(0x10000), 1), Some(VirtAddr(0)));
        assert_eq!(m.first_fit(VirtAddr(0x1000), VirtAddr(0x10000), 2), Some(VirtAddr(0x3000)));
        assert_eq!(m.first_fit(VirtAddr(0x1000), VirtAddr(0x10000), 3), Some(VirtAddr(0x6000)));
        assert_eq!(m.first_fit(VirtAddr(0x1001), VirtAddr(0x10000), 1), Some(VirtAddr(0x3000)));
        assert_eq!(m.first_fit(VirtAddr(0x6000), VirtAddr(0x7000), 2), None);
        assert_eq!(m.first_fit(VirtAddr(u64::MAX - 5), VirtAddr(u64::MAX), 1), None);
    }

    #[test]
    fn insert_merges_and_remove_splits() {
        let mut m = RegionMap::new();
        m.insert(anon(0x1000, 2));
        m.insert(anon(0x3000, 2));
        assert_eq!(m.len(), 1);
        assert_eq!(m.as_slice()[0].pages, 4);
        let removed = m.remove_range(VirtAddr(0x2000), VirtAddr(0x4000));
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].pages, 2);
        assert_eq!(m.len(), 2);
        assert_eq!(m.as_slice()[0].end(), VirtAddr(0x2000));
        assert_eq!(m.as_slice()[1].start, VirtAddr(0x4000));
        assert!(m.covers(VirtAddr(0x1000), VirtAddr(0x2000)));
        assert!(!m.covers(VirtAddr(0x1000), VirtAddr(0x5000)));
        assert!(m.is_free(VirtAddr(0x2000), VirtAddr(0x4000)));
    }

    #[test]
    fn isolate_and_merge_back() {
        let mut m = RegionMap::new();
        m.insert(anon(0x10000, 8));
        let r = m.isolate(VirtAddr(0x12000), VirtAddr(0x14000));
        assert_eq!(r, 1..2);
        assert_eq!(m.len(), 3);
        m.get_mut(1).unwrap().prot = MapProt::READ;
        m.merge_range(0..3);
        assert_eq!(m.len(), 3);
        m.get_mut(1).unwrap().prot = MapProt::RW;
        m.merge_range(0..3);
        assert_eq!(m.len(), 1);
        assert_eq!(m.as_slice()[0].pages, 8);
    }

    #[test]
    fn isolate_splits_only_what_it_must() {
        let mut m = RegionMap::new();
        m.insert_unmerged(anon(0x10000, 8));
        m.insert_unmerged(anon(0x20000, 4));
        // A free range changes nothing.
        let before = m.clone();
        assert!(m.isolate(VirtAddr(0x18000), VirtAddr(0x20000)).is_empty());
        assert!(m.isolate(VirtAddr(0x1000), VirtAddr(0x2000)).is_empty());
        assert_eq!(m, before);
        // Both ends inside one region.
        assert_eq!(m.isolate(VirtAddr(0x11000), VirtAddr(0x12000)), 1..2);
        assert_eq!(m.len(), 4);
        assert_eq!(m.as_slice()[1].start, VirtAddr(0x11000));
        assert_eq!(m.as_slice()[1].pages, 1);
        // Across a hole, cutting the second region.
        assert_eq!(m.isolate(VirtAddr(0x15000), VirtAddr(0x21000)), 3..5);
        assert_eq!(m.as_slice()[3].start, VirtAddr(0x15000));
        assert_eq!(m.as_slice()[4].end(), VirtAddr(0x21000));
        assert_eq!(m.as_slice()[5].start, VirtAddr(0x21000));
        // An empty range at an inner point splits there and selects nothing.
        assert_eq!(m.isolate(VirtAddr(0x22000), VirtAddr(0x22000)), 6..6);
        assert_eq!(m.as_slice()[6].start, VirtAddr(0x22000));
        m.remove_indices(3..5);
        assert!(m.is_free(VirtAddr(0x15000), VirtAddr(0x21000)));
    }

    #[test]
    fn direct_split_moves_base() {
        let r = Region {
            start: VirtAddr(0x1000),
            pages: 4,
            mem: MemType::DirectPhys { base: crate::addr::Frame(100) },
            prot: MapProt::RW,
            tag: RegionTag::None,
        };
        let (_, hi) = r.split_at(VirtAddr(0x3000));
        assert_eq!(hi.mem, MemType::DirectPhys { base: crate::addr::Frame(102) });
    }
}
