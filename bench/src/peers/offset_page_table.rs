//! x86_64 0.15.5's `OffsetPageTable` (4-level, every call walks from the root) as a
//! [`PageTables`] candidate over a [`PhysWindow`].

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
}
