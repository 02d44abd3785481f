//! `fork`: UnixBench spawn and lmbench `lat_proc fork`.
//!
//! A parent with a resident image, heap and a mapped buffer forks; the child writes its stack
//! (the return from fork) and exits; the parent writes its stack again after the wait. Each
//! round is one `VM_FORK` + `VM_EXIT` pair, whose cost grows with the parent's mapped pages
//! (page-table copy and write-protection under copy-on-write, a full copy under eager fork).

use super::{Gen, Storm};
use crate::op::{ImageSize, MapKind, Pid, Place, Prot};

const IMAGE: ImageSize = ImageSize { text_pages: 64, data_pages: 16, bss_pages: 16, stack_pages: 16 };
const HEAP: u64 = 64;
const BUFFER: u64 = 128;

#[derive(Debug, Default)]
pub(crate) struct ForkStorm {
    parent: Pid,
}

impl Storm for ForkStorm {
    fn setup(&mut self, g: &mut Gen) {
        let p = g.spawn(IMAGE);
        g.touch_random(p, IMAGE.text_pages, 24, false, Place::Text);
        g.touch(p, Place::Data(0), IMAGE.data_pages + IMAGE.bss_pages, true);
        g.touch(p, Place::Stack(0), 4, true);
        g.brk(p, HEAP);
        g.touch(p, Place::Heap(0), HEAP, true);
        let buf = g.mmap(p, BUFFER, Prot::RW, MapKind::Private);
        g.touch(p, Place::Map(buf, 0), BUFFER, true);
        self.parent = p;
    }

    fn round(&mut self, g: &mut Gen) {
        let p = self.parent;
        let c = g.fork(p);
        g.touch(c, Place::Stack(0), 1, true);
        if g.rng.chance(0.25) {
            // Some children do a little work before exiting (UnixBench spawn's child does not,
            // lat_proc's calls exit(1) at once; a shell's would).
            g.touch(c, Place::Data(0), 1, true);
        }
        g.exit(c);
        g.touch(p, Place::Stack(0), 1, true);
    }
}
