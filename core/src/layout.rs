//! The flat per-process address-space layout and exec image placement.
//!
//! Replaces the segment arithmetic of the 2010 server (`VM_PROCSTART`, `arch_vir2map`,
//! `proc_new`'s text/data/gap/stack placement in `servers/vm/exec.c`) with MINIX 3.3's
//! flat model: virtual = linear. The same layout is used for i386 and x86-64:
//!
//! ```text
//! 0x0040_0000 .. +text            text (read/execute, preallocated)
//!             .. +data+bss        data/bss/heap region (read/write, preallocated), brk grows it
//!             .. stack start      unmapped heap growth space
//! stack start .. 0x8000_0000      stack (demand-zero, at least 64 MiB as MINSTACKREGION)
//! 0x8000_0000 .. data_top         mmap / map_phys / remap area, first fit at or above the hint
//! ```
//!
//! `data_top` is `VM_DATATOP` (0xFFFF_F000) for i386 and the top of the user half minus a
//! page for x86-64.

use crate::addr::{PageSpan, VirtAddr, PAGE_SIZE};
use crate::errno::Errno;
use crate::paging::PagingFormat;

/// Where text starts in every process.
pub const TEXT_BASE: VirtAddr = VirtAddr(0x0040_0000);
/// First byte above the stack (`VM_STACKTOP`).
pub const VM_STACKTOP: VirtAddr = VirtAddr(0x8000_0000);
/// Default mmap hint: the seed places mmaps at or above `vm_stacktop`.
pub const MMAP_BASE: VirtAddr = VM_STACKTOP;
/// Smallest stack region (`MINSTACKREGION`, 64 MiB).
pub const MIN_STACK_REGION: u64 = 64 << 20;
/// Boot processes' text size.
pub const BOOT_TEXT_BYTES: u64 = 4 * PAGE_SIZE;
/// Boot processes' initialized data size.
pub const BOOT_DATA_BYTES: u64 = 2 * PAGE_SIZE;
/// Boot processes' bss size.
pub const BOOT_BSS_BYTES: u64 = 2 * PAGE_SIZE;
/// Boot processes' stack size.
pub const BOOT_STACK_BYTES: u64 = 16 * PAGE_SIZE;
/// The start of every boot process's data: a scratch buffer that PM and RS use to pass
/// argument blocks (exec_newmem, call masks) to VM, as the seed's callers pass pointers
/// into their own memory.
pub const BOOT_DATA_VA: VirtAddr = VirtAddr(TEXT_BASE.0 + BOOT_TEXT_BYTES);

/// The exclusive top of user mappings for format `P` (`VM_DATATOP`).
#[inline]
pub fn data_top<P: PagingFormat>() -> VirtAddr {
    VirtAddr(P::VA_END.min(1 << 47) - PAGE_SIZE)
}

/// Rounds `bytes` up to whole pages, `None` on overflow.
#[inline]
pub const fn pages_for(bytes: u64) -> Option<u64> {
    match bytes.checked_add(PAGE_SIZE - 1) {
        Some(b) => Some(b / PAGE_SIZE),
        None => None,
    }
}

/// Where an image's parts go.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ImageLayout {
    /// Text pages (may be empty).
    pub text: PageSpan,
    /// Data + bss pages (may be empty).
    pub data: PageSpan,
    /// The initial break: end of data + bss in bytes.
    pub brk: VirtAddr,
    /// The stack region.
    pub stack: PageSpan,
}

impl ImageLayout {
    /// The layout of an image (`do_exec_newmem`'s click arithmetic, flat).
    ///
    /// # Errors
    /// `ENOEXEC` when the sizes overflow or text + data + bss alone exceed the space
    /// below the stack top; `ENOMEM` when they fit but not together with the stack region
    /// and a one-page gap.
    pub fn compute(
        text_bytes: u64,
        data_bytes: u64,
        bss_bytes: u64,
        stack_bytes: u64,
    ) -> Result<Self, Errno> {
        let room = VM_STACKTOP.0 - TEXT_BASE.0;
        let text_pages = pages_for(text_bytes).ok_or(Errno::ENOEXEC)?;
        let db = data_bytes.checked_add(bss_bytes).ok_or(Errno::ENOEXEC)?;
        let data_pages = pages_for(db).ok_or(Errno::ENOEXEC)?;
        let image = text_pages
            .checked_add(data_pages)
            .and_then(|p| p.checked_mul(PAGE_SIZE))
            .ok_or(Errno::ENOEXEC)?;
        if image > room {
            return Err(Errno::ENOEXEC);
        }
        let stack_pages = pages_for(stack_bytes).ok_or(Errno::ENOMEM)?.max(MIN_STACK_REGION / PAGE_SIZE);
        let stack_len = stack_pages.checked_mul(PAGE_SIZE).ok_or(Errno::ENOMEM)?;
        if image.checked_add(stack_len).and_then(|b| b.checked_add(PAGE_SIZE)).is_none_or(|b| b > room) {
            return Err(Errno::ENOMEM);
        }
        let text = PageSpan { start: TEXT_BASE, pages: text_pages };
        let data = PageSpan { start: text.end(), pages: data_pages };
        let stack = PageSpan { start: VirtAddr(VM_STACKTOP.0 - stack_len), pages: stack_pages };
        Ok(ImageLayout { text, data, brk: VirtAddr(data.start.0 + db), stack })
    }

    /// The layout of the boot processes' images.
    pub fn boot() -> ImageLayout {
        ImageLayout::compute(BOOT_TEXT_BYTES, BOOT_DATA_BYTES, BOOT_BSS_BYTES, BOOT_STACK_BYTES)
            .expect("the boot image fits")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_layout_is_flat_and_ordered() {
        let l = ImageLayout::boot();
        assert_eq!(l.text.start, TEXT_BASE);
        assert_eq!(l.data.start, BOOT_DATA_VA);
        assert_eq!(l.brk.0, BOOT_DATA_VA.0 + BOOT_DATA_BYTES + BOOT_BSS_BYTES);
        assert_eq!(l.stack.end(), VM_STACKTOP);
        assert_eq!(l.stack.bytes(), MIN_STACK_REGION);
    }

    #[test]
    fn images_that_do_not_fit_are_refused() {
        assert_eq!(ImageLayout::compute(u64::MAX, 0, 0, 0), Err(Errno::ENOEXEC));
        assert_eq!(ImageLayout::compute(0, u64::MAX, 1, 0), Err(Errno::ENOEXEC));
        assert_eq!(ImageLayout::compute(0x7000_0000, 0x1000_0000, 0, 0), Err(Errno::ENOEXEC));
        assert_eq!(ImageLayout::compute(0x7000_0000, 0, 0, 0x1000_0000), Err(Errno::ENOMEM));
        assert_eq!(ImageLayout::compute(0, 0, 0, u64::MAX), Err(Errno::ENOMEM));
        let l = ImageLayout::compute(0, 5, 0, 0).unwrap();
        assert_eq!((l.text.pages, l.data.pages, l.brk), (0, 1, VirtAddr(TEXT_BASE.0 + 5)));
    }
}
