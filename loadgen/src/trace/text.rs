//! The `.vmtrace` text format: a versioned header, one op per line, diffable by eye.
//!
//! It replaces the hand-written call scripts of MINIX's VM tests with a file a person can
//! read, edit and diff. The writer is the exact inverse of the parser
//! (`parse_text(&write_text(t)) == t`).
//!
//! ```text
//! # vmtrace v1 page=4096 src=strace:sh-pipeline
//! proc     p1 sh                      command name of a process (header, before any op)
//! note     clamped p3 m40 ...         a free-form note (header, before any op)
//! fork     p1 p2                      (vfork p1 p2 for a vfork)
//! exec     p2 text=19 data=3 bss=2 stack=9
//! mmap     p2 m7 pages=2 rw- private              kinds: private shared file; optional prealloc
//! mmap     p2 m9 pages=342 r-x file over=m8+38    MAP_FIXED overlay: pages 38.. of m8
//! munmap   p2 m8+0 pages=9
//! mprotect p2 m9+0 pages=4 r--
//! mremap   p2 m7 pages=16
//! brk      p2 heap=33
//! discard  p2 m7+0 pages=16
//! touch    p2 m7+1 pages=1 w                      places: mN+K text+K data+K heap+K stack+K
//! exit     p2
//! end      ops=12
//! ```
//! Version 2 adds one optional header line (before any op) with the page faults a perf
//! capture recorded, by x86 error code; a v1 file has none and is read as before:
//! ```text
//! recorded faults=285 kernel=12 read=84 write=62 protwrite=46 fetch=72 other=1 lost=0
//! ```
//! Fields are separated by spaces and come in the order shown; numbers are decimal (`0x` hex
//! is accepted). `#` starts a comment anywhere. Names and notes escape `\`, `#`, control
//! characters and leading or trailing spaces as `\\` and `\xNN`. The final `end ops=N` line
//! makes a file cut at a line boundary an error instead of a shorter trace.

use std::fmt::Write as _;

use crate::op::{
    ForkKind, ImageSize, MapId, MapKind, MapSpec, Op, Pid, Place, Prot, RecordedFaults, Trace, TraceHeader,
    FORMAT_VERSION, FORMAT_VERSION_V1,
};
use crate::trace::TraceError;

/// How every `.vmtrace` file starts.
pub const HEADER_PREFIX: &str = "# vmtrace";

/// Escapes `s` for a name or note; `all_spaces` also escapes inner spaces (header tokens).
fn escape(s: &str, all_spaces: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let last = s.chars().count().saturating_sub(1);
    for (i, c) in s.chars().enumerate() {
        let edge_space = c == ' ' && (all_spaces || i == 0 || i == last);
        if c == '\\' {
            out.push_str("\\\\");
        } else if c == '#' || edge_space || (c as u32) < 0x20 || c == '\x7f' {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else if c.is_control() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let (n, radix_len) = match it.next() {
            Some('\\') => {
                out.push('\\');
                continue;
            }
            Some('x') => (2, 2),
            Some('u') => (4, 4),
            other => return Err(format!("bad escape \\{}", other.unwrap_or(' '))),
        };
        let hex: String = it.by_ref().take(n).collect();
        let v = (hex.len() == radix_len)
            .then(|| u32::from_str_radix(&hex, 16).ok())
            .flatten()
            .and_then(char::from_u32)
            .ok_or_else(|| format!("bad escape value '{hex}'"))?;
        out.push(v);
    }
    Ok(out)
}

fn kind_word(k: MapKind) -> &'static str {
    match k {
        MapKind::Private => "private",
        MapKind::Shared => "shared",
        MapKind::File => "file",
    }
}

fn place_text(p: Place) -> String {
    match p {
        Place::Text(n) => format!("text+{n}"),
        Place::Data(n) => format!("data+{n}"),
        Place::Heap(n) => format!("heap+{n}"),
        Place::Stack(n) => format!("stack+{n}"),
        Place::Map(id, n) => format!("{id}+{n}"),
    }
}

/// Writes one op as its `.vmtrace` line (without newline).
pub fn op_line(op: &Op) -> String {
    match *op {
        Op::Fork { parent, child, kind } => {
            let w = if kind == ForkKind::Vfork { "vfork" } else { "fork" };
            format!("{w:<8} {parent} {child}")
        }
        Op::Exec { pid, image: i } => format!(
            "exec     {pid} text={} data={} bss={} stack={}",
            i.text_pages, i.data_pages, i.bss_pages, i.stack_pages
        ),
        Op::Exit { pid } => format!("exit     {pid}"),
        Op::Mmap { pid, id, spec } => {
            let mut s =
                format!("mmap     {pid} {id} pages={} {} {}", spec.pages, spec.prot, kind_word(spec.kind));
            if spec.prealloc {
                s.push_str(" prealloc");
            }
            s
        }
        Op::MmapOver { pid, id, over, offset, spec } => {
            let mut s =
                format!("mmap     {pid} {id} pages={} {} {}", spec.pages, spec.prot, kind_word(spec.kind));
            if spec.prealloc {
                s.push_str(" prealloc");
            }
            let _ = write!(s, " over={over}+{offset}");
            s
        }
        Op::Munmap { pid, id, offset, pages } => format!("munmap   {pid} {id}+{offset} pages={pages}"),
        Op::Mprotect { pid, id, offset, pages, prot } => {
            format!("mprotect {pid} {id}+{offset} pages={pages} {prot}")
        }
        Op::Mremap { pid, id, new_pages } => format!("mremap   {pid} {id} pages={new_pages}"),
        Op::Brk { pid, heap_pages } => format!("brk      {pid} heap={heap_pages}"),
        Op::Discard { pid, id, offset, pages } => format!("discard  {pid} {id}+{offset} pages={pages}"),
        Op::Touch { pid, place, pages, write } => {
            format!("touch    {pid} {} pages={pages} {}", place_text(place), if write { "w" } else { "r" })
        }
    }
}

/// The version-2 `recorded` header line.
fn recorded_line(r: &RecordedFaults) -> String {
    format!(
        "recorded faults={} kernel={} read={} write={} protwrite={} fetch={} other={} lost={}",
        r.faults, r.kernel, r.read, r.write, r.protection_write, r.fetch, r.other, r.lost
    )
}

fn parse_recorded(rest: &str) -> Result<RecordedFaults, String> {
    let mut r = RecordedFaults::default();
    let fields: [(&str, &mut u64); 8] = [
        ("faults", &mut r.faults),
        ("kernel", &mut r.kernel),
        ("read", &mut r.read),
        ("write", &mut r.write),
        ("protwrite", &mut r.protection_write),
        ("fetch", &mut r.fetch),
        ("other", &mut r.other),
        ("lost", &mut r.lost),
    ];
    let mut toks = rest.split_ascii_whitespace();
    for (key, slot) in fields {
        let t = toks.next().ok_or_else(|| format!("'recorded' line lacks {key}=N"))?;
        *slot = parse_kv(t, key)?;
    }
    if let Some(t) = toks.next() {
        return Err(format!("unexpected '{t}' at the end of the 'recorded' line"));
    }
    Ok(r)
}

/// Writes `trace` in the `.vmtrace` text format.
pub fn write_text(trace: &Trace) -> String {
    let h = &trace.header;
    let mut out = String::with_capacity(64 + trace.ops.len() * 40);
    // Recorded faults need version 2; a header claiming 1 with them is written as 2.
    let version = if h.recorded.is_some() { h.version.max(FORMAT_VERSION) } else { h.version };
    let _ = write!(out, "{HEADER_PREFIX} v{version} page={}", h.page_size);
    if !h.source.is_empty() {
        let _ = write!(out, " src={}", escape(&h.source, true));
    }
    out.push('\n');
    for (pid, name) in &h.names {
        let _ = writeln!(out, "proc     {pid} {}", escape(name, false));
    }
    for note in &h.notes {
        let _ = writeln!(out, "note     {}", escape(note, false));
    }
    if let Some(r) = &h.recorded {
        let _ = writeln!(out, "{}", recorded_line(r));
    }
    for op in &trace.ops {
        out.push_str(&op_line(op));
        out.push('\n');
    }
    let _ = writeln!(out, "end      ops={}", trace.ops.len());
    out
}

/// Parses a `.vmtrace` text; `file` names it in errors (`file:line: message`). Checks syntax
/// only; [`crate::trace::validate`] checks that the ops are consistent.
pub fn parse_text(text: &str, file: &str) -> Result<Trace, TraceError> {
    parse_text_positions(text, file).map(|(t, _)| t)
}

/// [`parse_text`] that also returns the 1-based line of every op.
pub(crate) fn parse_text_positions(text: &str, file: &str) -> Result<(Trace, Vec<usize>), TraceError> {
    let mut lines = text.split('\n').enumerate().map(|(i, l)| (i + 1, l));
    let mut trace = Trace::default();
    let mut op_lines = Vec::new();

    // Header: the first non-blank line.
    let (hline, header) = loop {
        match lines.next() {
            Some((n, l)) if l.trim().is_empty() => {
                let _ = n;
            }
            Some((n, l)) => break (n, l.trim_end_matches(['\r', ' ', '\t'])),
            None => return Err(TraceError::file(file, "empty file: no vmtrace header")),
        }
    };
    parse_header(header, &mut trace.header).map_err(|m| TraceError::line(file, hline, m))?;

    let mut end: Option<(usize, u64)> = None;
    let mut last_line = hline;
    for (n, raw) in lines {
        if !raw.trim().is_empty() {
            last_line = n;
        }
        let body = raw.split('#').next().unwrap_or("");
        let body = body.trim_matches([' ', '\t', '\r']);
        if body.is_empty() {
            continue;
        }
        if let Some((en, _)) = end {
            return Err(TraceError::line(file, n, format!("text after the end line (line {en})")));
        }
        let (word, rest) = split_word(body);
        let err = |m: String| TraceError::line(file, n, m);
        match word {
            "proc" | "note" | "recorded" if !trace.ops.is_empty() => {
                return Err(err(format!("'{word}' line after the first op")));
            }
            "proc" => {
                // The name is taken from the raw line: it may contain '#' escapes only.
                let (pid, name) = split_word(rest);
                let pid = parse_pid(pid).map_err(&err)?;
                let name = unescape(name).map_err(&err)?;
                if trace.header.names.insert(pid, name).is_some() {
                    return Err(err(format!("second name for {pid}")));
                }
            }
            "note" => {
                let note = unescape(rest).map_err(&err)?;
                trace.header.notes.push(note);
            }
            "recorded" => {
                if trace.header.version < FORMAT_VERSION {
                    return Err(err(format!("'recorded' line in a v{} file", trace.header.version)));
                }
                if trace.header.recorded.is_some() {
                    return Err(err("second 'recorded' line".into()));
                }
                trace.header.recorded = Some(parse_recorded(rest).map_err(&err)?);
            }
            "end" => {
                if rest.trim().is_empty() {
                    return Err(err("'end' line lacks ops=N (truncated?)".into()));
                }
                let count = parse_kv(rest.trim(), "ops").map_err(&err)?;
                if count != trace.ops.len() as u64 {
                    return Err(err(format!(
                        "end line says {count} ops but the file has {} (truncated or edited?)",
                        trace.ops.len()
                    )));
                }
                end = Some((n, count));
            }
            _ => {
                let op = parse_op(word, rest).map_err(&err)?;
                trace.ops.push(op);
                op_lines.push(n);
            }
        }
    }
    if end.is_none() {
        return Err(TraceError::line(file, last_line, "missing 'end ops=N' line: the file is truncated"));
    }
    Ok((trace, op_lines))
}

fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches([' ', '\t']);
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], s[i..].trim_start_matches([' ', '\t'])),
        None => (s, ""),
    }
}

fn parse_header(line: &str, h: &mut TraceHeader) -> Result<(), String> {
    let rest = line
        .strip_prefix(HEADER_PREFIX)
        .ok_or_else(|| format!("not a vmtrace file: the first line must start with '{HEADER_PREFIX} v1'"))?;
    let mut toks = rest.split_ascii_whitespace();
    let v = toks.next().and_then(|t| t.strip_prefix('v')).ok_or("header lacks the version (v1)")?;
    let v: u32 = v.parse().map_err(|_| format!("bad version 'v{v}'"))?;
    if !(FORMAT_VERSION_V1..=FORMAT_VERSION).contains(&v) {
        return Err(format!(
            "unsupported vmtrace version v{v} (this build reads v{FORMAT_VERSION_V1} to v{FORMAT_VERSION})"
        ));
    }
    h.version = v;
    let mut page = None;
    for t in toks {
        let (k, val) = t.split_once('=').ok_or_else(|| format!("header field '{t}' is not key=value"))?;
        match k {
            "page" => {
                let p: u32 = val.parse().map_err(|_| format!("bad page size '{val}'"))?;
                if !p.is_power_of_two() || !(512..=1 << 30).contains(&p) {
                    return Err(format!("page size {p} is not a power of two in 512..=1G"));
                }
                page = Some(p);
            }
            "src" => h.source = unescape(val)?,
            _ => return Err(format!("unknown header field '{k}'")),
        }
    }
    h.page_size = page.ok_or("header lacks page=SIZE")?;
    Ok(())
}

fn parse_num(s: &str) -> Result<u64, String> {
    let r = if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16)
    } else if s.starts_with('+') {
        return Err(format!("bad number '{s}'"));
    } else {
        s.parse()
    };
    r.map_err(|_| format!("bad number '{s}'"))
}

fn parse_u32(s: &str) -> Result<u32, String> {
    let v = parse_num(s)?;
    u32::try_from(v).map_err(|_| format!("number '{s}' too large"))
}

fn parse_pid(s: &str) -> Result<Pid, String> {
    s.strip_prefix('p')
        .and_then(|n| parse_u32(n).ok())
        .map(Pid)
        .ok_or_else(|| format!("expected a pid like p1, found '{s}'"))
}

fn parse_id(s: &str) -> Result<MapId, String> {
    s.strip_prefix('m')
        .and_then(|n| parse_u32(n).ok())
        .map(MapId)
        .ok_or_else(|| format!("expected a mapping id like m1, found '{s}'"))
}

/// `mN+K`
fn parse_id_off(s: &str) -> Result<(MapId, u64), String> {
    let (id, off) = s.split_once('+').ok_or_else(|| format!("expected mN+OFFSET, found '{s}'"))?;
    Ok((parse_id(id)?, parse_num(off)?))
}

fn parse_kv(s: &str, key: &str) -> Result<u64, String> {
    s.strip_prefix(key)
        .and_then(|r| r.strip_prefix('='))
        .ok_or_else(|| format!("expected {key}=N, found '{s}'"))
        .and_then(parse_num)
}

fn parse_prot(s: &str) -> Result<Prot, String> {
    Prot::from_letters(s).ok_or_else(|| format!("expected a protection like rw-, found '{s}'"))
}

fn parse_place(s: &str) -> Result<Place, String> {
    let (what, off) =
        s.split_once('+').ok_or_else(|| format!("expected a place like m3+0 or heap+0, found '{s}'"))?;
    let off = parse_num(off)?;
    Ok(match what {
        "text" => Place::Text(off),
        "data" => Place::Data(off),
        "heap" => Place::Heap(off),
        "stack" => Place::Stack(off),
        _ => Place::Map(parse_id(what)?, off),
    })
}

struct Fields<'a> {
    it: std::str::SplitAsciiWhitespace<'a>,
}

impl<'a> Fields<'a> {
    fn next(&mut self, what: &str) -> Result<&'a str, String> {
        self.it.next().ok_or_else(|| format!("missing {what} (line cut short?)"))
    }
    fn done(mut self) -> Result<(), String> {
        match self.it.next() {
            Some(t) => Err(format!("unexpected '{t}' at the end of the line")),
            None => Ok(()),
        }
    }
}

fn parse_op(word: &str, rest: &str) -> Result<Op, String> {
    let mut f = Fields { it: rest.split_ascii_whitespace() };
    let op = match word {
        "fork" | "vfork" => {
            let parent = parse_pid(f.next("parent pid")?)?;
            let child = parse_pid(f.next("child pid")?)?;
            let kind = if word == "vfork" { ForkKind::Vfork } else { ForkKind::Fork };
            Op::Fork { parent, child, kind }
        }
        "exec" => {
            let pid = parse_pid(f.next("pid")?)?;
            let image = ImageSize {
                text_pages: parse_kv(f.next("text=N")?, "text")?,
                data_pages: parse_kv(f.next("data=N")?, "data")?,
                bss_pages: parse_kv(f.next("bss=N")?, "bss")?,
                stack_pages: parse_kv(f.next("stack=N")?, "stack")?,
            };
            Op::Exec { pid, image }
        }
        "exit" => Op::Exit { pid: parse_pid(f.next("pid")?)? },
        "mmap" => {
            let pid = parse_pid(f.next("pid")?)?;
            let id = parse_id(f.next("mapping id")?)?;
            let pages = parse_kv(f.next("pages=N")?, "pages")?;
            let prot = parse_prot(f.next("protection")?)?;
            let kind = match f.next("kind")? {
                "private" => MapKind::Private,
                "shared" => MapKind::Shared,
                "file" => MapKind::File,
                k => return Err(format!("expected private, shared or file, found '{k}'")),
            };
            let mut prealloc = false;
            let mut over = None;
            for t in f.it.by_ref() {
                if t == "prealloc" && !prealloc && over.is_none() {
                    prealloc = true;
                } else if let (Some(o), None) = (t.strip_prefix("over="), over) {
                    over = Some(parse_id_off(o)?);
                } else {
                    return Err(format!("unexpected '{t}' in mmap"));
                }
            }
            let spec = MapSpec { pages, prot, kind, prealloc };
            match over {
                None => Op::Mmap { pid, id, spec },
                Some((over, offset)) => Op::MmapOver { pid, id, over, offset, spec },
            }
        }
        "munmap" | "discard" => {
            let pid = parse_pid(f.next("pid")?)?;
            let (id, offset) = parse_id_off(f.next("mN+OFFSET")?)?;
            let pages = parse_kv(f.next("pages=N")?, "pages")?;
            if word == "munmap" {
                Op::Munmap { pid, id, offset, pages }
            } else {
                Op::Discard { pid, id, offset, pages }
            }
        }
        "mprotect" => {
            let pid = parse_pid(f.next("pid")?)?;
            let (id, offset) = parse_id_off(f.next("mN+OFFSET")?)?;
            let pages = parse_kv(f.next("pages=N")?, "pages")?;
            let prot = parse_prot(f.next("protection")?)?;
            Op::Mprotect { pid, id, offset, pages, prot }
        }
        "mremap" => Op::Mremap {
            pid: parse_pid(f.next("pid")?)?,
            id: parse_id(f.next("mapping id")?)?,
            new_pages: parse_kv(f.next("pages=N")?, "pages")?,
        },
        "brk" => {
            Op::Brk { pid: parse_pid(f.next("pid")?)?, heap_pages: parse_kv(f.next("heap=N")?, "heap")? }
        }
        "touch" => {
            let pid = parse_pid(f.next("pid")?)?;
            let place = parse_place(f.next("place")?)?;
            let pages = parse_kv(f.next("pages=N")?, "pages")?;
            let write = match f.next("r or w")? {
                "r" => false,
                "w" => true,
                t => return Err(format!("expected r or w, found '{t}'")),
            };
            Op::Touch { pid, place, pages, write }
        }
        _ => return Err(format!("unknown op '{word}'")),
    };
    f.done()?;
    Ok(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_round_trips_awkward_strings() {
        for s in ["", " a ", "a#b", "x\\y", "tab\there", "\u{85}nel", "é ü", "  "] {
            let e = escape(s, false);
            assert!(!e.contains('#') && !e.contains('\t'), "{e}");
            assert_eq!(unescape(&e).unwrap(), s);
            assert_eq!(unescape(&escape(s, true)).unwrap(), s);
        }
        assert!(unescape("\\q").is_err());
        assert!(unescape("\\x4").is_err());
    }

    #[test]
    fn small_trace_round_trips_and_reads_like_the_docs() {
        let text = "# vmtrace v1 page=4096 src=strace:x\n\
                    proc p1 sh\n\
                    note hello world\n\
                    exec p1 text=19 data=3 bss=2 stack=9   # comment\n\
                    mmap p1 m1 pages=10 r-- file\n\
                    mmap p1 m2 pages=3 r-x file over=m1+2\n\
                    touch p1 m2+0 pages=1 r\n\
                    fork p1 p2\n\
                    exit p2\n\
                    exit p1\n\
                    end ops=7\n";
        let t = parse_text(text, "x").unwrap();
        assert_eq!(t.ops.len(), 7);
        assert_eq!(t.header.source, "strace:x");
        assert_eq!(t.header.names[&Pid(1)], "sh");
        assert_eq!(t.header.notes, vec!["hello world".to_string()]);
        assert_eq!(parse_text(&write_text(&t), "y").unwrap(), t);
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("", "empty file"),
            ("hello\n", "not a vmtrace"),
            ("# vmtrace v3 page=4096\nend ops=0\n", "unsupported"),
            ("# vmtrace v1\nend ops=0\n", "page="),
            ("# vmtrace v1 page=4096\nexit p1\n", "missing 'end"),
            ("# vmtrace v1 page=4096\nexit p1\nend ops=2\n", "end line says"),
            ("# vmtrace v1 page=4096\nmmap p1 m1 pages=2 rw-\nend ops=1\n", "missing kind"),
            ("# vmtrace v1 page=4096\nfrobnicate p1\nend ops=1\n", "unknown op"),
            ("# vmtrace v1 page=4096\nexit p1 p2\nend ops=1\n", "unexpected 'p2'"),
            ("# vmtrace v1 page=4096\nexit p1\nproc p1 x\nend ops=1\n", "after the first op"),
            ("# vmtrace v1 page=4096\nend ops=0\nexit p1\n", "after the end"),
            ("# vmtrace v1 page=4096\nbrk p1 heap=99999999999999999999\n", "bad number"),
        ];
        for (text, want) in cases {
            let e = parse_text(text, "f.vmtrace").unwrap_err();
            let s = e.to_string();
            assert!(s.starts_with("f.vmtrace:"), "{s}");
            assert!(s.contains(want), "{s} lacks {want}");
        }
        let e = parse_text("# vmtrace v1 page=4096\n\nexit p1\nexit px\n", "f").unwrap_err();
        assert_eq!(e.to_string(), "f:4: expected a pid like p1, found 'px'");
    }
}
