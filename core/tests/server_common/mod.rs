//! Shared helpers for the server integration tests: booting small servers and running one
//! scenario over every allocator × paging format × fork policy.
#![allow(dead_code)]

use vmstorm_core::client::{self, MmapArgs};
use vmstorm_core::endpoint::INIT_PROC_NR;
use vmstorm_core::*;

/// Arena size used by the tests: 16 MiB.
pub const ARENA: u64 = 16 << 20;

/// A booted server over a 16 MiB arena with the given fork policy.
pub fn boot<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) -> Vm<F, P> {
    let cfg = VmConfig { fork, ..VmConfig::with_bytes(ARENA) };
    let vm = Vm::<F, P>::boot(cfg).expect("boot");
    check(&vm);
    vm
}

/// A booted server whose allocator can be told to fail.
pub fn boot_failing<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) -> Vm<FailingAllocator<F>, P> {
    let cfg = VmConfig { fork, ..VmConfig::with_bytes(ARENA) };
    let alloc = FailingAllocator::new(F::with_frames(ARENA / PAGE_SIZE));
    let vm = Vm::<FailingAllocator<F>, P>::boot_with(cfg, alloc).expect("boot");
    check(&vm);
    vm
}

/// Runs the full sanity check and panics with its message on failure.
#[track_caller]
pub fn check<F: FrameAllocator, P: PagingFormat>(vm: &Vm<F, P>) {
    if let Err(e) = vm.check_invariants(SanityLevel::Detail) {
        panic!("invariant broken: {e}");
    }
}

/// A child of INIT.
pub fn child<F: FrameAllocator, P: PagingFormat>(vm: &mut Vm<F, P>) -> Endpoint {
    let c = client::fork(vm, INIT_PROC_NR).expect("fork");
    check(vm);
    c
}

/// Anonymous private read/write mmap of `len` bytes.
pub fn anon<F: FrameAllocator, P: PagingFormat>(vm: &mut Vm<F, P>, ep: Endpoint, len: u64) -> VirtAddr {
    let a = client::mmap(vm, ep, &MmapArgs::anon(len)).expect("mmap");
    check(vm);
    a
}

/// Writes `data` at `va` of `ep` as the process would.
pub fn put<F: FrameAllocator, P: PagingFormat>(vm: &mut Vm<F, P>, ep: Endpoint, va: VirtAddr, data: &[u8]) {
    client::write_user(vm, ep, va, data).expect("write_user");
    check(vm);
}

/// Reads `n` bytes at `va` of `ep` as the process would.
pub fn get<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    ep: Endpoint,
    va: VirtAddr,
    n: usize,
) -> Vec<u8> {
    let mut b = vec![0u8; n];
    client::read_user(vm, ep, va, &mut b).expect("read_user");
    b
}

/// Defines a module `$name` with one test per allocator × format × fork policy, each
/// calling `$body::<Alloc, Format>(policy)`.
#[macro_export]
macro_rules! every_strategy {
    ($name:ident, $body:ident) => {
        mod $name {
            use super::*;
            use vmstorm_core::{Bitset, Buddy, ForkPolicy, HoleList, I386, X86_64};
            #[test]
            fn bitset_x86_64_cow() {
                $body::<Bitset, X86_64>(ForkPolicy::Cow)
            }
            #[test]
            fn bitset_x86_64_share() {
                $body::<Bitset, X86_64>(ForkPolicy::Share)
            }
            #[test]
            fn bitset_x86_64_copy() {
                $body::<Bitset, X86_64>(ForkPolicy::Copy)
            }
            #[test]
            fn bitset_i386_cow() {
                $body::<Bitset, I386>(ForkPolicy::Cow)
            }
            #[test]
            fn bitset_i386_share() {
                $body::<Bitset, I386>(ForkPolicy::Share)
            }
            #[test]
            fn bitset_i386_copy() {
                $body::<Bitset, I386>(ForkPolicy::Copy)
            }
            #[test]
            fn buddy_x86_64_cow() {
                $body::<Buddy, X86_64>(ForkPolicy::Cow)
            }
            #[test]
            fn buddy_x86_64_share() {
                $body::<Buddy, X86_64>(ForkPolicy::Share)
            }
            #[test]
            fn buddy_x86_64_copy() {
                $body::<Buddy, X86_64>(ForkPolicy::Copy)
            }
            #[test]
            fn buddy_i386_cow() {
                $body::<Buddy, I386>(ForkPolicy::Cow)
            }
            #[test]
            fn buddy_i386_share() {
                $body::<Buddy, I386>(ForkPolicy::Share)
            }
            #[test]
            fn buddy_i386_copy() {
                $body::<Buddy, I386>(ForkPolicy::Copy)
            }
            #[test]
            fn holelist_x86_64_cow() {
                $body::<HoleList, X86_64>(ForkPolicy::Cow)
            }
            #[test]
            fn holelist_x86_64_share() {
                $body::<HoleList, X86_64>(ForkPolicy::Share)
            }
            #[test]
            fn holelist_x86_64_copy() {
                $body::<HoleList, X86_64>(ForkPolicy::Copy)
            }
            #[test]
            fn holelist_i386_cow() {
                $body::<HoleList, I386>(ForkPolicy::Cow)
            }
            #[test]
            fn holelist_i386_share() {
                $body::<HoleList, I386>(ForkPolicy::Share)
            }
            #[test]
            fn holelist_i386_copy() {
                $body::<HoleList, I386>(ForkPolicy::Copy)
            }
        }
    };
}
