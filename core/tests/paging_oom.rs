//! Out of frames at every possible point: with an allocator that refuses its N-th
//! allocation, for every N, `map_range`, `fork_copy` (every mode) and every operation
//! that must copy a leaf table shared by an on-demand fork (`unshare`, `map_range`,
//! `unmap_range`, `protect_range`, `replace`) either succeed or fail with `OutOfFrames`
//! leaving tables, reference counts, free count and table count exactly as before
//! (compared by a full dump).

mod support;

use support::{check_refs, dump, phys, VecAlloc};
use vmstorm_core::paging::PagingError;
use vmstorm_core::FailingAllocator;
use vmstorm_core::{
    ForkPolicy, Frame, Mapping, PageFlags, PageSpan, PagingFormat, PhysMem, VirtAddr, I386, X86_64,
};

type Mem = PhysMem<FailingAllocator<VecAlloc>>;

/// Refuses the `n`-th allocation from now (0: none), counting allocations from here.
fn arm(mem: &mut Mem, n: u64) {
    mem.allocator_mut().reset_counts();
    mem.allocator_mut().fail_at(n);
}

const RW: PageFlags = PageFlags::WRITE.union(PageFlags::USER);

fn span(start: u64, pages: u64) -> PageSpan {
    PageSpan::new(VirtAddr(start), pages).unwrap()
}

/// `n` consecutive held frames with distinct contents.
fn held(mem: &mut Mem, n: u64) -> Frame {
    let first = mem.alloc_contiguous(n, 1).unwrap();
    for i in 0..n {
        mem.arena_mut().frame_mut(first.add(i)).fill((i * 3 + 1) as u8);
    }
    first
}

/// A parent with private writable, read-only, COW (after a fork), shared and direct pages
/// spread over several leaf tables; returns (parent, sibling).
fn populated<P: PagingFormat>(mem: &mut Mem) -> (Frame, Frame) {
    let root = P::new_root(mem).unwrap();
    let f = held(mem, 40);
    P::map_range(mem, root, span(0x3fe000, 8), f, RW).unwrap();
    P::map_range(mem, root, span(0x1000_0000, 8), f.add(8), PageFlags::USER).unwrap();
    P::map_range(mem, root, span(0x8000_0000, 8), f.add(16), PageFlags::SHARED | RW).unwrap();
    P::map_range(mem, root, span(0x20_0000, 4), f.add(24), RW).unwrap();
    let dev = Frame(0xf_0000);
    P::map(mem, root, VirtAddr(0xc000_0000), Mapping { frame: dev, flags: PageFlags::DIRECT | RW }).unwrap();
    // A sibling makes some pages COW with count 2 before the forks under test.
    let sibling = P::fork_copy(mem, root, ForkPolicy::Cow).unwrap();
    P::map_range(mem, root, span(0xa000_0000, 12), f.add(28), RW).unwrap();
    (root, sibling)
}

fn map_range_fails_cleanly<P: PagingFormat>() {
    let mut mem: Mem = phys(4096);
    let (root, sibling) = populated::<P>(&mut mem);
    // Starts in an existing leaf table, then needs new tables at every level on the way.
    let s = span(0x3fe000 + 8 * 4096, 3000);
    let f = held(&mut mem, 3000);
    let mut failures = 0;
    for n in 1.. {
        let before = dump::<P, _>(&mem, &[root, sibling]);
        arm(&mut mem, n);
        let r = P::map_range(&mut mem, root, s, f, RW);
        arm(&mut mem, 0);
        match r {
            Err(e) => {
                assert_eq!(e, PagingError::OutOfFrames, "n = {n}");
                assert_eq!(dump::<P, _>(&mem, &[root, sibling]), before, "n = {n}");
                failures += 1;
            }
            Ok(()) => {
                assert!(mem.allocator().allocations() < n, "succeeded although allocation {n} was refused");
                break;
            }
        }
    }
    assert!(failures >= 2, "the range needs several tables");
    check_refs::<P, _>(&mem, &[root, sibling], &[]);
    assert_eq!(P::translate(mem.arena(), root, s.start.add_pages(2999)).unwrap().frame, f.add(2999));
}

fn fork_fails_cleanly<P: PagingFormat>(mode: ForkPolicy) {
    let mut mem: Mem = phys(4096);
    let (root, sibling) = populated::<P>(&mut mem);
    let start_free = mem.free_frames();
    let mut failures = 0;
    for n in 1.. {
        let before = dump::<P, _>(&mem, &[root, sibling]);
        arm(&mut mem, n);
        let r = P::fork_copy(&mut mem, root, mode);
        arm(&mut mem, 0);
        match r {
            Err(e) => {
                assert_eq!(e, PagingError::OutOfFrames, "n = {n}");
                assert_eq!(dump::<P, _>(&mem, &[root, sibling]), before, "n = {n}");
                failures += 1;
            }
            Ok(child) => {
                assert!(mem.allocator().allocations() < n);
                check_refs::<P, _>(&mem, &[root, sibling, child], &[]);
                P::destroy(&mut mem, child);
                break;
            }
        }
    }
    let expect = match mode {
        ForkPolicy::Cow => 3,       // every table (at least root + one leaf table + one more)
        ForkPolicy::Copy => 3 + 20, // tables and private pages
        ForkPolicy::Share => 1,     // the upper tables only (i386: just the root)
    };
    assert!(failures >= expect, "{failures} failure points");
    check_refs::<P, _>(&mem, &[root, sibling], &[]);
    assert_eq!(mem.free_frames(), start_free);
}

/// What is done to a space sharing its leaf tables with its parent.
#[derive(Clone, Copy, Debug)]
enum Change {
    Unshare,
    MapRange,
    UnmapPart,
    Protect,
    Replace,
}

/// `change` on a child forked with shared leaf tables, refused at every allocation in turn.
fn unshare_fails_cleanly<P: PagingFormat>(change: Change) {
    let mut mem: Mem = phys(4096);
    let (root, sibling) = populated::<P>(&mut mem);
    let child = P::fork_copy(&mut mem, root, ForkPolicy::Share).unwrap();
    let grandchild = P::fork_copy(&mut mem, child, ForkPolicy::Share).unwrap();
    let spaces = [root, sibling, child, grandchild];
    check_refs::<P, _>(&mem, &spaces, &[]);
    let f = held(&mut mem, 3000);
    let mut failures = 0;
    for n in 1.. {
        let before = dump::<P, _>(&mem, &spaces);
        arm(&mut mem, n);
        // Spans cross the leaf-table boundary at 4 MiB (both formats) where useful.
        let r = match change {
            Change::Unshare => P::unshare(&mut mem, child, VirtAddr(0x3fe000)).map(|m| {
                assert!(m.is_some());
            }),
            Change::MapRange => P::map_range(&mut mem, child, span(0x3fe000 + 8 * 4096, 3000), f, RW),
            Change::UnmapPart => P::unmap_range(&mut mem, child, span(0x3ff000, 4)).map(|k| assert_eq!(k, 4)),
            Change::Protect => {
                P::protect_range(&mut mem, child, span(0x3fe000, 8), PageFlags::USER, PageFlags::WRITE)
                    .map(|k| assert_eq!(k, 8))
            }
            Change::Replace => {
                P::replace(&mut mem, child, VirtAddr(0x3fe000), Mapping { frame: f, flags: RW }).map(|old| {
                    assert_eq!(old.frame, P::translate(mem.arena(), root, VirtAddr(0x3fe000)).unwrap().frame)
                })
            }
        };
        arm(&mut mem, 0);
        match r {
            Err(e) => {
                assert_eq!(e, PagingError::OutOfFrames, "n = {n}");
                assert_eq!(dump::<P, _>(&mem, &spaces), before, "n = {n}");
                failures += 1;
            }
            Ok(()) => {
                assert!(mem.allocator().allocations() < n);
                break;
            }
        }
    }
    assert!(failures >= 1, "{change:?} copies at least one table");
    let extra: Vec<Frame> = match change {
        Change::MapRange => vec![],
        Change::Replace => (1..3000).map(|i| f.add(i)).collect(),
        _ => (0..3000).map(|i| f.add(i)).collect(),
    };
    check_refs::<P, _>(&mem, &spaces, &extra);
    // The parent and the grandchild are unaffected by what the child did.
    let (p, g) = (
        P::translate(mem.arena(), root, VirtAddr(0x3fe000)),
        P::translate(mem.arena(), grandchild, VirtAddr(0x3fe000)),
    );
    assert_eq!(p.map(|m| m.frame), g.map(|m| m.frame));
    for s in [grandchild, child, sibling, root] {
        P::destroy(&mut mem, s);
    }
    for f in extra {
        mem.unref(f);
    }
    assert_eq!(mem.table_frames(), 0);
    assert!(mem.refs().as_slice().iter().all(|&c| c == 0), "nothing leaks after destroy");
}

fn new_root_fails_cleanly<P: PagingFormat>() {
    let mut mem: Mem = phys(64);
    let before = mem.free_frames();
    arm(&mut mem, 1);
    assert_eq!(P::new_root(&mut mem), Err(PagingError::OutOfFrames));
    assert_eq!(mem.free_frames(), before);
    assert_eq!(mem.table_frames(), 0);
}

macro_rules! both_formats {
    ($($name:ident => $body:expr;)*) => {
        mod x86_64 {
            use super::*;
            type P = X86_64;
            $( #[test] fn $name() { $body } )*
        }
        mod i386 {
            use super::*;
            type P = I386;
            $( #[test] fn $name() { $body } )*
        }
    };
}

both_formats! {
    map_range_out_of_frames_changes_nothing => map_range_fails_cleanly::<P>();
    cow_fork_out_of_frames_changes_nothing => fork_fails_cleanly::<P>(ForkPolicy::Cow);
    eager_fork_out_of_frames_changes_nothing => fork_fails_cleanly::<P>(ForkPolicy::Copy);
    new_root_out_of_frames => new_root_fails_cleanly::<P>();
    share_fork_out_of_frames_changes_nothing => fork_fails_cleanly::<P>(ForkPolicy::Share);
    unshare_out_of_frames_changes_nothing => unshare_fails_cleanly::<P>(Change::Unshare);
    map_range_under_shared_table_out_of_frames => unshare_fails_cleanly::<P>(Change::MapRange);
    unmap_part_of_shared_table_out_of_frames => unshare_fails_cleanly::<P>(Change::UnmapPart);
    protect_under_shared_table_out_of_frames => unshare_fails_cleanly::<P>(Change::Protect);
    replace_under_shared_table_out_of_frames => unshare_fails_cleanly::<P>(Change::Replace);
}
