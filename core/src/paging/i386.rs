//! The i386 format: two levels (page directory, page table) of 1024 32-bit entries,
//! 32-bit virtual and physical addresses (no PAE). A page-directory entry with `PS`
//! (CR4.PSE) maps a 4 MiB huge page (see `paging::huge`).
//!
//! Replaces MINIX 3's own format (`arch/i386/pagetable.c`, `x86::bits32::paging`). A
//! virtual address at or above 4 GiB is refused with `AddressOutOfRange`, a frame whose
//! physical address is at or above 4 GiB with `FrameOutOfRange`: an entry cannot hold it.

use crate::addr::Frame;
use crate::arena::Arena;
use crate::paging::layout::Layout;

/// The i386 two-level page-table format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct I386;

impl Layout for I386 {
    type Pte = u32;
    const NAME: &'static str = "i386";
    const LEVELS: usize = 2;
    const INDEX_BITS: u32 = 10;
    const VA_END: u64 = 1 << 32;
    const FRAME_END: u64 = 1 << 20;
    const ADDR_MASK: u64 = 0xffff_f000;
    const HUGE_MARK: u64 = 0;

    #[inline(always)]
    fn table(arena: &Arena, frame: Frame) -> &[u32] {
        arena.table32(frame)
    }
    #[inline(always)]
    fn table_mut(arena: &mut Arena, frame: Frame) -> &mut [u32] {
        arena.table32_mut(frame)
    }
    #[inline(always)]
    fn entry(arena: &Arena, table: u64, index: usize) -> u64 {
        u64::from(arena.entry_u32(table, index))
    }
    #[inline(always)]
    fn load(arena: &Arena, offset: u64) -> u64 {
        u64::from(arena.load_u32(offset))
    }
    #[inline(always)]
    fn store(arena: &mut Arena, offset: u64, raw: u64) {
        arena.store_u32(offset, raw as u32)
    }
    #[inline(always)]
    fn tables_both_mut(arena: &mut Arena, a: Frame, b: Frame) -> (&mut [u32], &mut [u32]) {
        let (x, y) = arena.tables32_both_mut(a, b);
        (x, y)
    }
}
