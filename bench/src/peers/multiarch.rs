//! page_table_multiarch 0.6.2's `PageTable64` for x86-64 (`X64PageTable`, 4-level, a
//! cursor API that still walks from the root per page) as a [`PageTables`] candidate over
//! a [`PhysWindow`].
//!
//! The crate calls its OS hooks as associated functions (no `self`), so the window's
//! offset and table frames are process globals: one such address space at a time.

use super::phys_window::{PhysWindow, TableFrames};
use crate::paging_workload::{PageTables, TABLE_RESERVE};
use memory_addr::{PhysAddr, VirtAddr};
use page_table_multiarch::x86_64::X64PageTable;
use page_table_multiarch::{MappingFlags, PageSize, PagingHandler};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

static OFFSET: AtomicUsize = AtomicUsize::new(0);
static TABLES: Mutex<Option<TableFrames>> = Mutex::new(None);
static IN_USE: AtomicBool = AtomicBool::new(false);

/// The crate's OS hooks over the current window.
#[derive(Debug)]
pub struct WindowHandler;

impl PagingHandler for WindowHandler {
    fn alloc_frames(num: usize, _align: usize) -> Option<PhysAddr> {
        if num != 1 {
            return None;
        }
        let f = TABLES.lock().ok()?.as_mut()?.alloc()?;
        Some(PhysAddr::from_usize((f as usize) << 12))
    }

    fn dealloc_frames(paddr: PhysAddr, _num: usize) {
        if let Some(t) = TABLES.lock().expect("table lock").as_mut() {
            t.free((paddr.as_usize() >> 12) as u64);
        }
    }

    #[inline]
    fn phys_to_virt(paddr: PhysAddr) -> VirtAddr {
        VirtAddr::from_usize(OFFSET.load(Ordering::Relaxed) + paddr.as_usize())
    }
}

/// An address space of the crate's `X64PageTable`.
pub struct Multiarch {
    // Declared first: dropped (freeing its tables into the window) before the window.
    pt: X64PageTable<WindowHandler>,
    _window: PhysWindow,
}

impl std::fmt::Debug for Multiarch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Multiarch").finish_non_exhaustive()
    }
}

impl Drop for Multiarch {
    fn drop(&mut self) {
        IN_USE.store(false, Ordering::Release);
    }
}

const FLAGS: MappingFlags = MappingFlags::READ.union(MappingFlags::WRITE).union(MappingFlags::USER);

impl PageTables for Multiarch {
    fn name(&self) -> &'static str {
        "page_table_multiarch"
    }

    /// # Panics
    /// If another `Multiarch` is alive (the crate's hooks are global).
    fn with_data_frames(data: u64) -> Self {
        assert!(!IN_USE.swap(true, Ordering::Acquire), "one page_table_multiarch space at a time");
        let mut window = PhysWindow::new(data + TABLE_RESERVE);
        window.prefault(data);
        OFFSET.store(window.offset(), Ordering::Relaxed);
        *TABLES.lock().expect("table lock") = Some(TableFrames::new(data, data + TABLE_RESERVE));
        let pt = X64PageTable::<WindowHandler>::try_new().expect("a root table");
        Multiarch { pt, _window: window }
    }

    #[inline]
    fn map(&mut self, va: u64, frame: u64) {
        let va = VirtAddr::from_usize(va as usize);
        let pa = PhysAddr::from_usize((frame as usize) << 12);
        self.pt.cursor().map(va, pa, PageSize::Size4K, FLAGS).expect("map");
    }

    fn map_range(&mut self, va: u64, first: u64, pages: u64) {
        let base = VirtAddr::from_usize(va as usize);
        let delta = ((first as usize) << 12).wrapping_sub(va as usize);
        let get_paddr = |v: VirtAddr| PhysAddr::from_usize(v.as_usize().wrapping_add(delta));
        self.pt
            .cursor()
            .map_region(base, get_paddr, (pages as usize) << 12, FLAGS, false)
            .expect("map_region");
    }

    #[inline]
    fn translate(&mut self, va: u64) -> Option<u64> {
        let (pa, _, _) = self.pt.query(VirtAddr::from_usize(va as usize)).ok()?;
        Some((pa.as_usize() >> 12) as u64)
    }

    fn unmap_range(&mut self, va: u64, pages: u64) {
        let _ = self.pt.cursor().unmap_region(VirtAddr::from_usize(va as usize), (pages as usize) << 12);
    }

    fn table_frames(&self) -> u64 {
        TABLES.lock().ok().and_then(|t| t.as_ref().map(|t| t.in_use)).unwrap_or(0)
    }
}
