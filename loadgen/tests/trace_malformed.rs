//! Malformed, truncated, inconsistent and garbage trace files: each gives one error line
//! naming the file and the line (text) or byte offset (binary), never a panic.

use std::path::PathBuf;

use vmstorm_loadgen::op::{ImageSize, Op, Pid, Trace};
use vmstorm_loadgen::trace::{encode_binary, load, save, write_text, Position, TraceError};

struct Tmp(PathBuf);

impl Tmp {
    fn new(name: &str, bytes: &[u8]) -> Tmp {
        let dir = std::env::temp_dir().join(format!("vmstorm-malformed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        Tmp(p)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn err(name: &str, bytes: &[u8]) -> TraceError {
    let f = Tmp::new(name, bytes);
    let e = load(&f.0).expect_err("must fail");
    let s = e.to_string();
    assert!(!s.contains('\n'), "one line: {s}");
    assert!(s.starts_with(&f.0.display().to_string()), "names the file: {s}");
    e
}

fn small() -> Trace {
    let mut t = Trace::new("t");
    t.ops = vec![
        Op::Exec { pid: Pid(1), image: ImageSize::DEFAULT },
        Op::Brk { pid: Pid(1), heap_pages: 4 },
        Op::Exit { pid: Pid(1) },
    ];
    t
}

#[test]
fn text_errors_name_the_line() {
    let good = write_text(&small());
    let cases: Vec<(String, usize, &str)> = vec![
        // Cut mid-line and at a line boundary.
        (good[..good.len() - 12].to_string(), 5, "truncated"),
        (good.lines().take(4).collect::<Vec<_>>().join("\n") + "\n", 4, "truncated"),
        (good.replace("brk      p1 heap=4", "brk p1 heap=four"), 3, "bad number"),
        (good.replace("exit     p1", "exit     p1 extra"), 4, "unexpected"),
        (good.replace("v1", "v9"), 1, "unsupported"),
        (good.replace("exec ", "exed "), 2, "unknown op"),
        // Consistent syntax, inconsistent ops: found by validation, at the op's line.
        (good.replace("exit     p1", "exit     p2"), 4, "p2 is not a live process"),
        (good.replace("brk      p1", "brk      p7"), 3, "p7 is not a live process"),
    ];
    for (text, line, want) in cases {
        let e = err("bad.vmtrace", text.as_bytes());
        assert_eq!(e.at, Position::Line(line), "{e}\n{text}");
        assert!(e.message.contains(want), "{e} lacks {want}");
    }
}

#[test]
fn binary_errors_name_the_offset() {
    let good = encode_binary(&small());
    for cut in 0..good.len() {
        let e = err("cut.vmtb", &good[..cut]);
        match e.at {
            // A cut inside the magic is no longer binary: it is rejected as text.
            Position::Line(1) | Position::File if cut < 8 => {}
            Position::Offset(o) => assert!(o as usize <= cut, "{e}"),
            other => panic!("{other:?}: {e}"),
        }
    }
    // Garbage after the magic.
    let mut g = good[..8].to_vec();
    g.extend_from_slice(&[0xff; 40]);
    let e = err("garbage.vmtb", &g);
    assert!(matches!(e.at, Position::Offset(_)), "{e}");
    // Consistent encoding, inconsistent ops: the op's offset.
    let mut t = small();
    t.ops.insert(1, Op::Exit { pid: Pid(5) });
    let f = Tmp::new("inconsistent.vmtb", &[]);
    save(&t, &f.0).unwrap();
    let e = load(&f.0).unwrap_err();
    assert!(matches!(e.at, Position::Offset(o) if o > 8), "{e}");
    assert!(e.message.contains("p5"), "{e}");
}

#[test]
fn garbage_is_not_an_strace_log() {
    let cases: [(&str, &[u8]); 5] = [
        ("c.strace", b"#include <stdio.h>\nint main(void) {\n  return 0;\n}\n"),
        ("json.strace", b"{\"a\": 1, \"b\": [1, 2, 3]}\n"),
        ("words.log", b"the quick brown fox\njumps over\n"),
        ("bin.strace", &[0x00, 0x9f, 0x92, 0x96, 0xff, 0x10, 0x0a, 0x41]),
        ("empty.strace", b""),
    ];
    for (name, bytes) in cases {
        let e = err(name, bytes);
        assert!(
            e.message.contains("not an strace log")
                || e.message.contains("not text")
                || e.message.contains("empty"),
            "{e}"
        );
    }
    // Mostly garbage with a few strace-looking lines is still garbage.
    let mut mixed = String::from("100  brk(NULL) = 0x1000\n");
    for i in 0..10 {
        mixed.push_str(&format!("random line {i}\n"));
    }
    let e = err("mixed.strace", mixed.as_bytes());
    assert_eq!(e.at, Position::Line(2));
}

#[test]
fn truncated_strace_log_names_its_last_line() {
    let log = "100  execve(\"/bin/x\", [\"x\"], 0x1 /* 1 vars */) = 0\n\
               100  brk(NULL) = 0x55000000\n\
               100  mmap(NULL, 8192, PROT_READ|PROT_WR";
    let e = err("cut.strace", log.as_bytes());
    assert_eq!(e.at, Position::Line(3));
    assert!(e.message.contains("truncated"), "{e}");
    // Invalid UTF-8 in the middle: the line of the first bad byte.
    let mut b = b"100  brk(NULL) = 0x55000000\n100  brk(NULL) = 0x55000000\n".to_vec();
    b.extend_from_slice(b"100  \xff\xfe\n");
    let e = err("utf8.strace", &b);
    assert_eq!(e.at, Position::Line(3));
}

#[test]
fn unreadable_file() {
    let e = load(std::path::Path::new("/nonexistent/dir/x.vmtrace")).unwrap_err();
    assert_eq!(e.at, Position::File);
    assert!(e.to_string().starts_with("/nonexistent/dir/x.vmtrace: cannot read"), "{e}");
}

#[test]
fn save_and_load_by_extension() {
    let t = small();
    for name in ["s.vmtrace", "s.vmtb", "s.bin", "s.txt"] {
        let f = Tmp::new(name, &[]);
        save(&t, &f.0).unwrap();
        let bytes = std::fs::read(&f.0).unwrap();
        let binary = name.ends_with(".vmtb") || name.ends_with(".bin");
        assert_eq!(bytes.starts_with(b"# vmtrace"), !binary, "{name}");
        assert_eq!(load(&f.0).unwrap(), t, "{name}");
    }
}
