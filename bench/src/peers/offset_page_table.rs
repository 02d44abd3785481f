//! x86_64 0.15.5's `OffsetPageTable` (4-level, every call walks from the root) as a
//! [`PageTables`] candidate over a [`PhysWindow`]; its fork iterates the crate's
//! `PageTable` arrays directly.

use super::phys_window::{PhysWindow, TableFrames};
use crate::paging_workload::{PageTables, TABLE_RESERVE};
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags, PhysFrame, Size4KiB,
};
use x86_64::{PhysAddr, VirtAddr};

/// Table frames for the crate's `map_to`.
struct Alloc<'a>(&'a mut TableFrames);

// SAFETY: every frame returned is an unused frame of the window (the table allocator never
// hands a frame out twice while it is in use), 4 KiB aligned, and backed by memory the
// window keeps mapped for the page table's whole life.
unsafe impl FrameAllocator<Size4KiB> for Alloc<'_> {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        let f = self.0.alloc()?;
        Some(PhysFrame::containing_address(PhysAddr::new(f << 12)))
    }
}

/// An address space of the crate's `OffsetPageTable`.
#[derive(Debug)]
pub struct OffsetPt {
    window: PhysWindow,
    tables: TableFrames,
    root: u64,
}

const FLAGS: PageTableFlags =
    PageTableFlags::PRESENT.union(PageTableFlags::WRITABLE).union(PageTableFlags::USER_ACCESSIBLE);

impl OffsetPt {
    #[inline]
    fn with_mapper<R>(&mut self, f: impl FnOnce(&mut OffsetPageTable<'_>, &mut TableFrames) -> R) -> R {
        let offset = VirtAddr::new(self.window.offset() as u64);
        let root = self.window.frame_ptr(self.root) as *mut PageTable;
        // SAFETY: `root` points to a 4 KiB-aligned table frame of the window holding a
        // valid (zero-initialised, then crate-maintained) level-4 table; the window maps
        // all physical memory at `offset`, as `OffsetPageTable::new` requires; no other
        // reference into the window is alive while the mapper exists (it lives only for
        // this call, and `&mut self` excludes other users).
        let mut mapper = unsafe { OffsetPageTable::new(&mut *root, offset) };
        f(&mut mapper, &mut self.tables)
    }
}

impl PageTables for OffsetPt {
    fn name(&self) -> &'static str {
        "x86_64-OffsetPageTable"
    }

    fn with_data_frames(data: u64) -> Self {
        let mut window = PhysWindow::new(data + TABLE_RESERVE);
        window.prefault(data);
        let mut tables = TableFrames::new(data, data + TABLE_RESERVE);
        let root = tables.alloc().expect("a root frame");
        window.zero(root);
        OffsetPt { window, tables, root }
    }

    #[inline]
    fn map(&mut self, va: u64, frame: u64) {
        self.with_mapper(|m, t| {
            let page = Page::<Size4KiB>::containing_address(VirtAddr::new(va));
            let frame = PhysFrame::containing_address(PhysAddr::new(frame << 12));
            // SAFETY: the frame is a data frame of the window that no one dereferences
            // through this mapping (the benches only build and walk tables).
            unsafe { m.map_to(page, frame, FLAGS, &mut Alloc(t)) }.expect("map_to").ignore();
        });
    }

    fn map_range(&mut self, va: u64, first: u64, pages: u64) {
        self.with_mapper(|m, t| {
            let mut alloc = Alloc(t);
            for i in 0..pages {
                let page = Page::<Size4KiB>::containing_address(VirtAddr::new(va + (i << 12)));
                let frame = PhysFrame::containing_address(PhysAddr::new((first + i) << 12));
                // SAFETY: as in `map`.
                unsafe { m.map_to(page, frame, FLAGS, &mut alloc) }.expect("map_to").ignore();
            }
        });
    }

    #[inline]
    fn translate(&mut self, va: u64) -> Option<u64> {
        self.with_mapper(|m, _| {
            let page = Page::<Size4KiB>::containing_address(VirtAddr::new(va));
            m.translate_page(page).ok().map(|f| f.start_address().as_u64() >> 12)
        })
    }

    fn unmap_range(&mut self, va: u64, pages: u64) {
        self.with_mapper(|m, _| {
            for i in 0..pages {
                let page = Page::<Size4KiB>::containing_address(VirtAddr::new(va + (i << 12)));
                if let Ok((_, flush)) = m.unmap(page) {
                    flush.ignore();
                }
            }
        });
    }

    fn table_frames(&self) -> u64 {
        self.tables.in_use
    }

    /// Copy-on-write fork by iterating the parent's tables level by level (the crate's
    /// `PageTable` is an indexable array of entries): every present table gets a copy in the
    /// child, every leaf entry is made read-only in both. One visit per entry, no walk from
    /// the root per page.
    fn fork_into(&mut self, child: &mut Self, _va: u64, _pages: u64) {
        let parent_base = self.window.base_ptr();
        let child_base = child.window.base_ptr();
        let mut walk = Fork { parent_base, child_base, tables: &mut child.tables };
        walk.copy(self.root, child.root, 4);
    }
}

/// The state of one [`OffsetPt::fork_into`].
struct Fork<'a> {
    parent_base: *mut u8,
    child_base: *mut u8,
    tables: &'a mut TableFrames,
}

impl Fork<'_> {
    /// Copies the level-`level` table in parent frame `from` into child frame `to` (zeroed).
    fn copy(&mut self, from: u64, to: u64, level: u8) {
        // SAFETY: `from` is a table frame of the parent's window and `to` one of the child's
        // (two distinct mappings, so the two references never overlap); both are 4 KiB
        // aligned and hold valid `PageTable`s (crate-maintained, or zeroed); no other
        // reference into either window is alive during the walk (`fork_into` holds both
        // spaces mutably), and each recursion step uses other frames than its caller's.
        let (src, dst) = unsafe {
            (
                &mut *(self.parent_base.add(from as usize * 4096) as *mut PageTable),
                &mut *(self.child_base.add(to as usize * 4096) as *mut PageTable),
            )
        };
        for (i, e) in src.iter_mut().enumerate() {
            if e.is_unused() {
                continue;
            }
            if level == 1 {
                let flags = e.flags() - PageTableFlags::WRITABLE;
                e.set_flags(flags);
                dst[i].set_addr(e.addr(), flags);
            } else {
                let t = self.tables.alloc().expect("a table frame for the child");
                // SAFETY: as above: `t` is a fresh table frame of the child's window.
                unsafe { (*(self.child_base.add(t as usize * 4096) as *mut PageTable)).zero() };
                dst[i].set_addr(PhysAddr::new(t << 12), e.flags());
                self.copy(e.addr().as_u64() >> 12, t, level - 1);
            }
        }
    }
}
