//! Regression: mremap moving pages out of a leaf table shared with a forked child (the
//! `share` fork policy) must not leave the moved pages writable while the child's table
//! still references their frames. Found by a long `mixed` storm on x86-64.

mod support;

use support::*;
use vmstorm_core::addr::{VirtAddr, PAGE_SIZE};
use vmstorm_core::frames::Bitset;
use vmstorm_core::paging::{I386, X86_64};
use vmstorm_core::ForkPolicy;
use vmstorm_core::{client, FrameAllocator, PagingFormat};

fn move_out_of_shared_table<F: FrameAllocator, P: PagingFormat>(fork: ForkPolicy) {
    let mut vm = boot::<F, P>(fork);
    let parent = child(&mut vm);
    let a = anon(&mut vm, parent, 4 * PAGE_SIZE);
    for i in 0..4 {
        put(&mut vm, parent, VirtAddr(a.0 + i * PAGE_SIZE), b"parent's");
    }
    let kid = client::fork(&mut vm, parent).unwrap();
    check(&vm);
    // Block growth in place, so the mapping moves.
    let blocker = anon(&mut vm, parent, PAGE_SIZE);
    assert_eq!(blocker.0, a.0 + 4 * PAGE_SIZE, "first fit places the blocker right after");
    let moved = client::mremap(&mut vm, parent, a, 4 * PAGE_SIZE, 64 * PAGE_SIZE, true).unwrap();
    assert_ne!(moved, a);
    check(&vm);
    // The parent writes through the moved pages; the child keeps its own contents.
    for i in 0..4 {
        put(&mut vm, parent, VirtAddr(moved.0 + i * PAGE_SIZE), b"changed!");
        check(&vm);
    }
    for i in 0..4 {
        assert_eq!(get(&mut vm, kid, VirtAddr(a.0 + i * PAGE_SIZE), 8), b"parent's");
        assert_eq!(get(&mut vm, parent, VirtAddr(moved.0 + i * PAGE_SIZE), 8), b"changed!");
    }
    client::exit(&mut vm, kid).unwrap();
    client::exit(&mut vm, parent).unwrap();
    check(&vm);
}

#[test]
fn mremap_out_of_a_shared_leaf_table_x86_64() {
    for fork in [ForkPolicy::Share, ForkPolicy::Cow, ForkPolicy::Copy] {
        move_out_of_shared_table::<Bitset, X86_64>(fork);
    }
}

#[test]
fn mremap_out_of_a_shared_leaf_table_i386() {
    for fork in [ForkPolicy::Share, ForkPolicy::Cow, ForkPolicy::Copy] {
        move_out_of_shared_table::<Bitset, I386>(fork);
    }
}
