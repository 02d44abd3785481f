//! Recorded against replayed faults: what a replay of a perf capture did with the faults
//! Linux took, and why the two counts differ.
//!
//! Linux and the replayed server fault for different reasons: the seed's exec allocates the
//! whole image eagerly (`VM_EXEC_NEWMEM`), so touches of text and data find it mapped;
//! Linux's fault-around maps up to 16 neighbouring pages of a file per read fault, so it
//! takes fewer file faults than touches would suggest for pages it had mapped around; a
//! read and then a write of one anonymous page are two Linux faults (the shared zero page,
//! then a private copy) but may be one demand-zero fault in the replay. The summary counts
//! each of these from the trace and the server's counters.

use std::fmt::Write as _;

use hashbrown::{HashMap, HashSet};

use crate::metrics::RunReport;
use crate::op::{MapId, MapKind, Op, Place, RecordedFaults, Trace};

/// Touch counts of a trace by what they touch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TouchMix {
    /// All touches.
    pub touches: u64,
    /// Of the exec image (text, data, bss).
    pub image: u64,
    /// Of file mappings.
    pub file: u64,
    /// Of a page the same process touched before (read then write, or refaulted).
    pub repeated: u64,
}

impl TouchMix {
    /// Counts the touches of `trace`.
    pub fn of(trace: &Trace) -> TouchMix {
        let mut kinds: HashMap<MapId, MapKind> = HashMap::new();
        let mut seen: HashSet<(u32, Place)> = HashSet::new();
        let mut m = TouchMix::default();
        for op in &trace.ops {
            match *op {
                Op::Mmap { id, spec, .. } | Op::MmapOver { id, spec, .. } => {
                    kinds.insert(id, spec.kind);
                }
                Op::Exec { pid, .. } | Op::Exit { pid } => seen.retain(|k| k.0 != pid.0),
                Op::Touch { pid, place, .. } => {
                    m.touches += 1;
                    match place {
                        Place::Text(_) | Place::Data(_) => m.image += 1,
                        Place::Map(id, _) if kinds.get(&id) == Some(&MapKind::File) => m.file += 1,
                        _ => {}
                    }
                    if !seen.insert((pid.0, place)) {
                        m.repeated += 1;
                    }
                }
                _ => {}
            }
        }
        m
    }
}

/// The lines printed after a replay of a capture with recorded faults.
pub fn recorded_vs_replayed(recorded: &RecordedFaults, mix: &TouchMix, report: &RunReport) -> String {
    let k = &report.faults_by_kind;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  recorded {} faults ({} in kernel mode) -> {} touches replayed -> {} faults here: {} demand-zero, {} cow copy, {} cow reuse, {} image/file, {} none needed",
        recorded.faults,
        recorded.kernel,
        mix.touches,
        report.faults,
        k.demand_zero,
        k.cow_copy,
        k.cow_reuse,
        k.image_file,
        k.none_needed
    );
    let mut why = Vec::new();
    let dropped = recorded.faults.saturating_sub(mix.touches);
    if dropped > 0 {
        why.push(format!(
            "{dropped} recorded faults fell outside what the trace keeps (see the import notes)"
        ));
    }
    if mix.image > 0 {
        why.push(format!(
            "{} touches of the exec image find it mapped (exec allocates the image eagerly, as the seed does)",
            mix.image
        ));
    }
    if mix.repeated > 0 {
        why.push(format!(
            "{} touches repeat a page (Linux faults twice for read-then-write via the zero page or for a copy-on-write; the server may resolve both at once)",
            mix.repeated
        ));
    }
    if mix.file > 0 {
        why.push(format!(
            "{} touches of file pages: Linux's fault-around maps up to 16 pages per read fault, the server fills one page per fault",
            mix.file
        ));
    }
    if recorded.lost > 0 {
        why.push(format!("{} events were lost in the capture", recorded.lost));
    }
    if !why.is_empty() {
        let _ = writeln!(s, "  why they differ: {}", why.join("; "));
    }
    s
}
