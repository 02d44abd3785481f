//! Real strace captures in `tests/fixtures/` import to the `.vmtrace` beside them.
//!
//! Each `NAME.strace` was recorded with `strace -f -ttt -s 256 -e trace=%process,%memory`;
//! `NAME.vmtrace` is the importer's output, inspected by hand. Run with `VMSTORM_BLESS=1` to
//! rewrite the expected files after an intended importer change (and review the diff).

use std::path::{Path, PathBuf};

use vmstorm_loadgen::op::{ForkKind, Op, OpKind, Pid, Trace};
use vmstorm_loadgen::trace::{
    self, decode_binary, encode_binary, import_strace, parse_text, synthesize_touches, validate, write_text,
    Format, ImportOptions, ImportReport, TouchOptions,
};

/// User pages of a 3 GiB i386 user space: every process must fit.
const I386_USER_PAGES: u64 = 3 << 18;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn import(name: &str) -> (Trace, ImportReport) {
    let path = dir().join(format!("{name}.strace"));
    let log = std::fs::read_to_string(&path).unwrap();
    import_strace(&log, &format!("{name}.strace"), &ImportOptions::default()).unwrap()
}

fn check_against_expected(name: &str) -> (Trace, ImportReport) {
    let (trace, report) = import(name);
    let text = write_text(&trace);
    let expected_path = dir().join(format!("{name}.vmtrace"));
    if std::env::var_os("VMSTORM_BLESS").is_some() {
        std::fs::write(&expected_path, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap();
    if let Some((i, (a, b))) = text.lines().zip(expected.lines()).enumerate().find(|(_, (a, b))| a != b) {
        panic!("{name}: line {} differs\n  got:      {a}\n  expected: {b}", i + 1);
    }
    assert_eq!(text, expected, "{name}: lengths differ");

    // The expected file parses back to the same trace, checks, and fits i386.
    assert_eq!(parse_text(&expected, name).unwrap(), trace);
    let f = validate(&trace).unwrap();
    assert!(f.peak_process_pages < I386_USER_PAGES, "{name}: {f:?}");
    // Binary round trip.
    assert_eq!(decode_binary(&encode_binary(&trace), name).unwrap(), trace);
    // load() detects both the log and the expected file.
    let l = trace::load_with(&dir().join(format!("{name}.strace")), &ImportOptions::default()).unwrap();
    assert_eq!(l.format, Format::Strace);
    assert_eq!(l.trace, trace);
    assert_eq!(trace::load(&expected_path).unwrap(), trace);
    // Touches at several fractions keep it consistent.
    for fraction in [0.0, 0.12, 1.0] {
        let t = synthesize_touches(&trace, &TouchOptions { fraction, seed: 3, fork_writes: 8 }).unwrap();
        validate(&t).unwrap();
        assert_eq!(t.has_touches(), fraction > 0.0, "{name} {fraction}");
    }
    (trace, report)
}

fn count(t: &Trace, k: OpKind) -> u64 {
    t.counts()[k as usize]
}

fn name_of(t: &Trace, pid: u32) -> &str {
    t.header.names.get(&Pid(pid)).map(String::as_str).unwrap_or("")
}

#[test]
fn pipeline_sh_ls_wc() {
    let (t, r) = check_against_expected("pipeline");
    assert_eq!(r.processes, 3);
    assert_eq!((r.forks, r.execs, r.exits), (2, 3, 3));
    assert_eq!((r.implicit_exits, r.synthetic_execs), (0, 0));
    assert_eq!((name_of(&t, 1), name_of(&t, 2), name_of(&t, 3)), ("sh", "ls", "wc"));
    assert!(matches!(t.ops[0], Op::Exec { pid: Pid(1), .. }));
    // ld.so maps libc as a reservation with fixed overlays inside it.
    assert!(count(&t, OpKind::MmapOver) >= 8, "{:?}", t.counts());
    assert!(r.unknown_ranges > 0, "the main binary's relro mprotect is outside every mapping");
    assert_eq!(r.unrecognized_lines + r.unusable_calls + r.orphan_resumed, 0);
}

#[test]
fn fork_loop() {
    let (t, r) = check_against_expected("forkloop");
    assert_eq!(r.forks, 12);
    assert_eq!(r.processes, 13);
    assert_eq!(r.exits, 13);
    // Every child writes its own heap: its malloc grows the inherited break or maps.
    let children_with_memory =
        t.ops.iter().filter(|o| matches!(o, Op::Brk { pid, .. } | Op::Mmap { pid, .. } if pid.0 > 1)).count();
    assert!(children_with_memory >= 12, "{children_with_memory}");
    assert!(t.ops.iter().all(|o| !matches!(o, Op::Fork { kind: ForkKind::Vfork, .. })));
}

#[test]
fn parallel_make() {
    let (t, r) = check_against_expected("make");
    assert!(r.processes >= 15, "{r}");
    assert!(r.vforks > 0, "make and gcc spawn with vfork/posix_spawn: {r}");
    assert!(r.failed_execs > 0, "execvp PATH search: {r}");
    assert_eq!(r.exits, r.processes);
    assert_eq!(count(&t, OpKind::Exec) as usize, r.execs);
    assert!(t.header.names.values().any(|n| n == "cc1"));
    assert!(t.header.names.values().any(|n| n == "ld"));
    assert_eq!(r.unrecognized_lines + r.unusable_calls + r.orphan_resumed, 0, "{r}");
}

#[test]
fn python_threads_and_big_allocations() {
    let (t, r) = check_against_expected("python");
    assert_eq!(r.threads, 3, "{r}");
    assert_eq!(r.processes, 1);
    // Thread stacks (8 MiB + guard) and malloc arenas (128 MiB) are clamped reservations.
    assert!(r.clamped.iter().filter(|c| c.reservation).count() >= 4, "{r}");
    assert!(t.header.notes.iter().any(|n| n.starts_with("clamped")));
    // The 50 MiB bytearray is kept whole (it fits i386).
    assert!(t.ops.iter().any(|o| matches!(
        o,
        Op::Mmap { spec, .. } if spec.pages == 12801 || spec.pages == 12800
    )));
    assert!(count(&t, OpKind::Discard) > 0);
    assert!(count(&t, OpKind::Mprotect) > 0);
    assert_eq!(r.unrecognized_lines + r.unusable_calls + r.orphan_resumed, 0, "{r}");
}
