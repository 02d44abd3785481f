//! The VM server's state ([`Vm`]) and its read-only accessors.
//!
//! Replaces the global state of `servers/vm/glo.h` (`vmproc[]`, the physical memory, the
//! call masks, `dmatab`, the exit queue). [`Vm`] is generic over the frame allocator and
//! the page-table format so the hot path is monomorphized.

use super::{DmaTable, ExitQueue, SanityError, SanityLevel, ZeroPolicy, ZeroPool};
use crate::acl::{AclTable, CallMask};
use crate::addr::{Frame, VirtAddr};
use crate::arena::Arena;
use crate::endpoint::Endpoint;
use crate::errno::Errno;
use crate::frames::{FrameAllocator, PhysMem};
use crate::paging::{Access, FaultCode, ForkPolicy, Mapping, PagingFormat};
use crate::region::{Region, RegionMap};
use crate::slots::Slots;
use crate::stats::VmStats;
use core::fmt;
use core::marker::PhantomData;

/// The VM server.
pub struct Vm<F: FrameAllocator, P: PagingFormat> {
    pub(crate) mem: PhysMem<F>,
    pub(crate) slots: Slots,
    pub(crate) acl: AclTable,
    pub(crate) dma: DmaTable,
    pub(crate) exits: ExitQueue,
    pub(crate) fork_policy: ForkPolicy,
    /// The anonymous folio size of demand-zero write faults.
    pub(crate) folio: crate::server::FolioSize,
    /// Whether demand-zero faults may map huge blocks (`crate::calls::huge`).
    pub(crate) huge: crate::server::HugePolicy,
    /// The huge zero page, once a read fault has needed it: the first of its
    /// [`PagingFormat::HUGE_PAGES`] zeroed frames, pinned by one reference each (every
    /// mapping of it holds its own as well).
    pub(crate) huge_zero: Option<Frame>,
    /// The pre-zeroed frames and the zeroing policy.
    pub(crate) pool: ZeroPool,
    /// A cleared region list whose buffer exec reuses for the image it builds.
    pub(crate) spare_regions: RegionMap,
    pub(crate) stats: VmStats,
    pub(crate) sanity: Option<SanityLevel>,
    pub(crate) sanity_error: Option<SanityError>,
    pub(crate) _format: PhantomData<fn() -> P>,
}

impl<F: FrameAllocator, P: PagingFormat> fmt::Debug for Vm<F, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vm")
            .field("alloc", &self.mem.allocator().name())
            .field("paging", &P::NAME)
            .field("slots_in_use", &self.slots.count_in_use())
            .field("free_frames", &self.free_frames())
            .finish_non_exhaustive()
    }
}

impl<F: FrameAllocator, P: PagingFormat> Vm<F, P> {
    /// Frees an address space whose regions are `regions`: unmaps the regions' pages (one
    /// cursor walk per region, freeing each table as it empties), then frees the root if
    /// that left it empty. Pages are mapped only inside regions, so the root is empty then;
    /// should anything be left (a half-built image), the format's full `destroy` frees it.
    /// Under on-demand fork the full `destroy` is used at once: it drops a shared leaf
    /// table's reference where a region-by-region unmap would first copy the table; so
    /// it is while any huge entry exists (an unmap would split it first).
    pub(crate) fn destroy_space(&mut self, root: Frame, regions: &[Region]) {
        // A huge entry would need a table frame to be split by a range unmap; the full
        // destroy drops it whole.
        if self.fork_policy == ForkPolicy::Share || self.mem.huge_entries() != 0 {
            P::destroy(&mut self.mem, root);
            return;
        }
        for r in regions {
            // No leaf table is shared under the other policies: nothing to copy, no error.
            let _ = P::unmap_range(&mut self.mem, root, r.span());
        }
        // Any format's table is empty when its 4 KiB are zero.
        let empty = crate::paging::layout::all_zero(self.mem.arena().table64(root));
        if empty {
            self.mem.free_table(root);
        } else {
            P::destroy(&mut self.mem, root);
        }
    }

    /// Copies the count of huge-entry splits (made by the page-table range operations)
    /// into the statistics: called by the calls that unmap or protect ranges.
    #[inline(always)]
    pub(crate) fn note_splits(&mut self) {
        self.stats.huge_splits = self.mem.huge_splits();
    }

    /// Samples the peaks of frames in use and page-table frames.
    #[inline(always)]
    pub(crate) fn note_peaks(&mut self) {
        let used = self.frames_in_use();
        if used > self.stats.frames_peak {
            self.stats.frames_peak = used;
        }
        if self.mem.table_frames() > self.stats.pt_pages_peak {
            self.stats.pt_pages_peak = self.mem.table_frames();
        }
    }

    /// The counters.
    pub fn stats(&self) -> &VmStats {
        &self.stats
    }

    /// The first sanity failure seen by per-message checking ([`crate::VmConfig::sanity`]).
    pub fn sanity_failure(&self) -> Option<&SanityError> {
        self.sanity_error.as_ref()
    }

    /// Free frames (the pre-zeroed pool counts as free).
    pub fn free_frames(&self) -> u64 {
        self.mem.free_frames() + self.pool.len() as u64
    }

    /// Frames in the arena.
    pub fn total_frames(&self) -> u64 {
        self.mem.arena().frames()
    }

    /// Frames in use, page tables included.
    pub fn frames_in_use(&self) -> u64 {
        self.total_frames() - self.free_frames()
    }

    /// Frames used as page tables now.
    pub fn pt_pages(&self) -> u64 {
        self.mem.table_frames()
    }

    /// The endpoint of the process in `slot`, if one lives there.
    pub fn endpoint_of_slot(&self, slot: usize) -> Option<Endpoint> {
        self.slots.is_in_use(slot).then(|| self.slots.get(slot).endpoint)
    }

    /// The lowest free slot: what PM would pick for a fork.
    pub fn find_free_slot(&self) -> Option<usize> {
        self.slots.find_free()
    }

    /// Number of slots.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Number of live processes.
    pub fn processes(&self) -> usize {
        self.slots.count_in_use()
    }

    /// `vm_isokendpt`: the slot of a live endpoint.
    ///
    /// # Errors
    /// `EINVAL` (not a process slot) or `EDEADSRCDST` (stale or free).
    pub fn check_endpoint(&self, ep: Endpoint) -> Result<usize, Errno> {
        self.slots.lookup(ep)
    }

    /// The slot of the live process `ep`, as the call handlers resolve an endpoint field:
    /// `vm_isokendpt`, with its failure (not a process slot, a free slot, a stale
    /// generation) answered `EINVAL`, as MINIX's handlers answer a bad endpoint (exec's
    /// `ESRCH` and push-sig's unmapped `vm_isokendpt` error are the exceptions, in their
    /// handlers).
    ///
    /// # Errors
    /// `EINVAL`.
    #[inline]
    pub(crate) fn proc_slot(&self, ep: Endpoint) -> Result<usize, Errno> {
        match self.slots.lookup(ep) {
            Ok(slot) => Ok(slot),
            Err(_) => Err(Errno::EINVAL),
        }
    }

    /// The regions of a live process.
    ///
    /// # Errors
    /// As [`Vm::check_endpoint`].
    pub fn regions(&self, ep: Endpoint) -> Result<&[Region], Errno> {
        Ok(self.slots.get(self.slots.lookup(ep)?).regions.as_slice())
    }

    /// The current break of a live process.
    ///
    /// # Errors
    /// As [`Vm::check_endpoint`].
    pub fn brk_of(&self, ep: Endpoint) -> Result<VirtAddr, Errno> {
        Ok(self.slots.get(self.slots.lookup(ep)?).brk)
    }

    /// The call mask of a live process.
    ///
    /// # Errors
    /// As [`Vm::check_endpoint`].
    pub fn call_mask(&self, ep: Endpoint) -> Result<CallMask, Errno> {
        Ok(self.acl.mask(self.slots.get(self.slots.lookup(ep)?).acl))
    }

    /// The physical memory (read only): arena contents, reference counts, allocator.
    pub fn phys(&self) -> &PhysMem<F> {
        &self.mem
    }

    /// The frame allocator, writable: for fault injection in tests (`FailingAllocator`)
    /// and nothing else; allocating or freeing through it breaks the server's accounting.
    pub fn allocator_mut(&mut self) -> &mut F {
        self.mem.allocator_mut()
    }

    /// The fork policy.
    pub fn fork_policy(&self) -> ForkPolicy {
        self.fork_policy
    }

    /// The anonymous folio size of demand-zero write faults.
    pub fn folio_size(&self) -> crate::server::FolioSize {
        self.folio
    }

    /// Whether demand-zero faults may map huge blocks.
    pub fn huge_policy(&self) -> crate::server::HugePolicy {
        self.huge
    }

    /// The huge zero page's first frame, once allocated (it stays for good).
    pub fn huge_zero_page(&self) -> Option<Frame> {
        self.huge_zero
    }

    /// Frames the server keeps for itself for good, neither free nor any process's: the
    /// huge zero page once a read fault has made it. A server whose processes have all
    /// exited has every frame free but these.
    pub fn kept_frames(&self) -> u64 {
        if self.huge_zero.is_some() {
            P::HUGE_PAGES
        } else {
            0
        }
    }

    /// The zeroing policy.
    pub fn zero_policy(&self) -> ZeroPolicy {
        self.pool.policy()
    }

    /// Soft-MMU access by a user process (no fault handling): the mapping used, or the
    /// x86 fault code. Sets the accessed (and dirty) bits like the hardware. A dead
    /// endpoint faults as "not present".
    ///
    /// # Errors
    /// The [`FaultCode`] the hardware would report.
    #[inline]
    pub fn mmu_translate(
        &mut self,
        ep: Endpoint,
        va: VirtAddr,
        access: Access,
    ) -> Result<Mapping, FaultCode> {
        let Ok(slot) = self.slots.lookup(ep) else {
            return Err(FaultCode(if access.write { FaultCode::WRITE } else { 0 } | FaultCode::USER));
        };
        self.mmu_translate_slot(slot, va, access)
    }

    /// [`Vm::mmu_translate`] for the live process in `slot` (checked by the caller).
    #[inline]
    pub(crate) fn mmu_translate_slot(
        &mut self,
        slot: usize,
        va: VirtAddr,
        access: Access,
    ) -> Result<Mapping, FaultCode> {
        let root = self.slots.get(slot).root;
        if va.0 >= P::VA_END {
            return Err(FaultCode(if access.write { FaultCode::WRITE } else { 0 } | FaultCode::USER));
        }
        P::hw_translate(self.mem.arena_mut(), root, va, access)
    }

    /// Reads bytes of the arena behind a present mapping (the soft MMU's data path).
    pub(crate) fn arena(&self) -> &Arena {
        self.mem.arena()
    }

    /// Writable arena (the soft MMU's data path).
    pub(crate) fn arena_mut(&mut self) -> &mut Arena {
        self.mem.arena_mut()
    }

    /// A zeroed frame with one reference ([`ZeroPool::take_zeroed`]), counted as a
    /// pre-zeroed fill when it came from the pool.
    #[inline]
    pub(crate) fn alloc_zeroed(&mut self) -> Option<Frame> {
        let z = self.pool.take_zeroed(&mut self.mem)?;
        if z.pooled {
            self.stats.prezeroed_fills += 1;
        }
        Some(z.frame)
    }

    /// A frame with one reference and unspecified contents (the pool is the fallback).
    #[inline]
    pub(crate) fn alloc_any(&mut self) -> Option<Frame> {
        self.pool.take_any(&mut self.mem)
    }

    /// Refills the pre-zeroed pool (with streaming stores) when the zeroing policy is
    /// [`ZeroPolicy::Prezeroed`]; a no-op otherwise. Call it when there is no message to
    /// handle. Keeps at least a quarter of the free frames out of the pool.
    pub fn idle(&mut self) {
        self.pool.refill(&mut self.mem);
    }

    /// Gives every pooled frame back to the allocator.
    pub fn drain_pool(&mut self) {
        self.pool.drain(&mut self.mem);
    }
}
