//! The software MMU: fault codes (not present, write to read-only, user to supervisor),
//! ACCESSED/DIRTY bits, and byte copies across page boundaries.

mod support;

use support::{phys, VecAlloc};
use vmstorm_core::mmu::{read_bytes, translate, write_bytes, CopyError};
use vmstorm_core::{
    Access, Arena, Bitset, FaultCode, Frame, FrameAllocator, Mapping, PageFlags, PagingFormat, PhysMem,
    VirtAddr, I386, PAGE_SIZE, X86_64,
};

const READ_USER: Access = Access { write: false, user: true };
const WRITE_USER: Access = Access { write: true, user: true };
const WRITE_SUPER: Access = Access { write: true, user: false };
const READ_SUPER: Access = Access { write: false, user: false };

fn frame(mem: &mut PhysMem<VecAlloc>) -> Frame {
    mem.alloc_zeroed().unwrap()
}

fn setup<P: PagingFormat>() -> (PhysMem<VecAlloc>, Frame) {
    let mut mem = phys::<VecAlloc>(64);
    let root = P::new_root(&mut mem).unwrap();
    let user_rw = PageFlags::WRITE | PageFlags::USER;
    for (va, flags) in [
        (0x1000, user_rw),
        (0x2000, user_rw),
        (0x3000, PageFlags::USER),
        (0x4000, PageFlags::WRITE),
        (0x5000, PageFlags::USER | PageFlags::COW),
    ] {
        let f = frame(&mut mem);
        P::map(&mut mem, root, VirtAddr(va), Mapping { frame: f, flags }).unwrap();
    }
    (mem, root)
}

fn fault_codes<P: PagingFormat>() {
    let (mut mem, root) = setup::<P>();
    let a = mem.arena_mut();
    let t = |a: &mut _, va, acc| translate::<P>(a, root, VirtAddr(va), acc);
    // Not present: P clear, W/U say what the access was.
    assert_eq!(t(a, 0x9000, READ_USER), Err(FaultCode(FaultCode::USER)));
    assert_eq!(t(a, 0x9000, WRITE_USER), Err(FaultCode(FaultCode::USER | FaultCode::WRITE)));
    assert_eq!(t(a, 0x9000, READ_SUPER), Err(FaultCode(0)));
    assert_eq!(t(a, 0x40_0000_0000 % P::VA_END, READ_SUPER), Err(FaultCode(0)));
    // Write to read-only (also a COW page): protection violation.
    let prot_w = FaultCode::PRESENT | FaultCode::WRITE | FaultCode::USER;
    assert_eq!(t(a, 0x3000, WRITE_USER), Err(FaultCode(prot_w)));
    assert_eq!(t(a, 0x5000, WRITE_USER), Err(FaultCode(prot_w)));
    assert_eq!(
        t(a, 0x3000, WRITE_SUPER),
        Err(FaultCode(FaultCode::PRESENT | FaultCode::WRITE)),
        "CR0.WP semantics"
    );
    // User to supervisor page.
    assert_eq!(t(a, 0x4000, READ_USER), Err(FaultCode(FaultCode::PRESENT | FaultCode::USER)));
    assert!(t(a, 0x4000, WRITE_SUPER).is_ok());
    assert!(t(a, 0x3000, READ_USER).is_ok());
    assert!(t(a, 0x5000, READ_USER).is_ok());
    // Beyond the format's address space: not present.
    assert_eq!(t(a, P::VA_END, READ_USER), Err(FaultCode(FaultCode::USER)));
}

fn accessed_dirty<P: PagingFormat>() {
    let (mut mem, root) = setup::<P>();
    let flags = |mem: &PhysMem<VecAlloc>, va| P::translate(mem.arena(), root, VirtAddr(va)).unwrap().flags;
    assert!(!flags(&mem, 0x1000).intersects(PageFlags::ACCESSED | PageFlags::DIRTY));
    let m = translate::<P>(mem.arena_mut(), root, VirtAddr(0x1abc), READ_USER).unwrap();
    assert!(m.flags.contains(PageFlags::ACCESSED) && !m.flags.contains(PageFlags::DIRTY));
    assert_eq!(flags(&mem, 0x1000), PageFlags::WRITE | PageFlags::USER | PageFlags::ACCESSED);
    translate::<P>(mem.arena_mut(), root, VirtAddr(0x1abc), WRITE_USER).unwrap();
    assert!(flags(&mem, 0x1000).contains(PageFlags::ACCESSED | PageFlags::DIRTY));
    // A fault sets nothing on the leaf.
    translate::<P>(mem.arena_mut(), root, VirtAddr(0x3000), WRITE_USER).unwrap_err();
    assert_eq!(flags(&mem, 0x3000), PageFlags::USER);
    assert!(!flags(&mem, 0x2000).contains(PageFlags::ACCESSED));
}

fn copies_across_pages<P: PagingFormat>() {
    let (mut mem, root) = setup::<P>();
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    write_bytes::<P>(mem.arena_mut(), root, VirtAddr(0x1100), &data[..3000]).unwrap();
    let mut back = vec![0u8; 3000];
    read_bytes::<P>(mem.arena_mut(), root, VirtAddr(0x1100), &mut back).unwrap();
    assert_eq!(back, data[..3000]);
    // Runs into the read-only page at 0x3000: the bytes before it are written.
    assert_eq!(
        write_bytes::<P>(mem.arena_mut(), root, VirtAddr(0x2f00), &data[..0x200]),
        Err(CopyError::Fault {
            va: VirtAddr(0x3000),
            code: FaultCode(FaultCode::PRESENT | FaultCode::WRITE | FaultCode::USER)
        })
    );
    let mut one = [0u8; 1];
    read_bytes::<P>(mem.arena_mut(), root, VirtAddr(0x2fff), &mut one).unwrap();
    assert_eq!(one[0], data[0xff]);
    // Supervisor page: user reads fault.
    assert!(matches!(
        read_bytes::<P>(mem.arena_mut(), root, VirtAddr(0x4000), &mut one),
        Err(CopyError::Fault { va: VirtAddr(0x4000), .. })
    ));
    // A device frame has no bytes in the arena.
    let dev = Frame(0xf_f000);
    let user_dev = PageFlags::DIRECT | PageFlags::USER;
    P::map(&mut mem, root, VirtAddr(0x7000), Mapping { frame: dev, flags: user_dev }).unwrap();
    assert_eq!(
        read_bytes::<P>(mem.arena_mut(), root, VirtAddr(0x7000), &mut one),
        Err(CopyError::Device { va: VirtAddr(0x7000), frame: dev })
    );
    assert!(mem.allocator().free_count() < 64);
}

macro_rules! both_formats {
    ($($name:ident => $f:ident;)*) => {
        mod x86_64 {
            use super::*;
            $( #[test] fn $name() { $f::<X86_64>() } )*
        }
        mod i386 {
            use super::*;
            $( #[test] fn $name() { $f::<I386>() } )*
        }
    };
}

both_formats! {
    fault_codes_for_not_present_read_only_and_supervisor => fault_codes;
    accessed_and_dirty_bits_are_set => accessed_dirty;
    byte_copies_cross_pages_and_stop_at_faults => copies_across_pages;
}

/// A huge entry: the MMU checks its permissions, sets ACCESSED and DIRTY in it (for the
/// whole block), and translates every page of the block to its frame.
fn huge_entry_translates_and_marks<P: PagingFormat>() {
    let n = P::HUGE_PAGES;
    let mut mem: PhysMem<Bitset> = PhysMem::new(Arena::with_frames(3 * n).unwrap());
    let root = P::new_root(&mut mem).unwrap();
    let first = mem.alloc_contiguous(n, n).unwrap();
    let va = VirtAddr(2 * n * PAGE_SIZE);
    P::map_huge(&mut mem, root, va, first, PageFlags::USER).unwrap();
    let read = Access { write: false, user: true };
    let write = Access { write: true, user: true };
    let m = P::hw_translate(mem.arena_mut(), root, va.add_pages(n - 1), read).unwrap();
    assert_eq!(m.frame, first.add(n - 1));
    assert_eq!(m.flags, PageFlags::USER | PageFlags::ACCESSED);
    let e = P::hw_translate(mem.arena_mut(), root, va.add_pages(3), write).unwrap_err();
    assert_eq!(e.0, FaultCode::PRESENT | FaultCode::WRITE | FaultCode::USER);
    let mut w = P::walk(&mem, root, va);
    P::reflag_at(&mut mem, &mut w, PageFlags::WRITE, PageFlags::EMPTY).unwrap();
    let m = P::hw_translate(mem.arena_mut(), root, va.add_pages(3), write).unwrap();
    assert_eq!(m.frame, first.add(3));
    let all = PageFlags::USER | PageFlags::WRITE | PageFlags::ACCESSED | PageFlags::DIRTY;
    assert_eq!(P::translate(mem.arena(), root, va).unwrap().flags, all, "D is the block's");
    P::destroy(&mut mem, root);
    assert_eq!(mem.free_frames(), 3 * n);
}

#[test]
fn huge_entries_translate_through_the_mmu_in_both_formats() {
    huge_entry_translates_and_marks::<X86_64>();
    huge_entry_translates_and_marks::<I386>();
}
