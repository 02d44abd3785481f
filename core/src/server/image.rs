//! The image builder: a process's text, data and stack regions and their preallocated
//! frames, for the boot image and `VM_EXEC_NEWMEM`.
//!
//! Replaces `servers/vm/exec.c`'s `proc_new` (region setup and preallocation of text and
//! data) as used by `do_exec_newmem` and at boot.

use super::Vm;
use crate::addr::{Frame, PageSpan, PAGE_SIZE};
use crate::errno::Errno;
use crate::frames::FrameAllocator;
use crate::layout::ImageLayout;
use crate::paging::{Mapping, PageFlags, PagingFormat};
use crate::region::{MapProt, MemType, Region, RegionTag};
use crate::slots::ProcSlot;

/// Byte `k` is `k mod 256`: the text pattern of page `i` of an image with seed `seed`
/// (byte `j` = `seed * 31 + i * 7 + j`, mod 256) is the 4 KiB from
/// `(seed * 31 + i * 7) mod 256` on, one copy instead of a loop.
static TEXT_PATTERN: [u8; PAGE_SIZE as usize + 256] = {
    let mut t = [0u8; PAGE_SIZE as usize + 256];
    let mut k = 0;
    while k < t.len() {
        t[k] = k as u8;
        k += 1;
    }
    t
};

impl<F: FrameAllocator, P: PagingFormat> Vm<F, P> {
    /// Builds an image's regions in `p` and preallocates its text (filled with a pattern
    /// derived from `seed`) and data (zeroed); the stack is demand-zero. On error the
    /// frames mapped so far stay in `p.root` (the caller destroys it).
    pub(crate) fn install_image(&mut self, p: &mut ProcSlot, l: &ImageLayout, seed: u8) -> Result<(), Errno> {
        p.regions.clear();
        if l.text.pages > 0 {
            self.prealloc(p.root, l.text, PageFlags::USER, Some(seed))?;
            p.regions.insert_unmerged(Region {
                start: l.text.start,
                pages: l.text.pages,
                mem: MemType::Anon,
                prot: MapProt::RX,
                tag: RegionTag::Text,
            });
        }
        if l.data.pages > 0 {
            self.prealloc(p.root, l.data, PageFlags::USER | PageFlags::WRITE, None)?;
            p.regions.insert_unmerged(Region {
                start: l.data.start,
                pages: l.data.pages,
                mem: MemType::Anon,
                prot: MapProt::RW,
                tag: RegionTag::Heap,
            });
        }
        p.regions.insert_unmerged(Region {
            start: l.stack.start,
            pages: l.stack.pages,
            mem: MemType::Anon,
            prot: MapProt::RW,
            tag: RegionTag::Stack,
        });
        p.heap_start = l.data.start;
        p.brk = l.brk;
        p.stack_top = l.stack.end();
        Ok(())
    }

    /// Allocates and maps every page of `span` (zeroed, or filled from `pattern`). On
    /// error, pages already mapped stay mapped (the caller unmaps the span).
    pub(crate) fn prealloc(
        &mut self,
        root: Frame,
        span: PageSpan,
        flags: PageFlags,
        pattern: Option<u8>,
    ) -> Result<(), Errno> {
        for (i, va) in span.iter().enumerate() {
            let frame = match pattern {
                // Every byte is written: any frame will do, no zeroing.
                Some(seed) => {
                    let frame = self.alloc_any().ok_or(Errno::ENOMEM)?;
                    let from = usize::from(seed.wrapping_mul(31).wrapping_add((i * 7) as u8));
                    self.mem
                        .arena_mut()
                        .frame_mut(frame)
                        .copy_from_slice(&TEXT_PATTERN[from..from + PAGE_SIZE as usize]);
                    frame
                }
                None => self.alloc_zeroed().ok_or(Errno::ENOMEM)?,
            };
            if P::map(&mut self.mem, root, va, Mapping { frame, flags }).is_err() {
                self.mem.unref(frame);
                return Err(Errno::ENOMEM);
            }
        }
        Ok(())
    }
}
