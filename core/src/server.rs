//! The VM server: state, boot and the message loop body.
//!
//! Replaces `servers/vm/main.c` (`main`'s loop body, `sef_cb_init_fresh`, the `vm_calls`
//! table filled by `CALLMAP`, `vm_acl_ok`) and the global state of `glo.h`. [`Vm`] owns
//! the physical memory (arena, allocator, reference counts), the slot table, the call-mask
//! table and the small tables of the DMA and exit-notification calls. It is generic over
//! the frame allocator and the page-table format so the hot path is monomorphized.
//!
//! `handle` is the seed's loop body: notifications are ignored; `VM_PAGEFAULT` is accepted
//! only from the kernel (a faked one is refused with EPERM and counted, §21.1) and never
//! answered; other numbers are range checked and ACL checked (ENOSYS, as the seed answers;
//! a bad source endpoint is refused the same way instead of panicking, §21.2), then
//! dispatched through an array of `(handler, name)` indexed by `mtype - VM_RQ_BASE`; the
//! reply is the request with `mtype` set to the result, unless the handler suspends.
//!
//! Zeroing policy [`ZeroPolicy::Prezeroed`] keeps a small pool of zeroed frames that the
//! fault path takes from; the pool is refilled off the fault path by [`Vm::idle`] (call it
//! when the message queue is empty, where the seed runs `pt_cycle`). Pool frames count as
//! free in [`Vm::free_frames`] and are handed back whenever the allocator runs dry.

use crate::acl::{AclTable, CallMask, ACL_CAPACITY};
use crate::addr::{Frame, PageSpan, VirtAddr, PAGE_SIZE};
use crate::arena::{Arena, ArenaConfig, ArenaError};
use crate::calls;
use crate::calls::dma::DmaTable;
use crate::calls::signals::ExitQueue;
use crate::endpoint::{Endpoint, MAX_SLOTS, NR_BOOT_PROCS, RS_PROC_NR, VM_PROC_NR};
use crate::errno::{Errno, OK};
use crate::frames::{FrameAllocator, PhysMem};
use crate::layout::ImageLayout;
use crate::message::{
    call_index, Message, NOTIFY_MESSAGE, NR_VM_CALLS, VM_ADDDMA, VM_BRK, VM_DELDMA, VM_DISCARD, VM_EXIT,
    VM_GETDMA, VM_GETPHYS, VM_GETREF, VM_MPROTECT, VM_MUNMAP, VM_MUNMAP_TEXT, VM_NOTIFY_SIG, VM_PAGEFAULT,
    VM_PUSH_SIG, VM_QUERY_EXIT, VM_RS_UPDATE, VM_SHM_UNMAP, VM_UNMAP_PHYS, VM_WILLEXIT,
};
use crate::paging::{Access, FaultCode, ForkPolicy, Mapping, PageFlags, PagingFormat};
use crate::region::{MapProt, MemType, Region, RegionMap, RegionTag};
use crate::sanity::{SanityError, SanityLevel};
use crate::slots::{ProcSlot, Slots, DEFAULT_SLOTS};
use crate::stats::VmStats;
use core::fmt;
use core::marker::PhantomData;

/// When demand-zero pages are zeroed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum ZeroPolicy {
    /// Zero the frame inside the fault.
    #[default]
    OnFault,
    /// Take a frame from a pool zeroed off the fault path (refilled by [`Vm::idle`]).
    Prezeroed,
}

/// How to boot a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmConfig {
    /// The physical memory.
    pub arena: ArenaConfig,
    /// Number of process slots (at least 11 for the boot image, at most 65,536).
    pub slots: usize,
    /// Fork policy.
    pub fork: ForkPolicy,
    /// Zeroing policy.
    pub zero: ZeroPolicy,
    /// Run [`Vm::check_invariants`] at this level after every message (off by default).
    pub sanity: Option<SanityLevel>,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            arena: ArenaConfig::default(),
            slots: DEFAULT_SLOTS,
            fork: ForkPolicy::Cow,
            zero: ZeroPolicy::OnFault,
            sanity: None,
        }
    }
}

impl VmConfig {
    /// The default configuration over an arena of `bytes` bytes.
    pub fn with_bytes(bytes: u64) -> VmConfig {
        VmConfig { arena: ArenaConfig { bytes, ..Default::default() }, ..Default::default() }
    }
}

/// Why a server could not boot.
#[derive(Debug)]
pub enum BootError {
    /// The arena could not be built.
    Arena(ArenaError),
    /// The slot count is below the boot image's 11 or above 65,536.
    TooManySlots(usize),
    /// The arena is too small for the boot image.
    OutOfMemory,
    /// The allocator given to `boot_with` does not manage exactly the arena's frames.
    AllocatorMismatch {
        /// Frames in the arena.
        arena: u64,
        /// Free frames the allocator reported.
        allocator: u64,
    },
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootError::Arena(e) => write!(f, "{e}"),
            BootError::TooManySlots(n) => {
                write!(f, "{n} process slots requested: need {NR_BOOT_PROCS} to {MAX_SLOTS}")
            }
            BootError::OutOfMemory => write!(f, "the arena is too small for the boot image"),
            BootError::AllocatorMismatch { arena, allocator } => {
                write!(f, "allocator has {allocator} free frames but the arena has {arena}")
            }
        }
    }
}

impl std::error::Error for BootError {}

impl From<ArenaError> for BootError {
    fn from(e: ArenaError) -> Self {
        BootError::Arena(e)
    }
}

/// What a handler asks the loop to do with the reply.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Reply {
    /// Send the (edited) request back with `mtype = OK`.
    Now,
    /// No reply now (`SUSPEND`); no 2010 handler uses it, the loop supports it.
    #[allow(dead_code)]
    Suspend,
}

/// A handler's result.
pub(crate) type CallResult = Result<Reply, Errno>;
/// A call handler: the server, the caller's slot index, the message (edited in place).
pub(crate) type Handler<F, P> = fn(&mut Vm<F, P>, usize, &mut Message) -> CallResult;

/// Calls that never take a frame (they only free, look up or edit tables of the server):
/// the peaks cannot rise during them, so the loop does not sample them.
const NO_FRAMES: CallMask = CallMask::of(&[
    VM_EXIT,
    VM_WILLEXIT,
    VM_MUNMAP,
    VM_MUNMAP_TEXT,
    VM_UNMAP_PHYS,
    VM_SHM_UNMAP,
    VM_GETPHYS,
    VM_GETREF,
    VM_QUERY_EXIT,
    VM_NOTIFY_SIG,
    VM_PUSH_SIG,
    VM_ADDDMA,
    VM_DELDMA,
    VM_GETDMA,
    VM_DISCARD,
    VM_MPROTECT,
    VM_BRK,
    VM_RS_UPDATE,
]);

/// Byte `k` is `k mod 256`: the text pattern of page `i` of an image with seed `seed`
/// (byte `j` = `seed * 31 + i * 7 + j`, mod 256) is the 4 KiB from
/// `(seed * 31 + i * 7) mod 256` on, one copy instead of a loop.
static TEXT_PATTERN: [u8; PAGE_SIZE as usize + 256] = {
    let mut t = [0u8; PAGE_SIZE as usize + 256];
    let mut k = 0;
    while k < t.len() {
        t[k] = k as u8;
        k += 1;
    }
    t
};

/// Target size of the pre-zeroed pool.
pub const PREZERO_POOL: usize = 64;

/// The VM server.
pub struct Vm<F: FrameAllocator, P: PagingFormat> {
    pub(crate) mem: PhysMem<F>,
    pub(crate) slots: Slots,
    pub(crate) acl: AclTable,
    pub(crate) dma: DmaTable,
    pub(crate) exits: ExitQueue,
    pub(crate) fork_policy: ForkPolicy,
    pub(crate) zero_policy: ZeroPolicy,
    pub(crate) pool: Vec<Frame>,
    /// A cleared region list whose buffer exec reuses for the image it builds.
    pub(crate) spare_regions: RegionMap,
    pub(crate) stats: VmStats,
    sanity: Option<SanityLevel>,
    sanity_error: Option<SanityError>,
    _format: PhantomData<fn() -> P>,
}

impl<F: FrameAllocator, P: PagingFormat> fmt::Debug for Vm<F, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vm")
            .field("alloc", &self.mem.alloc.name())
            .field("paging", &P::NAME)
            .field("slots_in_use", &self.slots.count_in_use())
            .field("free_frames", &self.free_frames())
            .finish_non_exhaustive()
    }
}

impl<F: FrameAllocator, P: PagingFormat> Vm<F, P> {
    /// The call table (`vm_calls[]` filled by `CALLMAP`): handler and name per index.
    const CALLS: [(Option<Handler<F, P>>, &'static str); NR_VM_CALLS] = [
        (Some(calls::exit::do_exit), "VM_EXIT"),
        (Some(calls::fork::do_fork), "VM_FORK"),
        (Some(calls::brk::do_brk), "VM_BRK"),
        (Some(calls::exec::do_exec_newmem), "VM_EXEC_NEWMEM"),
        (Some(calls::signals::do_push_sig), "VM_PUSH_SIG"),
        (Some(calls::exit::do_willexit), "VM_WILLEXIT"),
        (None, "6"),
        (None, "7"),
        (None, "8"),
        (None, "9"),
        (Some(calls::mmap::do_mmap), "VM_MMAP"),
        (None, "VM_UMAP"),
        (Some(calls::dma::do_adddma), "VM_ADDDMA"),
        (Some(calls::dma::do_deldma), "VM_DELDMA"),
        (Some(calls::dma::do_getdma), "VM_GETDMA"),
        (Some(calls::phys::do_map_phys), "VM_MAP_PHYS"),
        (Some(calls::phys::do_unmap_phys), "VM_UNMAP_PHYS"),
        (Some(calls::mmap::do_munmap), "VM_MUNMAP"),
        (None, "18"),
        (Some(calls::mmap::do_munmap), "VM_MUNMAP_TEXT"),
        (None, "20"),
        (None, "21"),
        (None, "22"),
        (None, "23"),
        (None, "24"),
        (None, "25"),
        (None, "26"),
        (None, "27"),
        (None, "28"),
        (None, "29"),
        (None, "VM_VFS_REPLY_OPEN"),
        (None, "VM_VFS_REPLY_MMAP"),
        (None, "VM_VFS_REPLY_CLOSE"),
        (Some(calls::shared::do_remap), "VM_REMAP"),
        (Some(calls::shared::do_shared_unmap), "VM_SHM_UNMAP"),
        (Some(calls::shared::do_get_phys), "VM_GETPHYS"),
        (Some(calls::shared::do_get_refcount), "VM_GETREF"),
        (Some(calls::privileges::do_rs_set_priv), "VM_RS_SET_PRIV"),
        (Some(calls::signals::do_query_exit), "VM_QUERY_EXIT"),
        (Some(calls::signals::do_notify_sig), "VM_NOTIFY_SIG"),
        (Some(calls::info::do_info), "VM_INFO"),
        (Some(calls::privileges::do_rs_update), "VM_RS_UPDATE"),
        (Some(calls::mprotect::do_mprotect), "VM_MPROTECT"),
        (Some(calls::mremap::do_mremap), "VM_MREMAP"),
        (Some(calls::discard::do_discard), "VM_DISCARD"),
    ];

    /// Boots a server (`sef_cb_init_fresh`) with a fresh allocator over the arena.
    ///
    /// # Errors
    /// See [`BootError`].
    pub fn boot(config: VmConfig) -> Result<Self, BootError> {
        Self::check_slots(config.slots)?;
        let arena = Arena::new(&config.arena)?;
        let alloc = F::with_frames(arena.frames());
        Self::boot_in(config, arena, alloc)
    }

    /// Boots a server with a given allocator, which must manage exactly the arena's
    /// frames, all free (used with `FailingAllocator` in tests).
    ///
    /// # Errors
    /// See [`BootError`].
    pub fn boot_with(config: VmConfig, alloc: F) -> Result<Self, BootError> {
        Self::check_slots(config.slots)?;
        let arena = Arena::new(&config.arena)?;
        if alloc.free_count() != arena.frames() {
            return Err(BootError::AllocatorMismatch {
                arena: arena.frames(),
                allocator: alloc.free_count(),
            });
        }
        Self::boot_in(config, arena, alloc)
    }

    fn check_slots(n: usize) -> Result<(), BootError> {
        if !(NR_BOOT_PROCS..=MAX_SLOTS).contains(&n) {
            return Err(BootError::TooManySlots(n));
        }
        Ok(())
    }

    fn boot_in(config: VmConfig, arena: Arena, alloc: F) -> Result<Self, BootError> {
        let mut vm = Vm {
            mem: PhysMem::with_allocator(arena, alloc),
            slots: Slots::new(config.slots),
            acl: AclTable::new(ACL_CAPACITY),
            dma: DmaTable::default(),
            exits: ExitQueue::new(config.slots),
            fork_policy: config.fork,
            zero_policy: config.zero,
            pool: Vec::with_capacity(PREZERO_POOL),
            spare_regions: RegionMap::new(),
            stats: VmStats::default(),
            sanity: config.sanity,
            sanity_error: None,
            _format: PhantomData,
        };
        let layout = ImageLayout::boot::<P>();
        for slot in 0..NR_BOOT_PROCS {
            let mask = match Endpoint(slot as i32) {
                crate::endpoint::PM_PROC_NR => CallMask::PM,
                RS_PROC_NR => CallMask::RS,
                VM_PROC_NR => CallMask::EMPTY,
                _ => CallMask::BASIC,
            };
            let acl = vm.acl.intern(mask).map_err(|_| BootError::OutOfMemory)?;
            let root = P::new_root(&mut vm.mem).map_err(|_| BootError::OutOfMemory)?;
            let mut p = ProcSlot {
                endpoint: Endpoint::new(0, slot as i32),
                acl,
                root,
                heap_start: layout.data.start,
                brk: layout.brk,
                stack_top: layout.stack.end(),
                ..Default::default()
            };
            vm.install_image(&mut p, &layout, slot as u8).map_err(|_| BootError::OutOfMemory)?;
            vm.slots.occupy(slot, p);
        }
        if vm.zero_policy == ZeroPolicy::Prezeroed {
            vm.idle();
        }
        vm.note_peaks();
        Ok(vm)
    }

    /// Builds an image's regions in `p` and preallocates its text (filled with a pattern
    /// derived from `seed`) and data (zeroed); the stack is demand-zero. On error the
    /// frames mapped so far stay in `p.root` (the caller destroys it).
    pub(crate) fn install_image(&mut self, p: &mut ProcSlot, l: &ImageLayout, seed: u8) -> Result<(), Errno> {
        p.regions.clear();
        if l.text.pages > 0 {
            self.prealloc(p.root, l.text, PageFlags::USER, Some(seed))?;
            p.regions.insert_unmerged(Region {
                start: l.text.start,
                pages: l.text.pages,
                mem: MemType::Anon,
                prot: MapProt::RX,
                tag: RegionTag::Text,
            });
        }
        if l.data.pages > 0 {
            self.prealloc(p.root, l.data, PageFlags::USER | PageFlags::WRITE, None)?;
            p.regions.insert_unmerged(Region {
                start: l.data.start,
                pages: l.data.pages,
                mem: MemType::Anon,
                prot: MapProt::RW,
                tag: RegionTag::Heap,
            });
        }
        p.regions.insert_unmerged(Region {
            start: l.stack.start,
            pages: l.stack.pages,
            mem: MemType::Anon,
            prot: MapProt::RW,
            tag: RegionTag::Stack,
        });
        p.heap_start = l.data.start;
        p.brk = l.brk;
        p.stack_top = l.stack.end();
        Ok(())
    }

    /// Allocates and maps every page of `span` (zeroed, or filled from `pattern`). On
    /// error, pages already mapped stay mapped (the caller unmaps the span).
    pub(crate) fn prealloc(
        &mut self,
        root: Frame,
        span: PageSpan,
        flags: PageFlags,
        pattern: Option<u8>,
    ) -> Result<(), Errno> {
        for (i, va) in span.iter().enumerate() {
            let frame = match pattern {
                // Every byte is written: any frame will do, no zeroing.
                Some(seed) => {
                    let frame = self.alloc_any().ok_or(Errno::ENOMEM)?;
                    let from = usize::from(seed.wrapping_mul(31).wrapping_add((i * 7) as u8));
                    self.mem
                        .arena
                        .frame_mut(frame)
                        .copy_from_slice(&TEXT_PATTERN[from..from + PAGE_SIZE as usize]);
                    frame
                }
                None => self.alloc_zeroed().ok_or(Errno::ENOMEM)?,
            };
            if P::map(&mut self.mem, root, va, Mapping { frame, flags }).is_err() {
                self.mem.unref(frame);
                return Err(Errno::ENOMEM);
            }
        }
        Ok(())
    }

    /// Frees an address space whose regions are `regions`: unmaps the regions' pages (one
    /// cursor walk per region, freeing each table as it empties), then frees the root if
    /// that left it empty. Pages are mapped only inside regions, so the root is empty then;
    /// should anything be left (a half-built image), the format's full `destroy` frees it.
    /// Under on-demand fork the full `destroy` is used at once: it drops a shared leaf
    /// table's reference where a region-by-region unmap would first copy the table.
    pub(crate) fn destroy_space(&mut self, root: Frame, regions: &[Region]) {
        if self.fork_policy == ForkPolicy::Share {
            P::destroy(&mut self.mem, root);
            return;
        }
        for r in regions {
            // No leaf table is shared under the other policies: nothing to copy, no error.
            let _ = P::unmap_range(&mut self.mem, root, r.span());
        }
        // Any format's table is empty when its 4 KiB are zero.
        let empty = crate::paging::layout::all_zero(self.mem.arena.table64(root));
        if empty {
            self.mem.free_table(root);
        } else {
            P::destroy(&mut self.mem, root);
        }
    }

    /// A zeroed frame with one reference: from the pre-zeroed pool if there is one, else
    /// from the allocator (zeroed now).
    #[inline]
    pub(crate) fn alloc_zeroed(&mut self) -> Option<Frame> {
        if let Some(f) = self.pool.pop() {
            self.stats.prezeroed_fills += 1;
            return Some(f);
        }
        self.mem.alloc_zeroed()
    }

    /// A frame with one reference and unspecified contents (the pool is the fallback).
    #[inline]
    pub(crate) fn alloc_any(&mut self) -> Option<Frame> {
        self.mem.alloc_frame().or_else(|| self.pool.pop())
    }

    /// Refills the pre-zeroed pool (with streaming stores) when the zeroing policy is
    /// [`ZeroPolicy::Prezeroed`]; a no-op otherwise. Call it when there is no message to
    /// handle. Keeps at least a quarter of the free frames out of the pool.
    pub fn idle(&mut self) {
        if self.zero_policy != ZeroPolicy::Prezeroed {
            return;
        }
        while self.pool.len() < PREZERO_POOL && self.mem.free_frames() > 4 * PREZERO_POOL as u64 {
            let Some(f) = self.mem.alloc_frame() else { break };
            self.mem.arena.zero_frame_streaming(f);
            self.pool.push(f);
        }
    }

    /// Gives every pooled frame back to the allocator.
    pub fn drain_pool(&mut self) {
        while let Some(f) = self.pool.pop() {
            self.mem.unref(f);
        }
    }

    /// The seed's loop body: one message in, the reply (or none) out.
    #[inline]
    pub fn handle(&mut self, msg: &Message, from_kernel: bool) -> Option<Message> {
        let mut out = Some(*msg);
        if let Some(m) = out.as_mut() {
            if !self.handle_mut(m, from_kernel) {
                out = None;
            }
        }
        out
    }

    /// The loop body in place, as MINIX's VM answers with the buffer it received into:
    /// `msg` is the request on entry and the reply on return when the result is `true`
    /// (`false`: no reply; `msg` is then unspecified).
    ///
    /// The request path is: range check of `mtype`, handler table read, endpoint check
    /// (arithmetic and one slot read), ACL bit test, call, result into `mtype`. Refusals,
    /// page faults and notifications leave that path early; peaks are sampled only after
    /// work that can change them.
    #[inline]
    pub fn handle_mut(&mut self, msg: &mut Message, from_kernel: bool) -> bool {
        self.stats.calls += 1;
        let replied = match call_index(msg.mtype) {
            Some(c) => self.request(c, msg),
            None => self.special(msg, from_kernel),
        };
        if self.sanity.is_some() {
            self.check_after_message();
        }
        replied
    }

    /// A request with call index `c`: ACL, call, result.
    #[inline(always)]
    fn request(&mut self, c: usize, msg: &mut Message) -> bool {
        let Some((caller, proc)) = self.slots.live_slot(msg.source) else {
            msg.mtype = self.refuse(Errno::ENOSYS);
            return true;
        };
        // Allowed and implemented: one bit test of the caller's mask restricted to the
        // table's registered calls.
        let allowed = self.acl.mask(proc.acl).0 & Self::IMPLEMENTED.0;
        if allowed & (1 << c) == 0 {
            msg.mtype = self.refuse(Errno::ENOSYS);
            return true;
        }
        self.stats.per_call[c] += 1;
        let result = (Self::HANDLERS[c])(self, caller, msg);
        if !NO_FRAMES.allows(c) {
            self.note_peaks();
        }
        msg.mtype = match result {
            Ok(Reply::Now) => OK,
            Ok(Reply::Suspend) => return false,
            Err(e) => e.code(),
        };
        true
    }

    /// Counts a refusal; returns the code of `e`.
    #[cold]
    #[inline(never)]
    fn refuse(&mut self, e: Errno) -> i32 {
        self.stats.refused += 1;
        e.code()
    }

    /// Messages outside the call table: page faults (kernel only), notifications, unknown
    /// numbers.
    #[inline]
    fn special(&mut self, msg: &mut Message, from_kernel: bool) -> bool {
        if msg.mtype == VM_PAGEFAULT {
            if !from_kernel {
                self.stats.faked_faults += 1;
                msg.mtype = self.refuse(Errno::EPERM);
                return true;
            }
            calls::fault::do_pagefault(self, msg);
            self.note_peaks();
            return false;
        }
        if (NOTIFY_MESSAGE..NOTIFY_MESSAGE + 0x100).contains(&msg.mtype) {
            self.stats.notifications += 1;
            return false;
        }
        msg.mtype = self.refuse(Errno::ENOSYS);
        true
    }

    /// Per-message sanity checking ([`VmConfig::sanity`]).
    #[cold]
    #[inline(never)]
    fn check_after_message(&mut self) {
        if let Some(level) = self.sanity {
            if let Err(e) = self.check_invariants(level) {
                self.stats.sanity_failures += 1;
                self.sanity_error.get_or_insert(e);
            }
        }
    }

    /// The name of call index `c` in the dispatch table.
    pub fn call_table_name(c: usize) -> Option<&'static str> {
        Self::CALLS.get(c).map(|e| e.1)
    }

    /// The handlers alone (one word per entry), read on the request path; entries without
    /// a handler hold one that is never called (their bit is clear in [`Self::IMPLEMENTED`]).
    const HANDLERS: [Handler<F, P>; NR_VM_CALLS] = {
        let mut h: [Handler<F, P>; NR_VM_CALLS] = [Self::unregistered; NR_VM_CALLS];
        let mut i = 0;
        while i < NR_VM_CALLS {
            if let Some(f) = Self::CALLS[i].0 {
                h[i] = f;
            }
            i += 1;
        }
        h
    };

    /// The call indices that have a handler.
    const IMPLEMENTED: CallMask = {
        let mut m = 0u64;
        let mut i = 0;
        while i < NR_VM_CALLS {
            if Self::CALLS[i].0.is_some() {
                m |= 1 << i;
            }
            i += 1;
        }
        CallMask(m)
    };

    /// The handler of an unregistered call number: never reached (the request path checks
    /// [`Self::IMPLEMENTED`]); answers ENOSYS should it ever be.
    fn unregistered(_vm: &mut Self, _caller: usize, _msg: &mut Message) -> CallResult {
        Err(Errno::ENOSYS)
    }

    #[inline(always)]
    fn note_peaks(&mut self) {
        let used = self.frames_in_use();
        if used > self.stats.frames_peak {
            self.stats.frames_peak = used;
        }
        if self.mem.table_frames > self.stats.pt_pages_peak {
            self.stats.pt_pages_peak = self.mem.table_frames;
        }
    }

    /// The counters.
    pub fn stats(&self) -> &VmStats {
        &self.stats
    }

    /// The first sanity failure seen by per-message checking ([`VmConfig::sanity`]).
    pub fn sanity_failure(&self) -> Option<&SanityError> {
        self.sanity_error.as_ref()
    }

    /// Free frames (the pre-zeroed pool counts as free).
    pub fn free_frames(&self) -> u64 {
        self.mem.free_frames() + self.pool.len() as u64
    }

    /// Frames in the arena.
    pub fn total_frames(&self) -> u64 {
        self.mem.arena.frames()
    }

    /// Frames in use, page tables included.
    pub fn frames_in_use(&self) -> u64 {
        self.total_frames() - self.free_frames()
    }

    /// Frames used as page tables now.
    pub fn pt_pages(&self) -> u64 {
        self.mem.table_frames
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
        &mut self.mem.alloc
    }

    /// The fork policy.
    pub fn fork_policy(&self) -> ForkPolicy {
        self.fork_policy
    }

    /// The zeroing policy.
    pub fn zero_policy(&self) -> ZeroPolicy {
        self.zero_policy
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
        P::hw_translate(&mut self.mem.arena, root, va, access)
    }

    /// Reads a process's memory as VM does with `sys_datacopy`: the range is made present
    /// first (a kernel memory request), then copied.
    ///
    /// # Errors
    /// `EFAULT` for an address outside the process's regions, `ENOMEM`.
    pub(crate) fn copy_from_user(&mut self, slot: usize, va: VirtAddr, buf: &mut [u8]) -> Result<(), Errno> {
        calls::fault::handle_memory(self, slot, va, buf.len() as u64, false)?;
        let root = self.slots.get(slot).root;
        let mut done = 0usize;
        while done < buf.len() {
            let at = VirtAddr(va.0 + done as u64);
            let m = P::translate(&self.mem.arena, root, at).ok_or(Errno::EFAULT)?;
            if !self.mem.arena.contains(m.frame) {
                return Err(Errno::EFAULT);
            }
            let off = at.page_offset() as usize;
            let n = (PAGE_SIZE as usize - off).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&self.mem.arena.frame(m.frame)[off..off + n]);
            done += n;
        }
        Ok(())
    }

    /// Writes into a process's memory as VM does with `sys_datacopy` (the range is made
    /// present and writable first).
    ///
    /// # Errors
    /// `EFAULT` for an address outside the process's writable regions, `ENOMEM`.
    pub(crate) fn copy_to_user(&mut self, slot: usize, va: VirtAddr, data: &[u8]) -> Result<(), Errno> {
        calls::fault::handle_memory(self, slot, va, data.len() as u64, true)?;
        let root = self.slots.get(slot).root;
        let mut done = 0usize;
        while done < data.len() {
            let at = VirtAddr(va.0 + done as u64);
            let m = P::translate(&self.mem.arena, root, at).ok_or(Errno::EFAULT)?;
            if !self.mem.arena.contains(m.frame) {
                return Err(Errno::EFAULT);
            }
            let off = at.page_offset() as usize;
            let n = (PAGE_SIZE as usize - off).min(data.len() - done);
            self.mem.arena.frame_mut(m.frame)[off..off + n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
        Ok(())
    }

    /// The kernel's memory request (`SIGKMEM` → `do_memory` → `handle_memory`): makes
    /// `[va, va + len)` of `ep` present (and writable if `write`) before a kernel copy.
    ///
    /// # Errors
    /// `EINVAL`/`EDEADSRCDST` for a bad endpoint, `EFAULT` when part of the range is not
    /// in a region or not writable for a write, `ENOMEM`.
    pub fn kernel_memory_request(
        &mut self,
        ep: Endpoint,
        va: VirtAddr,
        len: u64,
        write: bool,
    ) -> Result<(), Errno> {
        let slot = self.slots.lookup(ep)?;
        self.stats.kernel_requests += 1;
        calls::fault::handle_memory(self, slot, va, len, write)
    }

    /// Reads `buf.len()` bytes of a process's memory from `va` after making them present
    /// (a kernel copy); used by tests and the replayer to check contents.
    ///
    /// # Errors
    /// As [`Vm::kernel_memory_request`].
    pub fn read_process(&mut self, ep: Endpoint, va: VirtAddr, buf: &mut [u8]) -> Result<(), Errno> {
        let slot = self.slots.lookup(ep)?;
        self.copy_from_user(slot, va, buf)
    }

    /// Writes bytes into a process's memory after making them present and writable (a
    /// kernel copy, as VFS and PM do); used to pass argument blocks.
    ///
    /// # Errors
    /// As [`Vm::kernel_memory_request`].
    pub fn write_process(&mut self, ep: Endpoint, va: VirtAddr, data: &[u8]) -> Result<(), Errno> {
        let slot = self.slots.lookup(ep)?;
        self.copy_to_user(slot, va, data)
    }

    /// Reads bytes of the arena behind a present mapping (the soft MMU's data path).
    pub(crate) fn arena(&self) -> &Arena {
        &self.mem.arena
    }

    /// Writable arena (the soft MMU's data path).
    pub(crate) fn arena_mut(&mut self) -> &mut Arena {
        &mut self.mem.arena
    }
}
