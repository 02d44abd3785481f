//! `--verify`: an observer of the replay ([`crate::replay`]) that checks what the processes
//! see, untimed.
//!
//! Every write touch stores a 16-byte signature (pid, place, page, generation) at the start
//! of the page, and every touch first checks the page holds what the model says: for private
//! memory, the last signature this process wrote or inherited at fork (zeros for memory that
//! is new, discarded or shrunk away); for shared mappings, the last signature any process
//! wrote to that page of the shared object, so every process mapping the page must see the
//! last write — after a write, the other processes mapping the page are probed too. After a
//! fork a sample of the child's pages is checked against the parent's, and after an exit a
//! sample of the parent's pages that the child overwrote (the child's writes must not show
//! through). The server's invariants are checked every `Verifier::new(check_every)` ops
//! and at the end, and when every process has exited the free-frame count must equal the one
//! after boot. The time spent here is kept apart and not counted in the run's throughput.
//!
//! This replaces the MINIX test suite's content checks (`test44`'s patterns in mapped pages)
//! and VM's `SANITYCHECK` runs.

use std::time::Duration;

use hashbrown::HashMap;
use vmstorm_core::client;
use vmstorm_core::{Endpoint, FrameAllocator, PagingFormat, SanityLevel, VirtAddr, Vm, PAGE_SIZE};

use crate::metrics::VerifyCounts;
use crate::op::{MapId, Pid, Place};

/// A 16-byte page signature.
type Sig = [u8; 16];
const ZERO: Sig = [0; 16];

/// Pages of a process, each with the last signature (absent = zeros).
type Contents = HashMap<u64, Sig>;

/// What the verifier needs to know of the replay's processes.
pub(crate) trait Spaces {
    /// The endpoint of a live process.
    fn endpoint(&self, pid: Pid) -> Option<Endpoint>;
    /// The base address and mapped pages of mapping `id` of `pid`.
    fn mapping(&self, pid: Pid, id: MapId) -> Option<(u64, u64)>;
}

/// One shared mapping's pages as every process mapping it must see them.
#[derive(Debug, Default)]
struct SharedObject {
    /// Mappings (process, id) that still map part of it.
    mappers: u32,
    /// Page index in the object -> last signature written.
    pages: Contents,
}

/// The model and counters of one verified replay.
#[derive(Debug)]
pub(crate) struct Verifier {
    check_every: u64,
    generation: u32,
    checked: u64,
    /// Time spent verifying (excluded from the run's seconds).
    pub(crate) time: Duration,
    private: HashMap<Pid, Contents>,
    /// The shared object behind each shared mapping of each process.
    objects_of: HashMap<Pid, HashMap<MapId, u32>>,
    shared: HashMap<u32, SharedObject>,
    next_object: u32,
}

const fn pages(n: u64) -> u64 {
    n * PAGE_SIZE
}

impl Verifier {
    /// A verifier that checks the server's invariants every `check_every` ops.
    pub(crate) fn new(check_every: u64) -> Verifier {
        Verifier {
            check_every: check_every.max(1),
            generation: 0,
            checked: 0,
            time: Duration::ZERO,
            private: HashMap::new(),
            objects_of: HashMap::new(),
            shared: HashMap::new(),
            next_object: 0,
        }
    }

    /// Checks that `va` of `ep` holds `want`.
    fn check<F: FrameAllocator, P: PagingFormat>(
        &mut self,
        vm: &mut Vm<F, P>,
        pid: Pid,
        ep: Endpoint,
        va: u64,
        want: Sig,
    ) -> Result<(), String> {
        let mut got = ZERO;
        client::read_user(vm, ep, VirtAddr(va), &mut got)
            .map_err(|e| format!("verify: reading {va:#x} of {pid}: {e}"))?;
        self.checked += 1;
        if got != want {
            return Err(format!(
                "verify: {pid} page {va:#x} holds {} but should hold {}",
                describe(&got),
                describe(&want)
            ));
        }
        Ok(())
    }

    /// After any op: the invariants, every `check_every` ops.
    pub(crate) fn after_op<F: FrameAllocator, P: PagingFormat>(
        &mut self,
        vm: &Vm<F, P>,
        played: u64,
    ) -> Result<(), String> {
        if played.is_multiple_of(self.check_every) {
            self.invariants(vm, SanityLevel::Functions)?;
        }
        Ok(())
    }

    fn invariants<F: FrameAllocator, P: PagingFormat>(
        &mut self,
        vm: &Vm<F, P>,
        level: SanityLevel,
    ) -> Result<(), String> {
        self.checked += 1;
        vm.check_invariants(level).map_err(|e| format!("server invariant broken: {e}"))
    }

    /// `child` was forked from `parent`: it inherits the parent's contents and shared
    /// mappings; a sample of both is checked in the child.
    pub(crate) fn forked<F: FrameAllocator, P: PagingFormat>(
        &mut self,
        vm: &mut Vm<F, P>,
        spaces: &impl Spaces,
        parent: Pid,
        child: Pid,
    ) -> Result<(), String> {
        let contents = self.private.get(&parent).cloned().unwrap_or_default();
        let objects = self.objects_of.get(&parent).cloned().unwrap_or_default();
        for o in objects.values() {
            if let Some(s) = self.shared.get_mut(o) {
                s.mappers += 1;
            }
        }
        let ep = spaces.endpoint(child).ok_or_else(|| format!("verify: {child} has no endpoint"))?;
        let sample: Vec<(u64, Sig)> = contents.iter().take(8).map(|(&va, &s)| (va, s)).collect();
        self.private.insert(child, contents);
        for (va, want) in sample {
            self.check(vm, child, ep, va, want)?;
        }
        let mut sample = Vec::new();
        for (&id, o) in &objects {
            let Some((base, live)) = spaces.mapping(child, id) else { continue };
            let Some(obj) = self.shared.get(o) else { continue };
            sample.extend(
                obj.pages.iter().filter(|(&k, _)| k < live).take(2).map(|(&k, &s)| (base + pages(k), s)),
            );
        }
        self.objects_of.insert(child, objects);
        for (va, want) in sample.into_iter().take(8) {
            self.check(vm, child, ep, va, want)?;
        }
        Ok(())
    }

    /// `pid` replaced its image: its memory is new.
    pub(crate) fn exec(&mut self, pid: Pid) {
        self.forget(pid);
    }

    /// `pid` (child of `parent`) exited: the parent's pages that differed from the child's
    /// must still hold the parent's contents (sampled).
    pub(crate) fn exited<F: FrameAllocator, P: PagingFormat>(
        &mut self,
        vm: &mut Vm<F, P>,
        spaces: &impl Spaces,
        pid: Pid,
        parent: Option<Pid>,
    ) -> Result<(), String> {
        let gone = self.private.remove(&pid).unwrap_or_default();
        self.forget(pid);
        let Some(parent) = parent else { return Ok(()) };
        let (Some(ep), Some(pp)) = (spaces.endpoint(parent), self.private.get(&parent)) else {
            return Ok(());
        };
        let sample: Vec<(u64, Sig)> = gone
            .iter()
            .filter_map(|(&va, sig)| pp.get(&va).filter(|s| *s != sig).map(|&s| (va, s)))
            .take(8)
            .collect();
        for (va, want) in sample {
            self.check(vm, parent, ep, va, want)?;
        }
        Ok(())
    }

    fn forget(&mut self, pid: Pid) {
        self.private.remove(&pid);
        if let Some(objects) = self.objects_of.remove(&pid) {
            for o in objects.into_values() {
                self.unlink(o);
            }
        }
    }

    fn unlink(&mut self, object: u32) {
        if let Some(s) = self.shared.get_mut(&object) {
            s.mappers -= 1;
            if s.mappers == 0 {
                self.shared.remove(&object);
            }
        }
    }

    /// Mapping `id` of `pid` is new (or replaces the old one of that id): zeros, and when
    /// `shared`, a new shared object.
    pub(crate) fn mapped(&mut self, pid: Pid, id: MapId, shared: bool) {
        let old = self.objects_of.get_mut(&pid).and_then(|m| m.remove(&id));
        if let Some(o) = old {
            self.unlink(o);
        }
        if shared {
            let o = self.next_object;
            self.next_object = self.next_object.wrapping_add(1);
            self.shared.insert(o, SharedObject { mappers: 1, pages: HashMap::new() });
            self.objects_of.entry(pid).or_default().insert(id, o);
        }
    }

    /// Mapping `id` of `pid` has no page left, or (shared) no longer maps the object's pages
    /// whole and readable: its pages are no longer checked in this process.
    pub(crate) fn unmapped(&mut self, pid: Pid, id: MapId) {
        if let Some(o) = self.objects_of.get_mut(&pid).and_then(|m| m.remove(&id)) {
            self.unlink(o);
        }
    }

    /// `len` bytes at `at` of `pid` are gone or zero again (private memory).
    pub(crate) fn dropped(&mut self, pid: Pid, at: u64, len: u64) {
        if let Some(model) = self.private.get_mut(&pid) {
            drop_range(model, at, len);
        }
    }

    /// Private pages `old..old + keep` of `pid` moved to `new`.
    pub(crate) fn moved(&mut self, pid: Pid, old: u64, keep: u64, new: u64) {
        let Some(model) = self.private.get_mut(&pid) else { return };
        if new == old {
            return;
        }
        let moved: Vec<(u64, Sig)> =
            model.iter().filter(|(&a, _)| a >= old && a < old + keep).map(|(&a, &s)| (a, s)).collect();
        for (a, _) in &moved {
            model.remove(a);
        }
        for (a, s) in moved {
            model.insert(a - old + new, s);
        }
    }

    /// `pid` touched `n` pages of `place` from `first` (downwards for the stack): check each,
    /// and on a write store a new signature. `shared` is the mapping id when the place is a
    /// shared mapping.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn touched<F: FrameAllocator, P: PagingFormat>(
        &mut self,
        vm: &mut Vm<F, P>,
        spaces: &impl Spaces,
        pid: Pid,
        ep: Endpoint,
        place: Place,
        first: u64,
        n: u64,
        write: bool,
        shared: Option<MapId>,
    ) -> Result<(), String> {
        let down = matches!(place, Place::Stack(_));
        let object = shared.and_then(|id| self.objects_of.get(&pid)?.get(&id).copied());
        if shared.is_some() && object.is_none() {
            // A shared mapping no longer modelled in this process (see `unmapped`).
            return Ok(());
        }
        for k in 0..n {
            let va = if down { first - pages(k) } else { first + pages(k) };
            let page = place.offset() + k;
            let want = match object {
                Some(o) => self.shared.get(&o).and_then(|s| s.pages.get(&page)).copied(),
                None => self.private.get(&pid).and_then(|m| m.get(&va)).copied(),
            };
            self.check(vm, pid, ep, va, want.unwrap_or(ZERO))?;
            if !write {
                continue;
            }
            self.generation = self.generation.wrapping_add(1);
            let sig = signature(pid, place, k, self.generation);
            client::write_user(vm, ep, VirtAddr(va), &sig)
                .map_err(|e| format!("verify: writing the signature at {va:#x}: {e}"))?;
            match object {
                Some(o) => {
                    if let Some(s) = self.shared.get_mut(&o) {
                        s.pages.insert(page, sig);
                    }
                    if k == 0 {
                        self.probe_sharers(vm, spaces, o, pid, page, sig)?;
                    }
                }
                None => {
                    self.private.entry(pid).or_default().insert(va, sig);
                }
            }
        }
        Ok(())
    }

    /// Every other process mapping page `page` of shared object `object` must see `sig`.
    fn probe_sharers<F: FrameAllocator, P: PagingFormat>(
        &mut self,
        vm: &mut Vm<F, P>,
        spaces: &impl Spaces,
        object: u32,
        writer: Pid,
        page: u64,
        sig: Sig,
    ) -> Result<(), String> {
        let mut others = Vec::new();
        for (&pid, objects) in &self.objects_of {
            if pid == writer {
                continue;
            }
            for (&id, &o) in objects {
                if o != object {
                    continue;
                }
                if let (Some(ep), Some((base, live))) = (spaces.endpoint(pid), spaces.mapping(pid, id)) {
                    if page < live {
                        others.push((pid, ep, base + pages(page)));
                    }
                }
            }
        }
        for (pid, ep, va) in others {
            self.check(vm, pid, ep, va, sig)
                .map_err(|e| format!("{e} (shared page {page} last written by {writer})"))?;
        }
        Ok(())
    }

    /// The end: every process has exited; the invariants hold in full and every frame is
    /// free again, but for the frames the server keeps for good (`Vm::kept_frames`: the huge
    /// zero page, made by a read fault after `boot_free` was counted).
    pub(crate) fn finish<F: FrameAllocator, P: PagingFormat>(
        &mut self,
        vm: &Vm<F, P>,
        boot_free: u64,
    ) -> Result<VerifyCounts, String> {
        self.invariants(vm, SanityLevel::Detail)?;
        let free = vm.free_frames() + vm.kept_frames();
        self.checked += 1;
        if free != boot_free {
            return Err(format!(
                "verify: {free} frames free after every process exited, {boot_free} after boot: {} leaked",
                boot_free as i64 - free as i64
            ));
        }
        Ok(VerifyCounts { checked: self.checked, ok: true, seconds: self.time.as_secs_f64() })
    }
}

fn drop_range(model: &mut Contents, at: u64, len: u64) {
    if model.is_empty() || len == 0 {
        return;
    }
    if len / PAGE_SIZE < model.len() as u64 {
        for k in 0..len / PAGE_SIZE {
            model.remove(&(at + pages(k)));
        }
    } else {
        model.retain(|&a, _| a < at || a >= at + len);
    }
}

fn signature(pid: Pid, place: Place, page: u64, generation: u32) -> Sig {
    let tag: u32 = match place {
        Place::Text(_) => 0xffff_fff1,
        Place::Data(_) => 0xffff_fff2,
        Place::Heap(_) => 0xffff_fff3,
        Place::Stack(_) => 0xffff_fff4,
        Place::Map(id, _) => id.0,
    };
    let mut s = [0u8; 16];
    s[0..4].copy_from_slice(&pid.0.to_le_bytes());
    s[4..8].copy_from_slice(&tag.to_le_bytes());
    s[8..12].copy_from_slice(&((place.offset() + page) as u32).to_le_bytes());
    // Never all zero: generation 0 is skipped by the caller's increment before use.
    s[12..16].copy_from_slice(&generation.max(1).to_le_bytes());
    s
}

fn describe(s: &Sig) -> String {
    if *s == ZERO {
        return "zeros".to_string();
    }
    let w = |i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    let place = match w(4) {
        0xffff_fff1 => "text".to_string(),
        0xffff_fff2 => "data".to_string(),
        0xffff_fff3 => "heap".to_string(),
        0xffff_fff4 => "stack".to_string(),
        id => format!("m{id}"),
    };
    format!("p{}'s write #{} to {place}+{}", w(0), w(12), w(8))
}
