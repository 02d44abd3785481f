//! Fault injection beyond running out of frames: every fixed-size table of the server
//! filled up (process slots, DMA entries, interned call masks), an exec whose image does
//! not fit, and allocation failures injected at every point of fork, exec, mmap and a
//! page fault. Each failure is an error reply and leaves the state exactly as it was.

mod support;

use vmstorm_core::acl::CallMask;
use vmstorm_core::client::{self, ExecImage, MapFlags, MapProt, MmapArgs};
use vmstorm_core::endpoint::{Endpoint, INIT_PROC_NR, PM_PROC_NR, RS_PROC_NR, SELF};
use vmstorm_core::frames::FailingAllocator;
use vmstorm_core::message::*;
use vmstorm_core::{
    Access, ArenaConfig, Bitset, ForkPolicy, VirtAddr, Vm, VmConfig, VmSnapshot, PAGE_SIZE, X86_64,
};

use support::{assert_same, boot_sized, call, check, MIB};

type TestVm = Vm<Bitset, X86_64>;

fn mmap_rw(vm: &mut TestVm, p: Endpoint, pages: u64) -> VirtAddr {
    let args = MmapArgs {
        addr: None,
        len: pages * PAGE_SIZE,
        prot: MapProt::RW,
        flags: MapFlags::ANON | MapFlags::PRIVATE,
    };
    client::mmap(vm, p, &args).expect("mmap")
}

#[test]
fn full_slot_table_refuses_fork_and_changes_nothing() {
    let slots = 24;
    let mut vm: TestVm = boot_sized(16 * MIB, slots, ForkPolicy::Cow);
    let mut children = Vec::new();
    while vm.find_free_slot().is_some() {
        children.push(client::fork(&mut vm, INIT_PROC_NR).expect("fork while slots are free"));
    }
    assert_eq!(children.len(), slots - 11, "the boot image takes 11 slots");
    let before = vm.snapshot();
    assert_eq!(
        client::fork(&mut vm, INIT_PROC_NR),
        Err(vmstorm_core::Errno::EAGAIN),
        "fork with a full slot table"
    );
    // PM naming any slot: in use, out of range, negative.
    for slot in (0..slots as i32).chain([slots as i32, 65_535, -1, i32::MIN]) {
        let r = call(&mut vm, PM_PROC_NR, VM_FORK, |m| {
            m.set_m1_i1(INIT_PROC_NR.0).set_m1_i2(slot);
        });
        assert_eq!(r, vmstorm_core::Errno::EINVAL.code(), "fork into slot {slot}");
    }
    assert_same(&vm.snapshot(), &before, "refused forks changed the state");
    check(&vm);
    // A freed slot is reused with a new generation.
    let gone = children.swap_remove(3);
    client::exit(&mut vm, gone).unwrap();
    let again = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    assert_eq!(again.slot(), gone.slot());
    assert_ne!(again, gone);
    check(&vm);
}

#[test]
fn full_dma_table_refuses_adddma_and_changes_nothing() {
    let mut vm: TestVm = boot_sized(16 * MIB, 64, ForkPolicy::Cow);
    let driver = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    let add = |vm: &mut TestVm, i: i64| {
        call(vm, PM_PROC_NR, VM_ADDDMA, |m| {
            m.set_m2_i1(driver.0).set_m2_l1(0x10_0000 + i * 0x1000).set_m2_l2(0x1000);
        })
    };
    let mut added = 0;
    while add(&mut vm, added) == 0 {
        added += 1;
        assert!(added < 10_000, "the DMA table never fills");
    }
    assert!(added >= 1);
    let before = vm.snapshot();
    for i in 0..5 {
        assert_eq!(add(&mut vm, 1000 + i), vmstorm_core::Errno::ENOSPC.code(), "ADDDMA into a full table");
    }
    assert_same(&vm.snapshot(), &before, "refused ADDDMAs changed the state");
    // Deleting one makes room again.
    let r = call(&mut vm, PM_PROC_NR, VM_DELDMA, |m| {
        m.set_m2_i1(driver.0).set_m2_l1(0x10_0000).set_m2_l2(0x1000);
    });
    assert_eq!(r, 0, "DELDMA of an existing entry");
    assert_eq!(add(&mut vm, 2000), 0, "ADDDMA after a DELDMA");
    // A process with DMA buffers can exit, and its entries go with it.
    client::exit(&mut vm, driver).unwrap();
    let other = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    let r = call(&mut vm, PM_PROC_NR, VM_ADDDMA, |m| {
        m.set_m2_i1(other.0).set_m2_l1(0x10_0000).set_m2_l2(0x1000);
    });
    assert_eq!(r, 0, "the exited driver's entries were not released");
    check(&vm);
}

/// RS writes `mask` into its memory and sets it as `target`'s; the snapshot is taken
/// between the two.
fn set_priv_snap(vm: &mut TestVm, target: Endpoint, mask: CallMask, buf: VirtAddr) -> (i32, VmSnapshot) {
    client::write_user(vm, RS_PROC_NR, buf, &mask.to_wire()).unwrap();
    let before = vm.snapshot();
    let r = call(vm, RS_PROC_NR, VM_RS_SET_PRIV, |m| {
        m.set_m2_i1(target.0).set_m2_l1(buf.0 as i64);
    });
    (r, before)
}

fn set_priv(vm: &mut TestVm, target: Endpoint, mask: CallMask, buf: VirtAddr) -> i32 {
    set_priv_snap(vm, target, mask, buf).0
}

#[test]
fn exhausted_call_mask_table_refuses_set_priv() {
    let mut vm: TestVm = boot_sized(32 * MIB, 128, ForkPolicy::Cow);
    let buf = mmap_rw(&mut vm, RS_PROC_NR, 1);
    let mut procs = Vec::new();
    let mut refused_at = None;
    for i in 0..100u64 {
        let p = client::fork(&mut vm, INIT_PROC_NR).unwrap();
        procs.push(p);
        // A distinct mask per process: BASIC plus one extra bit pattern.
        let mask = CallMask::from_bits_retain(CallMask::BASIC.bits() | (i + 1) << 20);
        let (r, before) = set_priv_snap(&mut vm, p, mask, buf);
        if r != 0 {
            assert_same(&vm.snapshot(), &before, "a refused RS_SET_PRIV changed the state");
            refused_at = Some(i);
            break;
        }
    }
    let refused_at = refused_at.expect("the call-mask table never filled");
    assert!(refused_at >= 8, "the table filled after only {refused_at} masks");
    // The refused process kept its mask: it can still mmap, and not use the new calls.
    let last = *procs.last().unwrap();
    mmap_rw(&mut vm, last, 1);
    // Exiting processes releases their masks: a new one fits again.
    for &p in &procs[..4] {
        client::exit(&mut vm, p).unwrap();
    }
    assert_eq!(
        set_priv(&mut vm, last, CallMask::from_bits_retain(CallMask::BASIC.bits() | 0xabc << 20), buf),
        0
    );
    // Setting the same mask on many processes shares one entry.
    for &p in &procs[4..procs.len() - 1] {
        assert_eq!(set_priv(&mut vm, p, CallMask::BASIC, buf), 0);
    }
    check(&vm);
}

#[test]
fn exec_that_does_not_fit_keeps_the_old_image() {
    let mut vm: TestVm = boot_sized(8 * MIB, 32, ForkPolicy::Cow);
    let p = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    let small =
        ExecImage { text_bytes: 2 * PAGE_SIZE, data_bytes: PAGE_SIZE, bss_bytes: 0, stack_bytes: 8192 };
    let layout = client::exec(&mut vm, p, &small).unwrap();
    let heap = mmap_rw(&mut vm, p, 2);
    client::write_user(&mut vm, p, heap, b"survives a failed exec").unwrap();
    client::write_user(&mut vm, p, layout.data, b"data too").unwrap();

    let too_big = [
        // Beyond any address space.
        ExecImage { text_bytes: 1 << 62, data_bytes: 0, bss_bytes: 0, stack_bytes: 0 },
        ExecImage { text_bytes: PAGE_SIZE, data_bytes: u64::MAX - 10, bss_bytes: 0, stack_bytes: 0 },
        ExecImage {
            text_bytes: PAGE_SIZE,
            data_bytes: PAGE_SIZE,
            bss_bytes: u64::MAX,
            stack_bytes: u64::MAX,
        },
        // Fits the address space, not the 8 MiB arena (text and data are preallocated).
        ExecImage { text_bytes: 64 * MIB, data_bytes: PAGE_SIZE, bss_bytes: 0, stack_bytes: 8192 },
        ExecImage { text_bytes: PAGE_SIZE, data_bytes: 32 * MIB, bss_bytes: 0, stack_bytes: 8192 },
    ];
    for (k, image) in too_big.iter().enumerate() {
        let frames = vm.free_frames();
        let before = vm.snapshot().slots.into_iter().find(|s| s.endpoint == p).unwrap();
        let want = if k < 3 { vmstorm_core::Errno::ENOEXEC } else { vmstorm_core::Errno::ENOMEM };
        assert_eq!(client::exec(&mut vm, p, image).map(|_| ()), Err(want), "exec {k} of {image:?}");
        let after = vm.snapshot().slots.into_iter().find(|s| s.endpoint == p).unwrap();
        assert_eq!(after, before, "failed exec {k} changed the process");
        // PM's argument page may have been faulted in by the first attempt only.
        if k > 0 {
            assert_eq!(vm.free_frames(), frames, "failed exec {k} leaked frames");
        }
        check(&vm);
    }
    let mut buf = [0u8; 22];
    client::read_user(&mut vm, p, heap, &mut buf).unwrap();
    assert_eq!(&buf, b"survives a failed exec");
    let mut buf = [0u8; 8];
    client::read_user(&mut vm, p, layout.data, &mut buf).unwrap();
    assert_eq!(&buf, b"data too");
    client::exit(&mut vm, p).unwrap();
    check(&vm);
}

/// An address no page table covers yet.
const FAR: VirtAddr = VirtAddr(0x3000_0000);

type FailVm = Vm<FailingAllocator<Bitset>, X86_64>;

/// A server whose allocator fails its `fail_at`-th allocation (0: never).
fn failing_vm(fail_at: u64, fork: ForkPolicy) -> FailVm {
    let arena = ArenaConfig { bytes: 8 * MIB, ..Default::default() };
    let config = VmConfig { arena, slots: 32, fork, ..Default::default() };
    let mut alloc =
        FailingAllocator::new(<Bitset as vmstorm_core::FrameAllocator>::with_frames(8 * MIB / PAGE_SIZE));
    alloc.fail_at(fail_at);
    Vm::boot_with(config, alloc).expect("boot")
}

/// What the injection setup built: a process with written private memory and an untouched
/// far page, its forked child (sharing those pages copy-on-write under `Cow`), and an IPC
/// server allowed to remap a shared region of the process.
#[derive(Clone, Copy, Debug)]
struct Ctx {
    p: Endpoint,
    child: Endpoint,
    ipc: Endpoint,
    private: VirtAddr,
    shared: VirtAddr,
}

fn setup(vm: &mut FailVm) -> Ctx {
    let p = client::fork(vm, INIT_PROC_NR).unwrap();
    let anon = |len, flags| MmapArgs { addr: None, len, prot: MapProt::RW, flags: MapFlags::ANON | flags };
    let private = client::mmap(vm, p, &anon(8 * PAGE_SIZE, MapFlags::PRIVATE)).unwrap();
    for k in 0..8 {
        client::write_user(vm, p, VirtAddr(private.0 + k * PAGE_SIZE), &[k as u8 + 1; 16]).unwrap();
    }
    let shared = client::mmap(vm, p, &anon(4 * PAGE_SIZE, MapFlags::SHARED)).unwrap();
    let far = MmapArgs { addr: Some(FAR), ..anon(PAGE_SIZE, MapFlags::PRIVATE | MapFlags::FIXED) };
    assert_eq!(client::mmap(vm, p, &far).unwrap(), FAR);
    let child = client::fork(vm, p).unwrap();
    let ipc = client::fork(vm, INIT_PROC_NR).unwrap();
    client::rs_set_priv(vm, ipc, CallMask::BASIC.union(CallMask::of(&[VM_REMAP]))).unwrap();
    Ctx { p, child, ipc, private, shared }
}

/// Boots, runs [`setup`], then runs `op` with its n-th allocation failing, for n = 1, 2,
/// ... until `op` succeeds; each failure must be an error that changes nothing. Returns
/// the number of failures injected. `exec` writes its argument block into PM's memory
/// first (as PM does): PM's contents are then left out of the comparison.
fn inject(name: &str, op: impl Fn(&mut FailVm, Ctx) -> bool) -> u64 {
    let without_pm = |mut s: VmSnapshot| {
        if name == "exec" {
            s.slots[0].contents = 0;
        }
        s
    };
    // The eager-copy policy for the ops named so.
    let policy = if name.ends_with("copy") { ForkPolicy::Copy } else { ForkPolicy::Cow };
    let mut vm = failing_vm(0, policy);
    setup(&mut vm);
    let ready = vm.phys().allocator().allocations();
    for n in 1..10_000 {
        let mut vm = failing_vm(ready + n, policy);
        let ctx = setup(&mut vm);
        assert_eq!(vm.phys().allocator().injected_failures(), 0, "setup is not deterministic");
        let before = without_pm(vm.snapshot());
        let ok = op(&mut vm, ctx);
        if vm.phys().allocator().injected_failures() == 0 {
            assert!(ok, "{name}: the operation failed without an injected failure");
            return n - 1;
        }
        assert!(!ok, "{name}: the operation hid an injected allocation failure (allocation {n})");
        let after = without_pm(vm.snapshot());
        assert_same(&after, &before, &format!("{name}: a call failed by injection {n} changed the state"));
        check(&vm);
    }
    panic!("{name}: the operation never succeeded");
}

#[test]
fn allocation_failures_anywhere_change_nothing() {
    let write = Access { write: true, user: true };
    let counts = [
        ("fork", inject("fork", |vm, c| client::fork(vm, c.p).is_ok())),
        ("fork copy", inject("fork copy", |vm, c| client::fork(vm, c.p).is_ok())),
        (
            "exec",
            inject("exec", |vm, c| {
                let image = ExecImage {
                    text_bytes: 8 * PAGE_SIZE,
                    data_bytes: 4 * PAGE_SIZE,
                    bss_bytes: 0,
                    stack_bytes: 8192,
                };
                client::exec(vm, c.p, &image).is_ok()
            }),
        ),
        (
            "prealloc mmap",
            inject("mmap", |vm, c| {
                let flags = MapFlags::ANON | MapFlags::PRIVATE | MapFlags::PREALLOC;
                let args = MmapArgs { addr: None, len: 16 * PAGE_SIZE, prot: MapProt::RW, flags };
                client::mmap(vm, c.p, &args).is_ok()
            }),
        ),
        // A page fault on an untouched page far from the others (a page table and a frame).
        ("zero fault", inject("fault", |vm, c| client::touch(vm, c.p, FAR, write).is_ok())),
        // A write to a page shared copy-on-write with the child (a copy under Cow).
        ("cow fault", inject("cow", |vm, c| client::touch(vm, c.child, c.private, write).is_ok())),
        (
            "remap",
            inject("remap", |vm, c| {
                let mut m = Message::new(c.ipc, VM_REMAP);
                m.set_m1_i1(SELF.0).set_m1_i2(c.p.0).set_m1_p2(c.shared.0).set_m1_i3(4 * PAGE_SIZE as i32);
                vm.handle(&m, false).is_some_and(|r| r.mtype == 0)
            }),
        ),
        (
            "mremap",
            inject("mremap", |vm, c| {
                client::mremap(vm, c.p, c.private, 8 * PAGE_SIZE, 64 * PAGE_SIZE, true).is_ok()
            }),
        ),
        (
            "munmap",
            inject("munmap", |vm, c| {
                client::munmap(vm, c.p, VirtAddr(c.private.0 + PAGE_SIZE), PAGE_SIZE).is_ok()
            }),
        ),
    ];
    println!("allocation failures injected: {counts:?}");
    for (name, n) in &counts[..6] {
        assert!(*n > 0, "{name} allocated nothing");
    }
    let total: u64 = counts.iter().map(|c| c.1).sum();
    assert!(total > 20, "only {total} failures injected");
}
