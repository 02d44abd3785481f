//! Property tests of both trace formats: the writers are exact inverses of the parsers for
//! any ops and header, and no input — random bytes, random text, truncations and byte flips
//! of valid encodings, random strace-like lines — makes a parser or the importer panic.

use std::collections::BTreeMap;

use proptest::prelude::*;
use vmstorm_loadgen::op::{
    ForkKind, ImageSize, MapId, MapKind, MapSpec, Op, Pid, Place, Prot, Trace, TraceHeader,
};
use vmstorm_loadgen::trace::{
    decode_binary, encode_binary, import_strace, load_bytes, parse_text, write_text, ImportOptions,
};

fn pid() -> impl Strategy<Value = Pid> {
    prop_oneof![0u32..8, any::<u32>()].prop_map(Pid)
}

fn id() -> impl Strategy<Value = MapId> {
    prop_oneof![0u32..16, any::<u32>()].prop_map(MapId)
}

fn n() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..300, any::<u64>()]
}

fn prot() -> impl Strategy<Value = Prot> {
    (0u8..8).prop_map(|b| Prot::from_bits(b).unwrap())
}

fn spec() -> impl Strategy<Value = MapSpec> {
    (
        n(),
        prot(),
        prop_oneof![Just(MapKind::Private), Just(MapKind::Shared), Just(MapKind::File)],
        any::<bool>(),
    )
        .prop_map(|(pages, prot, kind, prealloc)| MapSpec { pages, prot, kind, prealloc })
}

fn place() -> impl Strategy<Value = Place> {
    prop_oneof![
        n().prop_map(Place::Text),
        n().prop_map(Place::Data),
        n().prop_map(Place::Heap),
        n().prop_map(Place::Stack),
        (id(), n()).prop_map(|(i, o)| Place::Map(i, o)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (pid(), pid(), any::<bool>()).prop_map(|(parent, child, v)| Op::Fork {
            parent,
            child,
            kind: if v { ForkKind::Vfork } else { ForkKind::Fork }
        }),
        (pid(), n(), n(), n(), n()).prop_map(|(pid, t, d, b, s)| Op::Exec {
            pid,
            image: ImageSize { text_pages: t, data_pages: d, bss_pages: b, stack_pages: s }
        }),
        pid().prop_map(|pid| Op::Exit { pid }),
        (pid(), id(), spec()).prop_map(|(pid, id, spec)| Op::Mmap { pid, id, spec }),
        (pid(), id(), id(), n(), spec())
            .prop_map(|(pid, id, over, offset, spec)| { Op::MmapOver { pid, id, over, offset, spec } }),
        (pid(), id(), n(), n()).prop_map(|(pid, id, offset, pages)| Op::Munmap { pid, id, offset, pages }),
        (pid(), id(), n(), n(), prot())
            .prop_map(|(pid, id, offset, pages, prot)| { Op::Mprotect { pid, id, offset, pages, prot } }),
        (pid(), id(), n()).prop_map(|(pid, id, new_pages)| Op::Mremap { pid, id, new_pages }),
        (pid(), n()).prop_map(|(pid, heap_pages)| Op::Brk { pid, heap_pages }),
        (pid(), id(), n(), n()).prop_map(|(pid, id, offset, pages)| Op::Discard { pid, id, offset, pages }),
        (pid(), place(), n(), any::<bool>())
            .prop_map(|(pid, place, pages, write)| { Op::Touch { pid, place, pages, write } }),
    ]
}

/// Strings with the awkward characters: spaces at the edges, `#`, `\`, controls, Unicode.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9 ._/-]{0,20}",
        any::<String>(),
        prop::collection::vec(
            prop_oneof![
                Just(' '),
                Just('#'),
                Just('\\'),
                Just('\t'),
                Just('\r'),
                Just('\n'),
                Just('\u{85}'),
                Just('\u{2028}'),
                Just('='),
                Just('x'),
                Just('é')
            ],
            0..12
        )
        .prop_map(|v| v.into_iter().collect()),
    ]
}

fn trace() -> impl Strategy<Value = Trace> {
    (
        text(),
        prop::collection::btree_map(pid(), text(), 0..4),
        prop::collection::vec(text(), 0..4),
        prop_oneof![Just(4096u32), Just(512), Just(1 << 21)],
        prop::collection::vec(op(), 0..60),
    )
        .prop_map(|(source, names, notes, page_size, ops)| Trace {
            header: TraceHeader {
                source,
                names: names.into_iter().collect::<BTreeMap<_, _>>(),
                notes,
                page_size,
                ..TraceHeader::default()
            },
            ops,
        })
}

proptest! {
    #[test]
    fn text_round_trips(t in trace()) {
        let s = write_text(&t);
        prop_assert_eq!(parse_text(&s, "p.vmtrace").unwrap(), t);
    }

    #[test]
    fn binary_round_trips(t in trace()) {
        let b = encode_binary(&t);
        prop_assert_eq!(decode_binary(&b, "p.vmtb").unwrap(), t);
    }

    #[test]
    fn binary_truncations_are_errors_with_offsets(t in trace(), cut in any::<prop::sample::Index>()) {
        let b = encode_binary(&t);
        let at = cut.index(b.len());
        let e = decode_binary(&b[..at], "p.vmtb").unwrap_err();
        prop_assert!(e.to_string().starts_with("p.vmtb: byte "), "{}", e);
    }

    #[test]
    fn binary_byte_flips_never_panic(t in trace(), at in any::<prop::sample::Index>(), x in 1u8..) {
        let mut b = encode_binary(&t);
        let i = at.index(b.len());
        b[i] ^= x;
        // The checksum catches what the structure does not.
        let e = decode_binary(&b, "p.vmtb").unwrap_err();
        prop_assert!(
            e.file == "p.vmtb"
                && matches!(e.at, vmstorm_loadgen::trace::Position::Offset(o) if o <= b.len() as u64),
            "{:?}",
            e
        );
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400), magic in any::<bool>()) {
        let mut b = bytes;
        if magic {
            let mut m = vmstorm_loadgen::trace::BINARY_MAGIC.to_vec();
            m.extend_from_slice(&b);
            b = m;
        }
        if let Err(e) = load_bytes(&b, "r.bin", &ImportOptions::default()) {
            prop_assert!(!e.to_string().contains('\n'), "one line: {}", e);
        }
    }

    #[test]
    fn text_truncations_are_errors(t in trace(), cut in any::<prop::sample::Index>()) {
        let s = write_text(&t);
        let at = cut.index(s.len());
        if s.is_char_boundary(at) {
            let r = parse_text(&s[..at], "p.vmtrace");
            // A cut at the end of a line can leave a whole shorter trace; else the error is at
            // a line of what is left (the file as a whole when nothing is left).
            let lines = s[..at].lines().count().max(1);
            match r {
                Ok(parsed) => prop_assert_eq!(parsed, t),
                Err(e) => prop_assert!(
                    e.file == "p.vmtrace"
                        && match e.at {
                            vmstorm_loadgen::trace::Position::Line(l) => (1..=lines + 1).contains(&l),
                            vmstorm_loadgen::trace::Position::File => s[..at].trim().is_empty(),
                            vmstorm_loadgen::trace::Position::Offset(_) => false,
                        },
                    "{:?} ({} lines)",
                    e,
                    lines
                ),
            }
        }
    }

    #[test]
    fn random_text_never_panics(lines in prop::collection::vec(text(), 0..20)) {
        let mut s = String::from("# vmtrace v1 page=4096\n");
        s.push_str(&lines.join("\n"));
        let _ = parse_text(&s, "r.vmtrace");
        let _ = import_strace(&lines.join("\n"), "r.strace", &ImportOptions::default());
    }

    #[test]
    fn random_strace_lines_never_panic(lines in prop::collection::vec(strace_line(), 1..40)) {
        let log = lines.join("\n") + "\n";
        if let Ok((t, _)) = import_strace(&log, "r.strace", &ImportOptions::default()) {
            // Whatever the importer makes of it is a consistent trace.
            let v = vmstorm_loadgen::trace::validate(&t);
            prop_assert!(v.is_ok(), "{:?}\n{}", v, vmstorm_loadgen::trace::write_text(&t));
        }
    }
}

/// Plausible strace lines with random pids, addresses and lengths, so the importer's
/// process and address logic (not only its lexer) meets odd cases.
fn strace_line() -> impl Strategy<Value = String> {
    let p = 1u32..6;
    let addr = prop_oneof![(0u64..64).prop_map(|a| 0x7f00_0000_0000 + a * 0x1000), any::<u64>()];
    let len = prop_oneof![1u64..70000, any::<u64>()];
    let flags = prop_oneof![
        Just("MAP_PRIVATE|MAP_ANONYMOUS"),
        Just("MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS"),
        Just("MAP_SHARED|MAP_ANONYMOUS"),
        Just("MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE"),
        Just("MAP_PRIVATE|MAP_FIXED"),
    ];
    let prot = prop_oneof![Just("PROT_NONE"), Just("PROT_READ"), Just("PROT_READ|PROT_WRITE")];
    prop_oneof![
        (p.clone(), addr.clone(), len.clone(), prot.clone(), flags, addr.clone())
            .prop_map(|(p, a, l, pr, f, r)| format!("{p}  mmap({a:#x}, {l}, {pr}, {f}, -1, 0) = {r:#x}")),
        (p.clone(), addr.clone(), len.clone()).prop_map(|(p, a, l)| format!("{p}  munmap({a:#x}, {l}) = 0")),
        (p.clone(), addr.clone(), len.clone(), prot)
            .prop_map(|(p, a, l, pr)| format!("{p}  mprotect({a:#x}, {l}, {pr}) = 0")),
        (p.clone(), addr.clone(), len.clone())
            .prop_map(|(p, a, l)| format!("{p}  madvise({a:#x}, {l}, MADV_DONTNEED) = 0")),
        (p.clone(), addr.clone(), len.clone(), len.clone(), addr.clone())
            .prop_map(|(p, a, l, m, r)| format!("{p}  mremap({a:#x}, {l}, {m}, MREMAP_MAYMOVE) = {r:#x}")),
        (p.clone(), addr.clone(), addr.clone()).prop_map(|(p, a, r)| format!("{p}  brk({a:#x}) = {r:#x}")),
        (p.clone(), addr).prop_map(|(p, r)| format!("{p}  brk(NULL) = {r:#x}")),
        (
            p.clone(),
            1u32..6,
            prop_oneof![
                Just("SIGCHLD"),
                Just("CLONE_VM|CLONE_VFORK|SIGCHLD"),
                Just("CLONE_VM|CLONE_THREAD|CLONE_SIGHAND"),
                Just("CLONE_VM")
            ]
        )
            .prop_map(|(p, c, f)| format!("{p}  clone(child_stack=NULL, flags={f}) = {c}")),
        p.clone().prop_map(|p| format!("{p}  execve(\"/bin/x\", [\"x\"], 0x1 /* 1 vars */) = 0")),
        p.clone().prop_map(|p| format!("{p}  exit_group(0) = ?")),
        p.clone().prop_map(|p| format!("{p}  exit(0) = ?")),
        p.clone().prop_map(|p| format!("{p}  +++ exited with 0 +++")),
        (p.clone(), 1u32..6).prop_map(|(p, o)| format!("{p}  +++ superseded by execve in pid {o} +++")),
        p.clone().prop_map(|p| format!("{p}  brk(NULL <unfinished ...>")),
        p.prop_map(|p| format!("{p}  <... brk resumed>) = 0x5000")),
    ]
}
