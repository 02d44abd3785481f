//! Address-space limits: i386 refuses virtual addresses and frames beyond 32 bits,
//! x86-64 refuses non-canonical and kernel-half addresses — with errors, state unchanged.

mod support;

use support::{dump, phys, TopDown, VecAlloc};
use vmstorm_core::paging::PagingError;
use vmstorm_core::{Frame, Mapping, PageFlags, PageSpan, PagingFormat, PhysMem, VirtAddr, I386, X86_64};

const RW: PageFlags = PageFlags::WRITE.union(PageFlags::USER);

fn held_frame(mem: &mut PhysMem<VecAlloc>) -> Frame {
    mem.alloc_frame().unwrap()
}

#[test]
fn i386_refuses_addresses_beyond_4_gib() {
    let mut mem = phys::<VecAlloc>(64);
    let root = I386::new_root(&mut mem).unwrap();
    let f = held_frame(&mut mem);
    let before = dump::<I386, _>(&mem, &[root]);
    for va in [1u64 << 32, (1 << 32) + 0x1000, !0xfff, 0x1_2345_6000] {
        assert_eq!(
            I386::map(&mut mem, root, VirtAddr(va), Mapping { frame: f, flags: RW }),
            Err(PagingError::AddressOutOfRange(VirtAddr(va)))
        );
        assert_eq!(I386::translate(mem.arena(), root, VirtAddr(va)), None);
    }
    // A range that runs over the top.
    let s = PageSpan::new(VirtAddr(0xffff_f000), 2).unwrap();
    assert_eq!(
        I386::map_range(&mut mem, root, s, f, RW),
        Err(PagingError::AddressOutOfRange(VirtAddr(1 << 32)))
    );
    assert_eq!(I386::unmap_range(&mut mem, root, s), Ok(0));
    assert_eq!(dump::<I386, _>(&mem, &[root]), before);
    // The last page below 4 GiB is fine.
    I386::map(&mut mem, root, VirtAddr(0xffff_f000), Mapping { frame: f, flags: RW }).unwrap();
    assert_eq!(I386::translate(mem.arena(), root, VirtAddr(0xffff_ffff)).unwrap().frame, f);
}

#[test]
fn i386_refuses_frames_beyond_4_gib() {
    let mut mem = phys::<VecAlloc>(64);
    let root = I386::new_root(&mut mem).unwrap();
    let before = dump::<I386, _>(&mem, &[root]);
    let direct = PageFlags::DIRECT | RW;
    for frame in [Frame(1 << 20), Frame((1 << 20) + 5), Frame(u64::MAX >> 12)] {
        assert_eq!(
            I386::map(&mut mem, root, VirtAddr(0x1000), Mapping { frame, flags: direct }),
            Err(PagingError::FrameOutOfRange(frame))
        );
    }
    let s = PageSpan::new(VirtAddr(0x1000), 4).unwrap();
    assert_eq!(
        I386::map_range(&mut mem, root, s, Frame((1 << 20) - 2), direct),
        Err(PagingError::FrameOutOfRange(Frame(1 << 20)))
    );
    assert_eq!(
        I386::map_range(&mut mem, root, s, Frame(u64::MAX - 1), direct),
        Err(PagingError::FrameOutOfRange(Frame(u64::MAX - 1)))
    );
    assert_eq!(dump::<I386, _>(&mem, &[root]), before);
    // The last frame below 4 GiB (device memory) is fine.
    I386::map(&mut mem, root, VirtAddr(0x1000), Mapping { frame: Frame(0xf_ffff), flags: direct }).unwrap();
    assert_eq!(I386::translate(mem.arena(), root, VirtAddr(0x1000)).unwrap().frame, Frame(0xf_ffff));
    // Replacing with an unreachable frame is refused too.
    assert_eq!(
        I386::replace(&mut mem, root, VirtAddr(0x1000), Mapping { frame: Frame(1 << 20), flags: direct }),
        Err(PagingError::FrameOutOfRange(Frame(1 << 20)))
    );
}

#[test]
fn x86_64_refuses_non_canonical_and_kernel_half() {
    let mut mem = phys::<VecAlloc>(64);
    let root = X86_64::new_root(&mut mem).unwrap();
    let f = held_frame(&mut mem);
    let before = dump::<X86_64, _>(&mem, &[root]);
    for va in [0x0000_8000_0000_0000u64, 0x0001_0000_0000_0000, 0xffff_8000_0000_0000, 0xffff_ffff_ffff_f000]
    {
        assert_eq!(
            X86_64::map(&mut mem, root, VirtAddr(va), Mapping { frame: f, flags: RW }),
            Err(PagingError::AddressOutOfRange(VirtAddr(va)))
        );
        assert_eq!(X86_64::translate(mem.arena(), root, VirtAddr(va)), None);
    }
    let s = PageSpan::new(VirtAddr(0x7fff_ffff_f000), 2).unwrap();
    assert_eq!(
        X86_64::map_range(&mut mem, root, s, f, RW),
        Err(PagingError::AddressOutOfRange(VirtAddr(0x8000_0000_0000)))
    );
    assert_eq!(X86_64::protect_range(&mut mem, root, s, RW, PageFlags::EMPTY), Ok(0));
    assert_eq!(dump::<X86_64, _>(&mem, &[root]), before);
    X86_64::map(&mut mem, root, VirtAddr(0x7fff_ffff_f000), Mapping { frame: f, flags: RW }).unwrap();
    assert_eq!(X86_64::translate(mem.arena(), root, VirtAddr(0x7fff_ffff_ffff)).unwrap().frame, f);
    // Frames must fit in 52 physical bits; counted frames must be in the arena.
    let far = Frame(1 << 40);
    assert_eq!(
        X86_64::map(&mut mem, root, VirtAddr(0x1000), Mapping { frame: far, flags: PageFlags::DIRECT }),
        Err(PagingError::FrameOutOfRange(far))
    );
    assert_eq!(
        X86_64::map(&mut mem, root, VirtAddr(0x1000), Mapping { frame: Frame(64), flags: RW }),
        Err(PagingError::FrameOutOfRange(Frame(64)))
    );
}

#[test]
fn unaligned_single_map_uses_the_page() {
    let mut mem = phys::<VecAlloc>(64);
    let root = X86_64::new_root(&mut mem).unwrap();
    let f = held_frame(&mut mem);
    X86_64::map(&mut mem, root, VirtAddr(0x1234), Mapping { frame: f, flags: RW }).unwrap();
    assert_eq!(X86_64::translate(mem.arena(), root, VirtAddr(0x1000)).unwrap().frame, f);
}

#[test]
fn i386_tables_must_lie_below_4_gib() {
    // An arena a little over 4 GiB whose allocator hands out the highest frames first:
    // a table there could not be linked by a 32-bit entry.
    let mut mem: PhysMem<TopDown> = phys((1 << 20) + 16);
    let before = mem.free_frames();
    assert_eq!(I386::new_root(&mut mem), Err(PagingError::OutOfFrames));
    assert_eq!((mem.free_frames(), mem.table_frames()), (before, 0));
    // x86-64 has no such limit.
    let root = X86_64::new_root(&mut mem).unwrap();
    assert!(root.0 >= 1 << 20);
    X86_64::destroy(&mut mem, root);
    assert_eq!(mem.free_frames(), before);
}
