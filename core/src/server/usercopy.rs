//! Copies between the server and a process's memory, as the kernel's `sys_datacopy` does
//! for VM: the range is made present (and writable) first, then copied page by page
//! through `mmu::walk_pages`, the one virtual-address page walker.
//!
//! Replaces `sys_datacopy` from and to user space in `servers/vm/{exec,rs,utility}.c`
//! and the kernel's memory request (`SIGKMEM` → `do_memory` → `handle_memory`).

use super::Vm;
use crate::addr::{Frame, VirtAddr};
use crate::arena::Arena;
use crate::calls;
use crate::endpoint::Endpoint;
use crate::errno::Errno;
use crate::frames::FrameAllocator;
use crate::mmu::walk_pages;
use crate::paging::PagingFormat;

impl<F: FrameAllocator, P: PagingFormat> Vm<F, P> {
    /// Reads a process's memory as VM does with `sys_datacopy`: the range is made present
    /// first (a kernel memory request), then copied.
    ///
    /// # Errors
    /// `EFAULT` for an address outside the process's regions, `ENOMEM`.
    pub(crate) fn copy_from_user(&mut self, slot: usize, va: VirtAddr, buf: &mut [u8]) -> Result<(), Errno> {
        calls::fault::handle_memory(self, slot, va, buf.len() as u64, false)?;
        let root = self.slots.get(slot).root;
        walk_pages(
            self.mem.arena_mut(),
            va,
            buf.len(),
            || Errno::EFAULT,
            kernel_translate::<P>(root),
            |arena, frame, off, at, n| {
                buf[at..at + n].copy_from_slice(&arena.frame(frame)[off..off + n]);
            },
        )
    }

    /// Writes into a process's memory as VM does with `sys_datacopy` (the range is made
    /// present and writable first).
    ///
    /// # Errors
    /// `EFAULT` for an address outside the process's writable regions, `ENOMEM`.
    pub(crate) fn copy_to_user(&mut self, slot: usize, va: VirtAddr, data: &[u8]) -> Result<(), Errno> {
        calls::fault::handle_memory(self, slot, va, data.len() as u64, true)?;
        let root = self.slots.get(slot).root;
        walk_pages(
            self.mem.arena_mut(),
            va,
            data.len(),
            || Errno::EFAULT,
            kernel_translate::<P>(root),
            |arena, frame, off, at, n| {
                arena.frame_mut(frame)[off..off + n].copy_from_slice(&data[at..at + n]);
            },
        )
    }

    /// The kernel's memory request (`SIGKMEM` → `do_memory` → `handle_memory`): makes
    /// `[va, va + len)` of `ep` present (and writable if `write`) before a kernel copy.
    ///
    /// # Errors
    /// `EINVAL`/`EDEADSRCDST` for a bad endpoint, `EFAULT` when part of the range is not
    /// in a region or not writable for a write, `ENOMEM`.
    pub fn kernel_memory_request(
        &mut self,
        ep: Endpoint,
        va: VirtAddr,
        len: u64,
        write: bool,
    ) -> Result<(), Errno> {
        let slot = self.slots.lookup(ep)?;
        self.stats.kernel_requests += 1;
        calls::fault::handle_memory(self, slot, va, len, write)
    }

    /// Reads `buf.len()` bytes of a process's memory from `va` after making them present
    /// (a kernel copy); used by tests and the replayer to check contents.
    ///
    /// # Errors
    /// As [`Vm::kernel_memory_request`].
    pub fn read_process(&mut self, ep: Endpoint, va: VirtAddr, buf: &mut [u8]) -> Result<(), Errno> {
        let slot = self.slots.lookup(ep)?;
        self.copy_from_user(slot, va, buf)
    }

    /// Writes bytes into a process's memory after making them present and writable (a
    /// kernel copy, as VFS and PM do); used to pass argument blocks.
    ///
    /// # Errors
    /// As [`Vm::kernel_memory_request`].
    pub fn write_process(&mut self, ep: Endpoint, va: VirtAddr, data: &[u8]) -> Result<(), Errno> {
        let slot = self.slots.lookup(ep)?;
        self.copy_to_user(slot, va, data)
    }
}

/// The kernel's view of a page during a copy: its frame, whatever the page's rights (the
/// range was made present and, for a write, writable first); `EFAULT` for a missing page
/// or a device frame outside the arena.
#[inline]
fn kernel_translate<P: PagingFormat>(
    root: Frame,
) -> impl FnMut(&mut Arena, VirtAddr) -> Result<Frame, Errno> {
    move |arena, at| {
        let m = P::translate(arena, root, at).ok_or(Errno::EFAULT)?;
        if !arena.contains(m.frame) {
            return Err(Errno::EFAULT);
        }
        Ok(m.frame)
    }
}
