#![allow(missing_docs)] // iai-callgrind's macros generate undocumented modules
//! Instruction counts (callgrind via iai-callgrind 0.16.1) of the same operations as
//! `time.rs`, at sizes that run quickly under valgrind. `bench/gate.sh` compares them with
//! the baseline in `results/iai/baseline.tsv`; counts exclude glibc's CPU-dispatched
//! string functions (memset/memcpy/…), which are measured in the `zeroing` group alone.
//!
//! Each benchmark runs a fixed number of operations (`OPS`, or the count in its id), so a
//! per-operation figure is the total divided by that count; `harness` runs the workload
//! over an allocator that does nothing, to subtract the workload's own instructions.

use iai_callgrind::{library_benchmark, library_benchmark_group, main, LibraryBenchmarkConfig};
use std::hint::black_box;
use vmstorm_bench::frame_workload::{Contiguous, Fragmented, Harness, POOL_FRAMES};
use vmstorm_bench::ours_paging::Ours;
use vmstorm_bench::paging_workload::{NullTables, PageTables, RandomTranslate, SEQ_VA};
use vmstorm_bench::peers::{BitmapAllocator, BuddySystem, Multiarch, OffsetPt, SummaryBuddy};
use vmstorm_core::{Arena, Bitset, Buddy, Frame, HoleList, I386, X86_64};

const SEED: u64 = 0x5EED_2026;
/// Operations per frame benchmark.
const OPS: u64 = 1000;
/// Operations per contiguous benchmark.
const CONTIG_OPS: u64 = 100;
/// Pages of the map benchmark.
const MAP_PAGES: u64 = 64;

macro_rules! frames_benches {
    ($frag:ident, $c16:ident, $c512:ident, $ty:ty) => {
        #[library_benchmark]
        #[bench::ops1000(Fragmented::<$ty>::build(POOL_FRAMES, SEED))]
        fn $frag(mut w: Fragmented<$ty>) -> Fragmented<$ty> {
            for _ in 0..OPS {
                w.step();
            }
            w
        }

        #[library_benchmark]
        #[bench::ops100(Contiguous::<$ty>::build(POOL_FRAMES, 16, 1, SEED))]
        fn $c16(mut w: Contiguous<$ty>) -> Contiguous<$ty> {
            for _ in 0..CONTIG_OPS {
                w.step();
            }
            w
        }

        #[library_benchmark]
        #[bench::ops100(Contiguous::<$ty>::build(POOL_FRAMES, 512, 512, SEED))]
        fn $c512(mut w: Contiguous<$ty>) -> Contiguous<$ty> {
            for _ in 0..CONTIG_OPS {
                w.step();
            }
            w
        }
    };
}

frames_benches!(bitset_fragmented, bitset_contig16, bitset_contig512, Bitset);
frames_benches!(buddy_fragmented, buddy_contig16, buddy_contig512, Buddy);

// The hole list's operations are linear in the number of holes, and so is building its
// fragmented state per freed frame: under callgrind it runs a 4,096-frame pool.
const SMALL_POOL: u64 = 4096;

#[library_benchmark]
#[bench::small_ops100(Fragmented::<HoleList>::build(SMALL_POOL, SEED))]
fn holelist_fragmented(mut w: Fragmented<HoleList>) -> Fragmented<HoleList> {
    for _ in 0..CONTIG_OPS {
        w.step();
    }
    w
}

#[library_benchmark]
#[bench::small_ops100(Contiguous::<HoleList>::build(SMALL_POOL, 16, 1, SEED))]
fn holelist_contig16(mut w: Contiguous<HoleList>) -> Contiguous<HoleList> {
    for _ in 0..CONTIG_OPS {
        w.step();
    }
    w
}

frames_benches!(harness_fragmented, harness_contig16, harness_contig512, Harness);
frames_benches!(buddy_system_fragmented, buddy_system_contig16, buddy_system_contig512, BuddySystem);
frames_benches!(frame_alloc_fragmented, frame_alloc_contig16, frame_alloc_contig512, SummaryBuddy);

// bitmap-allocator's contiguous search tests one bit at a time (≈ 9 M Ir per 16-frame
// run): only its single-frame and 512-frame workloads run under callgrind.
#[library_benchmark]
#[bench::ops1000(Fragmented::<BitmapAllocator>::build(POOL_FRAMES, SEED))]
fn bitmap_fragmented(mut w: Fragmented<BitmapAllocator>) -> Fragmented<BitmapAllocator> {
    for _ in 0..OPS {
        w.step();
    }
    w
}

fn empty_space<P: PageTables>() -> P {
    P::new_space()
}

fn random_space<P: PageTables>() -> RandomTranslate<P> {
    RandomTranslate::build(SEED)
}

macro_rules! paging_benches {
    ($map:ident, $tr:ident, $ty:ty) => {
        #[library_benchmark]
        #[bench::pages64(empty_space::<$ty>())]
        fn $map(mut pt: $ty) -> $ty {
            pt.map_range(black_box(SEQ_VA), 0, MAP_PAGES);
            pt
        }

        #[library_benchmark]
        #[bench::ops1000(random_space::<$ty>())]
        fn $tr(mut w: RandomTranslate<$ty>) -> RandomTranslate<$ty> {
            for _ in 0..OPS {
                black_box(w.step());
            }
            w
        }
    };
}

paging_benches!(ours_x86_64_map64, ours_x86_64_translate_random, Ours<X86_64>);
paging_benches!(ours_i386_map64, ours_i386_translate_random, Ours<I386>);
paging_benches!(harness_map64, harness_translate_random, NullTables);
paging_benches!(x86_64_map64, x86_64_translate_random, OffsetPt);
paging_benches!(multiarch_map64, multiarch_translate_random, Multiarch);

fn arena() -> (Arena, Frame) {
    let mut a = Arena::with_frames(64).expect("an arena");
    a.frame_mut(Frame(3)).fill(0xA5);
    (a, Frame(3))
}

// Zeroing a 4 KiB frame, apart from everything else: `zero_frame` ends in glibc's memset
// (its code path depends on the CPU: the gate leaves it out), `zero_frame_streaming` is
// our own non-temporal loop.
#[library_benchmark]
#[bench::frame(arena())]
fn zero_frame((mut a, f): (Arena, Frame)) -> Arena {
    a.zero_frame(black_box(f));
    a
}

#[library_benchmark]
#[bench::frame(arena())]
fn zero_frame_streaming((mut a, f): (Arena, Frame)) -> Arena {
    a.zero_frame_streaming(black_box(f));
    a
}

library_benchmark_group!(
    name = vmstorm;
    benchmarks =
        bitset_fragmented, bitset_contig16, bitset_contig512,
        buddy_fragmented, buddy_contig16, buddy_contig512,
        holelist_fragmented, holelist_contig16,
        ours_x86_64_map64, ours_x86_64_translate_random,
        ours_i386_map64, ours_i386_translate_random
);

library_benchmark_group!(
    name = zeroing;
    benchmarks = zero_frame, zero_frame_streaming
);

library_benchmark_group!(
    name = peers;
    benchmarks =
        harness_fragmented, harness_contig16, harness_contig512,
        harness_map64, harness_translate_random,
        bitmap_fragmented,
        buddy_system_fragmented, buddy_system_contig16, buddy_system_contig512,
        frame_alloc_fragmented, frame_alloc_contig16, frame_alloc_contig512,
        x86_64_map64, x86_64_translate_random,
        multiarch_map64, multiarch_translate_random
);

main!(
    config = LibraryBenchmarkConfig::default();
    library_benchmark_groups = vmstorm, zeroing, peers
);
