//! `record` with strace: runs a command under strace and writes its trace. Skipped (with a
//! message) where strace is not installed. (perf captures: `perf_record.rs`.)

use std::path::PathBuf;
use std::process::Command;

use vmstorm_loadgen::op::{Op, OpKind};
use vmstorm_loadgen::trace::{load, record, RecordError, RecordOptions, Tool, TouchOptions};

fn strace_opts() -> RecordOptions {
    RecordOptions { tool: Some(Tool::Strace), ..RecordOptions::default() }
}

fn have_strace() -> bool {
    let ok = Command::new("strace").arg("-V").output().is_ok();
    if !ok {
        eprintln!("strace not installed: skipping");
    }
    ok
}

fn out(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vmstorm-record-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn cmd(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[test]
fn records_a_pipeline_and_reports_the_exit_status() {
    if !have_strace() {
        return;
    }
    let path = out("pipe.vmtrace");
    let r = record(&cmd(&["sh", "-c", "ls / | wc -l > /dev/null; exit 3"]), &path, &strace_opts())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status.code(), Some(3));
    assert!(r.import.forks + r.import.vforks >= 2, "{}", r.import);
    assert_eq!(r.import.exits, r.import.processes);
    let t = load(&path).unwrap();
    assert!(matches!(t.ops[0], Op::Exec { .. }));
    assert!(t.counts()[OpKind::Exec as usize] >= 3);
    assert!(t.header.names.values().any(|n| n == "ls"));
    assert!(t.header.source.starts_with("strace:"));
    // With read_elf on, sh's image comes from its ELF headers, not the default.
    let sh = Command::new("sh")
        .args(["-c", "command -v sh"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if let Some(want) = vmstorm_loadgen::trace::elf::image_size(std::path::Path::new(&sh)) {
        let Op::Exec { image, .. } = t.ops[0] else { unreachable!() };
        assert_eq!(
            (image.text_pages, image.data_pages, image.bss_pages),
            (want.text_pages, want.data_pages, want.bss_pages)
        );
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn records_with_touches_and_keeps_the_log() {
    if !have_strace() {
        return;
    }
    let path = out("true.vmtb");
    let log = out("true.strace");
    let opts =
        RecordOptions { keep_log: Some(log.clone()), touch: Some(TouchOptions::default()), ..strace_opts() };
    let r = record(&cmd(&["true"]), &path, &opts).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.status.success());
    assert_eq!(r.log.as_deref(), Some(log.as_path()));
    let t = load(&path).unwrap();
    assert!(t.has_touches());
    assert!(std::fs::read_to_string(&log).unwrap().contains("execve("));
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&log);
}

#[test]
fn clear_errors() {
    let e = record(&[], &out("x.vmtrace"), &strace_opts()).unwrap_err();
    assert!(matches!(e, RecordError::EmptyCommand));
    let opts = RecordOptions { strace: PathBuf::from("/nonexistent/strace"), ..strace_opts() };
    let e = record(&cmd(&["true"]), &out("x.vmtrace"), &opts).unwrap_err();
    assert!(matches!(e, RecordError::StraceMissing { .. }));
    assert!(e.to_string().contains("install strace"), "{e}");
    if have_strace() {
        let e = record(&cmd(&["/nonexistent/command"]), &out("x.vmtrace"), &strace_opts()).unwrap_err();
        assert!(matches!(e, RecordError::NoLog { .. }), "{e}");
        assert!(!e.to_string().contains('\n'));
    }
}
