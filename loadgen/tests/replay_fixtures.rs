//! Every strace fixture (and its expected .vmtrace) replayed with verification under every
//! allocator × paging format (and every large-folio size): 64-bit Linux traces land in i386
//! spaces too.

use std::path::{Path, PathBuf};

use vmstorm_core::{FrameAllocator, PagingFormat, Vm};
use vmstorm_loadgen::commands::load_for_replay;
use vmstorm_loadgen::op::Trace;
use vmstorm_loadgen::replay::{ReplayOptions, Replayer};
use vmstorm_loadgen::strategy::{matrix, with_folio, with_huge, with_vm, FolioSize, VmJob};

struct Verify<'a>(&'a Trace);

impl VmJob for Verify<'_> {
    type Output = Result<u64, String>;
    fn run<F: FrameAllocator, P: PagingFormat>(self, vm: &mut Vm<F, P>) -> Self::Output {
        let boot_free = vm.free_frames();
        let mut r =
            Replayer::new(vm, boot_free, ReplayOptions { verify: true, check_every: 1000, timed: true });
        r.play_all(&self.0.ops, None).map_err(|e| e.to_string())?;
        let m = r.finish().map_err(|e| e.to_string())?;
        Ok(m.verify.map(|v| v.checked).unwrap_or(0))
    }
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("strace") | Some("vmtrace")))
        .collect();
    v.sort();
    assert!(v.len() >= 8, "fixtures missing: {v:?}");
    v
}

#[test]
fn every_fixture_replays_verified_under_every_allocator_and_format() {
    let strategies = matrix("all", "all", "cow", "on-fault").unwrap();
    for path in fixtures() {
        let trace = load_for_replay(&path, 0.3, 3).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(trace.has_touches());
        for s in &strategies {
            let checked = with_vm(s, 256 << 20, Verify(&trace))
                .unwrap()
                .unwrap_or_else(|e| panic!("{} under {s}: {e}", path.display()));
            assert!(checked > 0, "{} under {s}", path.display());
        }
    }
}

#[test]
fn fixtures_replay_under_eager_fork_and_prezeroed_frames() {
    let strategies = matrix("bitset", "all", "copy", "prezeroed").unwrap();
    for path in fixtures().into_iter().filter(|p| p.extension().is_some_and(|e| e == "vmtrace")) {
        let trace = load_for_replay(&path, 0.25, 1).unwrap();
        for s in &strategies {
            with_vm(s, 256 << 20, Verify(&trace))
                .unwrap()
                .unwrap_or_else(|e| panic!("{} under {s}: {e}", path.display()));
        }
    }
}

#[test]
fn fixtures_replay_verified_under_every_folio_size() {
    let strategies: Vec<_> = with_folio(matrix("all", "all", "cow", "on-fault").unwrap(), "all")
        .unwrap()
        .into_iter()
        .filter(|s| s.folio != FolioSize::K4)
        .collect();
    for path in fixtures() {
        let trace = load_for_replay(&path, 0.3, 3).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for s in &strategies {
            let checked = with_vm(s, 256 << 20, Verify(&trace))
                .unwrap()
                .unwrap_or_else(|e| panic!("{} under {s}: {e}", path.display()));
            assert!(checked > 0, "{} under {s}", path.display());
        }
    }
}

#[test]
fn fixtures_replay_verified_under_huge_pages() {
    let strategies = with_huge(matrix("all", "all", "cow", "on-fault").unwrap(), "always").unwrap();
    for path in fixtures() {
        let trace = load_for_replay(&path, 0.3, 3).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for s in &strategies {
            let checked = with_vm(s, 256 << 20, Verify(&trace))
                .unwrap()
                .unwrap_or_else(|e| panic!("{} under {s}: {e}", path.display()));
            assert!(checked > 0, "{} under {s}", path.display());
        }
    }
}
