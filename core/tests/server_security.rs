//! The ACL is the boundary: every call from every kind of caller without the call's bit is
//! ENOSYS and changes nothing; stale endpoints are refused after exit and slot reuse; no
//! process maps, unmaps, reads or remaps another's memory except through the calls that
//! grant it; RS's calls work only from RS; a faked VM_PAGEFAULT is refused and counted.

mod support;

use vmstorm_core::acl::CallMask;
use vmstorm_core::client::{self, MapFlags, MapProt, MmapArgs, TouchError};
use vmstorm_core::endpoint::{
    Endpoint, ANY, DS_PROC_NR, INIT_PROC_NR, KERNEL, LOG_PROC_NR, MEM_PROC_NR, MFS_PROC_NR, NONE,
    PFS_PROC_NR, PM_PROC_NR, RS_PROC_NR, SELF, SYSTEM, TTY_PROC_NR, VFS_PROC_NR, VM_PROC_NR,
};
use vmstorm_core::errno::Errno;
use vmstorm_core::message::*;
use vmstorm_core::{Bitset, ForkPolicy, VirtAddr, Vm, PAGE_SIZE, X86_64};

use support::{assert_same, boot_sized, call, check, payload, send, MIB};
use vmstorm_core::rng::SplitMix64;

type TestVm = Vm<Bitset, X86_64>;

fn vm() -> TestVm {
    boot_sized(16 * MIB, 64, ForkPolicy::Cow)
}

const ENOSYS: i32 = Errno::ENOSYS.code();

/// The masks MINIX's RS table gives the boot processes (minix-vm.md §6).
fn boot_mask(ep: Endpoint) -> CallMask {
    match ep {
        PM_PROC_NR => CallMask::PM,
        RS_PROC_NR => CallMask::RS,
        VM_PROC_NR => CallMask::EMPTY,
        _ => CallMask::BASIC,
    }
}

fn mmap_rw(vm: &mut TestVm, p: Endpoint, pages: u64, flags: MapFlags) -> VirtAddr {
    let args =
        MmapArgs { addr: None, len: pages * PAGE_SIZE, prot: MapProt::RW, flags: MapFlags::ANON | flags };
    client::mmap(vm, p, &args).expect("mmap")
}

/// Sends every call number `source` may not use (with two random payloads and an empty
/// one) and checks each is ENOSYS and counted as refused, and that together they changed
/// nothing.
fn assert_refused_outside(vm: &mut TestVm, source: Endpoint, mask: CallMask, mix: &mut SplitMix64) -> usize {
    let mut sent = 0;
    let before = vm.snapshot();
    let numbers =
        (VM_RQ_BASE - 2..VM_RQ_BASE + NR_VM_CALLS as i32 + 3).chain([0, -1, i32::MIN, i32::MAX, 0xCFE]);
    for mtype in numbers {
        if let Some(c) = call_index(mtype) {
            if mask.allows(c) {
                continue;
            }
        }
        for k in 0..3 {
            let refused = vm.stats().refused;
            let payload = if k == 0 { [0u8; 56] } else { payload(mix) };
            let reply = send(vm, source, mtype, |m| m.payload = payload);
            let reply = reply.unwrap_or_else(|| panic!("no reply to {mtype:#x} from {source:?}"));
            // A call from a sender that is not alive gets `vm_isokendpt`'s answer
            // (EDEADSRCDST, or EINVAL for a non-process endpoint); any other refusal ENOSYS.
            let want = match (call_index(mtype), vm.check_endpoint(source)) {
                (Some(_), Err(e)) => e.code(),
                _ => ENOSYS,
            };
            assert_eq!(reply.mtype, want, "{mtype:#x} from {source:?} was not refused");
            assert_eq!(vm.stats().refused, refused + 1, "refusal of {mtype:#x} not counted");
            sent += 1;
        }
    }
    assert_same(&vm.snapshot(), &before, &format!("refused calls from {source:?} changed the state"));
    sent
}

#[test]
fn calls_outside_the_acl_are_enosys_for_every_kind_of_caller() {
    let mut vm = vm();
    let mut mix = SplitMix64::new(0x5ec);
    let mut sent = 0;
    // Boot servers, with their own masks.
    for ep in [
        PM_PROC_NR,
        VFS_PROC_NR,
        RS_PROC_NR,
        MEM_PROC_NR,
        LOG_PROC_NR,
        TTY_PROC_NR,
        DS_PROC_NR,
        MFS_PROC_NR,
        VM_PROC_NR,
        PFS_PROC_NR,
        INIT_PROC_NR,
    ] {
        sent += assert_refused_outside(&mut vm, ep, boot_mask(ep), &mut mix);
    }
    // User processes: INIT's children and grandchildren have the basic calls.
    let child = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    let grandchild = client::fork(&mut vm, child).unwrap();
    for ep in [child, grandchild] {
        sent += assert_refused_outside(&mut vm, ep, CallMask::BASIC, &mut mix);
    }
    // Stale endpoints, kernel tasks, magic endpoints, slots beyond the table, garbage:
    // nothing is allowed.
    let stale = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    client::exit(&mut vm, stale).unwrap();
    let mut nobody = vec![stale, KERNEL, SYSTEM, Endpoint(-3), Endpoint(-1023), ANY, NONE, SELF];
    nobody.extend([Endpoint::new(0, 64), Endpoint::new(0, 65_535), Endpoint::new(1, PM_PROC_NR.0)]);
    nobody.extend([Endpoint::new(7, INIT_PROC_NR.0), Endpoint(i32::MIN), Endpoint(i32::MAX)]);
    for _ in 0..20 {
        let e = Endpoint(mix.next_u64() as i32);
        if vm.snapshot().slots.iter().all(|s| s.endpoint != e) {
            nobody.push(e);
        }
    }
    for ep in nobody {
        sent += assert_refused_outside(&mut vm, ep, CallMask::EMPTY, &mut mix);
    }
    check(&vm);
    assert!(sent > 2000, "only {sent} refusals checked");
}

#[test]
fn stale_endpoints_are_refused_after_exit_and_slot_reuse() {
    let mut vm = vm();
    let old = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    let va = mmap_rw(&mut vm, old, 2, MapFlags::PRIVATE);
    client::write_user(&mut vm, old, va, b"old secret").unwrap();
    client::exit(&mut vm, old).unwrap();
    let new = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    assert_eq!(new.slot(), old.slot(), "PM reuses the lowest free slot");
    assert_ne!(new, old, "a reused slot gets a new generation");
    let before = vm.snapshot();

    // The stale endpoint as a sender.
    for mtype in [VM_MMAP, VM_MUNMAP, VM_MPROTECT, VM_DISCARD, VM_MREMAP, VM_MAP_PHYS, VM_UNMAP_PHYS] {
        let r = call(&mut vm, old, mtype, |m| {
            m.set_m5_l1(va.0 as i64).set_m5_l2(PAGE_SIZE as i64);
            m.set_m1_p1(va.0);
        });
        assert_eq!(r, Errno::EDEADSRCDST.code(), "{mtype:#x} from a stale endpoint");
    }
    // The stale endpoint as a target of PM's and RS's calls.
    for mtype in [VM_EXIT, VM_WILLEXIT, VM_BRK, VM_FORK, VM_PUSH_SIG, VM_EXEC_NEWMEM] {
        let r = call(&mut vm, PM_PROC_NR, mtype, |m| {
            m.set_m1_i1(old.0).set_m1_i2(63).set_m1_p1(va.0 + PAGE_SIZE);
        });
        let want = match mtype {
            VM_EXEC_NEWMEM => Errno::ESRCH.code(),
            VM_PUSH_SIG => Errno::EDEADSRCDST.code(),
            _ => Errno::EINVAL.code(),
        };
        assert_eq!(r, want, "{mtype:#x} on a stale endpoint");
    }
    let r = call(&mut vm, RS_PROC_NR, VM_RS_UPDATE, |m| {
        m.set_m1_i1(old.0).set_m1_i2(new.0);
    });
    assert_eq!(r, Errno::EINVAL.code(), "RS_UPDATE with a stale endpoint");
    let r = call(&mut vm, RS_PROC_NR, VM_RS_SET_PRIV, |m| {
        m.set_m2_i1(old.0);
    });
    assert_eq!(r, Errno::EINVAL.code(), "RS_SET_PRIV on a stale endpoint");
    assert_same(&vm.snapshot(), &before, "calls naming a stale endpoint changed the state");

    // Nor can the stale endpoint touch memory, or see what the new process has.
    assert_eq!(
        vm.mmu_translate(old, va, vmstorm_core::Access { write: false, user: true }),
        Err(vmstorm_core::FaultCode(vmstorm_core::FaultCode::USER))
    );
    let mut buf = [0u8; 10];
    assert!(matches!(client::read_user(&mut vm, old, va, &mut buf), Err(TouchError::BadEndpoint)));
    // The new process in the reused slot does not inherit the old one's memory.
    assert!(matches!(client::read_user(&mut vm, new, va, &mut buf), Err(TouchError::Signalled(_))));
    check(&vm);
}

#[test]
fn a_process_cannot_reach_another_ones_memory() {
    let mut vm = vm();
    let a = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    let b = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    let va = mmap_rw(&mut vm, a, 4, MapFlags::PRIVATE | MapFlags::PREALLOC);
    let secret = b"a's private bytes";
    client::write_user(&mut vm, a, va, secret).unwrap();
    let a_before = vm.snapshot().slots.into_iter().find(|s| s.endpoint == a).unwrap();

    // Every memory call b can make acts on b's own space only.
    let len = 4 * PAGE_SIZE as i64;
    let _ = call(&mut vm, b, VM_MUNMAP, |m| {
        m.set_m1_p1(va.0).set_m1_p2(len as u64);
    });
    let _ = call(&mut vm, b, VM_MPROTECT, |m| {
        m.set_m5_l1(va.0 as i64).set_m5_l2(len).set_m5_s1(0);
    });
    let _ = call(&mut vm, b, VM_DISCARD, |m| {
        m.set_m5_l1(va.0 as i64).set_m5_l2(len);
    });
    let _ = call(&mut vm, b, VM_MREMAP, |m| {
        m.set_m5_l1(va.0 as i64).set_m5_l2(len).set_m5_l3(2 * len).set_m5_s2(1);
    });
    // b maps its own memory at a's address, writes there.
    let fixed = MmapArgs {
        addr: Some(va),
        len: PAGE_SIZE,
        prot: MapProt::RW,
        flags: MapFlags::ANON | MapFlags::PRIVATE | MapFlags::FIXED,
    };
    if let Ok(bva) = client::mmap(&mut vm, b, &fixed) {
        client::write_user(&mut vm, b, bva, b"b's bytes").unwrap();
        let mut buf = [0u8; 17];
        client::read_user(&mut vm, b, bva, &mut buf).unwrap();
        assert_ne!(&buf, secret);
    }
    // Device-memory calls aimed at a are refused, and so is RAM for anyone.
    let r = call(&mut vm, b, VM_MAP_PHYS, |m| {
        m.set_m1_i1(a.0).set_m1_p2(1 << 40).set_m1_i2(PAGE_SIZE as i32);
    });
    assert_eq!(r, Errno::EPERM.code(), "VM_MAP_PHYS for another process");
    for phys in [0, PAGE_SIZE, 8 * MIB] {
        let r = call(&mut vm, b, VM_MAP_PHYS, |m| {
            m.set_m1_i1(SELF.0).set_m1_p2(phys).set_m1_i2(PAGE_SIZE as i32);
        });
        assert_eq!(r, Errno::EPERM.code(), "VM_MAP_PHYS of RAM at {phys:#x}");
    }
    // TTY may map device memory for others (the console), but never RAM.
    for phys in [0, 8 * MIB] {
        let r = call(&mut vm, TTY_PROC_NR, VM_MAP_PHYS, |m| {
            m.set_m1_i1(b.0).set_m1_p2(phys).set_m1_i2(PAGE_SIZE as i32);
        });
        assert_eq!(r, Errno::EPERM.code(), "TTY's VM_MAP_PHYS of RAM at {phys:#x} for another process");
    }
    let r = call(&mut vm, b, VM_UNMAP_PHYS, |m| {
        m.set_m1_i1(a.0).set_m1_p1(va.0);
    });
    assert_eq!(r, Errno::EPERM.code(), "VM_UNMAP_PHYS against another process");
    // IPC's calls without IPC's privileges.
    for mtype in [VM_REMAP, VM_SHM_UNMAP, VM_GETPHYS, VM_GETREF, VM_INFO, VM_QUERY_EXIT] {
        let r = call(&mut vm, b, mtype, |m| {
            m.set_m1_i1(b.0).set_m1_i2(a.0).set_m1_p2(va.0).set_m1_i3(len as i32);
            m.set_m2_l1(va.0 as i64);
        });
        assert_eq!(r, ENOSYS, "{mtype:#x} from a user process");
    }
    let a_after = vm.snapshot().slots.into_iter().find(|s| s.endpoint == a).unwrap();
    assert_eq!(a_after, a_before, "another process's calls changed a");
    let mut buf = [0u8; 17];
    client::read_user(&mut vm, a, va, &mut buf).unwrap();
    assert_eq!(&buf, secret);
    check(&vm);
}

#[test]
fn remap_by_a_privileged_ipc_server_shares_only_shared_regions() {
    let mut vm = vm();
    let ipc = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    let owner = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    // RS gives the "ipc" service its calls, as publish_service does.
    let mask =
        CallMask::BASIC.union(CallMask::of(&[VM_REMAP, VM_SHM_UNMAP, VM_GETPHYS, VM_GETREF, VM_QUERY_EXIT]));
    set_priv(&mut vm, ipc, mask).expect("RS_SET_PRIV");
    let shared = mmap_rw(&mut vm, owner, 2, MapFlags::SHARED);
    let private = mmap_rw(&mut vm, owner, 2, MapFlags::PRIVATE);
    client::write_user(&mut vm, owner, shared, b"shm segment").unwrap();
    client::write_user(&mut vm, owner, private, b"not for ipc").unwrap();

    // A private region cannot be remapped, even by IPC.
    let r = call(&mut vm, ipc, VM_REMAP, |m| {
        m.set_m1_i1(SELF.0).set_m1_i2(owner.0).set_m1_p2(private.0).set_m1_i3(2 * PAGE_SIZE as i32);
    });
    assert_eq!(r, Errno::EFAULT.code(), "remap of a private region");
    // A shared one can: IPC now sees the owner's bytes and writes through.
    let reply = send(&mut vm, ipc, VM_REMAP, |m| {
        m.set_m1_i1(SELF.0).set_m1_i2(owner.0).set_m1_p2(shared.0).set_m1_i3(2 * PAGE_SIZE as i32);
    })
    .unwrap();
    assert_eq!(reply.mtype, 0, "remap of a shared region");
    let at = VirtAddr(reply.m1_p3());
    let mut buf = [0u8; 11];
    client::read_user(&mut vm, ipc, at, &mut buf).unwrap();
    assert_eq!(&buf, b"shm segment");
    client::write_user(&mut vm, ipc, at, b"SHM").unwrap();
    client::read_user(&mut vm, owner, shared, &mut buf).unwrap();
    assert_eq!(&buf, b"SHM segment");
    // The same call from a process without the privilege is refused.
    let r = call(&mut vm, owner, VM_REMAP, |m| {
        m.set_m1_i1(SELF.0).set_m1_i2(ipc.0).set_m1_p2(at.0).set_m1_i3(2 * PAGE_SIZE as i32);
    });
    assert_eq!(r, ENOSYS);
    check(&vm);
}

/// RS sets `target`'s mask: writes it into RS's own memory and sends VM_RS_SET_PRIV.
fn set_priv(vm: &mut TestVm, target: Endpoint, mask: CallMask) -> Result<(), i32> {
    let buf = mmap_rw(vm, RS_PROC_NR, 1, MapFlags::PRIVATE);
    client::write_user(vm, RS_PROC_NR, buf, &mask.to_wire()).unwrap();
    let r = call(vm, RS_PROC_NR, VM_RS_SET_PRIV, |m| {
        m.set_m2_i1(target.0).set_m2_l1(buf.0 as i64);
    });
    client::munmap(vm, RS_PROC_NR, buf, PAGE_SIZE).unwrap();
    if r == 0 {
        Ok(())
    } else {
        Err(r)
    }
}

#[test]
fn rs_calls_work_only_from_rs() {
    let mut vm = vm();
    let user = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    let other = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    // A process forked from RS inherits RS's mask (§21.12) but is not RS.
    let rs_child = client::fork(&mut vm, RS_PROC_NR).unwrap();
    let all = vm.snapshot();
    let mask_buf = mmap_rw(&mut vm, rs_child, 1, MapFlags::PRIVATE);
    client::write_user(&mut vm, rs_child, mask_buf, &CallMask::ALL.to_wire()).unwrap();
    let _ = all;
    for caller in [PM_PROC_NR, VFS_PROC_NR, INIT_PROC_NR, user, rs_child] {
        let before = vm.snapshot();
        let r = call(&mut vm, caller, VM_RS_SET_PRIV, |m| {
            m.set_m2_i1(user.0).set_m2_l1(mask_buf.0 as i64);
        });
        // RS's calls are not in the others' masks; RS's child has the mask but is not RS.
        let want = if caller == rs_child { Errno::EPERM } else { Errno::ENOSYS };
        assert_eq!(r, want.code(), "RS_SET_PRIV from {caller:?}");
        let r = call(&mut vm, caller, VM_RS_UPDATE, |m| {
            m.set_m1_i1(user.0).set_m1_i2(other.0);
        });
        assert_eq!(r, want.code(), "RS_UPDATE from {caller:?}");
        assert_same(&vm.snapshot(), &before, &format!("refused RS call from {caller:?} changed the state"));
    }
    // The user still cannot call PM's calls.
    assert_eq!(
        call(&mut vm, user, VM_FORK, |m| {
            m.set_m1_i1(user.0).set_m1_i2(60);
        }),
        ENOSYS
    );
    // From RS both work.
    set_priv(&mut vm, user, CallMask::BASIC.union(CallMask::of(&[VM_INFO]))).expect("RS_SET_PRIV from RS");
    let r = call(&mut vm, RS_PROC_NR, VM_RS_UPDATE, |m| {
        m.set_m1_i1(user.0).set_m1_i2(other.0);
    });
    assert_eq!(r, 0, "RS_UPDATE from RS");
    check(&vm);
}

#[test]
fn faked_page_faults_are_refused_and_counted() {
    let mut vm = vm();
    let p = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    let va = mmap_rw(&mut vm, p, 2, MapFlags::PRIVATE);
    let mut mix = SplitMix64::new(0xfa4e);
    let stale = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    client::exit(&mut vm, stale).unwrap();
    let mut faked = 0;
    for source in [p, PM_PROC_NR, RS_PROC_NR, INIT_PROC_NR, stale, KERNEL, SYSTEM, ANY, Endpoint(12_345_678)]
    {
        for addr in [va.0, va.0 + PAGE_SIZE, 0, u64::MAX, mix.next_u64()] {
            for code in [0, 2, 4, 6, 7] {
                let before = vm.snapshot();
                let counted = vm.stats().faked_faults;
                let reply = send(&mut vm, source, VM_PAGEFAULT, |m| {
                    m.set_m1_p1(addr).set_m1_i2(code);
                });
                if let Some(r) = reply {
                    assert_eq!(r.mtype, Errno::EPERM.code(), "faked fault from {source:?}");
                }
                assert_eq!(vm.stats().faked_faults, counted + 1, "faked fault not counted");
                assert_same(
                    &vm.snapshot(),
                    &before,
                    &format!("faked fault from {source:?} at {addr:#x} changed the state"),
                );
                faked += 1;
            }
        }
    }
    // The same fault from the kernel maps the page.
    let counted = vm.stats().faked_faults;
    let mut m = Message::new(p, VM_PAGEFAULT);
    m.set_m1_p1(va.0).set_m1_i2(6);
    assert!(vm.handle(&m, true).is_none(), "a page fault is never answered");
    assert_eq!(vm.stats().faked_faults, counted);
    assert!(vm.mmu_translate(p, va, vmstorm_core::Access { write: true, user: true }).is_ok());
    assert_eq!(faked, 9 * 5 * 5);
    check(&vm);
}

#[test]
fn shared_memory_outlives_its_owner_but_not_into_a_reused_slot() {
    let mut vm = vm();
    let free_at_boot = vm.free_frames();
    let ipc = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    set_priv(&mut vm, ipc, CallMask::BASIC.union(CallMask::of(&[VM_REMAP, VM_SHM_UNMAP, VM_GETREF])))
        .unwrap();
    let owner = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    let shared = mmap_rw(&mut vm, owner, 2, MapFlags::SHARED);
    client::write_user(&mut vm, owner, shared, b"shm").unwrap();
    let remap = |vm: &mut TestVm, dst: Endpoint, src: Endpoint, at: VirtAddr| {
        let r = send(vm, ipc, VM_REMAP, |m| {
            m.set_m1_i1(dst.0).set_m1_i2(src.0).set_m1_p2(at.0).set_m1_i3(2 * PAGE_SIZE as i32);
        })
        .unwrap();
        assert_eq!(r.mtype, 0, "remap from {src:?} to {dst:?}");
        VirtAddr(r.m1_p3())
    };
    let at = remap(&mut vm, SELF, owner, shared);
    let r = send(&mut vm, ipc, VM_GETREF, |m| {
        m.set_m2_i1(owner.0).set_m2_l1(shared.0 as i64);
    })
    .unwrap();
    assert_eq!((r.mtype, r.m2_i2()), (0, 2), "owner and ipc share the frame");
    // IPC passes its mapping on to a third process.
    let third = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    let at3 = remap(&mut vm, third, SELF, at);
    // The owner forks and exits: its child and the others still share the memory.
    let heir = client::fork(&mut vm, owner).unwrap();
    client::exit(&mut vm, owner).unwrap();
    client::write_user(&mut vm, heir, shared, b"SHM").unwrap();
    let mut buf = [0u8; 3];
    for (who, va) in [(ipc, at), (third, at3)] {
        client::read_user(&mut vm, who, va, &mut buf).unwrap();
        assert_eq!(&buf, b"SHM", "{who:?} lost the shared memory");
    }
    // A process in the owner's old slot has nothing there.
    let reuse = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    assert_eq!(reuse.slot(), owner.slot());
    assert!(matches!(client::read_user(&mut vm, reuse, shared, &mut buf), Err(TouchError::Signalled(_))));
    let r = call(&mut vm, ipc, VM_SHM_UNMAP, |m| {
        m.set_m2_i1(SELF.0).set_m2_l1(at.0 as i64);
    });
    assert_eq!(r, 0);
    assert!(matches!(client::read_user(&mut vm, ipc, at, &mut buf), Err(TouchError::Signalled(_))));
    check(&vm);
    for p in [heir, reuse, third, ipc] {
        client::exit(&mut vm, p).unwrap();
    }
    check(&vm);
    assert_eq!(vm.free_frames(), free_at_boot, "shared frames leaked");
}
