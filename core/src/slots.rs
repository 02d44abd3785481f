//! Process slots: a flat array sized at boot, with an in-use bitset.
//!
//! Replaces `struct vmproc vmproc[VMP_NR]` (`servers/vm/vmproc.h`, `glo.h`) and
//! `vm_isokendpt` (`servers/vm/utility.c`). The slot index equals the process's slot in
//! the kernel's table; a slot remembers its last endpoint (so the next tenant gets the
//! next generation) and holds the process's page-table root, regions, call-mask id and
//! brk bookkeeping. Validating an endpoint is arithmetic plus one array read: beside each
//! slot's state lies its endpoint while it is in use and [`KERNEL`] (never a process's
//! endpoint) while it is free, so that "a process slot, live, and of the
//! current generation" is one AND (`Endpoint::slot_bits`), one bounds check, one 4-byte
//! load and a compare.

use crate::acl::AclId;
use crate::addr::{Frame, VirtAddr};
use crate::endpoint::{next_generation, Endpoint, KERNEL, MAX_SLOTS};
use crate::errno::Errno;
use crate::region::RegionMap;

/// Default number of slots: room for real programs (a build with `make -j`, a fork pool of
/// a few hundred workers), where MINIX's compile-time `NR_PROCS` was 256. The table size
/// is a boot parameter ([`crate::server::VmConfig::slots`], up to [`MAX_SLOTS`]).
pub const DEFAULT_SLOTS: usize = 1024;

/// One process's VM state (`struct vmproc`).
#[derive(Clone, Debug, Default)]
pub struct ProcSlot {
    /// The current (or, when free, last) endpoint of the slot.
    pub endpoint: Endpoint,
    /// Whether a process lives here (`VMF_INUSE`).
    pub in_use: bool,
    /// PM announced the exit (`VMF_EXITING`).
    pub exiting: bool,
    /// The process has DMA buffers (`VMF_HAS_DMA`; blocks fork).
    pub has_dma: bool,
    /// The interned call mask.
    pub acl: AclId,
    /// Root page-table frame (valid while in use).
    pub root: Frame,
    /// The process's regions.
    pub regions: RegionMap,
    /// Start of the data/heap region: the lowest address brk accepts.
    pub heap_start: VirtAddr,
    /// The current break (exclusive end of the heap in bytes).
    pub brk: VirtAddr,
    /// First byte above the stack (`vm_stacktop`).
    pub stack_top: VirtAddr,
}

impl ProcSlot {
    /// This process's state over a new address space (`root`, `regions`): what exec
    /// installs in place of the old image. Endpoint, flags, call mask and the brk and stack
    /// bookkeeping are kept (the image builder sets the latter).
    pub fn with_space(&self, root: Frame, regions: RegionMap) -> ProcSlot {
        ProcSlot {
            endpoint: self.endpoint,
            in_use: self.in_use,
            exiting: self.exiting,
            has_dma: self.has_dma,
            acl: self.acl,
            root,
            regions,
            heap_start: self.heap_start,
            brk: self.brk,
            stack_top: self.stack_top,
        }
    }

    /// A forked child of this process (`endpoint`, address space `root` and `regions`): a
    /// live process with the parent's call mask and brk and stack bookkeeping, not exiting
    /// and without DMA buffers.
    pub fn child(&self, endpoint: Endpoint, root: Frame, regions: RegionMap) -> ProcSlot {
        ProcSlot { endpoint, in_use: true, exiting: false, has_dma: false, ..self.with_space(root, regions) }
    }
}

/// The slot table.
#[derive(Clone, Debug)]
pub struct Slots {
    slots: Vec<Entry>,
    in_use: Vec<u64>,
}

/// A slot and, beside it, its endpoint while in use and [`KERNEL`] while free: the caller
/// check reads one entry.
#[derive(Clone, Debug, Default)]
struct Entry {
    live: Endpoint,
    proc: ProcSlot,
}

impl Slots {
    /// `n` free slots; slot `i` starts with endpoint `i` (generation 0).
    ///
    /// # Panics
    /// Never for `n <= MAX_SLOTS`; callers check the bound (see `BootError`).
    pub fn new(n: usize) -> Slots {
        assert!(n <= MAX_SLOTS);
        let slots = (0..n)
            .map(|i| Entry {
                live: KERNEL,
                proc: ProcSlot { endpoint: Endpoint::new(0, i as i32), ..Default::default() },
            })
            .collect();
        Slots { slots, in_use: vec![0; n.div_ceil(64)] }
    }

    /// Number of slots.
    #[inline]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there is no slot at all.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// `vm_isokendpt`: the slot index of live endpoint `ep`.
    ///
    /// # Errors
    /// `EINVAL` if the slot is not a process slot of this table, `EDEADSRCDST` if the
    /// slot is free or holds another generation.
    #[inline]
    pub fn lookup(&self, ep: Endpoint) -> Result<usize, Errno> {
        let i = ep.slot_index(self.slots.len()).ok_or(Errno::EINVAL)?;
        if self.slots[i].live == ep {
            Ok(i)
        } else {
            Err(Errno::EDEADSRCDST)
        }
    }

    /// The slot of live endpoint `ep`, or `None` whatever the reason ([`Slots::lookup`]
    /// without the error detail, for the message loop's caller check): no branch on the
    /// sign, one AND, one bounds check, one load and compare.
    #[inline(always)]
    pub fn live_slot(&self, ep: Endpoint) -> Option<(usize, &ProcSlot)> {
        let i = ep.slot_bits();
        match self.slots.get(i) {
            Some(e) if e.live == ep => Some((i, &e.proc)),
            _ => None,
        }
    }

    /// Slot `i`.
    #[inline]
    pub fn get(&self, i: usize) -> &ProcSlot {
        &self.slots[i].proc
    }

    /// Slot `i`, writable.
    #[inline]
    pub fn get_mut(&mut self, i: usize) -> &mut ProcSlot {
        &mut self.slots[i].proc
    }

    /// Slots `a` and `b` (distinct) at once, writable.
    ///
    /// # Panics
    /// If `a == b` or either is out of range (internal bug).
    pub fn pair_mut(&mut self, a: usize, b: usize) -> (&mut ProcSlot, &mut ProcSlot) {
        assert_ne!(a, b);
        if a < b {
            let (lo, hi) = self.slots.split_at_mut(b);
            (&mut lo[a].proc, &mut hi[0].proc)
        } else {
            let (lo, hi) = self.slots.split_at_mut(a);
            (&mut hi[0].proc, &mut lo[b].proc)
        }
    }

    /// Whether slot `i` is in use (false when out of range).
    #[inline]
    pub fn is_in_use(&self, i: usize) -> bool {
        i < self.slots.len() && self.in_use[i / 64] & (1 << (i % 64)) != 0
    }

    /// The lowest free slot, as PM would pick one for a fork.
    pub fn find_free(&self) -> Option<usize> {
        for (w, &bits) in self.in_use.iter().enumerate() {
            if bits != u64::MAX {
                let i = w * 64 + (!bits).trailing_zeros() as usize;
                return (i < self.slots.len()).then_some(i);
            }
        }
        None
    }

    /// The endpoint the next tenant of free slot `i` gets (next generation).
    #[inline]
    pub fn next_endpoint(&self, i: usize) -> Endpoint {
        let last = self.slots[i].proc.endpoint;
        Endpoint::new(next_generation(last.generation()), i as i32)
    }

    /// Marks slot `i` in use by `ep`, with the given state; the previous contents go.
    pub fn occupy(&mut self, i: usize, slot: ProcSlot) {
        debug_assert!(!self.is_in_use(i));
        self.slots[i] = Entry { live: slot.endpoint, proc: ProcSlot { in_use: true, ..slot } };
        self.in_use[i / 64] |= 1 << (i % 64);
    }

    /// Frees slot `i`, keeping its endpoint (`clear_proc`); returns the old state.
    pub fn release(&mut self, i: usize) -> ProcSlot {
        let endpoint = self.slots[i].proc.endpoint;
        self.slots[i].live = KERNEL;
        self.in_use[i / 64] &= !(1 << (i % 64));
        core::mem::replace(&mut self.slots[i].proc, ProcSlot { endpoint, ..Default::default() })
    }

    /// Indices of the slots in use, ascending.
    pub fn in_use_indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.in_use.iter().enumerate().flat_map(|(w, &bits)| {
            let mut b = bits;
            core::iter::from_fn(move || {
                if b == 0 {
                    return None;
                }
                let i = b.trailing_zeros() as usize;
                b &= b - 1;
                Some(w * 64 + i)
            })
        })
    }

    /// Number of slots in use.
    pub fn count_in_use(&self) -> usize {
        self.in_use.iter().map(|w| w.count_ones() as usize).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_checks_range_generation_and_use() {
        let mut s = Slots::new(70);
        let ep = s.next_endpoint(65);
        assert_eq!(ep.generation(), 1);
        s.occupy(65, ProcSlot { endpoint: ep, ..Default::default() });
        assert_eq!(s.lookup(ep), Ok(65));
        assert_eq!(s.lookup(Endpoint::new(2, 65)), Err(Errno::EDEADSRCDST));
        assert_eq!(s.lookup(Endpoint::new(0, 70)), Err(Errno::EINVAL));
        assert_eq!(s.lookup(Endpoint(-1)), Err(Errno::EINVAL));
        assert_eq!(s.lookup(Endpoint::new(0, 3)), Err(Errno::EDEADSRCDST));
        s.release(65);
        assert_eq!(s.lookup(ep), Err(Errno::EDEADSRCDST));
        assert_eq!(s.next_endpoint(65).generation(), 2);
    }

    #[test]
    fn free_slot_search_and_iteration() {
        let mut s = Slots::new(130);
        for i in 0..128 {
            s.occupy(i, ProcSlot::default());
        }
        assert_eq!(s.find_free(), Some(128));
        s.release(5);
        assert_eq!(s.find_free(), Some(5));
        assert_eq!(s.count_in_use(), 127);
        assert_eq!(s.in_use_indices().count(), 127);
        assert!(!s.is_in_use(5) && s.is_in_use(6) && !s.is_in_use(1000));
        s.occupy(5, ProcSlot::default());
        s.occupy(128, ProcSlot::default());
        s.occupy(129, ProcSlot::default());
        assert_eq!(s.find_free(), None);
        let (a, b) = s.pair_mut(129, 3);
        a.brk = VirtAddr(1);
        b.brk = VirtAddr(2);
        assert_eq!(s.get(129).brk, VirtAddr(1));
    }
}
