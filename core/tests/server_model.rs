//! The whole server against a small reference model, over random op sequences.
//!
//! The model is a map from (process, page) to what the page holds and how it may be
//! accessed, plus each process's heap size. Private pages are copied into a forked child,
//! shared pages keep one cell both processes see. Every op goes through the client (the
//! messages PM, libc and the kernel send); after each one the server's invariants must
//! hold, every read must return what the model says, and a refused call must leave the
//! server exactly as it was. At the end every process exits and every frame is free
//! again. Run for every allocator × paging format × fork policy.

mod support;

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use vmstorm_core::client::{self, ExecImage, MapFlags, MapProt, MmapArgs, TouchError};
use vmstorm_core::endpoint::{Endpoint, INIT_PROC_NR};
use vmstorm_core::{Access, ForkPolicy, FrameAllocator, PagingFormat, VirtAddr, Vm, PAGE_SIZE};

use support::{assert_same, boot_sized, check, MIB};

/// Most processes alive at once (beyond that a fork op is skipped).
const MAX_PROCS: usize = 6;
/// Where in a page the model's bytes are written and read.
const PROBE: u64 = 72;

#[derive(Clone, Copy, Debug)]
enum Op {
    Fork(u8),
    Exit(u8),
    Exec(u8, u8),
    Mmap { p: u8, pages: u8, prot: u8, shared: bool },
    Munmap { p: u8, at: u16, pages: u8 },
    Brk { p: u8, delta: i8 },
    Mprotect { p: u8, at: u16, pages: u8, prot: u8 },
    Discard { p: u8, at: u16, pages: u8 },
    Touch { p: u8, at: u16, write: bool },
    Write { p: u8, at: u16, value: u8 },
    Read { p: u8, at: u16 },
}

/// Protections a process can ask for on x86 (no write-only or exec-only pages).
const PROTS: [MapProt; 5] = [MapProt::NONE, MapProt::READ, MapProt::RW, MapProt::RX, MapProt::ALL];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => any::<u8>().prop_map(Op::Fork),
        1 => any::<u8>().prop_map(Op::Exit),
        1 => (any::<u8>(), 0u8..4).prop_map(|(p, data)| Op::Exec(p, data)),
        3 => (any::<u8>(), 1u8..6, 0u8..5, prop::bool::weighted(0.25))
            .prop_map(|(p, pages, prot, shared)| Op::Mmap { p, pages, prot, shared }),
        1 => (any::<u8>(), any::<u16>(), 1u8..4).prop_map(|(p, at, pages)| Op::Munmap { p, at, pages }),
        2 => (any::<u8>(), -3i8..5).prop_map(|(p, delta)| Op::Brk { p, delta }),
        1 => (any::<u8>(), any::<u16>(), 1u8..4, 0u8..5)
            .prop_map(|(p, at, pages, prot)| Op::Mprotect { p, at, pages, prot }),
        1 => (any::<u8>(), any::<u16>(), 1u8..4).prop_map(|(p, at, pages)| Op::Discard { p, at, pages }),
        2 => (any::<u8>(), any::<u16>(), any::<bool>()).prop_map(|(p, at, write)| Op::Touch { p, at, write }),
        4 => (any::<u8>(), any::<u16>(), 1u8..).prop_map(|(p, at, value)| Op::Write { p, at, value }),
        3 => (any::<u8>(), any::<u16>()).prop_map(|(p, at)| Op::Read { p, at }),
    ]
}

/// What the model knows of one page.
#[derive(Clone, Copy, Debug)]
struct Page {
    prot: MapProt,
    /// Index into `Model::cells` (shared pages share a cell).
    cell: usize,
    shared: bool,
    /// Created by brk (else by mmap).
    heap: bool,
}

#[derive(Clone, Debug)]
struct Proc {
    ep: Endpoint,
    pages: BTreeMap<u64, Page>,
    /// First heap page (the initial break rounded up) and the heap's pages above it.
    heap_base: u64,
    heap_pages: u64,
}

#[derive(Default, Debug)]
struct Model {
    procs: Vec<Proc>,
    /// The byte each cell holds at `PROBE..PROBE + 8` (0: never written).
    cells: Vec<u8>,
}

impl Model {
    fn cell(&mut self, value: u8) -> usize {
        self.cells.push(value);
        self.cells.len() - 1
    }

    /// The `at`-th page of process `p` (modulo), among mmap'd pages only if `mapped_only`.
    fn pick(&self, p: usize, at: u16, mapped_only: bool) -> Option<u64> {
        let pages: Vec<u64> = self.procs[p]
            .pages
            .iter()
            .filter(|(_, pg)| !mapped_only || !pg.heap)
            .map(|(&va, _)| va)
            .collect();
        (!pages.is_empty()).then(|| pages[at as usize % pages.len()])
    }

    /// The run of up to `n` consecutive pages from `va` that the model has (mmap'd ones
    /// only if `mapped_only`).
    fn run(&self, p: usize, va: u64, n: u64, mapped_only: bool) -> u64 {
        let mut k = 0;
        while k < n {
            match self.procs[p].pages.get(&(va + k * PAGE_SIZE)) {
                Some(pg) if !mapped_only || !pg.heap => k += 1,
                _ => break,
            }
        }
        k
    }
}

fn readable(prot: MapProt) -> bool {
    prot.intersects(MapProt::ALL)
}

fn writable(prot: MapProt) -> bool {
    prot.contains(MapProt::WRITE)
}

fn expect_signalled(r: Result<(), TouchError>, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(matches!(r, Err(TouchError::Signalled(_))), "{} should fault: {:?}", what, r);
    Ok(())
}

fn run<F: FrameAllocator, P: PagingFormat>(policy: ForkPolicy, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut vm: Vm<F, P> = boot_sized(32 * MIB, 32, policy);
    let free_at_boot = vm.free_frames();
    let first = client::fork(&mut vm, INIT_PROC_NR).expect("fork from INIT");
    let image =
        ExecImage { text_bytes: 3 * PAGE_SIZE, data_bytes: PAGE_SIZE, bss_bytes: 100, stack_bytes: 8192 };
    let layout = client::exec(&mut vm, first, &image).expect("exec");
    let heap_base = layout.brk.0.div_ceil(PAGE_SIZE) * PAGE_SIZE;
    let mut m = Model {
        procs: vec![Proc { ep: first, pages: BTreeMap::new(), heap_base, heap_pages: 0 }],
        cells: Vec::new(),
    };
    check(&vm);

    for (step, &op) in ops.iter().enumerate() {
        let n = m.procs.len();
        match op {
            Op::Fork(p) => {
                if n >= MAX_PROCS {
                    continue;
                }
                let parent = m.procs[p as usize % n].clone();
                let child = client::fork(&mut vm, parent.ep).map_err(|e| fail(step, op, e))?;
                let mut pages = BTreeMap::new();
                for (&va, pg) in &parent.pages {
                    let cell = if pg.shared { pg.cell } else { m.cell(m.cells[pg.cell]) };
                    pages.insert(va, Page { cell, ..*pg });
                }
                m.procs.push(Proc { ep: child, pages, ..parent });
            }
            Op::Exit(p) => {
                if n == 1 {
                    continue;
                }
                let i = 1 + p as usize % (n - 1);
                client::exit(&mut vm, m.procs[i].ep).map_err(|e| fail(step, op, e))?;
                m.procs.remove(i);
            }
            Op::Exec(p, data) => {
                // A new image: everything the process had is gone, its heap starts over.
                let i = p as usize % n;
                let image = ExecImage { data_bytes: (1 + data as u64) * PAGE_SIZE, ..image };
                let layout = client::exec(&mut vm, m.procs[i].ep, &image).map_err(|e| fail(step, op, e))?;
                let pr = &mut m.procs[i];
                pr.pages.clear();
                pr.heap_base = layout.brk.0.div_ceil(PAGE_SIZE) * PAGE_SIZE;
                pr.heap_pages = 0;
            }
            Op::Mmap { p, pages, prot, shared } => {
                let i = p as usize % n;
                let prot = PROTS[prot as usize];
                let flags = MapFlags::ANON | if shared { MapFlags::SHARED } else { MapFlags::PRIVATE };
                let len = pages as u64 * PAGE_SIZE;
                let args = MmapArgs { addr: None, len, prot, flags };
                let va = client::mmap(&mut vm, m.procs[i].ep, &args).map_err(|e| fail(step, op, e))?;
                prop_assert_eq!(va.0 % PAGE_SIZE, 0, "unaligned mmap address");
                for k in 0..pages as u64 {
                    let at = va.0 + k * PAGE_SIZE;
                    prop_assert!(!m.procs[i].pages.contains_key(&at), "mmap at {:#x} overlaps a mapping", at);
                    let hb = m.procs[i].heap_base;
                    prop_assert!(at < hb || at >= hb + (m.procs[i].heap_pages + 1) * PAGE_SIZE);
                    let cell = m.cell(0);
                    m.procs[i].pages.insert(at, Page { prot, cell, shared, heap: false });
                }
            }
            Op::Munmap { p, at, pages } => {
                let i = p as usize % n;
                let Some(va) = m.pick(i, at, true) else { continue };
                let k = m.run(i, va, pages as u64, true);
                client::munmap(&mut vm, m.procs[i].ep, VirtAddr(va), k * PAGE_SIZE)
                    .map_err(|e| fail(step, op, e))?;
                for j in 0..k {
                    m.procs[i].pages.remove(&(va + j * PAGE_SIZE));
                }
                let mut probe = [0u8; 1];
                let r = client::read_user(&mut vm, m.procs[i].ep, VirtAddr(va), &mut probe);
                expect_signalled(r, "read of an unmapped page")?;
            }
            Op::Brk { p, delta } => {
                let i = p as usize % n;
                let (ep, base, old) = (m.procs[i].ep, m.procs[i].heap_base, m.procs[i].heap_pages);
                let Ok(new_pages) = u64::try_from(old as i64 + delta as i64) else { continue };
                let new_end = base + new_pages * PAGE_SIZE;
                let old_end = base + old * PAGE_SIZE;
                // Growing needs the pages up to the new end and a guard page free.
                let clear = new_end <= old_end
                    || !m.procs[i].pages.range(old_end..new_end + 2 * PAGE_SIZE).any(|(_, pg)| !pg.heap);
                let before = vm.snapshot();
                match client::brk(&mut vm, ep, VirtAddr(new_end)) {
                    Ok(()) => {
                        for k in new_pages..old {
                            m.procs[i].pages.remove(&(base + k * PAGE_SIZE));
                        }
                        for k in old..new_pages {
                            let cell = m.cell(0);
                            let page = Page { prot: MapProt::RW, cell, shared: false, heap: true };
                            prop_assert!(m.procs[i].pages.insert(base + k * PAGE_SIZE, page).is_none());
                        }
                        m.procs[i].heap_pages = new_pages;
                    }
                    Err(e) => {
                        prop_assert!(new_pages > old && !clear, "step {}: {:?} refused: {:?}", step, op, e);
                        assert_same(&vm.snapshot(), &before, "a refused brk changed the state");
                    }
                }
            }
            Op::Mprotect { p, at, pages, prot } => {
                let i = p as usize % n;
                let Some(va) = m.pick(i, at, true) else { continue };
                let k = m.run(i, va, pages as u64, true);
                let prot = PROTS[prot as usize];
                client::mprotect(&mut vm, m.procs[i].ep, VirtAddr(va), k * PAGE_SIZE, prot)
                    .map_err(|e| fail(step, op, e))?;
                for j in 0..k {
                    if let Some(pg) = m.procs[i].pages.get_mut(&(va + j * PAGE_SIZE)) {
                        pg.prot = prot;
                    }
                }
            }
            Op::Discard { p, at, pages } => {
                let i = p as usize % n;
                let Some(va) = m.pick(i, at, false) else { continue };
                let k = m.run(i, va, pages as u64, false);
                client::discard(&mut vm, m.procs[i].ep, VirtAddr(va), k * PAGE_SIZE)
                    .map_err(|e| fail(step, op, e))?;
                for j in 0..k {
                    let pg = m.procs[i].pages[&(va + j * PAGE_SIZE)];
                    if !pg.shared {
                        // A private page refaults as zero; shared memory keeps its contents.
                        let cell = m.cell(0);
                        m.procs[i].pages.get_mut(&(va + j * PAGE_SIZE)).expect("page").cell = cell;
                    }
                }
            }
            Op::Touch { p, at, write } => {
                let i = p as usize % n;
                let Some(va) = m.pick(i, at, false) else { continue };
                let pg = m.procs[i].pages[&va];
                let r =
                    client::touch(&mut vm, m.procs[i].ep, VirtAddr(va + PROBE), Access { write, user: true });
                let allowed = if write { writable(pg.prot) } else { readable(pg.prot) };
                match r {
                    Ok(_) => prop_assert!(allowed, "step {}: {:?} allowed on {:?}", step, op, pg),
                    Err(TouchError::Signalled(_)) => {
                        prop_assert!(!allowed, "step {}: {:?} refused on {:?}", step, op, pg)
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("step {step}: {op:?}: {e:?}"))),
                }
            }
            Op::Write { p, at, value } => {
                let i = p as usize % n;
                let Some(va) = m.pick(i, at, false) else { continue };
                let pg = m.procs[i].pages[&va];
                let r = client::write_user(&mut vm, m.procs[i].ep, VirtAddr(va + PROBE), &[value; 8]);
                if writable(pg.prot) {
                    r.map_err(|e| TestCaseError::fail(format!("step {step}: {op:?} on {pg:?}: {e:?}")))?;
                    m.cells[pg.cell] = value;
                } else {
                    expect_signalled(r, "write to a read-only page")?;
                }
            }
            Op::Read { p, at } => {
                let i = p as usize % n;
                let Some(va) = m.pick(i, at, false) else { continue };
                check_page(&mut vm, &m, i, va, step)?;
            }
        }
        if let Err(e) = vm.check_invariants(vmstorm_core::SanityLevel::Detail) {
            return Err(TestCaseError::fail(format!("step {step}: {op:?}: invariants: {e}")));
        }
    }

    // Every page of every process holds what the model says.
    for i in 0..m.procs.len() {
        let vas: Vec<u64> = m.procs[i].pages.keys().copied().collect();
        for va in vas {
            check_page(&mut vm, &m, i, va, ops.len())?;
        }
    }
    // Everyone exits, children before the first process; then every frame is free.
    for pr in m.procs.iter().rev() {
        client::exit(&mut vm, pr.ep)
            .map_err(|e| TestCaseError::fail(format!("final exit of {:?}: {e:?}", pr.ep)))?;
    }
    check(&vm);
    prop_assert_eq!(vm.free_frames(), free_at_boot, "frames leaked after every process exited");
    Ok(())
}

fn check_page<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    m: &Model,
    i: usize,
    va: u64,
    step: usize,
) -> Result<(), TestCaseError> {
    let pg = m.procs[i].pages[&va];
    let mut buf = [0u8; 8];
    let r = client::read_user(vm, m.procs[i].ep, VirtAddr(va + PROBE), &mut buf);
    if readable(pg.prot) {
        r.map_err(|e| TestCaseError::fail(format!("step {step}: read of {va:#x} ({pg:?}): {e:?}")))?;
        let want = [m.cells[pg.cell]; 8];
        prop_assert_eq!(buf, want, "step {}: process {} page {:#x} ({:?})", step, i, va, pg);
    } else {
        expect_signalled(r, "read of a PROT_NONE page")?;
    }
    Ok(())
}

fn fail(step: usize, op: Op, e: impl std::fmt::Debug) -> TestCaseError {
    TestCaseError::fail(format!("step {step}: {op:?} failed: {e:?}"))
}

fn model<F: FrameAllocator, P: PagingFormat>(policy: ForkPolicy) {
    let cases = std::env::var("VMSTORM_MODEL_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(24);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let result = runner.run(&prop::collection::vec(op(), 1..60), |ops| run::<F, P>(policy, &ops));
    if let Err(e) = result {
        panic!("{}", e);
    }
}

vmstorm_core::every_strategy!(server_vs_model, model);

/// Copy-on-write survives protection round trips: after a fork, taking write permission
/// away and giving it back (through read-only or no access) must not let either side
/// write into the frame the other still reads.
fn cow_survives_protection_changes<F: FrameAllocator, P: PagingFormat>(policy: ForkPolicy) {
    let mut vm: Vm<F, P> = boot_sized(16 * MIB, 32, policy);
    let free_at_boot = vm.free_frames();
    let parent = client::fork(&mut vm, INIT_PROC_NR).unwrap();
    let args = MmapArgs {
        addr: None,
        len: 2 * PAGE_SIZE,
        prot: MapProt::RW,
        flags: MapFlags::ANON | MapFlags::PRIVATE,
    };
    let va = client::mmap(&mut vm, parent, &args).unwrap();
    client::write_user(&mut vm, parent, va, b"before").unwrap();
    client::write_user(&mut vm, parent, VirtAddr(va.0 + PAGE_SIZE), b"page 2").unwrap();
    let child = client::fork(&mut vm, parent).unwrap();
    let read = |vm: &mut Vm<F, P>, who, at: VirtAddr| {
        let mut b = [0u8; 6];
        client::read_user(vm, who, at, &mut b).unwrap();
        b
    };
    for (writer, reader, via) in [(parent, child, MapProt::READ), (child, parent, MapProt::NONE)] {
        client::mprotect(&mut vm, writer, va, 2 * PAGE_SIZE, via).unwrap();
        client::mprotect(&mut vm, writer, va, 2 * PAGE_SIZE, MapProt::RW).unwrap();
        let mine = if writer == parent { b"PARENT" } else { b"CHILD!" };
        client::write_user(&mut vm, writer, va, mine).unwrap();
        assert_eq!(&read(&mut vm, writer, va), mine);
        let theirs = read(&mut vm, reader, va);
        assert_ne!(&theirs, mine, "{writer:?}'s write after mprotect {via:?} reached {reader:?}");
        check(&vm);
    }
    assert_eq!(&read(&mut vm, child, va), b"CHILD!");
    assert_eq!(&read(&mut vm, parent, va), b"PARENT");
    // Discarding the child's copy refaults zero there and leaves the parent's page alone.
    client::discard(&mut vm, child, VirtAddr(va.0 + PAGE_SIZE), PAGE_SIZE).unwrap();
    assert_eq!(read(&mut vm, child, VirtAddr(va.0 + PAGE_SIZE)), [0; 6]);
    assert_eq!(&read(&mut vm, parent, VirtAddr(va.0 + PAGE_SIZE)), b"page 2");
    // The parent moves the mapping (mremap): the child keeps its copy at the old place.
    let moved = client::mremap(&mut vm, parent, va, 2 * PAGE_SIZE, 5 * PAGE_SIZE, true).unwrap();
    client::write_user(&mut vm, parent, moved, b"MOVED!").unwrap();
    assert_eq!(&read(&mut vm, child, va), b"CHILD!");
    assert_eq!(&read(&mut vm, parent, VirtAddr(moved.0 + PAGE_SIZE)), b"page 2");
    // The parent execs: the child keeps the old contents.
    let image = ExecImage { text_bytes: PAGE_SIZE, data_bytes: PAGE_SIZE, bss_bytes: 0, stack_bytes: 8192 };
    client::exec(&mut vm, parent, &image).unwrap();
    assert_eq!(&read(&mut vm, child, va), b"CHILD!");
    client::exit(&mut vm, child).unwrap();
    client::exit(&mut vm, parent).unwrap();
    check(&vm);
    assert_eq!(vm.free_frames(), free_at_boot, "frames leaked");
}

vmstorm_core::every_strategy!(cow_and_mprotect, cow_survives_protection_changes);
