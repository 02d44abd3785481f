//! The process table is sized by `--slots` (default 1,024, MINIX's NR_PROCS was 256): a
//! program with 300 live children replays, verified, under every allocator × format × fork
//! policy, and a table too small for it fails with "process table full (N slots)".

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output};

/// A parent that forks `children` children, each touching a page of its own and all alive
/// at once, then every child exits.
fn fan_out(children: u32) -> PathBuf {
    let mut t = String::from("# vmtrace v1 page=4096 src=synthetic:fan-out\n");
    let _ = writeln!(t, "proc     p1 fan");
    for c in 0..children {
        let _ = writeln!(t, "proc     p{} fan", c + 2);
    }
    t.push_str("exec     p1 text=4 data=1 bss=1 stack=4\nmmap     p1 m1 pages=2 rw- private\ntouch    p1 m1+0 pages=2 w\n");
    for c in 0..children {
        let p = c + 2;
        let _ = writeln!(t, "fork     p1 p{p}");
        let _ = writeln!(t, "touch    p{p} m1+1 pages=1 w");
    }
    for c in 0..children {
        let _ = writeln!(t, "exit     p{}", c + 2);
    }
    t.push_str("exit     p1\n");
    let ops = 3 + 3 * children + 1;
    let _ = writeln!(t, "end ops={ops}");
    let dir = std::env::temp_dir().join(format!("vmstorm-slots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path = dir.join(format!("fan-{children}.vmtrace"));
    std::fs::write(&path, t).expect("write trace");
    path
}

fn vmstorm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vmstorm")).args(args).output().expect("run vmstorm")
}

#[test]
fn three_hundred_live_children_replay_verified_under_every_strategy() {
    let trace = fan_out(300);
    let out = vmstorm(&[
        "replay",
        trace.to_str().unwrap(),
        "--alloc",
        "all",
        "--paging",
        "all",
        "--fork",
        "all",
        "--mem",
        "64M",
        "--no-warmup",
        "--verify",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{}", text, String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("verify"), "{text}");
}

#[test]
fn a_full_process_table_says_so_and_names_its_size() {
    let trace = fan_out(300);
    let out = vmstorm(&["replay", trace.to_str().unwrap(), "--slots", "256", "--mem", "64M", "--no-warmup"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("process table full (256 slots)") && err.contains("--slots"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// The recorded shell with 300 live `sleep` children (see the fixtures README).
const FAN300: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/real/fan300.vmtrace");

#[test]
fn a_real_program_with_300_live_children_replays_verified_under_every_strategy() {
    let ok = vmstorm(&[
        "replay",
        FAN300,
        "--touch-fraction",
        "0.01",
        "--alloc",
        "all",
        "--paging",
        "all",
        "--fork",
        "all",
        "--mem",
        "256M",
        "--no-warmup",
        "--verify",
    ]);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{}{}", text, String::from_utf8_lossy(&ok.stderr));
    let runs = vmstorm_core::AllocKind::ALL.len() * 2 * 3;
    assert_eq!(text.matches("all passed").count(), runs, "{text}");
    let full = vmstorm(&[
        "replay",
        FAN300,
        "--touch-fraction",
        "0.01",
        "--slots",
        "256",
        "--mem",
        "256M",
        "--no-warmup",
    ]);
    let err = String::from_utf8_lossy(&full.stderr);
    assert!(!full.status.success() && err.contains("process table full (256 slots)"), "{err}");
}
