//! Page-table operations on both formats: map, translate, protect, replace, unmap (with
//! empty tables freed), fork in both modes, destroy.

mod support;

use support::{check_refs, phys, VecAlloc};
use vmstorm_core::mmu::{read_bytes, write_bytes};
use vmstorm_core::paging::PagingError;
use vmstorm_core::{
    Access, ForkPolicy, Frame, FrameAllocator, Mapping, PageFlags, PageSpan, PagingFormat, PhysMem, VirtAddr,
    I386, X86_64,
};

const RW_USER: PageFlags = PageFlags::WRITE.union(PageFlags::USER);

fn span(start: u64, pages: u64) -> PageSpan {
    PageSpan::new(VirtAddr(start), pages).unwrap()
}

/// Allocates `n` consecutive frames holding one reference each, filled with a marker.
fn frames(mem: &mut PhysMem<VecAlloc>, n: u64) -> Frame {
    let first = mem.alloc_contiguous(n, 1).unwrap();
    for i in 0..n {
        mem.arena_mut().frame_mut(first.add(i)).fill((first.0 + i) as u8);
    }
    first
}

fn map_translate_unmap<P: PagingFormat>() {
    let mut mem = phys::<VecAlloc>(4096);
    let start_free = mem.free_frames();
    let root = P::new_root(&mut mem).unwrap();
    let f = frames(&mut mem, 1030);
    // Crosses a leaf-table boundary on both formats (and a 4 MiB directory boundary on i386).
    let s = span(0x3ff000, 1030);
    P::map_range(&mut mem, root, s, f, RW_USER).unwrap();
    check_refs::<P, _>(&mem, &[root], &[]);
    for (i, va) in s.iter().enumerate() {
        let m = P::translate(mem.arena(), root, va).unwrap();
        assert_eq!(m, Mapping { frame: f.add(i as u64), flags: RW_USER });
    }
    assert_eq!(P::translate(mem.arena(), root, VirtAddr(0x3fe000)), None);
    assert_eq!(P::translate(mem.arena(), root, s.end()), None);
    assert_eq!(
        P::map(&mut mem, root, VirtAddr(0x400000), Mapping { frame: f, flags: RW_USER }),
        Err(PagingError::AlreadyMapped(VirtAddr(0x400000)))
    );
    // Overlapping range: refused as a whole.
    let g = frames(&mut mem, 4);
    let before = support::dump::<P, _>(&mem, &[root]);
    assert_eq!(
        P::map_range(&mut mem, root, span(0x3fd000, 4), g, RW_USER),
        Err(PagingError::AlreadyMapped(VirtAddr(0x3ff000)))
    );
    assert_eq!(support::dump::<P, _>(&mem, &[root]), before);
    for i in 0..4 {
        mem.unref(g.add(i));
    }

    // Read-only in the middle, then write back.
    assert_eq!(
        P::protect_range(&mut mem, root, span(0x400000, 3), PageFlags::EMPTY, PageFlags::WRITE),
        Ok(3)
    );
    assert_eq!(P::translate(mem.arena(), root, VirtAddr(0x401000)).unwrap().flags, PageFlags::USER);
    assert_eq!(
        P::protect_range(&mut mem, root, span(0x400000, 3), PageFlags::WRITE, PageFlags::EMPTY),
        Ok(3)
    );
    assert_eq!(P::translate(mem.arena(), root, VirtAddr(0x401000)).unwrap().flags, RW_USER);

    // Unmap a hole, then everything.
    assert_eq!(P::unmap_range(&mut mem, root, span(0x401000, 2)), Ok(2));
    assert_eq!(P::translate(mem.arena(), root, VirtAddr(0x401000)), None);
    assert!(P::translate(mem.arena(), root, VirtAddr(0x403000)).is_some());
    check_refs::<P, _>(&mem, &[root], &[]);
    assert_eq!(P::unmap_range(&mut mem, root, span(0, 0x2000)), Ok(1028));
    assert_eq!(mem.table_frames(), 1, "only the root is left");
    check_refs::<P, _>(&mem, &[root], &[]);
    P::destroy(&mut mem, root);
    assert_eq!(mem.free_frames(), start_free);
}

fn replace_and_destroy<P: PagingFormat>() {
    let mut mem = phys::<VecAlloc>(256);
    let start_free = mem.free_frames();
    let root = P::new_root(&mut mem).unwrap();
    let f = frames(&mut mem, 2);
    P::map(&mut mem, root, VirtAddr(0x1234), Mapping { frame: f, flags: RW_USER }).unwrap();
    assert_eq!(P::translate(mem.arena(), root, VirtAddr(0x1fff)).unwrap().frame, f);
    let old =
        P::replace(&mut mem, root, VirtAddr(0x1000), Mapping { frame: f.add(1), flags: PageFlags::USER });
    assert_eq!(old, Ok(Mapping { frame: f, flags: RW_USER }));
    assert!(mem.allocator().is_free(f), "the old frame lost its last reference");
    assert_eq!(
        P::replace(&mut mem, root, VirtAddr(0x5000), Mapping { frame: f, flags: RW_USER }),
        Err(PagingError::NotMapped(VirtAddr(0x5000)))
    );
    // Direct frames beyond the arena are mapped but never counted.
    let dev = Frame(0xf_0000);
    P::map(&mut mem, root, VirtAddr(0x8000), Mapping { frame: dev, flags: PageFlags::DIRECT | RW_USER })
        .unwrap();
    assert_eq!(
        P::map(&mut mem, root, VirtAddr(0x9000), Mapping { frame: dev, flags: RW_USER }),
        Err(PagingError::FrameOutOfRange(dev))
    );
    check_refs::<P, _>(&mem, &[root], &[]);
    P::destroy(&mut mem, root);
    assert_eq!(mem.free_frames(), start_free);
}

fn fork_modes<P: PagingFormat>(mode: ForkPolicy) {
    let mut mem = phys::<VecAlloc>(2048);
    let start_free = mem.free_frames();
    let parent = P::new_root(&mut mem).unwrap();
    let f = frames(&mut mem, 8);
    P::map_range(&mut mem, parent, span(0x10000, 4), f, RW_USER).unwrap();
    P::map_range(&mut mem, parent, span(0x7000_0000, 2), f.add(4), PageFlags::USER).unwrap();
    P::map_range(&mut mem, parent, span(0x7100_0000, 2), f.add(6), PageFlags::SHARED | RW_USER).unwrap();
    let dev = Frame(0xe_0000);
    P::map(
        &mut mem,
        parent,
        VirtAddr(0x6000_0000),
        Mapping { frame: dev, flags: PageFlags::DIRECT | RW_USER },
    )
    .unwrap();
    let child = P::fork_copy(&mut mem, parent, mode).unwrap();
    check_refs::<P, _>(&mem, &[parent, child], &[]);
    let pm = P::translate(mem.arena(), parent, VirtAddr(0x10000)).unwrap();
    let cm = P::translate(mem.arena(), child, VirtAddr(0x10000)).unwrap();
    match mode {
        ForkPolicy::Cow => {
            assert_eq!(pm, Mapping { frame: f, flags: PageFlags::COW | PageFlags::USER });
            assert_eq!(cm, pm);
            assert_eq!(mem.refs().get(f), 2);
        }
        ForkPolicy::Copy => {
            assert_eq!(pm, Mapping { frame: f, flags: RW_USER });
            assert_ne!(cm.frame, f);
            assert_eq!(cm.flags, RW_USER);
            assert_eq!(mem.arena().frame(cm.frame), mem.arena().frame(f));
        }
        ForkPolicy::Share => {
            // The leaf table itself is shared: entries untouched, one reference for both.
            assert_eq!(pm, Mapping { frame: f, flags: RW_USER });
            assert_eq!(cm, pm);
            assert_eq!(mem.refs().get(f), 1);
        }
    }
    // Shared stays writable and shared; direct is copied as is.
    let sm = P::translate(mem.arena(), child, VirtAddr(0x7100_0000)).unwrap();
    assert_eq!(sm, Mapping { frame: f.add(6), flags: PageFlags::SHARED | RW_USER });
    assert_eq!(mem.refs().get(f.add(6)), if mode == ForkPolicy::Share { 1 } else { 2 });
    assert_eq!(P::translate(mem.arena(), child, VirtAddr(0x6000_0000)).unwrap().frame, dev);

    // A write in the child (COW broken by hand as the fault path would) is not seen by the parent.
    let mut buf = [0u8; 8];
    read_bytes::<P>(mem.arena_mut(), child, VirtAddr(0x10ffc), &mut buf).unwrap();
    assert_eq!(
        buf,
        [
            f.0 as u8,
            f.0 as u8,
            f.0 as u8,
            f.0 as u8,
            f.0 as u8 + 1,
            f.0 as u8 + 1,
            f.0 as u8 + 1,
            f.0 as u8 + 1
        ]
    );
    let w = write_bytes::<P>(mem.arena_mut(), child, VirtAddr(0x10000), b"child");
    if mode != ForkPolicy::Copy {
        let code = vmstorm_core::FaultCode(0x7); // present, write, user
        assert_eq!(w, Err(vmstorm_core::CopyError::Fault { va: VirtAddr(0x10000), code }));
        if mode == ForkPolicy::Share {
            // The fault path's first step: the child gets its own copy of the leaf table.
            let m = P::unshare(&mut mem, child, VirtAddr(0x10000)).unwrap().unwrap();
            // (The read above went through the shared table: ACCESSED is set for both.)
            assert_eq!(
                m,
                Mapping { frame: f, flags: PageFlags::COW | PageFlags::USER | PageFlags::ACCESSED }
            );
            assert_eq!(mem.refs().get(f), 2);
            let pf = P::translate(mem.arena(), parent, VirtAddr(0x10000)).unwrap().flags;
            assert_eq!(pf, RW_USER | PageFlags::ACCESSED);
            assert_eq!(
                write_bytes::<P>(mem.arena_mut(), parent, VirtAddr(0x10000), b"x"),
                Err(vmstorm_core::CopyError::Fault { va: VirtAddr(0x10000), code })
            );
        }
        let new = mem.alloc_frame().unwrap();
        mem.arena_mut().copy_frame(f, new);
        P::replace(&mut mem, child, VirtAddr(0x10000), Mapping { frame: new, flags: RW_USER }).unwrap();
        write_bytes::<P>(mem.arena_mut(), child, VirtAddr(0x10000), b"child").unwrap();
    } else {
        w.unwrap();
    }
    read_bytes::<P>(mem.arena_mut(), parent, VirtAddr(0x10000), &mut buf[..5]).unwrap();
    assert_eq!(buf[..5], [f.0 as u8; 5]);
    read_bytes::<P>(mem.arena_mut(), child, VirtAddr(0x10000), &mut buf[..5]).unwrap();
    assert_eq!(&buf[..5], b"child");
    check_refs::<P, _>(&mem, &[parent, child], &[]);

    P::destroy(&mut mem, child);
    check_refs::<P, _>(&mem, &[parent], &[]);
    P::destroy(&mut mem, parent);
    assert_eq!(mem.free_frames(), start_free);
    let _ = Access { write: false, user: true };
}

macro_rules! both_formats {
    ($($name:ident => $body:expr;)*) => {
        mod x86_64 {
            use super::*;
            type P = X86_64;
            $( #[test] fn $name() { $body } )*
        }
        mod i386 {
            use super::*;
            type P = I386;
            $( #[test] fn $name() { $body } )*
        }
    };
}

both_formats! {
    map_translate_unmap_frees_tables => map_translate_unmap::<P>();
    replace_and_destroy_free_everything => replace_and_destroy::<P>();
    fork_cow => fork_modes::<P>(ForkPolicy::Cow);
    fork_eager => fork_modes::<P>(ForkPolicy::Copy);
    fork_share => fork_modes::<P>(ForkPolicy::Share);
}
