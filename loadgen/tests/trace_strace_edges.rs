//! Hand-written strace snippets, one per form the importer must handle (prefixes,
//! timestamps, unfinished/resumed pairs, process tree cases, memory cases), each checked
//! against the exact ops it must give.

use vmstorm_loadgen::op::Trace;
use vmstorm_loadgen::trace::text::op_line;
use vmstorm_loadgen::trace::{import_strace, validate, ImportOptions, ImportReport};

fn imp(log: &str) -> (Trace, ImportReport) {
    imp_with(log, &ImportOptions::default())
}

fn imp_with(log: &str, o: &ImportOptions) -> (Trace, ImportReport) {
    let (t, r) = import_strace(log, "snippet.strace", o).unwrap_or_else(|e| panic!("{e}"));
    validate(&t).unwrap_or_else(|e| panic!("invalid trace: {e:?}\n{}", ops(&t).join("\n")));
    (t, r)
}

/// The ops as `.vmtrace` lines with single spaces.
fn ops(t: &Trace) -> Vec<String> {
    t.ops.iter().map(|o| op_line(o).split_whitespace().collect::<Vec<_>>().join(" ")).collect()
}

const EXEC: &str = "exec p1 text=32 data=4 bss=4 stack=9";

/// The same small run in every prefix and timestamp form gives the same ops.
#[test]
fn prefix_and_timestamp_forms() {
    let body = [
        (100, r#"execve("/bin/sh", ["sh"], 0x7ffe /* 3 vars */) = 0"#),
        (100, "brk(NULL)                         = 0x55000000"),
        (100, "brk(0x55021000)                   = 0x55021000"),
        (
            100,
            "mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000",
        ),
        (100, "clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = 101"),
        (101, "munmap(0x7f0000000000, 8192)      = 0"),
        (101, "exit_group(0)                     = ?"),
        (101, "+++ exited with 0 +++"),
        (100, "--- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=101} ---"),
        (100, "exit_group(0)                     = ?"),
        (100, "+++ exited with 0 +++"),
    ];
    let want = vec![
        EXEC.to_string(),
        "brk p1 heap=33".into(),
        "mmap p1 m1 pages=2 rw- private".into(),
        "fork p1 p2".into(),
        "munmap p2 m1+0 pages=2".into(),
        "exit p2".into(),
        "exit p1".into(),
    ];
    type Form = fn(u32, usize) -> String;
    let forms: [(&str, Form); 8] = [
        ("-f -o", |pid, _| format!("{pid:<5} ")),
        ("stderr [pid N]", |pid, _| format!("[pid {pid:5}] ")),
        ("-Y", |pid, _| format!("{pid}<sh> ")),
        ("-t", |pid, i| format!("{pid:<5} 19:44:{:02} ", i)),
        ("-tt", |pid, i| format!("{pid:<5} 19:44:51.{:06} ", i * 7)),
        ("-ttt", |pid, i| format!("{pid:<5} 1795463120.{:06} ", i * 7)),
        ("ns", |pid, i| format!("{pid:<5} 1795463478.{:09} ", i * 7)),
        ("-r", |pid, i| format!("{pid:<5} {:>12.6} ", i as f64 * 0.001)),
    ];
    for (what, prefix) in forms {
        let log: String =
            body.iter().enumerate().map(|(i, (pid, b))| format!("{}{b}\n", prefix(*pid, i))).collect();
        let (t, r) = imp(&log);
        assert_eq!(ops(&t), want, "{what}:\n{log}");
        assert_eq!(r.unrecognized_lines, 0, "{what}");
    }
    // 7-digit pids get no padding.
    let log: String = body
        .iter()
        .map(|(pid, b)| format!("{} {}\n", pid + 1_000_000, b.replace("= 101", "= 1000101")))
        .collect();
    assert_eq!(ops(&imp(&log).0), want, "7-digit pids");
    // -T durations after results, including on resumed lines.
    let log: String = body
        .iter()
        .map(|(pid, b)| {
            if b.ends_with("+++") || b.ends_with("---") || b.ends_with('?') {
                format!("{pid:<5} {b}\n")
            } else {
                format!("{pid:<5} {b} <0.000{pid}>\n")
            }
        })
        .collect();
    assert_eq!(ops(&imp(&log).0), want, "-T");
}

/// stderr capture: no prefix while one process runs, `[pid N]` while several do, and
/// strace's `Process N attached` cutting a line in two.
#[test]
fn stderr_capture_without_dash_o() {
    let log = r#"execve("/bin/sh", ["sh", "-c", "ls"], 0x7ffe /* 3 vars */) = 0
brk(NULL)                               = 0x55000000
clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = 5432
[pid  5431] wait4(5432, strace: Process 5432 attached
 <unfinished ...>
[pid  5432] execve("/bin/ls", ["ls"], 0x55 /* 3 vars */) = 0
[pid  5432] mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000
[pid  5432] exit_group(0)               = ?
[pid  5432] +++ exited with 0 +++
<... wait4 resumed>NULL, 0, NULL)       = 5432
--- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=5432, si_uid=0, si_status=0} ---
exit_group(0)                           = ?
+++ exited with 0 +++
"#;
    let (t, r) = imp(log);
    assert_eq!(
        ops(&t),
        vec![
            EXEC,
            "fork p1 p2",
            "exec p2 text=32 data=4 bss=4 stack=9",
            "mmap p2 m1 pages=1 rw- private",
            "exit p2",
            "exit p1"
        ]
    );
    assert_eq!((r.orphan_resumed, r.unfinished_at_end), (0, 0));
    assert_eq!(t.header.names.values().collect::<Vec<_>>(), ["sh", "ls"]);
}

/// Unfinished/resumed pairs of clone, brk, wait4, exit, mmap; the child printing before
/// the parent's clone returns.
#[test]
fn unfinished_and_resumed_pairs() {
    let log = r#"5054  execve("/usr/bin/sh", ["sh", "-c", "ls | wc"], 0x7ffe /* 35 vars */) = 0
5054  brk(NULL)                         = 0x558af617d000
5054  clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD <unfinished ...>
5055  execve("/usr/bin/ls", ["ls"], 0x558af617db38 /* 35 vars */) = 0
5055  brk(NULL <unfinished ...>
5054  <... clone resumed>, child_tidptr=0x7f5d3d2dba10) = 5055
5055  <... brk resumed>)                = 0x558b59614000
5055  brk(0x558b59635000 <unfinished ...>
5054  wait4(-1,  <unfinished ...>
5055  <... brk resumed>)                = 0x558b59635000
5055  mmap(NULL, 33699, PROT_READ, MAP_PRIVATE, 3, 0 <unfinished ...>
5055  <... mmap resumed>)               = 0x7f5335f36000
5055  exit(0 <unfinished ...>
5055  <... exit resumed>)               = ?
5055  +++ exited with 0 +++
5054  <... wait4 resumed>[{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL) = 5055
5054  exit_group(0)                     = ?
5054  +++ exited with 0 +++
"#;
    let (t, r) = imp(log);
    assert_eq!(
        ops(&t),
        vec![
            EXEC,
            "fork p1 p2",
            "exec p2 text=32 data=4 bss=4 stack=9",
            "brk p2 heap=33",
            "mmap p2 m1 pages=9 r-- file",
            "exit p2",
            "exit p1"
        ]
    );
    assert_eq!(r.syscalls, 10);
    assert_eq!((r.orphan_resumed, r.unfinished_at_end), (0, 0));
}

/// vfork and posix_spawn's clone3(CLONE_VM|CLONE_VFORK): the child execs before the
/// parent's call returns; both become vforks placed before the child's first line.
#[test]
fn vfork_and_clone3_vfork() {
    let log = r#"6458  execve("/bin/sh", ["sh"], 0x7ffe /* 3 vars */) = 0
6458  vfork( <unfinished ...>
6459  execve("/usr/bin/ls", ["ls"], 0x55 /* 3 vars */) = 0
6458  <... vfork resumed>)               = 6459
6458  clone3({flags=CLONE_VM|CLONE_VFORK, exit_signal=SIGCHLD, stack=0x7f720aea4000, stack_size=0x9000}, 88 <unfinished ...>
6460  execve("/usr/bin/wc", ["wc"], 0x55 /* 3 vars */) = 0
6458  <... clone3 resumed>)              = 6460
6459  exit_group(0)                     = ?
6460  exit_group(0)                     = ?
6458  exit_group(0)                     = ?
"#;
    let (t, r) = imp(log);
    assert_eq!(
        ops(&t),
        vec![
            EXEC,
            "vfork p1 p2",
            "exec p2 text=32 data=4 bss=4 stack=9",
            "vfork p1 p3",
            "exec p3 text=32 data=4 bss=4 stack=9",
            "exit p2",
            "exit p3",
            "exit p1"
        ]
    );
    assert_eq!(r.vforks, 2);
}

/// Threads (clone3 CLONE_THREAD): their memory ops go to the leader, their exits are not
/// process exits; a thread exec supersedes the leader.
#[test]
fn threads_fold_into_their_process() {
    let log = r#"5430  execve("/usr/bin/python3", ["python3"], 0x7ffe /* 3 vars */) = 0
5430  mmap(NULL, 8392704, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_STACK, -1, 0) = 0x7f720a4be000
5430  mprotect(0x7f720a4bf000, 8388608, PROT_READ|PROT_WRITE) = 0
5430  clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7f720acbe990, parent_tid=0x7f720acbe990, exit_signal=0, stack=0x7f720a4be000, stack_size=0x7fff80, tls=0x7f720acbe6c0} => {parent_tid=[5431]}, 88) = 5431
5431  mmap(NULL, 65536, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f720a4ae000
5431  mremap(0x7f720a4ae000, 65536, 1048576, MREMAP_MAYMOVE) = 0x7f720a3ae000
5431  madvise(0x7f720a3ae000, 1048576, MADV_DONTNEED) = 0
5431  madvise(0x7f720a3ae000, 4096, MADV_HUGEPAGE) = 0
5431  exit(0)                           = ?
5431  +++ exited with 0 +++
5430  clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7f, parent_tid=0x7f, exit_signal=0, stack=0x7f720a4be000, stack_size=0x7fff80, tls=0x7f} => {parent_tid=[5432]}, 88) = 5432
5432  execve("/bin/true", ["true"], 0x7ffe /* 3 vars */ <unfinished ...>
5430  +++ superseded by execve in pid 5432 +++
5430  <... execve resumed>)              = 0
5430  brk(NULL)                         = 0x56000000
5430  exit_group(0)                     = ?
5430  +++ exited with 0 +++
"#;
    let (t, r) = imp(log);
    assert_eq!(
        ops(&t),
        vec![
            EXEC,
            "mmap p1 m1 pages=1024 --- private",
            "mprotect p1 m1+0 pages=1024 rw-",
            "mmap p1 m2 pages=16 rw- private",
            "mremap p1 m2 pages=256",
            "discard p1 m2+0 pages=256",
            "exec p1 text=32 data=4 bss=4 stack=9",
            "exit p1"
        ]
    );
    assert_eq!((r.threads, r.processes, r.exits), (2, 1, 1));
    assert_eq!(r.ignored_calls.get("madvise(MADV_HUGEPAGE)"), Some(&1));
    assert_eq!(t.header.names.values().collect::<Vec<_>>(), ["true"]);
    // The 8 MiB + guard thread stack was clamped and reported.
    assert_eq!(r.clamped.len(), 1);
    assert_eq!((r.clamped[0].pages, r.clamped[0].kept), (2049, 1024));
}

/// A killed child, `execve(...) = ?` of a killed process, and -qq logs without `+++` lines.
#[test]
fn killed_and_quiet_exits() {
    let log = r#"200  execve("/bin/sh", ["sh"], 0x7ffe /* 3 vars */) = 0
200  clone(child_stack=NULL, flags=SIGCHLD) = 201
201  execve("/nonexistent", ["x"], 0x7ffe /* 3 vars */) = ?
201  +++ killed by SIGKILL +++
200  clone(child_stack=NULL, flags=SIGCHLD) = 202
202  mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000
202  +++ killed by SIGSEGV (core dumped) +++
200  clone(child_stack=NULL, flags=SIGCHLD) = 203
203  exit_group(3)                     = ?
200  exit_group(0)                     = ?
"#;
    let (t, r) = imp(log);
    assert_eq!(
        ops(&t),
        vec![
            EXEC,
            "fork p1 p2",
            "exit p2",
            "fork p1 p3",
            "mmap p3 m1 pages=1 rw- private",
            "exit p3",
            "fork p1 p4",
            "exit p4",
            "exit p1"
        ]
    );
    assert_eq!((r.exits, r.implicit_exits, r.execs), (4, 0, 1));
}

/// A shell's execvp PATH search: a run of failed execs, then the one that works.
#[test]
fn failed_exec_runs() {
    let log = r#"300  execve("/usr/local/sbin/nosuch", ["nosuch"], 0x7ffe /* 3 vars */) = -1 ENOENT (No such file or directory)
300  execve("/usr/local/bin/nosuch", ["nosuch"], 0x7ffe /* 3 vars */) = -1 ENOENT (No such file or directory)
300  execve("/usr/sbin/nosuch", ["nosuch"], 0x7ffe /* 3 vars */) = -1 EACCES (Permission denied)
300  execve("/usr/bin/env", ["env"], 0x7ffe /* 3 vars */) = 0
300  exit_group(0)                     = ?
300  +++ exited with 0 +++
"#;
    let (t, r) = imp(log);
    assert_eq!(ops(&t), vec![EXEC, "exit p1"]);
    assert_eq!((r.failed_execs, r.execs), (3, 1));
    assert_eq!(t.header.names.values().collect::<Vec<_>>(), ["env"]);
}

/// A fork loop recycling a pid: each use is a new trace process. A pid reused without any
/// exit line (`-qq`, killed) gets an implicit exit first.
#[test]
fn pid_reuse() {
    let log = r#"100  execve("/bin/sh", ["sh"], 0x7ffe /* 3 vars */) = 0
100  clone(child_stack=NULL, flags=SIGCHLD) = 101
101  exit_group(0)                     = ?
101  +++ exited with 0 +++
100  clone(child_stack=NULL, flags=SIGCHLD) = 101
101  mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000
100  clone(child_stack=NULL, flags=SIGCHLD) = 101
101  munmap(0x7f0000000000, 4096)      = 0
101  exit_group(0)                     = ?
100  exit_group(0)                     = ?
"#;
    let (t, r) = imp(log);
    assert_eq!(
        ops(&t),
        vec![
            EXEC,
            "fork p1 p2",
            "exit p2",
            "fork p1 p3",
            "mmap p3 m1 pages=1 rw- private",
            "exit p3",
            "fork p1 p4",
            "exit p4",
            "exit p1"
        ]
    );
    assert_eq!((r.pid_reuses, r.implicit_exits, r.processes), (2, 1, 4));
    // The third process never had m1: its munmap touches nothing known.
    assert_eq!(r.unknown_ranges, 1);
}

/// ld.so's pattern: a reservation, MAP_FIXED overlays inside it, an unaligned bss
/// overlay, an unaligned munmap, and a munmap covering several ids at once.
#[test]
fn map_fixed_overlays_and_unaligned_lengths() {
    let log = r#"400  execve("/bin/sh", ["sh"], 0x7ffe /* 3 vars */) = 0
400  mmap(NULL, 33699, PROT_READ, MAP_PRIVATE, 3, 0) = 0x7f5d3d4c0000
400  mmap(NULL, 1974096, PROT_READ, MAP_PRIVATE|MAP_DENYWRITE, 3, 0) = 0x7f5d3d2de000
400  mmap(0x7f5d3d304000, 1400832, PROT_READ|PROT_EXEC, MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE, 3, 0x26000) = 0x7f5d3d304000
400  mmap(0x7f5d3d4ad000, 24576, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE, 3, 0x1cf000) = 0x7f5d3d4ad000
400  mmap(0x7f5d3d4b3000, 53072, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = 0x7f5d3d4b3000
400  mprotect(0x7f5d3d4ad000, 16384, PROT_READ) = 0
400  mprotect(0x558ac02fc000, 8192, PROT_READ) = 0
400  munmap(0x7f5d3d4c0000, 33699)     = 0
400  mmap(0x7f0000000000, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000
400  munmap(0x7f5d3d2de000, 1974096)   = 0
400  exit_group(0)                     = ?
"#;
    let (t, r) = imp(log);
    assert_eq!(
        ops(&t),
        vec![
            EXEC,
            "mmap p1 m1 pages=9 r-- file",
            "mmap p1 m2 pages=482 r-- file",
            "mmap p1 m3 pages=342 r-x file over=m2+38",
            "mmap p1 m4 pages=6 rw- file over=m2+463",
            "mmap p1 m5 pages=13 rw- private over=m2+469",
            "mprotect p1 m4+0 pages=4 r--",
            "munmap p1 m1+0 pages=9",
            "mmap p1 m6 pages=2 rw- private",
            "munmap p1 m2+0 pages=38",
            "munmap p1 m2+380 pages=83",
            "munmap p1 m3+0 pages=342",
            "munmap p1 m4+0 pages=6",
            "munmap p1 m5+0 pages=13",
            "exit p1"
        ]
    );
    assert_eq!(r.unknown_ranges, 1, "the main binary's relro");
    assert_eq!(r.relocated_fixed, 1, "MAP_FIXED outside every mapping");
}

/// A 128 MiB malloc arena: trimmed to 64 MiB alignment, then used from its middle. The
/// window keeps the used part; the report and the header say so.
#[test]
fn huge_reservation_clamped_to_a_window() {
    let log = r#"500  execve("/bin/x", ["x"], 0x7ffe /* 3 vars */) = 0
500  mmap(NULL, 134217728, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, -1, 0) = 0x7fddd3800000
500  munmap(0x7fddd3800000, 8388608)   = 0
500  munmap(0x7fddd8000000, 58720256)  = 0
500  mprotect(0x7fddd4000000, 135168, PROT_READ|PROT_WRITE) = 0
500  mprotect(0x7fddd4021000, 4096, PROT_READ|PROT_WRITE) = 0
500  madvise(0x7fddd4010000, 8192, MADV_DONTNEED) = 0
500  mprotect(0x7fddd4800000, 4096, PROT_READ|PROT_WRITE) = 0
500  munmap(0x7fddd4000000, 67108864)  = 0
500  exit_group(0)                     = ?
"#;
    let (t, r) = imp(log);
    assert_eq!(
        ops(&t),
        vec![
            EXEC,
            "mmap p1 m1 pages=1024 --- private",
            "mprotect p1 m1+0 pages=33 rw-",
            "mprotect p1 m1+33 pages=1 rw-",
            "discard p1 m1+16 pages=2",
            "munmap p1 m1+0 pages=1024",
            "exit p1"
        ]
    );
    assert_eq!(r.clamped.len(), 1);
    assert!(r.clamped[0].reservation);
    assert_eq!((r.clamped[0].pages, r.clamped[0].kept), (32768, 1024));
    assert_eq!(
        r.clipped_ops, 4,
        "two trims, the mprotect beyond the window, the final munmap shortened to it"
    );
    assert!(t.header.notes.iter().any(|n| n == "clamped p1 m1 at line 2: 32768 -> 1024 pages (reservation)"));
    // A smaller clamp is honoured.
    let o = ImportOptions { reserve_clamp_pages: 16, ..ImportOptions::default() };
    let (t, _) = imp_with(log, &o);
    assert_eq!(ops(&t)[1], "mmap p1 m1 pages=16 --- private");
}

/// brk: the initial break from brk(NULL), growth and shrink in pages, a refused brk.
#[test]
fn brk_relative_to_the_initial_break() {
    let log = r#"600  execve("/bin/x", ["x"], 0x7ffe /* 3 vars */) = 0
600  brk(NULL)                         = 0x558af617d000
600  brk(0x558af619e000)               = 0x558af619e000
600  brk(0x558af619e800)               = 0x558af619e800
600  brk(0x558aff000000)               = 0x558af619e800
600  brk(0x558af617e001)               = 0x558af617e001
600  exit_group(0)                     = ?
"#;
    let (t, r) = imp(log);
    assert_eq!(ops(&t), vec![EXEC, "brk p1 heap=33", "brk p1 heap=34", "brk p1 heap=2", "exit p1"]);
    assert_eq!(r.failed_calls, 1);
}

/// mremap of a whole mapping keeps its id; of part of one, it is unmap + new mapping.
/// `-X raw` numeric flags are read too.
#[test]
fn mremap_and_raw_flags() {
    let log = r#"700  execve("/bin/x", ["x"], 0x7ffe /* 3 vars */) = 0
700  mmap(NULL, 65536, 0x3, 0x22, -1, 0) = 0x7f0000000000
700  mremap(0x7f0000000000, 65536, 131072, MREMAP_MAYMOVE) = 0x7f1000000000
700  mremap(0x7f1000000000, 8192, 4096, 0) = 0x7f1000000000
700  mmap(NULL, 8192, 0x3, 0x21, -1, 0) = 0x7f2000000000
700  mmap(NULL, 4096, PROT_READ, MAP_SHARED|MAP_POPULATE, 5, 0) = 0x7f3000000000
700  exit_group(0)                     = ?
"#;
    let (t, r) = imp(log);
    assert_eq!(
        ops(&t),
        vec![
            EXEC,
            "mmap p1 m1 pages=16 rw- private",
            "mremap p1 m1 pages=32",
            "munmap p1 m1+0 pages=2",
            "mmap p1 m2 pages=1 rw- private",
            "mmap p1 m3 pages=2 rw- shared",
            "mmap p1 m4 pages=1 r-- file prealloc",
            "exit p1"
        ]
    );
    assert_eq!(r.mremap_fallbacks, 1);
}

/// A log attached to a running process (no execve first), and a log still running at its
/// end (no exit): an exec and an exit are added so the trace replays cleanly.
#[test]
fn attached_and_unfinished_logs() {
    let log = r#"800  mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000
800  clone(child_stack=NULL, flags=SIGCHLD) = 801
801  wait4(-1, NULL, 0, NULL <unfinished ...>
"#;
    let (t, r) = imp(log);
    assert_eq!(
        ops(&t),
        vec![
            "exec p1 text=32 data=4 bss=4 stack=8",
            "mmap p1 m1 pages=1 rw- private",
            "fork p1 p2",
            "exit p1",
            "exit p2"
        ]
    );
    assert_eq!((r.synthetic_execs, r.implicit_exits, r.unfinished_at_end), (1, 2, 1));
}

/// Lines the importer does not understand in a real log are counted, not fatal (unless
/// strict); calls it does not model are ignored by name.
#[test]
fn lenient_with_real_logs_strict_on_request() {
    let log = r#"900  execve("/bin/x", ["x"], 0x7ffe /* 3 vars */) = 0
900  wait4(-1, NULL, WNOHANG, NULL)   = -1 ECHILD (No child processes)
900  kill(901, SIGTERM)                = 0
900  some garbage the log picked up
900  mmap(NULL, lots, PROT_READ, MAP_PRIVATE, 3, 0) = 0x7f0000000000
[ Process PID=900 runs in 32 bit mode. ]
900  mmap2(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0xf7f00000
900  <... read resumed>"x", 1)          = 1
900  exit_group(0)                     = ?
"#;
    // An undecodable mmap loses a mapping: refused by default, naming it, counted on request.
    let e = import_strace(log, "s.strace", &ImportOptions::default()).unwrap_err();
    assert!(e.to_string().starts_with("s.strace:5: mmap: "), "{e}");
    assert!(e.to_string().contains("--skip-undecoded"), "{e}");
    let (t, r) = imp_with(log, &ImportOptions { skip_undecoded: true, ..ImportOptions::default() });
    assert_eq!(ops(&t), vec![EXEC, "mmap p1 m1 pages=2 rw- private", "exit p1"]);
    assert_eq!((r.unrecognized_lines, r.first_unrecognized), (1, Some(4)));
    assert_eq!((r.unusable_calls, r.first_unusable), (1, Some(5)));
    assert_eq!(r.orphan_resumed, 1);
    assert_eq!(r.ignored_calls.get("wait4"), Some(&1));
    assert_eq!(r.ignored_calls.get("kill"), Some(&1));
    let report = r.to_string();
    assert!(report.contains("first: line 4"), "{report}");

    let strict = ImportOptions { strict: true, ..ImportOptions::default() };
    let e = import_strace(log, "s.strace", &strict).unwrap_err();
    assert!(e.to_string().starts_with("s.strace:4: "), "{e}");
}
