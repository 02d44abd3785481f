//! One Linux process's address space as the importer sees it: page ranges of Linux virtual
//! addresses mapped to (mapping id, page offset inside the mapping).
//!
//! This is the translation that makes traces address-independent: a Linux `munmap` or
//! `mprotect` range is cut into the pieces of the mapping ids it covers, and only ids and
//! offsets reach the trace. It plays the part of MINIX's per-process region list
//! (`map_lookup`) for addresses the replay will never see.

use std::collections::BTreeMap;

use hashbrown::HashMap;

use crate::op::MapId;

/// A piece of a mapping: Linux pages `[start, end)` are pages `off..` of mapping `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    /// First Linux page number.
    pub start: u64,
    /// One past the last Linux page number.
    pub end: u64,
    /// The mapping.
    pub id: MapId,
    /// Offset (in Linux pages from the mapping's start) of `start`.
    pub off: u64,
}

#[derive(Clone, Copy, Debug)]
struct Seg {
    end: u64,
    id: MapId,
    off: u64,
}

/// The interval map of one process.
#[derive(Clone, Debug, Default)]
pub(crate) struct Space {
    segs: BTreeMap<u64, Seg>,
    live: HashMap<MapId, u64>,
}

impl Space {
    /// Pieces overlapping `[start, end)`, clipped to it, in address order.
    pub fn pieces(&self, start: u64, end: u64) -> Vec<Piece> {
        let mut out = Vec::new();
        if start >= end {
            return out;
        }
        let first = self
            .segs
            .range(..=start)
            .next_back()
            .filter(|(_, s)| s.end > start)
            .map(|(&k, _)| k)
            .unwrap_or(start);
        for (&s, seg) in self.segs.range(first..end) {
            let a = s.max(start);
            let b = seg.end.min(end);
            if a < b {
                out.push(Piece { start: a, end: b, id: seg.id, off: seg.off + (a - s) });
            }
        }
        out
    }

    /// Removes `[start, end)`, splitting pieces at its edges; returns what was removed.
    pub fn remove(&mut self, start: u64, end: u64) -> Vec<Piece> {
        let removed = self.pieces(start, end);
        for p in &removed {
            // The segment holding p.start begins at or before it.
            let (&s, &seg) = match self.segs.range(..=p.start).next_back() {
                Some(x) => x,
                None => continue,
            };
            self.segs.remove(&s);
            if s < p.start {
                self.segs.insert(s, Seg { end: p.start, ..seg });
            }
            if seg.end > p.end {
                self.segs.insert(p.end, Seg { end: seg.end, id: seg.id, off: seg.off + (p.end - s) });
            }
            if let Some(n) = self.live.get_mut(&p.id) {
                *n -= p.end - p.start;
                if *n == 0 {
                    self.live.remove(&p.id);
                }
            }
        }
        removed
    }

    /// Maps `[start, end)` to mapping `id` from offset `off`; the range must be free.
    pub fn insert(&mut self, start: u64, end: u64, id: MapId, off: u64) {
        if start < end {
            self.segs.insert(start, Seg { end, id, off });
            *self.live.entry(id).or_insert(0) += end - start;
        }
    }

    /// Linux pages still mapped for `id`.
    pub fn live(&self, id: MapId) -> u64 {
        self.live.get(&id).copied().unwrap_or(0)
    }

    /// Forgets everything (exec).
    pub fn clear(&mut self) {
        self.segs.clear();
        self.live.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_splits_and_counts() {
        let mut s = Space::default();
        s.insert(100, 110, MapId(1), 0);
        s.insert(110, 115, MapId(2), 3);
        assert_eq!(s.live(MapId(1)), 10);
        let r = s.remove(105, 112);
        assert_eq!(
            r,
            vec![
                Piece { start: 105, end: 110, id: MapId(1), off: 5 },
                Piece { start: 110, end: 112, id: MapId(2), off: 3 },
            ]
        );
        assert_eq!(s.live(MapId(1)), 5);
        assert_eq!(s.live(MapId(2)), 3);
        assert_eq!(
            s.pieces(0, 1000),
            vec![
                Piece { start: 100, end: 105, id: MapId(1), off: 0 },
                Piece { start: 112, end: 115, id: MapId(2), off: 5 },
            ]
        );
        // A hole in the middle of one segment.
        s.insert(200, 210, MapId(3), 0);
        s.remove(203, 205);
        assert_eq!(
            s.pieces(200, 210),
            vec![
                Piece { start: 200, end: 203, id: MapId(3), off: 0 },
                Piece { start: 205, end: 210, id: MapId(3), off: 5 },
            ]
        );
        s.remove(0, u64::MAX);
        assert_eq!(s.live(MapId(3)), 0);
        assert!(s.pieces(0, u64::MAX).is_empty());
    }
}
