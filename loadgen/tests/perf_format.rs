//! Trace format version 2: the recorded fault counts a perf import keeps in the header
//! survive text and binary round trips, and version-1 traces still read.

use vmstorm_loadgen::op::{ImageSize, Op, Pid, RecordedFaults, Trace, FORMAT_VERSION, FORMAT_VERSION_V1};
use vmstorm_loadgen::trace::{decode_binary, encode_binary, parse_text, write_text};

fn trace(recorded: Option<RecordedFaults>) -> Trace {
    let mut t = Trace::new("perf:t");
    t.header.recorded = recorded;
    if recorded.is_some() {
        t.header.version = FORMAT_VERSION;
    }
    t.ops.push(Op::Exec { pid: Pid(1), image: ImageSize::DEFAULT });
    t.ops.push(Op::Exit { pid: Pid(1) });
    t
}

const R: RecordedFaults = RecordedFaults {
    faults: 10,
    kernel: 1,
    read: 2,
    write: 3,
    protection_write: 3,
    fetch: 1,
    other: 1,
    lost: 4,
};

#[test]
fn recorded_faults_round_trip_as_v2() {
    let t = trace(Some(R));
    let text = write_text(&t);
    assert!(text.starts_with("# vmtrace v2 "), "{text}");
    assert!(text.contains("recorded faults=10 kernel=1 read=2 write=3 protwrite=3 fetch=1 other=1 lost=4"));
    assert_eq!(parse_text(&text, "t").unwrap(), t);
    assert_eq!(decode_binary(&encode_binary(&t), "t").unwrap(), t);
}

#[test]
fn traces_without_recorded_faults_stay_v1_and_read() {
    let t = trace(None);
    assert_eq!(t.header.version, FORMAT_VERSION_V1);
    let text = write_text(&t);
    assert!(text.starts_with("# vmtrace v1 "), "{text}");
    assert_eq!(parse_text(&text, "t").unwrap(), t);
    assert_eq!(decode_binary(&encode_binary(&t), "t").unwrap(), t);
    // A v2 file without the line reads too.
    let v2 = text.replacen("v1", "v2", 1);
    assert_eq!(parse_text(&v2, "t").unwrap().header.version, 2);
}

#[test]
fn bad_recorded_lines_are_errors_with_their_line() {
    let good = write_text(&trace(Some(R)));
    let cases = [
        (good.replacen("v2", "v1", 1), "in a v1 file"),
        (good.replace("lost=4", "lost=x"), "bad number"),
        (good.replace(" lost=4", ""), "lacks lost"),
        (good.replace("lost=4", "lost=4 extra"), "unexpected"),
        (
            good.replace(
                "recorded ",
                "recorded faults=1 kernel=0 read=0 write=0 protwrite=0 fetch=0 other=0 lost=0\nrecorded ",
            ),
            "second",
        ),
        (good.replacen("v2", "v3", 1), "unsupported"),
    ];
    for (text, want) in cases {
        let e = parse_text(&text, "t.vmtrace").unwrap_err();
        assert!(e.to_string().contains(want), "{e} lacks {want}");
        assert!(e.to_string().starts_with("t.vmtrace:"), "{e}");
    }
}
