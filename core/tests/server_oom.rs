//! Out of memory everywhere: the N-th frame allocation fails, for every N, inside fork,
//! exec, mmap with preallocation (scattered, contiguous, and MAP_FIXED over live pages),
//! brk followed by its first fault, and the fault path (demand-zero and copy-on-write).
//! Each failed call must answer ENOMEM (a fault: leave the process signalled), leave the
//! snapshot exactly as before, keep every invariant, and leak nothing.

mod support;

use support::*;
use vmstorm_core::calls::exec::ExecNewmem;
use vmstorm_core::client::{self, ExecImage, MapFlags, MmapArgs, TouchError};
use vmstorm_core::endpoint::PM_PROC_NR;
use vmstorm_core::layout::BOOT_DATA_VA;
use vmstorm_core::ForkPolicy;
use vmstorm_core::*;

type FVm<F, P> = Vm<FailingAllocator<F>, P>;

/// Runs `op` with the n-th allocation failing, for n = 1, 2, … until it succeeds; every
/// failure must be `expect` with the state unchanged. Returns how many failures it took.
fn sweep<F: FrameAllocator, P: PagingFormat, T>(
    vm: &mut FVm<F, P>,
    mut op: impl FnMut(&mut FVm<F, P>) -> Result<T, Errno>,
    is_failure: impl Fn(&Result<T, Errno>) -> bool,
) -> (u64, T) {
    for n in 1..10_000u64 {
        let before = vm.snapshot();
        vm.allocator_mut().fail_at(n);
        let r = op(vm);
        vm.allocator_mut().never_fail();
        if !is_failure(&r) {
            check(vm);
            return (n - 1, r.expect("a call that did not fail reports success"));
        }
        check(vm);
        assert_eq!(vm.snapshot(), before, "failure at allocation {n} changed the state");
    }
    panic!("the operation never succeeded");
}

fn enomem<T>(r: &Result<T, Errno>) -> bool {
    match r {
        Err(Errno::ENOMEM) => true,
        Err(e) => panic!("expected ENOMEM, got {e}"),
        Ok(_) => false,
    }
}

/// A process with private pages, a shared mapping and a read-only mapping.
fn populated<F: FrameAllocator, P: PagingFormat>(vm: &mut FVm<F, P>) -> (Endpoint, VirtAddr) {
    let p = child(vm);
    let a = anon(vm, p, 6 * PAGE_SIZE);
    for i in 0..6 {
        put(vm, p, VirtAddr(a.0 + i * PAGE_SIZE), &[i as u8 + 1; 64]);
    }
    let sh = MmapArgs { flags: MapFlags::ANON | MapFlags::SHARED, ..MmapArgs::anon(2 * PAGE_SIZE) };
    client::mmap(vm, p, &sh).unwrap();
    check(vm);
    (p, a)
}

fn oom_fork<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) {
    let mut vm = boot_failing::<F, P>(fork);
    let base = vm.free_frames();
    let (p, a) = populated(&mut vm);
    let (failures, c) = sweep(&mut vm, |vm| client::fork(vm, p), enomem);
    assert!(failures >= 1, "fork allocates page tables");
    assert_eq!(get(&mut vm, c, a, 1), [1]);
    put(&mut vm, c, a, b"c");
    assert_eq!(get(&mut vm, p, a, 1), [1]);
    client::exit(&mut vm, c).unwrap();
    client::exit(&mut vm, p).unwrap();
    check(&vm);
    assert_eq!(vm.free_frames(), base);
}

fn oom_exec<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) {
    let mut vm = boot_failing::<F, P>(fork);
    let base = vm.free_frames();
    let (p, a) = populated(&mut vm);
    let img =
        ExecImage { text_bytes: 5 * PAGE_SIZE, data_bytes: 3 * PAGE_SIZE, bss_bytes: 100, stack_bytes: 0 };
    // PM's argument block is written by the client before each try: write it once first so
    // that the tries leave PM's memory as it was.
    let args = ExecNewmem {
        text_bytes: img.text_bytes,
        data_bytes: img.data_bytes,
        bss_bytes: img.bss_bytes,
        stack_bytes: 0,
        args_bytes: 0,
    };
    vm.write_process(PM_PROC_NR, BOOT_DATA_VA, &args.to_bytes()).unwrap();
    let (failures, l) = sweep(&mut vm, |vm| client::exec(vm, p, &img), enomem);
    assert!(failures >= 9, "exec preallocates text and data: {failures}");
    assert_eq!(
        client::touch(&mut vm, p, a, Access { write: false, user: true }),
        Err(TouchError::Signalled(FaultCode(FaultCode::USER)))
    );
    assert_eq!(get(&mut vm, p, l.data, 4), [0; 4]);
    client::exit(&mut vm, p).unwrap();
    check(&vm);
    assert_eq!(vm.free_frames(), base);
}

fn oom_mmap<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) {
    let mut vm = boot_failing::<F, P>(fork);
    let base = vm.free_frames();
    let (p, a) = populated(&mut vm);
    let pre = MmapArgs { flags: MapFlags::ANON | MapFlags::PREALLOC, ..MmapArgs::anon(8 * PAGE_SIZE) };
    let (failures, m) = sweep(&mut vm, |vm| client::mmap(vm, p, &pre), enomem);
    assert!(failures >= 8);
    assert_eq!(get(&mut vm, p, m, 4), [0; 4]);
    let contig = MmapArgs { flags: MapFlags::ANON | MapFlags::CONTIG, ..MmapArgs::anon(16 * PAGE_SIZE) };
    let (failures, _) = sweep(&mut vm, |vm| client::mmap(vm, p, &contig), enomem);
    assert!(failures >= 1);
    // MAP_FIXED with preallocation over live, written pages: restored on failure.
    let fixed = MmapArgs {
        addr: Some(a),
        flags: MapFlags::ANON | MapFlags::FIXED | MapFlags::PREALLOC,
        ..MmapArgs::anon(4 * PAGE_SIZE)
    };
    let (failures, at) = sweep(&mut vm, |vm| client::mmap(vm, p, &fixed), enomem);
    assert!(failures >= 4);
    assert_eq!(at, a);
    assert_eq!(get(&mut vm, p, a, 1), [0]);
    assert_eq!(get(&mut vm, p, VirtAddr(a.0 + 5 * PAGE_SIZE), 1), [6]);
    client::exit(&mut vm, p).unwrap();
    check(&vm);
    assert_eq!(vm.free_frames(), base);
}

fn signalled<T>(r: &Result<T, Errno>) -> bool {
    match r {
        Err(Errno::EFAULT) => true,
        Err(e) => panic!("expected a signalled fault, got {e}"),
        Ok(_) => false,
    }
}

/// A user write that reports a signalled fault as EFAULT.
fn write<F: FrameAllocator, P: PagingFormat>(
    vm: &mut FVm<F, P>,
    p: Endpoint,
    va: VirtAddr,
) -> Result<(), Errno> {
    match client::write_user(vm, p, va, b"w") {
        Ok(()) => Ok(()),
        Err(TouchError::Signalled(_)) => Err(Errno::EFAULT),
        Err(e) => panic!("{e}"),
    }
}

fn oom_brk_and_faults<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) {
    let mut vm = boot_failing::<F, P>(fork);
    let base = vm.free_frames();
    let (p, a) = populated(&mut vm);
    // brk allocates nothing; its first fault does.
    let b0 = vm.brk_of(p).unwrap();
    let (failures, ()) = sweep(&mut vm, |vm| client::brk(vm, p, VirtAddr(b0.0 + 64 * PAGE_SIZE)), enomem);
    assert_eq!(failures, 0);
    let signals = vm.stats().signalled_faults;
    let (failures, ()) = sweep(&mut vm, |vm| write(vm, p, VirtAddr(b0.0 + 63 * PAGE_SIZE)), signalled);
    assert!(failures >= 1);
    assert_eq!(vm.stats().signalled_faults, signals + failures);
    // Demand-zero far away (page tables needed too).
    let far = anon(&mut vm, p, PAGE_SIZE);
    let far2 = client::mmap(
        &mut vm,
        p,
        &MmapArgs { addr: Some(VirtAddr(far.0 + (1 << 30))), ..MmapArgs::anon(PAGE_SIZE) },
    )
    .unwrap();
    let (failures, ()) = sweep(&mut vm, |vm| write(vm, p, far2), signalled);
    assert!(failures >= 1);
    // Copy-on-write break in a child.
    let c = client::fork(&mut vm, p).unwrap();
    check(&vm);
    let (failures, ()) = sweep(&mut vm, |vm| write(vm, c, VirtAddr(a.0 + PAGE_SIZE)), signalled);
    match fork {
        ForkPolicy::Cow => assert_eq!(failures, 1, "a COW break allocates one frame"),
        ForkPolicy::Share => assert_eq!(failures, 2, "a table copy, then the COW frame"),
        ForkPolicy::Copy => {}
    }
    assert_eq!(get(&mut vm, p, VirtAddr(a.0 + PAGE_SIZE), 1), [2]);
    assert_eq!(get(&mut vm, c, VirtAddr(a.0 + PAGE_SIZE), 1), b"w");
    client::exit(&mut vm, c).unwrap();
    client::exit(&mut vm, p).unwrap();
    check(&vm);
    assert_eq!(vm.free_frames(), base);
}

every_strategy!(fork_all, oom_fork);
every_strategy!(exec_all, oom_exec);
every_strategy!(mmap_all, oom_mmap);
every_strategy!(brk_and_faults_all, oom_brk_and_faults);

/// A write fault that runs out of memory after a sharer has copied its leaf table away:
/// the parent's table is its own again but still linked read-only, and the written page's
/// frame is still shared with the child's copy. The refused fault must leave the tables
/// as they were (entries and link permissions), under every policy.
fn oom_write_after_sharer_left<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) {
    let mut vm = boot_failing::<F, P>(fork);
    let (p, a) = populated(&mut vm);
    let c = client::fork(&mut vm, p).unwrap();
    // The child's first write copies its table (share) or its page (cow).
    write(&mut vm, c, VirtAddr(a.0 + PAGE_SIZE)).unwrap();
    check(&vm);
    let (failures, ()) = sweep(&mut vm, |vm| write(vm, p, VirtAddr(a.0 + 2 * PAGE_SIZE)), signalled);
    if fork != ForkPolicy::Copy {
        assert_eq!(failures, 1, "the parent's write copies the still-shared frame");
    }
    assert_eq!(get(&mut vm, c, VirtAddr(a.0 + 2 * PAGE_SIZE), 1), [3]);
    assert_eq!(get(&mut vm, p, VirtAddr(a.0 + 2 * PAGE_SIZE), 1), b"w");
    client::exit(&mut vm, c).unwrap();
    client::exit(&mut vm, p).unwrap();
    check(&vm);
}

every_strategy!(write_after_sharer_left_all, oom_write_after_sharer_left);
