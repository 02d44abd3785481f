//! One test per defect of the 2010 server (minix-vm.md §21) that applies to this design,
//! showing the fixed behaviour. Defects that belong to other components (RS's mask push,
//! ISA memory zones, page 0, TLB shootdown, segment mode) are noted where they are skipped.

mod support;

use support::*;
use vmstorm_core::acl::CallMask;
use vmstorm_core::client::{self, MapFlags, MapProt, MmapArgs, Touch, TouchError};
use vmstorm_core::endpoint::*;
use vmstorm_core::layout::{BOOT_DATA_VA, TEXT_BASE};
use vmstorm_core::message::*;
use vmstorm_core::ForkPolicy;
use vmstorm_core::*;

type V = Vm<Bitset, X86_64>;
const R: Access = Access { write: false, user: true };
const W: Access = Access { write: true, user: true };

fn vm() -> V {
    boot::<Bitset, X86_64>(ForkPolicy::Cow)
}

fn reply(vm: &mut V, m: &Message) -> i32 {
    let r = vm.handle(m, false).expect("a reply");
    check(vm);
    r.mtype
}

#[test]
fn d01_faked_pagefault_is_refused_and_counted() {
    let mut vm = vm();
    let p = child(&mut vm);
    let a = anon(&mut vm, p, PAGE_SIZE);
    let mut m = Message::new(p, VM_PAGEFAULT);
    m.set_m1_p1(a.0).set_m1_i2(2);
    let before = vm.snapshot();
    assert_eq!(reply(&mut vm, &m), Errno::EPERM.code());
    assert_eq!(vm.stats().faked_faults, 1);
    assert_eq!(vm.snapshot(), before, "the fault was not handled");
    // A protection fault on an unmapped address from the kernel: signalled, VM runs on.
    m.set_m1_p1(0x10).set_m1_i2(7);
    assert_eq!(vm.handle(&m, true), None);
    assert_eq!(vm.stats().signalled_faults, 1);
    check(&vm);
}

#[test]
fn d02_strange_sources_are_refused_not_panics() {
    let mut vm = vm();
    let p = child(&mut vm);
    client::exit(&mut vm, p).unwrap();
    for src in [p, Endpoint(-5), ANY, NONE, SELF, Endpoint(i32::MIN), Endpoint::new(3, 4000)] {
        let mut m = Message::new(src, VM_MMAP);
        m.set_m5_l2(4096).set_m5_i1(-1);
        // `vm_isokendpt`'s answer: the exited process is dead, and i32::MIN decodes to slot
        // 0 of another generation (stale); the rest name no process slot.
        let want = if src == p || src == Endpoint(i32::MIN) { Errno::EDEADSRCDST } else { Errno::EINVAL };
        assert_eq!(reply(&mut vm, &m), want.code(), "{src:?}");
        let mut f = Message::new(src, VM_PAGEFAULT);
        f.set_m1_p1(0x400000);
        assert_eq!(vm.handle(&f, true), None);
    }
    assert!(vm.stats().refused >= 14);
    assert_eq!(client::touch(&mut vm, p, TEXT_BASE, R), Err(TouchError::BadEndpoint));
}

#[test]
fn d03_mmap_arguments_are_validated() {
    let mut vm = vm();
    let p = child(&mut vm);
    for (hint, len) in [(0, 0), (0, u64::MAX), (0, u64::MAX - 100), (u64::MAX - 4096, 4096), (1 << 60, 4096)]
    {
        let args = MmapArgs { addr: (hint != 0).then_some(VirtAddr(hint)), ..MmapArgs::anon(len) };
        assert_eq!(client::mmap(&mut vm, p, &args), Err(Errno::EINVAL), "hint {hint:#x} len {len:#x}");
        check(&vm);
    }
}

#[test]
fn d04_shared_memory_without_prealloc_can_be_touched() {
    let mut vm = vm();
    let p = child(&mut vm);
    let a = client::mmap(
        &mut vm,
        p,
        &MmapArgs { flags: MapFlags::ANON | MapFlags::SHARED, ..MmapArgs::anon(PAGE_SIZE) },
    )
    .unwrap();
    assert_eq!(client::touch(&mut vm, p, a, W), Ok(Touch::Hit), "shared memory is preallocated");
    check(&vm);
}

#[test]
fn d05_unaligned_physical_address_is_rounded() {
    let mut vm = vm();
    let p = child(&mut vm);
    let phys = vm.total_frames() * PAGE_SIZE + 0x123;
    let mut m = Message::new(p, VM_MAP_PHYS);
    m.set_m1_i1(SELF.0).set_m1_p2(phys).set_m1_i2(100);
    let r = vm.handle(&m, false).unwrap();
    assert_eq!(r.mtype, 0);
    let va = VirtAddr(r.m1_p3());
    assert_eq!(va.page_offset(), 0x123);
    assert_eq!(vm.mmu_translate(p, va, R).unwrap().frame, Frame(phys / PAGE_SIZE));
    check(&vm);
}

#[test]
fn d06_process_without_regions_does_not_panic_lookups() {
    let mut vm = vm();
    let p = child(&mut vm);
    client::rs_set_priv(&mut vm, p, CallMask::ALL).unwrap();
    client::munmap(&mut vm, p, VirtAddr(0), 1 << 40).unwrap();
    assert!(vm.regions(p).unwrap().is_empty());
    let mut m = Message::new(p, VM_GETPHYS);
    m.set_m2_i1(p.0).set_m2_l1(0x400000);
    assert_eq!(reply(&mut vm, &m), Errno::EINVAL.code());
    let mut m = Message::new(p, VM_UNMAP_PHYS);
    m.set_m1_i1(SELF.0).set_m1_p1(0x400000);
    assert_eq!(reply(&mut vm, &m), Errno::EINVAL.code());
    let mut m = Message::new(p, VM_INFO);
    m.set_m2_i1(3).set_m2_i2(p.0).set_m2_i3(5).set_m2_p1(0x1000);
    assert_eq!(reply(&mut vm, &m), 0, "nothing to list, nothing copied");
    assert!(matches!(client::touch(&mut vm, p, TEXT_BASE, R), Err(TouchError::Signalled(_))));
}

#[test]
fn d07_full_dma_table_and_exit_with_dma() {
    let mut vm = vm();
    let p = child(&mut vm);
    let mut m = Message::new(PM_PROC_NR, VM_ADDDMA);
    for i in 0..16 {
        m.set_m2_i1(p.0).set_m2_l1(i * 4096).set_m2_l2(4096);
        assert_eq!(reply(&mut vm, &m), 0);
    }
    m.set_m2_l1(99 * 4096);
    assert_eq!(reply(&mut vm, &m), Errno::ENOSPC.code());
    client::exit(&mut vm, p).unwrap();
    check(&vm);
    assert_eq!(reply(&mut vm, &m), Errno::EINVAL.code(), "dead target");
    let q = child(&mut vm);
    m.set_m2_i1(q.0);
    assert_eq!(reply(&mut vm, &m), 0, "the exit released the table");
}

#[test]
fn d08_unmapping_needs_no_memory() {
    let mut vm = boot_failing::<Bitset, X86_64>(ForkPolicy::Cow);
    let p = child(&mut vm);
    let a = anon(&mut vm, p, 8 * PAGE_SIZE);
    put(&mut vm, p, a, &[1; 8 * 4096]);
    vm.allocator_mut().fail_from(1);
    client::munmap(&mut vm, p, VirtAddr(a.0 + PAGE_SIZE), 2 * PAGE_SIZE).unwrap();
    client::brk(&mut vm, p, BOOT_DATA_VA).unwrap();
    client::exit(&mut vm, p).unwrap();
    check(&vm);
}

#[test]
fn d09_more_than_255_sharers() {
    let cfg = VmConfig { slots: 512, ..VmConfig::with_bytes(64 << 20) };
    let mut vm = Vm::<Bitset, I386>::boot(cfg).unwrap();
    let p = child(&mut vm);
    put(&mut vm, p, BOOT_DATA_VA, b"shared by 300");
    let frame = vm.mmu_translate(p, BOOT_DATA_VA, R).unwrap().frame;
    let kids: Vec<_> = (0..300).map(|_| client::fork(&mut vm, p).unwrap()).collect();
    check(&vm);
    assert_eq!(vm.phys().refs().get(frame), 301);
    put(&mut vm, kids[299], BOOT_DATA_VA, b"mine");
    assert_eq!(get(&mut vm, kids[0], BOOT_DATA_VA, 13), b"shared by 300");
    for k in kids {
        client::exit(&mut vm, k).unwrap();
    }
    check(&vm);
    assert_eq!(vm.phys().refs().get(frame), 1);
}

#[test]
fn d10_unmap_phys_of_another_process_is_refused() {
    let mut vm = vm();
    let drv = child(&mut vm);
    let evil = child(&mut vm);
    let mut m = Message::new(drv, VM_MAP_PHYS);
    m.set_m1_i1(SELF.0).set_m1_p2(vm.total_frames() * PAGE_SIZE).set_m1_i2(4096);
    let va = vm.handle(&m, false).unwrap().m1_p3();
    let mut u = Message::new(evil, VM_UNMAP_PHYS);
    u.set_m1_i1(drv.0).set_m1_p1(va);
    assert_eq!(reply(&mut vm, &u), Errno::EPERM.code());
    assert!(vm.mmu_translate(drv, VirtAddr(va), R).is_ok());
}

#[test]
fn d11_d12_privileged_calls_only_from_rs() {
    let mut vm = vm();
    let p = child(&mut vm);
    client::rs_set_priv(&mut vm, p, CallMask::ALL).unwrap();
    let mut m = Message::new(p, VM_RS_SET_PRIV);
    m.set_m2_i1(p.0).set_m2_l1(0);
    assert_eq!(reply(&mut vm, &m), Errno::EPERM.code(), "the ACL bit alone is not enough");
    let mut u = Message::new(p, VM_RS_UPDATE);
    u.set_m1_i1(p.0).set_m1_i2(INIT_PROC_NR.0);
    assert_eq!(reply(&mut vm, &u), Errno::EPERM.code());
    let mut m = Message::new(PM_PROC_NR, VM_RS_SET_PRIV);
    m.set_m2_i1(p.0);
    assert_eq!(reply(&mut vm, &m), Errno::ENOSYS.code());
}

#[test]
fn d13_prot_is_honoured() {
    let mut vm = vm();
    let p = child(&mut vm);
    assert!(matches!(client::touch(&mut vm, p, TEXT_BASE, W), Err(TouchError::Signalled(_))));
    let ro =
        client::mmap(&mut vm, p, &MmapArgs { prot: MapProt::READ, ..MmapArgs::anon(PAGE_SIZE) }).unwrap();
    assert!(matches!(client::touch(&mut vm, p, ro, W), Err(TouchError::Signalled(_))));
    let mut m = Message::new(p, VM_MAP_PHYS);
    m.set_m1_i1(SELF.0).set_m1_p2(vm.total_frames() * PAGE_SIZE).set_m1_i2(4096);
    let va = vm.handle(&m, false).unwrap().m1_p3();
    assert!(vm.mmu_translate(p, VirtAddr(va), R).unwrap().flags.contains(PageFlags::NOCACHE));
    check(&vm);
}

#[test]
fn d15_align64k_is_honoured() {
    let mut vm = vm();
    let p = child(&mut vm);
    let _skew = client::mmap(
        &mut vm,
        p,
        &MmapArgs { flags: MapFlags::ANON | MapFlags::CONTIG, ..MmapArgs::anon(3 * PAGE_SIZE) },
    )
    .unwrap();
    let args = MmapArgs {
        flags: MapFlags::ANON | MapFlags::CONTIG | MapFlags::ALIGN64K,
        ..MmapArgs::anon(5 * PAGE_SIZE)
    };
    let a = client::mmap(&mut vm, p, &args).unwrap();
    assert_eq!(vm.mmu_translate(p, a, R).unwrap().frame.0 % 16, 0);
    check(&vm);
}

#[test]
fn d17_d18_dma_bookkeeping_and_initialized_outputs() {
    let mut vm = vm();
    let p = child(&mut vm);
    let mut m = Message::new(PM_PROC_NR, VM_ADDDMA);
    m.set_m2_i1(p.0).set_m2_l1(0x1000).set_m2_l2(0x1000);
    assert_eq!(reply(&mut vm, &m), 0);
    m.mtype = VM_DELDMA;
    assert_eq!(reply(&mut vm, &m), 0);
    assert!(client::fork(&mut vm, p).is_ok(), "the last DELDMA clears the DMA flag");
    let mut g = Message::new(PM_PROC_NR, VM_GETDMA);
    g.set_m2_i1(77).set_m2_l1(77);
    let r = vm.handle(&g, false).unwrap();
    assert_eq!((r.mtype, r.m2_i1(), r.m2_l1()), (Errno::EAGAIN.code(), 0, 0));
    client::rs_set_priv(&mut vm, p, CallMask::ALL).unwrap();
    let r = vm.handle(&Message::new(p, VM_QUERY_EXIT), false).unwrap();
    assert_eq!((r.mtype, Endpoint(r.m2_i1()), r.m2_i2()), (0, NONE, 0));
    let mut q = Message::new(p, VM_GETREF);
    q.set_m2_i1(p.0).set_m2_l1(0x5555).set_m2_i2(1234);
    let r = vm.handle(&q, false).unwrap();
    assert_eq!((r.mtype, r.m2_i2()), (Errno::EINVAL.code(), 0));
}

#[test]
fn d20_last_sharer_gets_write_access_back_without_a_copy() {
    let mut vm = vm();
    let p = child(&mut vm);
    put(&mut vm, p, BOOT_DATA_VA, b"x");
    let c = client::fork(&mut vm, p).unwrap();
    client::exit(&mut vm, c).unwrap();
    let copies = vm.stats().cow_copies;
    put(&mut vm, p, BOOT_DATA_VA, b"y");
    assert_eq!(vm.stats().cow_copies, copies);
    assert!(vm.stats().cow_reuses >= 1);
}

#[test]
fn d21_brk_shrink_frees_and_regrows_zeroed() {
    let mut vm = vm();
    let p = child(&mut vm);
    let b = vm.brk_of(p).unwrap();
    let free = vm.free_frames();
    client::brk(&mut vm, p, VirtAddr(b.0 + 4 * PAGE_SIZE)).unwrap();
    put(&mut vm, p, VirtAddr(b.0 + 3 * PAGE_SIZE), b"old heap");
    client::brk(&mut vm, p, b).unwrap();
    assert_eq!(vm.free_frames(), free);
    client::brk(&mut vm, p, VirtAddr(b.0 + 4 * PAGE_SIZE)).unwrap();
    assert_eq!(get(&mut vm, p, VirtAddr(b.0 + 3 * PAGE_SIZE), 8), [0; 8]);
    check(&vm);
}

#[test]
fn d22_munmap_any_part_including_the_heap() {
    let mut vm = vm();
    let p = child(&mut vm);
    let a = anon(&mut vm, p, 10 * PAGE_SIZE);
    client::munmap(&mut vm, p, VirtAddr(a.0 + 9 * PAGE_SIZE), PAGE_SIZE).unwrap();
    client::munmap(&mut vm, p, VirtAddr(a.0 + 3 * PAGE_SIZE), 2 * PAGE_SIZE).unwrap();
    assert_eq!(vm.regions(p).unwrap().iter().filter(|r| r.start.0 >= a.0).count(), 2);
    client::munmap(&mut vm, p, BOOT_DATA_VA, 4 * PAGE_SIZE).unwrap();
    let b = vm.brk_of(p).unwrap();
    client::brk(&mut vm, p, VirtAddr(b.0 + PAGE_SIZE)).unwrap();
    put(&mut vm, p, b, b"heap after munmap");
    check(&vm);
}

#[test]
fn d23_failed_fork_leaves_the_slot_free() {
    let mut vm = boot_failing::<Bitset, X86_64>(ForkPolicy::Cow);
    let slot = vm.find_free_slot().unwrap();
    vm.allocator_mut().fail_at(1);
    assert_eq!(client::fork(&mut vm, INIT_PROC_NR), Err(Errno::ENOMEM));
    assert_eq!(vm.endpoint_of_slot(slot), None);
    assert_eq!(vm.find_free_slot(), Some(slot));
    check(&vm);
}

#[test]
fn d24_rs_update_validates_before_swapping() {
    let mut vm = vm();
    let a = child(&mut vm);
    put(&mut vm, a, BOOT_DATA_VA, b"a");
    let before = vm.snapshot();
    let mut u = Message::new(RS_PROC_NR, VM_RS_UPDATE);
    u.set_m1_i1(a.0).set_m1_i2(Endpoint::new(9, 150).0);
    assert_eq!(reply(&mut vm, &u), Errno::EINVAL.code());
    assert_eq!(vm.snapshot(), before);
}

#[test]
fn d25_copy_on_write_is_per_page() {
    let mut vm = vm();
    let p = child(&mut vm);
    let pre = MmapArgs { flags: MapFlags::ANON | MapFlags::PREALLOC, ..MmapArgs::anon(100 * PAGE_SIZE) };
    let a = client::mmap(&mut vm, p, &pre).unwrap();
    let c = client::fork(&mut vm, p).unwrap();
    let copies = vm.stats().cow_copies;
    put(&mut vm, c, VirtAddr(a.0 + 50 * PAGE_SIZE), b"one page");
    assert_eq!(vm.stats().cow_copies, copies + 1);
}

#[test]
fn d30_memory_request_on_present_range_is_ok() {
    let mut vm = vm();
    let p = child(&mut vm);
    vm.kernel_memory_request(p, BOOT_DATA_VA, 100, false).unwrap();
    vm.kernel_memory_request(p, BOOT_DATA_VA, 100, false).unwrap();
    check(&vm);
}

#[test]
fn stale_endpoints_are_refused() {
    let mut vm = vm();
    let p = child(&mut vm);
    let slot = p.slot() as usize;
    client::exit(&mut vm, p).unwrap();
    let q = client::fork_into(&mut vm, INIT_PROC_NR, slot).unwrap();
    assert_eq!(q.slot(), p.slot());
    assert_ne!(q, p);
    assert_eq!(vm.check_endpoint(p), Err(Errno::EDEADSRCDST));
    assert_eq!(client::brk(&mut vm, p, BOOT_DATA_VA), Err(Errno::EINVAL));
    assert_eq!(client::exec(&mut vm, p, &client::ExecImage::default()), Err(Errno::ESRCH));
    assert_eq!(vm.check_endpoint(Endpoint::new(1, 100_000)), Err(Errno::EINVAL));
}
