//! The perf importer: a `perf record` capture of a real run (page-fault tracepoints, memory
//! and process system calls, perf's task and mapping records) becomes a [`Trace`] whose
//! touches are the run's own page faults, in the order they happened.
//!
//! This is what MINIX's kernel fed VM through `do_pagefaults` — every fault with its address
//! and x86 error code — recorded from Linux instead of synthesized (strace cannot see
//! faults; see [`crate::trace::touch`] for the synthesis strace input still uses).
//!
//! **Why a parser crate.** The file is read with `linux-perf-data` (maintained, used by the
//! Firefox profiler's importer), not by running `perf script` and parsing its text: the
//! crate reads the binary format perf itself defines and keeps stable across versions,
//! merges the per-CPU buffers in time order, and needs no `perf` binary on the importing
//! machine, whereas `perf script`'s text layout changes between perf versions and options
//! (field order, symbol columns, `-F` defaults) and costs a process and a text round trip
//! per event. The crate gives access to the `TRACING_DATA` section, so tracepoint payloads
//! are decoded with the field offsets of the recording kernel's own format strings
//! (`formats`) rather than an assumed layout; a capture whose section says 4-byte longs
//! or a big-endian kernel is refused, as is one whose `ARCH` is not `x86_64`.
//!
//! The passes: [`layout`] checks every size in the file against its length (byte offsets
//! in errors, lost-event records found), `decode` reads the time-ordered records,
//! `convert` feeds them to the strace importer's emitter and places faults, and a last
//! check drops touches the replayed state would refuse (counted). The capture to make:
//! ```text
//! perf record -d -e exceptions:page_fault_user -e exceptions:page_fault_kernel \
//!   -e 'syscalls:sys_enter_mmap' -e 'syscalls:sys_exit_mmap' ... (see the README) -- CMD
//! ```

pub(crate) mod convert;
pub(crate) mod decode;
pub mod explain;
pub mod facts;
pub(crate) mod formats;
pub mod layout;
pub mod predict;
pub mod report;

pub use decode::USER_LIMIT;
pub use facts::{AreaKind, TouchFault};
pub use layout::PERF_MAGIC;
pub use report::{PerfReport, Placement};

use crate::op::{Op, Trace, FORMAT_VERSION};
use crate::trace::strace::emit::{finish, Emitter};
use crate::trace::{ImportOptions, ImportReport, Shadow, TraceError};

/// The events a capture needs, in `perf record -e` form (the README shows the command).
pub fn perf_events() -> Vec<String> {
    let mut ev = vec!["exceptions:page_fault_user".to_string(), "exceptions:page_fault_kernel".to_string()];
    for c in decode::Call::ALL_NAMES {
        ev.push(format!("syscalls:sys_enter_{c}"));
        ev.push(format!("syscalls:sys_exit_{c}"));
    }
    for s in ["fork", "exec", "exit"] {
        ev.push(format!("sched:sched_process_{s}"));
    }
    ev
}

/// Imports a perf.data capture. `name` names the file in errors; the header's source is
/// `perf:` + its stem. A capture with lost events is refused unless
/// [`ImportOptions::allow_lost`].
pub fn import_perf(
    bytes: &[u8],
    name: &str,
    options: &ImportOptions,
) -> Result<(Trace, PerfReport), TraceError> {
    let layout = layout::check(bytes, name)?;
    if let Some(&(at, _)) = layout.lost.first() {
        if !options.allow_lost {
            let n: u64 = layout.lost.iter().map(|l| l.1).sum();
            return Err(TraceError::offset(
                name,
                at,
                format!(
                    "{n} events lost (PERF_RECORD_LOST x{}): the capture is incomplete; record again with a larger \
                     buffer (-m), or replay it anyway with --allow-lost",
                    layout.lost.len()
                ),
            ));
        }
    }
    let mut import = ImportReport::default();
    let stem = std::path::Path::new(name).file_stem().and_then(|s| s.to_str()).unwrap_or(name);
    let stem = stem.strip_suffix(".perf").unwrap_or(stem);
    let (decoded, mut trace, mut placed, leftover, mut touch_faults) = {
        let mut emitter = Emitter::new(options, &mut import);
        emitter.stack_window_at_top = true;
        let mut conv = convert::Converter::new(emitter);
        // Most records become one op (a touch or a call).
        conv.e.ops.reserve(usize::try_from(layout.records).unwrap_or(0).min(1 << 24));
        let decoded = decode::decode(bytes, name, &layout, |r| conv.rec(&r))?;
        let leftover = conv.leftover_faults();
        let placed = conv.placed;
        let touch_faults = std::mem::take(&mut conv.touch_faults);
        (decoded, finish(conv.e, &format!("perf:{stem}")), placed, leftover, touch_faults)
    };
    placed.unplaced += leftover;
    placed.refused = drop_refused(&mut trace, &mut touch_faults);
    import.lines = decoded.records as usize;
    import.ops = trace.ops.len();
    let h = &mut trace.header;
    h.version = FORMAT_VERSION;
    h.recorded = Some(decoded.recorded);
    h.notes.push(format!(
        "perf capture: {} faults at user addresses -> {} touches ({} outside known areas, {} clipped, {} refused)",
        decoded.recorded.faults,
        placed.touches(),
        placed.unplaced,
        placed.clipped,
        placed.refused
    ));
    let report = PerfReport {
        import,
        recorded: decoded.recorded,
        placed,
        records: decoded.records,
        lost_records: layout.lost,
        kernel_address_faults: decoded.kernel_address_faults,
        undecodable: decoded.undecodable,
        touch_faults,
    };
    Ok((trace, report))
}

/// Removes touches the state before them refuses (a protection the capture could not see
/// change), with their facts (`facts` holds one per touch, in order); every other op is kept
/// for the validator to judge. Returns how many.
fn drop_refused(trace: &mut Trace, facts: &mut Vec<facts::TouchFault>) -> u64 {
    let mut s = Shadow::new();
    let mut dropped = Vec::new();
    let mut touch = 0;
    trace.ops.retain(|op| {
        let ok = s.apply(op).is_ok();
        if matches!(op, Op::Touch { .. }) {
            touch += 1;
            if !ok {
                dropped.push(touch - 1);
                return false;
            }
        }
        true
    });
    if facts.len() != touch {
        // Cannot happen (the converter records one per touch it emits); facts that do not
        // line up with the touches would mislead, so none are kept.
        facts.clear();
    } else {
        let mut k = 0;
        let mut next = dropped.iter().peekable();
        facts.retain(|_| {
            let keep = next.peek() != Some(&&k);
            if !keep {
                next.next();
            }
            k += 1;
            keep
        });
    }
    dropped.len() as u64
}
