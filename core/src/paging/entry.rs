//! The raw bits of a page-table entry, shared by both formats, and the conversion between
//! them and the format-independent [`PageFlags`].
//!
//! Replaces the `I386_VM_*` bit definitions of MINIX's `arch/i386/include/vm.h` and the
//! flag juggling of `pt_writemap`. The bit values are taken from the `x86` crate
//! (`bits64::paging::PTFlags` and `bits32::paging::PTFlags`), whose low twelve bits are the
//! same in both formats; the crate's entry constructors are not used because they `assert!`
//! even in release builds, so entries are built here from raw bits. Bits 9–11 are the
//! architecture's "available to software" (AVL) bits, which the hardware ignores; this
//! crate uses them for COW (9), SHARED (10) and DIRECT (11).

use crate::paging::PageFlags;
use x86::bits32::paging::PTFlags as Pt32;
use x86::bits64::paging::PTFlags as Pt64;

/// P: the entry is present.
pub const PRESENT: u64 = Pt64::P.bits();
/// R/W: writes allowed.
pub const WRITE: u64 = Pt64::RW.bits();
/// U/S: user-mode accesses allowed.
pub const USER: u64 = Pt64::US.bits();
/// PWT: write-through caching.
pub const WRITE_THROUGH: u64 = Pt64::PWT.bits();
/// PCD: caching disabled.
pub const CACHE_DISABLE: u64 = Pt64::PCD.bits();
/// A: set by the MMU on any access through the entry.
pub const ACCESSED: u64 = Pt64::A.bits();
/// D: set by the MMU on a write through a leaf entry.
pub const DIRTY: u64 = Pt64::D.bits();
/// AVL bit 9: copy-on-write.
pub const COW: u64 = Pt64::USER_9.bits();
/// AVL bit 10: shared memory.
pub const SHARED: u64 = Pt64::USER_10.bits();
/// AVL bit 11: direct physical memory, not reference counted.
pub const DIRECT: u64 = Pt64::USER_11.bits();
/// PS (bit 7) in a page-directory entry: the entry maps a huge page itself (2 MiB on
/// x86-64, 4 MiB on i386 with CR4.PSE) instead of linking a leaf table. (In a leaf entry
/// bit 7 is PAT, which this crate never sets.)
pub const HUGE: u64 = 1 << 7;
/// The flag bits below the address (bits 0–11).
pub const FLAG_MASK: u64 = 0xfff;

/// What a non-leaf entry holds besides its table's address: present, writable, user. The
/// leaf decides the page's protection, as in MINIX's page directories.
pub const TABLE_LINK: u64 = PRESENT | WRITE | USER;

// The 32-bit format uses the same low bits; the AVL bits are architectural (ignored by
// the MMU) in both, the `x86` crate just names them only for the 64-bit entries.
const _: () = {
    assert!(Pt32::P.bits() as u64 == PRESENT);
    assert!(Pt32::RW.bits() as u64 == WRITE);
    assert!(Pt32::US.bits() as u64 == USER);
    assert!(Pt32::PWT.bits() as u64 == WRITE_THROUGH);
    assert!(Pt32::PCD.bits() as u64 == CACHE_DISABLE);
    assert!(Pt32::A.bits() as u64 == ACCESSED);
    assert!(Pt32::D.bits() as u64 == DIRTY);
    assert!(COW == 1 << 9 && SHARED == 1 << 10 && DIRECT == 1 << 11);
    assert!(x86::bits32::paging::PDFlags::PS.bits() as u64 == HUGE);
    assert!(x86::bits64::paging::PDFlags::PS.bits() == HUGE);
    // No flag shares PS's bit: decoding a huge entry's flags drops it.
    assert!(PageFlags::ALL.bits() as u64 & HUGE == 0);
    // `to_raw`/`from_raw` are masks: every flag sits at its entry bit.
    assert!(PageFlags::WRITE.bits() as u64 == WRITE && PageFlags::USER.bits() as u64 == USER);
    assert!(PageFlags::ACCESSED.bits() as u64 == ACCESSED && PageFlags::DIRTY.bits() as u64 == DIRTY);
    assert!(PageFlags::NOCACHE.bits() as u64 == CACHE_DISABLE && PageFlags::COW.bits() as u64 == COW);
    assert!(PageFlags::SHARED.bits() as u64 == SHARED && PageFlags::DIRECT.bits() as u64 == DIRECT);
    assert!(
        PageFlags::ALL.bits() as u64
            == WRITE | USER | CACHE_DISABLE | ACCESSED | DIRTY | COW | SHARED | DIRECT
    );
};

/// One table entry as stored in a table: `u64` for x86-64, `u32` for i386. All work is
/// done on the value widened to `u64`.
pub trait Pte: Copy + Eq + Default + 'static {
    /// The empty (not present) entry.
    const ZERO: Self;
    /// The entry widened to 64 bits.
    fn raw(self) -> u64;
    /// An entry from 64 bits (the caller has checked that the address fits).
    fn from_raw(raw: u64) -> Self;
    /// Whether every entry of `run` is zero (an OR-reduction in the native width, which
    /// the compiler turns into vector code).
    fn all_zero(run: &[Self]) -> bool;
}

impl Pte for u64 {
    const ZERO: u64 = 0;
    #[inline(always)]
    fn raw(self) -> u64 {
        self
    }
    #[inline(always)]
    fn from_raw(raw: u64) -> u64 {
        raw
    }
    #[inline(always)]
    fn all_zero(run: &[u64]) -> bool {
        run.iter().fold(0, |a, &e| a | e) == 0
    }
}

impl Pte for u32 {
    const ZERO: u32 = 0;
    #[inline(always)]
    fn raw(self) -> u64 {
        u64::from(self)
    }
    #[inline(always)]
    fn from_raw(raw: u64) -> u32 {
        raw as u32
    }
    #[inline(always)]
    fn all_zero(run: &[u32]) -> bool {
        run.iter().fold(0, |a, &e| a | e) == 0
    }
}

/// The raw flag bits of `flags` (without PRESENT). NOCACHE sets both PCD and PWT; bits
/// that are no flag are dropped.
#[inline(always)]
pub const fn to_raw(flags: PageFlags) -> u64 {
    let f = (flags.bits() & PageFlags::ALL.bits()) as u64;
    f | ((f & CACHE_DISABLE) >> 1)
}

/// The [`PageFlags`] of raw entry bits (PRESENT, PWT and the address are ignored; PCD
/// means NOCACHE).
#[inline(always)]
pub const fn from_raw(raw: u64) -> PageFlags {
    PageFlags::from_bits_truncate(raw as u16)
}

/// The copy-on-write form of a leaf entry for fork: a present, private, writable page
/// loses WRITE and gains COW; every other entry is returned unchanged. Branch-free and
/// compare-free (`x == 0` becomes a sign-bit trick) so that loops over it vectorise with
/// baseline SSE2.
#[inline(always)]
pub const fn fork_cow(e: u64) -> u64 {
    let x = (e & (PRESENT | WRITE | SHARED | DIRECT)) ^ (PRESENT | WRITE);
    // All ones when x == 0, else zero.
    let mask = ((x | x.wrapping_neg()) >> 63).wrapping_sub(1);
    e ^ (mask & (WRITE | COW))
}

/// Whether a leaf entry is private memory (neither SHARED nor DIRECT), the kind that fork
/// makes copy-on-write.
#[inline(always)]
pub const fn is_private(raw: u64) -> bool {
    raw & (SHARED | DIRECT) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_through_raw_bits() {
        for bits in 0..=0xfffu16 {
            let f = PageFlags::from_bits_truncate(bits);
            assert_eq!(from_raw(to_raw(f)), f, "{f:?}");
            assert_eq!(to_raw(f) & PRESENT, 0);
        }
        assert_eq!(to_raw(PageFlags::WRITE | PageFlags::USER), WRITE | USER);
        assert_eq!(to_raw(PageFlags::NOCACHE), CACHE_DISABLE | WRITE_THROUGH);
        assert_eq!(to_raw(PageFlags::ACCESSED | PageFlags::DIRTY), ACCESSED | DIRTY);
        assert_eq!(to_raw(PageFlags::COW), COW);
        assert_eq!(to_raw(PageFlags::SHARED), SHARED);
        assert_eq!(to_raw(PageFlags::DIRECT), DIRECT);
        assert_eq!(from_raw(0xfff_f000 | PRESENT), PageFlags::EMPTY);
    }

    #[test]
    fn fork_cow_only_touches_private_writable_pages() {
        let page = 0x1234_5000;
        assert_eq!(fork_cow(page | PRESENT | WRITE | USER), page | PRESENT | USER | COW);
        assert_eq!(fork_cow(page | PRESENT | WRITE | USER | DIRTY), page | PRESENT | USER | COW | DIRTY);
        for unchanged in [
            0,
            page | WRITE,
            page | PRESENT | USER,
            page | PRESENT | USER | COW,
            page | PRESENT | WRITE | SHARED,
            page | PRESENT | WRITE | DIRECT,
            (1 << 63) | page | PRESENT,
        ] {
            assert_eq!(fork_cow(unchanged), unchanged, "{unchanged:#x}");
        }
    }

    #[test]
    fn u32_entries_widen_and_truncate() {
        assert_eq!(<u32 as Pte>::from_raw(0xffff_f067).raw(), 0xffff_f067);
        assert_eq!(<u64 as Pte>::from_raw(1 << 40).raw(), 1 << 40);
    }
}
