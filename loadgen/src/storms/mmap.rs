//! `mmap`: will-it-scale mmap1.
//!
//! One process maps a 128 MiB anonymous region and unmaps it again without touching it, so
//! each round times `VM_MMAP` placement (first fit at or above the hint) and `VM_MUNMAP`
//! alone. One round in four maps a random smaller size instead, so placement meets more than
//! one hole size.

use super::{Gen, Storm};
use crate::op::{ImageSize, MapKind, Pid, Place, Prot};

const REGION: u64 = 32 * 1024;

#[derive(Debug, Default)]
pub(crate) struct MmapStorm {
    proc: Pid,
}

impl Storm for MmapStorm {
    fn setup(&mut self, g: &mut Gen) {
        let p = g.spawn(ImageSize::DEFAULT);
        g.touch(p, Place::Stack(0), 1, true);
        self.proc = p;
    }

    fn round(&mut self, g: &mut Gen) {
        let pages = if g.rng.chance(0.25) { g.rng.between(1, 4096) } else { REGION };
        let id = g.mmap(self.proc, pages, Prot::RW, MapKind::Private);
        g.munmap(self.proc, id, 0, pages);
    }
}
