//! The whole server against a small reference model, over random op sequences.
//!
//! The model is a map from (process, page) to what the page holds and how it may be
//! accessed, plus each process's heap size. Private pages are copied into a forked child,
//! shared pages keep one cell every process mapping them sees: MAP_SHARED memory across
//! fork, and System V segments an IPC service attaches into other processes (VM_REMAP)
//! and detaches again (VM_SHM_UNMAP). `mremap` shrinks, grows in place or moves a private
//! mapping; the model predicts which, and what the moved and grown pages hold. Every op
//! goes through the client (the messages PM, libc, IPC and the kernel send); after each
//! one the server's invariants must hold, every read must return what the model says, a
//! write to a shared page must be seen by every process mapping it, and a refused call
//! must leave the server exactly as it was. At the end every process exits and every
//! frame is free again. Run for every allocator × paging format × fork policy.

mod support;

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use vmstorm_core::acl::CallMask;
use vmstorm_core::client::{self, ExecImage, MapFlags, MapProt, MmapArgs, TouchError};
use vmstorm_core::endpoint::{Endpoint, INIT_PROC_NR};
use vmstorm_core::message::{Message, VM_REMAP, VM_SHM_UNMAP};
use vmstorm_core::{Access, Errno, ForkPolicy, FrameAllocator, PagingFormat, VirtAddr, Vm, PAGE_SIZE};

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
    Mmap {
        p: u8,
        pages: u8,
        prot: u8,
        shared: bool,
    },
    Munmap {
        p: u8,
        at: u16,
        pages: u8,
    },
    Brk {
        p: u8,
        delta: i8,
    },
    Mprotect {
        p: u8,
        at: u16,
        pages: u8,
        prot: u8,
    },
    Discard {
        p: u8,
        at: u16,
        pages: u8,
    },
    Touch {
        p: u8,
        at: u16,
        write: bool,
    },
    Write {
        p: u8,
        at: u16,
        value: u8,
    },
    Read {
        p: u8,
        at: u16,
    },
    /// `mremap` of up to `pages` pages of one mapping to `pages + delta` pages (at least one).
    Mremap {
        p: u8,
        at: u16,
        pages: u8,
        delta: i8,
        may_move: bool,
    },
    /// IPC attaches process `from`'s shared region holding its `at`-th page into `to`.
    Remap {
        from: u8,
        to: u8,
        at: u16,
    },
    /// IPC detaches the shared region holding process `p`'s `at`-th page.
    ShmUnmap {
        p: u8,
        at: u16,
    },
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
        3 => (any::<u8>(), any::<u16>(), 1u8..4, -2i8..5, prop::bool::weighted(0.75))
            .prop_map(|(p, at, pages, delta, may_move)| Op::Mremap { p, at, pages, delta, may_move }),
        2 => (any::<u8>(), any::<u8>(), any::<u16>()).prop_map(|(from, to, at)| Op::Remap { from, to, at }),
        1 => (any::<u8>(), any::<u16>()).prop_map(|(p, at)| Op::ShmUnmap { p, at }),
    ]
}

/// What the model knows of one page.
#[derive(Clone, Copy, Debug)]
struct Page {
    prot: MapProt,
    /// Index into `Model::cells` (shared pages share a cell).
    cell: usize,
    shared: bool,
    /// Created by brk (else by mmap, mremap or VM_REMAP).
    heap: bool,
    /// Which mapping the page belongs to: pages of one id that are next to each other lie
    /// in one server region (mprotect gives its range new ids, as it splits regions there;
    /// shared regions never merge, so for them a run of one id is exactly a region).
    id: u32,
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
    /// The last mapping id handed out (0 is the heap's).
    last_id: u32,
}

impl Model {
    fn cell(&mut self, value: u8) -> usize {
        self.cells.push(value);
        self.cells.len() - 1
    }

    fn id(&mut self) -> u32 {
        self.last_id += 1;
        self.last_id
    }

    /// The `at`-th shared page of process `p` (modulo).
    fn pick_shared(&self, p: usize, at: u16) -> Option<u64> {
        let pages: Vec<u64> =
            self.procs[p].pages.iter().filter(|(_, pg)| pg.shared).map(|(&va, _)| va).collect();
        (!pages.is_empty()).then(|| pages[at as usize % pages.len()])
    }

    /// The run of pages around `va` with `va`'s mapping id: (first page, pages).
    fn mapping_at(&self, p: usize, va: u64) -> (u64, u64) {
        let pages = &self.procs[p].pages;
        let id = pages[&va].id;
        let same = |a: u64| pages.get(&a).is_some_and(|pg| pg.id == id);
        let mut start = va;
        while start >= PAGE_SIZE && same(start - PAGE_SIZE) {
            start -= PAGE_SIZE;
        }
        let mut end = va + PAGE_SIZE;
        while same(end) {
            end += PAGE_SIZE;
        }
        (start, (end - start) / PAGE_SIZE)
    }

    /// Whether process `p` has no page in `[from, to)`.
    fn free(&self, p: usize, from: u64, to: u64) -> bool {
        self.procs[p].pages.range(from..to).next().is_none()
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
    // Large folios on one case in three (16 KiB, 64 KiB): a write fault then maps pages
    // the model has not touched yet, which must read as zero when it does.
    // Huge pages on one case in four, with mmap lengths of half a block per unit (from half
    // a block to three blocks) so that regions hold whole aligned blocks, and a larger
    // arena: write faults then map
    // whole blocks, reads the huge zero page, and munmap, mprotect, mremap, discard, brk
    // and copy-on-write split them.
    use vmstorm_core::{FolioSize, HugePolicy, VmConfig};
    let folio = [FolioSize::K4, FolioSize::K16, FolioSize::K64][ops.len() % 3];
    let huge = if ops.len() % 4 == 3 { HugePolicy::Always } else { HugePolicy::Never };
    let (scale, bytes) =
        if huge == HugePolicy::Always { (P::HUGE_PAGES / 2, 128 * MIB) } else { (1, 32 * MIB) };
    let cfg = VmConfig { fork: policy, slots: 32, folio, huge, ..VmConfig::with_bytes(bytes) };
    let mut vm = Vm::<F, P>::boot(cfg).expect("boot");
    check(&vm);
    let free_at_boot = vm.free_frames();
    // The IPC service, allowed to attach and detach shared segments (it maps none itself).
    let ipc = client::fork(&mut vm, INIT_PROC_NR).expect("fork from INIT");
    client::rs_set_priv(&mut vm, ipc, CallMask::BASIC.union(CallMask::of(&[VM_REMAP, VM_SHM_UNMAP])))
        .expect("rs_set_priv");
    let first = client::fork(&mut vm, INIT_PROC_NR).expect("fork from INIT");
    let image =
        ExecImage { text_bytes: 3 * PAGE_SIZE, data_bytes: PAGE_SIZE, bss_bytes: 100, stack_bytes: 8192 };
    let layout = client::exec(&mut vm, first, &image).expect("exec");
    let heap_base = layout.brk.0.div_ceil(PAGE_SIZE) * PAGE_SIZE;
    let mut m = Model {
        procs: vec![Proc { ep: first, pages: BTreeMap::new(), heap_base, heap_pages: 0 }],
        cells: Vec::new(),
        last_id: 0,
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
                let pages = pages as u64 * scale;
                let len = pages * PAGE_SIZE;
                let args = MmapArgs { addr: None, len, prot, flags };
                let va = client::mmap(&mut vm, m.procs[i].ep, &args).map_err(|e| fail(step, op, e))?;
                prop_assert_eq!(va.0 % PAGE_SIZE, 0, "unaligned mmap address");
                let id = m.id();
                for k in 0..pages {
                    let at = va.0 + k * PAGE_SIZE;
                    prop_assert!(!m.procs[i].pages.contains_key(&at), "mmap at {:#x} overlaps a mapping", at);
                    let hb = m.procs[i].heap_base;
                    prop_assert!(at < hb || at >= hb + (m.procs[i].heap_pages + 1) * PAGE_SIZE);
                    let cell = m.cell(0);
                    m.procs[i].pages.insert(at, Page { prot, cell, shared, heap: false, id });
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
                // Growing needs the pages up to the new end free (the one-page gap is kept
                // only against the stack, far above).
                let clear = new_end <= old_end || m.free(i, old_end, new_end);
                let before = vm.snapshot();
                match client::brk(&mut vm, ep, VirtAddr(new_end)) {
                    Ok(()) => {
                        for k in new_pages..old {
                            m.procs[i].pages.remove(&(base + k * PAGE_SIZE));
                        }
                        for k in old..new_pages {
                            let cell = m.cell(0);
                            let page = Page { prot: MapProt::RW, cell, shared: false, heap: true, id: 0 };
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
                // The server splits its regions at the range's ends: new ids inside.
                let mut renamed = BTreeMap::new();
                for j in 0..k {
                    let old = m.procs[i].pages[&(va + j * PAGE_SIZE)].id;
                    let id = *renamed.entry(old).or_insert_with(|| m.id());
                    let pg = m.procs[i].pages.get_mut(&(va + j * PAGE_SIZE)).expect("page");
                    pg.prot = prot;
                    pg.id = id;
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
                    if pg.shared {
                        // Every process mapping the page sees the write, wherever it has it.
                        for j in 0..n {
                            let at: Vec<u64> = m.procs[j]
                                .pages
                                .iter()
                                .filter(|(_, q)| q.cell == pg.cell)
                                .map(|(&a, _)| a)
                                .collect();
                            for a in at {
                                check_page(&mut vm, &m, j, a, step)?;
                            }
                        }
                    }
                } else {
                    expect_signalled(r, "write to a read-only page")?;
                }
            }
            Op::Read { p, at } => {
                let i = p as usize % n;
                let Some(va) = m.pick(i, at, false) else { continue };
                check_page(&mut vm, &m, i, va, step)?;
            }
            Op::Mremap { p, at, pages, delta, may_move } => {
                let i = p as usize % n;
                let Some(va) = m.pick(i, at, true) else { continue };
                // Up to `pages` pages of va's mapping: inside one region.
                let (start, len) = m.mapping_at(i, va);
                let k = (pages as u64).min((start + len * PAGE_SIZE - va) / PAGE_SIZE);
                let new = (k as i64 + delta as i64).max(1) as u64;
                let old_end = va + k * PAGE_SIZE;
                let new_end = va + new * PAGE_SIZE;
                let pg = m.procs[i].pages[&va];
                let ep = m.procs[i].ep;
                let before = vm.snapshot();
                let r = client::mremap(&mut vm, ep, VirtAddr(va), k * PAGE_SIZE, new * PAGE_SIZE, may_move);
                let refused = |vm: &Vm<F, P>, r: Result<VirtAddr, Errno>, want: Errno| {
                    prop_assert_eq!(r, Err(want), "step {}: {:?} on {:?}", step, op, pg);
                    assert_same(&vm.snapshot(), &before, "a refused mremap changed the state");
                    Ok(())
                };
                if new <= k {
                    // Shrinking (any mapping) unmaps the tail and stays in place.
                    prop_assert_eq!(r, Ok(VirtAddr(va)), "step {}: {:?}", step, op);
                    for j in new..k {
                        m.procs[i].pages.remove(&(va + j * PAGE_SIZE));
                    }
                } else if pg.shared {
                    refused(&vm, r, Errno::EINVAL)?;
                } else if m.free(i, old_end, new_end) {
                    // The pages above are free (so the region ends here): grows in place.
                    prop_assert_eq!(r, Ok(VirtAddr(va)), "step {}: {:?}", step, op);
                    for j in k..new {
                        let cell = m.cell(0);
                        m.procs[i].pages.insert(va + j * PAGE_SIZE, Page { cell, ..pg });
                    }
                } else if !may_move {
                    refused(&vm, r, Errno::ENOMEM)?;
                } else {
                    // Moves: the old pages' contents at the new place, zero above them.
                    let to = r.map_err(|e| fail(step, op, e))?.0;
                    prop_assert_eq!(to % PAGE_SIZE, 0, "unaligned mremap address");
                    prop_assert!(to != va, "step {}: {:?} did not move", step, op);
                    let id = m.id();
                    let moved: Vec<Page> = (0..k)
                        .map(|j| m.procs[i].pages.remove(&(va + j * PAGE_SIZE)).expect("page"))
                        .collect();
                    prop_assert!(
                        m.free(i, to, to + new * PAGE_SIZE),
                        "mremap to {:#x} overlaps a mapping",
                        to
                    );
                    for j in 0..new {
                        let cell = match moved.get(j as usize) {
                            Some(old) => old.cell,
                            None => m.cell(0),
                        };
                        let prot = moved.get(j as usize).map_or(pg.prot, |old| old.prot);
                        m.procs[i].pages.insert(to + j * PAGE_SIZE, Page { prot, cell, id, ..pg });
                    }
                    let mut probe = [0u8; 1];
                    let r = client::read_user(&mut vm, ep, VirtAddr(va), &mut probe);
                    if !m.procs[i].pages.contains_key(&va) {
                        expect_signalled(r, "read of a page moved away")?;
                    }
                }
            }
            Op::Remap { from, to, at } => {
                let (s, d) = (from as usize % n, to as usize % n);
                let Some(va) = m.pick_shared(s, at) else { continue };
                let (start, len) = m.mapping_at(s, va);
                let mut msg = Message::new(ipc, VM_REMAP);
                msg.set_m1_i1(m.procs[d].ep.0)
                    .set_m1_i2(m.procs[s].ep.0)
                    .set_m1_p1(0)
                    .set_m1_p2(start)
                    .set_m1_i3((len * PAGE_SIZE) as i32);
                let at = client::call(&mut vm, &msg).map_err(|e| fail(step, op, e))?.m1_p3();
                prop_assert_eq!(at % PAGE_SIZE, 0, "unaligned VM_REMAP address");
                prop_assert!(m.free(d, at, at + len * PAGE_SIZE), "VM_REMAP to {:#x} overlaps a mapping", at);
                let id = m.id();
                for j in 0..len {
                    let src = m.procs[s].pages[&(start + j * PAGE_SIZE)];
                    m.procs[d].pages.insert(at + j * PAGE_SIZE, Page { id, ..src });
                }
            }
            Op::ShmUnmap { p, at } => {
                let i = p as usize % n;
                let Some(va) = m.pick_shared(i, at) else { continue };
                let (start, len) = m.mapping_at(i, va);
                let mut msg = Message::new(ipc, VM_SHM_UNMAP);
                msg.set_m2_i1(m.procs[i].ep.0).set_m2_l1(start as i64);
                client::call(&mut vm, &msg).map_err(|e| fail(step, op, e))?;
                for j in 0..len {
                    m.procs[i].pages.remove(&(start + j * PAGE_SIZE));
                }
                let mut probe = [0u8; 1];
                let r = client::read_user(&mut vm, m.procs[i].ep, VirtAddr(start), &mut probe);
                expect_signalled(r, "read of a detached segment")?;
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
    for ep in m.procs.iter().rev().map(|pr| pr.ep).chain([ipc]) {
        client::exit(&mut vm, ep).map_err(|e| TestCaseError::fail(format!("final exit of {ep:?}: {e:?}")))?;
    }
    check(&vm);
    // The huge zero page stays once allocated (pinned by the server).
    prop_assert_eq!(
        vm.free_frames() + vm.kept_frames(),
        free_at_boot,
        "frames leaked after every process exited"
    );
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

/// A fixed sequence through the model: a forked child keeps its contents while the parent
/// moves a written mapping with mremap and writes through the moved pages (the move found
/// under shared leaf tables, where a moved page stayed writable on a frame the child's
/// table still referenced).
fn mremap_move_after_fork<F: FrameAllocator, P: PagingFormat>(policy: ForkPolicy) {
    let mut ops = vec![Op::Mmap { p: 0, pages: 4, prot: 2, shared: false }];
    ops.extend((0..4).map(|k| Op::Write { p: 0, at: k, value: 1 + k as u8 }));
    ops.push(Op::Fork(0));
    // A mapping right above blocks growth in place: the first one moves.
    ops.push(Op::Mmap { p: 0, pages: 1, prot: 2, shared: false });
    ops.push(Op::Mremap { p: 0, at: 0, pages: 4, delta: 3, may_move: true });
    ops.extend((0..8).map(|k| Op::Write { p: 0, at: k, value: 0x40 + k as u8 }));
    ops.extend((0..4).map(|k| Op::Read { p: 1, at: k }));
    if let Err(e) = run::<F, P>(policy, &ops) {
        panic!("{e}");
    }
}

vmstorm_core::every_strategy!(mremap_move_isolation, mremap_move_after_fork);
