//! Bad perf captures: truncated, garbage, foreign-architecture, without fault events, with
//! lost events. Each is one error naming the file and a byte offset (or the whole file),
//! never a panic; a lossy capture imports only when asked, with its losses counted.

use std::io::Read;
use std::path::Path;

use vmstorm_loadgen::trace::{load_bytes, ImportOptions, Position, TraceError};

fn capture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/perf/{name}.perf.data.gz"));
    let gz = std::fs::read(p).unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
    out
}

fn import(bytes: &[u8], opts: &ImportOptions) -> Result<(), TraceError> {
    load_bytes(bytes, "bad.perf.data", opts).map(|_| ())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn one_line(e: &TraceError) {
    let s = e.to_string();
    assert!(s.starts_with("bad.perf.data"), "{s}");
    assert!(!s.contains('\n'), "{s}");
}

#[test]
fn truncated_captures_name_a_byte_offset() {
    let b = capture("remap");
    for cut in (0..b.len()).step_by(331).chain([8, 103, 104, b.len() - 1]) {
        let e = import(&b[..cut], &ImportOptions::default()).unwrap_err();
        one_line(&e);
        if cut >= 8 {
            assert!(matches!(e.at, Position::Offset(_)), "cut {cut}: {e}");
        }
    }
}

#[test]
fn a_record_cut_inside_the_data_section_is_named() {
    let mut b = capture("remap");
    let (start, size) = (u64_at(&b, 40) as usize, u64_at(&b, 48) as usize);
    // Claim a data section one byte longer than the records in it (the rest of the file is
    // the feature sections): the last record header runs past it.
    b[48..56].copy_from_slice(&((size + 4) as u64).to_le_bytes());
    let e = import(&b, &ImportOptions::default()).unwrap_err();
    one_line(&e);
    match e.at {
        Position::Offset(at) => assert!(at as usize >= start, "{e}"),
        other => panic!("{other:?}: {e}"),
    }
}

#[test]
fn garbage_never_panics() {
    let bases = [capture("remap"), capture("pipeline")];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut errors = 0;
    // VMSTORM_MUTATIONS=N runs a longer campaign.
    let rounds = std::env::var("VMSTORM_MUTATIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(600);
    for round in 0..rounds {
        let mut b = bases[round % 2].clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % b.len() as u64) as usize;
            b[at] = next() as u8;
        }
        if let Err(e) = import(&b, &ImportOptions::default()) {
            one_line(&e);
            errors += 1;
        }
    }
    // Pure noise after a valid magic is refused.
    let mut noise = b"PERFILE2".to_vec();
    noise.extend((0..4000).map(|_| next() as u8));
    one_line(&import(&noise, &ImportOptions::default()).unwrap_err());
    assert!(errors > 0);
}

/// The byte range of feature section `bit` (a `HEADER_*` number).
fn feature(b: &[u8], bit: u32) -> (usize, usize) {
    let table = (u64_at(b, 40) + u64_at(b, 48)) as usize;
    let mut k = 0;
    for i in 0..bit {
        if u64_at(b, 72 + 8 * (i as usize / 64)) >> (i % 64) & 1 == 1 {
            k += 1;
        }
    }
    let at = table + 16 * k;
    (u64_at(b, at) as usize, u64_at(b, at + 8) as usize)
}

#[test]
fn foreign_architecture_is_refused() {
    // HEADER_ARCH = 6: a 4-byte length and the string.
    let mut b = capture("remap");
    let (off, size) = feature(&b, 6);
    assert!(b[off + 4..off + size].starts_with(b"x86_64"));
    b[off + 4..off + 10].copy_from_slice(b"arm64\0");
    let e = import(&b, &ImportOptions::default()).unwrap_err();
    one_line(&e);
    assert!(e.message.contains("arm64") && e.message.contains("x86_64"), "{e}");
    let mut b = capture("remap");
    b[..8].copy_from_slice(b"2ELIFREP");
    let e = import(&b, &ImportOptions::default()).unwrap_err();
    assert_eq!(e.at, Position::Offset(0));
    assert!(e.message.contains("big-endian"), "{e}");
}

#[test]
fn a_capture_without_fault_events_is_refused() {
    let e = import(&capture("nofault"), &ImportOptions::default()).unwrap_err();
    one_line(&e);
    assert!(e.message.contains("page_fault_user"), "{e}");
}

#[test]
fn lost_events_are_refused_unless_asked_and_then_counted() {
    let mut b = capture("remap");
    // Turn the first sample into PERF_RECORD_LOST { id, lost = 5 }.
    let (start, end) = (u64_at(&b, 40) as usize, (u64_at(&b, 40) + u64_at(&b, 48)) as usize);
    let mut at = start;
    let lost_at = loop {
        assert!(at < end, "no sample to rewrite");
        let kind = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
        let size = u16::from_le_bytes([b[at + 6], b[at + 7]]) as usize;
        if kind == 9 && size >= 24 {
            b[at..at + 4].copy_from_slice(&2u32.to_le_bytes());
            b[at + 16..at + 24].copy_from_slice(&5u64.to_le_bytes());
            break at;
        }
        at += size;
    };
    let e = import(&b, &ImportOptions::default()).unwrap_err();
    one_line(&e);
    assert_eq!(e.at, Position::Offset(lost_at as u64));
    assert!(e.message.contains("5 events lost"), "{e}");
    let l = load_bytes(&b, "bad.perf.data", &ImportOptions { allow_lost: true, ..ImportOptions::default() })
        .unwrap();
    let r = l.perf.unwrap();
    assert_eq!(r.recorded.lost, 5);
    assert_eq!(l.trace.header.recorded.unwrap().lost, 5);
    assert_eq!(r.lost_records, vec![(lost_at as u64, 5)]);
}

#[test]
fn the_cli_prints_one_line_and_fails() {
    let dir = std::env::temp_dir().join(format!("vmstorm-perf-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("cut.perf.data");
    let b = capture("remap");
    std::fs::write(&bad, &b[..b.len() / 2]).unwrap();
    for args in [vec!["replay"], vec!["import", "-o", "/dev/null"]] {
        let out =
            std::process::Command::new(env!("CARGO_BIN_EXE_vmstorm")).args(&args).arg(&bad).output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains("cut.perf.data: byte "), "{err}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
