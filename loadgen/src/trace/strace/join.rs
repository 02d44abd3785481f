//! Pass 1 of the importer: lines to ordered, joined, decoded events.
//!
//! Stitches every `<unfinished ...>` head to its `<... NAME resumed>` tail per tid (a joined
//! call takes the resumed line's place, when it took effect; a `clone`-family call keeps the
//! place of its head, because the child may print before the parent's call returns), removes
//! strace's own attach messages that cut lines, follows `+++ superseded by execve +++` (a
//! thread that exec'd continues under the leader's pid), and decides whether the text is an
//! strace log at all. This is the structure pass that MINIX's PM never needed: it saw
//! every fork and exec itself.

use hashbrown::{HashMap, HashSet};

use super::args::{decode, modelled, Sys};
use super::line::{lex, result_split, strip_attach, Body, Prefix};
use crate::trace::TraceError;

/// What happened, after joining.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum EvKind {
    /// A decoded call.
    Sys(Sys),
    /// `+++ exited with N +++` or `+++ killed by SIG +++`.
    Gone,
    /// `+++ superseded by execve in pid OLD +++`.
    Superseded(u32),
}

/// One event of one thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Event {
    /// 1-based line where it took effect (the resumed line for joined calls).
    pub line: usize,
    /// The thread (0 for lines without pid prefix that could not be attributed).
    pub tid: u32,
    /// What happened.
    pub kind: EvKind,
}

/// Result of pass 1.
#[derive(Clone, Debug, Default)]
pub(crate) struct Joined {
    /// Events in the order they took effect.
    pub events: Vec<Event>,
    /// Lines read.
    pub lines: usize,
    /// Calls seen (joined pairs count once).
    pub syscalls: usize,
    /// Lines that are not strace output, and the first of them.
    pub unrecognized: (usize, Option<usize>),
    /// Calls we model whose text could not be decoded, and the first.
    pub unusable: (usize, Option<usize>),
    /// Why the first of them could not be decoded (`mmap: cannot read mmap flags`).
    pub first_unusable_why: String,
    /// `<... resumed>` tails without a head.
    pub orphan_resumed: usize,
    /// Heads never resumed.
    pub unfinished_at_end: usize,
}

struct Pending {
    name: String,
    head: String,
    seq: usize,
}

fn is_clone(name: &str) -> bool {
    matches!(name, "clone" | "clone3" | "fork" | "vfork")
}

/// Runs pass 1 over `text`; `file` names it in errors. With `strict`, any line that is not
/// strace output or any modelled call that cannot be decoded is an error.
pub(crate) fn join(text: &str, file: &str, strict: bool) -> Result<Joined, TraceError> {
    let mut j = Joined::default();
    let mut pending: HashMap<u32, Pending> = HashMap::new();
    // (position key, event)
    let mut placed: Vec<(usize, Event)> = Vec::new();
    let mut carry: Option<(usize, String)> = None;
    let mut nonempty = 0usize;
    let mut recognized = 0usize;
    let mut first_nonempty = None;
    let mut seen: HashSet<u32> = HashSet::new();
    let mut seen_order: Vec<u32> = Vec::new();
    let raw_lines: Vec<&str> = text.split('\n').collect();
    let unterminated_last = !text.ends_with('\n');

    for (i, raw) in raw_lines.iter().enumerate() {
        let line_no = i + 1;
        if i + 1 < raw_lines.len() || !raw.is_empty() {
            j.lines = line_no;
        }
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let (at, owned): (usize, String) = match carry.take() {
            Some((n, mut s)) => {
                s.push_str(raw);
                (n, s)
            }
            None => (line_no, raw.to_string()),
        };
        let (stripped, cut) = strip_attach(&owned);
        if cut && i + 1 < raw_lines.len() {
            carry = Some((at, stripped.into_owned()));
            continue;
        }
        let s: &str = &stripped;
        if s.trim().is_empty() {
            continue;
        }
        nonempty += 1;
        first_nonempty.get_or_insert(at);
        let seq = i;
        let Some(lexed) = lex(s) else {
            if unterminated_last && i + 1 == raw_lines.len() {
                return Err(TraceError::line(
                    file,
                    at,
                    "truncated strace line at the end of the file (log cut off?); \
                     delete it to import the rest",
                ));
            }
            if strict {
                return Err(TraceError::line(file, at, format!("not an strace line: '{}'", snippet(s))));
            }
            j.unrecognized.0 += 1;
            j.unrecognized.1.get_or_insert(at);
            continue;
        };
        recognized += 1;
        let tid = match lexed.prefix {
            Prefix::Pid(p) => {
                if seen.insert(p) {
                    seen_order.push(p);
                }
                p
            }
            Prefix::None => 0,
        };
        let ev = |kind| Event { line: at, tid, kind };
        match lexed.body {
            Body::Info => {}
            Body::Exited | Body::Killed => placed.push((seq, ev(EvKind::Gone))),
            Body::Superseded { old } => {
                if let Some(p) = pending.remove(&old) {
                    pending.insert(tid, p);
                }
                placed.push((seq, ev(EvKind::Superseded(old))));
            }
            Body::Unfinished { name, head } => {
                j.syscalls += 1;
                if pending
                    .insert(tid, Pending { name: name.to_string(), head: head.to_string(), seq })
                    .is_some()
                {
                    j.unfinished_at_end += 1;
                }
            }
            Body::Resumed { name, rest } => {
                let key = match pending.get(&tid) {
                    Some(p) if p.name == name => Some(tid),
                    _ => fallback_head(&pending, tid, name),
                };
                let Some(p) = key.and_then(|k| pending.remove(&k)) else {
                    j.orphan_resumed += 1;
                    continue;
                };
                let joined = format!("{}{}", p.head, rest);
                let pos = if is_clone(name) { p.seq } else { seq };
                match call(name, &joined) {
                    Ok(sys) => placed.push((pos, ev(EvKind::Sys(sys)))),
                    Err(m) => unusable(&mut j, file, at, strict, name, &m)?,
                }
            }
            Body::Call { name, text } => {
                j.syscalls += 1;
                match call(name, text) {
                    Ok(sys) => placed.push((seq, ev(EvKind::Sys(sys)))),
                    Err(m) => unusable(&mut j, file, at, strict, name, &m)?,
                }
            }
        }
    }
    j.unfinished_at_end += pending.len();

    if nonempty == 0 {
        return Err(TraceError::file(file, "empty file: not an strace log"));
    }
    if recognized == 0 || j.unrecognized.0 * 4 > nonempty {
        let at = j.unrecognized.1.or(first_nonempty).unwrap_or(1);
        let line = text.split('\n').nth(at - 1).unwrap_or("");
        return Err(TraceError::line(
            file,
            at,
            format!(
                "not an strace log: '{}' is not 'PID  NAME(ARGS) = RESULT' \
                 ({} of {} lines unrecognized)",
                snippet(line),
                j.unrecognized.0,
                nonempty
            ),
        ));
    }

    placed.sort_by_key(|(pos, _)| *pos);
    j.events = placed.into_iter().map(|(_, e)| e).collect();
    attribute_unprefixed(&mut j.events, &seen_order);
    Ok(j)
}

/// The head a `<... NAME resumed>` tail of `tid` belongs to when `tid` has none: a head
/// printed without prefix (the process was alone then), or, for a tail without prefix, the
/// only head of that name.
fn fallback_head(pending: &HashMap<u32, Pending>, tid: u32, name: &str) -> Option<u32> {
    if tid != 0 {
        return pending.get(&0).filter(|p| p.name == name).map(|_| 0);
    }
    let mut it = pending.iter().filter(|(_, p)| p.name == name);
    match (it.next(), it.next()) {
        (Some((&t, _)), None) => Some(t),
        _ => None,
    }
}

/// Decodes a complete call. A call of a kind the replay does not need is ignored even when
/// its text cannot be read; only modelled calls can be unusable.
fn call(name: &str, text: &str) -> Result<Sys, String> {
    let r = result_split(text)
        .ok_or_else(|| "no ') = RESULT'".to_string())
        .and_then(|(args, ret)| decode(name, args, ret));
    match r {
        Err(_) if !modelled(name) => Ok(Sys::Ignored(name.to_string())),
        r => r,
    }
}

fn unusable(
    j: &mut Joined,
    file: &str,
    at: usize,
    strict: bool,
    name: &str,
    m: &str,
) -> Result<(), TraceError> {
    if strict {
        return Err(TraceError::line(file, at, format!("{name}: {m}")));
    }
    j.unusable.0 += 1;
    if j.unusable.1.is_none() {
        j.unusable.1 = Some(at);
        j.first_unusable_why = format!("{name}: {m}");
    }
    Ok(())
}

/// Gives lines without a pid prefix (stderr capture of a lone process) the pid of the first
/// prefixed thread that is nobody's clone child: the process that was alone before it forked.
fn attribute_unprefixed(events: &mut [Event], prefixed: &[u32]) {
    if !events.iter().any(|e| e.tid == 0) {
        return;
    }
    let children: HashSet<u32> = events
        .iter()
        .filter_map(|e| match e.kind {
            EvKind::Sys(Sys::Clone { child, .. }) => child,
            _ => None,
        })
        .collect();
    if let Some(&root) = prefixed.iter().find(|t| !children.contains(*t)) {
        for e in events.iter_mut().filter(|e| e.tid == 0) {
            e.tid = root;
        }
    }
}

/// The start of a line for an error message, printable and short.
fn snippet(s: &str) -> String {
    let clean: String = s.chars().map(|c| if c.is_control() { '?' } else { c }).take(60).collect();
    if s.chars().count() > 60 {
        format!("{clean}...")
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::CloneKind;
    use super::*;

    #[test]
    fn joins_pairs_and_places_clone_at_its_head() {
        let log = "\
6458  vfork( <unfinished ...>
6459  execve(\"/bin/ls\", [\"ls\"], 0x1 /* 2 vars */) = 0
6458  <... vfork resumed>)               = 6459
6459  brk(NULL <unfinished ...>
6458  wait4(-1,  <unfinished ...>
6459  <... brk resumed>)                = 0x5000
";
        let j = join(log, "t", true).unwrap();
        let kinds: Vec<_> = j.events.iter().map(|e| (e.tid, e.kind.clone())).collect();
        assert_eq!(kinds.len(), 3);
        assert_eq!(kinds[0], (6458, EvKind::Sys(Sys::Clone { kind: CloneKind::Vfork, child: Some(6459) })));
        assert!(matches!(kinds[1], (6459, EvKind::Sys(Sys::Exec { ok: true, .. }))));
        assert_eq!(kinds[2], (6459, EvKind::Sys(Sys::Brk { req: 0, ret: 0x5000 })));
        assert_eq!(j.events[2].line, 6);
        assert_eq!(j.unfinished_at_end, 1);
    }

    #[test]
    fn stderr_capture_with_cut_lines() {
        let log = "\
execve(\"/bin/sh\", [\"sh\"], 0x1 /* 2 vars */) = 0
clone(child_stack=NULL, flags=SIGCHLD) = 5432
[pid  5431] wait4(5432, strace: Process 5432 attached
 <unfinished ...>
[pid  5432] exit_group(0)               = ?
[pid  5432] +++ exited with 0 +++
<... wait4 resumed>NULL, 0, NULL)       = 5432
exit_group(0) = ?
+++ exited with 0 +++
";
        let j = join(log, "t", true).unwrap();
        assert!(j.events.iter().all(|e| e.tid == 5431 || e.tid == 5432), "{:?}", j.events);
        assert_eq!(j.orphan_resumed, 0);
        assert_eq!(j.events.iter().filter(|e| e.tid == 5431).count(), 5);
    }

    #[test]
    fn not_strace_is_rejected_with_a_line() {
        let e = join("hello\nworld\n", "g.txt", false).unwrap_err();
        assert_eq!(e.at, crate::trace::Position::Line(1));
        assert!(e.message.contains("not an strace log"), "{e}");
        let e = join("\n\n", "g.txt", false).unwrap_err();
        assert!(e.message.contains("empty"), "{e}");
        let e = join("1  brk(NULL) = 0x1\n1  mmap(NULL, 8192, PROT_RE", "g", false).unwrap_err();
        assert_eq!(e.to_string().split(':').nth(1), Some("2"));
        assert!(e.message.contains("truncated"));
    }
}
