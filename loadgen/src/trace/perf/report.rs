//! What the perf importer saw, placed and left out.

use std::fmt;

use crate::op::RecordedFaults;
use crate::trace::ImportReport;

/// Where recorded faults went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// In a mapping.
    pub map: u64,
    /// In the program text.
    pub text: u64,
    /// In the data and bss.
    pub data: u64,
    /// In the heap.
    pub heap: u64,
    /// In the stack.
    pub stack: u64,
    /// Stack faults below the exec-time stack, which enlarged the exec image.
    pub stack_grown: u64,
    /// Writes into the text (a debugger's breakpoint, a relocation) replayed as reads.
    pub text_writes_as_reads: u64,
    /// Outside every known area (mapped before the capture, or by a call not traced).
    pub unplaced: u64,
    /// In the part of a clamped mapping that the trace does not keep.
    pub clipped: u64,
    /// Dropped because the replayed state would refuse them (protection changed by a call
    /// the capture did not see).
    pub refused: u64,
}

impl Placement {
    /// Touches in the trace.
    pub fn touches(&self) -> u64 {
        self.map + self.text + self.data + self.heap + self.stack - self.refused
    }
}

/// The perf importer's report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PerfReport {
    /// The process and memory side, as for strace logs (lines are records here).
    pub import: ImportReport,
    /// Faults at user addresses by error code, and lost events.
    pub recorded: RecordedFaults,
    /// Where they went.
    pub placed: Placement,
    /// Records in the file.
    pub records: u64,
    /// `PERF_RECORD_LOST` records: byte offset and events lost.
    pub lost_records: Vec<(u64, u64)>,
    /// Fault events at kernel addresses (not replayed, not counted as recorded).
    pub kernel_address_faults: u64,
    /// Samples of a modelled event whose payload could not be decoded.
    pub undecodable: u64,
    /// One per touch of the trace, in the same order: the fault's address, error code and
    /// area, which the address-independent trace does not keep ([`super::facts`]).
    pub touch_faults: Vec<super::facts::TouchFault>,
}

impl fmt::Display for PerfReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.recorded;
        let p = &self.placed;
        writeln!(
            f,
            "{} records: {} faults at user addresses ({} in kernel mode; {} read, {} write, {} protection write, {} fetch, {} other) -> {} touches",
            self.records, r.faults, r.kernel, r.read, r.write, r.protection_write, r.fetch, r.other, p.touches()
        )?;
        writeln!(
            f,
            "  placed: {} in mappings, {} text, {} data, {} heap, {} stack; not replayed: {} outside known areas, {} in clamped-away windows, {} refused by protection",
            p.map, p.text, p.data, p.heap, p.stack, p.unplaced, p.clipped, p.refused
        )?;
        if r.lost > 0 {
            writeln!(
                f,
                "  {} events lost in {} PERF_RECORD_LOST records: the capture is incomplete",
                r.lost,
                self.lost_records.len()
            )?;
        }
        if self.undecodable > 0 {
            writeln!(f, "  {} samples could not be decoded", self.undecodable)?;
        }
        let anon = self.touch_faults.iter().filter(|t| t.folio_candidate(1)).count();
        if anon > 0 {
            let fit = |pages| self.touch_faults.iter().filter(|t| t.folio_candidate(pages)).count();
            writeln!(
                f,
                "  {anon} missing-page writes in private anonymous memory; their aligned block lies in the area for {} at 16 KiB, {} at 64 KiB, {} at 2 MiB",
                fit(4),
                fit(16),
                fit(512)
            )?;
        }
        write!(f, "{}", self.import)
    }
}
