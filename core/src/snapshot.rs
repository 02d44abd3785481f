//! A comparable picture of the whole server state.
//!
//! No MINIX counterpart: used by tests to prove that a failed call left the state exactly
//! as it was (allocate, then commit), and by the replayer's verification. A snapshot holds
//! every live slot (endpoint, flags, call mask, regions, brk, every mapping with its frame
//! and flags, the permission of every leaf table's directory link, and a hash of the
//! mapped contents), a hash of all reference counts, the free-frame count and the small
//! tables. Accessed/dirty bits are left out (the soft MMU sets them on every access), and
//! pre-zeroed pool frames count as free.

use crate::acl::CallMask;
use crate::addr::{Frame, PageSpan, VirtAddr, PAGE_SIZE};
use crate::endpoint::Endpoint;
use crate::frames::FrameAllocator;
use crate::paging::{PageFlags, PagingFormat};
use crate::region::Region;
use crate::server::DmaEntry;
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
    /// Every leaf table's first address and whether its directory link lets writes
    /// through (read-only links mark tables shared by an on-demand fork).
    pub links: Vec<(VirtAddr, bool)>,
    /// Hash (FNV-1a over words) of the contents of every mapped arena page, in address
    /// order.
    pub contents: u64,
}

/// The whole server state, comparable.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VmSnapshot {
    /// Live processes, by slot.
    pub slots: Vec<SlotSnapshot>,
    /// Hash of every frame's nonzero reference count with its frame number (pool frames
    /// count as 0).
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

/// FNV-1a over 64-bit words instead of bytes, in four independent lanes (so that the
/// multiplications overlap), folded into `h`.
fn hash_frame(h: u64, bytes: &[u8; 4096]) -> u64 {
    let mut lanes = [h, h ^ 1, h ^ 2, h ^ 3];
    for block in bytes.chunks_exact(32) {
        for (k, lane) in lanes.iter_mut().enumerate() {
            let w = &block[k * 8..k * 8 + 8];
            let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            *lane = (*lane ^ w).wrapping_mul(FNV_PRIME);
        }
    }
    lanes.iter().fold(h, |a, &l| (a ^ l).wrapping_mul(FNV_PRIME))
}

/// One FNV-1a step over a 64-bit value.
#[inline]
fn mix(h: u64, v: u64) -> u64 {
    (h ^ v).wrapping_mul(FNV_PRIME)
}

impl<F: FrameAllocator, P: PagingFormat> Vm<F, P> {
    /// A snapshot of the whole state (slow: hashes every mapped page).
    pub fn snapshot(&self) -> VmSnapshot {
        let full = PageSpan { start: VirtAddr(0), pages: P::VA_END / PAGE_SIZE };
        let mut slots = Vec::new();
        for i in self.slots.in_use_indices() {
            let s = self.slots.get(i);
            let mut mappings = Vec::new();
            P::for_each_mapping(self.mem.arena(), s.root, full, &mut |va, m| {
                mappings.push((va, m.frame, m.flags.difference(PageFlags::ACCESSED | PageFlags::DIRTY)));
            });
            let mut links = Vec::new();
            P::for_each_leaf_table(self.mem.arena(), s.root, &mut |va, _, w| links.push((va, w)));
            let mut contents = FNV_OFFSET;
            for &(_, f, _) in &mappings {
                if self.mem.arena().contains(f) {
                    contents = hash_frame(contents, self.mem.arena().frame(f));
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
                links,
                contents,
            });
        }
        // Nonzero counts only, with their frame numbers; pool frames count as free (0).
        let mut pool: Vec<u64> = self.pool.iter().map(|f| f.0).collect();
        pool.sort_unstable();
        let mut refs = FNV_OFFSET;
        for (f, &c) in self.mem.refs().as_slice().iter().enumerate() {
            if c != 0 && pool.binary_search(&(f as u64)).is_err() {
                refs = mix(mix(refs, f as u64), u64::from(c));
            }
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
