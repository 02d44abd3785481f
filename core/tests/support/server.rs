//! Driving a whole server: booting small servers (one invariant check after each step),
//! processes and their memory, raw messages, and snapshot comparison.

use vmstorm_core::client::{self, MmapArgs};
use vmstorm_core::endpoint::INIT_PROC_NR;
use vmstorm_core::message::Message;
use vmstorm_core::rng::SplitMix64;
use vmstorm_core::*;

/// Arena size used by the tests: 16 MiB.
pub const ARENA: u64 = 16 << 20;

/// One MiB.
pub const MIB: u64 = 1 << 20;

/// A booted server over a 16 MiB arena with the given fork policy.
pub fn boot<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) -> Vm<F, P> {
    boot_sized(ARENA, VmConfig::default().slots, fork)
}

/// A booted server over an arena of `bytes` with `slots` process slots.
pub fn boot_sized<F: FrameAllocator, P: PagingFormat>(
    bytes: u64,
    slots: usize,
    fork: ForkPolicy,
) -> Vm<F, P> {
    let cfg = VmConfig { fork, slots, ..VmConfig::with_bytes(bytes) };
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

/// An anonymous region of at least `pages` pages starting at an address aligned to `align`
/// pages (mapped `align` pages larger and the start rounded up).
pub fn aligned_anon<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    ep: Endpoint,
    pages: u64,
    align: u64,
) -> VirtAddr {
    let a = anon(vm, ep, (pages + align) * PAGE_SIZE);
    VirtAddr(a.0.next_multiple_of(align * PAGE_SIZE))
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

/// Sends `mtype` from `source` with the payload `fill` writes; returns the reply.
pub fn send<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    source: Endpoint,
    mtype: i32,
    fill: impl FnOnce(&mut Message),
) -> Option<Message> {
    let mut m = Message::new(source, mtype);
    fill(&mut m);
    vm.handle(&m, false)
}

/// Like [`send`], and returns the reply's `mtype` (panics when there is no reply).
pub fn call<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    source: Endpoint,
    mtype: i32,
    fill: impl FnOnce(&mut Message),
) -> i32 {
    send(vm, source, mtype, fill).unwrap_or_else(|| panic!("no reply to {mtype:#x} from {source:?}")).mtype
}

/// A random message payload.
pub fn payload(rng: &mut SplitMix64) -> [u8; 56] {
    let mut p = [0u8; 56];
    rng.fill(&mut p);
    p
}

/// Asserts two snapshots are equal, printing only what differs.
#[track_caller]
pub fn assert_same(after: &vmstorm_core::VmSnapshot, before: &vmstorm_core::VmSnapshot, what: &str) {
    if after == before {
        return;
    }
    let mut out = String::new();
    for s in &before.slots {
        match after.slots.iter().find(|t| t.slot == s.slot) {
            None => out.push_str(&format!("\n  slot {} ({:?}) gone", s.slot, s.endpoint)),
            Some(t) if t != s => {
                out.push_str(&format!("\n  slot {} ({:?}):", s.slot, s.endpoint));
                if t.endpoint != s.endpoint
                    || t.exiting != s.exiting
                    || t.has_dma != s.has_dma
                    || t.mask != s.mask
                {
                    out.push_str(&format!(
                        " flags/mask {:?}/{:?} -> {:?}/{:?}",
                        s.endpoint, s.mask, t.endpoint, t.mask
                    ));
                }
                if t.regions != s.regions {
                    out.push_str(&format!("\n    regions {:?}\n         -> {:?}", s.regions, t.regions));
                }
                if t.heap != s.heap {
                    out.push_str(&format!(" heap {:?} -> {:?}", s.heap, t.heap));
                }
                if t.mappings != s.mappings {
                    let gone: Vec<_> = s.mappings.iter().filter(|m| !t.mappings.contains(m)).collect();
                    let new: Vec<_> = t.mappings.iter().filter(|m| !s.mappings.contains(m)).collect();
                    out.push_str(&format!("\n    mappings removed {gone:?}\n    mappings added {new:?}"));
                }
                if t.contents != s.contents {
                    out.push_str(" contents changed");
                }
            }
            _ => {}
        }
    }
    for t in &after.slots {
        if !before.slots.iter().any(|s| s.slot == t.slot) {
            out.push_str(&format!("\n  new slot {} ({:?})", t.slot, t.endpoint));
        }
    }
    if after.refs != before.refs {
        out.push_str("\n  reference counts changed");
    }
    if after.free_frames != before.free_frames || after.pt_pages != before.pt_pages {
        out.push_str(&format!(
            "\n  free frames {} -> {}, page tables {} -> {}",
            before.free_frames, after.free_frames, before.pt_pages, after.pt_pages
        ));
    }
    if after.dma != before.dma || after.exits != before.exits {
        out.push_str("\n  dma or exit tables changed");
    }
    panic!("{what}:{out}");
}
