//! Fork a tree of processes from INIT, write distinct data into each through the soft
//! MMU, check that no process sees another's writes, exit them in a pseudo-random order,
//! and end with exactly the free frames of the freshly booted server.

mod support;

use support::*;
use vmstorm_core::client;
use vmstorm_core::endpoint::INIT_PROC_NR;
use vmstorm_core::layout::BOOT_DATA_VA;
use vmstorm_core::ForkPolicy;
use vmstorm_core::*;

fn forktree<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) {
    let mut vm = boot::<F, P>(fork);
    let baseline = vm.free_frames();
    // INIT writes a pattern into its data and an mmap before the first fork.
    let buf = anon(&mut vm, INIT_PROC_NR, 3 * PAGE_SIZE);
    put(&mut vm, INIT_PROC_NR, BOOT_DATA_VA, b"init-data");
    put(&mut vm, INIT_PROC_NR, buf, &[0x11; 3 * PAGE_SIZE as usize]);
    let mut procs = vec![INIT_PROC_NR];
    let mut rng = vmstorm_core::rng::SplitMix64::new(0x9e37);
    for i in 0..24usize {
        let parent = procs[rng.below(procs.len() as u64) as usize];
        let c = client::fork(&mut vm, parent).expect("fork");
        check(&vm);
        procs.push(c);
        let tag = format!("proc-{i:03}");
        put(&mut vm, c, BOOT_DATA_VA, tag.as_bytes());
        put(&mut vm, c, VirtAddr(buf.0 + PAGE_SIZE + i as u64), &[i as u8 + 1]);
    }
    // Isolation: each child sees its own tag; INIT still sees its own data.
    assert_eq!(get(&mut vm, INIT_PROC_NR, BOOT_DATA_VA, 9), b"init-data");
    assert_eq!(get(&mut vm, INIT_PROC_NR, buf, 1), [0x11]);
    assert_eq!(get(&mut vm, INIT_PROC_NR, VirtAddr(buf.0 + PAGE_SIZE), 64), vec![0x11; 64]);
    for (i, &c) in procs[1..].iter().enumerate() {
        assert_eq!(get(&mut vm, c, BOOT_DATA_VA, 8), format!("proc-{i:03}").as_bytes());
        let page = get(&mut vm, c, VirtAddr(buf.0 + PAGE_SIZE), 32);
        assert_eq!(page[i], i as u8 + 1, "child {i} lost its own write");
        for (j, &b) in page.iter().enumerate().take(24) {
            if j != i && b != 0x11 {
                // Only writes inherited from ancestors forked before may differ.
                assert!(j < i, "child {i} sees byte {j} = {b:#x} written after it forked");
            }
        }
    }
    check(&vm);
    // Exit every forked process in a pseudo-random order.
    let mut live: Vec<Endpoint> = procs[1..].to_vec();
    while !live.is_empty() {
        let k = rng.below(live.len() as u64) as usize;
        let ep = live.swap_remove(k);
        client::exit(&mut vm, ep).expect("exit");
        check(&vm);
    }
    client::munmap(&mut vm, INIT_PROC_NR, buf, 3 * PAGE_SIZE).expect("munmap");
    check(&vm);
    assert_eq!(vm.free_frames(), baseline, "frames leaked by the fork tree");
}

every_strategy!(forktree_all, forktree);
