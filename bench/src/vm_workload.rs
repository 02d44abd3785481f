//! Server-level workloads for the benches: a booted [`Vm`] with INIT ready, and the
//! end-to-end operations of DESIGN §6 as PM, libc and the kernel would send them —
//! dispatch of a trivial call, demand-zero and COW faults through a user write, fork of
//! many mapped pages, fork+exec+exit of a small image, mmap+munmap, brk.
//!
//! Measures the seed's `main()` loop body (`servers/vm/main.c`) and the call handlers
//! behind it end to end.

use vmstorm_core::client::{self, ExecImage, MapFlags, MmapArgs};
use vmstorm_core::endpoint::{INIT_PROC_NR, PM_PROC_NR};
use vmstorm_core::message::{Message, VM_GETDMA};
use vmstorm_core::server::{FolioSize, HugePolicy, Vm, VmConfig, ZeroPolicy};
use vmstorm_core::ForkPolicy;
use vmstorm_core::{Access, ArenaConfig, Endpoint, FrameAllocator, PagingFormat, VirtAddr};

/// A user write.
pub const WRITE: Access = Access { write: true, user: true };

/// The small image of the exec benches: 64 KiB text, 16 KiB data, 16 KiB bss, 64 KiB stack.
pub const SMALL_IMAGE: ExecImage =
    ExecImage { text_bytes: 64 << 10, data_bytes: 16 << 10, bss_bytes: 16 << 10, stack_bytes: 64 << 10 };

/// Boots a server over an arena of `bytes` bytes (transparent huge pages asked for).
/// With `prefault`, every frame the host backs the arena with is touched now, by mapping
/// almost all free memory preallocated and unmapping it, so no host page fault lands in a
/// timed region later.
///
/// # Panics
/// If the server does not boot.
pub fn boot<F: FrameAllocator, P: PagingFormat>(
    bytes: u64,
    fork: ForkPolicy,
    zero: ZeroPolicy,
    prefault: bool,
) -> Vm<F, P> {
    boot_large(bytes, fork, zero, prefault, Large::default())
}

/// The large-page policies of a bench server: anonymous folio size and huge pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Large {
    /// Anonymous folio size of demand-zero write faults.
    pub folio: FolioSize,
    /// Page-directory-level (2 MiB / 4 MiB) pages.
    pub huge: HugePolicy,
}

/// [`boot`] with large anonymous folios and huge pages as `large` says.
pub fn boot_large<F: FrameAllocator, P: PagingFormat>(
    bytes: u64,
    fork: ForkPolicy,
    zero: ZeroPolicy,
    prefault: bool,
    large: Large,
) -> Vm<F, P> {
    let arena = ArenaConfig { bytes, huge_pages: true, file: None };
    let config = VmConfig { arena, fork, zero, folio: large.folio, huge: large.huge, ..VmConfig::default() };
    let mut vm = Vm::boot(config).expect("boot");
    if prefault {
        // Leave room for the page tables of the preallocated region itself.
        let pages = vm.free_frames().saturating_sub(vm.free_frames() / 64 + 64);
        let args = MmapArgs {
            flags: MapFlags::ANON | MapFlags::PRIVATE | MapFlags::PREALLOC,
            ..MmapArgs::anon(pages << 12)
        };
        let va = client::mmap(&mut vm, INIT_PROC_NR, &args).expect("prefault mmap");
        client::munmap(&mut vm, INIT_PROC_NR, va, pages << 12).expect("prefault munmap");
    }
    vm.idle();
    vm
}

/// An untouched private anonymous region of `pages` pages in `proc`.
///
/// # Panics
/// If the server refuses.
pub fn map_untouched<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    proc: Endpoint,
    pages: u64,
) -> VirtAddr {
    client::mmap(vm, proc, &MmapArgs::anon(pages << 12)).expect("mmap")
}

/// A private anonymous region of `pages` pages in `proc`, every page present (allocated
/// and zeroed at map time, as MAP_PREALLOC does).
///
/// # Panics
/// If the server refuses.
pub fn map_present<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    proc: Endpoint,
    pages: u64,
) -> VirtAddr {
    let args = MmapArgs {
        flags: MapFlags::ANON | MapFlags::PRIVATE | MapFlags::PREALLOC,
        ..MmapArgs::anon(pages << 12)
    };
    client::mmap(vm, proc, &args).expect("mmap prealloc")
}

/// Writes one byte into each of `pages` pages from `va`, as a program does (will-it-scale's
/// `page_fault1` writes one byte per page too): the access faults when the page is absent
/// or shared copy-on-write, and the byte is then really stored into the page's frame, so
/// the frame the fault handed out is touched by the CPU like Linux's would be.
///
/// # Panics
/// If an access is refused.
#[inline]
pub fn touch_pages<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    proc: Endpoint,
    va: VirtAddr,
    pages: u64,
) {
    for i in 0..pages {
        client::write_user(vm, proc, va.add_pages(i), &[1]).expect("write");
    }
}

/// Writes one byte into `count` pages from `va`, `stride` pages apart (with `stride` the
/// pages of one leaf table: one write under each of `count` leaf tables).
///
/// # Panics
/// If an access is refused.
pub fn touch_stride<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    proc: Endpoint,
    va: VirtAddr,
    count: u64,
    stride: u64,
) {
    for i in 0..count {
        client::write_user(vm, proc, va.add_pages(i * stride), &[1]).expect("write");
    }
}

/// PM asking for DMA memory to release when none is pending: the cheapest call there is
/// (endpoint check, range check, ACL check, a handler that only fills the reply — EAGAIN).
pub fn trivial_call() -> Message {
    Message::new(PM_PROC_NR, VM_GETDMA)
}

/// One dispatch of [`trivial_call`]; returns the reply type.
#[inline]
pub fn dispatch<F: FrameAllocator, P: PagingFormat>(vm: &mut Vm<F, P>, msg: &Message) -> i32 {
    vm.handle(msg, false).map_or(i32::MIN, |r| r.mtype)
}

/// One dispatch of [`trivial_call`] in place, as MINIX's VM answers from the buffer it
/// received into ([`Vm::handle_mut`]): the kernel's copy of the next request into the
/// buffer is the IPC's cost, so only its type is written back; returns the reply type.
#[inline]
pub fn dispatch_in_place<F: FrameAllocator, P: PagingFormat>(vm: &mut Vm<F, P>, msg: &mut Message) -> i32 {
    msg.mtype = VM_GETDMA;
    if vm.handle_mut(msg, false) {
        msg.mtype
    } else {
        i32::MIN
    }
}

/// fork + exec of [`SMALL_IMAGE`] + exit, as PM runs a small program.
///
/// # Panics
/// If a step is refused.
pub fn fork_exec_exit<F: FrameAllocator, P: PagingFormat>(vm: &mut Vm<F, P>, parent: Endpoint) {
    let child = client::fork(vm, parent).expect("fork");
    client::exec(vm, child, &SMALL_IMAGE).expect("exec");
    client::exit(vm, child).expect("exit");
}

/// fork + exit of a small process (will-it-scale's fork without the exec).
///
/// # Panics
/// If a step is refused.
pub fn fork_exit<F: FrameAllocator, P: PagingFormat>(vm: &mut Vm<F, P>, parent: Endpoint) {
    let child = client::fork(vm, parent).expect("fork");
    client::exit(vm, child).expect("exit");
}

/// mmap of an untouched private anonymous region and its munmap (will-it-scale mmap1).
///
/// # Panics
/// If the server refuses.
pub fn mmap_munmap<F: FrameAllocator, P: PagingFormat>(vm: &mut Vm<F, P>, proc: Endpoint, args: &MmapArgs) {
    let va = client::mmap(vm, proc, args).expect("mmap");
    client::munmap(vm, proc, va, args.len).expect("munmap");
}

/// A brk grow-by-a-page / shrink-back pair (will-it-scale brk1).
///
/// # Panics
/// If the server refuses.
#[inline]
pub fn brk_pair<F: FrameAllocator, P: PagingFormat>(vm: &mut Vm<F, P>, proc: Endpoint, base: VirtAddr) {
    client::brk(vm, proc, base.add_pages(1)).expect("brk up");
    client::brk(vm, proc, base).expect("brk down");
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmstorm_core::{Bitset, I386, X86_64};

    fn every_operation<P: PagingFormat>() {
        let mut vm = boot::<Bitset, P>(64 << 20, ForkPolicy::Cow, ZeroPolicy::OnFault, true);
        let free = vm.free_frames();
        assert_eq!(dispatch(&mut vm, &trivial_call()), vmstorm_core::Errno::EAGAIN.code());
        let va = map_untouched(&mut vm, INIT_PROC_NR, 16);
        touch_pages(&mut vm, INIT_PROC_NR, va, 16);
        assert!(vm.free_frames() + 16 <= free, "16 pages (and their tables) present");
        let child = client::fork(&mut vm, INIT_PROC_NR).unwrap();
        let cow = vm.stats().cow_copies;
        touch_pages(&mut vm, child, va, 16);
        assert_eq!(vm.stats().cow_copies, cow + 16);
        client::exit(&mut vm, child).unwrap();
        client::munmap(&mut vm, INIT_PROC_NR, va, 16 << 12).unwrap();
        let p = map_present(&mut vm, INIT_PROC_NR, 8);
        client::munmap(&mut vm, INIT_PROC_NR, p, 8 << 12).unwrap();
        fork_exec_exit(&mut vm, INIT_PROC_NR);
        let base = vm.brk_of(INIT_PROC_NR).unwrap();
        brk_pair(&mut vm, INIT_PROC_NR, base);
        assert_eq!(vm.brk_of(INIT_PROC_NR).unwrap(), base);
        assert_eq!(vm.free_frames(), free, "every operation gives its frames back");
    }

    #[test]
    fn every_server_operation_runs_and_frees_its_frames() {
        every_operation::<X86_64>();
        every_operation::<I386>();
    }
}
