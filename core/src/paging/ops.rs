//! The page-table operations, written once over a format description ([`Layout`]) as
//! the [`PagingFormat`] implementation of every format.
//!
//! Replaces `pt_writemap`, `pt_ptalloc`, `pt_free` (`arch/i386/pagetable.c`) and the
//! per-page PTE updates of `map_ph_writept`/`map_writept` (`region.c`). Range operations
//! are visitors of the span walk ([`walk_spans`]); whole-space operations are visitors of
//! the tree walk ([`super::tree`]); the inner loops touch raw entries only. Ownership,
//! sharing and allocate-then-commit rules: see the [`super`] module documentation. Every
//! operation that writes a leaf entry first makes the leaf table this space's own
//! ([`Cursor::writable_leaf`]); the hardware walk and `translate` read shared tables as
//! they are.
//!
//! Why this file is over 450 lines: it is the one `impl PagingFormat` (23 methods; the
//! walk steps of one fault forward to [`super::walk`]) plus the cold halves of the
//! one-page `map` and its checks, which must sit beside the hot halves they were split
//! from to be read together.

use crate::addr::{Frame, PageSpan, VirtAddr};
use crate::arena::{Arena, MAX_ARENA_BYTES};
use crate::frames::{FrameAllocator, PhysMem};
use crate::paging::cursor::{leaf_at, table_shared, Cursor, Unshares};
use crate::paging::entry::{self, Pte, ACCESSED, COW, DIRTY, PRESENT, USER, WRITE};
use crate::paging::layout::check_frames;
use crate::paging::layout::{
    alloc_table, entry_frame, entry_offset, index, is_huge_entry, link_offset, next_boundary, Layout,
};
use crate::paging::leaf::{destroy_table, fill};
use crate::paging::range::{clear_range, clip, own_spans, span_free, unmap_one};
use crate::paging::spans::{walk_spans, Allocating, Existing};
use crate::paging::tree::{walk_space, Enter, TreeVisitor};
use crate::paging::{
    fork, huge, walk, Access, FaultCode, ForkPolicy, LeafLink, Mapping, PageFlags, PageWalk, PagingError,
    PagingFormat,
};
use core::convert::Infallible;

/// Lists every table (root included), once per link.
struct ListTables<'f>(&'f mut dyn FnMut(Frame));

impl<L: Layout> TreeVisitor<L, &Arena> for ListTables<'_> {
    type Error = Infallible;

    #[inline(always)]
    fn enter(&mut self, _: &mut &Arena, t: Frame, level: usize, _: u64) -> Result<Enter, Infallible> {
        (self.0)(t);
        Ok(if level == 0 { Enter::Done } else { Enter::Walk })
    }
}

/// Lists every leaf table with its first address and whether its link is writable.
struct ListLeafTables<'f>(&'f mut dyn FnMut(VirtAddr, Frame, bool));

impl<L: Layout> TreeVisitor<L, &Arena> for ListLeafTables<'_> {
    type Error = Infallible;

    #[inline(always)]
    fn enter(&mut self, _: &mut &Arena, _: Frame, _: usize, _: u64) -> Result<Enter, Infallible> {
        Ok(Enter::Walk)
    }

    #[inline(always)]
    fn link(
        &mut self,
        _: &mut &Arena,
        _: Frame,
        level: usize,
        _: usize,
        raw: u64,
        va: u64,
    ) -> Result<bool, Infallible> {
        if level == 1 {
            (self.0)(VirtAddr(va), entry_frame::<L>(raw), raw & WRITE != 0);
            return Ok(false);
        }
        Ok(true)
    }
}

/// The exclusive end of the frames a counted leaf entry may hold: inside the arena (a
/// counted frame has a reference count) and within an entry's reach. The one-page form
/// of [`check_frames`]: a frame below it needs no other check, a DIRECT frame beyond the
/// arena is [`map_refused`]'s to judge.
#[inline(always)]
fn counted_frame_end<L: Layout>(arena: &Arena) -> u64 {
    if L::FRAME_END >= MAX_ARENA_BYTES >> 12 {
        arena.frames()
    } else {
        arena.frames().min(L::FRAME_END)
    }
}

/// The checks of `map` for an address or a frame the one-compare tests did not pass:
/// an address beyond the format's space, or a frame beyond reach, is refused; a DIRECT
/// frame beyond the arena but within an entry's reach is fine. Kept off the one-page
/// path.
#[cold]
#[inline(never)]
fn map_refused<L: Layout>(arena: &Arena, va: VirtAddr, m: Mapping) -> Result<(), PagingError> {
    if va.0 >= L::VA_END {
        return Err(PagingError::AddressOutOfRange(va));
    }
    check_frames::<L>(arena, m.frame, 1, m.flags)
}

/// The rest of `map` (address and frame checked; `e` the entry to store): one walk
/// building the missing tables. A table built by the walk is empty and private, so only
/// a leaf table found shared can need a copy, and nothing is allocated before a present
/// entry is found.
#[inline(never)]
fn map_build<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    root: Frame,
    va: VirtAddr,
    e: u64,
) -> Result<(), PagingError> {
    let i = index::<L>(va.0, 0);
    let mut cur = Cursor::<L>::new(root);
    cur.find_or_alloc(mem, va.0)?;
    let mut undo = Unshares::new();
    let leaf = cur.writable_leaf(mem, va.0, &mut undo)?;
    let slot = &mut L::table_mut(mem.arena_mut(), leaf)[i];
    if slot.raw() & PRESENT != 0 {
        undo.undo::<L, F>(mem);
        return Err(PagingError::AlreadyMapped(va.page_floor()));
    }
    *slot = L::Pte::from_raw(e);
    mem.add_live(leaf, 1);
    Ok(())
}

/// [`PagingFormat::protect_range`] on `start..end`, huge entries split.
fn protect<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    root: Frame,
    start: u64,
    end: u64,
    set: PageFlags,
    clear: PageFlags,
) -> Result<u64, PagingError> {
    if next_boundary::<L>(start, 1) < end {
        own_spans::<L, F>(mem, root, &[(start, end)], false)?;
    }
    let (set, mut clear) = (entry::to_raw(set), entry::to_raw(clear));
    // Taking WRITE away also ends copy-on-write; granting it is decided per page below.
    if clear & WRITE != 0 {
        clear |= COW;
    }
    let grant_write = set & WRITE != 0;
    let set = set & !WRITE;
    let mut cur = Cursor::<L>::new(root);
    let mut changed = 0;
    walk_spans::<L, _, Existing, PagingError>(mem, &mut cur, start, end, |mem, cur, s| {
        if cur.leaf_shared(mem) && span_free::<L>(mem.arena(), &s) {
            return Ok(());
        }
        let leaf = cur.writable_leaf(mem, s.va, &mut Unshares::new())?;
        let (arena, counts) = mem.split();
        for slot in &mut L::table_mut(arena, leaf)[s.i0..s.i0 + s.n] {
            let e = slot.raw();
            if e & PRESENT == 0 {
                continue;
            }
            let mut ne = (e & !clear) | set;
            if grant_write {
                // A private frame still shared with another space stays read-only + COW.
                ne = if entry::is_private(ne) && counts.get(entry_frame::<L>(e)) > 1 {
                    (ne & !WRITE) | COW
                } else {
                    (ne | WRITE) & !COW
                };
            }
            if ne != e {
                *slot = L::Pte::from_raw(ne);
                changed += 1;
            }
        }
        Ok(())
    })?;
    Ok(changed)
}

impl<L: Layout> PagingFormat for L {
    const NAME: &'static str = L::NAME;
    const VA_END: u64 = L::VA_END;
    const FRAME_END: u64 = L::FRAME_END;
    const HUGE_PAGES: u64 = huge::block_pages::<L>();

    fn new_root<F: FrameAllocator>(mem: &mut PhysMem<F>) -> Result<Frame, PagingError> {
        alloc_table::<L, F>(mem).ok_or(PagingError::OutOfFrames)
    }

    /// The common case is one walk and one entry: the leaf table there and this space's
    /// own. The address and the frame are checked once, one compare each; a table to build
    /// or to copy takes `map_build`'s walk.
    #[inline(always)]
    fn map<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        root: Frame,
        va: VirtAddr,
        m: Mapping,
    ) -> Result<(), PagingError> {
        if va.0 >= L::VA_END || m.frame.0 >= counted_frame_end::<L>(mem.arena()) {
            map_refused::<L>(mem.arena(), va, m)?;
        }
        let e = PRESENT | entry::to_raw(m.flags) | m.frame.start_address().0;
        if let Some(t) = leaf_at::<L>(mem.arena(), root, va.0) {
            let leaf = Frame(t >> 12);
            if !table_shared(mem, leaf) {
                let i = index::<L>(va.0, 0);
                if L::entry(mem.arena(), t, i) & PRESENT != 0 {
                    return Err(PagingError::AlreadyMapped(va.page_floor()));
                }
                L::store(mem.arena_mut(), t + (i * core::mem::size_of::<L::Pte>()) as u64, e);
                mem.add_live(leaf, 1);
                return Ok(());
            }
        }
        map_build::<L, F>(mem, root, va, e)
    }

    fn map_range<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        root: Frame,
        span: PageSpan,
        first: Frame,
        flags: PageFlags,
    ) -> Result<(), PagingError> {
        if span.end().0 > L::VA_END {
            return Err(PagingError::AddressOutOfRange(VirtAddr(span.start.0.max(L::VA_END))));
        }
        check_frames::<L>(mem.arena(), first, span.pages, flags)?;
        let (start, end) = (span.start.0, span.end().0);
        // Entry of page `va`: `base + va` (the frame advances with the address).
        let base = (PRESENT | entry::to_raw(flags)).wrapping_add(first.start_address().0).wrapping_sub(start);
        let mut cur = Cursor::<L>::new(root);
        let mut undo = Unshares::new();
        // Pages mapped so far: `start..done`.
        let mut done = start;
        let r = walk_spans::<L, _, Allocating, PagingError>(mem, &mut cur, start, end, |mem, cur, s| {
            let leaf = cur.writable_leaf(mem, s.va, &mut undo)?;
            let t = &mut L::table_mut(mem.arena_mut(), leaf)[s.i0..s.i0 + s.n];
            // A non-present entry is 0: one vectorised test finds a range with none.
            let found =
                if L::Pte::all_zero(t) { None } else { t.iter().position(|e| e.raw() & PRESENT != 0) };
            if let Some(k) = found {
                // Map the free pages before it so that one rollback undoes the whole call.
                fill::<L>(&mut t[..k], base, s.va);
                mem.add_live(leaf, k as u16);
                done = s.va + ((k as u64) << 12);
                return Err(PagingError::AlreadyMapped(VirtAddr(done)));
            }
            fill::<L>(t, base, s.va);
            mem.add_live(leaf, s.n as u16);
            done = s.stop;
            Ok(())
        });
        if let Err(e) = r {
            let _ = clear_range::<L, F>(mem, root, start, done, false);
            undo.undo::<L, F>(mem);
            return Err(e);
        }
        Ok(())
    }

    #[inline(always)]
    fn unmap_range<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        root: Frame,
        span: PageSpan,
    ) -> Result<u64, PagingError> {
        // One page inside the space (the common case of munmap and of a fault's undo):
        // no range to clip.
        if span.pages == 1 && span.start.0 <= L::VA_END - 4096 {
            return unmap_one::<L, F>(mem, root, span.start.0);
        }
        let (start, end) = clip::<L>(span);
        huge::split_then::<L, F, _>(mem, root, start, end, |mem| {
            clear_range::<L, F>(mem, root, start, end, true)
        })
    }

    fn protect_range<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        root: Frame,
        span: PageSpan,
        set: PageFlags,
        clear: PageFlags,
    ) -> Result<u64, PagingError> {
        let (start, end) = clip::<L>(span);
        huge::split_then::<L, F, _>(mem, root, start, end, |mem| {
            protect::<L, F>(mem, root, start, end, set, clear)
        })
    }

    fn map_huge<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        root: Frame,
        va: VirtAddr,
        first: Frame,
        flags: PageFlags,
    ) -> Result<(), PagingError> {
        huge::map_huge::<L, F>(mem, root, va, first, flags)
    }

    fn split_huge<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        root: Frame,
        span: PageSpan,
    ) -> Result<u64, PagingError> {
        if mem.huge_entries() == 0 {
            return Ok(0);
        }
        let (start, end) = clip::<L>(span);
        huge::split_range::<L, F>(mem, root, start, end).map(|s| s.count())
    }

    fn split_at<F: FrameAllocator>(mem: &mut PhysMem<F>, w: &mut PageWalk) -> Result<(), PagingError> {
        huge::split_at::<L, F>(mem, w)
    }

    fn replace_huge_at<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        w: &mut PageWalk,
        first: Frame,
        flags: PageFlags,
    ) -> Result<Mapping, PagingError> {
        huge::replace_huge_at::<L, F>(mem, w, first, flags)
    }

    fn for_each_huge(arena: &Arena, root: Frame, span: PageSpan, f: &mut dyn FnMut(VirtAddr, Mapping)) {
        let (start, end) = clip::<L>(span);
        huge::for_each_huge::<L>(arena, root, start, end, &mut |_, _, e, va| {
            f(VirtAddr(va), huge::huge_mapping::<L>(e, va));
        });
    }

    fn unshare<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        root: Frame,
        va: VirtAddr,
    ) -> Result<Option<Mapping>, PagingError> {
        let mut w = walk::walk::<L, F>(mem, root, va);
        walk::unshare_at::<L, F>(mem, &mut w)?;
        Ok(w.mapping)
    }

    fn leaf_link<F: FrameAllocator>(mem: &PhysMem<F>, root: Frame, va: VirtAddr) -> LeafLink {
        walk::walk::<L, F>(mem, root, va).link
    }

    #[inline(always)]
    fn walk<F: FrameAllocator>(mem: &PhysMem<F>, root: Frame, va: VirtAddr) -> PageWalk {
        walk::walk::<L, F>(mem, root, va)
    }

    #[inline(always)]
    fn map_at<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        w: &mut PageWalk,
        m: Mapping,
    ) -> Result<(), PagingError> {
        walk::map_at::<L, F>(mem, w, m)
    }

    #[inline]
    fn block_absent<F: FrameAllocator>(mem: &PhysMem<F>, w: &PageWalk, pages: u64) -> bool {
        walk::block_absent::<L, F>(mem, w, pages)
    }

    #[inline(always)]
    fn unshare_at<F: FrameAllocator>(mem: &mut PhysMem<F>, w: &mut PageWalk) -> Result<(), PagingError> {
        walk::unshare_at::<L, F>(mem, w)
    }

    #[inline(always)]
    fn replace_at<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        w: &mut PageWalk,
        m: Mapping,
    ) -> Result<Mapping, PagingError> {
        walk::replace_at::<L, F>(mem, w, m)
    }

    #[inline(always)]
    fn reflag_at<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        w: &mut PageWalk,
        set: PageFlags,
        clear: PageFlags,
    ) -> Result<Mapping, PagingError> {
        walk::reflag_at::<L, F>(mem, w, set, clear)
    }

    /// The walk works on arena byte offsets, as [`leaf_at`] (kept apart here: the
    /// lookup ends at the leaf entry's offset without going through a frame number). At
    /// each upper level one compare tests both "present" and "table inside the arena": a
    /// non-present entry is always zero in these tables (every clear writes 0), so
    /// `entry - PRESENT` wraps far past the last frame. (Were some other non-present value
    /// ever stored, the walk would stay memory-safe — every load is bounds-checked — just
    /// not meaningful.)
    #[inline]
    fn translate(arena: &Arena, root: Frame, va: VirtAddr) -> Option<Mapping> {
        let va = va.0;
        if va >= L::VA_END {
            return None;
        }
        // The walk of `cursor::leaf_at`, kept inline here: going through its `Option`
        // costs 3 Ir per translate (+4.2 % on translate_random, measured).
        let last = arena.last_frame_offset();
        let mut table = root.start_address().0;
        let mut l = L::LEVELS - 1;
        while l > 0 {
            let e = L::entry(arena, table, index::<L>(va, l));
            // A huge entry is decoded where the walk stops (no call: a call here would
            // cost the common path its registers). With a HUGE_MARK the one compare
            // below stops there; without one (i386) `PS` is tested first, on the entry
            // as loaded (a non-present entry is 0, so `PS` implies present).
            if L::HUGE_MARK == 0 && is_huge_entry(e, l) {
                return Some(huge::huge_mapping::<L>(e, va));
            }
            table = link_offset::<L>(e);
            if table > last {
                return (L::HUGE_MARK != 0 && is_huge_entry(e, l) && e & PRESENT != 0)
                    .then(|| huge::huge_mapping::<L>(e, va));
            }
            l -= 1;
        }
        let e = L::entry(arena, table, index::<L>(va, 0));
        (e & PRESENT != 0).then(|| Mapping { frame: entry_frame::<L>(e), flags: entry::from_raw(e) })
    }

    fn replace<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        root: Frame,
        va: VirtAddr,
        m: Mapping,
    ) -> Result<Mapping, PagingError> {
        if va.0 >= L::VA_END {
            return Err(PagingError::AddressOutOfRange(va));
        }
        // The fault path's step on a fresh walk (which names the page; the error names `va`).
        let mut w = walk::walk::<L, F>(mem, root, va);
        walk::replace_at::<L, F>(mem, &mut w, m).map_err(|e| match e {
            PagingError::NotMapped(_) => PagingError::NotMapped(va),
            e => e,
        })
    }

    fn for_each_mapping(arena: &Arena, root: Frame, span: PageSpan, f: &mut dyn FnMut(VirtAddr, Mapping)) {
        Self::for_each_leaf_mapping(arena, root, span, &mut |_, va, m| f(va, m));
    }

    fn for_each_leaf_mapping(
        arena: &Arena,
        root: Frame,
        span: PageSpan,
        f: &mut dyn FnMut(Frame, VirtAddr, Mapping),
    ) {
        let (start, end) = clip::<L>(span);
        let mut cur = Cursor::<L>::new(root);
        let mut va = start;
        while va < end {
            let leaf = match cur.find_leaf_or_huge(arena, va) {
                Ok(leaf) => leaf,
                Err(next) => {
                    // No leaf table for this directory entry: it may be a huge entry.
                    if next == next_boundary::<L>(va, 1) {
                        if let Some((dir, _, e)) = huge::huge_at::<L>(arena, root, va) {
                            for page in (va..next.min(end)).step_by(4096) {
                                f(dir, VirtAddr(page), huge::huge_mapping::<L>(e, page));
                            }
                        }
                    }
                    va = next;
                    continue;
                }
            };
            let stop = next_boundary::<L>(va, 1).min(end);
            let i0 = index::<L>(va, 0);
            for (k, e) in L::table(arena, leaf)[i0..i0 + ((stop - va) >> 12) as usize].iter().enumerate() {
                let e = e.raw();
                if e & PRESENT != 0 {
                    let m = Mapping { frame: entry_frame::<L>(e), flags: entry::from_raw(e) };
                    f(leaf, VirtAddr(va + ((k as u64) << 12)), m);
                }
            }
            va = stop;
        }
    }

    fn present_entries(arena: &Arena, table: Frame) -> u64 {
        L::table(arena, table).iter().filter(|e| e.raw() & PRESENT != 0).count() as u64
    }

    fn for_each_table(arena: &Arena, root: Frame, f: &mut dyn FnMut(Frame)) {
        let Ok(()) = walk_space::<L, _, _>(&mut { arena }, &mut ListTables(f), root);
    }

    fn for_each_leaf_table(arena: &Arena, root: Frame, f: &mut dyn FnMut(VirtAddr, Frame, bool)) {
        let Ok(()) = walk_space::<L, _, _>(&mut { arena }, &mut ListLeafTables(f), root);
    }

    fn fork_copy<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        parent: Frame,
        mode: ForkPolicy,
    ) -> Result<Frame, PagingError> {
        fork::fork_copy::<L, F>(mem, parent, mode)
    }

    fn destroy<F: FrameAllocator>(mem: &mut PhysMem<F>, root: Frame) {
        destroy_table::<L, F>(mem, root, L::LEVELS - 1);
    }

    /// Permissions are the AND over all levels; writes
    /// fault on read-only pages also in supervisor mode (CR0.WP set, as MINIX runs).
    #[inline]
    fn hw_translate(
        arena: &mut Arena,
        root: Frame,
        va: VirtAddr,
        access: Access,
    ) -> Result<Mapping, FaultCode> {
        let code = (u32::from(access.write) * FaultCode::WRITE) | (u32::from(access.user) * FaultCode::USER);
        if va.0 >= L::VA_END {
            return Err(FaultCode(code));
        }
        let need = (u64::from(access.write) * WRITE) | (u64::from(access.user) * USER);
        let mut allow = WRITE | USER;
        let mut table = root.start_address().0;
        let mut l = L::LEVELS;
        loop {
            l -= 1;
            let at = entry_offset::<L>(table, va.0, l);
            let e = L::load(arena, at);
            if e & PRESENT == 0 {
                return Err(FaultCode(code));
            }
            allow &= e;
            if l == 0 || is_huge_entry(e, l) {
                if need & !allow != 0 {
                    return Err(FaultCode(code | FaultCode::PRESENT));
                }
                let ne = e | ACCESSED | (u64::from(access.write) * DIRTY);
                if ne != e {
                    L::store(arena, at, ne);
                }
                if l != 0 {
                    return Ok(huge::huge_mapping::<L>(ne, va.0));
                }
                return Ok(Mapping { frame: entry_frame::<L>(ne), flags: entry::from_raw(ne) });
            }
            if e & ACCESSED == 0 {
                L::store(arena, at, e | ACCESSED);
            }
            table = e & L::ADDR_MASK;
        }
    }
}
