//! A 64-bit program whose heap grows to 3 GiB with sbrk (`fixtures/heap/sbrk-3g.vmtrace`):
//! replayed with verification under every allocator × fork policy × zeroing policy on
//! x86-64, whose layout has room for it; under i386, whose MINIX layout ends the stack at
//! 2 GiB, the brk is refused with one line that says why and never suggests a larger
//! arena.

use std::path::Path;
use std::process::Command;

use vmstorm_core::{FrameAllocator, PagingFormat, Vm};
use vmstorm_loadgen::commands::load_for_replay;
use vmstorm_loadgen::op::Trace;
use vmstorm_loadgen::replay::{ReplayOptions, Replayer};
use vmstorm_loadgen::strategy::{matrix, with_vm, VmJob};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/heap/sbrk-3g.vmtrace");

struct Verify<'a>(&'a Trace);

impl VmJob for Verify<'_> {
    type Output = Result<u64, String>;
    fn run<F: FrameAllocator, P: PagingFormat>(self, vm: &mut Vm<F, P>) -> Self::Output {
        let boot_free = vm.free_frames();
        let mut r = Replayer::new(vm, boot_free, ReplayOptions { verify: true, check_every: 4, timed: true });
        r.play_all(&self.0.ops, None).map_err(|e| e.to_string())?;
        let m = r.finish().map_err(|e| e.to_string())?;
        Ok(m.verify.map(|v| v.checked).unwrap_or(0))
    }
}

#[test]
fn a_3_gib_heap_replays_verified_on_x86_64() {
    let trace = load_for_replay(Path::new(FIXTURE), 0.25, 1).unwrap();
    let strategies = matrix("all", "x86-64", "all", "all").unwrap();
    assert_eq!(strategies.len(), vmstorm_core::AllocKind::ALL.len() * 3 * 2);
    for s in &strategies {
        let checked =
            with_vm(s, 64 << 20, Verify(&trace)).unwrap().unwrap_or_else(|e| panic!("under {s}: {e}"));
        // The touches across the heap, after the fork and after the shrink were checked.
        assert!(checked >= 40, "under {s}: {checked} checks");
    }
}

#[test]
fn a_3_gib_heap_is_clamped_on_i386_replayed_verified_and_reported() {
    let trace = load_for_replay(Path::new(FIXTURE), 0.25, 1).unwrap();
    let strategies = matrix("all", "i386", "all", "all").unwrap();
    assert_eq!(strategies.len(), vmstorm_core::AllocKind::ALL.len() * 3 * 2);
    for s in &strategies {
        let checked =
            with_vm(s, 64 << 20, Verify(&trace)).unwrap().unwrap_or_else(|e| panic!("under {s}: {e}"));
        assert!(checked >= 20, "under {s}: {checked} checks");
    }
    // The CLI replays it and says what was clamped, even with a large arena.
    let out = Command::new(env!("CARGO_BIN_EXE_vmstorm"))
        .args(["replay", FIXTURE, "--paging", "i386", "--verify", "--mem", "8G", "--no-warmup"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}{err}");
    assert!(
        text.contains("heap clamped: 1 brk calls") && text.contains("a larger --mem cannot help"),
        "{text}"
    );
    assert!(!text.contains("try a larger --mem"), "{text}");
}

#[test]
fn a_real_3_gib_sbrk_replays_verified_under_every_strategy() {
    let real = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/real/bigheap.vmtrace");
    let trace = load_for_replay(Path::new(real), 0.25, 1).unwrap();
    let strategies = matrix("all", "all", "all", "on-fault").unwrap();
    for s in &strategies {
        let checked =
            with_vm(s, 64 << 20, Verify(&trace)).unwrap().unwrap_or_else(|e| panic!("under {s}: {e}"));
        assert!(checked >= 20, "under {s}: {checked} checks");
    }
}
