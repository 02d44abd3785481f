//! The software MMU: translates a process's virtual addresses through its page tables in
//! the arena the way the x86 hardware does, and copies bytes through virtual addresses.
//!
//! Replaces what the MINIX kernel's `vm_lookup`/`vm_copy` (`arch/i386/memory.c`) and the
//! hardware page walk do for VM: a walk that checks present/write/user at every level,
//! sets ACCESSED (and DIRTY on a write), and reports a fault with the x86 error-code bits
//! ([`FaultCode`]). A page-directory entry with `PS` (a huge page: 2 MiB on x86-64, 4 MiB
//! on i386) ends the walk as a leaf does: its permissions decide, and ACCESSED and DIRTY
//! are set in it, for the whole block, as the hardware does. No fault is handled here:
//! the caller (the server's fault path) does.

use crate::addr::{Frame, VirtAddr, PAGE_SIZE};
use crate::arena::Arena;
use crate::paging::{Access, FaultCode, Mapping, PagingFormat};
use core::fmt;

/// Why a copy through virtual addresses stopped. Bytes before `va` were copied.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CopyError {
    /// The page of `va` faulted with `code`.
    Fault {
        /// The first byte that could not be reached.
        va: VirtAddr,
        /// The x86 error code of the fault.
        code: FaultCode,
    },
    /// The page of `va` maps a device frame outside the arena, which holds no bytes here.
    Device {
        /// The first byte that could not be reached.
        va: VirtAddr,
        /// The device frame.
        frame: Frame,
    },
}

impl fmt::Display for CopyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CopyError::Fault { va, code } => write!(f, "page fault at {va:?} (error code {:#x})", code.0),
            CopyError::Device { va, frame } => write!(f, "{va:?} maps device {frame:?} outside the arena"),
        }
    }
}

impl std::error::Error for CopyError {}

/// Translates `va` for `access` in the address space rooted at `root`, as the MMU would:
/// sets ACCESSED (and DIRTY on a write) or returns the fault's error code.
///
/// # Errors
/// A [`FaultCode`]: not present, write to a read-only page, user access to a supervisor page.
#[inline]
pub fn translate<P: PagingFormat>(
    arena: &mut Arena,
    root: Frame,
    va: VirtAddr,
    access: Access,
) -> Result<Mapping, FaultCode> {
    P::hw_translate(arena, root, va, access)
}

/// The one page walker over virtual addresses: walks `len` bytes from `va` one page at a
/// time, translating each page with `translate` (which returns the page's frame or the
/// error to stop with) and calling `each` with (context, frame, offset in frame, offset
/// in the buffer, length) for every piece. The context is what both need: the arena for
/// the soft MMU's user accesses below and the server's kernel copies
/// (`server/usercopy.rs`), the whole server for the client's faulting accesses
/// (`client.rs`). `overflow` is the error for a range that runs past the top of the
/// address space.
///
/// # Errors
/// The first error of `translate`; the pieces before it have been passed to `each`.
#[inline]
pub(crate) fn walk_pages<C: ?Sized, E>(
    cx: &mut C,
    va: VirtAddr,
    len: usize,
    overflow: impl FnOnce() -> E,
    mut translate: impl FnMut(&mut C, VirtAddr) -> Result<Frame, E>,
    mut each: impl FnMut(&mut C, Frame, usize, usize, usize),
) -> Result<(), E> {
    let mut done = 0usize;
    while done < len {
        let Some(at) = va.0.checked_add(done as u64) else {
            return Err(overflow());
        };
        let at = VirtAddr(at);
        let frame = translate(cx, at)?;
        let off = at.page_offset() as usize;
        let n = (PAGE_SIZE as usize - off).min(len - done);
        each(cx, frame, off, done, n);
        done += n;
    }
    Ok(())
}

/// [`walk_pages`] with user accesses through the hardware walk (sets ACCESSED/DIRTY):
/// stops at the first fault or device frame.
fn walk_user<P: PagingFormat>(
    arena: &mut Arena,
    root: Frame,
    va: VirtAddr,
    len: usize,
    write: bool,
    each: impl FnMut(&mut Arena, Frame, usize, usize, usize),
) -> Result<(), CopyError> {
    let access = Access { write, user: true };
    let code = FaultCode(FaultCode::USER | if write { FaultCode::WRITE } else { 0 });
    walk_pages(
        arena,
        va,
        len,
        || CopyError::Fault { va: VirtAddr(u64::MAX), code },
        |arena, at| {
            let m =
                P::hw_translate(arena, root, at, access).map_err(|code| CopyError::Fault { va: at, code })?;
            if !arena.contains(m.frame) {
                return Err(CopyError::Device { va: at, frame: m.frame });
            }
            Ok(m.frame)
        },
        each,
    )
}

/// Reads `buf.len()` bytes from `va` as the user process would (read accesses, user mode).
///
/// # Errors
/// [`CopyError`] at the first page that faults; the bytes before it have been read.
pub fn read_bytes<P: PagingFormat>(
    arena: &mut Arena,
    root: Frame,
    va: VirtAddr,
    buf: &mut [u8],
) -> Result<(), CopyError> {
    walk_user::<P>(arena, root, va, buf.len(), false, |arena, frame, off, at, n| {
        buf[at..at + n].copy_from_slice(&arena.frame(frame)[off..off + n]);
    })
}

/// Writes `data` at `va` as the user process would (write accesses, user mode).
///
/// # Errors
/// [`CopyError`] at the first page that faults; the bytes before it have been written.
pub fn write_bytes<P: PagingFormat>(
    arena: &mut Arena,
    root: Frame,
    va: VirtAddr,
    data: &[u8],
) -> Result<(), CopyError> {
    walk_user::<P>(arena, root, va, data.len(), true, |arena, frame, off, at, n| {
        arena.frame_mut(frame)[off..off + n].copy_from_slice(&data[at..at + n]);
    })
}
