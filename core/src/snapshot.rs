//! A comparable picture of the whole server state.
//!
//! No MINIX counterpart: used by tests to prove that a failed call left the state exactly
//! as it was (allocate, then commit), and by the replayer's verification. A snapshot holds
//! every live slot (endpoint, flags, call mask, regions, brk, every mapping with its frame
//! and flags, and a hash of the mapped contents), a hash of all reference counts, the
//! free-frame count and the small tables. Accessed/dirty bits are left out (the soft MMU
//! sets them on every access), and pre-zeroed pool frames count as free.

use crate::acl::CallMask;
use crate::addr::{Frame, PageSpan, VirtAddr, PAGE_SIZE};
use crate::calls::dma::DmaEntry;
use crate::endpoint::Endpoint;
use crate::frames::FrameAllocator;
use crate::paging::{PageFlags, PagingFormat};
use crate::region::Region;
use crate::server::Vm;

/// One live process in a [`VmSnapshot`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SlotSnapshot {
    /// Slot index.
    pub slot: usize,
    /// Endpoint.
    pub endpoint: Endpoint,
    /// Exit announced.
    pub exiting: bool,
    /// Has DMA buffers.
    pub has_dma: bool,
    /// Call mask.
    pub mask: CallMask,
    /// Regions.
    pub regions: Vec<Region>,
    /// Heap start and break.
    pub heap: (VirtAddr, VirtAddr),
    /// Every present page: address, frame, flags (without accessed/dirty).
    pub mappings: Vec<(VirtAddr, Frame, PageFlags)>,
    /// FNV-1a hash of the contents of every mapped arena page, in address order.
    pub contents: u64,
}

/// The whole server state, comparable.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VmSnapshot {
    /// Live processes, by slot.
    pub slots: Vec<SlotSnapshot>,
    /// FNV-1a hash of every frame's reference count (pool frames as 0).
    pub refs: u64,
    /// Free frames (pool included).
    pub free_frames: u64,
    /// Page-table frames.
    pub pt_pages: u64,
    /// DMA table entries.
    pub dma: Vec<DmaEntry>,
    /// Exit-notification queue.
    pub exits: Vec<Endpoint>,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

impl<F: FrameAllocator, P: PagingFormat> Vm<F, P> {
    /// A snapshot of the whole state (slow: hashes every mapped page).
    pub fn snapshot(&self) -> VmSnapshot {
        let full = PageSpan { start: VirtAddr(0), pages: P::VA_END / PAGE_SIZE };
        let mut slots = Vec::new();
        for i in self.slots.in_use_indices() {
            let s = self.slots.get(i);
            let mut mappings = Vec::new();
            P::for_each_mapping(&self.mem.arena, s.root, full, &mut |va, m| {
                mappings.push((va, m.frame, m.flags.difference(PageFlags::ACCESSED | PageFlags::DIRTY)));
            });
            let mut contents = FNV_OFFSET;
            for &(_, f, _) in &mappings {
                if self.mem.arena.contains(f) {
                    contents = fnv(contents, self.mem.arena.frame(f));
                }
            }
            slots.push(SlotSnapshot {
                slot: i,
                endpoint: s.endpoint,
                exiting: s.exiting,
                has_dma: s.has_dma,
                mask: self.acl.mask(s.acl),
                regions: s.regions.as_slice().to_vec(),
                heap: (s.heap_start, s.brk),
                mappings,
                contents,
            });
        }
        let mut counts = self.mem.refs.as_slice().to_vec();
        for f in &self.pool {
            counts[f.index()] = 0;
        }
        let mut refs = FNV_OFFSET;
        for c in counts {
            refs = fnv(refs, &c.to_le_bytes());
        }
        VmSnapshot {
            slots,
            refs,
            free_frames: self.free_frames(),
            pt_pages: self.pt_pages(),
            dma: self.dma.entries().copied().collect(),
            exits: self.exits.pending().copied().collect(),
        }
    }
}
