//! Model-based tests of the frame allocators: random sequences of `alloc`,
//! `alloc_contiguous`, `free` and `free_contiguous` are replayed against every strategy of
//! the registry (`vmstorm_core::with_allocators`) and
//! against a naive model (the set of used frames), on frame counts that are not multiples
//! of a word or of a power of two.
//!
//! Checked after every step: returned ranges are in bounds, aligned, free in the model and
//! so disjoint from everything live; `free_count` is exact; `is_free` agrees with the model;
//! the strategy's own invariants hold; `None` comes only when the model has no such run
//! (first-fit strategies: exactly; buddy: when no aligned free block of the rounded-up order
//! exists, since a buddy system cannot use a run that straddles a buddy boundary). At the
//! end, freeing everything gives back every frame.

use proptest::prelude::*;
use std::collections::BTreeSet;
use vmstorm_core::frames::{AllocJob, AllocKind, Bitset, FailingAllocator, FrameAllocator};
use vmstorm_core::Frame;

#[derive(Clone, Debug)]
enum Op {
    Alloc,
    AllocContiguous {
        count: u64,
        align: u64,
    },
    /// Free the whole live allocation `pick % live`.
    Free {
        pick: usize,
    },
    /// Free one frame in the middle of the live allocation `pick % live`, splitting it.
    FreeOne {
        pick: usize,
        offset: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let align = (0u32..=9).prop_map(|s| 1u64 << s);
    prop_oneof![
        4 => Just(Op::Alloc),
        3 => (1u64..=70, align.clone()).prop_map(|(count, align)| Op::AllocContiguous { count, align }),
        1 => (1u64..600, align).prop_map(|(count, align)| Op::AllocContiguous { count, align }),
        // Whole 512-frame blocks (2 MiB runs), the shape with its own fast paths.
        1 => (1u64..=3, 9u32..=11).prop_map(|(blocks, s)| Op::AllocContiguous { count: 512 * blocks, align: 1 << s }),
        // Whole words, aligned to a word or more.
        1 => (2u64..=9, 6u32..=8).prop_map(|(words, s)| Op::AllocContiguous { count: 64 * words, align: 1 << s }),
        4 => any::<usize>().prop_map(|pick| Op::Free { pick }),
        1 => (any::<usize>(), any::<u64>()).prop_map(|(pick, offset)| Op::FreeOne { pick, offset }),
    ]
}

/// How a strategy may fail an `alloc_contiguous` the model could satisfy.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Exactness {
    /// Fails only when no aligned run of free frames exists.
    FirstFit,
    /// Fails only when no aligned, fully free block of `2^k >= max(count, align)` exists.
    Buddy,
}

/// The naive model: the set of used frames.
struct Model {
    frames: u64,
    used: BTreeSet<u64>,
}

impl Model {
    fn range_free(&self, start: u64, count: u64) -> bool {
        start + count <= self.frames && self.used.range(start..start + count).next().is_none()
    }

    /// Whether some run of `count` free frames starts at a multiple of `align`.
    fn has_run(&self, count: u64, align: u64) -> bool {
        let mut gap_start = 0u64;
        for &u in self.used.iter().chain(std::iter::once(&self.frames)) {
            let a = gap_start.div_ceil(align) * align;
            if a + count <= u {
                return true;
            }
            gap_start = u + 1;
        }
        false
    }

    /// Whether some fully free block of `block` frames (a power of two), aligned to its size,
    /// lies inside the pool.
    fn has_free_block(&self, block: u64) -> bool {
        (0..self.frames).step_by(block as usize).any(|b| self.range_free(b, block))
    }
}

/// Replays `ops` on allocator `A` over `frames` frames against the model.
fn replay<A: FrameAllocator>(frames: u64, ops: &[Op], exact: Exactness) -> Result<(), TestCaseError> {
    let mut a = A::with_frames(frames);
    let mut m = Model { frames, used: BTreeSet::new() };
    let mut live: Vec<(u64, u64)> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        let mut touched: Vec<u64> = Vec::new();
        match *op {
            Op::Alloc => match a.alloc() {
                Some(Frame(f)) => {
                    prop_assert!(m.range_free(f, 1), "step {step}: alloc gave used/out-of-bounds {f}");
                    m.used.insert(f);
                    live.push((f, 1));
                    touched.push(f);
                }
                None => prop_assert_eq!(
                    m.used.len() as u64,
                    frames,
                    "step {}: alloc failed with free frames",
                    step
                ),
            },
            Op::AllocContiguous { count, align } => match a.alloc_contiguous(count, align) {
                Some(Frame(f)) => {
                    prop_assert_eq!(
                        f % align,
                        0,
                        "step {}: {} frames at {} not aligned to {}",
                        step,
                        count,
                        f,
                        align
                    );
                    prop_assert!(m.range_free(f, count), "step {step}: {count} frames at {f} not free");
                    m.used.extend(f..f + count);
                    live.push((f, count));
                    touched.extend([f, f + count - 1]);
                }
                None => match exact {
                    Exactness::FirstFit => prop_assert!(
                        !m.has_run(count, align),
                        "step {step}: alloc_contiguous({count}, {align}) failed but a run exists"
                    ),
                    Exactness::Buddy => {
                        let block = count.next_power_of_two().max(align);
                        prop_assert!(
                            !m.has_free_block(block),
                            "step {step}: alloc_contiguous({count}, {align}) failed but a free block of {block} exists"
                        );
                    }
                },
            },
            Op::Free { pick } => {
                if live.is_empty() {
                    continue;
                }
                let (f, count) = live.swap_remove(pick % live.len());
                if count == 1 {
                    a.free(Frame(f));
                } else {
                    a.free_contiguous(Frame(f), count);
                }
                for x in f..f + count {
                    m.used.remove(&x);
                }
                touched.extend([f, f + count - 1]);
            }
            Op::FreeOne { pick, offset } => {
                if live.is_empty() {
                    continue;
                }
                let i = pick % live.len();
                let (f, count) = live.swap_remove(i);
                let x = f + offset % count;
                a.free(Frame(x));
                m.used.remove(&x);
                if x > f {
                    live.push((f, x - f));
                }
                if x + 1 < f + count {
                    live.push((x + 1, f + count - x - 1));
                }
                touched.push(x);
            }
        }
        prop_assert_eq!(a.free_count(), frames - m.used.len() as u64, "step {}: free_count", step);
        if let Err(e) = a.check_invariants() {
            return Err(TestCaseError::fail(format!("step {step}: {e}")));
        }
        let stride = if frames > 1100 { 13 } else { 1 };
        for x in (0..frames).step_by(stride).chain(touched) {
            prop_assert_eq!(a.is_free(Frame(x)), !m.used.contains(&x), "step {}: is_free({})", step, x);
        }
        prop_assert!(!a.is_free(Frame(frames)));
    }
    for (f, count) in live.drain(..) {
        a.free_contiguous(Frame(f), count);
    }
    prop_assert_eq!(a.free_count(), frames);
    if let Err(e) = a.check_invariants() {
        return Err(TestCaseError::fail(format!("after freeing everything: {e}")));
    }
    if frames > 0 && exact == Exactness::FirstFit {
        prop_assert_eq!(a.alloc_contiguous(frames, 1), Some(Frame(0)));
    }
    Ok(())
}

fn frames() -> impl Strategy<Value = u64> {
    prop::sample::select(vec![1u64, 2, 63, 64, 65, 127, 1000, 4099, 4096 * 2 + 512 + 7])
}

/// What a strategy promises for `alloc_contiguous`: only the buddy system may refuse a run
/// that straddles one of its block boundaries.
fn exactness(kind: AllocKind) -> Exactness {
    if kind == AllocKind::Buddy {
        Exactness::Buddy
    } else {
        Exactness::FirstFit
    }
}

/// One property test per strategy of the registry, named after its module.
macro_rules! matches_model {
    ({} $([$ty:ident $module:ident $name:literal $doc:literal])*) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
            $(
                #[test]
                fn $module(frames in frames(), ops in prop::collection::vec(op(), 0..200)) {
                    replay::<vmstorm_core::frames::$ty>(frames, &ops, exactness(AllocKind::$ty))?;
                }
            )*
        }
    };
}

vmstorm_core::with_allocators!([matches_model] {});

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn failing_allocator_fails_exactly_the_chosen_call(n in 1u64..20, ops in prop::collection::vec(op(), 1..60)) {
        let mut a = FailingAllocator::<Bitset>::with_frames(1000);
        let mut reference = Bitset::with_frames(1000);
        a.fail_at(n);
        let mut calls = 0u64;
        for op in &ops {
            let (got, expect) = match *op {
                Op::Alloc => (a.alloc(), { calls += 1; if calls == n { None } else { reference.alloc() } }),
                Op::AllocContiguous { count, align } => (
                    a.alloc_contiguous(count, align),
                    { calls += 1; if calls == n { None } else { reference.alloc_contiguous(count, align) } },
                ),
                _ => continue,
            };
            prop_assert_eq!(got, expect);
            prop_assert_eq!(a.free_count(), reference.free_count());
        }
        prop_assert_eq!(a.allocations(), calls);
        prop_assert_eq!(a.injected_failures(), u64::from(calls >= n));
    }
}

/// A scripted case for each strategy through its kind name: fill with singles, fail
/// contiguous requests, free, and fill again with one run.
#[test]
fn every_kind_fills_and_drains() {
    fn fill<A: FrameAllocator>(kind: AllocKind) {
        let mut a = A::with_frames(1000);
        assert_eq!(a.name(), kind.name());
        let got: Vec<Frame> = (0..1000).map(|_| a.alloc().unwrap()).collect();
        assert_eq!(a.alloc(), None);
        assert_eq!(a.alloc_contiguous(1, 1), None);
        for f in got {
            a.free(f);
        }
        assert_eq!(a.free_count(), 1000);
        let run = a.alloc_contiguous(512, 512).unwrap();
        assert_eq!(run, Frame(0));
        a.check_invariants().unwrap();
    }
    struct Fill(AllocKind);
    impl AllocJob for Fill {
        type Output = ();
        fn run<A: FrameAllocator>(self) {
            fill::<A>(self.0)
        }
    }
    for &kind in AllocKind::ALL {
        kind.dispatch(Fill(kind));
    }
}

/// Out-of-memory through the wrapper leaves the inner allocator untouched, for each strategy.
#[test]
fn injected_failure_changes_nothing() {
    fn check<A: FrameAllocator>() {
        let mut a = FailingAllocator::new(A::with_frames(300));
        let first = a.alloc_contiguous(10, 2).unwrap();
        let before: Vec<bool> = (0..300).map(|f| a.is_free(Frame(f))).collect();
        a.fail_at(1);
        assert_eq!(a.alloc_contiguous(10, 2), None);
        a.fail_at(2);
        assert!(a.alloc().is_some());
        assert_eq!(a.alloc(), None);
        let single =
            Frame((0..300).find(|&f| !a.is_free(Frame(f)) && !(first.0..first.0 + 10).contains(&f)).unwrap());
        a.free(single);
        let after: Vec<bool> = (0..300).map(|f| a.is_free(Frame(f))).collect();
        assert_eq!(before, after);
        assert_eq!(a.allocations(), 4);
        assert_eq!(a.injected_failures(), 2);
        a.check_invariants().unwrap();
    }
    struct Check;
    impl AllocJob for Check {
        type Output = ();
        fn run<A: FrameAllocator>(self) {
            check::<A>()
        }
    }
    for &kind in AllocKind::ALL {
        kind.dispatch(Check);
    }
}
