//! Huge pages (`PS` directory entries) through the whole server, under every allocator ×
//! format × fork policy: a write fault maps the aligned block; a read fault maps the huge
//! zero page and a write then replaces it; fork, copy-on-write of one page, partial
//! munmap, mprotect, discard and mremap split the entry and keep every invariant; exit
//! frees every frame but the pinned zero page; a block that does not fit stays small; no
//! aligned run (allocation refused, or the arena too fragmented) falls back, and a
//! failure at the last fallback changes nothing.

mod support;

use support::*;
use vmstorm_core::client::{self, MapFlags, MmapArgs, Touch, TouchError};
use vmstorm_core::endpoint::INIT_PROC_NR;
use vmstorm_core::region::MapProt;
use vmstorm_core::*;

const R: Access = Access { write: false, user: true };
const W: Access = Access { write: true, user: true };

/// Arena of the tests that hold several blocks at once (i386's are 4 MiB; an eager fork
/// copies them).
const BIG: u64 = 64 << 20;

fn boot_huge<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy, folio: FolioSize, bytes: u64) -> Vm<F, P> {
    let cfg = VmConfig { fork, folio, huge: HugePolicy::Always, ..VmConfig::with_bytes(bytes) };
    let vm = Vm::<F, P>::boot(cfg).expect("boot");
    assert_eq!(vm.huge_policy(), HugePolicy::Always);
    check(&vm);
    vm
}

fn frame_of<F: FrameAllocator, P: PagingFormat>(vm: &mut Vm<F, P>, p: Endpoint, va: VirtAddr) -> Frame {
    vm.mmu_translate(p, va, R).expect("mapped").frame
}

fn huge_pages<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) {
    let n = P::HUGE_PAGES;
    let mut vm = boot_huge::<F, P>(fork, FolioSize::K4, BIG);
    let free0 = vm.free_frames();
    let p = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    let a = aligned_anon(&mut vm, p, 2 * n, n);
    // A write fault in the middle of a block maps the whole block, aligned, contiguous.
    let (free, tables) = (vm.free_frames(), vm.pt_pages());
    assert_eq!(client::touch(&mut vm, p, a.add_pages(5), W), Ok(Touch::Faulted));
    check(&vm);
    assert_eq!(vm.free_frames(), free - n - (vm.pt_pages() - tables));
    assert_eq!((vm.stats().huge_faults, vm.stats().huge_fallbacks), (1, 0));
    let f0 = frame_of(&mut vm, p, a);
    assert_eq!(f0.0 % n, 0, "the block's frames are aligned to its size");
    for i in [0, 1, 5, n / 2, n - 1] {
        assert_eq!(frame_of(&mut vm, p, a.add_pages(i)), f0.add(i));
        assert_eq!(client::touch(&mut vm, p, a.add_pages(i), W), Ok(Touch::Hit));
    }
    assert_eq!(vm.stats().faults, 1);
    put(&mut vm, p, a.add_pages(3), b"huge");
    // A read fault in the next block maps the huge zero page, read-only; reads see zeros.
    assert_eq!(client::touch(&mut vm, p, a.add_pages(n + 7), R), Ok(Touch::Faulted));
    check(&vm);
    let zero = vm.huge_zero_page().expect("the huge zero page");
    assert_eq!(vm.stats().huge_zero_maps, 1);
    assert_eq!(frame_of(&mut vm, p, a.add_pages(n + 7)), zero.add(7));
    assert_eq!(get(&mut vm, p, a.add_pages(n + 9), 4), vec![0; 4]);
    // A write there replaces it with a block of its own.
    assert_eq!(client::touch(&mut vm, p, a.add_pages(n + 9), W), Ok(Touch::Faulted));
    check(&vm);
    assert_eq!(vm.stats().huge_faults, 2);
    let f1 = frame_of(&mut vm, p, a.add_pages(n));
    assert_ne!(f1, zero);
    assert_eq!(f1.0 % n, 0);
    assert_eq!(get(&mut vm, p, a.add_pages(n + 9), 4), vec![0; 4]);
    // Fork shares both blocks; a write in the child copies one page only.
    let c = client::fork(&mut vm, p).unwrap();
    check(&vm);
    let splits = vm.stats().huge_splits;
    put(&mut vm, c, a.add_pages(3), b"kid!");
    check(&vm);
    assert_eq!(get(&mut vm, p, a.add_pages(3), 4), b"huge");
    assert_eq!(get(&mut vm, c, a.add_pages(3), 4), b"kid!");
    if fork != ForkPolicy::Copy {
        // The child's entry was split, the written page copied, the rest still shared.
        assert_eq!(vm.stats().huge_splits, splits + 1);
        assert_eq!(frame_of(&mut vm, c, a.add_pages(4)), f0.add(4));
        assert_ne!(frame_of(&mut vm, c, a.add_pages(3)), f0.add(3));
    }
    // Partial munmap of the parent's first block: split, the unmapped frames go back.
    let free = vm.free_frames();
    client::munmap(&mut vm, p, a.add_pages(10), 2 * PAGE_SIZE).unwrap();
    check(&vm);
    assert!(vm.mmu_translate(p, a.add_pages(10), R).is_err());
    assert_eq!(get(&mut vm, p, a.add_pages(3), 4), b"huge");
    if fork == ForkPolicy::Copy {
        // The parent's frames were its own: two go back, one table frame is taken.
        assert_eq!(vm.free_frames(), free + 2 - 1);
    }
    // mprotect of part of the second block: split; the pages there are read-only.
    client::mprotect(&mut vm, p, a.add_pages(n), 4 * PAGE_SIZE, MapProt::READ).unwrap();
    check(&vm);
    assert!(vm.mmu_translate(p, a.add_pages(n + 1), W).is_err());
    assert!(vm.mmu_translate(p, a.add_pages(n + 4), R).is_ok());
    if fork == ForkPolicy::Copy {
        assert!(vm.mmu_translate(p, a.add_pages(n + 4), W).is_ok(), "the fork copied the block");
    }
    // Discard in the child's second block: the pages read zero again.
    put(&mut vm, c, a.add_pages(n + 20), b"gone");
    client::discard(&mut vm, c, a.add_pages(n + 20), PAGE_SIZE).unwrap();
    check(&vm);
    assert_eq!(get(&mut vm, c, a.add_pages(n + 20), 4), vec![0; 4]);
    client::exit(&mut vm, c).unwrap();
    check(&vm);
    client::exit(&mut vm, p).unwrap();
    check(&vm);
    // Every frame is back but the huge zero page's, which the server keeps.
    assert_eq!(vm.free_frames(), free0 - n);
}
every_strategy!(huge_pages_map_zero_fork_cow_split_exit, huge_pages);

fn huge_whole_blocks<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) {
    let n = P::HUGE_PAGES;
    let mut vm = boot_huge::<F, P>(fork, FolioSize::K4, BIG);
    let p = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    let a = aligned_anon(&mut vm, p, 2 * n, n);
    let free = vm.free_frames();
    assert_eq!(client::touch(&mut vm, p, a.add_pages(0), W), Ok(Touch::Faulted));
    assert_eq!(client::touch(&mut vm, p, a.add_pages(n), R), Ok(Touch::Faulted));
    put(&mut vm, p, a.add_pages(1), b"move");
    // mremap moves the pages (the entries are split on the way) and keeps the data.
    let b = client::mremap(&mut vm, p, a, 2 * n * PAGE_SIZE, 3 * n * PAGE_SIZE, true).unwrap();
    check(&vm);
    assert_eq!(get(&mut vm, p, b.add_pages(1), 4), b"move");
    assert_eq!(get(&mut vm, p, b.add_pages(n + 1), 4), vec![0; 4]);
    // Unmapping all of it frees every frame but the zero page's (and the tables).
    client::munmap(&mut vm, p, b, 3 * n * PAGE_SIZE).unwrap();
    check(&vm);
    assert_eq!(vm.free_frames(), free - n);
    // A PROT_NONE period and back: the block faults in again as a huge page.
    let a = aligned_anon(&mut vm, p, n, n);
    client::mprotect(&mut vm, p, a, n * PAGE_SIZE, MapProt::NONE).unwrap();
    assert!(client::touch(&mut vm, p, a, R).is_err());
    client::mprotect(&mut vm, p, a, n * PAGE_SIZE, MapProt::RW).unwrap();
    let faults = vm.stats().huge_faults;
    assert_eq!(client::touch(&mut vm, p, a.add_pages(2), W), Ok(Touch::Faulted));
    assert_eq!(vm.stats().huge_faults, faults + 1);
    check(&vm);
    // Fork, and the child exits: the parent's block is its own again (its entry still
    // copy-on-write unless the fork copied), so a write reuses it in place.
    let c = client::fork(&mut vm, p).unwrap();
    client::exit(&mut vm, c).unwrap();
    check(&vm);
    let f = frame_of(&mut vm, p, a.add_pages(6));
    let expect = if fork == ForkPolicy::Copy { Touch::Hit } else { Touch::Faulted };
    assert_eq!(client::touch(&mut vm, p, a.add_pages(6), W), Ok(expect));
    assert_eq!(frame_of(&mut vm, p, a.add_pages(6)), f, "a private block is reused, not copied");
    check(&vm);
    client::exit(&mut vm, p).unwrap();
    check(&vm);
}
every_strategy!(huge_whole_blocks_mremap_unmap_protect_reuse, huge_whole_blocks);

fn huge_edges<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) {
    let n = P::HUGE_PAGES;
    let mut vm = boot_huge::<F, P>(fork, FolioSize::K16, ARENA);
    let p = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    // A region that ends before the block does: no huge page; the folio size is next.
    let a = aligned_anon(&mut vm, p, 2 * n, n);
    client::munmap(&mut vm, p, a.add_pages(n - 8), (n + 8) * PAGE_SIZE).unwrap();
    check(&vm);
    assert_eq!(client::touch(&mut vm, p, a.add_pages(1), W), Ok(Touch::Faulted));
    assert_eq!((vm.stats().huge_faults, vm.stats().folio_faults), (0, 1));
    assert!(vm.mmu_translate(p, a.add_pages(3), R).is_ok());
    assert!(vm.mmu_translate(p, a.add_pages(4), R).is_err());
    // A block whose leaf table exists (a page discarded after a split) stays small: the
    // page comes back as one 4 KiB page.
    let b = aligned_anon(&mut vm, p, n, n);
    assert_eq!(client::touch(&mut vm, p, b.add_pages(0), W), Ok(Touch::Faulted));
    assert_eq!(vm.stats().huge_faults, 1);
    client::discard(&mut vm, p, b, PAGE_SIZE).unwrap();
    assert_eq!(vm.stats().huge_splits, 1);
    let free = vm.free_frames();
    assert_eq!(client::touch(&mut vm, p, b.add_pages(0), W), Ok(Touch::Faulted));
    assert_eq!((vm.stats().huge_faults, vm.free_frames()), (1, free - 1));
    check(&vm);
    let shared = MmapArgs { flags: MapFlags::ANON | MapFlags::SHARED, ..MmapArgs::anon(2 * n * PAGE_SIZE) };
    let s = client::mmap(&mut vm, p, &shared).unwrap();
    let s = VirtAddr(s.0.next_multiple_of(n * PAGE_SIZE));
    assert!(client::touch(&mut vm, p, s, W).is_ok());
    assert_eq!(vm.stats().huge_faults, 1, "shared memory never gets a huge page");
    check(&vm);
    client::exit(&mut vm, p).unwrap();
    check(&vm);
}
every_strategy!(huge_only_where_the_block_fits, huge_edges);

fn failing<P: PagingFormat>(fork: ForkPolicy) -> Vm<FailingAllocator<Bitset>, P> {
    let cfg = VmConfig { fork, huge: HugePolicy::Always, ..VmConfig::with_bytes(BIG) };
    let alloc = FailingAllocator::new(<Bitset as FrameAllocator>::with_frames(BIG / PAGE_SIZE));
    Vm::<FailingAllocator<Bitset>, P>::boot_with(cfg, alloc).expect("boot")
}

fn oom_falls_back<P: PagingFormat>() {
    let n = P::HUGE_PAGES;
    for fork in [ForkPolicy::Cow, ForkPolicy::Share, ForkPolicy::Copy] {
        let mut vm = failing::<P>(fork);
        let p = client::fork(&mut vm, INIT_PROC_NR).unwrap();
        let a = aligned_anon(&mut vm, p, 2 * n, n);
        // The block's run is refused: the write fault maps one page instead.
        vm.allocator_mut().fail_at(1);
        assert_eq!(client::touch(&mut vm, p, a.add_pages(2), W), Ok(Touch::Faulted));
        check(&vm);
        assert_eq!((vm.stats().huge_faults, vm.stats().huge_fallbacks), (0, 1));
        assert!(vm.mmu_translate(p, a.add_pages(2), R).is_ok());
        assert!(vm.mmu_translate(p, a.add_pages(3), R).is_err());
        // Same for the huge zero page on a read fault.
        vm.allocator_mut().fail_at(1);
        assert_eq!(client::touch(&mut vm, p, a.add_pages(n + 2), R), Ok(Touch::Faulted));
        check(&vm);
        assert_eq!((vm.stats().huge_zero_maps, vm.stats().huge_fallbacks, vm.huge_zero_page()), (0, 2, None));
        // Every allocation refused: the process is signalled and nothing changed.
        let b = aligned_anon(&mut vm, p, n, n);
        for access in [W, R] {
            let before = vm.snapshot();
            let free = vm.free_frames();
            vm.allocator_mut().fail_from(1);
            assert!(matches!(
                client::touch(&mut vm, p, b.add_pages(9), access),
                Err(TouchError::Signalled(_))
            ));
            vm.allocator_mut().never_fail();
            assert_same(&vm.snapshot(), &before, "a fault refused at the last fallback");
            assert_eq!(vm.free_frames(), free);
            check(&vm);
        }
        // A write to the huge zero page with no block to replace it: split, one page copied.
        assert_eq!(client::touch(&mut vm, p, b.add_pages(9), R), Ok(Touch::Faulted));
        vm.allocator_mut().fail_at(1);
        assert_eq!(client::touch(&mut vm, p, b.add_pages(9), W), Ok(Touch::Faulted));
        check(&vm);
        assert_eq!(vm.stats().huge_splits, 1);
        assert!(vm.mmu_translate(p, b.add_pages(9), W).is_ok());
        assert!(vm.mmu_translate(p, b.add_pages(10), W).is_err());
        // A partial munmap that cannot get the split's table fails and changes nothing.
        let c = aligned_anon(&mut vm, p, n, n);
        assert_eq!(client::touch(&mut vm, p, c.add_pages(0), W), Ok(Touch::Faulted));
        let before = vm.snapshot();
        vm.allocator_mut().fail_from(1);
        assert_eq!(client::munmap(&mut vm, p, c.add_pages(1), PAGE_SIZE), Err(Errno::ENOMEM));
        vm.allocator_mut().never_fail();
        assert_same(&vm.snapshot(), &before, "a munmap refused for want of a table");
        check(&vm);
        client::exit(&mut vm, p).unwrap();
        check(&vm);
    }
}

#[test]
fn oom_on_the_huge_path_falls_back_and_a_last_failure_changes_nothing() {
    oom_falls_back::<X86_64>();
    oom_falls_back::<I386>();
}

fn fragmented<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) {
    let n = P::HUGE_PAGES;
    let mut vm = boot_huge::<F, P>(fork, FolioSize::K4, ARENA);
    let p = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    // Fill the arena with shared pages (never huge), then free every other one: no
    // aligned run of a block's size is left.
    let fill = vm.free_frames() - 64;
    let shared = MmapArgs { flags: MapFlags::ANON | MapFlags::SHARED, ..MmapArgs::anon(fill * PAGE_SIZE) };
    let s = client::mmap(&mut vm, p, &shared).unwrap();
    for i in 0..fill {
        if client::touch(&mut vm, p, s.add_pages(i), W).is_err() {
            break;
        }
    }
    for i in (0..fill).step_by(2) {
        client::munmap(&mut vm, p, s.add_pages(i), PAGE_SIZE).unwrap();
    }
    check(&vm);
    let a = aligned_anon(&mut vm, p, n, n);
    assert_eq!(client::touch(&mut vm, p, a.add_pages(1), W), Ok(Touch::Faulted));
    assert_eq!((vm.stats().huge_faults, vm.stats().huge_fallbacks), (0, 1));
    assert!(vm.mmu_translate(p, a.add_pages(2), R).is_err());
    check(&vm);
    client::exit(&mut vm, p).unwrap();
    check(&vm);
}
every_strategy!(a_fragmented_arena_falls_back, fragmented);

#[test]
fn huge_policies_name_and_parse() {
    for h in HugePolicy::ALL {
        assert_eq!(HugePolicy::parse(h.name()), Some(h));
    }
    assert_eq!(HugePolicy::default(), HugePolicy::Never);
    assert_eq!(<X86_64 as PagingFormat>::HUGE_PAGES * PAGE_SIZE, 2 << 20);
    assert_eq!(<I386 as PagingFormat>::HUGE_PAGES * PAGE_SIZE, 4 << 20);
}

/// The fallback order: no block for the huge page → the folio size (then 4 KiB, see the
/// OOM test above).
#[test]
fn a_refused_block_falls_back_to_the_folio_size() {
    let n = <X86_64 as PagingFormat>::HUGE_PAGES;
    let cfg = VmConfig { folio: FolioSize::K16, huge: HugePolicy::Always, ..VmConfig::with_bytes(BIG) };
    let alloc = FailingAllocator::new(<Bitset as FrameAllocator>::with_frames(BIG / PAGE_SIZE));
    let mut vm = Vm::<FailingAllocator<Bitset>, X86_64>::boot_with(cfg, alloc).expect("boot");
    let p = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    let a = aligned_anon(&mut vm, p, 2 * n, n);
    // The block's run refused: the 16 KiB folio is next.
    vm.allocator_mut().fail_at(1);
    assert_eq!(client::touch(&mut vm, p, a.add_pages(5), W), Ok(Touch::Faulted));
    check(&vm);
    let s = vm.stats();
    assert_eq!((s.huge_faults, s.huge_fallbacks, s.folio_faults, s.folio_fallbacks), (0, 1, 1, 0));
    assert!(
        vm.mmu_translate(p, a.add_pages(4), R).is_ok() && vm.mmu_translate(p, a.add_pages(8), R).is_err()
    );
    client::exit(&mut vm, p).unwrap();
    check(&vm);
}
