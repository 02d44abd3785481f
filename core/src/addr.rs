//! Address and size newtypes: `Frame`, `PhysAddr`, `VirtAddr`, `PageSpan`.
//!
//! Replaces MINIX's bare `phys_bytes`/`vir_bytes`/`phys_clicks` integers and the
//! `CLICK_SHIFT` arithmetic scattered through `servers/vm`. A page and a frame are both
//! 4 KiB (MINIX insists `CLICK_SIZE == I386_PAGE_SIZE`).

use core::fmt;

/// Bytes in a page and in a frame.
pub const PAGE_SIZE: u64 = 4096;
/// `log2(PAGE_SIZE)`.
pub const PAGE_SHIFT: u32 = 12;

/// A physical frame number: frame `n` is arena bytes `[n * 4096, (n + 1) * 4096)`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct Frame(pub u64);

impl Frame {
    /// The frame that holds physical address `addr`.
    #[inline]
    pub const fn containing(addr: PhysAddr) -> Frame {
        Frame(addr.0 >> PAGE_SHIFT)
    }
    /// The first byte of the frame.
    #[inline]
    pub const fn start_address(self) -> PhysAddr {
        PhysAddr(self.0 << PAGE_SHIFT)
    }
    /// The frame number as an index into per-frame arrays.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
    /// The frame `n` frames after this one.
    #[inline]
    pub const fn add(self, n: u64) -> Frame {
        Frame(self.0 + n)
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Frame({:#x})", self.0)
    }
}

/// A physical byte address inside (or, for device memory, beyond) the arena.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct PhysAddr(pub u64);

impl PhysAddr {
    /// Offset inside its frame.
    #[inline]
    pub const fn page_offset(self) -> u64 {
        self.0 & (PAGE_SIZE - 1)
    }
}

impl fmt::Debug for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhysAddr({:#x})", self.0)
    }
}

/// A virtual byte address in one process's address space.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct VirtAddr(pub u64);

impl VirtAddr {
    /// Offset inside its page.
    #[inline]
    pub const fn page_offset(self) -> u64 {
        self.0 & (PAGE_SIZE - 1)
    }
    /// Rounded down to its page.
    #[inline]
    pub const fn page_floor(self) -> VirtAddr {
        VirtAddr(self.0 & !(PAGE_SIZE - 1))
    }
    /// Whether it is the first byte of a page.
    #[inline]
    pub const fn is_page_aligned(self) -> bool {
        self.page_offset() == 0
    }
    /// The page number (`addr >> 12`).
    #[inline]
    pub const fn page_number(self) -> u64 {
        self.0 >> PAGE_SHIFT
    }
    /// The address `pages` pages further on (wrapping is the caller's concern).
    #[inline]
    pub const fn add_pages(self, pages: u64) -> VirtAddr {
        VirtAddr(self.0 + (pages << PAGE_SHIFT))
    }
}

impl fmt::Debug for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VirtAddr({:#x})", self.0)
    }
}

/// A page-aligned virtual range `[start, start + pages * 4096)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PageSpan {
    /// First byte; always page aligned.
    pub start: VirtAddr,
    /// Length in pages.
    pub pages: u64,
}

impl PageSpan {
    /// A span of `pages` pages from `start`, or `None` if `start` is unaligned or the end
    /// overflows a `u64`.
    pub fn new(start: VirtAddr, pages: u64) -> Option<PageSpan> {
        if !start.is_page_aligned() {
            return None;
        }
        pages.checked_mul(PAGE_SIZE)?.checked_add(start.0)?;
        Some(PageSpan { start, pages })
    }
    /// The first byte past the span.
    #[inline]
    pub const fn end(self) -> VirtAddr {
        VirtAddr(self.start.0 + self.pages * PAGE_SIZE)
    }
    /// Length in bytes.
    #[inline]
    pub const fn bytes(self) -> u64 {
        self.pages * PAGE_SIZE
    }
    /// Whether `va` lies inside the span.
    #[inline]
    pub const fn contains(self, va: VirtAddr) -> bool {
        va.0 >= self.start.0 && va.0 < self.end().0
    }
    /// Whether the span holds no page.
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.pages == 0
    }
    /// The pages of the span, in order.
    pub fn iter(self) -> impl Iterator<Item = VirtAddr> {
        (0..self.pages).map(move |i| self.start.add_pages(i))
    }
}

impl fmt::Debug for PageSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PageSpan({:#x}..{:#x})", self.start.0, self.end().0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_rejects_unaligned_and_overflow() {
        assert!(PageSpan::new(VirtAddr(1), 1).is_none());
        assert!(PageSpan::new(VirtAddr(!0xfff), 2).is_none());
        let s = PageSpan::new(VirtAddr(0x1000), 3).unwrap();
        assert_eq!(s.end(), VirtAddr(0x4000));
        assert!(s.contains(VirtAddr(0x3fff)) && !s.contains(VirtAddr(0x4000)));
        assert_eq!(s.iter().count(), 3);
    }

    #[test]
    fn frame_round_trips_addresses() {
        let f = Frame::containing(PhysAddr(0x12345));
        assert_eq!(f, Frame(0x12));
        assert_eq!(f.start_address(), PhysAddr(0x12000));
    }
}
