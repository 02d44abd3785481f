//! Page tables: the [`PagingFormat`] strategy trait and its formats, `x86-64` (4-level,
//! 48-bit) and `i386` (2-level, 32-bit).
//!
//! Replaces `servers/vm/arch/i386/pagetable.c` (`pt_new`, `pt_ptalloc`, `pt_writemap`,
//! `pt_free`) and the PTE side of `region.c` (`map_ph_writept`, `map_writept`,
//! `map_proc_copy`). Table pages are frames of the arena; entries hold arena physical
//! addresses; the x86 bits mean what the manual says.
//!
//! Ownership rule: **a present leaf entry holds one reference** to its frame (a huge
//! entry one to each frame of its block; see
//! [`crate::frames::FrameRefs`]), except entries marked [`PageFlags::DIRECT`] (device or
//! fixed physical memory, never counted or freed). So `map`/`map_range` consume a
//! reference the caller already holds, `unmap_range`/`destroy`/`replace` drop one (freeing
//! the frame at zero), and `fork_copy` adds one per shared entry.
//!
//! Sharing rule (on-demand fork, [`ForkPolicy::Share`]): a leaf table may be linked by the
//! directories of several address spaces. **A table frame's reference count is the
//! number of directory entries linking it** (1 for a private table; the root's one owner
//! is its process). Every link to a table whose count is above 1 is read-only (WRITE
//! clear in the directory entry), so the hardware walk, which ANDs the permissions of all
//! levels, faults on every write under it while reads and translations go through
//! unchanged. The entries of a shared table hold one reference per frame for all the
//! spaces together. Before any operation writes a leaf entry (map, unmap, protect,
//! replace) or a write is let through ([`PagingFormat::unshare`]), the table is made
//! this space's own: a table still shared is copied (its private writable pages COW in
//! the copy, one more reference per counted frame), the shared one loses a reference,
//! and the link points at the copy, writable. A table whose count has fallen to 1 behind a
//! read-only link is already private: changes go into it directly, and `unshare` makes
//! the pages whose frames are still shared COW before restoring WRITE on the link. Destroy
//! and whole-table unmaps only drop the link's reference; the frames' references are
//! dropped when the table itself is freed. The sharing is kept in the reference count
//! rather than in a directory bit so that the one test on every path is a load of the
//! count the frame array already holds, and so that a space that outlives its sharers
//! needs no copy at all.
//!
//! Every fallible operation is allocate-then-commit: when it returns an error the tables,
//! counts and allocator are exactly as before the call.
//!
//! Table invariants kept by every operation (and checked by the tests): a non-present
//! entry is exactly 0; every table but the root holds at least one present entry
//! (`unmap_range` frees the tables it empties, a failed `map_range` frees the ones it
//! added); each table frame's reference count is the number of links to it (see above)
//! and it is counted once in [`PhysMem::table_frames`](crate::frames::PhysMem); each
//! table's number of present entries is [`PhysMem::live`] (so emptiness is one load).
//!
//! Layout of the module: [`entry`] (bits), [`layout`] (levels and indices), [`cursor`]
//! (the walk that keeps its path, and the sharing rule), `spans` (the one walk over the
//! leaf spans of a range), `tree` (the one walk over a whole table tree), `leaf` (the
//! passes over one table: fork copies, reference drops, destroy), `range` (the range
//! passes: sharing checks, clearing, one-page unmap), `huge` (huge entries: `PS` in a
//! directory entry maps a whole leaf table's span; mapping, splitting, their fork and
//! destroy steps), `ops` (the
//! [`PagingFormat`] implementation, generic over a layout), `fork` (address-space copy),
//! and the two formats [`X86_64`] and [`I386`].

pub mod cursor;
pub mod entry;
mod fork;
mod huge;
mod huge_entry;
mod i386;
pub mod layout;
mod leaf;
mod ops;
mod range;
mod spans;
mod tree;
mod walk;
mod x86_64;

pub use i386::I386;
pub use walk::PageWalk;
pub use x86_64::X86_64;

use crate::addr::{Frame, PageSpan, VirtAddr};
use crate::arena::Arena;
use crate::frames::{FrameAllocator, PhysMem};
use core::fmt;

bitflags::bitflags! {
    /// Format-independent flags of a leaf mapping. Present is implied by having a
    /// [`Mapping`].
    ///
    /// Each flag sits at the bit position of its x86 entry bit (R/W 1, U/S 2, PCD 4, A 5,
    /// D 6, AVL 9–11), so converting to and from entries is a mask, not a shuffle.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
    pub struct PageFlags: u16 {
        /// x86 R/W: writes allowed.
        const WRITE = 1 << 1;
        /// x86 U/S: user mode allowed.
        const USER = 1 << 2;
        /// x86 PCD|PWT: uncached (device memory).
        const NOCACHE = 1 << 4;
        /// x86 A: set by the MMU on any access.
        const ACCESSED = 1 << 5;
        /// x86 D: set by the MMU on a write.
        const DIRTY = 1 << 6;
        /// Software (AVL bit 9): copy-on-write; writable once the frame is private again.
        const COW = 1 << 9;
        /// Software (AVL bit 10): shared memory; fork shares it writable instead of COW.
        const SHARED = 1 << 10;
        /// Software (AVL bit 11): direct physical memory; not reference counted, never
        /// freed.
        const DIRECT = 1 << 11;
    }
}

impl PageFlags {
    /// No flags: present, read-only, supervisor.
    pub const EMPTY: PageFlags = PageFlags::empty();
    /// Every flag.
    pub const ALL: PageFlags = PageFlags::all();
}

/// A present leaf entry: which frame, with which flags.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Mapping {
    /// The mapped frame.
    pub frame: Frame,
    /// Its flags.
    pub flags: PageFlags,
}

/// How fork (and `fork_copy`) treats private (neither SHARED nor DIRECT) pages: the
/// server's fork policy and the page-table operation are one choice, said once here.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum ForkPolicy {
    /// Share the frame copy-on-write: both sides lose WRITE (writable ones gain COW) and
    /// the frame's reference count goes up by one.
    #[default]
    Cow,
    /// Copy every private page into a new frame at once (the eager baseline).
    Copy,
    /// On-demand fork: share the leaf tables themselves (read-only links, one more
    /// reference per leaf table); the first change under a shared table copies it.
    Share,
}

/// How the leaf table holding a page is linked into an address space (see the sharing
/// rule in the module documentation).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LeafLink {
    /// A writable link, or no leaf table at all: the leaf entries decide.
    Writable,
    /// A read-only link to a table only this space links: a write needs no copy.
    ReadOnlyPrivate,
    /// A read-only link to a table other spaces link too: a write copies it first.
    Shared,
    /// No leaf table: a huge entry in the directory maps the whole block (see
    /// `paging::huge`); its own flags decide.
    Huge,
}

/// What the software MMU was asked to do.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Access {
    /// A write (else a read).
    pub write: bool,
    /// From user mode (else supervisor).
    pub user: bool,
}

/// x86 page-fault error code bits (`PFE_*` in MINIX).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FaultCode(pub u32);

impl FaultCode {
    /// P: set = protection violation on a present page; clear = not present.
    pub const PRESENT: u32 = 0x1;
    /// W/R: the access was a write.
    pub const WRITE: u32 = 0x2;
    /// U/S: the access came from user mode.
    pub const USER: u32 = 0x4;
}

/// Why a page-table operation failed. The state is unchanged when one is returned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PagingError {
    /// No free frame for a page table (or, in eager fork, for a page copy).
    OutOfFrames,
    /// The virtual address is beyond what the format maps.
    AddressOutOfRange(VirtAddr),
    /// The frame's physical address does not fit in an entry of this format.
    FrameOutOfRange(Frame),
    /// `map`/`map_range` found a page already mapped.
    AlreadyMapped(VirtAddr),
    /// `replace` found no mapping to replace.
    NotMapped(VirtAddr),
}

impl fmt::Display for PagingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PagingError::OutOfFrames => write!(f, "out of frames for page tables"),
            PagingError::AddressOutOfRange(v) => write!(f, "{v:?} is beyond the format's address space"),
            PagingError::FrameOutOfRange(fr) => write!(f, "{fr:?} does not fit in a page-table entry"),
            PagingError::AlreadyMapped(v) => write!(f, "{v:?} is already mapped"),
            PagingError::NotMapped(v) => write!(f, "{v:?} is not mapped"),
        }
    }
}

impl std::error::Error for PagingError {}

/// A page-table format: how an address space is laid out in arena frames.
///
/// An address space is named by its root table frame. All operations are associated
/// functions so that the server is monomorphized over the format (`Vm<F, P>`).
pub trait PagingFormat {
    /// Name used on the command line (`x86-64`, `i386`).
    const NAME: &'static str;
    /// Exclusive upper bound of mappable virtual addresses (user half for x86-64).
    const VA_END: u64;
    /// Exclusive upper bound of frame numbers an entry can hold.
    const FRAME_END: u64;
    /// 4 KiB pages in a huge block, one directory entry's span: 512 (2 MiB) on x86-64,
    /// 1024 (4 MiB) on i386. See `paging::huge`.
    const HUGE_PAGES: u64;

    /// Allocates an empty root table.
    ///
    /// # Errors
    /// [`PagingError::OutOfFrames`].
    fn new_root<F: FrameAllocator>(mem: &mut PhysMem<F>) -> Result<Frame, PagingError>;

    /// Maps one page (consumes one reference the caller holds on `m.frame`).
    ///
    /// # Errors
    /// Out of frames for a table, address or frame out of range, already mapped.
    fn map<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        root: Frame,
        va: VirtAddr,
        m: Mapping,
    ) -> Result<(), PagingError>;

    /// Maps `span` to the consecutive frames `first, first+1, …` with `flags`
    /// (consumes one held reference per frame). Keeps the walk between neighbouring pages.
    ///
    /// # Errors
    /// As [`PagingFormat::map`]; nothing is mapped then.
    fn map_range<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        root: Frame,
        span: PageSpan,
        first: Frame,
        flags: PageFlags,
    ) -> Result<(), PagingError>;

    /// Unmaps every present page in `span`, dropping each entry's reference, and frees
    /// the tables this leaves empty. Returns the number of pages unmapped.
    ///
    /// # Errors
    /// [`PagingError::OutOfFrames`] when a leaf table shared with another space (on-demand
    /// fork) must be copied and no frame is left; nothing has changed then. Never fails
    /// in a space without shared leaf tables.
    fn unmap_range<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        root: Frame,
        span: PageSpan,
    ) -> Result<u64, PagingError>;

    /// Sets `set` and clears `clear` on every present page in `span`. Setting WRITE on a
    /// private page whose frame has more than one reference sets COW instead (the page
    /// stays read-only until the fault path breaks the sharing). Returns pages changed.
    ///
    /// # Errors
    /// As [`PagingFormat::unmap_range`].
    fn protect_range<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        root: Frame,
        span: PageSpan,
        set: PageFlags,
        clear: PageFlags,
    ) -> Result<u64, PagingError>;

    /// Prepares `va`'s page for a write by this space: when the leaf table holding it is
    /// linked read-only (on-demand fork), makes it this space's own (a copy when another
    /// space still links it) and lets writes through the link; the leaf entry then decides
    /// as usual (a shared private frame is COW). Returns the page's mapping afterwards.
    /// Costs one walk when nothing is shared.
    ///
    /// # Errors
    /// [`PagingError::OutOfFrames`] for the copy; nothing has changed then.
    fn unshare<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        root: Frame,
        va: VirtAddr,
    ) -> Result<Option<Mapping>, PagingError>;

    /// The mapping of `va`'s page, if present: the leaf entry as stored. Under a shared
    /// leaf table (on-demand fork) a WRITE flag here is not yet effective: every write
    /// faults until [`PagingFormat::unshare`].
    fn translate(arena: &Arena, root: Frame, va: VirtAddr) -> Option<Mapping>;

    /// Replaces the present mapping of `va`'s page by `m` (consuming a held reference on
    /// `m.frame` and dropping the old entry's reference). Returns the old mapping.
    ///
    /// To change only the flags of a mapping (such as making a copy-on-write page whose
    /// frame is private again writable), use [`PagingFormat::protect_range`]; passing the
    /// same frame here requires holding an extra reference on it, as for any frame.
    ///
    /// # Errors
    /// [`PagingError::NotMapped`] when nothing is mapped there;
    /// [`PagingError::FrameOutOfRange`].
    fn replace<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        root: Frame,
        va: VirtAddr,
        m: Mapping,
    ) -> Result<Mapping, PagingError>;

    /// How the leaf table holding `va` is linked (a read-only walk; [`LeafLink::Writable`]
    /// when there is none, [`LeafLink::Huge`] when a huge entry maps `va`).
    fn leaf_link<F: FrameAllocator>(mem: &PhysMem<F>, root: Frame, va: VirtAddr) -> LeafLink;

    /// One walk to `va`'s page: its leaf entry, how its table is linked, and where both
    /// are, for the steps below (the fault path walks from the root once).
    fn walk<F: FrameAllocator>(mem: &PhysMem<F>, root: Frame, va: VirtAddr) -> PageWalk;

    /// Maps the walked page, which must be absent (consumes one reference the caller
    /// holds on `m.frame`), and updates `w`. Without a leaf table, or under a shared one,
    /// this builds or copies it as [`PagingFormat::map`] does and walks again.
    ///
    /// # Errors
    /// As [`PagingFormat::map`]; nothing has changed then.
    fn map_at<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        w: &mut PageWalk,
        m: Mapping,
    ) -> Result<(), PagingError>;

    /// Whether every entry of the naturally aligned block of `pages` pages (a power of two)
    /// holding the walked page is absent: true without a leaf table (the walk found a
    /// table on the way missing), false when the block is larger than one leaf table.
    fn block_absent<F: FrameAllocator>(mem: &PhysMem<F>, w: &PageWalk, pages: u64) -> bool;

    /// [`PagingFormat::unshare`] at the walked page; `w` follows (its link is
    /// [`LeafLink::Writable`] afterwards, its mapping as the entry now is).
    ///
    /// # Errors
    /// [`PagingError::OutOfFrames`] for the copy; nothing has changed then.
    fn unshare_at<F: FrameAllocator>(mem: &mut PhysMem<F>, w: &mut PageWalk) -> Result<(), PagingError>;

    /// [`PagingFormat::replace`] at the walked page (a shared leaf table is copied first);
    /// `w` follows. Returns the old mapping.
    ///
    /// # Errors
    /// As [`PagingFormat::replace`], and [`PagingError::OutOfFrames`] for a table copy.
    fn replace_at<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        w: &mut PageWalk,
        m: Mapping,
    ) -> Result<Mapping, PagingError>;

    /// Sets `set` and clears `clear` in the walked page's present entry, as given (unlike
    /// [`PagingFormat::protect_range`], granting WRITE does not look at the frame's
    /// sharing: the caller has decided). A shared leaf table is copied first; `w` follows.
    /// Returns the new mapping.
    ///
    /// # Errors
    /// [`PagingError::NotMapped`]; [`PagingError::OutOfFrames`] for a table copy.
    fn reflag_at<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        w: &mut PageWalk,
        set: PageFlags,
        clear: PageFlags,
    ) -> Result<Mapping, PagingError>;

    /// Maps the block at `va` (aligned to [`PagingFormat::HUGE_PAGES`] pages) to the
    /// frames from `first` (aligned to as many frames) with one huge entry (`PS` in the
    /// directory entry), building the tables above the directory as needed. Consumes one
    /// reference per frame.
    ///
    /// # Errors
    /// [`PagingError::AddressOutOfRange`] (beyond the format, or not aligned),
    /// [`PagingError::FrameOutOfRange`] (beyond reach, or not aligned),
    /// [`PagingError::AlreadyMapped`] when the directory entry holds a leaf table or a
    /// huge entry, [`PagingError::OutOfFrames`]. Nothing has changed then.
    fn map_huge<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        root: Frame,
        va: VirtAddr,
        first: Frame,
        flags: PageFlags,
    ) -> Result<(), PagingError>;

    /// Splits every huge entry mapping part of `span` into a leaf table of the same
    /// frames and flags (all or none). Returns the number split. [`PagingFormat::unmap_range`]
    /// and [`PagingFormat::protect_range`] do this themselves.
    ///
    /// # Errors
    /// [`PagingError::OutOfFrames`] for a table; nothing has changed then.
    fn split_huge<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        root: Frame,
        span: PageSpan,
    ) -> Result<u64, PagingError>;

    /// Splits the huge entry of the walk `w` ([`LeafLink::Huge`]) into a leaf table; `w`
    /// follows.
    ///
    /// # Errors
    /// [`PagingError::NotMapped`] when `w` is not through a huge entry,
    /// [`PagingError::OutOfFrames`]; nothing has changed then.
    fn split_at<F: FrameAllocator>(mem: &mut PhysMem<F>, w: &mut PageWalk) -> Result<(), PagingError>;

    /// Replaces the huge entry of the walk `w` by one mapping the block from `first` with
    /// `flags` (consuming a reference per new frame, dropping one per old frame); `w`
    /// follows. Returns the old mapping of the block's first page.
    ///
    /// # Errors
    /// As [`PagingFormat::split_at`] and the frame errors of [`PagingFormat::map_huge`].
    fn replace_huge_at<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        w: &mut PageWalk,
        first: Frame,
        flags: PageFlags,
    ) -> Result<Mapping, PagingError>;

    /// Calls `f(block address, mapping of the block's first page)` for every huge entry
    /// mapping part of `span`, in address order.
    fn for_each_huge(arena: &Arena, root: Frame, span: PageSpan, f: &mut dyn FnMut(VirtAddr, Mapping));

    /// Calls `f` for every present page in `span`, in address order (leaf entries as
    /// stored, as [`PagingFormat::translate`]; each page of a huge entry too).
    fn for_each_mapping(arena: &Arena, root: Frame, span: PageSpan, f: &mut dyn FnMut(VirtAddr, Mapping));

    /// As [`PagingFormat::for_each_mapping`], also naming the leaf table that holds each
    /// entry (a table shared by an on-demand fork is reached from every space linking it;
    /// for the pages of a huge entry, the directory holding it).
    fn for_each_leaf_mapping(
        arena: &Arena,
        root: Frame,
        span: PageSpan,
        f: &mut dyn FnMut(Frame, VirtAddr, Mapping),
    );

    /// The number of present entries of the table in `table` (counted; the operations
    /// keep it in [`PhysMem::live`], which the invariant checks compare with this).
    fn present_entries(arena: &Arena, table: Frame) -> u64;

    /// Calls `f` for every frame used as a table of this address space (root included),
    /// once per link: a leaf table shared with other spaces is visited here too.
    fn for_each_table(arena: &Arena, root: Frame, f: &mut dyn FnMut(Frame));

    /// Calls `f(first address, table, link writable)` for every leaf table of this
    /// address space, in address order. A link that is not writable marks a table that is
    /// (or was) shared by an on-demand fork.
    fn for_each_leaf_table(arena: &Arena, root: Frame, f: &mut dyn FnMut(VirtAddr, Frame, bool));

    /// Copies a whole address space for fork. SHARED entries are shared writable and
    /// DIRECT entries copied as they are; private entries follow `mode`. The parent is
    /// changed only on success (its writable private pages become COW in `Cow` mode, its
    /// leaf-table links read-only in `Share` mode).
    ///
    /// # Errors
    /// [`PagingError::OutOfFrames`]; then the parent is untouched and nothing leaks.
    fn fork_copy<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        parent: Frame,
        mode: ForkPolicy,
    ) -> Result<Frame, PagingError>;

    /// Drops every mapping's reference and frees every table, root included (a leaf table
    /// shared with another space just loses this space's reference).
    fn destroy<F: FrameAllocator>(mem: &mut PhysMem<F>, root: Frame);

    /// The hardware walk: translates `va` for `access` as the MMU would, setting ACCESSED
    /// (and DIRTY on a write) in the leaf entry (the huge entry for a page of a huge
    /// block), or returns the fault's error code.
    ///
    /// # Errors
    /// A [`FaultCode`] with x86 bits: not present, or a protection violation (write to a
    /// read-only page, user access to a supervisor page).
    fn hw_translate(
        arena: &mut Arena,
        root: Frame,
        va: VirtAddr,
        access: Access,
    ) -> Result<Mapping, FaultCode>;
}
