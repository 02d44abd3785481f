//! `vmstorm compare`: workloads × strategies, measured one cell at a time, reported as a
//! terminal table and a Markdown report with SVG charts.
//!
//! A cell is one workload (a storm, an embedded trace, or the user's own capture) played
//! into one server strategy (frame allocator × hot list × page-table format × fork policy ×
//! zeroing policy). Traces are generated in parallel before anything is timed; cells then
//! run one after the other, each on a fresh server, with an untimed warm-up pass, so that no
//! measurement overlaps another (on a 2-core machine two cells side by side would share
//! caches, memory bandwidth and, with other work on the machine, cores, and their numbers
//! would say more about scheduling than about the strategies). Every cell is timed in
//! several rounds, each on a freshly booted server and long enough to measure, and the
//! rounds of all cells are interleaved, so a burst of load on the machine spreads over every
//! strategy instead of sinking one; the report gives the median and the spread, and calls a
//! difference smaller than the spread a tie. A sweep too large for one machine is split
//! with `--cells`/`--cell N`/`--merge DIR`. MINIX compared its allocators by rebuilding the
//! system; this is that comparison made one command.

mod charts;
mod clock;
mod matrix;
pub mod report;

use serde::{Deserialize, Serialize};

use crate::metrics::{Metrics, RunReport};

pub use matrix::{run, CompareOutcome};
pub use report::{terminal_table, ReportMeta};

/// Copies the default-against-fastest table of the written report `report` into `readme`,
/// between its summary markers: the README's table is the report's, not typed by hand.
///
/// # Errors
/// An unreadable file, a report without the table, or a README without the markers.
pub fn publish_summary(report: &std::path::Path, readme: &std::path::Path) -> Result<(), String> {
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).map_err(|e| format!("{}: cannot read: {e}", p.display()))
    };
    let md = read(report)?;
    let summary = report::summary_of(&md).ok_or_else(|| {
        format!(
            "{}: no default-against-fastest table (is the default strategy in the comparison?)",
            report.display()
        )
    })?;
    let text = read(readme)?;
    let new = report::splice_summary(&text, summary).map_err(|e| format!("{}: {e}", readme.display()))?;
    std::fs::write(readme, new).map_err(|e| format!("{}: cannot write: {e}", readme.display()))
}

/// The percentiles kept for latency charts.
const QUANTILES: [f64; 12] = [0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99999];

/// One measured cell of the matrix (also the `cell-N.json` file of `--cell N`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cell {
    /// Workload label (storm name or trace name).
    pub workload: String,
    /// Strategy label, e.g. `bitset/x86-64` or `buddy/i386/copy`.
    pub strategy: String,
    /// The cell's full report (what `--json` would write).
    pub report: RunReport,
    /// `(quantile, latency ns)` points of the op latency distribution.
    pub percentiles: Vec<(f64, u64)>,
    /// Throughput (ops/s) of every timing round, in the order they ran.
    #[serde(default)]
    pub rounds: Vec<f64>,
}

impl Cell {
    /// A cell from a run's report and metrics.
    pub fn new(workload: String, strategy: String, report: RunReport, metrics: &Metrics) -> Cell {
        let h = &metrics.latency;
        let percentiles = if h.is_empty() {
            Vec::new()
        } else {
            QUANTILES.iter().map(|&q| (q, h.value_at_quantile(q))).collect()
        };
        Cell { workload, strategy, report, percentiles, rounds: Vec::new() }
    }

    /// Throughput of the cell: the median of its rounds (the single pass's when it has no
    /// rounds).
    pub fn ops_per_sec(&self) -> f64 {
        if self.rounds.is_empty() {
            return self.report.ops_per_sec;
        }
        let mut r = self.rounds.clone();
        r.sort_by(f64::total_cmp);
        let n = r.len();
        if n % 2 == 1 {
            r[n / 2]
        } else {
            (r[n / 2 - 1] + r[n / 2]) / 2.0
        }
    }

    /// Lowest and highest round throughput (both the median when there are no rounds).
    pub fn range(&self) -> (f64, f64) {
        let lo = self.rounds.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = self.rounds.iter().copied().fold(0.0f64, f64::max);
        if self.rounds.is_empty() {
            (self.ops_per_sec(), self.ops_per_sec())
        } else {
            (lo, hi)
        }
    }

    /// Half the range of the rounds relative to the median: the `±` of the report.
    pub fn spread(&self) -> f64 {
        let (lo, hi) = self.range();
        let m = self.ops_per_sec();
        if m > 0.0 {
            (hi - lo) / 2.0 / m
        } else {
            0.0
        }
    }

    /// Whether this cell and `other` cannot be told apart: their round ranges overlap.
    pub fn ties(&self, other: &Cell) -> bool {
        let (a_lo, a_hi) = self.range();
        let (b_lo, b_hi) = other.range();
        a_lo <= b_hi && b_lo <= a_hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{StrategyNames, Workload};
    use crate::op::OpKind;
    use crate::strategy::Strategy;

    fn cell(w: &str, s: &str, base: u64) -> Cell {
        let mut m = Metrics::new();
        for i in 0..1000 {
            m.record(OpKind::Touch, base + i);
        }
        m.record(OpKind::Fork, base * 50);
        m.seconds = base as f64 / 1000.0;
        let names = StrategyNames {
            alloc: s.split('/').next().unwrap_or("").into(),
            paging: "x86-64".into(),
            fork: "cow".into(),
            zero: "on-fault".into(),
            folio: "4k".into(),
            huge: "never".into(),
        };
        let r = RunReport::new(&Workload::Storm { name: w.into(), seed: 1, scale: 1 }, &names, 1, &m);
        Cell::new(w.into(), s.into(), r, &m)
    }

    fn rounds(mut c: Cell, r: &[f64]) -> Cell {
        c.rounds = r.to_vec();
        c
    }

    #[test]
    fn the_default_is_set_beside_the_fastest_and_the_readme_gets_the_reports_table() {
        let d = Strategy::default().label();
        let cells = vec![
            rounds(cell("fork", &d, 100), &[100.0, 110.0, 120.0]),
            rounds(cell("fork", "buddy/x86-64", 100), &[200.0, 210.0, 220.0]),
            rounds(cell("exec", &d, 100), &[97.0, 98.0, 99.0]),
            rounds(cell("exec", "buddy/x86-64", 100), &[100.0, 101.0, 102.0]),
            rounds(cell("cow", &d, 100), &[80.0, 90.0, 100.0]),
            rounds(cell("cow", "buddy/x86-64", 100), &[95.0, 100.0, 105.0]),
            rounds(cell("brk", &d, 100), &[300.0, 300.0, 300.0]),
            rounds(cell("brk", "buddy/x86-64", 100), &[100.0, 100.0, 100.0]),
        ];
        let verdicts: Vec<String> = report::standings(&cells)
            .iter()
            .map(|(w, s)| format!("{w}: {}", report::Standing::verdict(s.default, s.best)))
            .collect();
        assert_eq!(
            verdicts,
            ["fork: -48 %", "exec: -3 % (within 5 %)", "cow: -10 % (tie: inside the spread)", "brk: fastest"]
        );
        let table = terminal_table(&cells);
        assert!(table.contains(&format!("default {d} against the fastest")), "{table}");
        assert!(table.contains("-48 % of buddy/x86-64"), "{table}");

        let dir = std::env::temp_dir().join(format!("vmstorm-summary-test-{}", std::process::id()));
        let meta =
            ReportMeta { command: "vmstorm compare --quick".into(), rounds: 3, ..ReportMeta::default() };
        let files = report::write(&dir, &cells, &meta).unwrap();
        let md = std::fs::read_to_string(&files[0]).unwrap();
        let summary = report::summary_of(&md).unwrap();
        assert!(summary.contains("| `fork` | 110 ±9% | buddy/x86-64 210 ±5% | -48 % |"), "{summary}");
        let readme = dir.join("README.md");
        std::fs::write(
            &readme,
            format!("intro\n{}old\n{}\nafter\n", report::SUMMARY_BEGIN, report::SUMMARY_END),
        )
        .unwrap();
        publish_summary(&files[0], &readme).unwrap();
        let text = std::fs::read_to_string(&readme).unwrap();
        assert_eq!(text, format!("intro\n{summary}after\n"));
        // Publishing twice changes nothing; a README without the markers is one error.
        publish_summary(&files[0], &readme).unwrap();
        assert_eq!(std::fs::read_to_string(&readme).unwrap(), text);
        std::fs::write(&readme, "no markers\n").unwrap();
        let e = publish_summary(&files[0], &readme).unwrap_err();
        assert!(e.contains("README.md") && e.contains("compare-summary") && !e.contains('\n'), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn report_writes_markdown_json_and_charts() {
        let cells = vec![
            cell("fork", "bitset/x86-64", 100),
            cell("fork", "buddy/x86-64", 120),
            cell("fault", "bitset/x86-64", 300),
            cell("fault", "buddy/x86-64", 200),
        ];
        let dir = std::env::temp_dir().join(format!("vmstorm-report-test-{}", std::process::id()));
        let meta = ReportMeta {
            command: "vmstorm compare --quick".into(),
            seed: 1,
            mem_bytes: 1 << 30,
            ..ReportMeta::default()
        };
        let files = report::write(&dir, &cells, &meta).unwrap();
        let md = std::fs::read_to_string(dir.join("REPORT.md")).unwrap();
        assert!(md.contains("| `fork` |"), "{md}");
        assert!(!md.contains("a touch op is one page)"), "a trace's touch op may cover several pages");
        assert!(md.contains("![throughput](throughput.svg)"));
        let svg = std::fs::read_to_string(dir.join("throughput.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("bitset/x86-64"));
        let lat = std::fs::read_to_string(dir.join("latency-fault.svg")).unwrap();
        assert!(lat.contains("<polyline") || lat.contains("<path"), "no curve drawn");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
        assert_eq!(json.as_array().map(|a| a.len()), Some(4));
        assert_eq!(files.len(), 5);
        let table = terminal_table(&cells);
        // Header, two rows, the legend; no default strategy in these cells, so no summary.
        assert!(table.lines().count() == 4 && table.contains("*"), "{table}");
        assert!(!md.contains(report::SUMMARY_BEGIN));
        if std::env::var_os("VMSTORM_KEEP_REPORT").is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
