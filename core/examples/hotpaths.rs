//! Hot-path probe for the VM server: ns/op medians and, under callgrind, Ir per op.
//!
//! Each measured operation is a `#[inline(never)]` function `op_*` doing exactly one
//! operation; setup and refills (the pre-zeroed pool, fresh regions, fresh children) run
//! outside them. Time: the median (and min/max) of per-batch ns/op over several batches.
//! Instructions: run under callgrind and divide each `op_*` function's inclusive Ir by the
//! number of calls printed here:
//!
//! ```text
//! cargo build --release -p vmstorm-core --example hotpaths
//! valgrind --tool=callgrind --callgrind-out-file=cg.out target/release/examples/hotpaths --quick
//! callgrind_annotate --inclusive=yes cg.out | grep 'hotpaths::op_'
//! ```
//!
//! Arguments: `--quick` (few iterations, for callgrind), `--sanity` (also time
//! `check_invariants` and `snapshot` over a loaded 1 GiB arena), an operation name to run
//! only that one.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use vmstorm_core::client::{self, ExecImage, MapFlags, MmapArgs};
use vmstorm_core::endpoint::{INIT_PROC_NR, PM_PROC_NR};
use vmstorm_core::message::{VM_FORK, VM_GETDMA, VM_WILLEXIT};
use vmstorm_core::*;

type V = Vm<Bitset, X86_64>;

static QUICK: AtomicBool = AtomicBool::new(false);

const W: Access = Access { write: true, user: true };

/// A 1 GiB server whose arena has been touched once, so that the host's first-touch
/// faults on the lazily backed mapping (a real machine's RAM is always there) stay out of
/// the measurements: most of the arena is mmap'd preallocated (zeroed), then unmapped.
fn boot(zero: ZeroPolicy) -> V {
    let cfg = VmConfig { zero, ..VmConfig::with_bytes(1 << 30) };
    let mut vm = V::boot(cfg).expect("boot");
    if QUICK.load(Ordering::Relaxed) {
        // Instruction counts do not depend on the host's first touches.
        return vm;
    }
    let len = (vm.free_frames() - 1024) * PAGE_SIZE;
    let all =
        MmapArgs { flags: MapFlags::ANON | MapFlags::PRIVATE | MapFlags::PREALLOC, ..MmapArgs::anon(len) };
    let a = client::mmap(&mut vm, INIT_PROC_NR, &all).expect("prefault");
    client::munmap(&mut vm, INIT_PROC_NR, a, len).expect("prefault");
    vm.idle();
    vm
}

struct Run {
    quick: bool,
    only: Option<String>,
    results: Vec<(String, u64, f64, f64, f64)>,
}

impl Run {
    fn wants(&self, name: &str) -> bool {
        self.only.as_deref().is_none_or(|o| name == o)
    }

    fn batches(&self) -> usize {
        if self.quick {
            2
        } else {
            21
        }
    }

    /// Runs `batch` (which performs `per` operations and returns the ns they took)
    /// `batches()` times after one warm-up; records median/min/max ns per op and the
    /// number of operations performed in total.
    fn measure(&mut self, name: &str, per: u64, mut batch: impl FnMut() -> u64) {
        let mut ns = Vec::new();
        let mut total = per;
        batch();
        for _ in 0..self.batches() {
            ns.push(batch() as f64 / per as f64);
            total += per;
        }
        ns.sort_by(f64::total_cmp);
        let med = ns[ns.len() / 2];
        let (lo, hi) = (ns[0], ns[ns.len() - 1]);
        println!("{name:<24} {med:>10.1} ns/op  (min {lo:.1}, max {hi:.1})  ops {total}");
        self.results.push((name.to_string(), total, med, lo, hi));
    }
}

#[inline(never)]
fn op_denied_call(vm: &mut V, m: &Message) -> Option<Message> {
    vm.handle(black_box(m), false)
}

#[inline(never)]
fn op_willexit_call(vm: &mut V, m: &Message) -> i32 {
    vm.handle(black_box(m), false).map_or(1, |r| r.mtype)
}

#[inline(never)]
fn op_getdma_call(vm: &mut V, m: &Message) -> i32 {
    vm.handle(black_box(m), false).map_or(i32::MIN, |r| r.mtype)
}

#[inline(never)]
fn op_fault_zero(vm: &mut V, ep: Endpoint, va: VirtAddr) {
    black_box(client::touch(vm, ep, va, W)).expect("fault");
}

#[inline(never)]
fn op_fault_zero_onfault(vm: &mut V, ep: Endpoint, va: VirtAddr) {
    black_box(client::touch(vm, ep, va, W)).expect("fault");
}

#[inline(never)]
fn op_cow_fault(vm: &mut V, ep: Endpoint, va: VirtAddr) {
    black_box(client::touch(vm, ep, va, W)).expect("fault");
}

#[inline(always)]
fn mmap_munmap(vm: &mut V, ep: Endpoint, len: u64) {
    let a = client::mmap(vm, ep, &MmapArgs::anon(len)).expect("mmap");
    client::munmap(vm, ep, a, len).expect("munmap");
}

#[inline(never)]
fn op_mmap_munmap_4k(vm: &mut V, ep: Endpoint) {
    mmap_munmap(vm, ep, PAGE_SIZE);
}

#[inline(never)]
fn op_mmap_munmap_1m(vm: &mut V, ep: Endpoint) {
    mmap_munmap(vm, ep, 1 << 20);
}

#[inline(never)]
fn op_fork_exec_exit(vm: &mut V, img: &ExecImage) {
    let c = client::fork(vm, INIT_PROC_NR).expect("fork");
    client::exec(vm, c, img).expect("exec");
    client::exit(vm, c).expect("exit");
}

#[inline(never)]
fn op_check_functions(vm: &V) {
    vm.check_invariants(SanityLevel::Functions).expect("sane");
}

#[inline(never)]
fn op_check_detail(vm: &V) {
    vm.check_invariants(SanityLevel::Detail).expect("sane");
}

#[inline(never)]
fn op_snapshot(vm: &V) -> VmSnapshot {
    vm.snapshot()
}

fn calls(r: &mut Run) {
    let mut vm = boot(ZeroPolicy::OnFault);
    let n = if r.quick { 1000 } else { 100_000 };
    if r.wants("denied_call") {
        let m = Message::new(INIT_PROC_NR, VM_FORK);
        r.measure("denied_call", n, || {
            let t = Instant::now();
            for _ in 0..n {
                black_box(op_denied_call(&mut vm, &m));
            }
            t.elapsed().as_nanos() as u64
        });
    }
    if r.wants("getdma_call") {
        // The cheapest call there is: PM asking for DMA memory to release (EAGAIN).
        let m = Message::new(PM_PROC_NR, VM_GETDMA);
        r.measure("getdma_call", n, || {
            let t = Instant::now();
            for _ in 0..n {
                black_box(op_getdma_call(&mut vm, &m));
            }
            t.elapsed().as_nanos() as u64
        });
    }
    if r.wants("willexit_call") {
        let c = client::fork(&mut vm, INIT_PROC_NR).expect("fork");
        let mut m = Message::new(PM_PROC_NR, VM_WILLEXIT);
        m.set_m1_i1(c.0);
        r.measure("willexit_call", n, || {
            let t = Instant::now();
            for _ in 0..n {
                black_box(op_willexit_call(&mut vm, &m));
            }
            t.elapsed().as_nanos() as u64
        });
    }
}

fn faults(r: &mut Run) {
    const BATCH: u64 = 32;
    let region = 64 << 20;
    for (name, zero) in [("fault_zero", ZeroPolicy::Prezeroed), ("fault_zero_onfault", ZeroPolicy::OnFault)] {
        if !r.wants(name) {
            continue;
        }
        let mut vm = boot(zero);
        let c = client::fork(&mut vm, INIT_PROC_NR).expect("fork");
        let mut base = client::mmap(&mut vm, c, &MmapArgs::anon(region)).expect("mmap");
        let mut next = 0u64;
        let rounds = if r.quick { 8 } else { 64 };
        r.measure(name, BATCH * rounds, || {
            let mut ns = 0;
            for _ in 0..rounds {
                if (next + BATCH) * PAGE_SIZE > region {
                    client::munmap(&mut vm, c, base, region).expect("munmap");
                    base = client::mmap(&mut vm, c, &MmapArgs::anon(region)).expect("mmap");
                    next = 0;
                }
                vm.idle();
                let t = Instant::now();
                for i in 0..BATCH {
                    let va = VirtAddr(base.0 + (next + i) * PAGE_SIZE);
                    if zero == ZeroPolicy::Prezeroed {
                        op_fault_zero(&mut vm, c, va);
                    } else {
                        op_fault_zero_onfault(&mut vm, c, va);
                    }
                }
                ns += t.elapsed().as_nanos() as u64;
                next += BATCH;
            }
            ns
        });
    }
    if r.wants("cow_fault") {
        let mut vm = boot(ZeroPolicy::Prezeroed);
        let pages = 256u64;
        let c = client::fork(&mut vm, INIT_PROC_NR).expect("fork");
        let base = client::mmap(&mut vm, c, &MmapArgs::anon(pages * PAGE_SIZE)).expect("mmap");
        for i in 0..pages {
            client::write_user(&mut vm, c, VirtAddr(base.0 + i * PAGE_SIZE), &[i as u8 | 1]).expect("w");
        }
        let rounds = if r.quick { 1 } else { 8 };
        r.measure("cow_fault", pages * rounds, || {
            let mut ns = 0;
            for _ in 0..rounds {
                let g = client::fork(&mut vm, c).expect("fork");
                vm.idle();
                let t = Instant::now();
                for i in 0..pages {
                    op_cow_fault(&mut vm, g, VirtAddr(base.0 + i * PAGE_SIZE));
                }
                ns += t.elapsed().as_nanos() as u64;
                client::exit(&mut vm, g).expect("exit");
            }
            ns
        });
    }
}

fn maps(r: &mut Run) {
    let n = if r.quick { 1000 } else { 50_000 };
    for (name, len) in [("mmap_munmap_4k", PAGE_SIZE), ("mmap_munmap_1m", 1 << 20)] {
        if !r.wants(name) {
            continue;
        }
        let mut vm = boot(ZeroPolicy::OnFault);
        let c = client::fork(&mut vm, INIT_PROC_NR).expect("fork");
        r.measure(name, n, || {
            let t = Instant::now();
            for _ in 0..n {
                if len == PAGE_SIZE {
                    op_mmap_munmap_4k(&mut vm, c);
                } else {
                    op_mmap_munmap_1m(&mut vm, c);
                }
            }
            t.elapsed().as_nanos() as u64
        });
    }
    if r.wants("fork_exec_exit") {
        let mut vm = boot(ZeroPolicy::Prezeroed);
        let img = ExecImage {
            text_bytes: 4 * PAGE_SIZE,
            data_bytes: 2 * PAGE_SIZE,
            bss_bytes: 2 * PAGE_SIZE,
            stack_bytes: 16 * PAGE_SIZE,
        };
        let n = if r.quick { 200 } else { 5_000 };
        r.measure("fork_exec_exit", n, || {
            let t = Instant::now();
            for _ in 0..n {
                op_fork_exec_exit(&mut vm, &img);
                vm.idle();
            }
            t.elapsed().as_nanos() as u64
        });
    }
}

/// A 1 GiB server with `procs` children of INIT, each with `pages` touched pages.
fn loaded(procs: u64, pages: u64) -> V {
    let mut vm = boot(ZeroPolicy::OnFault);
    for _ in 0..procs {
        let c = client::fork(&mut vm, INIT_PROC_NR).expect("fork");
        let base = client::mmap(&mut vm, c, &MmapArgs::anon(pages * PAGE_SIZE)).expect("mmap");
        for i in 0..pages {
            client::touch(&mut vm, c, VirtAddr(base.0 + i * PAGE_SIZE), W).expect("touch");
        }
    }
    vm
}

fn sanity(r: &mut Run) {
    let vm = loaded(16, 256);
    println!("sanity over 1 GiB: {} processes, {} frames in use", vm.processes(), vm.frames_in_use());
    let n = if r.quick { 1 } else { 5 };
    r.measure("check_functions", n, || {
        let t = Instant::now();
        for _ in 0..n {
            op_check_functions(&vm);
        }
        t.elapsed().as_nanos() as u64
    });
    r.measure("check_detail", n, || {
        let t = Instant::now();
        for _ in 0..n {
            op_check_detail(&vm);
        }
        t.elapsed().as_nanos() as u64
    });
    r.measure("snapshot", n, || {
        let t = Instant::now();
        for _ in 0..n {
            black_box(op_snapshot(&vm));
        }
        t.elapsed().as_nanos() as u64
    });
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    QUICK.store(quick, Ordering::Relaxed);
    let with_sanity = args.iter().any(|a| a == "--sanity");
    let only = args.iter().find(|a| !a.starts_with("--")).cloned();
    let mut r = Run { quick, only, results: Vec::new() };
    calls(&mut r);
    faults(&mut r);
    maps(&mut r);
    if with_sanity {
        sanity(&mut r);
    }
    println!("# calls per op function (divide callgrind inclusive Ir by these)");
    for (name, total, ..) in &r.results {
        println!("calls op_{name} {total}");
    }
}
