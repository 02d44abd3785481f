//! The flat per-process address-space layout and exec image placement.
//!
//! Replaces the segment arithmetic of the 2010 server (`VM_PROCSTART`, `arch_vir2map`,
//! `proc_new`'s text/data/gap/stack placement in `servers/vm/exec.c`) with MINIX 3.3's
//! flat model: virtual = linear. Both formats lay a process out the same way, around a
//! stack top that depends on the size of the space:
//!
//! ```text
//! 0x0040_0000 .. +text            text (read/execute, preallocated)
//!             .. +data+bss        data/bss/heap region (read/write, preallocated), brk grows it
//!             .. stack start      unmapped heap growth space
//! stack start .. stack top        stack (demand-zero, at least 64 MiB as MINSTACKREGION)
//! stack top   .. data_top         mmap / map_phys / remap area, first fit at or above the hint
//! ```
//!
//! The stack top is `VM_STACKTOP` (0x8000_0000) in a 32-bit space, MINIX's layout, so
//! test44's mmaps at hint 0x9000_0000 land in the mmap area; the heap can grow to about
//! 1.9 GiB there. In a 48-bit x86-64 space it is [`VM_STACKTOP_64`] (16 GiB), so a 64-bit
//! program's heap can grow to about 15.9 GiB (far past the arenas a replay uses) while
//! text, heap, stack and the first 16 GiB of mmaps stay in the first run of 32 entries of
//! the third-level table, as they do below 4 GiB (fork and unmap skip empty runs of
//! entries: a stack top at or above 32 GiB costs every x86-64 fork one more run). `data_top` is `VM_DATATOP` (0xFFFF_F000) for i386 and the top of the user half
//! minus a page for x86-64.

use crate::addr::{PageSpan, VirtAddr, PAGE_SIZE};
use crate::errno::Errno;
use crate::paging::PagingFormat;

/// Where text starts in every process.
pub const TEXT_BASE: VirtAddr = VirtAddr(0x0040_0000);
/// First byte above the stack in a 32-bit space (`VM_STACKTOP`).
pub const VM_STACKTOP: VirtAddr = VirtAddr(0x8000_0000);
/// First byte above the stack in a larger (x86-64) space: 16 GiB.
pub const VM_STACKTOP_64: VirtAddr = VirtAddr(0x4_0000_0000);
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

/// The first byte above the stack for format `P`: [`VM_STACKTOP`] in a space of at most
/// 4 GiB, [`VM_STACKTOP_64`] in a larger one.
#[inline]
pub fn stack_top<P: PagingFormat>() -> VirtAddr {
    if P::VA_END > 1 << 32 {
        VM_STACKTOP_64
    } else {
        VM_STACKTOP
    }
}

/// The default mmap hint for format `P`: the seed places mmaps at or above `vm_stacktop`.
#[inline]
pub fn mmap_base<P: PagingFormat>() -> VirtAddr {
    stack_top::<P>()
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
    /// The layout of an image in a space of format `P` (`do_exec_newmem`'s click
    /// arithmetic, flat).
    ///
    /// # Errors
    /// `ENOEXEC` when the sizes overflow or text + data + bss alone exceed the space
    /// below the stack top; `ENOMEM` when they fit but not together with the stack region
    /// and a one-page gap.
    pub fn compute<P: PagingFormat>(
        text_bytes: u64,
        data_bytes: u64,
        bss_bytes: u64,
        stack_bytes: u64,
    ) -> Result<Self, Errno> {
        let top = stack_top::<P>();
        let room = top.0 - TEXT_BASE.0;
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
        let stack = PageSpan { start: VirtAddr(top.0 - stack_len), pages: stack_pages };
        Ok(ImageLayout { text, data, brk: VirtAddr(data.start.0 + db), stack })
    }

    /// The layout of the boot processes' images.
    pub fn boot<P: PagingFormat>() -> ImageLayout {
        ImageLayout::compute::<P>(BOOT_TEXT_BYTES, BOOT_DATA_BYTES, BOOT_BSS_BYTES, BOOT_STACK_BYTES)
            .expect("the boot image fits")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paging::{I386, X86_64};

    #[test]
    fn boot_layout_is_flat_and_ordered() {
        for (l, top) in
            [(ImageLayout::boot::<I386>(), VM_STACKTOP), (ImageLayout::boot::<X86_64>(), VM_STACKTOP_64)]
        {
            assert_eq!(l.text.start, TEXT_BASE);
            assert_eq!(l.data.start, BOOT_DATA_VA);
            assert_eq!(l.brk.0, BOOT_DATA_VA.0 + BOOT_DATA_BYTES + BOOT_BSS_BYTES);
            assert_eq!(l.stack.end(), top);
            assert_eq!(l.stack.bytes(), MIN_STACK_REGION);
        }
    }

    #[test]
    fn i386_keeps_minix_layout_and_x86_64_has_room_for_a_large_heap() {
        assert_eq!(stack_top::<I386>(), VirtAddr(0x8000_0000));
        assert_eq!(mmap_base::<I386>(), VirtAddr(0x8000_0000));
        let heap_room = |l: ImageLayout| l.stack.start.0 - PAGE_SIZE - l.brk.0;
        // i386: under 2 GiB below the stack; x86-64: a 3 GiB heap fits many times over.
        assert!(heap_room(ImageLayout::boot::<I386>()) < 2 << 30);
        assert!(heap_room(ImageLayout::boot::<X86_64>()) > 15 << 30);
        // Text, heap, stack and the first mmaps stay under one top-level x86-64 entry.
        assert!(mmap_base::<X86_64>().0 < 1 << 39);
        assert!(mmap_base::<X86_64>() < data_top::<X86_64>());
    }

    #[test]
    fn images_that_do_not_fit_are_refused() {
        let c = ImageLayout::compute::<I386>;
        assert_eq!(c(u64::MAX, 0, 0, 0), Err(Errno::ENOEXEC));
        assert_eq!(c(0, u64::MAX, 1, 0), Err(Errno::ENOEXEC));
        assert_eq!(c(0x7000_0000, 0x1000_0000, 0, 0), Err(Errno::ENOEXEC));
        assert_eq!(c(0x7000_0000, 0, 0, 0x1000_0000), Err(Errno::ENOMEM));
        assert_eq!(c(0, 0, 0, u64::MAX), Err(Errno::ENOMEM));
        let l = c(0, 5, 0, 0).unwrap();
        assert_eq!((l.text.pages, l.data.pages, l.brk), (0, 1, VirtAddr(TEXT_BASE.0 + 5)));
        // The same image fits x86-64's larger space.
        assert!(ImageLayout::compute::<X86_64>(0x7000_0000, 0x1000_0000, 0, 0).is_ok());
        assert_eq!(ImageLayout::compute::<X86_64>(1 << 40, 0, 0, 0), Err(Errno::ENOEXEC));
    }
}
