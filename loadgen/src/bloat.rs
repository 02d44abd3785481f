//! The bloat of large folios: pages a folio mapped that the workload never touched.
//!
//! Linux's mTHP authors keep the small folio orders off by default for fear of this
//! internal fragmentation; MINIX, with 4 KiB pages only, has none. The replayer tells this
//! tracker where each folio fault mapped its block and which pages each touch named; a
//! folio page still untouched when its process unmaps, discards or replaces it, execs or
//! exits, or when the run ends, is counted once.

use std::collections::{HashMap, HashSet};

use crate::op::Pid;

/// Untouched pages of large folios, per process (virtual addresses of 4 KiB pages).
#[derive(Debug, Default)]
pub struct Bloat {
    open: HashMap<Pid, HashSet<u64>>,
    settled: u64,
}

const PAGE: u64 = 4096;

impl Bloat {
    /// A folio of `pages` pages was mapped at `block` (its first byte) in `pid`.
    pub fn folio_mapped(&mut self, pid: Pid, block: u64, pages: u64) {
        let set = self.open.entry(pid).or_default();
        set.extend((0..pages).map(|i| block + i * PAGE));
    }

    /// `pid` touched the page at `va`.
    #[inline]
    pub fn touched(&mut self, pid: Pid, va: u64) {
        if let Some(set) = self.open.get_mut(&pid) {
            set.remove(&(va & !(PAGE - 1)));
        }
    }

    /// `pid`'s pages `[start, start + bytes)` are gone (unmapped, discarded, replaced): the
    /// untouched folio pages among them are counted.
    pub fn dropped(&mut self, pid: Pid, start: u64, bytes: u64) {
        let Some(set) = self.open.get_mut(&pid) else { return };
        if set.is_empty() {
            return;
        }
        let end = start.saturating_add(bytes);
        let before = set.len();
        if bytes / PAGE < set.len() as u64 {
            (0..bytes / PAGE).for_each(|i| {
                set.remove(&(start + i * PAGE));
            });
        } else {
            set.retain(|&va| va < start || va >= end);
        }
        self.settled += (before - set.len()) as u64;
    }

    /// `pid` exited or replaced its image: all its untouched folio pages are counted.
    pub fn gone(&mut self, pid: Pid) {
        if let Some(set) = self.open.remove(&pid) {
            self.settled += set.len() as u64;
        }
    }

    /// Untouched folio pages so far, those of live processes included.
    pub fn total(&self) -> u64 {
        self.settled + self.open.values().map(|s| s.len() as u64).sum::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_untouched_folio_page_once() {
        let mut b = Bloat::default();
        let p = Pid(1);
        b.folio_mapped(p, 0x10000, 16);
        b.touched(p, 0x10000);
        b.touched(p, 0x11234);
        assert_eq!(b.total(), 14);
        // Unmapping 4 pages of the block, one of them touched, settles 3.
        b.dropped(p, 0x11000, 4 * PAGE);
        assert_eq!(b.total(), 14);
        // A later touch at an unmapped address does not take back a settled page.
        b.touched(p, 0x12000);
        assert_eq!(b.total(), 14);
        b.touched(p, 0x15000);
        assert_eq!(b.total(), 13);
        b.gone(p);
        b.gone(p);
        assert_eq!(b.total(), 13);
        b.touched(Pid(2), 0x16000);
        assert_eq!(b.total(), 13);
    }
}
