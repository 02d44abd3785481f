//! Import speed of perf captures: records per second through the whole importer (layout
//! check, decoding, time ordering, the emitter, fault placement and the protection check).
//!
//! The capture is about 20,000 faults: recorded here at setup (outside the timing) when perf
//! may record tracepoints (`perf record` of a Python process writing a 48 MiB buffer, with
//! the README's event list), else the largest committed fixture (`make -j2`, 7,155 faults).
//! Set `VMSTORM_PERF_CAPTURE=FILE` to import another capture.
//!
//! Two measurements: wall time (Criterion's default) and the benchmark thread's CPU time
//! (from `/proc/thread-self/schedstat`, nanoseconds on the CPU), which stays meaningful
//! when the machine is shared and the thread waits for a core.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vmstorm_loadgen::trace::record::perf_command;
use vmstorm_loadgen::trace::{import_perf, ImportOptions};

fn fixture() -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../loadgen/tests/fixtures/perf/make.perf.data.gz");
    let gz = std::fs::read(p).expect("make fixture");
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut out).expect("gzip fixture");
    out
}

fn record_20k() -> Option<Vec<u8>> {
    let out: PathBuf = std::env::temp_dir().join("vmstorm-bench-20k.perf.data");
    if !out.exists() {
        let status = Command::new("perf")
            .args(perf_command(&out))
            .args(["--", "python3", "-S", "-c", "b = b'\\x01' * (48 << 20)"])
            .status()
            .ok()?;
        if !status.success() {
            return None;
        }
    }
    std::fs::read(out).ok()
}

fn capture() -> (Vec<u8>, String) {
    if let Ok(p) = std::env::var("VMSTORM_PERF_CAPTURE") {
        return (std::fs::read(&p).expect("VMSTORM_PERF_CAPTURE"), p);
    }
    match record_20k() {
        Some(b) => (b, "python 48 MiB write (recorded)".into()),
        None => (fixture(), "make -j2 fixture".into()),
    }
}

/// Nanoseconds this thread has run on a CPU.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// CPU time of the measuring thread.
struct CpuTime(WallTime);

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = Duration;
    fn start(&self) -> u64 {
        cpu_ns()
    }
    fn end(&self, i: u64) -> Duration {
        Duration::from_nanos(cpu_ns().saturating_sub(i))
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        self.0.formatter()
    }
}

fn bench_cpu(c: &mut Criterion<CpuTime>) {
    let (bytes, _) = capture();
    let opts = ImportOptions::default();
    let records = import_perf(&bytes, "bench.perf.data", &opts).expect("capture imports").1.records;
    let mut g = c.benchmark_group("perf_import_cpu");
    g.sample_size(20);
    g.throughput(Throughput::Elements(records));
    g.bench_function("records", |b| {
        b.iter(|| import_perf(&bytes, "bench.perf.data", &opts).map(|t| t.0.ops.len()))
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    let (bytes, what) = capture();
    let opts = ImportOptions::default();
    let (trace, report) = import_perf(&bytes, "bench.perf.data", &opts).expect("capture imports");
    eprintln!(
        "perf_import: {what}: {} records, {} faults, {} ops",
        report.records,
        report.recorded.faults,
        trace.ops.len()
    );
    let mut g = c.benchmark_group("perf_import");
    g.sample_size(20);
    g.throughput(Throughput::Elements(report.records));
    g.bench_function("records", |b| {
        b.iter(|| import_perf(&bytes, "bench.perf.data", &opts).map(|t| t.0.ops.len()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(CpuTime(WallTime));
    targets = bench_cpu
}
criterion_main!(benches, cpu);
