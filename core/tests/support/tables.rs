//! Page-table state for before/after comparisons: physical memory for the paging tests,
//! a full dump of tables, counts and contents, and the reference-count checker.

use vmstorm_core::{Arena, Frame, FrameAllocator, PagingFormat, PhysMem};

/// Physical memory of `frames` frames over allocator `A`.
pub fn phys<A: FrameAllocator>(frames: u64) -> PhysMem<A> {
    PhysMem::new(Arena::with_frames(frames).expect("arena"))
}

/// Everything page-table operations may change: the tables of each space (frame and
/// bytes), every reference count, the free count and the table count.
#[derive(Debug, PartialEq, Eq)]
pub struct Dump {
    tables: Vec<Vec<(Frame, Vec<u8>)>>,
    refs: Vec<u32>,
    free: u64,
    table_frames: u64,
    data_hash: u64,
}

/// Dumps the state of the spaces rooted at `roots` (plus a hash of all arena bytes).
pub fn dump<P: PagingFormat, A: FrameAllocator>(mem: &PhysMem<A>, roots: &[Frame]) -> Dump {
    let tables = roots
        .iter()
        .map(|&r| {
            let mut v = Vec::new();
            P::for_each_table(mem.arena(), r, &mut |t| v.push((t, mem.arena().frame(t).to_vec())));
            v
        })
        .collect();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in 0..mem.arena().frames() {
        if !mem.allocator().is_free(Frame(f)) {
            for &b in mem.arena().frame(Frame(f)).iter() {
                h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            }
        }
    }
    Dump {
        tables,
        refs: mem.refs().as_slice().to_vec(),
        free: mem.free_frames(),
        table_frames: mem.table_frames(),
        data_hash: h,
    }
}

/// Checks that every frame's reference count equals the references the spaces rooted at
/// `roots` hold on it, plus `extra` (references held elsewhere, e.g. by the test), and
/// that allocated frames are exactly the referenced ones. A table counts one reference
/// per directory entry linking it (leaf tables shared by an on-demand fork have several)
/// but once in the table count, and its entries' references once; a table linked more
/// than once must be linked read-only everywhere.
pub fn check_refs<P: PagingFormat, A: FrameAllocator>(mem: &PhysMem<A>, roots: &[Frame], extra: &[Frame]) {
    let n = mem.arena().frames() as usize;
    let mut want = vec![0u32; n];
    let mut tables = std::collections::BTreeSet::new();
    let mut counted_leaves = std::collections::BTreeSet::new();
    for &r in roots {
        P::for_each_table(mem.arena(), r, &mut |t| {
            want[t.index()] += 1;
            tables.insert(t);
            let empty = mem.arena().frame(t).iter().all(|&b| b == 0);
            assert!(t == r || !empty, "empty table {t:?} left in the space of {r:?}");
            let present = P::present_entries(mem.arena(), t);
            assert_eq!(u64::from(mem.live(t)), present, "count of present entries of {t:?}");
        });
        let mut leaves = Vec::new();
        P::for_each_leaf_table(mem.arena(), r, &mut |v, t, w| {
            assert!(!w || mem.refs().get(t) == 1, "shared leaf table {t:?} linked writable");
            leaves.push((v, t));
        });
        let all = vmstorm_core::PageSpan { start: vmstorm_core::VirtAddr(0), pages: P::VA_END >> 12 };
        // Huge entries: their pages are in no leaf table and counted once per mapping.
        let mut huge = Vec::new();
        P::for_each_huge(mem.arena(), r, all, &mut |va, m| {
            assert_eq!(m.frame.0 % P::HUGE_PAGES, 0, "huge entry at {va:?} not aligned");
            huge.push(va.0);
        });
        let block = P::HUGE_PAGES << 12;
        let (mut next, mut count, mut next_huge) = (0, true, 0);
        P::for_each_mapping(mem.arena(), r, all, &mut |va, m| {
            while next < leaves.len() && leaves[next].0 <= va {
                count = counted_leaves.insert(leaves[next].1);
                next += 1;
            }
            while next_huge < huge.len() && huge[next_huge] + block <= va.0 {
                next_huge += 1;
            }
            let in_huge = next_huge < huge.len() && huge[next_huge] <= va.0;
            if (count || in_huge) && !m.flags.contains(vmstorm_core::PageFlags::DIRECT) {
                want[m.frame.index()] += 1;
            }
        });
    }
    let tables = tables.len() as u64;
    for &f in extra {
        want[f.index()] += 1;
    }
    assert_eq!(tables, mem.table_frames(), "table count");
    for (f, (&w, &h)) in want.iter().zip(mem.refs().as_slice()).enumerate() {
        assert_eq!(w, h, "refcount of frame {f:#x}");
        assert_eq!(w == 0, mem.allocator().is_free(Frame(f as u64)), "free state of frame {f:#x}");
    }
}
