//! `record` with perf: the tool choice says which and why in one line, a perf capture
//! becomes a trace with recorded faults, and `--keep-log` keeps the perf.data. Where perf
//! may not record tracepoints, the choice must say strace and why instead.

use std::path::PathBuf;

use vmstorm_loadgen::op::Op;
use vmstorm_loadgen::trace::record::choose;
use vmstorm_loadgen::trace::{load, load_bytes, record, ImportOptions, RecordError, RecordOptions, Tool};

fn out(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vmstorm-perf-record-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn cmd(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_choice_is_one_line_with_a_reason() {
    let (tool, why) = choose(&RecordOptions::default());
    assert!(!why.contains('\n'));
    match tool {
        Tool::Perf => assert!(why.starts_with("record: perf"), "{why}"),
        Tool::Strace => assert!(why.starts_with("record: strace") && why.contains(": "), "{why}"),
    }
    let missing = RecordOptions { perf: PathBuf::from("/nonexistent/perf"), ..RecordOptions::default() };
    let (tool, why) = choose(&missing);
    assert_eq!(tool, Tool::Strace);
    assert!(why.contains("/nonexistent/perf"), "{why}");
    let asked = RecordOptions { tool: Some(Tool::Strace), ..RecordOptions::default() };
    assert_eq!(choose(&asked).0, Tool::Strace);
}

#[test]
fn records_a_pipeline_with_perf_and_keeps_the_capture() {
    let (tool, why) = choose(&RecordOptions::default());
    if tool != Tool::Perf {
        eprintln!("perf cannot record tracepoints here ({why}): skipping");
        return;
    }
    let path = out("pipe.vmtrace");
    let log = out("pipe.perf.data");
    let opts =
        RecordOptions { keep_log: Some(log.clone()), tool: Some(Tool::Perf), ..RecordOptions::default() };
    let r = record(&cmd(&["sh", "-c", "ls / | wc -l > /dev/null; exit 3"]), &path, &opts)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.tool, Tool::Perf);
    assert_eq!(r.status.code(), Some(3));
    let p = r.perf.expect("perf report");
    assert!(p.recorded.faults > 50, "{p}");
    assert!(p.placed.touches() > 0);
    let t = load(&path).unwrap();
    assert_eq!(t.header.recorded.map(|x| x.faults), Some(p.recorded.faults));
    assert!(t.header.names.values().any(|n| n == "ls"));
    assert!(t.ops.iter().any(|o| matches!(o, Op::Fork { .. })));
    // The kept capture imports to the same ops.
    let kept = std::fs::read(&log).unwrap();
    let again = load_bytes(&kept, "pipe.perf.data", &ImportOptions::default()).unwrap();
    assert!(again.trace.ops == t.ops);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&log);
}

#[test]
fn a_command_that_cannot_start_is_one_error() {
    if choose(&RecordOptions::default()).0 != Tool::Perf {
        return;
    }
    let opts = RecordOptions { tool: Some(Tool::Perf), ..RecordOptions::default() };
    let e = record(&cmd(&["/nonexistent/command"]), &out("x.vmtrace"), &opts).unwrap_err();
    assert!(!e.to_string().contains('\n'), "{e}");
    assert!(matches!(e, RecordError::NoLog { .. } | RecordError::Trace(_)), "{e}");
}
