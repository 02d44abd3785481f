//! Every storm, with verification, under every allocator × paging format × fork policy (and
//! both zeroing policies), and under every large-folio size, at a small scale.

use vmstorm_core::{FrameAllocator, PagingFormat, Vm};
use vmstorm_loadgen::op::Trace;
use vmstorm_loadgen::replay::{ReplayOptions, Replayer};
use vmstorm_loadgen::storms::{generate, StormKind};
use vmstorm_loadgen::strategy::{matrix, with_folio, with_huge, with_vm, FolioSize, Strategy, VmJob};

struct Verify<'a>(&'a Trace);

impl VmJob for Verify<'_> {
    type Output = Result<(u64, u64), String>;
    fn run<F: FrameAllocator, P: PagingFormat>(self, vm: &mut Vm<F, P>) -> Self::Output {
        let boot_free = vm.free_frames();
        let opts = ReplayOptions { verify: true, check_every: 500, timed: true };
        let mut r = Replayer::new(vm, boot_free, opts);
        r.play_all(&self.0.ops, None).map_err(|e| e.to_string())?;
        let m = r.finish().map_err(|e| e.to_string())?;
        let v = m.verify.ok_or("no verify counts")?;
        assert!(v.ok);
        Ok((m.ops, v.checked))
    }
}

#[test]
fn every_storm_verifies_under_every_strategy() {
    let strategies = matrix("all", "all", "all", "on-fault").unwrap();
    verify_every_storm(&strategies, 64 << 20);
}

#[test]
fn every_storm_verifies_under_every_folio_size() {
    // Every size above 4 KiB under every allocator and format (copy-on-write fork), and the
    // other fork policies at 64 KiB.
    let mut strategies: Vec<_> = with_folio(matrix("all", "all", "cow", "on-fault").unwrap(), "all")
        .unwrap()
        .into_iter()
        .filter(|s| s.folio != FolioSize::K4)
        .collect();
    for fork in ["share", "copy"] {
        strategies.extend(with_folio(matrix("all", "all", fork, "on-fault").unwrap(), "64k").unwrap());
    }
    verify_every_storm(&strategies, 64 << 20);
}

#[test]
fn every_storm_verifies_under_huge_pages() {
    // Huge pages under every allocator and format (copy-on-write fork, 4 KiB below them and
    // 64 KiB folios below them), and the other fork policies.
    let mut strategies =
        with_huge(with_folio(matrix("all", "all", "cow", "on-fault").unwrap(), "4k").unwrap(), "always")
            .unwrap();
    strategies.extend(
        with_huge(with_folio(matrix("buddy", "all", "cow", "on-fault").unwrap(), "64k").unwrap(), "always")
            .unwrap(),
    );
    for fork in ["share", "copy"] {
        strategies.extend(with_huge(matrix("buddy", "all", fork, "on-fault").unwrap(), "always").unwrap());
    }
    // An eager fork copies every block whole (4 MiB in i386 tables): more than 64 MiB.
    verify_every_storm(&strategies, 256 << 20);
}

/// Plays every storm under each of `strategies` with contents checked after every op, in
/// servers of `mem` bytes.
fn verify_every_storm(strategies: &[Strategy], mem: u64) {
    for kind in StormKind::ALL {
        let trace = generate(kind, 7, 6);
        for s in strategies {
            let (ops, checked) = with_vm(s, mem, Verify(&trace))
                .unwrap()
                .unwrap_or_else(|e| panic!("storm {kind} under {s}: {e}"));
            assert_eq!(ops, trace.ops.len() as u64, "{kind} {s}");
            assert!(checked > 0, "{kind} {s}: nothing checked");
        }
    }
}
