//! `discard`: will-it-scale tlb_flush1.
//!
//! A 1 MiB region is written page by page, then discarded whole (`madvise(MADV_DONTNEED)`:
//! its frames are freed and the mappings dropped, which on hardware is the TLB shootdown);
//! the next round's writes fault in fresh zero pages.

use super::{Gen, Storm};
use crate::op::{ImageSize, MapId, MapKind, Pid, Place, Prot};

const REGION: u64 = 256;

#[derive(Debug, Default)]
pub(crate) struct DiscardStorm {
    proc: Pid,
    region: MapId,
}

impl Storm for DiscardStorm {
    fn setup(&mut self, g: &mut Gen) {
        let p = g.spawn(ImageSize::DEFAULT);
        g.touch(p, Place::Stack(0), 1, true);
        self.region = g.mmap(p, REGION, Prot::RW, MapKind::Private);
        self.proc = p;
    }

    fn round(&mut self, g: &mut Gen) {
        let (p, id) = (self.proc, self.region);
        g.touch_each(p, 0, REGION, true, |n| Place::Map(id, n));
        // Sometimes only part of the region (madvise of a sub-range).
        if g.rng.chance(0.2) {
            let off = g.rng.below(REGION / 2);
            let len = g.rng.between(1, REGION - off);
            g.discard(p, id, off, len);
        } else {
            g.discard(p, id, 0, REGION);
        }
    }

    fn wind_down(&mut self, g: &mut Gen) {
        g.munmap(self.proc, self.region, 0, REGION);
    }
}
