//! `mixed`: every storm's operations at random over a small, changing process tree.
//!
//! Up to [`MAX_PROCS`] processes fork, exec, exit, map, unmap (whole mappings, heads and
//! tails), change protections, resize, discard, move their break and touch memory (reads and
//! writes, respecting protections) in proportions close to a busy system's. The virtual
//! pages of all live processes stay under [`TOTAL_PAGES_CAP`], so the storm can run for as
//! long as soak mode (`--duration`) asks with bounded memory, millions of ops, while replay
//! verification keeps checking contents and invariants.

use super::{Gen, Storm};
use crate::op::{ImageSize, MapId, MapKind, Pid, Place, Prot};

/// Most processes alive at once.
pub(crate) const MAX_PROCS: usize = 8;
/// Most virtual pages (images, heaps and mappings) of all live processes together.
pub(crate) const TOTAL_PAGES_CAP: u64 = 24 * 1024;

#[derive(Clone, Debug)]
struct MapState {
    id: MapId,
    /// Mapped pages are `[start, end)` of the mapping (head and tail unmaps move them).
    start: u64,
    end: u64,
    prot: Prot,
}

#[derive(Clone, Debug)]
struct ProcState {
    pid: Pid,
    image: ImageSize,
    heap: u64,
    maps: Vec<MapState>,
}

impl ProcState {
    fn pages(&self) -> u64 {
        let i = self.image;
        i.text_pages
            + i.data_pages
            + i.bss_pages
            + i.stack_pages
            + self.heap
            + self.maps.iter().map(|m| m.end - m.start).sum::<u64>()
    }
}

#[derive(Debug, Default)]
pub(crate) struct MixedStorm {
    procs: Vec<ProcState>,
}

#[derive(Clone, Copy, Debug)]
enum Action {
    Spawn,
    Exit,
    Mmap,
    Munmap,
    Mprotect,
    Mremap,
    Brk,
    Touch,
    Discard,
    CowBurst,
}

const ACTIONS: [(Action, u64); 10] = [
    (Action::Spawn, 6),
    (Action::Exit, 5),
    (Action::Mmap, 8),
    (Action::Munmap, 6),
    (Action::Mprotect, 3),
    (Action::Mremap, 2),
    (Action::Brk, 4),
    (Action::Touch, 24),
    (Action::Discard, 3),
    (Action::CowBurst, 2),
];

fn random_image(g: &mut Gen) -> ImageSize {
    ImageSize {
        text_pages: g.rng.between(8, 96),
        data_pages: g.rng.between(1, 16),
        bss_pages: g.rng.between(0, 16),
        stack_pages: g.rng.between(4, 16),
    }
}

impl MixedStorm {
    fn total(&self) -> u64 {
        self.procs.iter().map(ProcState::pages).sum()
    }

    fn room(&self) -> u64 {
        TOTAL_PAGES_CAP.saturating_sub(self.total())
    }

    fn pick(&self, g: &mut Gen) -> usize {
        g.rng.below(self.procs.len() as u64) as usize
    }

    /// A process and one of its mappings, when any process has one.
    fn pick_map(&self, g: &mut Gen) -> Option<(usize, usize)> {
        for _ in 0..4 {
            let p = self.pick(g);
            let n = self.procs[p].maps.len();
            if n > 0 {
                return Some((p, g.rng.below(n as u64) as usize));
            }
        }
        None
    }

    fn start_program(g: &mut Gen, p: &ProcState) {
        let pid = p.pid;
        let i = p.image;
        g.touch_random(pid, i.text_pages, i.text_pages / 4 + 1, false, Place::Text);
        let d = i.data_pages + i.bss_pages;
        let n = g.rng.between(1, d);
        g.touch(pid, Place::Data(0), n, true);
        g.touch(pid, Place::Stack(0), 1, true);
    }

    fn spawn(&mut self, g: &mut Gen) {
        if self.procs.len() >= MAX_PROCS {
            return self.exit(g);
        }
        let parent = self.pick(g);
        let mut child = self.procs[parent].clone();
        if child.pages() > self.room() {
            return;
        }
        child.pid = g.fork(self.procs[parent].pid);
        g.touch(child.pid, Place::Stack(0), 1, true);
        if g.rng.chance(0.4) {
            child.image = random_image(g);
            child.heap = 0;
            child.maps.clear();
            g.exec(child.pid, child.image);
            Self::start_program(g, &child);
        }
        self.procs.push(child);
    }

    fn exit(&mut self, g: &mut Gen) {
        if self.procs.len() > 1 {
            let i = 1 + g.rng.below(self.procs.len() as u64 - 1) as usize;
            let p = self.procs.swap_remove(i);
            g.exit(p.pid);
        }
    }

    fn mmap(&mut self, g: &mut Gen) {
        let p = self.pick(g);
        let big = g.rng.chance(0.1);
        let pages = if big { g.rng.between(512, 8192) } else { g.rng.between(1, 256) };
        if pages > self.room() || self.procs[p].maps.len() >= 24 {
            return;
        }
        let prot = match g.rng.below(10) {
            0 => Prot::NONE,
            1 => Prot::READ,
            _ => Prot::RW,
        };
        let kind = if g.rng.chance(0.2) { MapKind::File } else { MapKind::Private };
        let pid = self.procs[p].pid;
        let id = g.mmap(pid, pages, prot, kind);
        if prot.accessible() && !big {
            let n = g.rng.between(1, pages);
            g.touch_each(pid, 0, n, prot.writable(), |k| Place::Map(id, k));
        }
        self.procs[p].maps.push(MapState { id, start: 0, end: pages, prot });
    }

    fn munmap(&mut self, g: &mut Gen) {
        let Some((p, m)) = self.pick_map(g) else { return };
        let pid = self.procs[p].pid;
        let map = &mut self.procs[p].maps[m];
        let len = map.end - map.start;
        match g.rng.below(4) {
            0 if len > 1 => {
                let cut = g.rng.between(1, len - 1);
                g.munmap(pid, map.id, map.start, cut);
                map.start += cut;
            }
            1 if len > 1 => {
                let cut = g.rng.between(1, len - 1);
                g.munmap(pid, map.id, map.end - cut, cut);
                map.end -= cut;
            }
            _ => {
                g.munmap(pid, map.id, map.start, len);
                self.procs[p].maps.swap_remove(m);
            }
        }
    }

    fn mprotect(&mut self, g: &mut Gen) {
        let Some((p, m)) = self.pick_map(g) else { return };
        let pid = self.procs[p].pid;
        let map = &mut self.procs[p].maps[m];
        map.prot = if map.prot == Prot::RW { Prot::READ } else { Prot::RW };
        g.mprotect(pid, map.id, map.start, map.end - map.start, map.prot);
    }

    fn mremap(&mut self, g: &mut Gen) {
        let Some((p, m)) = self.pick_map(g) else { return };
        let room = self.room();
        let pid = self.procs[p].pid;
        let map = &mut self.procs[p].maps[m];
        if map.start != 0 {
            return;
        }
        let new = g.rng.between(1, (map.end * 2).clamp(2, 1024));
        if new > map.end && new - map.end > room {
            return;
        }
        g.mremap(pid, map.id, new);
        let old = map.end;
        map.end = new;
        if new > old && map.prot.accessible() {
            let (id, w) = (map.id, map.prot.writable());
            g.touch_each(pid, old, (new - old).min(16), w, |k| Place::Map(id, k));
        }
    }

    fn brk(&mut self, g: &mut Gen) {
        let p = self.pick(g);
        let room = self.room();
        let proc = &mut self.procs[p];
        if proc.heap > 0 && g.rng.chance(0.4) {
            proc.heap = g.rng.below(proc.heap);
            g.brk(proc.pid, proc.heap);
        } else {
            let up = g.rng.between(1, 64);
            if up > room {
                return;
            }
            g.brk(proc.pid, proc.heap + up);
            g.touch_each(proc.pid, proc.heap, up, true, Place::Heap);
            proc.heap += up;
        }
    }

    fn touch(&mut self, g: &mut Gen) {
        let p = self.pick(g);
        let proc = &self.procs[p];
        let pid = proc.pid;
        let n = g.rng.between(1, 16);
        match g.rng.below(6) {
            0 => g.touch_random(pid, proc.image.text_pages, n, false, Place::Text),
            1 => {
                let d = proc.image.data_pages + proc.image.bss_pages;
                let w = g.rng.chance(0.7);
                g.touch_random(pid, d, n, w, Place::Data)
            }
            2 => g.touch_random(pid, proc.image.stack_pages, n.min(4), true, Place::Stack),
            3 => g.touch_random(pid, proc.heap, n, true, Place::Heap),
            _ => {
                let Some((p, m)) = self.pick_map(g) else { return };
                let (pid, map) = (self.procs[p].pid, &self.procs[p].maps[m]);
                if !map.prot.accessible() {
                    return;
                }
                let w = map.prot.writable() && g.rng.chance(0.7);
                let (id, start) = (map.id, map.start);
                g.touch_random(pid, map.end - map.start, n, w, |k| Place::Map(id, start + k));
            }
        }
    }

    fn discard(&mut self, g: &mut Gen) {
        let Some((p, m)) = self.pick_map(g) else { return };
        let (pid, map) = (self.procs[p].pid, &self.procs[p].maps[m]);
        let len = map.end - map.start;
        let off = g.rng.below(len);
        let n = g.rng.between(1, len - off);
        g.discard(pid, map.id, map.start + off, n);
    }

    fn cow_burst(&mut self, g: &mut Gen) {
        let Some((p, m)) = self.pick_map(g) else { return };
        if self.procs[p].pages() > self.room() {
            return;
        }
        let (ppid, map) = (self.procs[p].pid, self.procs[p].maps[m].clone());
        let c = g.fork(ppid);
        g.touch(c, Place::Stack(0), 1, true);
        if map.prot.writable() {
            let n = g.rng.between(1, 32);
            let (id, start) = (map.id, map.start);
            g.touch_random(c, map.end - map.start, n, true, |k| Place::Map(id, start + k));
            g.touch_random(ppid, map.end - map.start, n / 2, true, |k| Place::Map(id, start + k));
        }
        g.exit(c);
    }
}

impl Storm for MixedStorm {
    fn setup(&mut self, g: &mut Gen) {
        let image = ImageSize { text_pages: 64, data_pages: 8, bss_pages: 8, stack_pages: 16 };
        let pid = g.spawn(image);
        let root = ProcState { pid, image, heap: 0, maps: Vec::new() };
        Self::start_program(g, &root);
        self.procs.push(root);
    }

    fn round(&mut self, g: &mut Gen) {
        let weights: Vec<u64> = ACTIONS.iter().map(|a| a.1).collect();
        let action = ACTIONS[g.rng.weighted(&weights)].0;
        match action {
            Action::Spawn => self.spawn(g),
            Action::Exit => self.exit(g),
            Action::Mmap => self.mmap(g),
            Action::Munmap => self.munmap(g),
            Action::Mprotect => self.mprotect(g),
            Action::Mremap => self.mremap(g),
            Action::Brk => self.brk(g),
            Action::Touch => self.touch(g),
            Action::Discard => self.discard(g),
            Action::CowBurst => self.cow_burst(g),
        }
    }

    fn wind_down(&mut self, _g: &mut Gen) {
        self.procs.clear();
    }
}
