//! The copy-on-write break of a write fault on a present read-only page: a page that is
//! this space's alone just becomes writable again; a shared one is copied into a frame of
//! its own and mapped writable in its place.
//!
//! Replaces `region.c`'s `map_clone_ph_block` (and the reuse test of `map_pf`). Used by
//! the 4 KiB fault path and by the huge-page path after a split.

use crate::calls::fault_error::FaultError;
use crate::frames::FrameAllocator;
use crate::paging::{Mapping, PageFlags, PageWalk, PagingFormat};
use crate::server::Vm;

/// A write to a present read-only page of a writable region: copy-on-write. A frame that
/// is this space's alone (or not counted) just becomes writable again.
pub(super) fn break_cow<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    w: &mut PageWalk,
    m: Mapping,
) -> Result<(), FaultError> {
    let private = !m.flags.intersects(PageFlags::SHARED | PageFlags::DIRECT);
    if !private || vm.mem.refs().get(m.frame) == 1 {
        P::reflag_at(&mut vm.mem, w, PageFlags::WRITE, PageFlags::COW)
            .map_err(|_| FaultError::OutOfMemory)?;
        vm.stats.cow_reuses += 1;
        return Ok(());
    }
    let copy = vm.alloc_any().ok_or(FaultError::OutOfMemory)?;
    write_copy(vm, w, m, copy)
}

/// Copies the page of `w` (mapping `m`) into `copy`, a frame the caller holds, and maps
/// the copy writable in its place. The leaf table is this space's own by now, so the
/// replacement needs no frame.
pub(super) fn write_copy<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    w: &mut PageWalk,
    m: Mapping,
    copy: crate::addr::Frame,
) -> Result<(), FaultError> {
    vm.mem.arena_mut().copy_frame(m.frame, copy);
    let flags =
        m.flags.difference(PageFlags::COW | PageFlags::ACCESSED | PageFlags::DIRTY) | PageFlags::WRITE;
    if P::replace_at(&mut vm.mem, w, Mapping { frame: copy, flags }).is_err() {
        vm.mem.unref(copy);
        return Err(FaultError::OutOfMemory);
    }
    vm.stats.cow_copies += 1;
    Ok(())
}
