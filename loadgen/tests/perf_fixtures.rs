//! The perf fixtures: each capture imports to its committed `.vmtrace`, its recorded fault
//! count equals what `perf script` prints, and it replays with verification under every
//! allocator × paging format × fork policy, playing its recorded touches (no synthesis).

use std::io::Read;
use std::path::{Path, PathBuf};

use vmstorm_core::{FrameAllocator, PagingFormat, Vm};
use vmstorm_loadgen::commands::load_for_replay;
use vmstorm_loadgen::op::{Op, Trace};
use vmstorm_loadgen::replay::{ReplayOptions, Replayer};
use vmstorm_loadgen::strategy::{matrix, with_vm, VmJob};
use vmstorm_loadgen::trace::{self, load_bytes, parse_text, write_text, Format, ImportOptions};

const FIXTURES: [&str; 4] = ["pipeline", "make", "pool", "remap"];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/perf")
}

fn capture(name: &str) -> Vec<u8> {
    let gz = std::fs::read(dir().join(format!("{name}.perf.data.gz"))).unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
    out
}

fn import(name: &str) -> Trace {
    let l = load_bytes(&capture(name), &format!("{name}.perf.data"), &ImportOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(l.format, Format::Perf);
    l.trace
}

fn temp_capture(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("vmstorm-test-{}-{name}.perf.data", std::process::id()));
    std::fs::write(&p, capture(name)).unwrap();
    p
}

#[test]
fn captures_import_to_their_expected_traces() {
    for name in FIXTURES {
        let got = write_text(&import(name));
        let want = std::fs::read_to_string(dir().join(format!("{name}.vmtrace"))).unwrap();
        assert!(got == want, "{name}: import differs from {name}.vmtrace (re-run record.sh if intended)");
        // The expected trace reads back as the same trace.
        assert_eq!(parse_text(&want, name).unwrap(), import(name));
    }
}

fn perf_script_count(path: &Path) -> Option<u64> {
    let out = std::process::Command::new("perf").args(["script", "-i"]).arg(path).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let n = text
        .lines()
        .filter(|l| l.contains("exceptions:page_fault_user:") || l.contains("exceptions:page_fault_kernel:"))
        .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("address=0x")))
        .filter_map(|a| u64::from_str_radix(a, 16).ok())
        .filter(|&a| a < trace::perf::USER_LIMIT)
        .count();
    Some(n as u64)
}

#[test]
fn recorded_faults_equal_the_fault_events_perf_script_prints() {
    for name in FIXTURES {
        let t = import(name);
        let r = t.header.recorded.expect("perf traces carry recorded faults");
        // Counted with record.sh from `perf script -i` when the fixture was made ...
        let want: u64 =
            std::fs::read_to_string(dir().join(format!("{name}.faults"))).unwrap().trim().parse().unwrap();
        assert_eq!(r.faults, want, "{name}");
        assert_eq!(r.read + r.write + r.protection_write + r.fetch + r.other, r.faults, "{name}");
        assert_eq!(r.lost, 0, "{name}");
        // ... and again now when perf is installed here.
        let tmp = temp_capture(name);
        if let Some(n) = perf_script_count(&tmp) {
            assert_eq!(r.faults, n, "{name}: perf script count");
        }
        let _ = std::fs::remove_file(tmp);
        // Every recorded fault is a touch unless the report says why not.
        let touches = t.ops.iter().filter(|o| matches!(o, Op::Touch { .. })).count() as u64;
        assert!(touches <= r.faults && touches * 100 >= r.faults * 99, "{name}: {touches} of {}", r.faults);
    }
}

#[test]
fn replay_plays_the_recorded_touches_without_synthesis() {
    for name in FIXTURES {
        let tmp = temp_capture(name);
        let played = load_for_replay(&tmp, 0.9, 7).unwrap();
        let _ = std::fs::remove_file(tmp);
        let want = import(name);
        assert!(played.ops == want.ops, "{name}: replay must not add, drop or reorder touches");
        assert_eq!(played.header.recorded, want.header.recorded, "{name}");
    }
}

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

#[test]
fn every_capture_replays_verified_under_every_allocator_format_and_fork_policy() {
    let strategies = matrix("all", "all", "all", "on-fault").unwrap();
    assert_eq!(strategies.len(), vmstorm_core::AllocKind::ALL.len() * 2 * 3);
    for name in FIXTURES {
        let t = import(name);
        for s in &strategies {
            let checked = with_vm(s, 256 << 20, Verify(&t))
                .unwrap()
                .unwrap_or_else(|e| panic!("{name} under {s}: {e}"));
            assert!(checked > 0, "{name} under {s}");
        }
    }
}

#[test]
fn threads_forks_and_execs_fold_as_for_strace() {
    // The pool's two workers each ran two threads: threads fold into their process.
    let pool = import("pool");
    let forks = pool.ops.iter().filter(|o| matches!(o, Op::Fork { .. })).count();
    assert!(forks >= 2, "pool forks {forks}");
    // make: gcc spawns its passes with vfork; the PATH search leaves failed execs.
    let make = import("make");
    let execs = make.ops.iter().filter(|o| matches!(o, Op::Exec { .. })).count();
    assert!(execs >= 8, "make execs {execs}");
    // remap: the mremap survives as a whole-mapping move, the shared page as a shared mapping.
    let remap = write_text(&import("remap"));
    assert!(remap.contains("mremap "), "remap lacks mremap");
    assert!(remap.lines().any(|l| l.starts_with("mmap") && l.contains(" shared")), "remap lacks MAP_SHARED");
}
