//! `cow`: copy-on-write faults after fork (the write half of will-it-scale page_fault3 and of
//! every fork-then-modify program).
//!
//! The parent keeps a 2 MiB buffer written in full. Each round it forks; the child writes a
//! random share of the buffer (each first write a protection fault that copies the frame),
//! reads a few pages (no copy), and exits; before the child exits the parent writes some
//! pages too, so both sides of the sharing fault. After the exit the parent's shared pages
//! are its own again (the next write reuses the frame instead of copying).

use super::{Gen, Storm};
use crate::op::{ImageSize, MapId, MapKind, Pid, Place, Prot};

const BUFFER: u64 = 512;

#[derive(Debug, Default)]
pub(crate) struct CowStorm {
    parent: Pid,
    buf: MapId,
}

impl Storm for CowStorm {
    fn setup(&mut self, g: &mut Gen) {
        let p = g.spawn(ImageSize::DEFAULT);
        g.touch(p, Place::Data(0), 8, true);
        g.touch(p, Place::Stack(0), 2, true);
        let buf = g.mmap(p, BUFFER, Prot::RW, MapKind::Private);
        g.touch(p, Place::Map(buf, 0), BUFFER, true);
        self.parent = p;
        self.buf = buf;
    }

    fn round(&mut self, g: &mut Gen) {
        let (p, buf) = (self.parent, self.buf);
        let c = g.fork(p);
        g.touch(c, Place::Stack(0), 1, true);
        let writes = g.rng.between(32, 128);
        g.touch_random(c, BUFFER, writes, true, |n| Place::Map(buf, n));
        g.touch_random(c, BUFFER, 8, false, |n| Place::Map(buf, n));
        let parent_writes = g.rng.between(4, 32);
        g.touch_random(p, BUFFER, parent_writes, true, |n| Place::Map(buf, n));
        g.exit(c);
        g.touch(p, Place::Stack(0), 1, true);
    }
}
