//! Decoding strace's argument and result text: numbers, flag sets (symbolic or `-X raw`),
//! strings, and the calls the importer uses, into typed [`Sys`] events.
//!
//! Flag values are Linux x86 ones (the same on x86-64 and i386 for every flag used here).

/// The result of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ret {
    /// A value (`= 0x7f..`, `= 5055`, `= 5055<ls>`).
    Val(u64),
    /// `= -1 ENOENT (...)` and other negative results.
    Err,
    /// `= ?`: the call did not return (exit, a killed exec, `<unavailable>`).
    Unknown,
}

/// How a `clone`-family call relates the child to the parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloneKind {
    /// A new process with a copy of the address space.
    Fork,
    /// A new process sharing the space until it execs or exits.
    Vfork,
    /// A thread of the caller's thread group.
    Thread,
    /// A separate thread group sharing the caller's memory (`CLONE_VM` alone).
    SharedVm,
}

/// A decoded call that matters to the VM, or the name of one that does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Sys {
    /// `clone`, `clone3`, `fork`, `vfork`; `child` is the result when it is a pid.
    Clone {
        /// Relation of the child.
        kind: CloneKind,
        /// Child tid, when the call succeeded.
        child: Option<u32>,
    },
    /// `execve`, `execveat`.
    Exec {
        /// Path of the program.
        path: String,
        /// Bytes of argv as printed, plus an estimate for the environment.
        arg_bytes: u64,
        /// Whether the image was replaced (`= 0`).
        ok: bool,
        /// Whether the call failed with an error (rather than `= ?`).
        failed: bool,
    },
    /// `exit_group`.
    ExitGroup,
    /// `exit` (one thread).
    ExitThread,
    /// `mmap`, `mmap2` that succeeded.
    Mmap {
        /// Requested address (a hint, or the place for `MAP_FIXED`).
        addr: u64,
        /// Length in bytes.
        len: u64,
        /// `PROT_*` bits.
        prot: u64,
        /// `MAP_*` bits.
        flags: u64,
        /// Result address.
        ret: u64,
    },
    /// `munmap` that succeeded.
    Munmap {
        /// Start.
        addr: u64,
        /// Length in bytes.
        len: u64,
    },
    /// `mprotect`, `pkey_mprotect` that succeeded.
    Mprotect {
        /// Start.
        addr: u64,
        /// Length in bytes.
        len: u64,
        /// `PROT_*` bits.
        prot: u64,
    },
    /// `mremap` that succeeded.
    Mremap {
        /// Old start.
        old: u64,
        /// Old length in bytes.
        old_len: u64,
        /// New length in bytes.
        new_len: u64,
        /// `MREMAP_*` bits.
        flags: u64,
        /// New start.
        ret: u64,
    },
    /// `brk`.
    Brk {
        /// Requested break, 0 for a query.
        req: u64,
        /// Returned break.
        ret: u64,
    },
    /// `madvise` with an advice that frees pages.
    Discard {
        /// Start.
        addr: u64,
        /// Length in bytes.
        len: u64,
    },
    /// A memory call that failed: nothing changed.
    Failed(String),
    /// A call interrupted by a signal (`= ? ERESTARTSYS`, `ERESTARTNOINTR`, ...): the kernel
    /// reissues it, and the reissued call is the one that counts.
    Restarted(String),
    /// `shmat` that succeeded: System V shared memory, whose segment size the log does not
    /// show (`shmget` is not a `%memory` call), so it is not replayed.
    Shmat,
    /// A call with no VM effect (`wait4`, `kill`, `msync`, other advice, ...).
    Ignored(String),
}

pub(crate) const PROT_READ: u64 = 1;
pub(crate) const PROT_WRITE: u64 = 2;
pub(crate) const PROT_EXEC: u64 = 4;
pub(crate) const MAP_SHARED: u64 = 0x01;
pub(crate) const MAP_SHARED_VALIDATE: u64 = 0x03;
pub(crate) const MAP_FIXED: u64 = 0x10;
pub(crate) const MAP_ANONYMOUS: u64 = 0x20;
pub(crate) const MAP_NORESERVE: u64 = 0x4000;
pub(crate) const MAP_POPULATE: u64 = 0x8000;
pub(crate) const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
pub(crate) const MREMAP_DONTUNMAP: u64 = 4;
const CLONE_VM: u64 = 0x100;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_THREAD: u64 = 0x1_0000;

const NAMES: &[(&str, u64)] = &[
    ("PROT_NONE", 0),
    ("PROT_READ", PROT_READ),
    ("PROT_WRITE", PROT_WRITE),
    ("PROT_EXEC", PROT_EXEC),
    ("PROT_SEM", 0x8),
    ("PROT_GROWSDOWN", 0x0100_0000),
    ("PROT_GROWSUP", 0x0200_0000),
    ("MAP_SHARED", MAP_SHARED),
    ("MAP_PRIVATE", 0x02),
    ("MAP_SHARED_VALIDATE", MAP_SHARED_VALIDATE),
    ("MAP_FIXED", MAP_FIXED),
    ("MAP_ANONYMOUS", MAP_ANONYMOUS),
    ("MAP_ANON", MAP_ANONYMOUS),
    ("MAP_32BIT", 0x40),
    ("MAP_GROWSDOWN", 0x100),
    ("MAP_DENYWRITE", 0x800),
    ("MAP_EXECUTABLE", 0x1000),
    ("MAP_LOCKED", 0x2000),
    ("MAP_NORESERVE", MAP_NORESERVE),
    ("MAP_POPULATE", MAP_POPULATE),
    ("MAP_NONBLOCK", 0x1_0000),
    ("MAP_STACK", 0x2_0000),
    ("MAP_HUGETLB", 0x4_0000),
    ("MAP_SYNC", 0x8_0000),
    ("MAP_FIXED_NOREPLACE", MAP_FIXED_NOREPLACE),
    ("MAP_UNINITIALIZED", 0x400_0000),
    ("MREMAP_MAYMOVE", 1),
    ("MREMAP_FIXED", 2),
    ("MREMAP_DONTUNMAP", MREMAP_DONTUNMAP),
    ("CLONE_VM", CLONE_VM),
    ("CLONE_FS", 0x200),
    ("CLONE_FILES", 0x400),
    ("CLONE_SIGHAND", 0x800),
    ("CLONE_PIDFD", 0x1000),
    ("CLONE_PTRACE", 0x2000),
    ("CLONE_VFORK", CLONE_VFORK),
    ("CLONE_PARENT", 0x8000),
    ("CLONE_THREAD", CLONE_THREAD),
    ("CLONE_NEWNS", 0x2_0000),
    ("CLONE_SYSVSEM", 0x4_0000),
    ("CLONE_SETTLS", 0x8_0000),
    ("CLONE_PARENT_SETTID", 0x10_0000),
    ("CLONE_CHILD_CLEARTID", 0x20_0000),
    ("CLONE_DETACHED", 0x40_0000),
    ("CLONE_UNTRACED", 0x80_0000),
    ("CLONE_CHILD_SETTID", 0x100_0000),
    ("CLONE_NEWCGROUP", 0x200_0000),
    ("CLONE_NEWUTS", 0x400_0000),
    ("CLONE_NEWIPC", 0x800_0000),
    ("CLONE_NEWUSER", 0x1000_0000),
    ("CLONE_NEWPID", 0x2000_0000),
    ("CLONE_NEWNET", 0x4000_0000),
    ("CLONE_IO", 0x8000_0000),
    ("CLONE_CLEAR_SIGHAND", 0x1_0000_0000),
    ("CLONE_INTO_CGROUP", 0x2_0000_0000),
];

/// `s` without the `/* ... */` comments `-X verbose` adds after numbers
/// (`0x3 /* PROT_READ|PROT_WRITE */`): the number before a comment is what the kernel saw.
fn uncomment(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains("/*") {
        return s.into();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        rest = match rest[i..].find("*/") {
            Some(j) => &rest[i + j + 2..],
            None => "",
        };
    }
    out.push_str(rest);
    out.into()
}

/// Parses a number as strace prints it: decimal, `0x` hex, octal `0...`, `NULL`, negative,
/// with or without a `-X verbose` comment.
pub(crate) fn number(s: &str) -> Option<u64> {
    let s = uncomment(s);
    let s = s.trim();
    if s == "NULL" {
        return Some(0);
    }
    if let Some(n) = s.strip_prefix('-') {
        return number(n).map(|v| v.wrapping_neg());
    }
    if let Some(h) = s.strip_prefix("0x") {
        return u64::from_str_radix(h, 16).ok();
    }
    if s.len() > 1 && s.starts_with('0') {
        return u64::from_str_radix(&s[1..], 8).ok();
    }
    s.parse().ok()
}

/// Parses a flag set: `A|B|0x40`, `0x22` (raw), `0`. Unknown symbols (such as the exit
/// signal `SIGCHLD` in clone flags) are ignored; `None` if a part is neither.
pub(crate) fn flags(s: &str) -> Option<u64> {
    let mut v = 0;
    let s = uncomment(s);
    for part in s.trim().split('|') {
        let part = part.trim();
        if let Some(n) = number(part) {
            v |= n;
        } else if let Some(&(_, n)) = NAMES.iter().find(|(k, _)| *k == part) {
            v |= n;
        } else if part.starts_with("SIG")
            || part.starts_with("CLONE_")
            || part.starts_with("MAP_")
            || part.starts_with("PROT_")
        {
            // An exit signal, or a flag newer than this table: no effect we model.
        } else {
            return None;
        }
    }
    Some(v)
}

/// Splits an argument list at top-level commas (outside quotes, brackets and comments).
pub(crate) fn split_args(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let (mut depth, mut start, mut i) = (0i32, 0, 0);
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = s[i..].find("*/").map(|j| i + j + 1).unwrap_or(b.len());
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b',' if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let last = s[start.min(s.len())..].trim();
    if !last.is_empty() || !out.is_empty() {
        out.push(last);
    }
    out
}

/// Parses a call's result text.
pub(crate) fn ret(s: &str) -> Option<Ret> {
    let s = s.trim();
    if s.starts_with('?') {
        return Some(Ret::Unknown);
    }
    let tok = s.split([' ', '<', '(']).next().filter(|t| !t.is_empty())?;
    if tok.starts_with('-') {
        return number(tok).map(|_| Ret::Err);
    }
    number(tok).map(Ret::Val)
}

/// The value of `key=` inside an argument list or struct (`flags=CLONE_VM|...`).
fn keyed<'a>(args: &'a str, key: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(i) = args[from..].find(key) {
        let at = from + i;
        let ok_before = at == 0 || matches!(args.as_bytes()[at - 1], b' ' | b'{' | b',' | b'(');
        if ok_before && args[at + key.len()..].starts_with('=') {
            let v = &args[at + key.len() + 1..];
            let end = v.find([',', '}', ')']).unwrap_or(v.len());
            return Some(v[..end].trim());
        }
        from = at + key.len();
    }
    None
}

/// The first string literal of an argument (`"/usr/bin/ls"`), without quotes and escapes
/// decoded only for `\"` and `\\`.
fn string_arg(a: &str) -> Option<String> {
    let a = a.trim();
    let inner = a.strip_prefix('"')?;
    let mut out = String::new();
    let mut it = inner.chars();
    while let Some(c) = it.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(it.next()?),
            c => out.push(c),
        }
    }
    None
}

fn clone_kind(f: u64) -> CloneKind {
    if f & CLONE_VFORK != 0 {
        CloneKind::Vfork
    } else if f & CLONE_THREAD != 0 {
        CloneKind::Thread
    } else if f & CLONE_VM != 0 {
        CloneKind::SharedVm
    } else {
        CloneKind::Fork
    }
}

fn need<T>(v: Option<T>, what: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("cannot read {what}"))
}

fn arg<'a>(a: &[&'a str], i: usize, what: &str) -> Result<&'a str, String> {
    a.get(i).copied().ok_or_else(|| format!("missing argument {what}"))
}

fn num_arg(a: &[&str], i: usize, what: &str) -> Result<u64, String> {
    need(number(arg(a, i, what)?), what)
}

fn flag_arg(a: &[&str], i: usize, what: &str) -> Result<u64, String> {
    need(flags(arg(a, i, what)?), what)
}

/// Bytes an environment variable takes on the stack on average (for `/* N vars */`).
const ENV_VAR_BYTES: u64 = 48;

/// Decodes a call `name(args) = ret`. An error means the call is one we model but its text
/// could not be read.
pub(crate) fn decode(name: &str, args: &str, ret_text: &str) -> Result<Sys, String> {
    if ret_text.contains("ERESTART") {
        return Ok(Sys::Restarted(name.to_string()));
    }
    let r = need(ret(ret_text), "the result")?;
    let val = match r {
        Ret::Val(v) => Some(v),
        _ => None,
    };
    let a = split_args(args);
    let failed = |n: &str| Ok(Sys::Failed(n.to_string()));
    Ok(match name {
        "clone" | "clone3" | "fork" | "vfork" => {
            let kind = match name {
                "fork" => CloneKind::Fork,
                "vfork" => CloneKind::Vfork,
                _ => match keyed(args, "flags") {
                    Some(f) => clone_kind(need(flags(f), "clone flags")?),
                    // Raw clone: flags are the first argument; raw clone3 hides them.
                    None if name == "clone" => clone_kind(flag_arg(&a, 0, "clone flags")?),
                    None => CloneKind::Fork,
                },
            };
            Sys::Clone { kind, child: val.filter(|&v| v > 0 && v <= u32::MAX as u64).map(|v| v as u32) }
        }
        "execve" | "execveat" => {
            let i = if name == "execveat" { 1 } else { 0 };
            let path = need(string_arg(arg(&a, i, "path")?), "the program path")?;
            let argv = a.get(i + 1).copied().unwrap_or("");
            let envs = a
                .get(i + 2)
                .and_then(|e| e.split("/* ").nth(1))
                .and_then(|e| e.split(' ').next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
            Sys::Exec {
                path,
                arg_bytes: argv.len() as u64 + envs * ENV_VAR_BYTES,
                ok: val == Some(0),
                failed: r == Ret::Err,
            }
        }
        "exit_group" => Sys::ExitGroup,
        "exit" => Sys::ExitThread,
        "mmap" | "mmap2" => {
            let Some(ret) = val else { return failed(name) };
            Sys::Mmap {
                addr: num_arg(&a, 0, "mmap address")?,
                len: num_arg(&a, 1, "mmap length")?,
                prot: flag_arg(&a, 2, "mmap protection")?,
                flags: flag_arg(&a, 3, "mmap flags")?,
                ret,
            }
        }
        "munmap" => {
            if val.is_none() {
                return failed(name);
            }
            Sys::Munmap { addr: num_arg(&a, 0, "munmap address")?, len: num_arg(&a, 1, "munmap length")? }
        }
        "mprotect" | "pkey_mprotect" => {
            if val.is_none() {
                return failed(name);
            }
            Sys::Mprotect {
                addr: num_arg(&a, 0, "mprotect address")?,
                len: num_arg(&a, 1, "mprotect length")?,
                prot: flag_arg(&a, 2, "mprotect protection")?,
            }
        }
        "mremap" => {
            let Some(ret) = val else { return failed(name) };
            Sys::Mremap {
                old: num_arg(&a, 0, "mremap address")?,
                old_len: num_arg(&a, 1, "mremap old length")?,
                new_len: num_arg(&a, 2, "mremap new length")?,
                flags: flag_arg(&a, 3, "mremap flags")?,
                ret,
            }
        }
        "brk" => Sys::Brk { req: num_arg(&a, 0, "brk address")?, ret: need(val, "the brk result")? },
        "madvise" => {
            if val.is_none() {
                return failed(name);
            }
            let advice = arg(&a, 2, "madvise advice")?;
            // MADV_DONTNEED 4, MADV_FREE 8, MADV_REMOVE 9 (by name, or by number in -X raw
            // and -X verbose logs).
            let frees = match number(advice) {
                Some(n) => matches!(n, 4 | 8 | 9),
                None => matches!(advice, "MADV_DONTNEED" | "MADV_FREE" | "MADV_REMOVE"),
            };
            if frees {
                Sys::Discard {
                    addr: num_arg(&a, 0, "madvise address")?,
                    len: num_arg(&a, 1, "madvise length")?,
                }
            } else {
                Sys::Ignored(format!("{name}({advice})"))
            }
        }
        "shmat" => match val {
            Some(_) => Sys::Shmat,
            None => Sys::Failed(name.to_string()),
        },
        _ => Sys::Ignored(name.to_string()),
    })
}

/// Whether the replay needs calls named `name`: a call of one of these kinds that cannot be
/// decoded loses something the trace should have (a process, an image, a mapping, a range).
pub(crate) fn modelled(name: &str) -> bool {
    matches!(
        name,
        "clone"
            | "clone3"
            | "fork"
            | "vfork"
            | "execve"
            | "execveat"
            | "exit_group"
            | "mmap"
            | "mmap2"
            | "munmap"
            | "mprotect"
            | "pkey_mprotect"
            | "mremap"
            | "brk"
            | "madvise"
            | "shmat"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_flags() {
        assert_eq!(number("0x7f5d3d4c9000"), Some(0x7f5d3d4c9000));
        assert_eq!(number("NULL"), Some(0));
        assert_eq!(number("8192"), Some(8192));
        assert_eq!(number("-1"), Some(u64::MAX));
        assert_eq!(number("0755"), Some(0o755));
        assert_eq!(number("x"), None);
        assert_eq!(flags("PROT_READ|PROT_WRITE"), Some(3));
        assert_eq!(flags("0x22"), Some(0x22));
        assert_eq!(flags("PROT_NONE"), Some(0));
        assert_eq!(flags("CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD"), Some(0x120_0000));
        assert_eq!(flags("MAP_PRIVATE|MAP_FANCY_NEW"), Some(2));
        assert_eq!(flags("banana"), None);
    }

    #[test]
    fn args_split_at_top_level() {
        assert_eq!(
            split_args(r#""/bin/sh", ["sh", "-c", "a, b"], 0x7ffe /* 35 vars, x */"#),
            vec![r#""/bin/sh""#, r#"["sh", "-c", "a, b"]"#, "0x7ffe /* 35 vars, x */"]
        );
        assert_eq!(split_args(""), Vec::<&str>::new());
        assert_eq!(split_args("{flags=A|B, stack=0x1}, 88"), vec!["{flags=A|B, stack=0x1}", "88"]);
    }

    #[test]
    fn results() {
        assert_eq!(ret("0x7f5d3d4c9000"), Some(Ret::Val(0x7f5d3d4c9000)));
        assert_eq!(ret("5055<ls>"), Some(Ret::Val(5055)));
        assert_eq!(ret("-1 ENOENT (No such file or directory)"), Some(Ret::Err));
        assert_eq!(ret("? <unavailable>"), Some(Ret::Unknown));
        assert_eq!(ret("?"), Some(Ret::Unknown));
        assert_eq!(ret("0 (Timeout)"), Some(Ret::Val(0)));
        assert_eq!(ret("banana"), None);
    }

    #[test]
    fn clone_forms() {
        let c = |args: &str, name: &str, r: &str| decode(name, args, r).unwrap();
        assert_eq!(
            c(
                "child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f",
                "clone",
                "5055"
            ),
            Sys::Clone { kind: CloneKind::Fork, child: Some(5055) }
        );
        assert_eq!(
            c(
                "{flags=CLONE_VM|CLONE_VFORK, exit_signal=SIGCHLD, stack=0x7f, stack_size=0x9000}, 88",
                "clone3",
                "5434"
            ),
            Sys::Clone { kind: CloneKind::Vfork, child: Some(5434) }
        );
        assert_eq!(
            c("{flags=CLONE_VM|CLONE_FS|CLONE_THREAD|CLONE_SETTLS, child_tid=0x7f} => {parent_tid=[5431]}, 88", "clone3", "5431"),
            Sys::Clone { kind: CloneKind::Thread, child: Some(5431) }
        );
        assert_eq!(c("", "vfork", "6459<ls>"), Sys::Clone { kind: CloneKind::Vfork, child: Some(6459) });
        assert_eq!(
            c("0x1200011, 0, 0, 0x7f, 0", "clone", "12"),
            Sys::Clone { kind: CloneKind::Fork, child: Some(12) }
        );
        assert_eq!(
            c("CLONE_VM, 0", "clone", "12"),
            Sys::Clone { kind: CloneKind::SharedVm, child: Some(12) }
        );
        assert_eq!(c("", "fork", "-1 EAGAIN (x)"), Sys::Clone { kind: CloneKind::Fork, child: None });
    }

    #[test]
    fn exec_and_memory_calls() {
        let e = decode("execve", r#""/usr/bin/ls", ["ls"], 0x558af617db38 /* 35 vars */"#, "0").unwrap();
        assert_eq!(
            e,
            Sys::Exec { path: "/usr/bin/ls".into(), arg_bytes: 6 + 35 * 48, ok: true, failed: false }
        );
        let e = decode(
            "execve",
            r#""/nope", ["nope"], 0x1 /* 1 vars */"#,
            "-1 ENOENT (No such file or directory)",
        )
        .unwrap();
        assert!(matches!(e, Sys::Exec { ok: false, failed: true, .. }));
        assert_eq!(
            decode("mmap", "NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0", "0x7f00")
                .unwrap(),
            Sys::Mmap { addr: 0, len: 8192, prot: 3, flags: 0x22, ret: 0x7f00 }
        );
        assert_eq!(
            decode("mmap", "NULL, 8192, 0x3, 0x22, -1, 0", "0x7f00").unwrap(),
            Sys::Mmap { addr: 0, len: 8192, prot: 3, flags: 0x22, ret: 0x7f00 }
        );
        assert_eq!(
            decode("mmap", "NULL, 1, 0x3, 0x22, -1, 0", "-1 ENOMEM (x)").unwrap(),
            Sys::Failed("mmap".into())
        );
        assert_eq!(decode("brk", "NULL", "0x55").unwrap(), Sys::Brk { req: 0, ret: 0x55 });
        assert_eq!(
            decode("madvise", "0x7f00, 4096, MADV_DONTNEED", "0").unwrap(),
            Sys::Discard { addr: 0x7f00, len: 4096 }
        );
        assert_eq!(
            decode("madvise", "0x7f00, 4096, MADV_HUGEPAGE", "0").unwrap(),
            Sys::Ignored("madvise(MADV_HUGEPAGE)".into())
        );
        assert!(decode("mmap", "NULL, banana, 3, 0x22, -1, 0", "0x1000").is_err());
        assert!(decode("munmap", "0x1000", "0").is_err());
        assert_eq!(decode("wait4", "-1, NULL, 0, NULL", "5").unwrap(), Sys::Ignored("wait4".into()));
    }

    #[test]
    fn verbose_forms_decode_to_the_numbers() {
        assert_eq!(
            decode(
                "mmap",
                "NULL, 8192, 0x3 /* PROT_READ|PROT_WRITE */, 0x22 /* MAP_PRIVATE|MAP_ANONYMOUS */, -1, 0",
                "0x7f0fa44dd000"
            )
            .unwrap(),
            Sys::Mmap { addr: 0, len: 8192, prot: 3, flags: 0x22, ret: 0x7f0fa44dd000 }
        );
        assert_eq!(
            decode(
                "clone",
                "child_stack=NULL, flags=0x1200000 /* CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID */|17 /* SIGCHLD */, child_tidptr=0x7f",
                "17138"
            )
            .unwrap(),
            Sys::Clone { kind: CloneKind::Fork, child: Some(17138) }
        );
        assert_eq!(
            decode("madvise", "0x7f00, 4096, 0x4 /* MADV_DONTNEED */", "0").unwrap(),
            Sys::Discard { addr: 0x7f00, len: 4096 }
        );
        assert_eq!(
            decode("mremap", "0x7f00, 4096, 8192, 0x1 /* MREMAP_MAYMOVE */", "0x7e00").unwrap(),
            Sys::Mremap { old: 0x7f00, old_len: 4096, new_len: 8192, flags: 1, ret: 0x7e00 }
        );
    }

    #[test]
    fn restarted_calls_and_shmat() {
        assert_eq!(
            decode("mmap", "NULL, 8192, PROT_READ, MAP_PRIVATE, 3, 0", "? ERESTARTNOINTR (To be restarted)")
                .unwrap(),
            Sys::Restarted("mmap".into())
        );
        assert_eq!(
            decode("brk", "0x1000", "? ERESTARTSYS (To be restarted if SA_RESTART is set)").unwrap(),
            Sys::Restarted("brk".into())
        );
        assert_eq!(decode("shmat", "65538, NULL, 0", "0x7f1b2c000000").unwrap(), Sys::Shmat);
        assert_eq!(
            decode("shmat", "1, NULL, 0", "-1 EINVAL (Invalid argument)").unwrap(),
            Sys::Failed("shmat".into())
        );
    }
}
