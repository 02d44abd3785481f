//! `shell`: lmbench `lat_proc shell` and `make -j4`.
//!
//! A long-lived `make` runs four jobs at a time. A job is `make` forking `sh`, `sh` exec'ing,
//! forking (or vforking) the compiler, the compiler exec'ing a large image and mapping its
//! shared library the way `ld.so` does (a read-only reservation with `MAP_FIXED` text,
//! rodata, data and bss overlays, then a relro `mprotect`), growing its heap in steps,
//! using a scratch mapping, and exiting, then `sh` exiting. The four jobs' ops are
//! interleaved at random, as a parallel make's children run side by side.

use std::collections::VecDeque;

use super::{Gen, Storm};
use crate::op::{ForkKind, ImageSize, MapKind, Op, Pid, Place, Prot};

const MAKE: ImageSize = ImageSize { text_pages: 64, data_pages: 16, bss_pages: 16, stack_pages: 16 };
const SH: ImageSize = ImageSize { text_pages: 30, data_pages: 4, bss_pages: 4, stack_pages: 10 };
const JOBS: usize = 4;
const MAKE_HEAP: u64 = 128;

#[derive(Debug, Default)]
pub(crate) struct ShellStorm {
    make: Pid,
    running: Vec<VecDeque<Op>>,
}

fn job(g: &mut Gen, make: Pid) {
    let sh = g.fork(make);
    g.touch(sh, Place::Stack(0), 2, true);
    g.exec(sh, SH);
    g.touch_random(sh, SH.text_pages, 10, false, Place::Text);
    g.touch_each(sh, 0, SH.data_pages + SH.bss_pages, true, Place::Data);
    g.touch(sh, Place::Stack(0), 4, true);
    g.brk(sh, 16);
    g.touch(sh, Place::Heap(0), 16, true);

    let kind = if g.rng.chance(0.5) { ForkKind::Vfork } else { ForkKind::Fork };
    let cc = g.fork_kind(sh, kind);
    let image = ImageSize {
        text_pages: g.rng.between(200, 600),
        data_pages: g.rng.between(16, 64),
        bss_pages: g.rng.between(16, 64),
        stack_pages: 16,
    };
    g.exec(cc, image);
    g.touch_random(cc, image.text_pages, 64, false, Place::Text);
    g.touch_each(cc, 0, image.data_pages + image.bss_pages, true, Place::Data);
    g.touch(cc, Place::Stack(0), 4, true);

    // ld.so maps libc: a reservation, then fixed overlays for each segment.
    let libc = g.mmap(cc, 482, Prot::READ, MapKind::File);
    let text = g.mmap_over(cc, libc, 38, 342, Prot::RX, MapKind::File);
    let _rodata = g.mmap_over(cc, libc, 380, 83, Prot::READ, MapKind::File);
    let data = g.mmap_over(cc, libc, 463, 6, Prot::RW, MapKind::File);
    let bss = g.mmap_over(cc, libc, 469, 13, Prot::RW, MapKind::Private);
    g.touch_each(cc, 0, 6, true, |n| Place::Map(data, n));
    g.mprotect(cc, data, 0, 4, Prot::READ);
    g.touch_random(cc, 342, 40, false, |n| Place::Map(text, n));
    g.touch(cc, Place::Map(bss, 0), 13, true);

    let steps = g.rng.between(1, 6);
    for k in 0..steps {
        g.brk(cc, (k + 1) * 32);
        g.touch_each(cc, k * 32, 32, true, Place::Heap);
    }
    let scratch_pages = g.rng.between(64, 256);
    let scratch = g.mmap(cc, scratch_pages, Prot::RW, MapKind::Private);
    g.touch_each(cc, 0, scratch_pages, true, |n| Place::Map(scratch, n));
    g.munmap(cc, scratch, 0, scratch_pages);
    g.exit(cc);

    g.touch(sh, Place::Stack(0), 1, true);
    g.exit(sh);
}

impl ShellStorm {
    /// Emits a few ops of one running job at random; drops finished jobs.
    fn step(&mut self, g: &mut Gen) {
        let i = g.rng.below(self.running.len() as u64) as usize;
        let n = g.rng.between(1, 8);
        let q = &mut self.running[i];
        for _ in 0..n {
            match q.pop_front() {
                Some(op) => g.emit(op),
                None => break,
            }
        }
        if q.is_empty() {
            self.running.swap_remove(i);
        }
    }
}

impl Storm for ShellStorm {
    fn setup(&mut self, g: &mut Gen) {
        let make = g.spawn(MAKE);
        g.touch_random(make, MAKE.text_pages, 32, false, Place::Text);
        g.touch(make, Place::Data(0), MAKE.data_pages + MAKE.bss_pages, true);
        g.touch(make, Place::Stack(0), 4, true);
        g.brk(make, MAKE_HEAP);
        g.touch(make, Place::Heap(0), MAKE_HEAP, true);
        self.make = make;
    }

    fn round(&mut self, g: &mut Gen) {
        let make = self.make;
        let ops = g.capture(|g| job(g, make));
        self.running.push(ops.into());
        // make's own bookkeeping between jobs.
        g.touch_random(make, MAKE_HEAP, 2, true, Place::Heap);
        while self.running.len() >= JOBS {
            self.step(g);
        }
    }

    fn wind_down(&mut self, g: &mut Gen) {
        while !self.running.is_empty() {
            self.step(g);
        }
    }
}
