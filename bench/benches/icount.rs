#![allow(missing_docs)] // iai-callgrind's macros generate undocumented modules
//! Instruction counts (callgrind via iai-callgrind 0.16.1) of the same operations as
//! `time.rs`, at sizes that run quickly under valgrind. `bench/gate.sh` compares them with
//! the baseline in `results/iai/baseline.tsv`; counts are the whole cost, glibc's
//! memset/memcpy/memmove included (the part spent there is reported beside them). The
//! fault benches write a byte into every page they fault in, as a program would; the
//! pre-zeroed fault bench refills its pool inside the measured function, so its count is
//! the steady-state cost per fault, refill included.
//! The server rows (`server/*`) run over the default strategy's allocator (a hot list in
//! front of buddy); the cold refault row over the bare bitset it is compared with.
//!
//! Each benchmark runs a fixed number of operations (`OPS`, or the count in its id), so a
//! per-operation figure is the total divided by that count; `harness` runs the workload
//! over an allocator that does nothing, to subtract the workload's own instructions.
//!
//! The one-page rows (`*_map_one`, `*_unmap_one`, `*_translate_one`, x86-64 both sides)
//! are one call each on a boxed space whose tables for the page exist: map one page
//! beside a mapped neighbour, unmap it again (the table keeps the neighbour; the frame
//! stays allocated on both sides: the workload holds a reference on ours, the caller owns
//! it on the peer's), translate it. `harness_*_one` is the same call over tables that do
//! nothing: a row minus its harness row is the operation alone.

use iai_callgrind::{library_benchmark, library_benchmark_group, main, LibraryBenchmarkConfig};
use std::hint::black_box;
use vmstorm_bench::frame_workload::{Contiguous, Fragmented, Harness, POOL_FRAMES};
use vmstorm_bench::ours_paging::Ours;
use vmstorm_bench::paging_workload::{NullTables, PageTables, RandomTranslate, SEQ_VA};
use vmstorm_bench::peers::{BitmapAllocator, BuddySystem, Multiarch, OffsetPt, SummaryBuddy};
use vmstorm_bench::vm_workload::{self as vmw, boot};
use vmstorm_core::client;
use vmstorm_core::endpoint::INIT_PROC_NR as INIT;
use vmstorm_core::message::Message;
use vmstorm_core::server::{Vm, ZeroPolicy};
use vmstorm_core::ForkPolicy;
use vmstorm_core::{
    Arena, Bitset, Buddy, Endpoint, Frame, FrameAllocator, HoleList, HotList, PagingFormat, VirtAddr, I386,
    X86_64,
};

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

/// A space whose tables for `SEQ_VA` exist (a neighbour page is mapped), as in a fault
/// storm; with `SEQ_VA` itself mapped too when `mapped`. Boxed, so that handing the space
/// to the measured function and back moves a pointer on every side, not a struct of the
/// candidate's size.
fn one_page_space<P: PageTables>(mapped: bool) -> Box<P> {
    let mut pt = Box::new(P::new_space());
    pt.map(SEQ_VA + 4096, 1);
    if mapped {
        pt.map(SEQ_VA, 0);
    }
    pt
}

/// [`one_page_space`] with `SEQ_VA` mapped, for the unmap: the workload keeps a second
/// reference to the page's frame, as a peer's caller owns the frames it maps, so that
/// our unmap drops a count as theirs returns the address, and neither frees the frame.
fn one_page_mapped_ours<P: PagingFormat>() -> Box<Ours<P>> {
    let mut pt = one_page_space::<Ours<P>>(true);
    let m = P::translate(pt.mem.arena(), pt.root, VirtAddr(SEQ_VA)).expect("the page is mapped");
    pt.mem.share(m.frame);
    pt
}

/// One-page operations, each row one call on a space boxed by the setup: `map_one` maps
/// one page under an existing leaf table (the tables of the walk all there), `unmap_one`
/// unmaps one page whose table keeps a neighbour (no table freed, the frame not freed:
/// see `one_page_mapped_ours`), `translate_one` looks one mapped page up. Every
/// candidate runs the same calls on the same layout; the `harness` rows run them over
/// tables that do nothing (the call's argument and result handling alone).
macro_rules! one_page_benches {
    ($map:ident, $unmap:ident, $tr:ident, $ty:ty, $mapped:expr) => {
        #[library_benchmark]
        #[bench::page(one_page_space::<$ty>(false))]
        fn $map(mut pt: Box<$ty>) -> Box<$ty> {
            pt.map(black_box(SEQ_VA), 0);
            pt
        }

        #[library_benchmark]
        #[bench::page($mapped)]
        fn $unmap(mut pt: Box<$ty>) -> Box<$ty> {
            pt.unmap_range(black_box(SEQ_VA), 1);
            pt
        }

        #[library_benchmark]
        #[bench::page(one_page_space::<$ty>(true))]
        fn $tr(mut pt: Box<$ty>) -> Box<$ty> {
            black_box(pt.translate(black_box(SEQ_VA)));
            pt
        }
    };
}

one_page_benches!(
    ours_x86_64_map_one,
    ours_x86_64_unmap_one,
    ours_x86_64_translate_one,
    Ours<X86_64>,
    one_page_mapped_ours::<X86_64>()
);
one_page_benches!(
    multiarch_map_one,
    multiarch_unmap_one,
    multiarch_translate_one,
    Multiarch,
    one_page_space::<Multiarch>(true)
);
one_page_benches!(
    harness_map_one,
    harness_unmap_one,
    harness_translate_one,
    NullTables,
    one_page_space::<NullTables>(true)
);

paging_benches!(ours_x86_64_map64, ours_x86_64_translate_random, Ours<X86_64>);
paging_benches!(ours_i386_map64, ours_i386_translate_random, Ours<I386>);
paging_benches!(harness_map64, harness_translate_random, NullTables);
paging_benches!(x86_64_map64, x86_64_translate_random, OffsetPt);
paging_benches!(multiarch_map64, multiarch_translate_random, Multiarch);

/// The server rows run the default strategy's allocator (`Strategy::DEFAULT`: a hot list in
/// front of buddy), so the gated counts are the default's; the cold refault row keeps the
/// bare bitset it compares against.
type BenchVm<P> = Vm<HotList<Buddy>, P>;

fn vm<P: PagingFormat>(zero: ZeroPolicy) -> BenchVm<P> {
    boot(64 << 20, ForkPolicy::Cow, zero, false)
}

fn vm_over<F: FrameAllocator, P: PagingFormat>(zero: ZeroPolicy) -> Vm<F, P> {
    boot(64 << 20, ForkPolicy::Cow, zero, false)
}

fn dispatch_setup() -> (BenchVm<X86_64>, Message) {
    (vm(ZeroPolicy::OnFault), vmw::trivial_call())
}

#[library_benchmark]
#[bench::ops1000(dispatch_setup())]
fn dispatch_trivial((mut vm, msg): (BenchVm<X86_64>, Message)) -> BenchVm<X86_64> {
    for _ in 0..OPS {
        black_box(vmw::dispatch(&mut vm, black_box(&msg)));
    }
    vm
}

#[library_benchmark]
#[bench::ops1000(dispatch_setup())]
fn dispatch_in_place((mut vm, mut msg): (BenchVm<X86_64>, Message)) -> BenchVm<X86_64> {
    for _ in 0..OPS {
        black_box(vmw::dispatch_in_place(&mut vm, black_box(&mut msg)));
    }
    vm
}

fn untouched<P: PagingFormat>(zero: ZeroPolicy, pages: u64) -> (BenchVm<P>, VirtAddr) {
    let mut vm = vm::<P>(zero);
    let va = vmw::map_untouched(&mut vm, INIT, pages);
    vm.idle();
    (vm, va)
}

/// Pages touched by the fault benchmarks (the pre-zeroed pool holds 64).
const FAULT_PAGES: u64 = 64;

#[library_benchmark]
#[bench::pages64(untouched::<X86_64>(ZeroPolicy::OnFault, FAULT_PAGES))]
fn fault_zero((mut vm, va): (BenchVm<X86_64>, VirtAddr)) -> BenchVm<X86_64> {
    vmw::touch_pages(&mut vm, INIT, black_box(va), FAULT_PAGES);
    vm
}

// The pool was filled before; the faults drain it and the refill that follows (streaming
// stores) is measured with them: the cost per fault when faults outpace idle time.
#[library_benchmark]
#[bench::refill_pages64(untouched::<X86_64>(ZeroPolicy::Prezeroed, FAULT_PAGES))]
fn fault_prezeroed((mut vm, va): (BenchVm<X86_64>, VirtAddr)) -> BenchVm<X86_64> {
    vmw::touch_pages(&mut vm, INIT, black_box(va), FAULT_PAGES);
    vm.idle();
    vm
}

#[library_benchmark]
#[bench::pages64(untouched::<I386>(ZeroPolicy::OnFault, FAULT_PAGES))]
fn fault_zero_i386((mut vm, va): (BenchVm<I386>, VirtAddr)) -> BenchVm<I386> {
    vmw::touch_pages(&mut vm, INIT, black_box(va), FAULT_PAGES);
    vm
}

/// A server over `F` that faulted in and unmapped `FAULT_PAGES` pages (their frames are
/// the most recently freed), with a fresh untouched region of as many pages.
fn refault<F: FrameAllocator>() -> (Vm<F, X86_64>, VirtAddr) {
    let mut vm = vm_over::<F, X86_64>(ZeroPolicy::OnFault);
    let old = vmw::map_untouched(&mut vm, INIT, FAULT_PAGES);
    vmw::touch_pages(&mut vm, INIT, old, FAULT_PAGES);
    client::munmap(&mut vm, INIT, old, FAULT_PAGES << 12).expect("munmap");
    let va = vmw::map_untouched(&mut vm, INIT, FAULT_PAGES);
    (vm, va)
}

// Demand-zero faults right after as many pages were freed: with a hot list in front of the
// bitset the faults get those frames back (LIFO); without one (`cold`) next-fit hands out
// frames not touched lately. The instruction counts are close; the time bench shows the
// cache effect.
#[library_benchmark]
#[bench::hot_pages64(refault::<HotList<Bitset>>())]
fn fault_refault_hot((mut vm, va): (Vm<HotList<Bitset>, X86_64>, VirtAddr)) -> Vm<HotList<Bitset>, X86_64> {
    vmw::touch_pages(&mut vm, INIT, black_box(va), FAULT_PAGES);
    vm
}

#[library_benchmark]
#[bench::cold_pages64(refault::<Bitset>())]
fn fault_refault_cold((mut vm, va): (Vm<Bitset, X86_64>, VirtAddr)) -> Vm<Bitset, X86_64> {
    vmw::touch_pages(&mut vm, INIT, black_box(va), FAULT_PAGES);
    vm
}

fn forked(pages: u64) -> (BenchVm<X86_64>, Endpoint, VirtAddr) {
    let mut vm = vm::<X86_64>(ZeroPolicy::OnFault);
    let va = vmw::map_present(&mut vm, INIT, pages);
    let child = client::fork(&mut vm, INIT).expect("fork");
    (vm, child, va)
}

#[library_benchmark]
#[bench::pages64(forked(FAULT_PAGES))]
fn fault_cow((mut vm, child, va): (BenchVm<X86_64>, Endpoint, VirtAddr)) -> BenchVm<X86_64> {
    vmw::touch_pages(&mut vm, child, black_box(va), FAULT_PAGES);
    vm
}

fn with_pages<P: PagingFormat>(fork: ForkPolicy, pages: u64) -> BenchVm<P> {
    let mut vm: BenchVm<P> = boot(64 << 20, fork, ZeroPolicy::OnFault, false);
    vmw::map_present(&mut vm, INIT, pages);
    vm
}

/// Leaf tables written under in `fault_unshare`.
const UNSHARE_TABLES: u64 = 16;

fn shared_tables() -> (BenchVm<X86_64>, Endpoint, VirtAddr) {
    let mut vm: BenchVm<X86_64> = boot(256 << 20, ForkPolicy::Share, ZeroPolicy::OnFault, false);
    let va = vmw::map_present(&mut vm, INIT, UNSHARE_TABLES * 512);
    let child = client::fork(&mut vm, INIT).expect("fork");
    (vm, child, va)
}

// First write under a shared leaf table: each write copies one full table, then the page.
#[library_benchmark]
#[bench::tables16(shared_tables())]
fn fault_unshare((mut vm, child, va): (BenchVm<X86_64>, Endpoint, VirtAddr)) -> BenchVm<X86_64> {
    vmw::touch_stride(&mut vm, child, black_box(va), UNSHARE_TABLES, 512);
    vm
}

#[library_benchmark]
#[bench::cow_1k(with_pages::<X86_64>(ForkPolicy::Cow, 1000))]
#[bench::share_1k(with_pages::<X86_64>(ForkPolicy::Share, 1000))]
#[bench::copy_1k(with_pages::<X86_64>(ForkPolicy::Copy, 1000))]
fn fork_pages(mut vm: BenchVm<X86_64>) -> BenchVm<X86_64> {
    black_box(client::fork(&mut vm, INIT).expect("fork"));
    vm
}

#[library_benchmark]
#[bench::cow_1k(with_pages::<I386>(ForkPolicy::Cow, 1000))]
#[bench::share_1k(with_pages::<I386>(ForkPolicy::Share, 1000))]
fn fork_pages_i386(mut vm: BenchVm<I386>) -> BenchVm<I386> {
    black_box(client::fork(&mut vm, INIT).expect("fork"));
    vm
}

#[library_benchmark]
#[bench::ops100(vm::<X86_64>(ZeroPolicy::OnFault))]
fn mmap_munmap(mut vm: BenchVm<X86_64>) -> BenchVm<X86_64> {
    let args = client::MmapArgs::anon(128 << 20);
    for _ in 0..CONTIG_OPS {
        let va = client::mmap(&mut vm, INIT, black_box(&args)).expect("mmap");
        client::munmap(&mut vm, INIT, va, args.len).expect("munmap");
    }
    vm
}

#[library_benchmark]
#[bench::ops10(vm::<X86_64>(ZeroPolicy::OnFault))]
fn fork_exec_exit(mut vm: BenchVm<X86_64>) -> BenchVm<X86_64> {
    for _ in 0..10 {
        vmw::fork_exec_exit(&mut vm, INIT);
    }
    vm
}

#[library_benchmark]
#[bench::ops100(vm::<X86_64>(ZeroPolicy::OnFault))]
fn brk_pairs(mut vm: BenchVm<X86_64>) -> BenchVm<X86_64> {
    let base = vm.brk_of(INIT).expect("INIT's break");
    for _ in 0..CONTIG_OPS {
        vmw::brk_pair(&mut vm, INIT, black_box(base));
    }
    vm
}

library_benchmark_group!(
    name = server;
    benchmarks =
        dispatch_trivial, dispatch_in_place, fault_zero, fault_prezeroed, fault_zero_i386, fault_refault_hot,
        fault_refault_cold, fault_cow, fault_unshare,
        fork_pages, fork_pages_i386, mmap_munmap, fork_exec_exit, brk_pairs
);

fn arena() -> (Arena, Frame) {
    let mut a = Arena::with_frames(64).expect("an arena");
    a.frame_mut(Frame(3)).fill(0xA5);
    (a, Frame(3))
}

// Zeroing a 4 KiB frame, apart from everything else: `zero_frame` ends in glibc's memset
// (its code path, and so its count, depends on the CPU features glibc sees),
// `zero_frame_streaming` is our own non-temporal loop.
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
        ours_i386_map64, ours_i386_translate_random,
        ours_x86_64_map_one, ours_x86_64_unmap_one, ours_x86_64_translate_one
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
        multiarch_map64, multiarch_translate_random,
        multiarch_map_one, multiarch_unmap_one, multiarch_translate_one,
        harness_map_one, harness_unmap_one, harness_translate_one
);

main!(
    config = LibraryBenchmarkConfig::default();
    library_benchmark_groups = vmstorm, server, zeroing, peers
);
