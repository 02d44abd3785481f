//! `brk`: will-it-scale brk1 and brk2.
//!
//! One process moves its break up by one page and back down, over and over (`VM_BRK` twice
//! per round); every other round it writes the new page before shrinking (brk2), so the
//! freed heap page really holds a frame to give back.

use super::{Gen, Storm};
use crate::op::{ImageSize, Pid, Place};

const BASE: u64 = 16;

#[derive(Debug, Default)]
pub(crate) struct BrkStorm {
    proc: Pid,
    round: u64,
}

impl Storm for BrkStorm {
    fn setup(&mut self, g: &mut Gen) {
        let p = g.spawn(ImageSize::DEFAULT);
        g.touch(p, Place::Stack(0), 1, true);
        g.brk(p, BASE);
        g.touch(p, Place::Heap(0), BASE, true);
        self.proc = p;
    }

    fn round(&mut self, g: &mut Gen) {
        let p = self.proc;
        let up = 1 + u64::from(g.rng.chance(0.1)) * g.rng.between(1, 15);
        g.brk(p, BASE + up);
        if self.round % 2 == 1 {
            g.touch_each(p, BASE, up, true, Place::Heap);
        }
        g.brk(p, BASE);
        self.round += 1;
    }
}
