//! What a run measured: per-op latency histograms, throughput, the server's fault and
//! copy-on-write counters and peaks, and the `--json` object of the CLI contract.
//!
//! Latencies go into HDR histograms (nanoseconds, three significant digits, up to a minute),
//! one for all ops and one per op kind, so that shards and repeated runs merge exactly.
//! MINIX's VM kept no such figures (its `VM_INFO` counted calls); this is the measurement
//! side the load generator adds.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::op::OpKind;

/// Highest latency a histogram holds (ns): one minute. Longer ops are recorded as this.
const MAX_NS: u64 = 60_000_000_000;

fn histogram() -> Histogram<u64> {
    // Bounds are constants that hdrhistogram accepts; a failure would be a bug here.
    Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid histogram bounds")
}

/// Counters the server keeps, sampled around a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerCounters {
    /// Page faults handled (`VM_PAGEFAULT` from the kernel).
    pub faults: u64,
    /// Faults that filled a zero page.
    pub zero_fills: u64,
    /// Copy-on-write faults that copied a frame.
    pub cow_copies: u64,
    /// Copy-on-write faults that found the frame private and only made it writable.
    pub cow_reuses: u64,
    /// Faults that found the page already accessible (nothing needed).
    pub spurious: u64,
    /// Faults that could not be resolved (the process was signalled).
    pub signalled: u64,
    /// Most frames in use at once (page tables included).
    pub frames_peak: u64,
    /// Most frames used as page tables at once.
    pub pt_pages_peak: u64,
    /// Demand-zero write faults that mapped a large folio (counted in `zero_fills` too).
    #[serde(default)]
    pub folio_faults: u64,
    /// Pages those folios mapped.
    #[serde(default)]
    pub folio_pages: u64,
    /// Write faults that could have taken a folio but found no aligned run of free frames
    /// (or no page-table frame) and fell back to 4 KiB.
    #[serde(default)]
    pub folio_fallbacks: u64,
    /// Demand-zero faults that mapped a whole huge block (counted in `zero_fills` too).
    #[serde(default)]
    pub huge_faults: u64,
    /// Pages those blocks mapped (512 each in x86-64 tables, 1,024 in i386's).
    #[serde(default)]
    pub huge_pages: u64,
    /// Read faults that mapped the huge zero page.
    #[serde(default)]
    pub huge_zero_maps: u64,
    /// Faults whose huge block could not be had and fell back to the smaller paths.
    #[serde(default)]
    pub huge_fallbacks: u64,
    /// Huge entries split into leaf tables.
    #[serde(default)]
    pub huge_splits: u64,
}

impl ServerCounters {
    /// Frames the demand-zero faults allocated and zeroed: one per 4 KiB fill, every page of
    /// each folio and of each huge block.
    pub fn frames_zeroed(&self) -> u64 {
        self.zero_fills.saturating_sub(self.folio_faults + self.huge_faults)
            + self.folio_pages
            + self.huge_pages
    }
}

/// A replay's page faults by how the server resolved them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultKinds {
    /// A fresh zeroed frame (anonymous memory, heap, stack, bss).
    pub demand_zero: u64,
    /// Copy-on-write that copied the frame.
    pub cow_copy: u64,
    /// Copy-on-write that found the frame private and only made it writable.
    pub cow_reuse: u64,
    /// Resolved otherwise: the server has no file-backed pages and builds exec images
    /// eagerly (as MINIX's `VM_EXEC_NEWMEM` did), so image and file pages rarely fault.
    pub image_file: u64,
    /// The page was already accessible (spurious).
    pub none_needed: u64,
}

impl FaultKinds {
    /// The kinds of the faults `s` counted (signalled faults are in none of them).
    pub fn of(s: &ServerCounters) -> FaultKinds {
        let known = s.zero_fills + s.cow_copies + s.cow_reuses + s.spurious + s.signalled;
        FaultKinds {
            demand_zero: s.zero_fills,
            cow_copy: s.cow_copies,
            cow_reuse: s.cow_reuses,
            image_file: s.faults.saturating_sub(known),
            none_needed: s.spurious,
        }
    }
}

/// What `--verify` checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VerifyCounts {
    /// Checks made: page signatures read back, isolation probes, invariant checks, the
    /// final free-frame count.
    pub checked: u64,
    /// Whether every check passed.
    pub ok: bool,
    /// Seconds spent verifying: not part of the run's `seconds` (nor its ops/s).
    pub seconds: f64,
}

/// Measurements of one run (or several merged).
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Ops played in the measured part.
    pub ops: u64,
    /// Wall-clock seconds of the measured part.
    pub seconds: f64,
    /// Latency of every op (ns).
    pub latency: Histogram<u64>,
    /// Latency per op kind, indexed like [`OpKind::ALL`].
    pub per_kind: Vec<Histogram<u64>>,
    /// Server counters over the measured part (peaks are the largest seen).
    pub server: ServerCounters,
    /// Verification result, when on.
    pub verify: Option<VerifyCounts>,
    /// Heaps clamped to what the address-space layout leaves.
    pub heap_clamp: HeapClamp,
    /// Wall nanoseconds of the touch ops (the faults they raised included).
    pub touch_ns: u64,
    /// 4 KiB pages the touch ops named (a page touched twice counts twice).
    pub pages_touched: u64,
    /// Pages a large folio mapped that the process never touched before they were unmapped,
    /// discarded, replaced, or the process exited or the run ended: the folio's bloat.
    pub folio_untouched: u64,
}

/// Heap growths a replay clamped because the address-space layout leaves less room (a
/// 64-bit program's heap in an i386 space), and the touched pages past them it skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeapClamp {
    /// brk calls clamped.
    pub brks: u64,
    /// Pages of heap touches skipped because they lay past a clamped heap.
    pub pages_skipped: u64,
}

impl HeapClamp {
    /// Nothing was clamped.
    pub fn is_none(&self) -> bool {
        self.brks == 0
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Empty measurements.
    pub fn new() -> Metrics {
        Metrics {
            ops: 0,
            seconds: 0.0,
            latency: histogram(),
            per_kind: OpKind::ALL.iter().map(|_| histogram()).collect(),
            server: ServerCounters::default(),
            verify: None,
            heap_clamp: HeapClamp::default(),
            touch_ns: 0,
            pages_touched: 0,
            folio_untouched: 0,
        }
    }

    /// Records one op of `kind` that took `ns` nanoseconds.
    #[inline]
    pub fn record(&mut self, kind: OpKind, ns: u64) {
        let ns = ns.clamp(1, MAX_NS);
        self.ops += 1;
        self.latency.saturating_record(ns);
        self.per_kind[kind as usize].saturating_record(ns);
        if kind == OpKind::Touch {
            self.touch_ns += ns;
        }
    }

    /// Ops per second over the measured wall time.
    pub fn ops_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.ops as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// Adds `other` (another shard or repetition): histograms and counters add, peaks take
    /// the maximum, seconds take the maximum (shards run side by side).
    pub fn merge(&mut self, other: &Metrics) {
        self.ops += other.ops;
        self.seconds = self.seconds.max(other.seconds);
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        for (a, b) in self.per_kind.iter_mut().zip(&other.per_kind) {
            let _ = a.add(b);
        }
        self.heap_clamp.brks += other.heap_clamp.brks;
        self.heap_clamp.pages_skipped += other.heap_clamp.pages_skipped;
        self.touch_ns += other.touch_ns;
        self.pages_touched += other.pages_touched;
        self.folio_untouched += other.folio_untouched;
        let (s, o) = (&mut self.server, &other.server);
        s.faults += o.faults;
        s.zero_fills += o.zero_fills;
        s.cow_copies += o.cow_copies;
        s.cow_reuses += o.cow_reuses;
        s.spurious += o.spurious;
        s.signalled += o.signalled;
        s.frames_peak = s.frames_peak.max(o.frames_peak);
        s.pt_pages_peak = s.pt_pages_peak.max(o.pt_pages_peak);
        s.folio_faults += o.folio_faults;
        s.folio_pages += o.folio_pages;
        s.folio_fallbacks += o.folio_fallbacks;
        s.huge_faults += o.huge_faults;
        s.huge_pages += o.huge_pages;
        s.huge_zero_maps += o.huge_zero_maps;
        s.huge_fallbacks += o.huge_fallbacks;
        s.huge_splits += o.huge_splits;
        self.verify = match (self.verify, other.verify) {
            (Some(a), Some(b)) => Some(VerifyCounts {
                checked: a.checked + b.checked,
                ok: a.ok && b.ok,
                seconds: a.seconds + b.seconds,
            }),
            (a, b) => a.or(b),
        };
    }

    /// The latency summary (ns).
    pub fn latency_summary(&self) -> Latency {
        Latency::of(&self.latency)
    }

    /// Count and median per op kind that occurred, keyed by [`OpKind::name`].
    pub fn per_op(&self) -> BTreeMap<String, PerOp> {
        OpKind::ALL
            .iter()
            .zip(&self.per_kind)
            .filter(|(_, h)| !h.is_empty())
            .map(|(k, h)| (k.name().to_string(), PerOp { count: h.len(), ns_p50: h.value_at_quantile(0.5) }))
            .collect()
    }
}

/// Latency percentiles (ns).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency { p50: h.value_at_quantile(0.5), p99: h.value_at_quantile(0.99), max: h.max() }
    }
}

/// Per-kind figures of the JSON `per_op` object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerOp {
    /// Ops of this kind.
    pub count: u64,
    /// Their median latency (ns).
    pub ns_p50: u64,
}

/// One shard's figures in a sharded run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardFigures {
    /// Shard index.
    pub shard: usize,
    /// Ops it played.
    pub ops: u64,
    /// Its wall time.
    pub seconds: f64,
    /// Its throughput.
    pub ops_per_sec: f64,
}

/// The strategy a run used, as named on the command line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StrategyNames {
    /// Frame allocator (`bitset`, `buddy`, `holelist`).
    pub alloc: String,
    /// Page-table format (`x86-64`, `i386`).
    pub paging: String,
    /// Fork policy (`cow`, `copy`).
    pub fork: String,
    /// Zeroing policy (`on-fault`, `prezeroed`).
    pub zero: String,
    /// Anonymous folio size (`4k` = large folios off, `16k` … `1m`).
    pub folio: String,
    /// Huge-page policy (`never`, `always`).
    pub huge: String,
}

/// What a run's huge-page policy did (`--json` object `huge_figures`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HugeFigures {
    /// Demand-zero faults that mapped a whole huge block (a write to the huge zero page
    /// that replaced it included).
    pub huge_faults: u64,
    /// Pages those blocks mapped.
    pub huge_pages: u64,
    /// Read faults that mapped the huge zero page.
    pub huge_zero_maps: u64,
    /// Faults whose block could not be had (no aligned free run) and fell back.
    pub fallbacks: u64,
    /// Huge entries split into leaf tables (partial munmap, mprotect, mremap, discard,
    /// copy-on-write of a shared block).
    pub splits: u64,
}

impl HugeFigures {
    /// The figures of `m`.
    pub fn of(m: &Metrics) -> HugeFigures {
        let s = &m.server;
        HugeFigures {
            huge_faults: s.huge_faults,
            huge_pages: s.huge_pages,
            huge_zero_maps: s.huge_zero_maps,
            fallbacks: s.huge_fallbacks,
            splits: s.huge_splits,
        }
    }
}

/// What a run's folio size did: faults and their cost, memory zeroed, and the bloat
/// (`--json` object `folio`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FolioFigures {
    /// Demand-zero write faults that mapped a large folio.
    pub folio_faults: u64,
    /// Pages those folios mapped.
    pub folio_pages: u64,
    /// Write faults that fell back to 4 KiB for want of an aligned run of free frames.
    pub fallbacks: u64,
    /// 4 KiB pages the workload's touches named (a page touched twice counts twice).
    pub pages_touched: u64,
    /// Frames the demand-zero faults allocated and zeroed.
    pub frames_zeroed: u64,
    /// Bytes zeroed by them (`frames_zeroed` × 4 KiB).
    pub bytes_zeroed: u64,
    /// Frames a folio or huge block mapped that the workload never touched (the bloat).
    pub untouched_folio_pages: u64,
    /// Wall nanoseconds of the touch ops per page fault (0 without faults).
    pub ns_per_fault: f64,
    /// Wall nanoseconds of the touch ops per 4 KiB page touched (0 without touches).
    pub ns_per_page_touched: f64,
}

impl FolioFigures {
    /// The figures of `m`.
    pub fn of(m: &Metrics) -> FolioFigures {
        let per = |n: u64| if n > 0 { m.touch_ns as f64 / n as f64 } else { 0.0 };
        let frames_zeroed = m.server.frames_zeroed();
        FolioFigures {
            folio_faults: m.server.folio_faults,
            folio_pages: m.server.folio_pages,
            fallbacks: m.server.folio_fallbacks,
            pages_touched: m.pages_touched,
            frames_zeroed,
            bytes_zeroed: frames_zeroed * 4096,
            untouched_folio_pages: m.folio_untouched,
            ns_per_fault: per(m.server.faults),
            ns_per_page_touched: per(m.pages_touched),
        }
    }

    /// Untouched folio pages as a share of the frames zeroed (0 when nothing was zeroed).
    pub fn bloat(&self) -> f64 {
        if self.frames_zeroed > 0 {
            self.untouched_folio_pages as f64 / self.frames_zeroed as f64
        } else {
            0.0
        }
    }
}

fn default_folio() -> String {
    "4k".into()
}

fn default_huge() -> String {
    "never".into()
}

/// The `--json FILE` object (DESIGN §4): one per run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The storm played, for `run`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storm: Option<String>,
    /// The trace played, for `replay`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// Frame allocator.
    pub alloc: String,
    /// Page-table format.
    pub paging: String,
    /// Fork policy.
    pub fork: String,
    /// Zeroing policy.
    pub zero: String,
    /// Anonymous folio size of demand-zero write faults (`4k`: large folios off).
    #[serde(default = "default_folio")]
    pub folio: String,
    /// Huge-page policy of demand-zero faults (`never`: off, `always`).
    #[serde(default = "default_huge")]
    pub huge: String,
    /// Independent servers run side by side.
    pub shards: usize,
    /// Seed of a storm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Rounds of a storm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<u64>,
    /// Ops played (all shards).
    pub ops: u64,
    /// Wall seconds of the measured part.
    pub seconds: f64,
    /// Ops per second (all shards together).
    pub ops_per_sec: f64,
    /// Page faults handled.
    pub faults: u64,
    /// Copy-on-write copies.
    pub cow_copies: u64,
    /// The replay's faults by what the server did.
    #[serde(default)]
    pub faults_by_kind: FaultKinds,
    /// Fault events the capture recorded at user addresses of the traced processes (perf
    /// captures only), to compare with `faults`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_faults: Option<u64>,
    /// What the folio size did: folio faults, fallbacks, pages touched, frames zeroed, the
    /// bloat, ns per fault and per page touched.
    #[serde(default)]
    pub folio_figures: FolioFigures,
    /// What the huge-page policy did: huge faults, huge zero page maps, fallbacks, splits.
    #[serde(default)]
    pub huge_figures: HugeFigures,
    /// Page faults the host kernel is predicted to take for the captured program with
    /// anonymous folios of `folio` (perf captures only; see
    /// [`crate::trace::perf::predict`]), all shards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted_host_faults: Option<u64>,
    /// With `huge` `always`: the least and the most page faults the host is predicted to
    /// take over the placements address-space randomization may give the program's areas
    /// (`predicted_host_faults` is the one the capture recorded), all shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_host_faults_range: Option<[u64; 2]>,
    /// Why a trace has no `predicted_host_faults` (an strace log or a vmstorm trace records
    /// no host faults).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_prediction: Option<String>,
    /// Most frames in use at once (largest of the shards).
    pub frames_peak: u64,
    /// Most page-table frames at once (largest of the shards).
    pub pt_pages_peak: u64,
    /// Op latency percentiles (ns).
    pub latency_ns: Latency,
    /// Count and median latency per op kind.
    pub per_op: BTreeMap<String, PerOp>,
    /// Verification, when `--verify` was on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyCounts>,
    /// Heap growths clamped to what the address-space layout leaves, and the touched pages
    /// past them skipped (absent when nothing was clamped).
    #[serde(default, skip_serializing_if = "HeapClamp::is_none")]
    pub heap_clamp: HeapClamp,
    /// Per-shard figures when `shards > 1`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_shard: Vec<ShardFigures>,
    /// Throughput of all shards over that of one shard measured in the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speedup_vs_one_shard: Option<f64>,
}

/// What is being run, for a [`RunReport`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Workload {
    /// A storm with its seed and scale.
    Storm {
        /// Storm name.
        name: String,
        /// Seed.
        seed: u64,
        /// Rounds.
        scale: u64,
    },
    /// A trace file.
    Trace(String),
}

impl Workload {
    /// A short label for tables.
    pub fn label(&self) -> String {
        match self {
            Workload::Storm { name, .. } => name.clone(),
            Workload::Trace(t) => t.clone(),
        }
    }
}

impl RunReport {
    /// The report of `m` for `work` under `strategy` with `shards` servers.
    pub fn new(work: &Workload, strategy: &StrategyNames, shards: usize, m: &Metrics) -> RunReport {
        let (storm, trace, seed, scale) = match work {
            Workload::Storm { name, seed, scale } => (Some(name.clone()), None, Some(*seed), Some(*scale)),
            Workload::Trace(t) => (None, Some(t.clone()), None, None),
        };
        RunReport {
            storm,
            trace,
            alloc: strategy.alloc.clone(),
            paging: strategy.paging.clone(),
            fork: strategy.fork.clone(),
            zero: strategy.zero.clone(),
            folio: strategy.folio.clone(),
            huge: strategy.huge.clone(),
            shards,
            seed,
            scale,
            ops: m.ops,
            seconds: m.seconds,
            ops_per_sec: m.ops_per_sec(),
            faults: m.server.faults,
            cow_copies: m.server.cow_copies,
            faults_by_kind: FaultKinds::of(&m.server),
            recorded_faults: None,
            folio_figures: FolioFigures::of(m),
            huge_figures: HugeFigures::of(m),
            predicted_host_faults: None,
            predicted_host_faults_range: None,
            host_prediction: None,
            frames_peak: m.server.frames_peak,
            pt_pages_peak: m.server.pt_pages_peak,
            latency_ns: m.latency_summary(),
            per_op: m.per_op(),
            verify: m.verify,
            heap_clamp: m.heap_clamp,
            per_shard: Vec::new(),
            speedup_vs_one_shard: None,
        }
    }

    /// Pretty JSON text of the report.
    pub fn to_json(&self) -> String {
        // Serializing plain structs and maps of strings cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The human-readable summary printed after a run.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let what = self
            .storm
            .as_deref()
            .map(|n| format!("storm {n}"))
            .unwrap_or_else(|| format!("trace {}", self.trace.as_deref().unwrap_or("?")));
        let _ = writeln!(
            s,
            "{what}  alloc={} paging={} fork={} zero={} folio={} huge={} shards={}",
            self.alloc, self.paging, self.fork, self.zero, self.folio, self.huge, self.shards
        );
        let _ = writeln!(
            s,
            "  {} ops in {:.3} s = {} ops/s   latency p50 {} p99 {} max {}",
            self.ops,
            self.seconds,
            human(self.ops_per_sec),
            ns(self.latency_ns.p50),
            ns(self.latency_ns.p99),
            ns(self.latency_ns.max)
        );
        let _ = writeln!(
            s,
            "  faults {}  cow copies {}  peak frames {} ({} MiB)  peak page-table pages {}",
            self.faults,
            self.cow_copies,
            self.frames_peak,
            self.frames_peak >> 8,
            self.pt_pages_peak
        );
        let f = &self.folio_figures;
        let _ = writeln!(
            s,
            "  folio {}: {} folio faults mapping {} pages, {} fallbacks; {} pages touched, {} frames \
             zeroed ({} MiB), {} never touched ({:.1} % bloat); {:.0} ns per fault, {:.0} ns per page \
             touched",
            self.folio,
            f.folio_faults,
            f.folio_pages,
            f.fallbacks,
            f.pages_touched,
            f.frames_zeroed,
            f.bytes_zeroed >> 20,
            f.untouched_folio_pages,
            f.bloat() * 100.0,
            f.ns_per_fault,
            f.ns_per_page_touched
        );
        if self.huge != "never" {
            let h = &self.huge_figures;
            let _ = writeln!(
                s,
                "  huge {}: {} huge faults mapping {} pages, {} huge zero page maps, {} fallbacks, {} splits",
                self.huge, h.huge_faults, h.huge_pages, h.huge_zero_maps, h.fallbacks, h.splits
            );
        }
        match (self.predicted_host_faults, &self.host_prediction) {
            (Some(p), _) => {
                let huge = if self.huge == "always" { " and 2 MiB huge pages" } else { "" };
                let range = self
                    .predicted_host_faults_range
                    .map(|[lo, hi]| format!("; {lo} to {hi} over placements"))
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "  predicted host faults with {} anonymous folios{huge}: {p}{range}{}",
                    self.folio,
                    self.recorded_faults.map(|r| format!(" (recorded: {r})")).unwrap_or_default()
                );
            }
            (None, Some(why)) => {
                let _ = writeln!(s, "  predicted host faults: none ({why})");
            }
            (None, None) => {}
        }
        if !self.heap_clamp.is_none() {
            let _ = writeln!(
                s,
                "  heap clamped: {} brk calls grew past the room this address-space layout leaves \
                 (a larger --mem cannot help); {} touched heap pages past it skipped",
                self.heap_clamp.brks, self.heap_clamp.pages_skipped
            );
        }
        if let Some(v) = self.verify {
            let _ = writeln!(
                s,
                "  verify: {} checks, {} ({:.2} s, not timed)",
                v.checked,
                if v.ok { "all passed" } else { "FAILED" },
                v.seconds
            );
        }
        if !self.per_shard.is_empty() {
            for sh in &self.per_shard {
                let _ = writeln!(
                    s,
                    "  shard {:>2}: {} ops in {:.3} s = {} ops/s",
                    sh.shard,
                    sh.ops,
                    sh.seconds,
                    human(sh.ops_per_sec)
                );
            }
        }
        if let Some(x) = self.speedup_vs_one_shard {
            let _ = writeln!(s, "  speed-up over one shard (same run): {x:.2}x");
        }
        let _ = writeln!(s, "  {:<10} {:>10} {:>10}", "op", "count", "p50");
        for (k, v) in &self.per_op {
            let _ = writeln!(s, "  {:<10} {:>10} {:>10}", k, v.count, ns(v.ns_p50));
        }
        s
    }
}

/// A duration in ns as `850 ns`, `12.3 µs`, `4.56 ms`, `1.20 s`.
pub fn ns(v: u64) -> String {
    let f = v as f64;
    if v < 1_000 {
        format!("{v} ns")
    } else if v < 1_000_000 {
        format!("{:.1} µs", f / 1e3)
    } else if v < 1_000_000_000 {
        format!("{:.2} ms", f / 1e6)
    } else {
        format!("{:.2} s", f / 1e9)
    }
}

/// A rate as `950`, `12.3k`, `4.56M`.
pub fn human(v: f64) -> String {
    if v < 1e3 {
        format!("{v:.0}")
    } else if v < 1e6 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{:.2}M", v / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_merges() {
        let mut a = Metrics::new();
        a.record(OpKind::Fork, 1000);
        a.record(OpKind::Touch, 100);
        a.record(OpKind::Touch, 0);
        a.seconds = 2.0;
        a.server.frames_peak = 10;
        let mut b = Metrics::new();
        b.record(OpKind::Touch, 300);
        b.seconds = 1.0;
        b.server.frames_peak = 20;
        b.server.faults = 3;
        b.verify = Some(VerifyCounts { checked: 4, ok: true, seconds: 0.0 });
        a.merge(&b);
        assert_eq!(a.ops, 4);
        assert_eq!(a.seconds, 2.0);
        assert_eq!(a.ops_per_sec(), 2.0);
        assert_eq!(a.server.frames_peak, 20);
        assert_eq!(a.server.faults, 3);
        assert_eq!(a.verify, Some(VerifyCounts { checked: 4, ok: true, seconds: 0.0 }));
        let per = a.per_op();
        assert_eq!(per["touch"].count, 3);
        assert_eq!(per["fork"].count, 1);
        assert!(!per.contains_key("exec"));
        let l = a.latency_summary();
        assert!(l.max >= 1000 && l.p50 <= 300);
    }

    #[test]
    fn json_has_the_contract_fields() {
        let mut m = Metrics::new();
        m.record(OpKind::Mmap, 50);
        m.seconds = 0.5;
        m.verify = Some(VerifyCounts { checked: 1, ok: true, seconds: 0.5 });
        let names = StrategyNames {
            alloc: "bitset".into(),
            paging: "x86-64".into(),
            fork: "cow".into(),
            zero: "on-fault".into(),
            folio: "4k".into(),
            huge: "never".into(),
        };
        let r = RunReport::new(&Workload::Storm { name: "mmap".into(), seed: 1, scale: 2 }, &names, 1, &m);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        for k in [
            "storm",
            "alloc",
            "paging",
            "fork",
            "zero",
            "shards",
            "ops",
            "seconds",
            "ops_per_sec",
            "faults",
            "cow_copies",
            "folio",
            "huge",
            "folio_figures",
            "huge_figures",
            "frames_peak",
            "pt_pages_peak",
            "latency_ns",
            "per_op",
            "verify",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["latency_ns"]["p50"], 50);
        assert_eq!(v["per_op"]["mmap"]["count"], 1);
        assert_eq!(v["per_op"]["mmap"]["ns_p50"], 50);
        assert_eq!(v["verify"]["ok"], true);
        assert!(v.get("trace").is_none());
        assert!(r.summary().contains("storm mmap"));
    }

    #[test]
    fn units() {
        assert_eq!(ns(850), "850 ns");
        assert_eq!(ns(12_300), "12.3 µs");
        assert_eq!(ns(4_560_000), "4.56 ms");
        assert_eq!(human(12_300.0), "12.3k");
    }
}
