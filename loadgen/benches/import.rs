//! Loading strace logs with many live mappings (Criterion, wall clock): the importer, the
//! consistency check and touch synthesis must stay linear in the number of live mappings.
//!
//! Each log is synthetic: one process maps N one-page anonymous mappings (none unmapped),
//! then changes the protection of each, then exits — 2N + 2 calls, N mappings live at the
//! end. Groups: `load` (import + validate, what `import` and `replay` do first) and
//! `load_touch` (the same plus touch synthesis at the default fraction, what `replay` of a
//! raw log plays). Per-element throughput is per mapping; linear loading shows as a constant
//! time per mapping across N = 5k, 10k, 20k and 40k.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use vmstorm_loadgen::trace::{self, ensure_touches, ImportOptions, TouchOptions};

/// An strace log of one process with `n` live one-page mappings.
fn log(n: u64) -> String {
    let mut s = String::with_capacity(n as usize * 200);
    s.push_str("100  execve(\"/bin/many\", [\"many\"], 0x7ffd0000 /* 1 vars */) = 0\n");
    let base = 0x7f00_0000_0000u64;
    for i in 0..n {
        // Every other page, so no two mappings touch.
        let a = base + i * 0x2000;
        s.push_str(&format!(
            "100  mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = {a:#x}\n"
        ));
    }
    for i in 0..n {
        let a = base + i * 0x2000;
        s.push_str(&format!("100  mprotect({a:#x}, 4096, PROT_READ) = 0\n"));
    }
    s.push_str("100  exit_group(0)                     = ?\n100  +++ exited with 0 +++\n");
    s
}

fn bench(c: &mut Criterion) {
    let opts = ImportOptions::default();
    for (group, touch) in [("load", false), ("load_touch", true)] {
        let mut g = c.benchmark_group(group);
        g.sample_size(10);
        for n in [5_000u64, 10_000, 20_000, 40_000] {
            let text = log(n);
            g.throughput(Throughput::Elements(n));
            g.bench_function(format!("{}k_mappings", n / 1000), |b| {
                b.iter(|| {
                    let loaded = trace::load_bytes(text.as_bytes(), "many.strace", &opts).expect("loads");
                    if touch {
                        let t = ensure_touches(loaded.trace, &TouchOptions::default()).expect("touches");
                        black_box(t.ops.len())
                    } else {
                        black_box(loaded.trace.ops.len())
                    }
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
