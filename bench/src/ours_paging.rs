//! Our page-table formats ([`X86_64`](vmstorm_core::X86_64), [`I386`](vmstorm_core::I386))
//! as [`PageTables`] candidates: an arena (by default [`WINDOW_FRAMES`] frames) with the bitset
//! allocator, the data frames reserved (reference count 1, as the server hands them to
//! `map`), tables allocated by the format itself.

#[cfg(doc)]
use crate::paging_workload::WINDOW_FRAMES;
use crate::paging_workload::{PageTables, TABLE_RESERVE};
use std::marker::PhantomData;
use vmstorm_core::{Arena, ArenaConfig, Bitset, Frame, Mapping, PageFlags, PageSpan};
use vmstorm_core::{PagingFormat, PhysMem, VirtAddr};

const FLAGS: PageFlags = PageFlags::WRITE.union(PageFlags::USER);

/// An address space of format `P` over its own arena.
#[derive(Debug)]
pub struct Ours<P> {
    /// The arena, allocator and reference counts.
    pub mem: PhysMem<Bitset>,
    /// The root table.
    pub root: Frame,
    first_data: u64,
    _format: PhantomData<P>,
}

impl<P: PagingFormat> PageTables for Ours<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn with_data_frames(data: u64) -> Self {
        let config = ArenaConfig { bytes: (data + TABLE_RESERVE) * 4096, huge_pages: true, file: None };
        let mut mem = PhysMem::<Bitset>::new(Arena::new(&config).expect("an arena"));
        let first = mem.alloc_contiguous(data, 1).expect("room for the data frames");
        // The frames tables come from, written once so the host backs them now (as the
        // peers' windows are): no host page fault in a timed region.
        for f in first.0 + data..mem.arena().frames() {
            mem.arena_mut().frame_mut(Frame(f))[0] = 0;
        }
        let root = P::new_root(&mut mem).expect("a root table");
        Ours { mem, root, first_data: first.0, _format: PhantomData }
    }

    #[inline]
    fn map(&mut self, va: u64, frame: u64) {
        let m = Mapping { frame: Frame(self.first_data + frame), flags: FLAGS };
        P::map(&mut self.mem, self.root, VirtAddr(va), m).expect("map");
    }

    #[inline]
    fn map_range(&mut self, va: u64, first: u64, pages: u64) {
        let span = PageSpan::new(VirtAddr(va), pages).expect("an aligned span");
        P::map_range(&mut self.mem, self.root, span, Frame(self.first_data + first), FLAGS)
            .expect("map_range");
    }

    #[inline]
    fn translate(&mut self, va: u64) -> Option<u64> {
        P::translate(self.mem.arena(), self.root, VirtAddr(va)).map(|m| m.frame.0 - self.first_data)
    }

    #[inline]
    fn unmap_range(&mut self, va: u64, pages: u64) {
        let span = PageSpan::new(VirtAddr(va), pages).expect("an aligned span");
        P::unmap_range(&mut self.mem, self.root, span).expect("no shared tables in the bench space");
    }

    fn table_frames(&self) -> u64 {
        self.mem.table_frames()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paging_workload::{RandomTranslate, SEQ_VA};
    use crate::peers::{Multiarch, OffsetPt};
    use vmstorm_core::{I386, X86_64};

    /// Every candidate maps, translates and unmaps the same way.
    fn roundtrip<P: PageTables>() {
        let mut pt = P::new_space();
        pt.map_range(SEQ_VA, 10, 600);
        pt.map(SEQ_VA + (700 << 12), 5);
        assert_eq!(pt.translate(SEQ_VA), Some(10));
        assert_eq!(pt.translate(SEQ_VA + (599 << 12)), Some(609));
        assert_eq!(pt.translate(SEQ_VA + (600 << 12)), None);
        assert_eq!(pt.translate(SEQ_VA + (700 << 12)), Some(5));
        assert!(pt.table_frames() >= 2);
        pt.unmap_range(SEQ_VA, 600);
        assert_eq!(pt.translate(SEQ_VA + (5 << 12)), None);
        assert_eq!(pt.translate(SEQ_VA + (700 << 12)), Some(5));
    }

    #[test]
    fn ours_and_peers_agree_on_map_translate_unmap() {
        roundtrip::<Ours<X86_64>>();
        roundtrip::<Ours<I386>>();
        roundtrip::<OffsetPt>();
        roundtrip::<Multiarch>();
    }

    /// A fork copies every mapping of the parent, and only those.
    fn fork_copies_the_mappings<P: PageTables>() {
        let pages = 1_500;
        let mut parent = P::with_data_frames(pages);
        parent.map_range(SEQ_VA, 0, pages);
        let mut child = P::with_data_frames(pages);
        parent.fork_into(&mut child, SEQ_VA, pages);
        for i in [0, 1, 511, 512, 1_023, 1_499] {
            assert_eq!(child.translate(SEQ_VA + (i << 12)), Some(i), "page {i}");
            assert_eq!(parent.translate(SEQ_VA + (i << 12)), Some(i), "page {i}");
        }
        assert_eq!(child.translate(SEQ_VA + (pages << 12)), None);
        assert_eq!(child.table_frames(), parent.table_frames());
    }

    #[test]
    fn peers_fork_copies_every_mapping() {
        // page_table_multiarch allows one space at a time: its fork is not benched.
        fork_copies_the_mappings::<OffsetPt>();
    }

    #[test]
    fn scattered_layout_spreads_over_a_thousand_leaf_tables() {
        let mut w = RandomTranslate::<Ours<X86_64>>::build(1);
        assert!(w.pt.table_frames() >= 1024, "{}", w.pt.table_frames());
        for _ in 0..1000 {
            assert!(w.step().is_some());
        }
    }
}
