//! Virtual regions: what a range of a process's address space may hold.
//!
//! Replaces `struct vir_region` of `servers/vm/region.h` (flags `VR_ANON`, `VR_DIRECT`,
//! `VR_SHARED`, `VR_CONTIG`, `VR_WRITABLE`; tags `VRT_TEXT`/`VRT_HEAP`/`VRT_STACK`) and the
//! memory-type split of MINIX 3.4's `memtype.h` (`mem_anon.c`, `mem_anon_contig.c`,
//! `mem_directphys.c`, `mem_shared.c`) as the closed enum [`MemType`]. Which pages are
//! present, and which frames they hold, is in the page tables and the reference counts,
//! not here (no `phys_region`/`phys_block` lists). The per-process sorted container is
//! [`RegionMap`] in `map.rs`.

mod map;

pub use map::RegionMap;

use crate::addr::{Frame, PageSpan, VirtAddr, PAGE_SIZE};
use crate::message::FieldValue;
use crate::paging::PageFlags;
use core::fmt;

bitflags::bitflags! {
    /// Memory protection of a region (`PROT_*` of `sys/mman.h`); honoured by the page tables.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct MapProt: u16 {
        /// Readable (`PROT_READ`).
        const READ = 1;
        /// Writable (`PROT_WRITE`).
        const WRITE = 2;
        /// Executable (`PROT_EXEC`); executable implies readable on x86.
        const EXEC = 4;
        /// Read and write.
        const RW = 3;
        /// Read and execute (text).
        const RX = 5;
    }
}

impl FieldValue<i16> for MapProt {
    #[inline(always)]
    fn from_raw(raw: i16) -> MapProt {
        MapProt::from_bits_retain(raw as u16)
    }
    #[inline(always)]
    fn to_raw(self) -> i16 {
        self.bits() as i16
    }
}

impl MapProt {
    /// No access (`PROT_NONE`).
    pub const NONE: MapProt = MapProt::empty();
    /// Every known bit.
    pub const ALL: MapProt = MapProt::all();

    /// Whether writes are allowed.
    #[inline]
    pub const fn writable(self) -> bool {
        self.contains(MapProt::WRITE)
    }
    /// Whether any access is allowed (x86 cannot express write-only or exec-only: any bit
    /// means readable).
    #[inline]
    pub const fn accessible(self) -> bool {
        self.intersects(MapProt::ALL)
    }
}

impl fmt::Debug for MapProt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = if self.contains(MapProt::READ) { 'r' } else { '-' };
        let w = if self.contains(MapProt::WRITE) { 'w' } else { '-' };
        let x = if self.contains(MapProt::EXEC) { 'x' } else { '-' };
        write!(f, "{r}{w}{x}")
    }
}

/// What kind of memory backs a region.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MemType {
    /// Private anonymous memory: demand-zero, copy-on-write after fork (`mem_anon.c`).
    Anon,
    /// Anonymous memory preallocated physically contiguous (`MAP_CONTIG`,
    /// `mem_anon_contig.c`); contiguity holds until a fork's copy-on-write.
    AnonContig,
    /// Fixed physical (device) memory from `base` on: never counted or freed
    /// (`VR_DIRECT`, `mem_directphys.c`).
    DirectPhys {
        /// Frame mapped at the region's first page.
        base: Frame,
    },
    /// Shared anonymous memory: preallocated, shared writable across fork and by
    /// `VM_REMAP` (`VR_SHARED`, `mem_shared.c`).
    Shared,
}

/// The role of a region in an image (`VRT_*` tags, kept only for layout decisions).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum RegionTag {
    /// An mmap'd or remapped region.
    None,
    /// Program text.
    Text,
    /// Data, bss and the brk heap.
    Heap,
    /// The stack.
    Stack,
}

/// One region: `pages` pages from `start`, of one memory type, protection and tag.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Region {
    /// First byte (page aligned).
    pub start: VirtAddr,
    /// Length in pages (at least 1).
    pub pages: u64,
    /// Backing memory type.
    pub mem: MemType,
    /// Protection.
    pub prot: MapProt,
    /// Role in the image.
    pub tag: RegionTag,
}

impl Region {
    /// The leaf flags a page of this region gets when first mapped (MINIX's
    /// `map_ph_writept` choice of PTE bits): user when accessible, writable when the
    /// protection allows it, and the software bits of its memory type.
    #[inline]
    pub fn leaf_flags(&self) -> PageFlags {
        let mut f = PageFlags::EMPTY;
        if self.prot.accessible() {
            f |= PageFlags::USER;
        }
        if self.prot.writable() {
            f |= PageFlags::WRITE;
        }
        match self.mem {
            MemType::Shared => f | PageFlags::SHARED,
            MemType::DirectPhys { .. } => f | PageFlags::DIRECT | PageFlags::NOCACHE,
            MemType::Anon | MemType::AnonContig => f,
        }
    }

    /// The first byte past the region.
    #[inline]
    pub const fn end(&self) -> VirtAddr {
        VirtAddr(self.start.0 + self.pages * PAGE_SIZE)
    }
    /// The region as a page span.
    #[inline]
    pub const fn span(&self) -> PageSpan {
        PageSpan { start: self.start, pages: self.pages }
    }
    /// Whether `va` lies inside.
    #[inline]
    pub const fn contains(&self, va: VirtAddr) -> bool {
        va.0 >= self.start.0 && va.0 < self.end().0
    }
    /// Whether `other` starts where this one ends and could be one region with it.
    /// Only private anonymous regions merge; shared, contiguous and direct ones keep
    /// their identity (VM_REMAP, VM_GETPHYS and VM_UNMAP_PHYS name them by start).
    pub fn merges_with(&self, other: &Region) -> bool {
        self.end() == other.start
            && self.mem == MemType::Anon
            && other.mem == MemType::Anon
            && self.prot == other.prot
            && self.tag == other.tag
    }
    /// Splits at page-aligned `va` strictly inside the region: `(below, from_va)`.
    pub fn split_at(&self, va: VirtAddr) -> (Region, Region) {
        debug_assert!(va.0 > self.start.0 && va.0 < self.end().0 && va.is_page_aligned());
        let low_pages = (va.0 - self.start.0) / PAGE_SIZE;
        let mut low = *self;
        low.pages = low_pages;
        let mut high = *self;
        high.start = va;
        high.pages = self.pages - low_pages;
        if let MemType::DirectPhys { base } = self.mem {
            high.mem = MemType::DirectPhys { base: base.add(low_pages) };
        }
        (low, high)
    }
}
