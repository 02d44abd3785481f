//! Wall-clock benches (Criterion). Every group puts our strategies and the peer crates of
//! `reference/anchors.md` side by side over the same workload, and the `linux` group times
//! the host kernel in the same run, so each ratio in `results/RATIOS.md` comes from one run.
//!
//! Matrix (group / function ids; ours are `ours-*`, peers `peer-*`):
//!
//! | group | candidates | one iteration |
//! |---|---|---|
//! | `frames_fragmented` | every allocator of the registry (bitset, buddy, holelist, lifo) and the default's hot list in front of buddy (`hot+buddy`); bitmap-allocator, buddy_system_allocator, frame-alloc | free a random live frame + alloc one (262,144 frames, half free) |
//! | `frames_contig16` | same | alloc 16 contiguous + free (lower half fragmented, upper 75 % free 512-blocks) |
//! | `frames_contig512` | same | alloc 512 contiguous, 2 MiB-aligned + free |
//! | `map_seq` | x86-64, i386; x86_64 OffsetPageTable, page_table_multiarch | map_range of 512 pages (per-page time = /512) |
//! | `translate_seq` | same | translate one page, sequential over 65,536 mapped pages |
//! | `translate_random` | same | translate one random page of 65,536 spread over 1,024 leaf tables (tables beyond L2) |
//! | `unmap_seq` | same | unmap_range of 512 pages |
//! | `fork_tables_1k`, `fork_tables_100k` | x86-64, i386 (`fork_copy`, per-page COW and shared leaf tables); x86_64 OffsetPageTable (its tables iterated level by level into a child whose table frames are already backed: no peer has a copy API) | copy an address space of 1,000 / 100,000 sequential pages |
//! | `vm_*` | server `Vm` over the default strategy's allocator (`hot+buddy`: a hot list in front of buddy) × {x86-64, i386}; bitset (next-fit, cold frames) and `hot+bitset` where locality is the question | dispatch+ACL+reply in place (the reply in the request's buffer, as MINIX answers); demand-zero faults zeroing in the fault, and pre-zeroed with the pool's refill timed (amortized per fault), each touch writing a byte into its page; refaults right after a free (hot lists vs cold frames); COW faults; first write under a shared leaf table; fork 1k/100k (cow, share: warm loop, fork+exit, cold caches; copy), exec, mmap+munmap, brk, fork+exit |
//! | `storm_mixed` | the default strategy, 1 shard and 2 shards (rayon threads) | one mixed storm's worth of ops (2 shards: aggregate time per storm) |
//! | `folio_fault` | server over hot+buddy/x86-64 at 4, 16, 64 KiB anonymous folios; zeroing 4 KiB (one frame, hot; frames in turn over 512 MiB, cold); the host at 16 and 64 KiB mTHP (only with `VMSTORM_MTHP=1` as root; knobs restored) | one 4 KiB page touched by a write (a folio fault maps the block, the other touches hit) |
//! | `linux` | the host kernel through libc | a null system call (the price of one kernel entry, shown beside every Linux ratio), page_fault1, COW fault after fork, mmap1 (128 MiB), brk1, fork+exit+wait, fork+exec+wait |
//!
//! Set-up happens outside the timed part (`iter_custom`); sizes are small enough that
//! `cargo bench --workspace --bench time` finishes in a few minutes.

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};
use vmstorm_bench::frame_workload::{Contiguous, Fragmented, Frames, POOL_FRAMES};
use vmstorm_bench::linux;
use vmstorm_bench::mthp::MthpSetting;
use vmstorm_bench::ours_paging::Ours;
use vmstorm_bench::paging_workload::{PageTables, RandomTranslate, SEQ_VA, TABLE_FRAMES_START};
use vmstorm_bench::peers::{BitmapAllocator, BuddySystem, Multiarch, OffsetPt, SummaryBuddy};
use vmstorm_bench::vm_workload::{self as vmw, boot, boot_large, Large};
use vmstorm_core::client;
use vmstorm_core::endpoint::INIT_PROC_NR as INIT;
use vmstorm_core::frames::AllocJob;
use vmstorm_core::paging::layout::{entries, Layout};
use vmstorm_core::server::{FolioSize, HugePolicy, Vm, ZeroPolicy};
use vmstorm_core::{
    AllocKind, Bitset, Buddy, ForkPolicy, FrameAllocator, HotList, PagingFormat, VirtAddr, I386, X86_64,
};
use vmstorm_loadgen::shards::run_shards;
use vmstorm_loadgen::storms::{generate, StormKind};
use vmstorm_loadgen::strategy::Strategy;

const SEED: u64 = 0x5EED_2026;
/// Pages per map/unmap iteration: one leaf table's worth on x86-64.
const CHUNK: u64 = 512;

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .without_plots()
}

fn fragmented<A: Frames>(g: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
    let mut w = Fragmented::<A>::build(POOL_FRAMES, SEED);
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                w.step();
            }
            t.elapsed()
        })
    });
}

fn contiguous<A: Frames>(g: &mut BenchmarkGroup<'_, WallTime>, id: &str, count: u64, align: u64) {
    let mut w = Contiguous::<A>::build(POOL_FRAMES, count, align, SEED);
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                w.step();
            }
            t.elapsed()
        })
    });
}

/// One of our strategies (every one of the registry) in a frames group: fragmented, or
/// contiguous runs of `(count, align)`.
struct OurFrames<'g, 'c>(&'g mut BenchmarkGroup<'c, WallTime>, AllocKind, Option<(u64, u64)>);

impl AllocJob for OurFrames<'_, '_> {
    type Output = ();
    fn run<F: FrameAllocator>(self) {
        let id = format!("ours-{}", self.1);
        match self.2 {
            None => fragmented::<F>(self.0, &id),
            Some((count, align)) => contiguous::<F>(self.0, &id, count, align),
        }
    }
}

fn frame_groups(c: &mut Criterion) {
    let mut g = c.benchmark_group("frames_fragmented");
    for &kind in AllocKind::ALL {
        kind.dispatch(OurFrames(&mut g, kind, None));
    }
    fragmented::<DefaultFrames>(&mut g, "ours-hot+buddy");
    fragmented::<BitmapAllocator>(&mut g, "peer-bitmap-allocator");
    fragmented::<BuddySystem>(&mut g, "peer-buddy_system_allocator");
    fragmented::<SummaryBuddy>(&mut g, "peer-frame-alloc");
    g.finish();

    for (name, count, align) in [("frames_contig16", 16, 1), ("frames_contig512", 512, 512)] {
        let mut g = c.benchmark_group(name);
        for &kind in AllocKind::ALL {
            kind.dispatch(OurFrames(&mut g, kind, Some((count, align))));
        }
        contiguous::<DefaultFrames>(&mut g, "ours-hot+buddy", count, align);
        contiguous::<BitmapAllocator>(&mut g, "peer-bitmap-allocator", count, align);
        contiguous::<BuddySystem>(&mut g, "peer-buddy_system_allocator", count, align);
        contiguous::<SummaryBuddy>(&mut g, "peer-frame-alloc", count, align);
        g.finish();
    }
}

/// Maps successive 512-page chunks into fresh spaces; only the map_range calls are timed.
fn map_seq<P: PageTables>(g: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
    let per_space = TABLE_FRAMES_START / CHUNK;
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let mut pt = P::new_space();
                let n = (iters - done).min(per_space);
                let t = Instant::now();
                for k in 0..n {
                    pt.map_range(SEQ_VA + k * CHUNK * 4096, k * CHUNK, CHUNK);
                }
                total += t.elapsed();
                done += n;
            }
            total
        })
    });
}

/// Unmaps successive 512-page chunks of a fully mapped space; only unmap_range is timed.
fn unmap_seq<P: PageTables>(g: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
    let per_space = TABLE_FRAMES_START / CHUNK;
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let mut pt = P::new_space();
                pt.map_range(SEQ_VA, 0, TABLE_FRAMES_START);
                let n = (iters - done).min(per_space);
                let t = Instant::now();
                for k in 0..n {
                    pt.unmap_range(SEQ_VA + k * CHUNK * 4096, CHUNK);
                }
                total += t.elapsed();
                done += n;
            }
            total
        })
    });
}

/// Translates the pages of a 65,536-page sequential mapping in order, cyclically.
fn translate_seq<P: PageTables>(g: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
    let mut pt = P::new_space();
    pt.map_range(SEQ_VA, 0, TABLE_FRAMES_START);
    let mut i = 0u64;
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(pt.translate(SEQ_VA + (i << 12)));
                i = (i + 1) % TABLE_FRAMES_START;
            }
            t.elapsed()
        })
    });
}

fn translate_random<P: PageTables>(g: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
    let mut w = RandomTranslate::<P>::build(SEED);
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(w.step());
            }
            t.elapsed()
        })
    });
}

/// Our table-level fork (`fork_copy`, per-page copy-on-write or shared leaf tables) of
/// `pages` sequential pages; the child is destroyed untimed.
fn fork_tables_ours<P: PagingFormat>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    mode: ForkPolicy,
    pages: u64,
) {
    let mut pt = Ours::<P>::with_data_frames(pages);
    pt.map_range(SEQ_VA, 0, pages);
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                let child = P::fork_copy(&mut pt.mem, pt.root, mode).expect("fork_copy");
                total += t.elapsed();
                P::destroy(&mut pt.mem, child);
            }
            total
        })
    });
}

/// A peer's fork into a fresh child (made untimed, its table frames already backed by the
/// host): the peer's best way to copy an address space ([`PageTables::fork_into`]: a walk
/// that iterates the parent's tables where the crate exposes them, as x86_64's does).
fn fork_tables_peer<P: PageTables>(g: &mut BenchmarkGroup<'_, WallTime>, id: &str, pages: u64) {
    let mut parent = P::with_data_frames(pages);
    parent.map_range(SEQ_VA, 0, pages);
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut child = P::with_data_frames(pages);
                let t = Instant::now();
                parent.fork_into(&mut child, SEQ_VA, pages);
                total += t.elapsed();
            }
            total
        })
    });
}

fn fork_table_groups(c: &mut Criterion) {
    for (name, pages) in [("fork_tables_1k", 1_000), ("fork_tables_100k", 100_000)] {
        let mut g = c.benchmark_group(name);
        fork_tables_ours::<X86_64>(&mut g, "ours-x86-64", ForkPolicy::Cow, pages);
        fork_tables_ours::<I386>(&mut g, "ours-i386", ForkPolicy::Cow, pages);
        fork_tables_ours::<X86_64>(&mut g, "ours-share-x86-64", ForkPolicy::Share, pages);
        fork_tables_ours::<I386>(&mut g, "ours-share-i386", ForkPolicy::Share, pages);
        fork_tables_peer::<OffsetPt>(&mut g, "peer-x86_64", pages);
        g.finish();
    }
}

fn paging_groups(c: &mut Criterion) {
    let mut g = c.benchmark_group("map_seq");
    g.throughput(Throughput::Elements(CHUNK));
    map_seq::<Ours<X86_64>>(&mut g, "ours-x86-64");
    map_seq::<Ours<I386>>(&mut g, "ours-i386");
    map_seq::<OffsetPt>(&mut g, "peer-x86_64");
    map_seq::<Multiarch>(&mut g, "peer-page_table_multiarch");
    g.finish();

    let mut g = c.benchmark_group("translate_seq");
    translate_seq::<Ours<X86_64>>(&mut g, "ours-x86-64");
    translate_seq::<Ours<I386>>(&mut g, "ours-i386");
    translate_seq::<OffsetPt>(&mut g, "peer-x86_64");
    translate_seq::<Multiarch>(&mut g, "peer-page_table_multiarch");
    g.finish();

    let mut g = c.benchmark_group("translate_random");
    translate_random::<Ours<X86_64>>(&mut g, "ours-x86-64");
    translate_random::<Ours<I386>>(&mut g, "ours-i386");
    translate_random::<OffsetPt>(&mut g, "peer-x86_64");
    translate_random::<Multiarch>(&mut g, "peer-page_table_multiarch");
    g.finish();

    let mut g = c.benchmark_group("unmap_seq");
    g.throughput(Throughput::Elements(CHUNK));
    unmap_seq::<Ours<X86_64>>(&mut g, "ours-x86-64");
    unmap_seq::<Ours<I386>>(&mut g, "ours-i386");
    unmap_seq::<OffsetPt>(&mut g, "peer-x86_64");
    unmap_seq::<Multiarch>(&mut g, "peer-page_table_multiarch");
    g.finish();
}

/// The default strategy's frame allocator ([`Strategy::DEFAULT`]: a hot list in front of
/// buddy). The `vm_*` rows named `hot+buddy` run it; [`check_default`] stops the bench if
/// the default moves on without this alias.
type DefaultFrames = HotList<Buddy>;

/// Panics when [`Strategy::DEFAULT`]'s allocator is no longer [`DefaultFrames`].
fn check_default() {
    let d = Strategy::DEFAULT;
    assert!(
        d.hot && d.alloc == AllocKind::Buddy,
        "the default strategy is {}: update DefaultFrames in benches/time.rs",
        d.label()
    );
}

fn small_vm<F: FrameAllocator, P: PagingFormat>() -> Vm<F, P> {
    boot(256 << 20, ForkPolicy::Cow, ZeroPolicy::OnFault, true)
}

fn vm_dispatch<F: FrameAllocator, P: PagingFormat>(g: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
    let mut vm = small_vm::<F, P>();
    let mut msg = vmw::trivial_call();
    g.bench_function(id, |b| b.iter(|| vmw::dispatch_in_place(&mut vm, black_box(&mut msg))));
}

/// Demand-zero write faults on fresh anonymous memory, `chunk` pages per mapping: each
/// touch writes a byte into the page, as a program (and Linux's page_fault1) does. With
/// [`ZeroPolicy::OnFault`] the frame is zeroed in the fault; with
/// [`ZeroPolicy::Prezeroed`] the faults take pre-zeroed frames and the refill of the pool
/// (`idle`) is timed with them, so the figure is the amortized cost per fault when faults
/// come faster than idle time. Mapping and unmapping are not timed.
fn vm_fault_zero<F: FrameAllocator, P: PagingFormat>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    zero: ZeroPolicy,
    large: Large,
) {
    let mut vm: Vm<F, P> = boot_large(512 << 20, ForkPolicy::Cow, zero, true, large);
    let chunk =
        if zero == ZeroPolicy::Prezeroed { vmstorm_core::server::PREZERO_POOL as u64 } else { 16_384 };
    // With huge pages the touches start at a 4 MiB boundary (a huge-page boundary of both
    // formats) of a region 4 MiB larger, as Linux aligns an anonymous mapping whose length
    // is a multiple of 2 MiB: every block of the chunk can be one huge page.
    let slack: u64 = if large.huge == HugePolicy::Always { 1024 } else { 0 };
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let (mut total, mut done) = (Duration::ZERO, 0);
            while done < iters {
                let n = (iters - done).min(chunk);
                let region = vmw::map_untouched(&mut vm, INIT, n + slack);
                let va = VirtAddr(region.0.next_multiple_of(slack.max(1) << 12));
                let t = Instant::now();
                vmw::touch_pages(&mut vm, INIT, va, n);
                vm.idle();
                total += t.elapsed();
                client::munmap(&mut vm, INIT, region, (n + slack) << 12).expect("munmap");
                done += n;
            }
            total
        })
    });
}

/// Pages faulted in, unmapped and faulted in again per round of the locality bench: 1 MiB,
/// as many as the hot list holds at most.
const REFAULT_PAGES: u64 = 256;

/// Locality: demand-zero faults right after as many pages were unmapped, as a program that
/// frees and allocates in a loop does. Over `HotList<Bitset>` the faults get the frames
/// just freed back (cache-hot); over the bare bitset next-fit hands out frames that have
/// not been touched for a while (cold). Only the faults of the second mapping are timed.
fn vm_fault_refault<F: FrameAllocator>(g: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
    let mut vm: Vm<F, X86_64> = boot(512 << 20, ForkPolicy::Cow, ZeroPolicy::OnFault, true);
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let (mut total, mut done) = (Duration::ZERO, 0);
            while done < iters {
                let n = (iters - done).min(REFAULT_PAGES);
                let old = vmw::map_untouched(&mut vm, INIT, n);
                vmw::touch_pages(&mut vm, INIT, old, n);
                client::munmap(&mut vm, INIT, old, n << 12).expect("munmap");
                let va = vmw::map_untouched(&mut vm, INIT, n);
                let t = Instant::now();
                vmw::touch_pages(&mut vm, INIT, va, n);
                total += t.elapsed();
                client::munmap(&mut vm, INIT, va, n << 12).expect("munmap");
                done += n;
            }
            total
        })
    });
}

/// Copy-on-write faults: INIT maps present pages and forks; the child's writes are timed.
fn vm_fault_cow<F: FrameAllocator, P: PagingFormat>(g: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
    let mut vm: Vm<F, P> = boot(512 << 20, ForkPolicy::Cow, ZeroPolicy::OnFault, true);
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let (mut total, mut done) = (Duration::ZERO, 0);
            while done < iters {
                let n = (iters - done).min(8192);
                let va = vmw::map_present(&mut vm, INIT, n);
                let child = client::fork(&mut vm, INIT).expect("fork");
                let t = Instant::now();
                vmw::touch_pages(&mut vm, child, va, n);
                total += t.elapsed();
                client::exit(&mut vm, child).expect("exit");
                client::munmap(&mut vm, INIT, va, n << 12).expect("munmap");
                done += n;
            }
            total
        })
    });
}

/// Leaf tables written under per batch of the unshare bench.
const UNSHARE_TABLES: u64 = 64;

/// First write under a shared leaf table: INIT holds `UNSHARE_TABLES` full leaf tables of
/// present pages and forks with shared leaf tables; the child writes one page under each
/// table (each write copies that table, then the page). Fork and exit are not timed.
fn vm_fault_unshare<F: FrameAllocator, L: Layout>(g: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
    let mut vm: Vm<F, L> = boot(1 << 30, ForkPolicy::Share, ZeroPolicy::OnFault, true);
    let stride = entries::<L>() as u64;
    let va = vmw::map_present(&mut vm, INIT, UNSHARE_TABLES * stride);
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let (mut total, mut done) = (Duration::ZERO, 0);
            while done < iters {
                let n = (iters - done).min(UNSHARE_TABLES);
                let child = client::fork(&mut vm, INIT).expect("fork");
                let t = Instant::now();
                vmw::touch_stride(&mut vm, child, va, n, stride);
                total += t.elapsed();
                client::exit(&mut vm, child).expect("exit");
                done += n;
            }
            total
        })
    });
}

/// How a fork bench is timed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ForkTiming {
    /// The fork alone, back to back over the same parent (caches warm); exit untimed.
    Warm,
    /// Fork and the child's exit, both timed.
    WithExit,
    /// The fork alone after evicting the CPU caches (a buffer larger than the last-level
    /// cache is written first, untimed): a fork as it comes in a real system, long after
    /// the parent's tables were last touched.
    Cold,
}

/// Bytes written to evict the caches before a cold fork (beyond the largest L3 slice a
/// core of this machine kind sees).
const EVICT_BYTES: usize = 64 << 20;

/// Writes a buffer larger than the caches so that what was cached before is gone.
fn evict(buf: &mut [u8], round: u8) {
    for line in buf.chunks_mut(64) {
        line[0] = round;
    }
    black_box(&buf[..]);
}

/// Fork of INIT holding `pages` present pages, timed as `timing` says.
fn vm_fork<F: FrameAllocator, P: PagingFormat>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    fork: ForkPolicy,
    pages: u64,
    timing: ForkTiming,
) {
    let mut vm: Vm<F, P> = boot(1 << 30, fork, ZeroPolicy::OnFault, true);
    vmw::map_present(&mut vm, INIT, pages);
    let mut evict_buf = if timing == ForkTiming::Cold { vec![0u8; EVICT_BYTES] } else { Vec::new() };
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                if timing == ForkTiming::Cold {
                    evict(&mut evict_buf, i as u8);
                }
                let t = Instant::now();
                let child = client::fork(&mut vm, INIT).expect("fork");
                if timing == ForkTiming::WithExit {
                    client::exit(&mut vm, child).expect("exit");
                    total += t.elapsed();
                } else {
                    total += t.elapsed();
                    client::exit(&mut vm, child).expect("exit");
                }
            }
            total
        })
    });
}

fn vm_groups(c: &mut Criterion) {
    check_default();
    type D = DefaultFrames;
    let mut g = c.benchmark_group("vm_dispatch");
    vm_dispatch::<D, X86_64>(&mut g, "ours-hot+buddy-x86-64");
    vm_dispatch::<D, I386>(&mut g, "ours-hot+buddy-i386");
    g.finish();

    let mut g = c.benchmark_group("vm_fault_zero");
    vm_fault_zero::<D, X86_64>(&mut g, "ours-hot+buddy-x86-64", ZeroPolicy::OnFault, Large::default());
    vm_fault_zero::<D, I386>(&mut g, "ours-hot+buddy-i386", ZeroPolicy::OnFault, Large::default());
    vm_fault_zero::<D, X86_64>(
        &mut g,
        "ours-hot+buddy-x86-64-prezeroed-refill",
        ZeroPolicy::Prezeroed,
        Large::default(),
    );
    vm_fault_zero::<Bitset, X86_64>(&mut g, "ours-bitset-x86-64", ZeroPolicy::OnFault, Large::default());
    g.finish();

    let mut g = c.benchmark_group("vm_fault_refault");
    vm_fault_refault::<D>(&mut g, "ours-hot+buddy-x86-64");
    vm_fault_refault::<HotList<Bitset>>(&mut g, "ours-hot+bitset-x86-64");
    vm_fault_refault::<Bitset>(&mut g, "ours-cold-bitset-x86-64");
    g.finish();

    let mut g = c.benchmark_group("vm_fault_cow");
    vm_fault_cow::<D, X86_64>(&mut g, "ours-hot+buddy-x86-64");
    vm_fault_cow::<D, I386>(&mut g, "ours-hot+buddy-i386");
    g.finish();

    for (name, pages) in [("vm_fork_1k", 1_000), ("vm_fork_100k", 100_000)] {
        let mut g = c.benchmark_group(name);
        for (policy, p) in [("cow", ForkPolicy::Cow), ("share", ForkPolicy::Share)] {
            for (suffix, timing) in
                [("", ForkTiming::Warm), ("-with-exit", ForkTiming::WithExit), ("-cold", ForkTiming::Cold)]
            {
                vm_fork::<D, X86_64>(&mut g, &format!("ours-{policy}-x86-64{suffix}"), p, pages, timing);
            }
            vm_fork::<D, I386>(&mut g, &format!("ours-{policy}-i386"), p, pages, ForkTiming::Warm);
        }
        vm_fork::<D, X86_64>(&mut g, "ours-copy-x86-64", ForkPolicy::Copy, pages, ForkTiming::Warm);
        g.finish();
    }

    let mut g = c.benchmark_group("vm_fault_unshare");
    vm_fault_unshare::<D, X86_64>(&mut g, "ours-hot+buddy-x86-64");
    vm_fault_unshare::<D, I386>(&mut g, "ours-hot+buddy-i386");
    g.finish();

    let mut g = c.benchmark_group("vm_fork_exit");
    let mut vm = small_vm::<D, X86_64>();
    g.bench_function("ours-hot+buddy-x86-64", |b| b.iter(|| vmw::fork_exit(&mut vm, INIT)));
    let mut vm = small_vm::<D, I386>();
    g.bench_function("ours-hot+buddy-i386", |b| b.iter(|| vmw::fork_exit(&mut vm, INIT)));
    g.finish();

    let mut g = c.benchmark_group("vm_exec");
    let mut vm = small_vm::<D, X86_64>();
    g.bench_function("ours-hot+buddy-x86-64", |b| b.iter(|| vmw::fork_exec_exit(&mut vm, INIT)));
    let mut vm = small_vm::<D, I386>();
    g.bench_function("ours-hot+buddy-i386", |b| b.iter(|| vmw::fork_exec_exit(&mut vm, INIT)));
    g.finish();

    let mut g = c.benchmark_group("vm_mmap");
    let args = client::MmapArgs::anon(128 << 20);
    let mut vm = small_vm::<D, X86_64>();
    g.bench_function("ours-hot+buddy-x86-64", |b| {
        b.iter(|| vmw::mmap_munmap(&mut vm, INIT, black_box(&args)))
    });
    let mut vm = small_vm::<D, I386>();
    g.bench_function("ours-hot+buddy-i386", |b| b.iter(|| vmw::mmap_munmap(&mut vm, INIT, black_box(&args))));
    g.finish();

    let mut g = c.benchmark_group("vm_brk");
    let mut vm = small_vm::<D, X86_64>();
    let base = vm.brk_of(INIT).expect("INIT's break");
    g.bench_function("ours-hot+buddy-x86-64", |b| b.iter(|| vmw::brk_pair(&mut vm, INIT, base)));
    let mut vm = small_vm::<D, I386>();
    let base = vm.brk_of(INIT).expect("INIT's break");
    g.bench_function("ours-hot+buddy-i386", |b| b.iter(|| vmw::brk_pair(&mut vm, INIT, base)));
    g.finish();
}

/// Rounds of the mixed storm per shard.
const STORM_SCALE: u64 = 200;
/// Arena of each storm shard.
const STORM_MEM: u64 = 256 << 20;

/// Storm throughput: the mixed storm replayed by one server, then by two servers on two
/// threads at once (both from the same `run_shards` call); the ratio of the two times is
/// the shard speed-up.
fn storm_group(c: &mut Criterion) {
    let traces = [generate(StormKind::Mixed, 1, STORM_SCALE), generate(StormKind::Mixed, 2, STORM_SCALE)];
    let strategy = Strategy::default();
    let mut g = c.benchmark_group("storm_mixed");
    g.throughput(Throughput::Elements(traces[0].ops.len() as u64));
    g.bench_function("ours-1-shard", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // run_shards plays shard 0's storm alone first: that pass is the one-shard time.
                let r = run_shards(
                    &traces,
                    &strategy,
                    STORM_MEM,
                    vmstorm_core::slots::DEFAULT_SLOTS,
                    false,
                    true,
                )
                .expect("shards");
                total += Duration::from_secs_f64(r.single.seconds);
            }
            total
        })
    });
    g.bench_function("ours-2-shards", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let r = run_shards(
                    &traces,
                    &strategy,
                    STORM_MEM,
                    vmstorm_core::slots::DEFAULT_SLOTS,
                    false,
                    true,
                )
                .expect("shards");
                // The time one storm's worth of ops takes at the two shards' joint rate.
                let per_storm = r.total.seconds * r.single.ops as f64 / r.total.ops.max(1) as f64;
                total += Duration::from_secs_f64(per_storm);
            }
            total
        })
    });
    g.finish();
}

/// The host kernel, first in the run while this process is still small (fork copies it).
/// Large folios: the server's write fault per 4 KiB page touched at 4, 16 and 64 KiB
/// folios, zeroing 4 KiB alone (the floor a folio fault approaches), and — when asked
/// (`VMSTORM_MTHP=1`, root) — the host's page_fault1 per page with the same size enabled
/// (knobs restored after each row), else a message saying why those rows are skipped.
fn folio_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("folio_fault");
    g.throughput(Throughput::Elements(1));
    // Zeroing one frame over and over (it stays in L1), and zeroing frames in turn over a
    // 512 MiB arena (each has left the caches, as the frames a fault storm hands out have):
    // the two floors a fault's zeroing lies between.
    let mut arena = vmstorm_core::Arena::with_frames(1).expect("arena");
    g.bench_function("zero_4k_hot", |b| b.iter(|| arena.zero_frame(black_box(vmstorm_core::Frame(0)))));
    let frames = (512u64 << 20) / 4096;
    let mut big = vmstorm_core::Arena::with_frames(frames).expect("arena");
    (0..frames).for_each(|f| big.zero_frame(vmstorm_core::Frame(f)));
    let mut next = 0;
    g.bench_function("zero_4k_cold", |b| {
        b.iter(|| {
            big.zero_frame(black_box(vmstorm_core::Frame(next)));
            next = (next + 1) % frames;
        })
    });
    for folio in [FolioSize::K4, FolioSize::K16, FolioSize::K64] {
        vm_fault_zero::<DefaultFrames, X86_64>(
            &mut g,
            &format!("ours-hot+buddy-x86-64-{folio}"),
            ZeroPolicy::OnFault,
            Large { folio, ..Large::default() },
        );
    }
    // 2 MiB pages: the fault per 4 KiB page touched (one fault maps 512), and zeroing 2 MiB
    // (512 frames in a row, blocks in turn over the 512 MiB arena) per 4 KiB: the floor.
    vm_fault_zero::<DefaultFrames, X86_64>(
        &mut g,
        "ours-hot+buddy-x86-64-2m",
        ZeroPolicy::OnFault,
        Large { huge: HugePolicy::Always, ..Large::default() },
    );
    let mut block = 0;
    g.bench_function("zero_2m_per_4k", |b| {
        b.iter_custom(|iters| {
            // Whole 2 MiB blocks, as many as cover `iters` pages; time per 4 KiB.
            let blocks = iters.div_ceil(512);
            let t = Instant::now();
            for _ in 0..blocks {
                for f in 0..512 {
                    big.zero_frame(black_box(vmstorm_core::Frame(block * 512 + f)));
                }
                block = (block + 1) % (frames / 512);
            }
            t.elapsed().mul_f64(iters as f64 / (blocks * 512) as f64)
        })
    });
    match MthpSetting::allowed() {
        Ok(()) => {
            for kib in [16u64, 64, 2048] {
                match MthpSetting::only(kib) {
                    Ok(setting) => {
                        g.bench_function(format!("linux-page_fault1-{kib}k"), |b| {
                            b.iter_custom(linux::demand_zero_faults)
                        });
                        drop(setting);
                    }
                    Err(e) => eprintln!("folio_fault: linux rows at {kib} KiB skipped: {e}"),
                }
            }
        }
        Err(why) => eprintln!("folio_fault: linux rows skipped: {why}"),
    }
    g.finish();
}

fn linux_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("linux");
    g.bench_function("null_syscall", |b| b.iter_custom(linux::null_syscalls));
    g.bench_function("page_fault1", |b| b.iter_custom(linux::demand_zero_faults));
    g.bench_function("cow_fault", |b| b.iter_custom(linux::cow_faults));
    g.bench_function("mmap1", |b| b.iter_custom(|n| linux::mmap_munmap(n, 128 << 20)));
    g.bench_function("brk1", |b| b.iter_custom(linux::brk_pairs));
    g.bench_function("fork_exit_wait", |b| b.iter_custom(linux::fork_exit_wait));
    g.bench_function("fork_exec_wait", |b| b.iter_custom(linux::fork_exec_wait));
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = linux_group, folio_group, vm_groups, storm_group, frame_groups, paging_groups, fork_table_groups
}
criterion_main!(benches);
