//! One line of an `strace` log: pid prefix, timestamp, body, duration.
//!
//! Accepts every prefix form strace prints (`PID  ` from `-f -o`, `[pid  N] ` on stderr,
//! `PID<comm> ` from `-Y`, none for a lone process), every timestamp form (`-t`, `-tt`,
//! `-ttt`, nanosecond precision, `-r` relative), the syscall number of `-n` and instruction
//! pointer of `-i` after it, the `-T` duration suffix, and the stack frames `-k` prints
//! below a call (` > lib(sym+off) [addr]`, carried as informational lines); and classifies
//! the body: a complete call, an `<unfinished ...>` head, a `<... resumed>` tail, a signal, an
//! exit/kill/superseded marker or an informational line. Nothing is allocated.

/// What the body of a line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Body<'a> {
    /// `NAME(ARGS) = RET`.
    Call {
        /// Syscall name.
        name: &'a str,
        /// The whole call text, from the name to the end (duration removed).
        text: &'a str,
    },
    /// `NAME(PARTIAL <unfinished ...>`: `head` is the text before ` <unfinished ...>`.
    Unfinished {
        /// Syscall name.
        name: &'a str,
        /// Text from the name up to the marker.
        head: &'a str,
    },
    /// `<... NAME resumed>REST`.
    Resumed {
        /// Syscall name.
        name: &'a str,
        /// The text after `resumed>`.
        rest: &'a str,
    },
    /// `+++ exited with N +++`.
    Exited,
    /// `+++ killed by SIG... +++`.
    Killed,
    /// `+++ superseded by execve in pid N +++`: thread `N` exec'd and took this pid.
    Superseded {
        /// The tid of the thread that exec'd.
        old: u32,
    },
    /// `--- SIG... ---`, `[ Process PID=N runs in 32 bit mode. ]`, `restart_syscall(...)`
    /// and other lines that carry nothing for the VM.
    Info,
}

/// The pid prefix of a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Prefix {
    /// No prefix: the lone traced process.
    None,
    /// A pid (any of the prefixed forms).
    Pid(u32),
}

/// A lexed line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lexed<'a> {
    /// Whose line it is.
    pub prefix: Prefix,
    /// What it says.
    pub body: Body<'a>,
}

fn digits(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_digit).count()
}

fn parse_pid(s: &str) -> Option<u32> {
    let v: u32 = s.parse().ok()?;
    (v > 0).then_some(v)
}

/// Splits off the pid prefix.
fn prefix(s: &str) -> Option<(Prefix, &str)> {
    if let Some(r) = s.strip_prefix("[pid ") {
        let r = r.trim_start_matches(' ');
        let n = digits(r);
        let pid = parse_pid(&r[..n])?;
        let r = r[n..].strip_prefix(']')?;
        return Some((Prefix::Pid(pid), r.strip_prefix(' ').unwrap_or(r)));
    }
    let n = digits(s);
    if n == 0 {
        return Some((Prefix::None, s));
    }
    match s.as_bytes().get(n) {
        Some(b' ') => Some((Prefix::Pid(parse_pid(&s[..n])?), &s[n + 1..])),
        Some(b'<') => {
            // -Y: `PID<comm> `; comm cannot be trusted not to hold spaces, so find "> ".
            let close = s[n..].find("> ")? + n;
            Some((Prefix::Pid(parse_pid(&s[..n])?), &s[close + 2..]))
        }
        // A timestamp of a line without prefix (`19:44:51`, `1795463120.534248`).
        _ => Some((Prefix::None, s)),
    }
}

/// Strips a timestamp (`-t`, `-tt`, `-ttt`, ns precision, `-r`) and the spaces around it.
fn timestamp(s: &str) -> Option<&str> {
    let t = s.trim_start_matches(' ');
    if !t.starts_with(|c: char| c.is_ascii_digit()) {
        return Some(t);
    }
    let end = t.find(' ')?;
    let tok = &t[..end];
    let ok = if tok.contains(':') {
        // HH:MM:SS[.frac]
        let (hms, frac) = tok.split_once('.').unwrap_or((tok, "0"));
        let parts: Vec<&str> = hms.split(':').collect();
        parts.len() == 3
            && parts.iter().all(|p| p.len() == 2 && digits(p) == 2)
            && !frac.is_empty()
            && digits(frac) == frac.len()
    } else {
        let (a, b) = tok.split_once('.').unwrap_or((tok, "0"));
        !a.is_empty() && digits(a) == a.len() && !b.is_empty() && digits(b) == b.len()
    };
    ok.then(|| t[end..].trim_start_matches(' '))
}

/// Strips the bracketed fields strace prints after the timestamp: the syscall number of
/// `-n` (`[  59]`, `[x32:  59]`) and the instruction pointer of `-i` (`[00007fb138e06ad7]`,
/// `[????????????????]` for exits). Either, both or none may be there.
fn bracket_fields(s: &str) -> &str {
    let mut s = s;
    for _ in 0..2 {
        let Some(r) = s.strip_prefix('[') else {
            return s;
        };
        let Some(close) = r.find(']') else {
            return s;
        };
        let inner = r[..close].trim_start_matches(' ');
        let inner = inner
            .split_once(':')
            .map(|(abi, n)| {
                if abi.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    n.trim_start_matches(' ')
                } else {
                    inner
                }
            })
            .unwrap_or(inner);
        let ok = !inner.is_empty()
            && (inner.bytes().all(|b| b.is_ascii_hexdigit()) || inner.bytes().all(|b| b == b'?'));
        if !ok {
            return s;
        }
        s = r[close + 1..].trim_start_matches(' ');
    }
    s
}

/// Strips a `-T` duration (` <0.000297>`) from the end.
fn duration(s: &str) -> &str {
    if let Some(body) = s.strip_suffix('>') {
        if let Some(i) = body.rfind(" <") {
            let d = &body[i + 2..];
            if let Some((a, b)) = d.split_once('.') {
                if !a.is_empty() && digits(a) == a.len() && !b.is_empty() && digits(b) == b.len() {
                    return s[..i].trim_end_matches(' ');
                }
            }
        }
    }
    s
}

/// A syscall name at the start of `s`: `[a-z_][a-z0-9_]*` followed by `(`.
fn call_name(s: &str) -> Option<&str> {
    let n = s.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
    (n > 0 && !s.as_bytes()[0].is_ascii_digit() && s.as_bytes().get(n) == Some(&b'(')).then(|| &s[..n])
}

/// Whether a complete call's text has its `) = RET` separator.
pub(crate) fn result_split(text: &str) -> Option<(&str, &str)> {
    // The last " = " preceded (after padding) by ')' separates arguments from the result;
    // arguments may hold " = " in strings, the result never holds ") = ".
    let mut end = text.len();
    while let Some(i) = text[..end].rfind(" = ") {
        let before = text[..i].trim_end_matches(' ');
        if before.ends_with(')') {
            let open = text.find('(')?;
            if before.len() > open {
                return Some((&before[open + 1..before.len() - 1], &text[i + 3..]));
            }
        }
        end = i;
    }
    None
}

/// Lexes one line (already stripped of `\r` and of embedded `strace: Process N attached`
/// messages). `None` means the line is not strace output.
pub(crate) fn lex(line: &str) -> Option<Lexed<'_>> {
    let (prefix, rest) = prefix(line)?;
    let body = duration(bracket_fields(timestamp(rest)?).trim_end_matches(' '));
    let b = if body.starts_with("> ") && prefix == Prefix::None {
        // A `-k` backtrace frame of the call above: ` > /lib/x.so(sym+0x1) [0x2]`.
        Body::Info
    } else if let Some(r) = body.strip_prefix("<... ") {
        if r.starts_with("resuming ") {
            Body::Info
        } else {
            let i = r.find(" resumed>")?;
            let name = &r[..i];
            if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
                return None;
            }
            Body::Resumed { name, rest: &r[i + " resumed>".len()..] }
        }
    } else if body.starts_with("--- ") && body.ends_with(" ---") {
        Body::Info
    } else if let Some(m) = body.strip_prefix("+++ ").and_then(|b| b.strip_suffix(" +++")) {
        if m.starts_with("exited with ") {
            Body::Exited
        } else if m.starts_with("killed by ") {
            Body::Killed
        } else if let Some(p) = m.strip_prefix("superseded by execve in pid ") {
            Body::Superseded { old: parse_pid(p)? }
        } else {
            return None;
        }
    } else if (body.starts_with("[ Process PID=") && body.ends_with(" ]")) || body.starts_with("strace: ") {
        Body::Info
    } else if let Some(head) = body.strip_suffix("<unfinished ...>") {
        let name = call_name(head)?;
        Body::Unfinished { name, head: head.strip_suffix(' ').unwrap_or(head) }
    } else {
        let name = call_name(body)?;
        if name == "restart_syscall" {
            Body::Info
        } else {
            result_split(body)?;
            Body::Call { name, text: body }
        }
    };
    Some(Lexed { prefix, body: b })
}

/// Removes strace's own `strace: Process N attached|detached` message from a line. Returns
/// the line without it and whether the message cut the line (it was at the end of a
/// non-empty remainder, so the next line continues this one).
pub(crate) fn strip_attach(line: &str) -> (std::borrow::Cow<'_, str>, bool) {
    const MSG: &str = "strace: Process ";
    let Some(i) = line.find(MSG) else {
        return (line.into(), false);
    };
    if i == 0 {
        return (line.into(), false);
    }
    let r = &line[i + MSG.len()..];
    let n = digits(r);
    let after = &r[n..];
    let word = ["attached", "detached", "suspended"]
        .into_iter()
        .find(|w| after.trim_start_matches(' ').starts_with(w));
    match (n, word) {
        (1.., Some(w)) => {
            let skip = after.find(w).unwrap_or(0) + w.len();
            let tail = &after[skip..];
            let mut out = line[..i].to_string();
            out.push_str(tail);
            (out.into(), tail.trim().is_empty())
        }
        _ => (line.into(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(l: &str) -> (Prefix, &str) {
        match lex(l).unwrap() {
            Lexed { prefix, body: Body::Call { name, .. } } => (prefix, name),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_prefix_and_timestamp_form() {
        let p = Prefix::Pid(5054);
        for l in [
            "5054  brk(NULL)                         = 0x558af617d000",
            "[pid  5054] brk(NULL) = 0x1000",
            "[pid 5054] 19:44:51.438489 brk(NULL) = 0x1000",
            "5054<sh> brk(NULL) = 0x1000",
            "5054<my prog> brk(NULL) = 0x1000",
            "5054  1795463120.534248 brk(NULL) = 0x1000",
            "5054  1795463478.518245891 brk(NULL) = 0x1000",
            "5054  19:44:51 brk(NULL) = 0x1000",
            "5054       0.001691 brk(NULL) = 0x1000",
            "5054  brk(NULL) = 0x1000 <0.000297>",
            "5054  19:44:51.432359 brk(NULL)       = 0x1000 <0.000012>",
        ] {
            assert_eq!(call(l), (p, "brk"), "{l}");
        }
        for l in [
            "brk(NULL) = 0x1000",
            "19:44:51.438604 brk(NULL) = 0x1000",
            "1795463120.534248 brk(NULL) = 0x1000",
            "     0.001691 brk(NULL) = 0x1000",
        ] {
            assert_eq!(call(l), (Prefix::None, "brk"), "{l}");
        }
        assert_eq!(call("1234567 brk(NULL) = 0x1"), (Prefix::Pid(1234567), "brk"));
    }

    #[test]
    fn syscall_numbers_instruction_pointers_and_backtraces() {
        let p = Prefix::Pid(17178);
        for l in [
            "17178 1796302090.480434 [  12] brk(NULL) = 0x55da5a431000",
            "17178 1796302090.458025 [00007fefd6096c47] brk(NULL) = 0x560abad1b000",
            "17178 1796302090.516360 [  12] [00007f7f0b0bdc47] brk(NULL) = 0x55a9a65c5000",
            "17178 [x32:  12] brk(NULL) = 0x1000",
            "[pid 17178] [  12] brk(NULL) = 0x1000",
        ] {
            assert_eq!(call(l), (p, "brk"), "{l}");
        }
        let b = |l| lex(l).unwrap().body;
        assert_eq!(b("17168 1796302090.470383 [????????????????] +++ exited with 0 +++"), Body::Exited);
        assert_eq!(
            b("17194 1796302091.388290 [ 231] [????????????????] +++ exited with 0 +++"),
            Body::Exited
        );
        assert_eq!(
            b("17179 1796302090.483367 [  59] <... execve resumed>) = 0"),
            Body::Resumed { name: "execve", rest: ") = 0" }
        );
        assert_eq!(b(" > /usr/lib/x86_64-linux-gnu/libc.so.6(__mmap+0x26) [0xfe8e6]"), Body::Info);
        assert_eq!(b(" > unexpected_backtracing_error [0x7f0fa4345ad7]"), Body::Info);
    }

    #[test]
    fn body_kinds() {
        let b = |l| lex(l).unwrap().body;
        assert_eq!(b("5055  brk(NULL <unfinished ...>"), Body::Unfinished { name: "brk", head: "brk(NULL" });
        assert_eq!(
            b("5054  wait4(-1,  <unfinished ...>"),
            Body::Unfinished { name: "wait4", head: "wait4(-1, " }
        );
        assert_eq!(
            b("5054  <... clone resumed>, child_tidptr=0x7f) = 5056 <0.000202>"),
            Body::Resumed { name: "clone", rest: ", child_tidptr=0x7f) = 5056" }
        );
        assert_eq!(b("5055  +++ exited with 0 +++"), Body::Exited);
        assert_eq!(b("5435 +++ killed by SIGSEGV (core dumped) +++"), Body::Killed);
        assert_eq!(b("5435 +++ superseded by execve in pid 5436 +++"), Body::Superseded { old: 5436 });
        assert_eq!(b("5054  --- SIGCHLD {si_signo=SIGCHLD} ---"), Body::Info);
        assert_eq!(b("[ Process PID=12 runs in 32 bit mode. ]"), Body::Info);
        assert_eq!(b("5054  restart_syscall(<... resuming interrupted wait4 ...>) = 5"), Body::Info);
        assert_eq!(b("5054  exit_group(0)                     = ?"), {
            Body::Call { name: "exit_group", text: "exit_group(0)                     = ?" }
        });
        assert_eq!(b("strace: Process 5432 attached"), Body::Info);
    }

    #[test]
    fn garbage_is_not_strace() {
        for l in [
            "hello world",
            "5054",
            "5054  ",
            "5054  mmap(NULL, 8192",
            "[pid x] brk(NULL) = 1",
            "12:3:4 brk(NULL) = 1",
            "#include <stdio.h>",
            "fn main() {",
            "5054  +++ bananas +++",
            "\u{0}\u{1}garbage",
        ] {
            assert_eq!(lex(l), None, "{l}");
        }
    }

    #[test]
    fn result_split_finds_the_real_separator() {
        let t = r#"execve("/bin/sh", ["sh", "-c", "echo ) = 5"], 0x7ffe /* 3 vars */) = 0"#;
        let (args, ret) = result_split(t).unwrap();
        assert!(args.ends_with("/* 3 vars */"));
        assert_eq!(ret, "0");
        let (args, ret) = result_split("brk(NULL)       = 0x55").unwrap();
        assert_eq!((args, ret), ("NULL", "0x55"));
    }

    #[test]
    fn attach_messages_are_removed() {
        let (s, cut) = strip_attach("[pid  5431] wait4(5432, strace: Process 5432 attached");
        assert_eq!(s, "[pid  5431] wait4(5432, ");
        assert!(cut);
        let (s, cut) = strip_attach("strace: Process 5432 attached");
        assert_eq!(s, "strace: Process 5432 attached");
        assert!(!cut);
        let (s, cut) = strip_attach("5054  brk(NULL) = 0x1");
        assert_eq!(s, "5054  brk(NULL) = 0x1");
        assert!(!cut);
    }
}
