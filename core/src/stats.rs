//! Counters of the server's work: calls, refusals, faults by kind, peaks.
//!
//! Replaces the seed's compiled-out `VMSTATS` counters and the statistics part of
//! `do_info` (`VMIW_STATS`). Plain `u64` counters, updated on the hot path with single
//! increments; peaks are sampled after every message.

use crate::message::{call_name, NR_VM_CALLS, VM_RQ_BASE};

/// What the server has done since boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmStats {
    /// Messages handled (every kind, notifications and faults included).
    pub calls: u64,
    /// Requests answered ENOSYS/EPERM without running a handler (unknown number, denied by
    /// the ACL, bad source endpoint, faked page fault).
    pub refused: u64,
    /// VM_PAGEFAULT messages that did not come from the kernel.
    pub faked_faults: u64,
    /// Notifications ignored.
    pub notifications: u64,
    /// Page faults handled (from the kernel).
    pub faults: u64,
    /// Faults that found the page already accessible (nothing to do).
    pub spurious_faults: u64,
    /// Demand-zero faults.
    pub zero_fills: u64,
    /// Demand-zero faults served from the pre-zeroed pool.
    pub prezeroed_fills: u64,
    /// Demand-zero faults that mapped a large folio (counted in `zero_fills` too).
    pub folio_faults: u64,
    /// Pages those faults mapped (each zeroed on the fault; 4 KiB pages).
    pub folio_pages: u64,
    /// Write faults whose large folio could not be had (no aligned contiguous run of free
    /// frames) and fell back to 4 KiB.
    pub folio_fallbacks: u64,
    /// Demand-zero write faults that mapped a whole huge block (`PS` directory entry; a
    /// write to the huge zero page that replaced it with a block included; counted in
    /// `zero_fills` too).
    pub huge_faults: u64,
    /// Read faults that mapped the huge zero page.
    pub huge_zero_maps: u64,
    /// Faults whose huge block could not be had (no aligned contiguous run of free
    /// frames, or no frame for a table above the directory) and fell back to the smaller
    /// paths.
    pub huge_fallbacks: u64,
    /// Huge entries split into leaf tables (by munmap, mprotect, mremap, discard, brk,
    /// a fixed mmap, or a copy-on-write fault on a shared block).
    pub huge_splits: u64,
    /// Copy-on-write faults that copied the page.
    pub cow_copies: u64,
    /// Copy-on-write faults that found the page private and just made it writable.
    pub cow_reuses: u64,
    /// Faults that could not be resolved: the process was signalled (SIGSEGV, or
    /// out of memory on the fault path).
    pub signalled_faults: u64,
    /// Kernel memory requests (`do_memory`/`handle_memory`).
    pub kernel_requests: u64,
    /// Highest number of frames in use (page tables included) seen after a message.
    pub frames_peak: u64,
    /// Highest number of page-table frames seen after a message.
    pub pt_pages_peak: u64,
    /// Failed sanity checks (only when checking is on).
    pub sanity_failures: u64,
    /// Handled requests per call index (`mtype - VM_RQ_BASE`).
    pub per_call: [u64; NR_VM_CALLS],
}

impl Default for VmStats {
    fn default() -> Self {
        VmStats {
            calls: 0,
            refused: 0,
            faked_faults: 0,
            notifications: 0,
            faults: 0,
            spurious_faults: 0,
            zero_fills: 0,
            prezeroed_fills: 0,
            folio_faults: 0,
            folio_pages: 0,
            folio_fallbacks: 0,
            huge_faults: 0,
            huge_zero_maps: 0,
            huge_fallbacks: 0,
            huge_splits: 0,
            cow_copies: 0,
            cow_reuses: 0,
            signalled_faults: 0,
            kernel_requests: 0,
            frames_peak: 0,
            pt_pages_peak: 0,
            sanity_failures: 0,
            per_call: [0; NR_VM_CALLS],
        }
    }
}

impl VmStats {
    /// `(name, count)` for every call that ran at least once.
    pub fn calls_by_name(&self) -> Vec<(&'static str, u64)> {
        self.per_call
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(i, &n)| (call_name(VM_RQ_BASE + i as i32).unwrap_or("?"), n))
            .collect()
    }
}
