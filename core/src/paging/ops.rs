//! The page-table operations, written once over a format description ([`Layout`]) and
//! offered as [`PagingFormat`] by every format.
//!
//! Replaces `pt_writemap`, `pt_ptalloc`, `pt_free` (`arch/i386/pagetable.c`) and the
//! per-page PTE updates of `map_ph_writept`/`map_writept` (`region.c`). Range operations
//! step one leaf table at a time with a [`Cursor`]; the inner loops touch raw entries only.
//! Ownership, sharing and allocate-then-commit rules: see the [`super`] module
//! documentation. Every operation that writes a leaf entry first makes the leaf table
//! this space's own ([`own_leaf`]); the hardware walk and `translate` read shared tables
//! as they are.

use crate::addr::{Frame, PageSpan, VirtAddr};
use crate::arena::Arena;
use crate::frames::{FrameAllocator, PhysMem};
use crate::paging::cursor::Cursor;
use crate::paging::entry::{self, Pte, ACCESSED, COW, DIRECT, DIRTY, PRESENT, USER, WRITE};
use crate::paging::layout::{
    alloc_table_uninit, empty_outside, entries, entry_frame, entry_offset, index, next_boundary, Layout, RUN,
};
use crate::paging::{
    fork, Access, FaultCode, ForkPolicy, LeafLink, Mapping, PageFlags, PagingError, PagingFormat,
};

/// `span` clipped to the format's address space, as `start..end` byte addresses.
#[inline]
fn clip<L: Layout>(span: PageSpan) -> (u64, u64) {
    let end = span.end().0.min(L::VA_END);
    (span.start.0.min(end), end)
}

/// Checks that `span` lies inside the format's address space.
#[inline]
fn check_span<L: Layout>(span: PageSpan) -> Result<(), PagingError> {
    if span.end().0 > L::VA_END {
        return Err(PagingError::AddressOutOfRange(VirtAddr(span.start.0.max(L::VA_END))));
    }
    Ok(())
}

/// Checks that frames `first .. first + count` fit in an entry and, unless DIRECT, lie in
/// the arena (a counted frame must have a reference count).
#[inline]
fn check_frames<L: Layout>(
    arena: &Arena,
    first: Frame,
    count: u64,
    flags: PageFlags,
) -> Result<(), PagingError> {
    let end = first.0.checked_add(count).ok_or(PagingError::FrameOutOfRange(first))?;
    if end > L::FRAME_END {
        return Err(PagingError::FrameOutOfRange(Frame(first.0.max(L::FRAME_END))));
    }
    if !flags.contains(PageFlags::DIRECT) && end > arena.frames() {
        return Err(PagingError::FrameOutOfRange(Frame(first.0.max(arena.frames()))));
    }
    Ok(())
}

/// A leaf table that a call copied out of sharing, kept so that a later failure of the
/// same call can restore the sharing exactly ([`reshare`]).
#[derive(Clone, Copy, Debug)]
struct Unshared {
    /// The directory holding the link.
    dir: Frame,
    /// The link's index in `dir`.
    idx: usize,
    /// The shared table the link pointed at.
    old: Frame,
    /// The private copy it points at now.
    new: Frame,
}

/// Makes the leaf table that the last walk of `cur` found for `va` this space's own, so
/// that its entries may be changed, and returns it. A table with reference count 1 is
/// already ours (even behind a read-only link; [`unshare`] restores the link for
/// writes). A table linked by several directories is copied (one 4 KiB pass: private
/// writable pages become COW in the copy, every counted frame gains a reference), the
/// shared table loses this space's reference, and the link points at the copy, writable.
/// The copy is recorded in `undo`.
///
/// # Errors
/// [`PagingError::OutOfFrames`] for the copy; nothing has changed then.
#[inline]
fn own_leaf<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    cur: &mut Cursor<L>,
    va: u64,
    undo: &mut Vec<Unshared>,
) -> Result<Frame, PagingError> {
    let leaf = cur.table_at(0);
    if mem.refs.get(leaf) == 1 {
        return Ok(leaf);
    }
    let copy = alloc_table_uninit::<L, F>(mem).ok_or(PagingError::OutOfFrames)?;
    fork::copy_leaf_private::<L, F>(mem, leaf, copy);
    mem.refs.dec(leaf);
    let (dir, idx) = (cur.table_at(1), index::<L>(va, 1));
    let link = L::table(&mem.arena, dir)[idx].raw();
    L::table_mut(&mut mem.arena, dir)[idx] =
        L::Pte::from_raw((link & !L::ADDR_MASK) | copy.start_address().0 | WRITE);
    cur.set_leaf(copy);
    undo.push(Unshared { dir, idx, old: leaf, new: copy });
    Ok(copy)
}

/// Undoes the copies of [`own_leaf`] in `undo` (newest first): each copy's references are
/// dropped and it is freed, and its link points read-only at the shared table again.
fn reshare<L: Layout, F: FrameAllocator>(mem: &mut PhysMem<F>, undo: &[Unshared]) {
    for u in undo.iter().rev() {
        unref_leaves::<L, F>(mem, u.new);
        mem.free_table(u.new);
        mem.refs.inc(u.old);
        let link = L::table(&mem.arena, u.dir)[u.idx].raw();
        L::table_mut(&mut mem.arena, u.dir)[u.idx] =
            L::Pte::from_raw((link & !(L::ADDR_MASK | WRITE)) | u.old.start_address().0);
    }
}

/// Makes every leaf table in `start..end` this space's own before a change that cannot be
/// undone page by page. On failure the copies made are undone.
///
/// # Errors
/// [`PagingError::OutOfFrames`]; nothing has changed then.
fn own_span<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    root: Frame,
    start: u64,
    end: u64,
) -> Result<(), PagingError> {
    let mut cur = Cursor::<L>::new(root);
    let mut undo = Vec::new();
    let mut va = start;
    while va < end {
        let leaf = match cur.find(&mem.arena, va) {
            Ok(t) => t,
            Err(next) => {
                va = next;
                continue;
            }
        };
        let stop = next_boundary::<L>(va, 1).min(end);
        let (i0, n) = (index::<L>(va, 0), ((stop - va) >> 12) as usize);
        if mem.refs.get(leaf) > 1 && !all_present_free::<L>(&mem.arena, leaf, i0, n) {
            if let Err(e) = own_leaf::<L, F>(mem, &mut cur, va, &mut undo) {
                reshare::<L, F>(mem, &undo);
                return Err(e);
            }
        }
        va = stop;
    }
    Ok(())
}

/// Before an unmap of `start..end` over several leaf tables: only the first and the last
/// table can be covered in part (the others are dropped whole if shared), so only they
/// may need a copy. Both are made this space's own, or neither.
///
/// # Errors
/// [`PagingError::OutOfFrames`]; nothing has changed then.
fn own_unmap_ends<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    root: Frame,
    start: u64,
    end: u64,
) -> Result<(), PagingError> {
    let leaf_bytes = 1u64 << crate::paging::layout::shift::<L>(1);
    let mut cur = Cursor::<L>::new(root);
    let mut undo = Vec::new();
    for (from, to) in [(start, next_boundary::<L>(start, 1)), ((end - 1) & !(leaf_bytes - 1), end)] {
        if to - from == leaf_bytes {
            continue; // covered whole
        }
        let Ok(leaf) = cur.find(&mem.arena, from) else { continue };
        let (i0, n) = (index::<L>(from, 0), ((to - from) >> 12) as usize);
        if mem.refs.get(leaf) > 1 && !all_present_free::<L>(&mem.arena, leaf, i0, n) {
            if let Err(e) = own_leaf::<L, F>(mem, &mut cur, from, &mut undo) {
                reshare::<L, F>(mem, &undo);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Whether entries `i0 .. i0 + n` of the leaf table `leaf` are all empty (nothing there
/// to change, so a shared table need not be copied for them).
#[inline]
fn all_present_free<L: Layout>(arena: &Arena, leaf: Frame, i0: usize, n: usize) -> bool {
    L::table(arena, leaf)[i0..i0 + n].iter().all(|e| e.raw() & PRESENT == 0)
}

/// See [`PagingFormat::leaf_link`].
pub fn leaf_link<L: Layout, F: FrameAllocator>(mem: &PhysMem<F>, root: Frame, va: VirtAddr) -> LeafLink {
    if va.0 >= L::VA_END {
        return LeafLink::Writable;
    }
    let mut cur = Cursor::<L>::new(root);
    let Ok(leaf) = cur.find(&mem.arena, va.0) else {
        return LeafLink::Writable;
    };
    let link = L::table(&mem.arena, cur.table_at(1))[index::<L>(va.0, 1)].raw();
    if link & WRITE != 0 {
        LeafLink::Writable
    } else if mem.refs.get(leaf) == 1 {
        LeafLink::ReadOnlyPrivate
    } else {
        LeafLink::Shared
    }
}

/// See [`PagingFormat::unshare`].
pub fn unshare<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    root: Frame,
    va: VirtAddr,
) -> Result<Option<Mapping>, PagingError> {
    if va.0 >= L::VA_END {
        return Ok(None);
    }
    let mut cur = Cursor::<L>::new(root);
    let Ok(mut leaf) = cur.find(&mem.arena, va.0) else {
        return Ok(None);
    };
    let (dir, idx) = (cur.table_at(1), index::<L>(va.0, 1));
    let link = L::table(&mem.arena, dir)[idx].raw();
    if link & WRITE == 0 {
        if mem.refs.get(leaf) > 1 {
            leaf = own_leaf::<L, F>(mem, &mut cur, va.0, &mut Vec::new())?;
        } else {
            // Ours alone now: frames still shared with a former sharer's copy turn COW
            // before the link lets writes through.
            let PhysMem { arena, refs, .. } = &mut *mem;
            let refs = refs.as_slice();
            for slot in L::table_mut(arena, leaf) {
                let e = slot.raw();
                if e & (PRESENT | WRITE) == PRESENT | WRITE
                    && entry::is_private(e)
                    && refs[entry_frame::<L>(e).index()] > 1
                {
                    *slot = L::Pte::from_raw((e & !WRITE) | COW);
                }
            }
            L::table_mut(&mut mem.arena, dir)[idx] = L::Pte::from_raw(link | WRITE);
        }
    }
    let e = L::table(&mem.arena, leaf)[index::<L>(va.0, 0)].raw();
    Ok((e & PRESENT != 0).then(|| Mapping { frame: entry_frame::<L>(e), flags: entry::from_raw(e) }))
}

/// See [`PagingFormat::new_root`].
pub fn new_root<L: Layout, F: FrameAllocator>(mem: &mut PhysMem<F>) -> Result<Frame, PagingError> {
    crate::paging::layout::alloc_table::<L, F>(mem).ok_or(PagingError::OutOfFrames)
}

/// See [`PagingFormat::map_range`].
pub fn map_range<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    root: Frame,
    span: PageSpan,
    first: Frame,
    flags: PageFlags,
) -> Result<(), PagingError> {
    check_span::<L>(span)?;
    check_frames::<L>(&mem.arena, first, span.pages, flags)?;
    let start = span.start.0;
    let end = span.end().0;
    // Entry of page `va`: `base + va` (the frame advances with the address).
    let base = (PRESENT | entry::to_raw(flags)).wrapping_add(first.start_address().0).wrapping_sub(start);
    let mut cur = Cursor::<L>::new(root);
    let mut undo = Vec::new();
    let mut va = start;
    while va < end {
        let leaf = match cur.find_or_alloc(mem, va) {
            Ok(t) if mem.refs.get(t) == 1 => Ok(t),
            Ok(_) => own_leaf::<L, F>(mem, &mut cur, va, &mut undo),
            Err(e) => Err(e),
        };
        let leaf = match leaf {
            Ok(t) => t,
            Err(e) => {
                let _ = clear_range::<L, F>(mem, root, start, va, false);
                reshare::<L, F>(mem, &undo);
                return Err(e);
            }
        };
        let stop = next_boundary::<L>(va, 1).min(end);
        let i0 = index::<L>(va, 0);
        let n = ((stop - va) >> 12) as usize;
        let t = &mut L::table_mut(&mut mem.arena, leaf)[i0..i0 + n];
        if let Some(k) = t.iter().position(|e| e.raw() & PRESENT != 0) {
            // Map the free pages before it so that one rollback undoes the whole call.
            fill::<L>(&mut t[..k], base, va);
            let bad = va + ((k as u64) << 12);
            let _ = clear_range::<L, F>(mem, root, start, bad, false);
            reshare::<L, F>(mem, &undo);
            return Err(PagingError::AlreadyMapped(VirtAddr(bad)));
        }
        fill::<L>(t, base, va);
        va = stop;
    }
    Ok(())
}

/// Writes consecutive leaf entries `base + va`, `base + va + 4096`, … into `t`.
#[inline(always)]
fn fill<L: Layout>(t: &mut [L::Pte], base: u64, va: u64) {
    let mut e = base.wrapping_add(va);
    for slot in t {
        *slot = L::Pte::from_raw(e);
        e = e.wrapping_add(4096);
    }
}

/// Clears every present leaf entry in `start..end`, dropping its reference when `drop`
/// (else the caller keeps it: the rollback of a failed map, whose tables are all this
/// space's own), and frees the tables this leaves empty. A shared leaf table the span
/// covers entirely just loses this space's link and reference; one covered in part is
/// copied first. Returns the number of entries cleared.
///
/// # Errors
/// [`PagingError::OutOfFrames`] for such a copy (only when `drop`); nothing has changed.
fn clear_range<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    root: Frame,
    start: u64,
    end: u64,
    drop: bool,
) -> Result<u64, PagingError> {
    let single = next_boundary::<L>(start, 1) >= end;
    if drop && !single {
        own_unmap_ends::<L, F>(mem, root, start, end)?;
    }
    let mut cur = Cursor::<L>::new(root);
    let mut va = start;
    let mut cleared = 0;
    while va < end {
        let mut leaf = match cur.find(&mem.arena, va) {
            Ok(t) => t,
            Err(next) => {
                va = next;
                continue;
            }
        };
        let stop = next_boundary::<L>(va, 1).min(end);
        let i0 = index::<L>(va, 0);
        let n = ((stop - va) >> 12) as usize;
        if mem.refs.get(leaf) > 1 {
            debug_assert!(drop, "a map's rollback met a shared table");
            if n == entries::<L>() {
                let t = L::table(&mem.arena, leaf);
                cleared += t.iter().filter(|e| e.raw() & PRESENT != 0).count() as u64;
                cur.release_empty(mem, va);
                va = stop;
                continue;
            }
            if all_present_free::<L>(&mem.arena, leaf, i0, n) {
                va = stop;
                continue;
            }
            leaf = own_leaf::<L, F>(mem, &mut cur, va, &mut Vec::new())?;
        }
        let PhysMem { arena, alloc, refs, .. } = &mut *mem;
        let refs = refs.as_mut_slice();
        let t = L::table_mut(arena, leaf);
        for slot in &mut t[i0..i0 + n] {
            let e = slot.raw();
            if e & PRESENT != 0 {
                *slot = L::Pte::ZERO;
                cleared += 1;
                if drop && e & DIRECT == 0 {
                    let f = entry_frame::<L>(e);
                    let count = &mut refs[f.index()];
                    debug_assert!(*count > 0, "{f:?} dereferenced below zero");
                    *count -= 1;
                    if *count == 0 {
                        alloc.free(f);
                    }
                }
            }
        }
        if n == entries::<L>() || empty_outside(t, i0..i0 + n) {
            cur.release_empty(mem, va);
        }
        va = stop;
    }
    Ok(cleared)
}

/// See [`PagingFormat::unmap_range`].
pub fn unmap_range<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    root: Frame,
    span: PageSpan,
) -> Result<u64, PagingError> {
    let (start, end) = clip::<L>(span);
    clear_range::<L, F>(mem, root, start, end, true)
}

/// See [`PagingFormat::protect_range`].
pub fn protect_range<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    root: Frame,
    span: PageSpan,
    set: PageFlags,
    clear: PageFlags,
) -> Result<u64, PagingError> {
    let (start, end) = clip::<L>(span);
    let single = next_boundary::<L>(start, 1) >= end;
    if !single {
        own_span::<L, F>(mem, root, start, end)?;
    }
    let (set, mut clear) = (entry::to_raw(set), entry::to_raw(clear));
    // Taking WRITE away also ends copy-on-write; granting it is decided per page below.
    if clear & WRITE != 0 {
        clear |= COW;
    }
    let grant_write = set & WRITE != 0;
    let set = set & !WRITE;
    let mut cur = Cursor::<L>::new(root);
    let mut va = start;
    let mut changed = 0;
    while va < end {
        let mut leaf = match cur.find(&mem.arena, va) {
            Ok(t) => t,
            Err(next) => {
                va = next;
                continue;
            }
        };
        let stop = next_boundary::<L>(va, 1).min(end);
        let i0 = index::<L>(va, 0);
        let n = ((stop - va) >> 12) as usize;
        if mem.refs.get(leaf) > 1 {
            if all_present_free::<L>(&mem.arena, leaf, i0, n) {
                va = stop;
                continue;
            }
            leaf = own_leaf::<L, F>(mem, &mut cur, va, &mut Vec::new())?;
        }
        let PhysMem { arena, refs, .. } = &mut *mem;
        let refs = refs.as_slice();
        for slot in &mut L::table_mut(arena, leaf)[i0..i0 + n] {
            let e = slot.raw();
            if e & PRESENT == 0 {
                continue;
            }
            let mut ne = (e & !clear) | set;
            if grant_write {
                // A private frame still shared with another space stays read-only + COW.
                ne = if entry::is_private(ne) && refs[entry_frame::<L>(e).index()] > 1 {
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
        va = stop;
    }
    Ok(changed)
}

/// See [`PagingFormat::translate`]. The walk works on arena byte offsets. At each upper
/// level one compare tests both "present" and "table inside the arena": a non-present
/// entry is always zero in these tables (every clear writes 0), so `entry - PRESENT`
/// wraps far past the last frame. (Were some other non-present value ever stored, the
/// walk would stay memory-safe — every load is bounds-checked — just not meaningful.)
#[inline]
pub fn translate<L: Layout>(arena: &Arena, root: Frame, va: VirtAddr) -> Option<Mapping> {
    let va = va.0;
    if va >= L::VA_END {
        return None;
    }
    let last = arena.last_frame_offset();
    let mut table = root.start_address().0;
    let mut l = L::LEVELS - 1;
    while l > 0 {
        let e = L::entry(arena, table, index::<L>(va, l));
        table = (e & (L::ADDR_MASK | PRESENT)).wrapping_sub(PRESENT);
        if table > last {
            return None;
        }
        l -= 1;
    }
    let e = L::entry(arena, table, index::<L>(va, 0));
    (e & PRESENT != 0).then(|| Mapping { frame: entry_frame::<L>(e), flags: entry::from_raw(e) })
}

/// See [`PagingFormat::replace`].
pub fn replace<L: Layout, F: FrameAllocator>(
    mem: &mut PhysMem<F>,
    root: Frame,
    va: VirtAddr,
    m: Mapping,
) -> Result<Mapping, PagingError> {
    if va.0 >= L::VA_END {
        return Err(PagingError::AddressOutOfRange(va));
    }
    check_frames::<L>(&mem.arena, m.frame, 1, m.flags)?;
    let mut cur = Cursor::<L>::new(root);
    let mut leaf = cur.find(&mem.arena, va.0).map_err(|_| PagingError::NotMapped(va))?;
    if L::table(&mem.arena, leaf)[index::<L>(va.0, 0)].raw() & PRESENT == 0 {
        return Err(PagingError::NotMapped(va));
    }
    if mem.refs.get(leaf) > 1 {
        leaf = own_leaf::<L, F>(mem, &mut cur, va.0, &mut Vec::new())?;
    }
    let slot = &mut L::table_mut(&mut mem.arena, leaf)[index::<L>(va.0, 0)];
    let old = slot.raw();
    *slot = L::Pte::from_raw(PRESENT | entry::to_raw(m.flags) | m.frame.start_address().0);
    let old_frame = entry_frame::<L>(old);
    if old & DIRECT == 0 {
        mem.unref(old_frame);
    }
    Ok(Mapping { frame: old_frame, flags: entry::from_raw(old) })
}

/// See [`PagingFormat::for_each_mapping`].
pub fn for_each_mapping<L: Layout>(
    arena: &Arena,
    root: Frame,
    span: PageSpan,
    f: &mut dyn FnMut(VirtAddr, Mapping),
) {
    let (start, end) = clip::<L>(span);
    let mut cur = Cursor::<L>::new(root);
    let mut va = start;
    while va < end {
        let leaf = match cur.find(arena, va) {
            Ok(t) => t,
            Err(next) => {
                va = next;
                continue;
            }
        };
        let stop = next_boundary::<L>(va, 1).min(end);
        let i0 = index::<L>(va, 0);
        let n = ((stop - va) >> 12) as usize;
        for (k, e) in L::table(arena, leaf)[i0..i0 + n].iter().enumerate() {
            let e = e.raw();
            if e & PRESENT != 0 {
                let m = Mapping { frame: entry_frame::<L>(e), flags: entry::from_raw(e) };
                f(VirtAddr(va + ((k as u64) << 12)), m);
            }
        }
        va = stop;
    }
}

/// See [`PagingFormat::for_each_leaf_table`].
pub fn for_each_leaf_table<L: Layout>(arena: &Arena, root: Frame, f: &mut dyn FnMut(VirtAddr, Frame, bool)) {
    fn walk<L: Layout>(
        arena: &Arena,
        t: Frame,
        level: usize,
        base: u64,
        f: &mut dyn FnMut(VirtAddr, Frame, bool),
    ) {
        for (i, e) in L::table(arena, t).iter().enumerate() {
            let e = e.raw();
            if e & PRESENT == 0 {
                continue;
            }
            let va = base + ((i as u64) << crate::paging::layout::shift::<L>(level));
            if level == 1 {
                f(VirtAddr(va), entry_frame::<L>(e), e & WRITE != 0);
            } else {
                walk::<L>(arena, entry_frame::<L>(e), level - 1, va, f);
            }
        }
    }
    walk::<L>(arena, root, L::LEVELS - 1, 0, f);
}

/// See [`PagingFormat::for_each_table`].
pub fn for_each_table<L: Layout>(arena: &Arena, root: Frame, f: &mut dyn FnMut(Frame)) {
    fn walk<L: Layout>(arena: &Arena, t: Frame, level: usize, f: &mut dyn FnMut(Frame)) {
        f(t);
        if level > 0 {
            for e in L::table(arena, t) {
                let e = e.raw();
                if e & PRESENT != 0 {
                    walk::<L>(arena, entry_frame::<L>(e), level - 1, f);
                }
            }
        }
    }
    walk::<L>(arena, root, L::LEVELS - 1, f);
}

/// Drops the references of a leaf table's present entries (empty runs skipped).
#[inline]
pub(crate) fn unref_leaves<L: Layout, F: FrameAllocator>(mem: &mut PhysMem<F>, leaf: Frame) {
    let PhysMem { arena, alloc, refs, .. } = mem;
    let refs = refs.as_mut_slice();
    for run in L::table(arena, leaf).chunks_exact(RUN) {
        if L::Pte::all_zero(run) {
            continue;
        }
        for e in run {
            let e = e.raw();
            if e & (PRESENT | DIRECT) == PRESENT {
                let f = entry_frame::<L>(e);
                let count = &mut refs[f.index()];
                debug_assert!(*count > 0, "{f:?} dereferenced below zero");
                *count -= 1;
                if *count == 0 {
                    alloc.free(f);
                }
            }
        }
    }
}

/// Frees the table `t` at `level` and everything below it.
pub(crate) fn destroy_table<L: Layout, F: FrameAllocator>(mem: &mut PhysMem<F>, t: Frame, level: usize) {
    if level == 0 {
        if mem.refs.get(t) > 1 {
            // Still linked by another space: only this link's reference goes.
            mem.refs.dec(t);
            return;
        }
        unref_leaves::<L, F>(mem, t);
    } else {
        let base = t.start_address().0;
        let mut i = 0;
        while i < entries::<L>() {
            if i % RUN == 0 && L::Pte::all_zero(&L::table(&mem.arena, t)[i..i + RUN]) {
                i += RUN;
                continue;
            }
            let e = L::entry(&mem.arena, base, i);
            if e & PRESENT != 0 {
                destroy_table::<L, F>(mem, entry_frame::<L>(e), level - 1);
            }
            i += 1;
        }
    }
    mem.free_table(t);
}

/// See [`PagingFormat::destroy`].
pub fn destroy<L: Layout, F: FrameAllocator>(mem: &mut PhysMem<F>, root: Frame) {
    destroy_table::<L, F>(mem, root, L::LEVELS - 1);
}

/// See [`PagingFormat::hw_translate`]. Permissions are the AND over all levels; writes
/// fault on read-only pages also in supervisor mode (CR0.WP set, as MINIX runs).
#[inline]
pub fn hw_translate<L: Layout>(
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
        if l == 0 {
            if need & !allow != 0 {
                return Err(FaultCode(code | FaultCode::PRESENT));
            }
            let ne = e | ACCESSED | (u64::from(access.write) * DIRTY);
            if ne != e {
                L::store(arena, at, ne);
            }
            return Ok(Mapping { frame: entry_frame::<L>(ne), flags: entry::from_raw(ne) });
        }
        if e & ACCESSED == 0 {
            L::store(arena, at, e | ACCESSED);
        }
        table = e & L::ADDR_MASK;
    }
}

impl<L: Layout> PagingFormat for L {
    const NAME: &'static str = L::NAME;
    const VA_END: u64 = L::VA_END;
    const FRAME_END: u64 = L::FRAME_END;

    fn new_root<F: FrameAllocator>(mem: &mut PhysMem<F>) -> Result<Frame, PagingError> {
        new_root::<L, F>(mem)
    }

    fn map<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        root: Frame,
        va: VirtAddr,
        m: Mapping,
    ) -> Result<(), PagingError> {
        let span = PageSpan { start: va.page_floor(), pages: 1 };
        if va.0 >= L::VA_END {
            return Err(PagingError::AddressOutOfRange(va));
        }
        map_range::<L, F>(mem, root, span, m.frame, m.flags)
    }

    fn map_range<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        root: Frame,
        span: PageSpan,
        first: Frame,
        flags: PageFlags,
    ) -> Result<(), PagingError> {
        map_range::<L, F>(mem, root, span, first, flags)
    }

    fn unmap_range<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        root: Frame,
        span: PageSpan,
    ) -> Result<u64, PagingError> {
        unmap_range::<L, F>(mem, root, span)
    }

    fn protect_range<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        root: Frame,
        span: PageSpan,
        set: PageFlags,
        clear: PageFlags,
    ) -> Result<u64, PagingError> {
        protect_range::<L, F>(mem, root, span, set, clear)
    }

    fn unshare<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        root: Frame,
        va: VirtAddr,
    ) -> Result<Option<Mapping>, PagingError> {
        unshare::<L, F>(mem, root, va)
    }

    fn leaf_link<F: FrameAllocator>(mem: &PhysMem<F>, root: Frame, va: VirtAddr) -> LeafLink {
        leaf_link::<L, F>(mem, root, va)
    }

    #[inline]
    fn translate(arena: &Arena, root: Frame, va: VirtAddr) -> Option<Mapping> {
        translate::<L>(arena, root, va)
    }

    fn replace<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        root: Frame,
        va: VirtAddr,
        m: Mapping,
    ) -> Result<Mapping, PagingError> {
        replace::<L, F>(mem, root, va, m)
    }

    fn for_each_mapping(arena: &Arena, root: Frame, span: PageSpan, f: &mut dyn FnMut(VirtAddr, Mapping)) {
        for_each_mapping::<L>(arena, root, span, f)
    }

    fn for_each_table(arena: &Arena, root: Frame, f: &mut dyn FnMut(Frame)) {
        for_each_table::<L>(arena, root, f)
    }

    fn for_each_leaf_table(arena: &Arena, root: Frame, f: &mut dyn FnMut(VirtAddr, Frame, bool)) {
        for_each_leaf_table::<L>(arena, root, f)
    }

    fn fork_copy<F: FrameAllocator>(
        mem: &mut PhysMem<F>,
        parent: Frame,
        mode: ForkPolicy,
    ) -> Result<Frame, PagingError> {
        fork::fork_copy::<L, F>(mem, parent, mode)
    }

    fn destroy<F: FrameAllocator>(mem: &mut PhysMem<F>, root: Frame) {
        destroy::<L, F>(mem, root)
    }

    #[inline]
    fn hw_translate(
        arena: &mut Arena,
        root: Frame,
        va: VirtAddr,
        access: Access,
    ) -> Result<Mapping, FaultCode> {
        hw_translate::<L>(arena, root, va, access)
    }
}
