//! What a demanding user hit, through the built `vmstorm` binary: every strace output
//! option, undecodable logs, the import report on replay, errors that name the trace's line
//! and the argument at fault, outputs checked before the work, standard input, and the
//! message when a fault finds no free frame.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use vmstorm_loadgen::op::Op;
use vmstorm_loadgen::trace;

fn vmstorm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vmstorm")).args(args).output().expect("run vmstorm")
}

fn vmstorm_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmstorm"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vmstorm");
    child.stdin.take().expect("stdin").write_all(input).expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vmstorm-robust-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn write(name: &str, text: &str) -> PathBuf {
    let p = scratch(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failure: non-zero exit, no panic, one stderr line `vmstorm: error: ...` holding every
/// needle.
fn one_line_error(o: &Output, needles: &[&str]) -> String {
    let err = stderr(o);
    assert!(!o.status.success(), "succeeded: {err}\n{}", stdout(o));
    assert_ne!(o.status.code(), Some(101), "panicked: {err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("vmstorm: error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected {n:?} in {err}");
    }
    err
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}\n{}", stderr(o), stdout(o));
    stdout(o)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/options").join(name)
}

fn imported_ops(log: &Path, extra: &[&str]) -> (Vec<Op>, String) {
    let out = scratch(&format!("{}.vmtrace", log.file_stem().unwrap().to_string_lossy()));
    let mut args = vec!["import", s(log), "-o", s(&out)];
    args.extend_from_slice(extra);
    let report = ok(&vmstorm(&args));
    (trace::load(&out).expect("written trace loads").ops, report)
}

// ---- item 7: strace output options ------------------------------------------------------

#[test]
fn every_strace_output_option_imports_the_same_ops() {
    let (plain, _) = imported_ops(&fixture("plain.strace"), &["--default-images"]);
    assert!(plain.len() > 30, "{} ops", plain.len());
    for name in ["verbose", "backtrace", "ip", "nr", "all"] {
        let (ops, report) = imported_ops(&fixture(&format!("{name}.strace")), &["--default-images"]);
        assert_eq!(ops, plain, "{name}: {report}");
        assert!(!report.contains("could not be decoded"), "{name}: {report}");
        assert!(!report.contains("not understood"), "{name}: {report}");
    }
}

#[test]
fn a_log_with_undecodable_needed_calls_fails_unless_skipped() {
    let log = write(
        "undecodable.strace",
        "\
100  execve(\"/bin/x\", [\"x\"], 0x1 /* 1 vars */) = 0
100  mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000
100  mmap(NULL, 8192, %%%, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000010000
100  mmap(NULL, banana, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000020000
100  wait4(-1, %%%) = 7
100  exit_group(0)                     = ?
",
    );
    let out = scratch("undecodable.vmtrace");
    let o = vmstorm(&["import", s(&log), "-o", s(&out)]);
    one_line_error(&o, &["undecodable.strace:3:", "mmap", "2 calls", "--skip-undecoded"]);
    assert!(!out.exists(), "nothing is written when the import fails");
    let r = ok(&vmstorm(&["import", s(&log), "-o", s(&out), "--skip-undecoded"]));
    assert!(r.contains("2 calls could not be decoded (first: line 3)"), "{r}");
    let o = vmstorm(&["replay", s(&log), "--mem", "16M", "--no-warmup"]);
    one_line_error(&o, &["undecodable.strace:3:"]);
}

// ---- item 8: replay of a raw log prints the import report -------------------------------

#[test]
fn replay_of_a_raw_log_prints_the_import_report() {
    let r = ok(&vmstorm(&["replay", s(&fixture("plain.strace")), "--mem", "32M", "--no-warmup"]));
    assert!(r.contains("95 lines, 85 calls -> "), "{r}");
    assert!(r.contains("ranges outside known mappings"), "{r}");
    assert!(r.contains("ops/s"), "{r}");
}

// ---- item 9 -----------------------------------------------------------------------------

const FRAMES_TRACE: &str = "\
# vmtrace v1 page=4096 src=test
exec     p1 text=4 data=1 bss=1 stack=4
mmap     p1 m1 pages=4000 rw- private
touch    p1 m1+0 pages=8 w
touch    p1 m1+8 pages=3992 w
exit     p1
end ops=5
";

#[test]
fn out_of_frames_names_the_trace_line_and_the_fix() {
    let t = write("frames.vmtrace", FRAMES_TRACE);
    let o = vmstorm(&["replay", s(&t), "--mem", "4M", "--no-warmup"]);
    let e = one_line_error(&o, &["frames.vmtrace:5:", "out of frames", "--mem"]);
    assert!(!e.contains("signalled"), "{e}");
    // Touches synthesized for a trace without any are located at the op they follow.
    let t = write(
        "frames-untouched.vmtrace",
        &FRAMES_TRACE
            .replace("touch    p1 m1+0 pages=8 w\n", "")
            .replace("touch    p1 m1+8 pages=3992 w\n", "")
            .replace("end ops=5", "end ops=3"),
    );
    let o = vmstorm(&["replay", s(&t), "--mem", "4M", "--no-warmup", "--touch-fraction", "1"]);
    one_line_error(&o, &["frames-untouched.vmtrace:3:", "out of frames"]);
}

#[test]
fn a_page_size_other_than_4k_is_refused() {
    let t = write(
        "page8k.vmtrace",
        "# vmtrace v1 page=8192\nexec     p1 text=4 data=1 bss=1 stack=4\nexit     p1\nend ops=2\n",
    );
    let o = vmstorm(&["replay", s(&t), "--mem", "16M", "--no-warmup"]);
    one_line_error(&o, &["page8k.vmtrace:1:", "page size 8192"]);
    // The binary format says where its page-size field is, too.
    let parsed = trace::parse_text(&std::fs::read_to_string(&t).unwrap(), "page8k").unwrap();
    let b = scratch("page8k.vmtb");
    std::fs::write(&b, trace::encode_binary(&parsed)).unwrap();
    let o = vmstorm(&["replay", s(&b), "--mem", "16M", "--no-warmup"]);
    one_line_error(&o, &["page8k.vmtb: byte 9:", "page size 8192"]);
}

#[test]
fn a_huge_bad_token_is_not_echoed_whole() {
    let big = "x".repeat(1 << 20);
    let t = write("bigtoken.vmtrace", &format!("# vmtrace v1 page=4096\nexec     p1 text={big}\n"));
    let o = vmstorm(&["replay", s(&t), "--no-warmup"]);
    let e = one_line_error(&o, &["bigtoken.vmtrace:2:"]);
    assert!(e.len() < 1000, "{} bytes of error", e.len());
    // One argument may hold at most 128 KiB.
    let o = vmstorm(&["run", "fork", "--mem", &big[..100_000]]);
    let e = one_line_error(&o, &["--mem"]);
    assert!(e.len() < 1000, "{} bytes of error", e.len());
}

#[test]
fn import_refuses_to_overwrite_its_input() {
    let log = scratch("self.strace");
    std::fs::copy(fixture("plain.strace"), &log).unwrap();
    let before = std::fs::read(&log).unwrap();
    let o = vmstorm(&["import", s(&log), "-o", s(&log)]);
    one_line_error(&o, &["-o", "input"]);
    assert_eq!(std::fs::read(&log).unwrap(), before, "the log was changed");
}

#[test]
fn record_and_import_of_its_log_give_one_trace() {
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("strace not installed: skipped");
        return;
    }
    let out = scratch("rec.vmtrace");
    let log = scratch("rec.strace");
    ok(&vmstorm(&["record", "-o", s(&out), "--keep-log", s(&log), "--", "sh", "-c", "/bin/true"]));
    let again = scratch("rec-again.vmtrace");
    ok(&vmstorm(&["import", s(&log), "-o", s(&again)]));
    let a = trace::load(&out).unwrap();
    let b = trace::load(&again).unwrap();
    assert_eq!(a.ops, b.ops);
    // The images are the programs' own sizes, not the default.
    assert!(a.ops.iter().any(|o| matches!(o, Op::Exec { image, .. } if *image != vmstorm_loadgen::op::ImageSize { stack_pages: image.stack_pages, ..vmstorm_loadgen::op::ImageSize::DEFAULT })));
}

#[test]
fn dontunmap_restarts_huge_lengths_and_shmat_are_handled_and_counted() {
    let log = write(
        "odd.strace",
        "\
100  execve(\"/bin/x\", [\"x\"], 0x1 /* 1 vars */) = 0
100  mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000
100  mremap(0x7f0000000000, 8192, 8192, MREMAP_MAYMOVE|MREMAP_DONTUNMAP) = 0x7f0000100000
100  mmap(NULL, 18446744073709551615, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000200000
100  shmat(65538, NULL, 0)             = 0x7f0000300000
100  mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = ? ERESTARTNOINTR (To be restarted)
100  mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000400000
100  exit_group(0)                     = ?
",
    );
    let (ops, report) = imported_ops(&log, &[]);
    assert!(!ops.iter().any(|o| matches!(o, Op::Mremap { .. })), "DONTUNMAP is not a resize: {ops:?}");
    assert!(ops.iter().any(|o| matches!(o, Op::Discard { pages: 2, .. })), "{ops:?}");
    assert_eq!(ops.iter().filter(|o| matches!(o, Op::Mmap { .. })).count(), 3, "{ops:?}");
    assert!(report.contains("1 calls dropped: range outside any address space (first: line 4)"), "{report}");
    assert!(report.contains("1 shmat attaches not replayed"), "{report}");
    assert!(report.contains("1 restarted calls"), "{report}");
    assert!(!report.contains("failed memory calls"), "{report}");
}

#[test]
fn replay_dash_reads_standard_input() {
    let log = std::fs::read(fixture("plain.strace")).unwrap();
    let o = vmstorm_stdin(&["replay", "-", "--mem", "32M", "--no-warmup"], &log);
    let r = ok(&o);
    assert!(r.contains("85 calls"), "{r}");
    let o = vmstorm_stdin(&["replay", "-", "--no-warmup"], b"hello\nworld\n");
    one_line_error(&o, &["<stdin>:1:"]);
}

// ---- item 11: errors early and named ------------------------------------------------------

#[test]
fn missing_arguments_are_named() {
    one_line_error(&vmstorm(&["import"]), &["<LOG>", "--out"]);
    one_line_error(&vmstorm(&["replay"]), &["<TRACE>"]);
    one_line_error(&vmstorm(&["record", "--", "true"]), &["--out"]);
}

#[test]
fn output_paths_are_checked_before_the_work() {
    let missing = scratch("no/such/dir/x.json");
    let o = vmstorm(&["run", "fork", "--mem", "16M", "--json", s(&missing)]);
    one_line_error(&o, &["--json", "does not exist"]);
    assert!(stdout(&o).is_empty(), "the run was made first: {}", stdout(&o));
    let o = vmstorm(&["record", "-o", s(&scratch("no/such/dir/r.vmtrace")), "--", "true"]);
    one_line_error(&o, &["-o"]);
    let file = write("a-file", "x");
    let o = vmstorm(&["compare", "--quick", "--storms", "fork", "--out", s(&file)]);
    one_line_error(&o, &["--out", "not a directory"]);
    assert!(stdout(&o).is_empty(), "the comparison was made first: {}", stdout(&o));
}

// ---- item 14 ------------------------------------------------------------------------------

#[test]
fn an_unknown_workload_is_named_as_such() {
    let o = vmstorm(&["compare", "--quick", "--storms", "bogus", "--out", s(&scratch("cmp"))]);
    let e = one_line_error(&o, &["bogus", "unknown workload"]);
    assert!(!e.contains("cannot read"), "{e}");
}
