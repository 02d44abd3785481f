//! The op emitter every storm writes through: fresh ids, live-process bookkeeping, and
//! helpers named after the calls PM and libc make (`fork`, `exec`, `mmap`, ...).

use crate::op::{ForkKind, ImageSize, MapId, MapKind, MapSpec, Op, Pid, Place, Prot};
use vmstorm_core::rng::SplitMix64;

/// Emits ops with fresh ids and remembers which processes are alive.
#[derive(Debug)]
pub(crate) struct Gen {
    /// The storm's random choices.
    pub rng: SplitMix64,
    next_pid: u32,
    next_map: u32,
    /// Live processes in creation order (teardown exits them newest first).
    live: Vec<Pid>,
    out: Vec<Op>,
}

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen { rng: SplitMix64::new(seed), next_pid: 1, next_map: 1, live: Vec::new(), out: Vec::new() }
    }

    pub fn drain_into(&mut self, out: &mut Vec<Op>) {
        out.append(&mut self.out);
    }

    /// Runs `f` with a fresh output buffer and returns what it emitted instead of queueing it
    /// (a storm interleaves such captured sequences itself).
    pub fn capture(&mut self, f: impl FnOnce(&mut Gen)) -> Vec<Op> {
        let saved = std::mem::take(&mut self.out);
        f(self);
        std::mem::replace(&mut self.out, saved)
    }

    /// Queues an op produced earlier by [`Gen::capture`].
    pub fn emit(&mut self, op: Op) {
        self.out.push(op);
    }

    fn pid(&mut self) -> Pid {
        let p = Pid(self.next_pid);
        self.next_pid += 1;
        self.live.push(p);
        p
    }

    fn map_id(&mut self) -> MapId {
        let m = MapId(self.next_map);
        self.next_map += 1;
        m
    }

    /// A new process started by the system with `image` (its first op is its exec).
    pub fn spawn(&mut self, image: ImageSize) -> Pid {
        let pid = self.pid();
        self.out.push(Op::Exec { pid, image });
        pid
    }

    pub fn fork(&mut self, parent: Pid) -> Pid {
        self.fork_kind(parent, ForkKind::Fork)
    }

    pub fn fork_kind(&mut self, parent: Pid, kind: ForkKind) -> Pid {
        let child = self.pid();
        self.out.push(Op::Fork { parent, child, kind });
        child
    }

    pub fn exec(&mut self, pid: Pid, image: ImageSize) {
        self.out.push(Op::Exec { pid, image });
    }

    pub fn exit(&mut self, pid: Pid) {
        if let Some(i) = self.live.iter().rposition(|&p| p == pid) {
            self.live.remove(i);
        }
        self.out.push(Op::Exit { pid });
    }

    /// Exits every live process, newest first.
    pub fn exit_all(&mut self) {
        while let Some(&pid) = self.live.last() {
            self.exit(pid);
        }
    }

    pub fn mmap(&mut self, pid: Pid, pages: u64, prot: Prot, kind: MapKind) -> MapId {
        let id = self.map_id();
        self.out.push(Op::Mmap { pid, id, spec: MapSpec { pages, prot, kind, prealloc: false } });
        id
    }

    pub fn mmap_over(
        &mut self,
        pid: Pid,
        over: MapId,
        offset: u64,
        pages: u64,
        prot: Prot,
        kind: MapKind,
    ) -> MapId {
        let id = self.map_id();
        let spec = MapSpec { pages, prot, kind, prealloc: false };
        self.out.push(Op::MmapOver { pid, id, over, offset, spec });
        id
    }

    pub fn munmap(&mut self, pid: Pid, id: MapId, offset: u64, pages: u64) {
        self.out.push(Op::Munmap { pid, id, offset, pages });
    }

    pub fn mprotect(&mut self, pid: Pid, id: MapId, offset: u64, pages: u64, prot: Prot) {
        self.out.push(Op::Mprotect { pid, id, offset, pages, prot });
    }

    pub fn mremap(&mut self, pid: Pid, id: MapId, new_pages: u64) {
        self.out.push(Op::Mremap { pid, id, new_pages });
    }

    pub fn brk(&mut self, pid: Pid, heap_pages: u64) {
        self.out.push(Op::Brk { pid, heap_pages });
    }

    pub fn discard(&mut self, pid: Pid, id: MapId, offset: u64, pages: u64) {
        self.out.push(Op::Discard { pid, id, offset, pages });
    }

    /// One touch op over `pages` pages from `place`.
    pub fn touch(&mut self, pid: Pid, place: Place, pages: u64, write: bool) {
        if pages > 0 {
            self.out.push(Op::Touch { pid, place, pages, write });
        }
    }

    /// One single-page touch per page of `[from, from + pages)` (`at` names page `n`), so that
    /// each fault is timed on its own, as a benchmark loop touching page after page would be.
    pub fn touch_each(&mut self, pid: Pid, from: u64, pages: u64, write: bool, at: impl Fn(u64) -> Place) {
        for n in from..from + pages {
            self.out.push(Op::Touch { pid, place: at(n), pages: 1, write });
        }
    }

    /// `count` single-page touches at random pages of `[0, extent)` (repeats allowed).
    pub fn touch_random(
        &mut self,
        pid: Pid,
        extent: u64,
        count: u64,
        write: bool,
        at: impl Fn(u64) -> Place,
    ) {
        if extent == 0 {
            return;
        }
        for _ in 0..count {
            let n = self.rng.below(extent);
            self.out.push(Op::Touch { pid, place: at(n), pages: 1, write });
        }
    }
}
