//! Test-only helpers for driving a whole server: booting small servers, raw messages,
//! and a macro that instantiates a test for every allocator × format × fork policy.
#![allow(dead_code)]

use vmstorm_core::arena::ArenaConfig;
use vmstorm_core::endpoint::Endpoint;
use vmstorm_core::message::Message;
use vmstorm_core::{ForkPolicy, FrameAllocator, PagingFormat, SanityLevel, Vm, VmConfig};

/// One MiB.
pub const MIB: u64 = 1 << 20;

/// A server over an arena of `bytes` with `slots` process slots.
pub fn boot<F: FrameAllocator, P: PagingFormat>(bytes: u64, slots: usize, fork: ForkPolicy) -> Vm<F, P> {
    let config =
        VmConfig { arena: ArenaConfig { bytes, ..Default::default() }, slots, fork, ..Default::default() };
    Vm::boot(config).expect("boot")
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

/// Asserts the deepest invariant check passes.
#[track_caller]
pub fn sane<F: FrameAllocator, P: PagingFormat>(vm: &Vm<F, P>) {
    if let Err(e) = vm.check_invariants(SanityLevel::Detail) {
        panic!("invariants broken: {e}");
    }
}

/// splitmix64, for reproducible garbage.
pub struct Mix(pub u64);

impl Mix {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A random 56-byte payload.
    pub fn payload(&mut self) -> [u8; 56] {
        let mut p = [0u8; 56];
        for chunk in p.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        p
    }
}

/// Instantiates `$body::<Alloc, Format>(policy)` as one `#[test]` per allocator ×
/// format × fork policy, in a module named `$name`.
#[macro_export]
macro_rules! for_each_config {
    ($name:ident, $body:ident) => {
        mod $name {
            use vmstorm_core::{Bitset, Buddy, ForkPolicy, HoleList, I386, X86_64};
            #[test]
            fn bitset_x86_64_cow() {
                super::$body::<Bitset, X86_64>(ForkPolicy::Cow)
            }
            #[test]
            fn bitset_x86_64_share() {
                super::$body::<Bitset, X86_64>(ForkPolicy::Share)
            }
            #[test]
            fn bitset_x86_64_copy() {
                super::$body::<Bitset, X86_64>(ForkPolicy::Copy)
            }
            #[test]
            fn bitset_i386_cow() {
                super::$body::<Bitset, I386>(ForkPolicy::Cow)
            }
            #[test]
            fn bitset_i386_share() {
                super::$body::<Bitset, I386>(ForkPolicy::Share)
            }
            #[test]
            fn bitset_i386_copy() {
                super::$body::<Bitset, I386>(ForkPolicy::Copy)
            }
            #[test]
            fn buddy_x86_64_cow() {
                super::$body::<Buddy, X86_64>(ForkPolicy::Cow)
            }
            #[test]
            fn buddy_x86_64_share() {
                super::$body::<Buddy, X86_64>(ForkPolicy::Share)
            }
            #[test]
            fn buddy_x86_64_copy() {
                super::$body::<Buddy, X86_64>(ForkPolicy::Copy)
            }
            #[test]
            fn buddy_i386_cow() {
                super::$body::<Buddy, I386>(ForkPolicy::Cow)
            }
            #[test]
            fn buddy_i386_share() {
                super::$body::<Buddy, I386>(ForkPolicy::Share)
            }
            #[test]
            fn buddy_i386_copy() {
                super::$body::<Buddy, I386>(ForkPolicy::Copy)
            }
            #[test]
            fn holelist_x86_64_cow() {
                super::$body::<HoleList, X86_64>(ForkPolicy::Cow)
            }
            #[test]
            fn holelist_x86_64_share() {
                super::$body::<HoleList, X86_64>(ForkPolicy::Share)
            }
            #[test]
            fn holelist_x86_64_copy() {
                super::$body::<HoleList, X86_64>(ForkPolicy::Copy)
            }
            #[test]
            fn holelist_i386_cow() {
                super::$body::<HoleList, I386>(ForkPolicy::Cow)
            }
            #[test]
            fn holelist_i386_share() {
                super::$body::<HoleList, I386>(ForkPolicy::Share)
            }
            #[test]
            fn holelist_i386_copy() {
                super::$body::<HoleList, I386>(ForkPolicy::Copy)
            }
        }
    };
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
