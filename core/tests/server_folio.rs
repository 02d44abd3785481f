//! Large anonymous folios through the whole server, under every allocator × format × fork
//! policy: a write fault maps the aligned block, a read fault, a partly populated block or
//! a block crossing the region's end stays 4 KiB; fork, copy-on-write of one page of a
//! folio, partial munmap and exit keep every invariant; no aligned run of free frames
//! falls back to 4 KiB, and a failure at the last fallback changes nothing.

mod support;

use support::*;
use vmstorm_core::client::{self, MapFlags, MmapArgs, Touch, TouchError};
use vmstorm_core::endpoint::INIT_PROC_NR;
use vmstorm_core::*;

const R: Access = Access { write: false, user: true };
const W: Access = Access { write: true, user: true };

fn boot_folio<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy, folio: FolioSize) -> Vm<F, P> {
    let cfg = VmConfig { fork, folio, ..VmConfig::with_bytes(ARENA) };
    let vm = Vm::<F, P>::boot(cfg).expect("boot");
    check(&vm);
    vm
}

fn folios<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) {
    let mut vm = boot_folio::<F, P>(fork, FolioSize::K64);
    let p = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    let a = aligned_anon(&mut vm, p, 48, 16);
    // A write fault in the middle of a 64 KiB block maps the whole block, contiguous.
    let (free, tables) = (vm.free_frames(), vm.pt_pages());
    assert_eq!(client::touch(&mut vm, p, a.add_pages(5), W), Ok(Touch::Faulted));
    check(&vm);
    assert_eq!(vm.free_frames(), free - 16 - (vm.pt_pages() - tables));
    assert_eq!((vm.stats().folio_faults, vm.stats().folio_pages), (1, 16));
    let f0 = vm.mmu_translate(p, a, R).unwrap().frame;
    assert_eq!(f0.0 % 16, 0, "the folio's frames are aligned to its size");
    for i in 0..16 {
        assert_eq!(vm.mmu_translate(p, a.add_pages(i), R).unwrap().frame, f0.add(i));
        assert_eq!(client::touch(&mut vm, p, a.add_pages(i), W), Ok(Touch::Hit));
    }
    assert_eq!(vm.stats().faults, 1);
    // A read fault stays 4 KiB; a write fault in that now partly populated block too.
    assert_eq!(client::touch(&mut vm, p, a.add_pages(16), R), Ok(Touch::Faulted));
    assert_eq!(client::touch(&mut vm, p, a.add_pages(17), W), Ok(Touch::Faulted));
    assert_eq!(vm.stats().folio_faults, 1);
    assert!(vm.mmu_translate(p, a.add_pages(18), R).is_err());
    check(&vm);
    // Data written through one page is where the process reads it.
    put(&mut vm, p, a.add_pages(3), b"folio");
    // Fork: every page of the folio is shared or copied as a 4 KiB page would be.
    let c = client::fork(&mut vm, p).unwrap();
    check(&vm);
    put(&mut vm, c, a.add_pages(3), b"child");
    check(&vm);
    assert_eq!(get(&mut vm, p, a.add_pages(3), 5), b"folio");
    assert_eq!(get(&mut vm, c, a.add_pages(3), 5), b"child");
    // Partial munmap of the folio: the unmapped pages' frames go back (4 here), the rest
    // stays mapped and readable.
    client::munmap(&mut vm, p, a.add_pages(4), 4 * PAGE_SIZE).unwrap();
    check(&vm);
    assert!(vm.mmu_translate(p, a.add_pages(4), R).is_err());
    assert_eq!(get(&mut vm, p, a.add_pages(3), 5), b"folio");
    client::exit(&mut vm, c).unwrap();
    client::exit(&mut vm, p).unwrap();
    check(&vm);
}
every_strategy!(folios_map_fork_cow_unmap_exit, folios);

fn folio_edges<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) {
    let mut vm = boot_folio::<F, P>(fork, FolioSize::K16);
    let p = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    // A region of 6 pages from a 16 KiB boundary: the first block fits, the second
    // crosses the region's end and stays 4 KiB.
    let a = aligned_anon(&mut vm, p, 8, 4);
    client::munmap(&mut vm, p, a.add_pages(6), 64 * PAGE_SIZE).unwrap_or(());
    let _ = client::munmap(&mut vm, p, VirtAddr(a.0 - 4 * PAGE_SIZE), 4 * PAGE_SIZE);
    check(&vm);
    assert_eq!(client::touch(&mut vm, p, a.add_pages(1), W), Ok(Touch::Faulted));
    assert_eq!(client::touch(&mut vm, p, a.add_pages(5), W), Ok(Touch::Faulted));
    assert_eq!(vm.stats().folio_faults, 1);
    assert!(vm.mmu_translate(p, a.add_pages(3), R).is_ok());
    assert!(vm.mmu_translate(p, a.add_pages(4), R).is_err(), "the block past the end is not filled");
    // Shared memory never gets folios.
    let shared = MmapArgs { flags: MapFlags::ANON | MapFlags::SHARED, ..MmapArgs::anon(16 * PAGE_SIZE) };
    let s = client::mmap(&mut vm, p, &shared).unwrap();
    let s = VirtAddr(s.0.next_multiple_of(4 * PAGE_SIZE));
    assert!(client::touch(&mut vm, p, s, W).is_ok());
    assert_eq!(vm.stats().folio_faults, 1);
    client::exit(&mut vm, p).unwrap();
    check(&vm);
}
every_strategy!(folio_only_where_the_block_fits, folio_edges);

#[test]
fn no_aligned_run_falls_back_to_4k_and_a_last_failure_changes_nothing() {
    for fork in [ForkPolicy::Cow, ForkPolicy::Share, ForkPolicy::Copy] {
        let cfg = VmConfig { fork, folio: FolioSize::K64, ..VmConfig::with_bytes(ARENA) };
        let alloc = FailingAllocator::new(<Bitset as FrameAllocator>::with_frames(ARENA / PAGE_SIZE));
        let mut vm = Vm::<FailingAllocator<Bitset>, X86_64>::boot_with(cfg, alloc).expect("boot");
        let p = client::fork(&mut vm, INIT_PROC_NR).unwrap();
        let a = aligned_anon(&mut vm, p, 32, 16);
        // Build the leaf table first (a read fault), then make the folio's run fail: the
        // write fault maps one page instead.
        assert_eq!(client::touch(&mut vm, p, a.add_pages(20), R), Ok(Touch::Faulted));
        vm.allocator_mut().fail_at(1);
        assert_eq!(client::touch(&mut vm, p, a.add_pages(2), W), Ok(Touch::Faulted));
        check(&vm);
        assert_eq!((vm.stats().folio_faults, vm.stats().folio_fallbacks), (0, 1));
        assert!(vm.mmu_translate(p, a.add_pages(2), R).is_ok());
        assert!(vm.mmu_translate(p, a.add_pages(3), R).is_err());
        // Both the run and the single frame fail: the process is signalled, nothing changed.
        let before = vm.snapshot();
        vm.allocator_mut().fail_from(1);
        assert!(matches!(client::touch(&mut vm, p, a.add_pages(9), W), Err(TouchError::Signalled(_))));
        vm.allocator_mut().never_fail();
        let after = vm.snapshot();
        assert_same(&after, &before, "a write fault refused at the last fallback");
        check(&vm);
        client::exit(&mut vm, p).unwrap();
        check(&vm);
    }
}

#[test]
fn folio_sizes_name_and_parse() {
    for f in FolioSize::ALL {
        assert_eq!(FolioSize::parse(f.name()), Some(f));
        assert_eq!(f.pages() * PAGE_SIZE, 4096 << f.order());
    }
    assert_eq!(FolioSize::parse("64K"), Some(FolioSize::K64));
    assert_eq!(FolioSize::parse("2m"), None);
    assert_eq!(FolioSize::default(), FolioSize::K4);
}
