//! The address-space layout seen through brk and mmap, for every allocator × format × fork
//! policy: a 64-bit program's heap grows to 3 GiB on x86-64 (the stack sits higher there),
//! i386 keeps MINIX's layout (stack top at 2 GiB, test44's mmaps) and refuses such a heap
//! without changing anything, and brk keeps its one-page gap against the stack only.

mod support;

use vmstorm_core::client::{self, ExecImage, MapFlags, MapProt, MmapArgs, TouchError};
use vmstorm_core::endpoint::{Endpoint, INIT_PROC_NR};
use vmstorm_core::layout::{data_top, mmap_base, stack_top, MIN_STACK_REGION, VM_STACKTOP};
use vmstorm_core::{Errno, FaultCode, ForkPolicy, FrameAllocator, PagingFormat, VirtAddr, Vm, PAGE_SIZE};

use support::{assert_same, boot_sized, check, MIB};

const GIB: u64 = 1 << 30;

/// A process with a small image; returns it and its page-aligned heap start.
fn process<F: FrameAllocator, P: PagingFormat>(vm: &mut Vm<F, P>) -> (Endpoint, u64) {
    let p = client::fork(vm, INIT_PROC_NR).expect("fork");
    let image =
        ExecImage { text_bytes: 3 * PAGE_SIZE, data_bytes: PAGE_SIZE, bss_bytes: 100, stack_bytes: 8192 };
    let l = client::exec(vm, p, &image).expect("exec");
    assert_eq!(l.stack_top, stack_top::<P>());
    (p, l.brk.0.div_ceil(PAGE_SIZE) * PAGE_SIZE)
}

fn read8<F: FrameAllocator, P: PagingFormat>(vm: &mut Vm<F, P>, p: Endpoint, at: u64) -> [u8; 8] {
    let mut b = [0u8; 8];
    client::read_user(vm, p, VirtAddr(at), &mut b).expect("read");
    b
}

fn heap_of_three_gib<F: FrameAllocator, P: PagingFormat>(policy: ForkPolicy) {
    let mut vm: Vm<F, P> = boot_sized(16 * MIB, 32, policy);
    let free_at_boot = vm.free_frames();
    let (p, base) = process(&mut vm);
    let end = base + 3 * GIB;
    if P::VA_END > 1 << 32 {
        // sbrk to 3 GiB: demand-zero pages anywhere in it, kept apart from a forked child.
        client::brk(&mut vm, p, VirtAddr(end)).expect("brk to a 3 GiB heap");
        check(&vm);
        let probes = [base, base + 2 * GIB + 512 * MIB, end - PAGE_SIZE];
        for (k, &at) in probes.iter().enumerate() {
            assert_eq!(read8(&mut vm, p, at), [0; 8], "fresh heap page at {at:#x}");
            client::write_user(&mut vm, p, VirtAddr(at), &[k as u8 + 1; 8]).expect("write");
        }
        let child = client::fork(&mut vm, p).expect("fork of a 3 GiB heap");
        client::write_user(&mut vm, child, VirtAddr(end - PAGE_SIZE), &[0xcc; 8]).expect("child write");
        assert_eq!(read8(&mut vm, p, end - PAGE_SIZE), [3; 8], "the child's write reached the parent");
        assert_eq!(read8(&mut vm, child, base + 2 * GIB + 512 * MIB), [2; 8]);
        check(&vm);
        // mmaps still go above the stack, far above the heap.
        let m = client::mmap(&mut vm, p, &MmapArgs::anon(PAGE_SIZE)).expect("mmap");
        assert!(m >= mmap_base::<P>() && m.0 > end, "mmap at {m:?}");
        // Shrinking gives the pages back.
        client::brk(&mut vm, p, VirtAddr(base)).expect("shrink");
        assert_eq!(
            client::touch(
                &mut vm,
                p,
                VirtAddr(end - PAGE_SIZE),
                vmstorm_core::Access { write: false, user: true }
            ),
            Err(TouchError::Signalled(FaultCode(FaultCode::USER)))
        );
        client::exit(&mut vm, child).expect("exit");
    } else {
        // i386 keeps MINIX's layout: the stack ends at 2 GiB, test44's mmaps land at the
        // hint, and a 3 GiB heap is refused with nothing changed.
        assert_eq!(stack_top::<P>(), VM_STACKTOP);
        assert_eq!(mmap_base::<P>(), VM_STACKTOP);
        for i in 0..5 {
            let args = MmapArgs { addr: Some(VirtAddr(0x9000_0000)), ..MmapArgs::anon(8192) };
            assert_eq!(client::mmap(&mut vm, p, &args), Ok(VirtAddr(0x9000_0000 + i * 8192)));
        }
        let before = vm.snapshot();
        assert_eq!(client::brk(&mut vm, p, VirtAddr(end)), Err(Errno::ENOMEM));
        assert_same(&vm.snapshot(), &before, "a refused brk changed the state");
    }
    client::exit(&mut vm, p).expect("exit");
    check(&vm);
    assert_eq!(vm.free_frames(), free_at_boot, "frames leaked");
}

vmstorm_core::every_strategy!(three_gib_heap, heap_of_three_gib);

/// brk may grow right up to a mapping placed above the heap (no gap), and to one page
/// below the stack (MINIX's safety gap), no further.
fn brk_gap_only_against_the_stack<F: FrameAllocator, P: PagingFormat>(policy: ForkPolicy) {
    let mut vm: Vm<F, P> = boot_sized(16 * MIB, 32, policy);
    let (p, base) = process(&mut vm);
    let at = VirtAddr(base + 16 * PAGE_SIZE);
    let args = MmapArgs {
        addr: Some(at),
        len: PAGE_SIZE,
        prot: MapProt::RW,
        flags: MapFlags::ANON | MapFlags::PRIVATE,
    };
    assert_eq!(client::mmap(&mut vm, p, &args), Ok(at), "the hint above the heap is free");
    client::brk(&mut vm, p, at).expect("brk up to the mapping");
    client::write_user(&mut vm, p, VirtAddr(at.0 - 8), b"heap end").expect("last heap bytes");
    check(&vm);
    let before = vm.snapshot();
    assert_eq!(client::brk(&mut vm, p, VirtAddr(at.0 + 1)), Err(Errno::ENOMEM), "into the mapping");
    assert_same(&vm.snapshot(), &before, "a refused brk changed the state");
    client::munmap(&mut vm, p, at, PAGE_SIZE).expect("munmap");
    client::brk(&mut vm, p, VirtAddr(base)).expect("shrink");

    // The stack: one free page must stay between it and the heap.
    let stack = stack_top::<P>().0 - MIN_STACK_REGION;
    assert!(stack < data_top::<P>().0);
    client::brk(&mut vm, p, VirtAddr(stack - PAGE_SIZE)).expect("brk to a page below the stack");
    let before = vm.snapshot();
    for new in [stack - PAGE_SIZE + 1, stack, stack + PAGE_SIZE] {
        assert_eq!(client::brk(&mut vm, p, VirtAddr(new)), Err(Errno::ENOMEM), "brk to {new:#x}");
    }
    assert_same(&vm.snapshot(), &before, "a refused brk changed the state");
    client::exit(&mut vm, p).expect("exit");
    check(&vm);
}

vmstorm_core::every_strategy!(brk_gap, brk_gap_only_against_the_stack);
