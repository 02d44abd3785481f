//! Property test: random sequences of map / map_range / map_huge (a `PS` directory entry;
//! unmap and protect of part of it split it, a copy-on-write write splits it first) /
//! unmap_range / protect_range /
//! writes through the soft MMU (breaking COW by hand, as the fault path does) /
//! fork_copy (copy-on-write, eager, and on-demand with shared leaf tables, whose first
//! write goes through `unshare` as the fault path does) / destroy, on both formats,
//! against a `BTreeMap` model. After every step
//! the mappings, the page contents (read through the MMU) and every reference count must
//! agree with the model; after destroying every space no frame is left allocated.

mod support;

use proptest::prelude::*;
use std::collections::BTreeMap;
use support::{check_refs, phys, VecAlloc};
use vmstorm_core::mmu::{read_bytes, write_bytes, CopyError};
use vmstorm_core::paging::PagingError;
use vmstorm_core::{
    FaultCode, ForkPolicy, Frame, LeafLink, Mapping, PageFlags, PageSpan, PagingFormat, PhysMem, VirtAddr,
    I386, X86_64,
};

const MAX_SPACES: usize = 4;

#[derive(Clone, Debug)]
enum Op {
    Map { space: usize, page: u64, write: bool, shared: bool },
    MapRange { space: usize, page: u64, len: u64, write: bool, shared: bool },
    MapHuge { space: usize, page: u64, write: bool },
    Unmap { space: usize, page: u64, len: u64 },
    Protect { space: usize, page: u64, len: u64, write: bool },
    Write { space: usize, page: u64, byte: u8 },
    Fork { space: usize, mode: ForkPolicy },
    Destroy { space: usize },
}

/// Page numbers near table boundaries of both formats, plus the top of the space.
fn page(top: u64) -> impl Strategy<Value = u64> {
    let bases = vec![0u64, 0x1f8, 0x3f8, 0x4_0000, 0x7_fff0, top - 24];
    (proptest::sample::select(bases), 0u64..24).prop_map(|(b, o)| b + o)
}

fn op(top: u64) -> impl Strategy<Value = Op> {
    let s = 0..MAX_SPACES;
    prop_oneof![
        1 => (s.clone(), page(top), any::<bool>(), any::<bool>())
            .prop_map(|(space, page, write, shared)| Op::Map { space, page, write, shared }),
        3 => (s.clone(), page(top), 1u64..40, any::<bool>(), any::<bool>())
            .prop_map(|(space, page, len, write, shared)| Op::MapRange { space, page, len, write, shared }),
        1 => (s.clone(), page(top), any::<bool>()).prop_map(|(space, page, write)| Op::MapHuge { space, page, write }),
        2 => (s.clone(), page(top), 1u64..600).prop_map(|(space, page, len)| Op::Unmap { space, page, len }),
        2 => (s.clone(), page(top), 1u64..60, any::<bool>())
            .prop_map(|(space, page, len, write)| Op::Protect { space, page, len, write }),
        3 => (s.clone(), page(top), any::<u8>()).prop_map(|(space, page, byte)| Op::Write { space, page, byte }),
        2 => (s.clone(), proptest::sample::select(vec![ForkPolicy::Cow, ForkPolicy::Copy, ForkPolicy::Share]))
            .prop_map(|(space, mode)| Op::Fork { space, mode }),
        1 => s.prop_map(|space| Op::Destroy { space }),
    ]
}

#[derive(Clone, Copy, Debug)]
struct ModelPage {
    obj: usize,
    write: bool,
    shared: bool,
}

#[derive(Default)]
struct Model {
    spaces: Vec<Option<(Frame, BTreeMap<u64, ModelPage>)>>,
    objects: Vec<u8>,
}

struct World<P> {
    mem: PhysMem<VecAlloc>,
    model: Model,
    _p: core::marker::PhantomData<P>,
}

fn va(page: u64) -> VirtAddr {
    VirtAddr(page << 12)
}

fn flags(write: bool, shared: bool) -> PageFlags {
    let mut f = PageFlags::USER;
    if write {
        f |= PageFlags::WRITE;
    }
    if shared {
        f |= PageFlags::SHARED;
    }
    f
}

impl<P: PagingFormat> World<P> {
    fn new() -> Self {
        let mut w =
            World { mem: phys::<VecAlloc>(8192), model: Model::default(), _p: core::marker::PhantomData };
        let root = P::new_root(&mut w.mem).unwrap();
        w.model.spaces.push(Some((root, BTreeMap::new())));
        w
    }

    /// The live space number `i` (modulo the number of live spaces).
    fn slot(&self, i: usize) -> Option<usize> {
        let live: Vec<usize> =
            (0..self.model.spaces.len()).filter(|&s| self.model.spaces[s].is_some()).collect();
        (!live.is_empty()).then(|| live[i % live.len()])
    }

    fn space(&mut self, i: usize) -> Option<(Frame, &mut BTreeMap<u64, ModelPage>)> {
        let s = self.slot(i)?;
        self.model.spaces[s].as_mut().map(|(r, m)| (*r, m))
    }

    /// A new frame holding `fill` everywhere, and its model object.
    fn new_frame(&mut self, fill: u8) -> Option<(Frame, usize)> {
        let f = self.mem.alloc_frame()?;
        self.mem.arena_mut().frame_mut(f).fill(fill);
        self.model.objects.push(fill);
        Some((f, self.model.objects.len() - 1))
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Map { space, page, write, shared } => {
                let fill = page as u8 ^ 0x5a;
                let Some((root, _)) = self.space(space) else { return };
                let Some((f, obj)) = self.new_frame(fill) else { return };
                let r =
                    P::map(&mut self.mem, root, va(page), Mapping { frame: f, flags: flags(write, shared) });
                let (_, m) = self.space(space).unwrap();
                match m.entry(page) {
                    std::collections::btree_map::Entry::Occupied(_) => {
                        assert_eq!(r, Err(PagingError::AlreadyMapped(va(page))));
                        self.mem.unref(f);
                    }
                    std::collections::btree_map::Entry::Vacant(v) => {
                        r.unwrap();
                        v.insert(ModelPage { obj, write, shared });
                    }
                }
            }
            Op::MapRange { space, page, len, write, shared } => {
                let Some((root, _)) = self.space(space) else { return };
                let Some(first) = self.mem.alloc_contiguous(len, 1) else { return };
                let objs = self.model.objects.len();
                for i in 0..len {
                    let fill = (first.0 + i) as u8;
                    self.mem.arena_mut().frame_mut(first.add(i)).fill(fill);
                    self.model.objects.push(fill);
                }
                let span = PageSpan::new(va(page), len).unwrap();
                let r = P::map_range(&mut self.mem, root, span, first, flags(write, shared));
                let (_, m) = self.space(space).unwrap();
                let top = P::VA_END >> 12;
                if page + len > top {
                    assert_eq!(r, Err(PagingError::AddressOutOfRange(va(top))));
                    for i in 0..len {
                        self.mem.unref(first.add(i));
                    }
                } else if let Some((&clash, _)) = m.range(page..page + len).next() {
                    assert_eq!(r, Err(PagingError::AlreadyMapped(va(clash))));
                    for i in 0..len {
                        self.mem.unref(first.add(i));
                    }
                } else {
                    r.unwrap();
                    for i in 0..len {
                        m.insert(page + i, ModelPage { obj: objs + i as usize, write, shared });
                    }
                }
            }
            Op::MapHuge { space, page, write } => {
                let n = P::HUGE_PAGES;
                let page = page & !(n - 1);
                let Some((root, _)) = self.space(space) else { return };
                let Some(first) = self.mem.alloc_contiguous(n, n) else { return };
                let objs = self.model.objects.len();
                for i in 0..n {
                    let fill = (first.0 + i) as u8 ^ 0xa5;
                    self.mem.arena_mut().frame_mut(first.add(i)).fill(fill);
                    self.model.objects.push(fill);
                }
                let r = P::map_huge(&mut self.mem, root, va(page), first, flags(write, false));
                let (_, m) = self.space(space).unwrap();
                if m.range(page..page + n).next().is_some() {
                    assert_eq!(r, Err(PagingError::AlreadyMapped(va(page))));
                    for i in 0..n {
                        self.mem.unref(first.add(i));
                    }
                } else {
                    r.unwrap();
                    for i in 0..n {
                        m.insert(page + i, ModelPage { obj: objs + i as usize, write, shared: false });
                    }
                }
            }
            Op::Unmap { space, page, len } => {
                let Some((root, _)) = self.space(space) else { return };
                let n = P::unmap_range(&mut self.mem, root, PageSpan::new(va(page), len).unwrap()).unwrap();
                let (_, m) = self.space(space).unwrap();
                let gone: Vec<u64> = m.range(page..page + len).map(|(&p, _)| p).collect();
                assert_eq!(n, gone.len() as u64);
                for p in gone {
                    m.remove(&p);
                }
            }
            Op::Protect { space, page, len, write } => {
                let Some((root, _)) = self.space(space) else { return };
                let span = PageSpan::new(va(page), len).unwrap();
                let (set, clear) = if write {
                    (PageFlags::WRITE, PageFlags::EMPTY)
                } else {
                    (PageFlags::EMPTY, PageFlags::WRITE)
                };
                P::protect_range(&mut self.mem, root, span, set, clear).unwrap();
                let (_, m) = self.space(space).unwrap();
                for (_, p) in m.range_mut(page..page + len) {
                    p.write = write;
                }
            }
            Op::Write { space, page, byte } => {
                let Some((root, m)) = self.space(space) else { return };
                let Some(&mp) = m.get(&page) else {
                    let r = write_bytes::<P>(self.mem.arena_mut(), root, va(page), &[byte]);
                    let code = FaultCode(FaultCode::WRITE | FaultCode::USER);
                    assert_eq!(r, Err(CopyError::Fault { va: va(page), code }));
                    return;
                };
                let data = [byte; 3];
                let at = VirtAddr(va(page).0 + 0xffd); // the last bytes of the page
                let mut r = write_bytes::<P>(self.mem.arena_mut(), root, at, &data);
                if mp.write && r.is_err() {
                    let code = FaultCode(FaultCode::PRESENT | FaultCode::WRITE | FaultCode::USER);
                    assert_eq!(r, Err(CopyError::Fault { va: at, code }));
                    // The fault path's job, done by hand here: first make a shared leaf
                    // table this space's own, then break copy-on-write. An odd byte takes
                    // the steps on one kept walk, as the fault path does; an even one the
                    // calls that walk from the root.
                    let cur = if byte & 1 == 1 {
                        let mut w = P::walk(&self.mem, root, va(page));
                        P::unshare_at(&mut self.mem, &mut w).expect("frames for an unshare");
                        assert_eq!(w, P::walk(&self.mem, root, va(page)), "the walk followed the change");
                        w.mapping.unwrap()
                    } else {
                        P::unshare(&mut self.mem, root, va(page)).expect("frames for an unshare").unwrap()
                    };
                    assert_eq!(Some(cur), P::translate(self.mem.arena(), root, va(page)));
                    r = write_bytes::<P>(self.mem.arena_mut(), root, at, &data);
                }
                if mp.write && r.is_err() {
                    let code = FaultCode(FaultCode::PRESENT | FaultCode::WRITE | FaultCode::USER);
                    assert_eq!(r, Err(CopyError::Fault { va: at, code }));
                    // A huge entry is split first (the fault path's fallback for a
                    // shared block); the split changes no mapping.
                    let mut w = P::walk(&self.mem, root, va(page));
                    if w.link == LeafLink::Huge {
                        let before = P::translate(self.mem.arena(), root, va(page));
                        P::split_at(&mut self.mem, &mut w).expect("a frame for a split");
                        assert_eq!(w, P::walk(&self.mem, root, va(page)), "the walk followed the split");
                        assert_eq!(before, P::translate(self.mem.arena(), root, va(page)));
                    }
                    let cur = P::translate(self.mem.arena(), root, va(page)).unwrap();
                    assert!(cur.flags.contains(PageFlags::COW), "{cur:?}");
                    let new = self.mem.alloc_frame().expect("frames for a COW copy");
                    self.mem.arena_mut().copy_frame(cur.frame, new);
                    let fl = cur.flags.difference(PageFlags::COW) | PageFlags::WRITE;
                    let copy = Mapping { frame: new, flags: fl };
                    if byte & 1 == 1 {
                        let mut w = P::walk(&self.mem, root, va(page));
                        assert_eq!(P::replace_at(&mut self.mem, &mut w, copy).unwrap(), cur);
                        assert_eq!(w, P::walk(&self.mem, root, va(page)), "the walk followed the change");
                    } else {
                        P::replace(&mut self.mem, root, va(page), copy).unwrap();
                    }
                    let obj = self.model.objects[mp.obj];
                    self.model.objects.push(obj);
                    let new_obj = self.model.objects.len() - 1;
                    let (_, m) = self.space(space).unwrap();
                    m.get_mut(&page).unwrap().obj = new_obj;
                    r = write_bytes::<P>(self.mem.arena_mut(), root, at, &data);
                }
                let (_, m) = self.space(space).unwrap();
                let mp = m[&page];
                if mp.write {
                    r.unwrap();
                    self.model.objects[mp.obj] = byte;
                } else {
                    let code = FaultCode(FaultCode::PRESENT | FaultCode::WRITE | FaultCode::USER);
                    assert_eq!(r, Err(CopyError::Fault { va: at, code }));
                }
            }
            Op::Fork { space, mode } => {
                if self.model.spaces.iter().filter(|s| s.is_some()).count() >= MAX_SPACES {
                    return;
                }
                let Some((root, m)) = self.space(space) else { return };
                let m = m.clone();
                let child = match P::fork_copy(&mut self.mem, root, mode) {
                    Ok(c) => c,
                    // Eager fork copies a huge block into a new aligned block: there may be
                    // none free (the parent is untouched then).
                    Err(PagingError::OutOfFrames) if mode == ForkPolicy::Copy => return,
                    Err(e) => panic!("fork: {e}"),
                };
                let mut cm = BTreeMap::new();
                for (&p, &mp) in &m {
                    let obj = if mp.shared {
                        mp.obj
                    } else {
                        self.model.objects.push(self.model.objects[mp.obj]);
                        self.model.objects.len() - 1
                    };
                    cm.insert(p, ModelPage { obj, ..mp });
                }
                self.model.spaces.push(Some((child, cm)));
            }
            Op::Destroy { space } => {
                // Keep one space alive so that the sequence goes on doing something.
                if self.model.spaces.iter().flatten().count() < 2 {
                    return;
                }
                let s = self.slot(space).unwrap();
                let (root, _) = self.model.spaces[s].take().unwrap();
                P::destroy(&mut self.mem, root);
            }
        }
    }

    fn check(&mut self) {
        let roots: Vec<Frame> = self.model.spaces.iter().flatten().map(|(r, _)| *r).collect();
        check_refs::<P, _>(&self.mem, &roots, &[]);
        for (root, m) in self.model.spaces.iter().flatten() {
            // Leaf tables behind a read-only link (on-demand fork): writes fault there first.
            let mut read_only = Vec::new();
            P::for_each_leaf_table(self.mem.arena(), *root, &mut |v, t, w| {
                if !w {
                    read_only.push(v.page_number());
                }
                assert!(w || self.mem.refs().get(t) >= 1);
            });
            let behind_read_only_link = |p: u64| {
                let leaf_pages = if P::NAME == "i386" { 1024 } else { 512 };
                read_only.contains(&(p & !(leaf_pages - 1)))
            };
            let mut seen = BTreeMap::new();
            let all = PageSpan { start: VirtAddr(0), pages: P::VA_END >> 12 };
            P::for_each_mapping(self.mem.arena(), *root, all, &mut |v, mp| {
                seen.insert(v.page_number(), mp);
            });
            assert_eq!(seen.keys().collect::<Vec<_>>(), m.keys().collect::<Vec<_>>());
            for (p, mp) in m {
                assert_eq!(P::translate(self.mem.arena(), *root, va(*p)), Some(seen[p]), "page {p:#x}");
                for q in [p.wrapping_sub(1), p + 1, p + 512, p.wrapping_sub(1024)] {
                    if q < P::VA_END >> 12 && !m.contains_key(&q) {
                        assert_eq!(P::translate(self.mem.arena(), *root, va(q)), None, "page {q:#x}");
                    }
                }
                let fl = seen[p].flags;
                let writable = fl.intersects(PageFlags::WRITE | PageFlags::COW);
                assert_eq!(writable, mp.write, "page {p:#x} {fl:?}");
                assert_eq!(fl.contains(PageFlags::SHARED), mp.shared);
                assert!(!(fl.contains(PageFlags::WRITE) && fl.contains(PageFlags::COW)));
                if !mp.shared && fl.contains(PageFlags::WRITE) && !behind_read_only_link(*p) {
                    assert_eq!(
                        self.mem.refs().get(seen[p].frame),
                        1,
                        "writable private page {p:#x} is shared"
                    );
                }
            }
            // Contents last: a read sets ACCESSED, in a huge entry for its whole block.
            for (p, mp) in m {
                let mut b = [0u8; 1];
                read_bytes::<P>(self.mem.arena_mut(), *root, VirtAddr(va(*p).0 + 0xfff), &mut b).unwrap();
                assert_eq!(b[0], self.model.objects[mp.obj], "contents of page {p:#x}");
            }
        }
    }

    fn destroy_all(&mut self) {
        for (root, _) in self.model.spaces.iter_mut().filter_map(Option::take) {
            P::destroy(&mut self.mem, root);
        }
    }
}

fn run<P: PagingFormat>(ops: &[Op]) {
    let mut w = World::<P>::new();
    let start_free = w.mem.free_frames() + 1; // the first root
    for op in ops {
        w.apply(op);
        w.check();
    }
    w.destroy_all();
    assert_eq!(w.mem.free_frames(), start_free, "frames leaked");
    assert_eq!(w.mem.table_frames(), 0);
    assert!(w.mem.refs().as_slice().iter().all(|&c| c == 0));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn x86_64_matches_the_model(ops in proptest::collection::vec(op(X86_64::VA_END >> 12), 1..40)) {
        run::<X86_64>(&ops);
    }

    #[test]
    fn i386_matches_the_model(ops in proptest::collection::vec(op(I386::VA_END >> 12), 1..40)) {
        run::<I386>(&ops);
    }
}
