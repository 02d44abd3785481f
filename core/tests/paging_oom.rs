//! Out of frames at every possible point: with an allocator that refuses its N-th
//! allocation, for every N, `map_range` and `fork_copy` (both modes) either succeed or
//! fail with `OutOfFrames` leaving tables, reference counts, free count and table count
//! exactly as before (compared by a full dump).

mod common;

use common::{check_refs, dump, phys, Failing, VecAlloc};
use vmstorm_core::paging::PagingError;
use vmstorm_core::{
    ForkCopy, Frame, FrameAllocator, Mapping, PageFlags, PageSpan, PagingFormat, PhysMem, VirtAddr, I386,
    X86_64,
};

type Mem = PhysMem<Failing<VecAlloc>>;

const RW: PageFlags = PageFlags(PageFlags::WRITE.0 | PageFlags::USER.0);

fn span(start: u64, pages: u64) -> PageSpan {
    PageSpan::new(VirtAddr(start), pages).unwrap()
}

/// `n` consecutive held frames with distinct contents.
fn held(mem: &mut Mem, n: u64) -> Frame {
    let first = mem.alloc.alloc_contiguous(n, 1).unwrap();
    for i in 0..n {
        mem.refs.set(first.add(i), 1);
        mem.arena.frame_mut(first.add(i)).fill((i * 3 + 1) as u8);
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
    let sibling = P::fork_copy(mem, root, ForkCopy::Cow).unwrap();
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
        mem.alloc.arm(n);
        let r = P::map_range(&mut mem, root, s, f, RW);
        mem.alloc.arm(0);
        match r {
            Err(e) => {
                assert_eq!(e, PagingError::OutOfFrames, "n = {n}");
                assert_eq!(dump::<P, _>(&mem, &[root, sibling]), before, "n = {n}");
                failures += 1;
            }
            Ok(()) => {
                assert!(mem.alloc.calls < n, "succeeded although allocation {n} was refused");
                break;
            }
        }
    }
    assert!(failures >= 2, "the range needs several tables");
    check_refs::<P, _>(&mem, &[root, sibling], &[]);
    assert_eq!(P::translate(&mem.arena, root, s.start.add_pages(2999)).unwrap().frame, f.add(2999));
}

fn fork_fails_cleanly<P: PagingFormat>(mode: ForkCopy) {
    let mut mem: Mem = phys(4096);
    let (root, sibling) = populated::<P>(&mut mem);
    let start_free = mem.free_frames();
    let mut failures = 0;
    for n in 1.. {
        let before = dump::<P, _>(&mem, &[root, sibling]);
        mem.alloc.arm(n);
        let r = P::fork_copy(&mut mem, root, mode);
        mem.alloc.arm(0);
        match r {
            Err(e) => {
                assert_eq!(e, PagingError::OutOfFrames, "n = {n}");
                assert_eq!(dump::<P, _>(&mem, &[root, sibling]), before, "n = {n}");
                failures += 1;
            }
            Ok(child) => {
                assert!(mem.alloc.calls < n);
                check_refs::<P, _>(&mem, &[root, sibling, child], &[]);
                P::destroy(&mut mem, child);
                break;
            }
        }
    }
    let expect = match mode {
        ForkCopy::Cow => 3,        // every table (at least root + one leaf table + one more)
        ForkCopy::Eager => 3 + 20, // tables and private pages
    };
    assert!(failures >= expect, "{failures} failure points");
    check_refs::<P, _>(&mem, &[root, sibling], &[]);
    assert_eq!(mem.free_frames(), start_free);
}

fn new_root_fails_cleanly<P: PagingFormat>() {
    let mut mem: Mem = phys(64);
    let before = mem.free_frames();
    mem.alloc.arm(1);
    assert_eq!(P::new_root(&mut mem), Err(PagingError::OutOfFrames));
    assert_eq!(mem.free_frames(), before);
    assert_eq!(mem.table_frames, 0);
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
    cow_fork_out_of_frames_changes_nothing => fork_fails_cleanly::<P>(ForkCopy::Cow);
    eager_fork_out_of_frames_changes_nothing => fork_fails_cleanly::<P>(ForkCopy::Eager);
    new_root_out_of_frames => new_root_fails_cleanly::<P>();
}
