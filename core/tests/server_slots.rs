//! The process table's size is a boot parameter whose default fits real programs: a
//! process with 300 live children forks under the default configuration, and a smaller
//! table refuses the fork that would overflow it (EAGAIN from PM's slot search) without
//! changing anything.

use vmstorm_core::client;
use vmstorm_core::endpoint::INIT_PROC_NR;
use vmstorm_core::*;

type TestVm = Vm<Bitset, X86_64>;

fn boot(slots: Option<usize>) -> TestVm {
    let mut config = VmConfig::with_bytes(128 << 20);
    if let Some(n) = slots {
        config.slots = n;
    }
    TestVm::boot(config).expect("boot")
}

#[test]
fn default_table_holds_300_live_children() {
    let mut vm = boot(None);
    let children: Vec<Endpoint> = (0..300)
        .map(|i| client::fork(&mut vm, INIT_PROC_NR).unwrap_or_else(|e| panic!("fork {i}: {e:?}")))
        .collect();
    assert_eq!(vm.processes(), 11 + 300);
    for c in children {
        client::exit(&mut vm, c).unwrap();
    }
    vm.check_invariants(SanityLevel::Functions).unwrap();
}

#[test]
fn a_full_table_refuses_the_fork_and_changes_nothing() {
    let mut vm = boot(Some(64));
    assert_eq!(vm.slot_count(), 64);
    for _ in 11..64 {
        client::fork(&mut vm, INIT_PROC_NR).unwrap();
    }
    let before = vm.snapshot();
    assert_eq!(client::fork(&mut vm, INIT_PROC_NR), Err(Errno::EAGAIN));
    assert_eq!(vm.snapshot(), before);
}
