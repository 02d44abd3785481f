//! One walk to one page, kept across the steps of a page fault.
//!
//! Replaces the repeated lookups of MINIX's fault path (`map_pf` asks `pt_writemap` to
//! walk from the directory for every change it makes). A fault may need to map the page,
//! let writes through a read-only leaf link (on-demand fork), then replace or re-flag the
//! entry; each of those is a step on the [`PageWalk`] the first walk returned, so the
//! fault walks from the root once. A step that must build or copy a table updates the walk
//! in place; a walk stays valid until another call changes this space's tables.
//!
//! The steps follow the module's ownership and sharing rules (see [`super`]): entries are
//! changed only in a leaf table this space owns (a shared one is copied first), and every
//! step is allocate-then-commit.

use crate::addr::{Frame, VirtAddr};
use crate::frames::{FrameAllocator, PhysMem};
use crate::paging::cursor::{copy_shared_leaf, leaf_path, table_shared};
use crate::paging::entry::{self, Pte, COW, DIRECT, PRESENT, WRITE};
use crate::paging::huge_entry::{huge_at, huge_mapping};
use crate::paging::layout::check_frames;
use crate::paging::layout::{entries, entry_frame, index, Layout};
use crate::paging::{LeafLink, Mapping, PageFlags, PagingError, PagingFormat};

/// Where one page's leaf entry lives and what it holds, found by one walk
/// ([`PagingFormat::walk`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PageWalk {
    /// The page walked to.
    pub page: VirtAddr,
    /// Its leaf entry, if present, as stored (under a read-only link a WRITE here is not
    /// yet effective).
    pub mapping: Option<Mapping>,
    /// How its leaf table is linked ([`LeafLink::Writable`] when there is none).
    pub link: LeafLink,
    /// The address space's root.
    pub(super) root: Frame,
    /// The leaf table, when every table on the way is present.
    pub(super) leaf: Option<Frame>,
    /// The table holding the leaf table's link (meaningful when `leaf` is), or the huge
    /// entry (when the link is [`LeafLink::Huge`]).
    pub(super) dir: Frame,
}

impl PageWalk {
    /// Whether the walk found a leaf table for the page (false when a table on the way
    /// is missing or a huge entry maps the page): with no mapping either, the page's
    /// directory entry is empty.
    #[inline(always)]
    pub fn has_leaf_table(&self) -> bool {
        self.leaf.is_some()
    }
}

/// The walk: down to the leaf entry as the hardware goes ([`leaf_path`]), noting the
/// directory and the link on the way. Always inlined: the fault path's one walk (with
/// its cold call for a huge entry, the compiler would otherwise call it).
#[inline(always)]
pub(crate) fn walk<L: Layout, F: FrameAllocator>(mem: &PhysMem<F>, root: Frame, va: VirtAddr) -> PageWalk {
    let page = va.page_floor();
    let mut w = PageWalk { page, mapping: None, link: LeafLink::Writable, root, leaf: None, dir: root };
    let va = page.0;
    if va >= L::VA_END {
        return w;
    }
    let arena = mem.arena();
    let Some(path) = leaf_path::<L>(arena, root, va) else {
        return walk_huge::<L, F>(mem, w);
    };
    let (table, leaf) = (path.leaf, Frame(path.leaf >> 12));
    w.dir = Frame(path.dir >> 12);
    w.leaf = Some(leaf);
    if path.link & WRITE == 0 {
        w.link = if table_shared(mem, leaf) { LeafLink::Shared } else { LeafLink::ReadOnlyPrivate };
    }
    w.mapping = decode::<L>(L::entry(arena, table, index::<L>(va, 0)));
    w
}

/// A raw leaf entry as a mapping, if present.
#[inline(always)]
fn decode<L: Layout>(e: u64) -> Option<Mapping> {
    (e & PRESENT != 0).then(|| Mapping { frame: entry_frame::<L>(e), flags: entry::from_raw(e) })
}

/// The leaf table of `w`, made this space's own (a shared one is copied; its link becomes
/// writable). A read-only link to a table only this space links stays as it is: entries
/// may be changed under it, and [`unshare_at`] opens it.
///
/// # Errors
/// [`PagingError::NotMapped`] without a leaf table; [`PagingError::OutOfFrames`] for the
/// copy. Nothing has changed then.
#[inline]
fn own_leaf<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    w: &mut PageWalk,
) -> Result<Frame, PagingError> {
    let leaf = w.leaf.ok_or(PagingError::NotMapped(w.page))?;
    if w.link != LeafLink::Shared {
        return Ok(leaf);
    }
    let copy = copy_shared_leaf::<L, F>(mem, w.dir, index::<L>(w.page.0, 1), leaf)?;
    w.leaf = Some(copy);
    w.link = LeafLink::Writable;
    // The copy turned private writable pages COW: the page's entry may have changed.
    w.mapping = decode::<L>(L::table(mem.arena(), copy)[index::<L>(w.page.0, 0)].raw());
    Ok(copy)
}

/// [`PagingFormat::map_at`].
#[inline(always)]
pub(crate) fn map_at<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    w: &mut PageWalk,
    m: Mapping,
) -> Result<(), PagingError> {
    if w.mapping.is_some() {
        return Err(PagingError::AlreadyMapped(w.page));
    }
    match w.leaf {
        Some(leaf) if w.link != LeafLink::Shared => {
            check_frames::<L>(mem.arena(), m.frame, 1, m.flags)?;
            L::table_mut(mem.arena_mut(), leaf)[index::<L>(w.page.0, 0)] =
                L::Pte::from_raw(PRESENT | entry::to_raw(m.flags) | m.frame.start_address().0);
            mem.add_live(leaf, 1);
            w.mapping = Some(m);
            Ok(())
        }
        _ => map_building::<L, F>(mem, w, m),
    }
}

/// [`map_at`] with a table to build or to copy: the general map, then the walk again
/// (the first page of a 2 MiB region, or a shared table; not the common case).
#[inline(never)]
fn map_building<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    w: &mut PageWalk,
    m: Mapping,
) -> Result<(), PagingError> {
    L::map(mem, w.root, w.page, m)?;
    *w = walk::<L, F>(mem, w.root, w.page);
    Ok(())
}

/// [`PagingFormat::block_absent`]: a non-present entry is 0, so one vectorised test.
#[inline]
pub(crate) fn block_absent<L: Layout, F: FrameAllocator>(mem: &PhysMem<F>, w: &PageWalk, pages: u64) -> bool {
    if pages == 0 || !pages.is_power_of_two() || pages > entries::<L>() as u64 {
        return false;
    }
    let Some(leaf) = w.leaf else { return w.mapping.is_none() && w.page.0 < L::VA_END };
    let first = index::<L>(w.page.0, 0) & !(pages as usize - 1);
    L::Pte::all_zero(&L::table(mem.arena(), leaf)[first..first + pages as usize])
}

/// [`PagingFormat::unshare_at`]: nothing to do under a writable link (every space but
/// one after an on-demand fork), so that test is inlined and the rest is not.
#[inline(always)]
pub(crate) fn unshare_at<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    w: &mut PageWalk,
) -> Result<(), PagingError> {
    if w.link == LeafLink::Writable {
        return Ok(());
    }
    open_link::<L, F>(mem, w)
}

/// [`unshare_at`] under a read-only link.
#[inline(never)]
fn open_link<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    w: &mut PageWalk,
) -> Result<(), PagingError> {
    match w.link {
        // A huge entry is in no leaf table: nothing shared to open.
        LeafLink::Writable | LeafLink::Huge => Ok(()),
        LeafLink::Shared => own_leaf::<L, F>(mem, w).map(|_| ()),
        LeafLink::ReadOnlyPrivate => {
            let Some(leaf) = w.leaf else { return Ok(()) };
            open_private_link::<L, F>(mem, w.dir, index::<L>(w.page.0, 1), leaf);
            w.link = LeafLink::Writable;
            w.mapping = decode::<L>(L::table(mem.arena(), leaf)[index::<L>(w.page.0, 0)].raw());
            Ok(())
        }
    }
}

/// Lets writes through the read-only link (entry `idx` of `dir`) to `leaf`, a table only
/// this space links now: pages whose private frames are still shared with a former
/// sharer's copy turn COW first.
pub(crate) fn open_private_link<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    dir: Frame,
    idx: usize,
    leaf: Frame,
) {
    let (arena, counts) = mem.split();
    for slot in L::table_mut(arena, leaf) {
        let e = slot.raw();
        if e & (PRESENT | WRITE) == PRESENT | WRITE
            && entry::is_private(e)
            && counts.get(entry_frame::<L>(e)) > 1
        {
            *slot = L::Pte::from_raw((e & !WRITE) | COW);
        }
    }
    let link = L::table(mem.arena(), dir)[idx].raw();
    L::table_mut(mem.arena_mut(), dir)[idx] = L::Pte::from_raw(link | WRITE);
}

/// [`PagingFormat::replace_at`].
#[inline]
pub(crate) fn replace_at<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    w: &mut PageWalk,
    m: Mapping,
) -> Result<Mapping, PagingError> {
    check_frames::<L>(mem.arena(), m.frame, 1, m.flags)?;
    if w.mapping.is_none() {
        return Err(PagingError::NotMapped(w.page));
    }
    let leaf = own_leaf::<L, F>(mem, w)?;
    let slot = &mut L::table_mut(mem.arena_mut(), leaf)[index::<L>(w.page.0, 0)];
    let old = slot.raw();
    *slot = L::Pte::from_raw(PRESENT | entry::to_raw(m.flags) | m.frame.start_address().0);
    if old & DIRECT == 0 {
        mem.unref(entry_frame::<L>(old));
    }
    w.mapping = Some(m);
    Ok(Mapping { frame: entry_frame::<L>(old), flags: entry::from_raw(old) })
}

/// [`PagingFormat::reflag_at`].
#[inline]
pub(crate) fn reflag_at<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    w: &mut PageWalk,
    set: PageFlags,
    clear: PageFlags,
) -> Result<Mapping, PagingError> {
    if w.mapping.is_none() {
        return Err(PagingError::NotMapped(w.page));
    }
    if w.link == LeafLink::Huge {
        return Ok(reflag_huge::<L, F>(mem, w, set, clear));
    }
    let leaf = own_leaf::<L, F>(mem, w)?;
    let slot = &mut L::table_mut(mem.arena_mut(), leaf)[index::<L>(w.page.0, 0)];
    let e = (slot.raw() & !entry::to_raw(clear)) | entry::to_raw(set);
    *slot = L::Pte::from_raw(e);
    let m = Mapping { frame: entry_frame::<L>(e), flags: entry::from_raw(e) };
    w.mapping = Some(m);
    Ok(m)
}

/// The walk where `leaf_path` found no leaf table: through a huge entry, `w` names the
/// page's frame in the block and the link [`LeafLink::Huge`]; else `w` is returned as
/// it is (nothing mapped).
#[cold]
#[inline(never)]
pub(crate) fn walk_huge<L: Layout, F: FrameAllocator>(mem: &PhysMem<F>, mut w: PageWalk) -> PageWalk {
    if mem.huge_entries() == 0 {
        return w;
    }
    if let Some((dir, _, e)) = huge_at::<L>(mem.arena(), w.root, w.page.0) {
        w.mapping = Some(huge_mapping::<L>(e, w.page.0));
        w.link = LeafLink::Huge;
        w.dir = dir;
    }
    w
}

/// Sets `set` and clears `clear` in the huge entry of the walk `w` (the whole block);
/// `w` follows. Returns the walked page's mapping.
pub(crate) fn reflag_huge<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    w: &mut PageWalk,
    set: PageFlags,
    clear: PageFlags,
) -> Mapping {
    let i = index::<L>(w.page.0, 1);
    let slot = &mut L::table_mut(mem.arena_mut(), w.dir)[i];
    let e = (slot.raw() & !entry::to_raw(clear)) | entry::to_raw(set);
    *slot = L::Pte::from_raw(e);
    let m = huge_mapping::<L>(e, w.page.0);
    w.mapping = Some(m);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::Arena;
    use crate::frames::Bitset;
    use crate::paging::{ForkPolicy, X86_64};

    const RW: PageFlags = PageFlags::WRITE.union(PageFlags::USER);

    fn mem() -> PhysMem<Bitset> {
        PhysMem::new(Arena::with_frames(64).unwrap())
    }

    #[test]
    fn a_walk_finds_the_entry_and_its_steps_change_it_in_place() {
        let mut mem = mem();
        let root = X86_64::new_root(&mut mem).unwrap();
        let va = VirtAddr(0x40_3000);
        let mut w = X86_64::walk(&mem, root, va);
        assert_eq!((w.mapping, w.link, w.leaf), (None, LeafLink::Writable, None));
        let f = mem.alloc_frame().unwrap();
        X86_64::map_at(&mut mem, &mut w, Mapping { frame: f, flags: PageFlags::USER }).unwrap();
        assert_eq!(w, X86_64::walk(&mem, root, va), "the map rebuilt the walk");
        assert_eq!(
            X86_64::map_at(&mut mem, &mut w, Mapping { frame: f, flags: RW }),
            Err(PagingError::AlreadyMapped(va))
        );
        let m = X86_64::reflag_at(&mut mem, &mut w, PageFlags::WRITE, PageFlags::EMPTY).unwrap();
        assert_eq!(m, Mapping { frame: f, flags: RW });
        assert_eq!(X86_64::translate(mem.arena(), root, va), Some(m));
        let g = mem.alloc_frame().unwrap();
        let old = X86_64::replace_at(&mut mem, &mut w, Mapping { frame: g, flags: RW }).unwrap();
        assert_eq!(old.frame, f);
        assert_eq!(mem.refs().get(f), 0, "the old frame's one reference was dropped");
        assert_eq!(w, X86_64::walk(&mem, root, va));
    }

    #[test]
    fn a_shared_leaf_table_is_copied_once_and_the_walk_follows_the_copy() {
        let mut mem = mem();
        let parent = X86_64::new_root(&mut mem).unwrap();
        let f = mem.alloc_frame().unwrap();
        X86_64::map(&mut mem, parent, VirtAddr(0x1000), Mapping { frame: f, flags: RW }).unwrap();
        let child = X86_64::fork_copy(&mut mem, parent, ForkPolicy::Share).unwrap();
        let mut w = X86_64::walk(&mem, child, VirtAddr(0x1000));
        assert_eq!(w.link, LeafLink::Shared);
        let shared = w.leaf.unwrap();
        X86_64::unshare_at(&mut mem, &mut w).unwrap();
        assert_eq!(w.link, LeafLink::Writable);
        assert_ne!(w.leaf, Some(shared));
        // The copy made the private page COW on the child's side.
        assert_eq!(w.mapping.unwrap().flags, PageFlags::USER | PageFlags::COW);
        assert_eq!(w, X86_64::walk(&mem, child, VirtAddr(0x1000)));
        // The parent is now the table's only user: its link opens without a copy.
        let mut p = X86_64::walk(&mem, parent, VirtAddr(0x1000));
        assert_eq!(p.link, LeafLink::ReadOnlyPrivate);
        let frames = mem.free_frames();
        X86_64::unshare_at(&mut mem, &mut p).unwrap();
        assert_eq!(mem.free_frames(), frames);
        assert_eq!(p.link, LeafLink::Writable);
        assert_eq!(p.mapping.unwrap().flags, PageFlags::USER | PageFlags::COW);
        assert_eq!(p, X86_64::walk(&mem, parent, VirtAddr(0x1000)));
    }

    #[test]
    fn steps_on_a_missing_page_refuse_and_change_nothing() {
        let mut mem = mem();
        let root = X86_64::new_root(&mut mem).unwrap();
        let mut w = X86_64::walk(&mem, root, VirtAddr(0x5000));
        let f = mem.alloc_frame().unwrap();
        let before = (mem.free_frames(), mem.table_frames());
        let m = Mapping { frame: f, flags: RW };
        assert_eq!(X86_64::replace_at(&mut mem, &mut w, m), Err(PagingError::NotMapped(VirtAddr(0x5000))));
        assert_eq!(
            X86_64::reflag_at(&mut mem, &mut w, PageFlags::WRITE, PageFlags::EMPTY),
            Err(PagingError::NotMapped(VirtAddr(0x5000)))
        );
        assert_eq!((mem.free_frames(), mem.table_frames()), before);
        // Beyond the format's addresses: nothing there, and nothing can be mapped.
        let mut far = X86_64::walk(&mem, root, VirtAddr(<X86_64 as PagingFormat>::VA_END));
        assert_eq!(far.mapping, None);
        assert!(matches!(X86_64::map_at(&mut mem, &mut far, m), Err(PagingError::AddressOutOfRange(_))));
    }
}
