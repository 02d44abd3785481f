//! `fault`: will-it-scale page_fault1.
//!
//! Map an anonymous region, write one byte in every page (each a demand-zero
//! `VM_PAGEFAULT`: not present, write), unmap it. will-it-scale maps 128 MiB; here the region
//! is 4 MiB (1,024 pages) so that a round stays short and `--scale` counts regions.

use super::{Gen, Storm};
use crate::op::{ImageSize, MapKind, Pid, Place, Prot};

const REGION: u64 = 1024;

#[derive(Debug, Default)]
pub(crate) struct FaultStorm {
    proc: Pid,
}

impl Storm for FaultStorm {
    fn setup(&mut self, g: &mut Gen) {
        let p = g.spawn(ImageSize::DEFAULT);
        g.touch(p, Place::Stack(0), 1, true);
        self.proc = p;
    }

    fn round(&mut self, g: &mut Gen) {
        let p = self.proc;
        let id = g.mmap(p, REGION, Prot::RW, MapKind::Private);
        g.touch_each(p, 0, REGION, true, |n| Place::Map(id, n));
        g.munmap(p, id, 0, REGION);
    }
}
