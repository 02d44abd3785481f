//! The DMA buffer table: which process registered which buffer.
//!
//! Replaces `dmatab[NR_DMA]` of `servers/vm/alloc.c` (the calls that edit it are in
//! `calls/dma.rs`).

use crate::endpoint::Endpoint;

/// Number of DMA table entries (`NR_DMA`).
pub const NR_DMA: usize = 16;

/// One DMA buffer: who, base, size.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct DmaEntry {
    /// The owning process.
    pub proc: Endpoint,
    /// Base address as given.
    pub base: i64,
    /// Size as given.
    pub size: i64,
}

/// The fixed DMA table.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct DmaTable {
    entries: [Option<DmaEntry>; NR_DMA],
}

impl DmaTable {
    /// The entries in use.
    pub fn entries(&self) -> impl Iterator<Item = &DmaEntry> {
        self.entries.iter().flatten()
    }

    /// Whether `ep` has any entry.
    pub fn has(&self, ep: Endpoint) -> bool {
        self.entries().any(|e| e.proc == ep)
    }

    /// Drops every entry of `ep`.
    pub fn release_all(&mut self, ep: Endpoint) {
        for e in &mut self.entries {
            if e.is_some_and(|d| d.proc == ep) {
                *e = None;
            }
        }
    }

    /// Puts `e` in the first free entry; `false` when the table is full.
    pub(crate) fn insert(&mut self, e: DmaEntry) -> bool {
        match self.entries.iter_mut().find(|x| x.is_none()) {
            Some(free) => {
                *free = Some(e);
                true
            }
            None => false,
        }
    }

    /// Removes the entry equal to `e`; `false` when there is none.
    pub(crate) fn remove(&mut self, e: DmaEntry) -> bool {
        match self.entries.iter_mut().find(|x| **x == Some(e)) {
            Some(slot) => {
                *slot = None;
                true
            }
            None => false,
        }
    }

    /// Renames `a`'s entries to `b` and `b`'s to `a` (live update).
    pub fn swap_owners(&mut self, a: Endpoint, b: Endpoint) {
        for d in self.entries.iter_mut().flatten() {
            if d.proc == a {
                d.proc = b;
            } else if d.proc == b {
                d.proc = a;
            }
        }
    }
}
