//! The x86-64 format: four levels (PML4, PDPT, PD, PT) of 512 64-bit entries, 48-bit
//! virtual addresses of which the lower (user) half is mappable, 52-bit physical addresses.
//!
//! MINIX 3 ran i386 only; this is the format its `pagetable.c` would have with long mode
//! paging (`x86::bits64::paging`). Leaf pages are 4 KiB; a page-directory entry with `PS`
//! maps a 2 MiB huge page (see `paging::huge`).

use crate::addr::Frame;
use crate::arena::Arena;
use crate::paging::layout::Layout;

/// The x86-64 four-level page-table format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct X86_64;

impl Layout for X86_64 {
    type Pte = u64;
    const NAME: &'static str = "x86-64";
    const LEVELS: usize = 4;
    const INDEX_BITS: u32 = 9;
    /// The canonical user half: `0 .. 0x0000_8000_0000_0000`. Non-canonical and kernel-half
    /// addresses are beyond it.
    const VA_END: u64 = 0x0000_8000_0000_0000;
    /// `MAXPHYADDR` = 52 bits.
    const FRAME_END: u64 = 1 << (x86::bits64::paging::MAXPHYADDR - 12);
    const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
    /// Bit 52, the first of the bits 52–58 a 2 MiB page-directory entry leaves to software.
    const HUGE_MARK: u64 = 1 << 52;

    #[inline(always)]
    fn table(arena: &Arena, frame: Frame) -> &[u64] {
        arena.table64(frame)
    }
    #[inline(always)]
    fn table_mut(arena: &mut Arena, frame: Frame) -> &mut [u64] {
        arena.table64_mut(frame)
    }
    #[inline(always)]
    fn entry(arena: &Arena, table: u64, index: usize) -> u64 {
        arena.entry_u64(table, index)
    }
    #[inline(always)]
    fn load(arena: &Arena, offset: u64) -> u64 {
        arena.load_u64(offset)
    }
    #[inline(always)]
    fn store(arena: &mut Arena, offset: u64, raw: u64) {
        arena.store_u64(offset, raw)
    }
    #[inline(always)]
    fn tables_both_mut(arena: &mut Arena, a: Frame, b: Frame) -> (&mut [u64], &mut [u64]) {
        let (x, y) = arena.tables64_both_mut(a, b);
        (x, y)
    }
}
