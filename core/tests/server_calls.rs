//! One scenario per VM call, with its error replies and the §20 semantics (test44's
//! consecutive mmap placement, demand-zero, copy-on-write isolation, exec, brk), run over
//! every allocator × paging format × fork policy, with the full invariant check after
//! every step.

mod support;

use support::*;
use vmstorm_core::acl::CallMask;
use vmstorm_core::client::{self, ExecImage, MapFlags, MapProt, MmapArgs, Touch, TouchError};
use vmstorm_core::endpoint::*;
use vmstorm_core::layout::{stack_top, BOOT_DATA_VA, TEXT_BASE};
use vmstorm_core::message::*;
use vmstorm_core::ForkPolicy;
use vmstorm_core::*;

const R: Access = Access { write: false, user: true };
const W: Access = Access { write: true, user: true };

fn send<F: FrameAllocator, P: PagingFormat>(vm: &mut Vm<F, P>, m: &Message) -> Result<Message, Errno> {
    let r = client::call(vm, m);
    check(vm);
    r
}

fn grant<F: FrameAllocator, P: PagingFormat>(vm: &mut Vm<F, P>, ep: Endpoint, calls: &[i32]) {
    let mask = CallMask::BASIC.union(CallMask::of(calls));
    client::rs_set_priv(vm, ep, mask).expect("rs_set_priv");
    check(vm);
}

fn mmap_calls<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) {
    let mut vm = boot::<F, P>(fork);
    let p = child(&mut vm);
    // test44: five 8 KiB mmaps at hint 0x90000000 land at consecutive addresses.
    let hint = VirtAddr(0x9000_0000);
    for i in 0..5 {
        let args = MmapArgs { addr: Some(hint), ..MmapArgs::anon(8192) };
        let a = client::mmap(&mut vm, p, &args).unwrap();
        check(&vm);
        assert_eq!(a, VirtAddr(0x9000_0000 + i * 8192));
    }
    // Default placement: at or above the stack top.
    let d = anon(&mut vm, p, 3 * PAGE_SIZE);
    assert!(d >= stack_top::<P>());
    // Demand zero, then contents persist.
    assert_eq!(client::touch(&mut vm, p, d, R), Ok(Touch::Faulted));
    assert_eq!(client::touch(&mut vm, p, d, R), Ok(Touch::Hit));
    assert_eq!(get(&mut vm, p, d, 16), vec![0; 16]);
    put(&mut vm, p, VirtAddr(d.0 + 4000), b"across a page boundary");
    assert_eq!(get(&mut vm, p, VirtAddr(d.0 + 4000), 22), b"across a page boundary");
    // munmap of the middle page splits the region.
    client::munmap(&mut vm, p, VirtAddr(d.0 + PAGE_SIZE), PAGE_SIZE).unwrap();
    check(&vm);
    assert!(matches!(client::touch(&mut vm, p, VirtAddr(d.0 + PAGE_SIZE), R), Err(TouchError::Signalled(_))));
    assert_eq!(get(&mut vm, p, d, 1), [0]);
    assert_eq!(get(&mut vm, p, VirtAddr(d.0 + 2 * PAGE_SIZE), 1), [0]);
    // munmap spanning several regions and a hole.
    client::munmap(&mut vm, p, hint, 10 * 8192).unwrap();
    check(&vm);
    // Errors.
    let e = |vm: &mut Vm<F, P>, a: MmapArgs| {
        let r = client::mmap(vm, p, &a);
        check(vm);
        r.unwrap_err()
    };
    assert_eq!(e(&mut vm, MmapArgs::anon(0)), Errno::EINVAL);
    assert_eq!(
        e(&mut vm, MmapArgs { addr: Some(VirtAddr(u64::MAX - 4095)), ..MmapArgs::anon(4096) }),
        Errno::EINVAL
    );
    assert_eq!(
        e(
            &mut vm,
            MmapArgs {
                flags: MapFlags::ANON | MapFlags::FIXED,
                addr: Some(VirtAddr(0x9000_0001)),
                ..MmapArgs::anon(4096)
            }
        ),
        Errno::EINVAL
    );
    assert_eq!(
        e(&mut vm, MmapArgs { prot: MapProt::from_bits_retain(0x40), ..MmapArgs::anon(4096) }),
        Errno::EINVAL
    );
    assert_eq!(e(&mut vm, MmapArgs::anon(1 << 62)), Errno::EINVAL);
    let too_big = vmstorm_core::layout::data_top::<P>().0 - stack_top::<P>().0 + PAGE_SIZE;
    assert_eq!(e(&mut vm, MmapArgs::anon(too_big)), Errno::ENOMEM);
    let mut m = Message::new(p, VM_MMAP);
    m.set_m5_l2(4096).set_m5_s2(MapFlags::ANON.bits() as i16).set_m5_i1(3);
    assert_eq!(send(&mut vm, &m).unwrap_err(), Errno::EINVAL);
    m.set_m5_s2(0);
    assert_eq!(send(&mut vm, &m).unwrap_err(), Errno::ENOSYS);
    assert_eq!(client::munmap(&mut vm, p, VirtAddr(0x9000_0000), 0), Err(Errno::EINVAL));
    assert_eq!(client::munmap(&mut vm, p, VirtAddr(0x9000_0001), 4096), Err(Errno::EINVAL));
    assert_eq!(client::munmap(&mut vm, p, VirtAddr(0xA000_0000), 4096), Err(Errno::EFAULT));
    // MAP_FIXED replaces what is there.
    let f = anon(&mut vm, p, 2 * PAGE_SIZE);
    put(&mut vm, p, f, b"old");
    let fixed =
        MmapArgs { addr: Some(f), flags: MapFlags::ANON | MapFlags::FIXED, ..MmapArgs::anon(PAGE_SIZE) };
    assert_eq!(client::mmap(&mut vm, p, &fixed), Ok(f));
    check(&vm);
    assert_eq!(get(&mut vm, p, f, 3), [0, 0, 0]);
    // MUNMAP_TEXT is munmap on the (flat) text.
    let mut m = Message::new(p, VM_MUNMAP_TEXT);
    m.set_m1_p1(TEXT_BASE.0).set_m1_p2(PAGE_SIZE);
    send(&mut vm, &m).unwrap();
    assert_eq!(
        client::touch(&mut vm, p, TEXT_BASE, R),
        Err(TouchError::Signalled(FaultCode(FaultCode::USER)))
    );
    // Preallocated and contiguous mappings are present at once.
    let before = vm.stats().zero_fills;
    let pre = MmapArgs { flags: MapFlags::ANON | MapFlags::PREALLOC, ..MmapArgs::anon(4 * PAGE_SIZE) };
    let a = client::mmap(&mut vm, p, &pre).unwrap();
    check(&vm);
    assert_eq!(client::touch(&mut vm, p, VirtAddr(a.0 + 3 * PAGE_SIZE), W), Ok(Touch::Hit));
    let c = MmapArgs {
        flags: MapFlags::ANON | MapFlags::CONTIG | MapFlags::ALIGN64K,
        ..MmapArgs::anon(4 * PAGE_SIZE)
    };
    let a = client::mmap(&mut vm, p, &c).unwrap();
    check(&vm);
    let f0 = vm.mmu_translate(p, a, R).unwrap().frame;
    let f3 = vm.mmu_translate(p, VirtAddr(a.0 + 3 * PAGE_SIZE), R).unwrap().frame;
    assert_eq!(f3.0, f0.0 + 3);
    assert_eq!(f0.0 % 16, 0);
    assert_eq!(vm.stats().zero_fills, before);
    client::exit(&mut vm, p).unwrap();
    check(&vm);
}

fn protection<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) {
    let mut vm = boot::<F, P>(fork);
    let p = child(&mut vm);
    let ro =
        client::mmap(&mut vm, p, &MmapArgs { prot: MapProt::READ, ..MmapArgs::anon(2 * PAGE_SIZE) }).unwrap();
    check(&vm);
    assert_eq!(get(&mut vm, p, ro, 4), [0; 4]);
    let signalled = vm.stats().signalled_faults;
    assert!(matches!(client::touch(&mut vm, p, ro, W), Err(TouchError::Signalled(_))));
    assert_eq!(vm.stats().signalled_faults, signalled + 1);
    // Text is not writable (PROT honoured).
    assert!(matches!(client::touch(&mut vm, p, TEXT_BASE, W), Err(TouchError::Signalled(_))));
    client::mprotect(&mut vm, p, ro, PAGE_SIZE, MapProt::RW).unwrap();
    check(&vm);
    put(&mut vm, p, ro, b"now writable");
    assert!(matches!(
        client::touch(&mut vm, p, VirtAddr(ro.0 + PAGE_SIZE), W),
        Err(TouchError::Signalled(_))
    ));
    client::mprotect(&mut vm, p, ro, 2 * PAGE_SIZE, MapProt::NONE).unwrap();
    check(&vm);
    assert!(matches!(client::touch(&mut vm, p, ro, R), Err(TouchError::Signalled(_))));
    client::mprotect(&mut vm, p, ro, 2 * PAGE_SIZE, MapProt::READ).unwrap();
    check(&vm);
    assert_eq!(get(&mut vm, p, ro, 12), b"now writable");
    assert_eq!(
        client::mprotect(&mut vm, p, VirtAddr(0xB000_0000), PAGE_SIZE, MapProt::RW),
        Err(Errno::ENOMEM)
    );
    assert_eq!(client::mprotect(&mut vm, p, VirtAddr(ro.0 + 1), PAGE_SIZE, MapProt::RW), Err(Errno::EINVAL));
    assert_eq!(
        client::mprotect(&mut vm, p, ro, PAGE_SIZE, MapProt::from_bits_retain(0x100)),
        Err(Errno::EINVAL)
    );
    // No region at all.
    assert!(matches!(client::touch(&mut vm, p, VirtAddr(0x1000), R), Err(TouchError::Signalled(_))));
    assert_eq!(
        client::touch(&mut vm, Endpoint::new(7, 200), VirtAddr(0x1000), R),
        Err(TouchError::BadEndpoint)
    );
    client::exit(&mut vm, p).unwrap();
    check(&vm);
}

fn brk_calls<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) {
    let mut vm = boot::<F, P>(fork);
    let p = child(&mut vm);
    let b0 = vm.brk_of(p).unwrap();
    let free0 = vm.free_frames();
    let pt0 = vm.pt_pages();
    client::brk(&mut vm, p, VirtAddr(b0.0 + 10 * PAGE_SIZE + 5)).unwrap();
    check(&vm);
    put(&mut vm, p, VirtAddr(b0.0 + 10 * PAGE_SIZE), b"heap");
    let used = free0 - vm.free_frames();
    assert!(used >= 1);
    client::brk(&mut vm, p, b0).unwrap();
    check(&vm);
    // (Under on-demand fork the first write copied a leaf table shared with the parent.)
    assert_eq!(vm.free_frames() + (vm.pt_pages() - pt0), free0, "shrinking brk frees the pages");
    assert_eq!(
        client::touch(&mut vm, p, VirtAddr(b0.0 + 10 * PAGE_SIZE), R),
        Err(TouchError::Signalled(FaultCode(FaultCode::USER)))
    );
    client::brk(&mut vm, p, VirtAddr(b0.0 + 3)).unwrap();
    assert_eq!(vm.brk_of(p).unwrap(), VirtAddr(b0.0 + 3));
    assert_eq!(client::brk(&mut vm, p, VirtAddr(0x1000)), Err(Errno::ENOMEM));
    assert_eq!(client::brk(&mut vm, p, VirtAddr(stack_top::<P>().0 - 4096)), Err(Errno::ENOMEM));
    assert_eq!(client::brk(&mut vm, Endpoint::new(9, 99), b0), Err(Errno::EINVAL));
    check(&vm);
    client::exit(&mut vm, p).unwrap();
    check(&vm);
}

fn fork_exec_exit<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) {
    let mut vm = boot::<F, P>(fork);
    let base = vm.free_frames();
    let p = child(&mut vm);
    let a = anon(&mut vm, p, PAGE_SIZE);
    put(&mut vm, p, a, b"parent");
    let c = client::fork(&mut vm, p).unwrap();
    check(&vm);
    assert_eq!(get(&mut vm, c, a, 6), b"parent");
    put(&mut vm, c, a, b"child!");
    assert_eq!(get(&mut vm, p, a, 6), b"parent");
    assert_eq!(get(&mut vm, c, a, 6), b"child!");
    if fork != ForkPolicy::Copy {
        assert!(vm.stats().cow_copies + vm.stats().cow_reuses > 0);
    }
    // Fork errors.
    let slot = vm.find_free_slot().unwrap();
    assert_eq!(client::fork_into(&mut vm, Endpoint::new(3, 77), slot), Err(Errno::EINVAL));
    assert_eq!(client::fork_into(&mut vm, p, 1), Err(Errno::EINVAL));
    assert_eq!(client::fork_into(&mut vm, p, 100_000), Err(Errno::EINVAL));
    check(&vm);
    // Exec replaces the image.
    let img = ExecImage { text_bytes: 3 * PAGE_SIZE, data_bytes: 5000, bss_bytes: 7000, stack_bytes: 8192 };
    let l = client::exec(&mut vm, c, &img).unwrap();
    check(&vm);
    assert_eq!(l.text, TEXT_BASE);
    assert_eq!(l.brk, VirtAddr(l.data.0 + 12000));
    assert_eq!(l.stack_top, stack_top::<P>());
    assert_eq!(
        client::touch(&mut vm, c, a, R),
        Err(TouchError::Signalled(FaultCode(FaultCode::USER))),
        "the old mmap is gone"
    );
    assert_eq!(get(&mut vm, c, l.data, 8), [0; 8]);
    assert_eq!(get(&mut vm, c, VirtAddr(l.stack_top.0 - 8), 8), [0; 8]);
    assert_eq!(vm.brk_of(c).unwrap(), l.brk);
    // Exec errors leave the image.
    let snap = vm.snapshot();
    let huge = ExecImage { text_bytes: 1 << 40, ..img };
    assert_eq!(client::exec(&mut vm, c, &huge), Err(Errno::ENOEXEC));
    let tight = ExecImage { text_bytes: 0x7000_0000, stack_bytes: 0x1000_0000, ..img };
    assert_eq!(client::exec(&mut vm, c, &tight), Err(Errno::ENOMEM));
    assert_eq!(client::exec(&mut vm, Endpoint::new(5, 50), &img), Err(Errno::ESRCH));
    let mut m = Message::new(PM_PROC_NR, VM_EXEC_NEWMEM);
    m.set_m1_i1(c.0).set_m1_p1(BOOT_DATA_VA.0).set_m1_i2(3);
    assert_eq!(send(&mut vm, &m).unwrap_err(), Errno::EINVAL);
    m.set_m1_i2(40).set_m1_p1(0x10);
    assert_eq!(send(&mut vm, &m).unwrap_err(), Errno::EFAULT);
    assert_eq!(vm.snapshot(), snap);
    // Exit needs WILLEXIT first.
    let mut m = Message::new(PM_PROC_NR, VM_EXIT);
    m.set_m1_i1(c.0);
    assert_eq!(send(&mut vm, &m).unwrap_err(), Errno::EINVAL);
    let mut w = Message::new(PM_PROC_NR, VM_WILLEXIT);
    w.set_m1_i1(Endpoint::new(4, 44).0);
    assert_eq!(send(&mut vm, &w).unwrap_err(), Errno::EINVAL);
    client::exit(&mut vm, c).unwrap();
    check(&vm);
    assert_eq!(client::exit(&mut vm, c), Err(Errno::EINVAL), "stale endpoint");
    client::exit(&mut vm, p).unwrap();
    check(&vm);
    assert_eq!(vm.free_frames(), base);
}

fn shared_memory<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) {
    let mut vm = boot::<F, P>(fork);
    let ipc = child(&mut vm);
    grant(&mut vm, ipc, &[VM_REMAP, VM_SHM_UNMAP, VM_GETPHYS, VM_GETREF, VM_QUERY_EXIT]);
    let a = child(&mut vm);
    let b = child(&mut vm);
    // MAP_SHARED anonymous memory is preallocated and shared writable across fork.
    let sh = MmapArgs { flags: MapFlags::ANON | MapFlags::SHARED, ..MmapArgs::anon(2 * PAGE_SIZE) };
    let s = client::mmap(&mut vm, a, &sh).unwrap();
    check(&vm);
    put(&mut vm, a, s, b"shared");
    let a2 = client::fork(&mut vm, a).unwrap();
    check(&vm);
    put(&mut vm, a2, VirtAddr(s.0 + 6), b" by fork");
    assert_eq!(get(&mut vm, a, s, 14), b"shared by fork");
    // VM_REMAP into b.
    let mut m = Message::new(ipc, VM_REMAP);
    m.set_m1_i1(b.0).set_m1_i2(a.0).set_m1_p1(0).set_m1_p2(s.0).set_m1_i3(2 * PAGE_SIZE as i32);
    let r = send(&mut vm, &m).unwrap();
    let bs = VirtAddr(r.m1_p3());
    put(&mut vm, b, VirtAddr(bs.0 + PAGE_SIZE), b"from b");
    assert_eq!(get(&mut vm, a, VirtAddr(s.0 + PAGE_SIZE), 6), b"from b");
    // GETREF: a, a2, b share the frame.
    let mut m = Message::new(ipc, VM_GETREF);
    m.set_m2_i1(b.0).set_m2_l1(bs.0 as i64);
    assert_eq!(send(&mut vm, &m).unwrap().m2_i2(), 3);
    let mut g = Message::new(ipc, VM_GETPHYS);
    g.set_m2_i1(a.0).set_m2_l1(s.0 as i64);
    let pa = send(&mut vm, &g).unwrap().m2_l2();
    g.set_m2_i1(b.0).set_m2_l1(bs.0 as i64);
    assert_eq!(send(&mut vm, &g).unwrap().m2_l2(), pa);
    g.set_m2_l1(bs.0 as i64 + 4096);
    let e = vm.handle(&g, false).unwrap();
    assert_eq!((e.mtype, e.m2_l2()), (Errno::EINVAL.code(), 0));
    // Remap errors.
    let mut m = Message::new(ipc, VM_REMAP);
    m.set_m1_i1(b.0).set_m1_i2(a.0).set_m1_p2(s.0 + 4096).set_m1_i3(4096);
    assert_eq!(send(&mut vm, &m).unwrap_err(), Errno::EFAULT);
    m.set_m1_p2(s.0).set_m1_i3(4096);
    assert_eq!(send(&mut vm, &m).unwrap_err(), Errno::EFAULT);
    m.set_m1_i3(8192).set_m1_p1(bs.0);
    assert_eq!(send(&mut vm, &m).unwrap_err(), Errno::EINVAL);
    m.set_m1_i1(Endpoint::new(8, 88).0);
    assert_eq!(send(&mut vm, &m).unwrap_err(), Errno::EINVAL);
    // SHM_UNMAP.
    let mut u = Message::new(ipc, VM_SHM_UNMAP);
    u.set_m2_i1(b.0).set_m2_l1(bs.0 as i64 + 4096);
    assert_eq!(send(&mut vm, &u).unwrap_err(), Errno::EFAULT);
    u.set_m2_l1(bs.0 as i64);
    send(&mut vm, &u).unwrap();
    assert_eq!(client::touch(&mut vm, b, bs, R), Err(TouchError::Signalled(FaultCode(FaultCode::USER))));
    assert_eq!(get(&mut vm, a2, s, 6), b"shared");
    // Unauthorized callers get ENOSYS.
    let mut m = Message::new(b, VM_GETREF);
    m.set_m2_i1(a.0).set_m2_l1(s.0 as i64);
    assert_eq!(send(&mut vm, &m).unwrap_err(), Errno::ENOSYS);
    // NOTIFY_SIG (PM) and QUERY_EXIT (IPC).
    for ep in [a2, b, a2] {
        let mut n = Message::new(PM_PROC_NR, VM_NOTIFY_SIG);
        n.set_m1_i1(ep.0).set_m1_i2(ipc.0);
        send(&mut vm, &n).unwrap();
    }
    let q = Message::new(ipc, VM_QUERY_EXIT);
    let r = send(&mut vm, &q).unwrap();
    assert_eq!((Endpoint(r.m2_i1()), r.m2_i2()), (a2, 1));
    let r = send(&mut vm, &q).unwrap();
    assert_eq!((Endpoint(r.m2_i1()), r.m2_i2()), (b, 0));
    let r = send(&mut vm, &q).unwrap();
    assert_eq!((Endpoint(r.m2_i1()), r.m2_i2()), (NONE, 0));
    for ep in [a2, a, b, ipc] {
        client::exit(&mut vm, ep).unwrap();
        check(&vm);
    }
}

fn phys_dma_info<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) {
    let mut vm = boot::<F, P>(fork);
    let drv = child(&mut vm);
    let other = child(&mut vm);
    let dev = vm.total_frames() * PAGE_SIZE + 0x10_0000;
    let mut m = Message::new(drv, VM_MAP_PHYS);
    m.set_m1_i1(SELF.0).set_m1_p2(dev + 0x10).set_m1_i2(2 * PAGE_SIZE as i32);
    let r = send(&mut vm, &m).unwrap();
    let va = VirtAddr(r.m1_p3());
    assert_eq!(va.page_offset(), 0x10);
    let mapping = vm.mmu_translate(drv, va, W).unwrap();
    assert_eq!(mapping.frame, Frame(dev / PAGE_SIZE));
    assert!(mapping.flags.contains(PageFlags::NOCACHE));
    assert_eq!(client::write_user(&mut vm, drv, va, b"x"), Err(TouchError::NotMemory(va)));
    // Errors: RAM, another target, zero length, bad target.
    m.set_m1_p2(0x1000);
    assert_eq!(send(&mut vm, &m).unwrap_err(), Errno::EPERM);
    m.set_m1_p2(dev).set_m1_i1(other.0);
    assert_eq!(send(&mut vm, &m).unwrap_err(), Errno::EPERM);
    m.set_m1_i1(SELF.0).set_m1_i2(0);
    assert_eq!(send(&mut vm, &m).unwrap_err(), Errno::EINVAL);
    m.set_m1_i1(Endpoint::new(6, 66).0).set_m1_i2(4096);
    assert_eq!(send(&mut vm, &m).unwrap_err(), Errno::EINVAL);
    // UNMAP_PHYS.
    let mut u = Message::new(other, VM_UNMAP_PHYS);
    u.set_m1_i1(drv.0).set_m1_p1(va.0);
    assert_eq!(send(&mut vm, &u).unwrap_err(), Errno::EPERM);
    let mut u = Message::new(drv, VM_UNMAP_PHYS);
    u.set_m1_i1(SELF.0).set_m1_p1(BOOT_DATA_VA.0);
    assert_eq!(send(&mut vm, &u).unwrap_err(), Errno::EINVAL);
    u.set_m1_p1(va.0 + 4096);
    send(&mut vm, &u).unwrap();
    assert_eq!(vm.mmu_translate(drv, va, R), Err(FaultCode(FaultCode::USER)));
    // DMA table.
    let dma = |vm: &mut Vm<F, P>, t: i32, ep: Endpoint, base: i64| {
        let mut m = Message::new(PM_PROC_NR, t);
        m.set_m2_i1(ep.0).set_m2_l1(base).set_m2_l2(4096);
        send(vm, &m)
    };
    dma(&mut vm, VM_ADDDMA, drv, 0x1000).unwrap();
    assert_eq!(client::fork(&mut vm, drv), Err(Errno::EINVAL), "a parent with DMA cannot fork");
    assert_eq!(dma(&mut vm, VM_DELDMA, drv, 0x2000).unwrap_err(), Errno::ESRCH);
    assert_eq!(dma(&mut vm, VM_GETDMA, drv, 0).unwrap_err(), Errno::EAGAIN);
    assert_eq!(dma(&mut vm, VM_ADDDMA, Endpoint::new(2, 22), 0).unwrap_err(), Errno::EINVAL);
    dma(&mut vm, VM_DELDMA, drv, 0x1000).unwrap();
    assert!(client::fork(&mut vm, drv).is_ok_and(|c| client::exit(&mut vm, c).is_ok()));
    // VM_INFO.
    let is = child(&mut vm);
    grant(&mut vm, is, &[VM_INFO]);
    let buf = anon(&mut vm, is, PAGE_SIZE);
    let mut m = Message::new(is, VM_INFO);
    m.set_m2_i1(1).set_m2_p1(buf.0);
    send(&mut vm, &m).unwrap();
    let stats = get(&mut vm, is, buf, 32);
    let word = |i: usize| u64::from_le_bytes(stats[i * 8..i * 8 + 8].try_into().unwrap());
    assert_eq!((word(0), word(1)), (PAGE_SIZE, vm.total_frames()));
    assert!(word(3) > 0 && word(3) <= word(2));
    m.set_m2_i1(3).set_m2_i2(is.0).set_m2_i3(2).set_m2_l1(0);
    let r = send(&mut vm, &m).unwrap();
    assert_eq!(r.m2_i3(), 2);
    let listed = get(&mut vm, is, buf, 8);
    assert_eq!(u64::from_le_bytes(listed.try_into().unwrap()), TEXT_BASE.0);
    m.set_m2_i1(2);
    send(&mut vm, &m).unwrap();
    m.set_m2_i1(9);
    assert_eq!(send(&mut vm, &m).unwrap_err(), Errno::EINVAL);
    m.set_m2_i1(1).set_m2_p1(0x10);
    assert_eq!(send(&mut vm, &m).unwrap_err(), Errno::EFAULT);
    for ep in [drv, other, is] {
        client::exit(&mut vm, ep).unwrap();
        check(&vm);
    }
}

fn extensions<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) {
    let mut vm = boot::<F, P>(fork);
    let base = vm.free_frames();
    let p = child(&mut vm);
    let a = anon(&mut vm, p, 2 * PAGE_SIZE);
    put(&mut vm, p, a, b"remap me");
    // Grow in place.
    assert_eq!(client::mremap(&mut vm, p, a, 2 * PAGE_SIZE, 4 * PAGE_SIZE, false), Ok(a));
    check(&vm);
    put(&mut vm, p, VirtAddr(a.0 + 3 * PAGE_SIZE), b"tail");
    // Block growth, then move.
    let blocker = MmapArgs {
        addr: Some(VirtAddr(a.0 + 4 * PAGE_SIZE)),
        flags: MapFlags::ANON | MapFlags::FIXED,
        ..MmapArgs::anon(PAGE_SIZE)
    };
    client::mmap(&mut vm, p, &blocker).unwrap();
    assert_eq!(client::mremap(&mut vm, p, a, 4 * PAGE_SIZE, 8 * PAGE_SIZE, false), Err(Errno::ENOMEM));
    let moved = client::mremap(&mut vm, p, a, 4 * PAGE_SIZE, 8 * PAGE_SIZE, true).unwrap();
    check(&vm);
    assert_ne!(moved, a);
    assert_eq!(get(&mut vm, p, moved, 8), b"remap me");
    assert_eq!(get(&mut vm, p, VirtAddr(moved.0 + 3 * PAGE_SIZE), 4), b"tail");
    assert_eq!(client::touch(&mut vm, p, a, R), Err(TouchError::Signalled(FaultCode(FaultCode::USER))));
    // Shrink.
    assert_eq!(client::mremap(&mut vm, p, moved, 8 * PAGE_SIZE, PAGE_SIZE, false), Ok(moved));
    check(&vm);
    assert_eq!(
        client::touch(&mut vm, p, VirtAddr(moved.0 + PAGE_SIZE), R),
        Err(TouchError::Signalled(FaultCode(FaultCode::USER)))
    );
    assert_eq!(
        client::mremap(&mut vm, p, VirtAddr(0xC000_0000), PAGE_SIZE, 2 * PAGE_SIZE, true),
        Err(Errno::EFAULT)
    );
    assert_eq!(client::mremap(&mut vm, p, moved, PAGE_SIZE, 0, true), Err(Errno::EINVAL));
    // Discard: refault as zero.
    put(&mut vm, p, moved, b"gone");
    let free = vm.free_frames();
    client::discard(&mut vm, p, moved, PAGE_SIZE).unwrap();
    check(&vm);
    assert!(vm.free_frames() > free, "the discarded frame is freed");
    assert_eq!(get(&mut vm, p, moved, 4), [0; 4]);
    assert_eq!(client::discard(&mut vm, p, VirtAddr(0xC000_0000), PAGE_SIZE), Err(Errno::ENOMEM));
    // Kernel memory requests make a range present before a kernel copy.
    let k = anon(&mut vm, p, 3 * PAGE_SIZE);
    vm.kernel_memory_request(p, VirtAddr(k.0 + 100), 2 * PAGE_SIZE, true).unwrap();
    check(&vm);
    for i in 0..3 {
        assert_eq!(client::touch(&mut vm, p, VirtAddr(k.0 + i * PAGE_SIZE), W), Ok(Touch::Hit));
    }
    assert_eq!(vm.kernel_memory_request(p, TEXT_BASE, 10, true), Err(Errno::EFAULT));
    assert_eq!(vm.kernel_memory_request(p, VirtAddr(0x1000), 10, false), Err(Errno::EFAULT));
    assert_eq!(vm.kernel_memory_request(Endpoint::new(1, 99), k, 10, false), Err(Errno::EDEADSRCDST));
    client::exit(&mut vm, p).unwrap();
    check(&vm);
    assert_eq!(vm.free_frames(), base);
}

fn privileges_and_signals<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) {
    let mut vm = boot::<F, P>(fork);
    let a = child(&mut vm);
    let b = child(&mut vm);
    put(&mut vm, a, BOOT_DATA_VA, b"aaaa");
    put(&mut vm, b, BOOT_DATA_VA, b"bbbb");
    // RS_UPDATE swaps the two images, endpoints stay.
    let mut m = Message::new(RS_PROC_NR, VM_RS_UPDATE);
    m.set_m1_i1(a.0).set_m1_i2(b.0);
    send(&mut vm, &m).unwrap();
    assert_eq!(get(&mut vm, a, BOOT_DATA_VA, 4), b"bbbb");
    assert_eq!(get(&mut vm, b, BOOT_DATA_VA, 4), b"aaaa");
    m.set_m1_i2(a.0);
    assert_eq!(send(&mut vm, &m).unwrap_err(), Errno::EINVAL);
    m.set_m1_i2(Endpoint::new(3, 33).0);
    assert_eq!(send(&mut vm, &m).unwrap_err(), Errno::EINVAL);
    // RS_SET_PRIV.
    client::rs_set_priv(&mut vm, a, CallMask::BASIC.union(CallMask::of(&[VM_INFO]))).unwrap();
    assert!(vm.call_mask(a).unwrap().allows(call_index(VM_INFO).unwrap()));
    let mut s = Message::new(RS_PROC_NR, VM_RS_SET_PRIV);
    s.set_m2_i1(a.0).set_m2_l1(0);
    send(&mut vm, &s).unwrap();
    s.set_m2_l1(0x10);
    assert_eq!(send(&mut vm, &s).unwrap_err(), Errno::EFAULT);
    s.set_m2_i1(NONE.0);
    assert_eq!(send(&mut vm, &s).unwrap_err(), Errno::EINVAL);
    // PUSH_SIG reports the stack top.
    let mut p = Message::new(PM_PROC_NR, VM_PUSH_SIG);
    p.set_m1_i1(a.0);
    assert_eq!(send(&mut vm, &p).unwrap().m1_p1(), stack_top::<P>().0);
    p.set_m1_i1(Endpoint::new(2, 200).0);
    assert_eq!(send(&mut vm, &p).unwrap_err(), Errno::EDEADSRCDST);
    // ACL: a user process may not fork; unknown numbers; notifications.
    let mut f = Message::new(a, VM_FORK);
    f.set_m1_i1(a.0).set_m1_i2(200);
    assert_eq!(send(&mut vm, &f).unwrap_err(), Errno::ENOSYS);
    assert_eq!(send(&mut vm, &Message::new(a, VM_UMAP)).unwrap_err(), Errno::ENOSYS);
    assert_eq!(send(&mut vm, &Message::new(a, 0x1234)).unwrap_err(), Errno::ENOSYS);
    // A caller that is not alive gets `vm_isokendpt`'s answer, not the ACL's ENOSYS.
    assert_eq!(send(&mut vm, &Message::new(Endpoint::new(5, 5), VM_MMAP)).unwrap_err(), Errno::EDEADSRCDST);
    assert_eq!(vm.handle(&Message::new(a, NOTIFY_MESSAGE), false), None);
    for ep in [a, b] {
        client::exit(&mut vm, ep).unwrap();
        check(&vm);
    }
}

every_strategy!(mmap_all, mmap_calls);
every_strategy!(protection_all, protection);
every_strategy!(brk_all, brk_calls);
every_strategy!(fork_exec_exit_all, fork_exec_exit);
every_strategy!(shared_all, shared_memory);
every_strategy!(phys_dma_info_all, phys_dma_info);
every_strategy!(extensions_all, extensions);
every_strategy!(privileges_all, privileges_and_signals);

#[test]
fn prezeroed_pool_serves_faults_and_counts_as_free() {
    let cfg = VmConfig { zero: ZeroPolicy::Prezeroed, ..VmConfig::with_bytes(ARENA) };
    let mut vm = Vm::<Bitset, X86_64>::boot(cfg).unwrap();
    check(&vm);
    let base = vm.free_frames();
    let p = child(&mut vm);
    let a = anon(&mut vm, p, 8 * PAGE_SIZE);
    for i in 0..8 {
        put(&mut vm, p, VirtAddr(a.0 + i * PAGE_SIZE), b"z");
        assert_eq!(get(&mut vm, p, VirtAddr(a.0 + i * PAGE_SIZE + 1), 8), [0; 8]);
    }
    assert!(vm.stats().prezeroed_fills >= 8);
    vm.idle();
    check(&vm);
    client::exit(&mut vm, p).unwrap();
    vm.idle();
    check(&vm);
    assert_eq!(vm.free_frames(), base);
}

/// VM_GETREF counts the processes mapping a shared page, and VM_INFO's usage report
/// counts shared bytes, under every fork policy: a segment attached by a second process
/// (VM_REMAP) whose owner then forks children that write nothing.
fn sharers_after_fork<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) {
    let mut vm = boot::<F, P>(fork);
    let ipc = child(&mut vm);
    grant(&mut vm, ipc, &[VM_REMAP, VM_GETREF, VM_INFO]);
    let a = child(&mut vm);
    let b = child(&mut vm);
    let sh = MmapArgs { flags: MapFlags::ANON | MapFlags::SHARED, ..MmapArgs::anon(2 * PAGE_SIZE) };
    let s = client::mmap(&mut vm, a, &sh).unwrap();
    put(&mut vm, a, s, b"segment");
    let mut m = Message::new(ipc, VM_REMAP);
    m.set_m1_i1(b.0).set_m1_i2(a.0).set_m1_p1(0).set_m1_p2(s.0).set_m1_i3(2 * PAGE_SIZE as i32);
    let bs = VirtAddr(send(&mut vm, &m).unwrap().m1_p3());
    let getref = |vm: &mut Vm<F, P>| {
        let mut q = Message::new(ipc, VM_GETREF);
        q.set_m2_i1(a.0).set_m2_l1(s.0 as i64);
        send(vm, &q).unwrap().m2_i2()
    };
    assert_eq!(getref(&mut vm), 2, "owner and attacher");
    let kids: Vec<_> = (0..5).map(|_| client::fork(&mut vm, b).unwrap()).collect();
    check(&vm);
    assert_eq!(getref(&mut vm), 7, "owner, attacher and the attacher's five children");
    // VM_INFO usage of a child: both shared pages are mapped by more than one process.
    let buf = anon(&mut vm, ipc, PAGE_SIZE);
    let mut u = Message::new(ipc, VM_INFO);
    u.set_m2_i1(2).set_m2_i2(kids[0].0).set_m2_p1(buf.0);
    send(&mut vm, &u).unwrap();
    let usage = get(&mut vm, ipc, buf, 24);
    let word = |i: usize| u64::from_le_bytes(usage[i * 8..i * 8 + 8].try_into().unwrap());
    assert_eq!(word(2), 2 * PAGE_SIZE, "shared bytes of a child");
    assert!(word(1) >= 2 * PAGE_SIZE, "common bytes include the shared ones");
    assert_eq!(get(&mut vm, kids[4], bs, 7), b"segment");
    // A segment nobody attached, shared by one fork only.
    let c = child(&mut vm);
    let cs = client::mmap(&mut vm, c, &sh).unwrap();
    put(&mut vm, c, cs, b"x");
    put(&mut vm, c, VirtAddr(cs.0 + PAGE_SIZE), b"y");
    let c2 = client::fork(&mut vm, c).unwrap();
    u.set_m2_i2(c.0);
    send(&mut vm, &u).unwrap();
    let usage = get(&mut vm, ipc, buf, 24);
    let word = |i: usize| u64::from_le_bytes(usage[i * 8..i * 8 + 8].try_into().unwrap());
    assert_eq!(word(2), 2 * PAGE_SIZE, "shared bytes after one fork");
    let mut q = Message::new(ipc, VM_GETREF);
    q.set_m2_i1(c2.0).set_m2_l1(cs.0 as i64);
    assert_eq!(send(&mut vm, &q).unwrap().m2_i2(), 2, "parent and child");
    client::exit(&mut vm, c2).unwrap();
    client::exit(&mut vm, c).unwrap();
    for k in kids {
        client::exit(&mut vm, k).unwrap();
    }
    check(&vm);
    assert_eq!(getref(&mut vm), 2);
    for ep in [a, b, ipc] {
        client::exit(&mut vm, ep).unwrap();
        check(&vm);
    }
}

every_strategy!(sharers_after_fork_all, sharers_after_fork);
