//! Pass 1 of the perf importer: a perf.data file to time-ordered records of what matters —
//! faults, memory and process system calls, execs, forks, exits and mappings.
//!
//! The records are read with the `linux-perf-data` crate, which merges the per-CPU ring
//! buffers into one stream sorted by time (it buffers between perf's `FINISHED_ROUND`
//! markers). Tracepoint payloads are decoded with the field offsets of the capture's own
//! format strings ([`super::formats`]); tracepoints are recognised by the `system:name` of
//! their format, found through the tracepoint id in each event attribute. No MINIX
//! counterpart: MINIX's kernel sent VM one message per fault.

use std::io::Cursor;

use linux_perf_data::linux_perf_event_reader::{EventRecord, PerfEventType};
use linux_perf_data::{Feature, PerfFileReader, PerfFileRecord};

use super::formats::{self, EventFormat};
use super::layout::Layout;
use crate::op::RecordedFaults;
use crate::trace::TraceError;

/// Addresses below this are user addresses on x86-64 (the canonical lower half).
pub const USER_LIMIT: u64 = 0x8000_0000_0000;

/// The system calls the importer models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Call {
    Mmap,
    Munmap,
    Mprotect,
    Mremap,
    Brk,
    Madvise,
    Execve,
    Clone,
    Clone3,
    Vfork,
    ExitGroup,
}

impl Call {
    const ALL: [Call; 11] = [
        Call::Mmap,
        Call::Munmap,
        Call::Mprotect,
        Call::Mremap,
        Call::Brk,
        Call::Madvise,
        Call::Execve,
        Call::Clone,
        Call::Clone3,
        Call::Vfork,
        Call::ExitGroup,
    ];

    /// Every name, in `perf record -e` order.
    pub const ALL_NAMES: [&'static str; 11] = [
        "mmap",
        "munmap",
        "mprotect",
        "mremap",
        "brk",
        "madvise",
        "execve",
        "clone",
        "clone3",
        "vfork",
        "exit_group",
    ];

    /// The name in `syscalls:sys_enter_NAME`.
    pub fn name(self) -> &'static str {
        match self {
            Call::Mmap => "mmap",
            Call::Munmap => "munmap",
            Call::Mprotect => "mprotect",
            Call::Mremap => "mremap",
            Call::Brk => "brk",
            Call::Madvise => "madvise",
            Call::Execve => "execve",
            Call::Clone => "clone",
            Call::Clone3 => "clone3",
            Call::Vfork => "vfork",
            Call::ExitGroup => "exit_group",
        }
    }

    /// The argument fields read from `sys_enter`, in order.
    fn args(self) -> &'static [&'static str] {
        match self {
            Call::Mmap => &["addr", "len", "prot", "flags", "fd"],
            Call::Munmap => &["addr", "len"],
            Call::Mprotect => &["start", "len", "prot"],
            Call::Mremap => &["addr", "old_len", "new_len", "flags", "new_addr"],
            Call::Brk => &["brk"],
            Call::Madvise => &["start", "len_in", "behavior"],
            Call::Clone => &["clone_flags"],
            Call::Execve | Call::Clone3 | Call::Vfork => &[],
            Call::ExitGroup => &["error_code"],
        }
    }
}

/// What one record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RecKind {
    /// `exceptions:page_fault_user` (`kernel` false) or `page_fault_kernel` at a user address.
    Fault { addr: u64, code: u64, kernel: bool },
    /// `syscalls:sys_enter_*`.
    Enter { call: Call, args: [u64; 5] },
    /// `syscalls:sys_exit_*`.
    Exit { call: Call, ret: i64 },
    /// `sched:sched_process_exec`: the thread now runs `path`; `old_tid` is the thread that
    /// called `execve` (a non-leader thread's exec continues under the leader's id).
    Exec { path: String, old_tid: u32 },
    /// `PERF_RECORD_FORK`: a new task `child_tid` in thread group `child_pid`, created by
    /// `parent_tid` of group `parent_pid`.
    Fork { parent_pid: u32, parent_tid: u32, child_pid: u32, child_tid: u32 },
    /// `PERF_RECORD_EXIT` of thread `tid` of group `pid`.
    TaskExit { pid: u32 },
    /// `PERF_RECORD_MMAP2`: a mapping made (kept for the mappings `execve` creates).
    Map { addr: u64, len: u64, prot: u32, shared: bool, path: String },
}

/// One record of one thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rec {
    /// 1-based position in the time-ordered stream.
    pub index: usize,
    /// The thread.
    pub tid: u32,
    /// What it says.
    pub kind: RecKind,
}

/// Result of pass 1 (the records themselves went to the sink as they were read).
#[derive(Clone, Debug, Default)]
pub(crate) struct Decoded {
    /// Fault events at user addresses, by error code.
    pub recorded: RecordedFaults,
    /// Fault events at kernel addresses (not replayed).
    pub kernel_address_faults: u64,
    /// Records read.
    pub records: u64,
    /// Samples whose payload could not be decoded.
    pub undecodable: u64,
}

#[derive(Clone, Debug)]
enum AttrKind {
    Fault { kernel: bool, f: EventFormat },
    Enter(Call, EventFormat),
    Exit(Call, EventFormat),
    Exec(EventFormat),
    Other,
}

fn classify(f: &EventFormat) -> AttrKind {
    let name = f.name.as_str();
    match name {
        "exceptions:page_fault_user" => return AttrKind::Fault { kernel: false, f: f.clone() },
        "exceptions:page_fault_kernel" => return AttrKind::Fault { kernel: true, f: f.clone() },
        "sched:sched_process_exec" => return AttrKind::Exec(f.clone()),
        _ => {}
    }
    for c in Call::ALL {
        if name.strip_prefix("syscalls:sys_enter_") == Some(c.name()) {
            return AttrKind::Enter(c, f.clone());
        }
        if name.strip_prefix("syscalls:sys_exit_") == Some(c.name()) {
            return AttrKind::Exit(c, f.clone());
        }
    }
    AttrKind::Other
}

fn count(r: &mut RecordedFaults, code: u64, kernel: bool) {
    r.faults += 1;
    if kernel {
        r.kernel += 1;
    }
    // x86 error code: bit 0 present (protection), 1 write, 2 user, 4 instruction fetch.
    let (p, w, i) = (code & 1 != 0, code & 2 != 0, code & 0x10 != 0);
    match (p, w, i) {
        (_, _, true) => r.fetch += 1,
        (false, false, false) => r.read += 1,
        (false, true, false) => r.write += 1,
        (true, true, false) => r.protection_write += 1,
        (true, false, false) => r.other += 1,
    }
}

/// Decodes the records of a capture whose layout [`super::layout::check`] accepted, handing
/// each to `sink` in time order (streamed: a capture is never held as records).
pub(crate) fn decode(
    bytes: &[u8],
    file: &str,
    layout: &Layout,
    mut sink: impl FnMut(Rec),
) -> Result<Decoded, TraceError> {
    let at_data = |msg: String| TraceError::offset(file, layout.data.0, msg);
    let PerfFileReader { mut perf_file, mut record_iter } = PerfFileReader::parse_file(Cursor::new(bytes))
        .map_err(|e| TraceError::offset(file, 0, format!("{e}")))?;
    match perf_file.arch() {
        Ok(Some("x86_64")) => {}
        Ok(Some(a)) => {
            return Err(TraceError::file(
                file,
                format!(
                    "recorded on {a}; only x86_64 captures can be imported (their fault error codes are x86)"
                ),
            ))
        }
        _ => {
            return Err(TraceError::file(file, "the capture does not say its architecture (no ARCH feature)"))
        }
    }
    let tracing = perf_file.feature_section_data(Feature::TRACING_DATA).ok_or_else(|| {
        TraceError::file(
            file,
            "no tracepoint formats in the capture (was it recorded with -e exceptions:...?)",
        )
    })?;
    let formats = formats::parse(tracing).map_err(|m| TraceError::file(file, m))?;
    if formats.big_endian || formats.long_size != 8 {
        return Err(TraceError::file(
            file,
            format!(
                "tracepoints of a {}-byte-long {} kernel; only x86_64 captures can be imported",
                formats.long_size,
                if formats.big_endian { "big-endian" } else { "little-endian" }
            ),
        ));
    }
    let mut kinds = Vec::new();
    for a in perf_file.event_attributes() {
        let kind = match a.attributes().type_ {
            PerfEventType::Tracepoint(id) => formats.by_id.get(&id).map(classify).unwrap_or(AttrKind::Other),
            _ => AttrKind::Other,
        };
        kinds.push(kind);
    }
    if !kinds.iter().any(|k| matches!(k, AttrKind::Fault { kernel: false, .. })) {
        return Err(TraceError::file(
            file,
            "no exceptions:page_fault_user events in the capture; record with the event list in the README",
        ));
    }
    let mut out = Decoded::default();
    loop {
        let rec = match record_iter.next_record(&mut perf_file) {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => return Err(at_data(format!("after record {}: {e}", out.records))),
        };
        out.records += 1;
        let index = out.records as usize;
        let PerfFileRecord::EventRecord { attr_index, record } = rec else {
            continue;
        };
        let parsed = match record.parse() {
            Ok(p) => p,
            Err(e) => return Err(at_data(format!("record {index} (time order): cannot decode: {e}"))),
        };
        let (tid, kind) = match parsed {
            EventRecord::Sample(s) => {
                let Some(kind) = kinds.get(attr_index) else { continue };
                let (Some(tid), Some(raw)) = (s.tid, s.raw) else {
                    if !matches!(kind, AttrKind::Other) {
                        out.undecodable += 1;
                    }
                    continue;
                };
                let raw = raw.as_slice();
                let tid = tid as u32;
                let kind = match kind {
                    AttrKind::Fault { kernel, f } => {
                        let (Some(addr), Some(code)) = (f.get(&raw, "address"), f.get(&raw, "error_code"))
                        else {
                            out.undecodable += 1;
                            continue;
                        };
                        if addr >= USER_LIMIT {
                            out.kernel_address_faults += 1;
                            continue;
                        }
                        count(&mut out.recorded, code, *kernel);
                        RecKind::Fault { addr, code, kernel: *kernel }
                    }
                    AttrKind::Enter(call, f) => {
                        let mut args = [0u64; 5];
                        let mut ok = true;
                        for (slot, name) in args.iter_mut().zip(call.args()) {
                            match f.get(&raw, name) {
                                Some(v) => *slot = v,
                                None => ok = false,
                            }
                        }
                        if !ok {
                            out.undecodable += 1;
                            continue;
                        }
                        RecKind::Enter { call: *call, args }
                    }
                    AttrKind::Exit(call, f) => match f.get(&raw, "ret") {
                        Some(v) => RecKind::Exit { call: *call, ret: v as i64 },
                        None => {
                            out.undecodable += 1;
                            continue;
                        }
                    },
                    AttrKind::Exec(f) => {
                        let (Some(path), Some(old)) = (f.string(&raw, "filename"), f.get(&raw, "old_pid"))
                        else {
                            out.undecodable += 1;
                            continue;
                        };
                        RecKind::Exec { path, old_tid: old as u32 }
                    }
                    AttrKind::Other => continue,
                };
                (tid, kind)
            }
            EventRecord::Fork(f) => (
                f.tid as u32,
                RecKind::Fork {
                    parent_pid: f.ppid as u32,
                    parent_tid: f.ptid as u32,
                    child_pid: f.pid as u32,
                    child_tid: f.tid as u32,
                },
            ),
            EventRecord::Exit(f) => (f.tid as u32, RecKind::TaskExit { pid: f.pid as u32 }),
            EventRecord::Mmap2(m) => {
                let path = String::from_utf8_lossy(&m.path.as_slice()).into_owned();
                // MAP_SHARED is bit 0 of the mapping flags perf reports.
                let shared = m.flags & 1 != 0;
                (
                    m.tid as u32,
                    RecKind::Map { addr: m.address, len: m.length, prot: m.protection, shared, path },
                )
            }
            _ => continue,
        };
        sink(Rec { index, tid, kind });
    }
    out.recorded.lost = layout.lost.iter().map(|l| l.1).sum();
    Ok(out)
}
