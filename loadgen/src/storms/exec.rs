//! `exec`: UnixBench execl and lmbench `lat_proc exec`.
//!
//! The parent forks; the child execs a small program ("hello"), which touches part of its
//! text, writes its data, bss and stack, grows its heap for libc's first malloc, sometimes
//! execs again (execl's chain of self-execs) and exits. Each round is `VM_FORK`,
//! `VM_EXEC_NEWMEM` (one or two) and `VM_EXIT` plus the new image's first faults.

use super::{Gen, Storm};
use crate::op::{ImageSize, Pid, Place};

const PARENT: ImageSize = ImageSize { text_pages: 32, data_pages: 4, bss_pages: 4, stack_pages: 8 };

#[derive(Debug, Default)]
pub(crate) struct ExecStorm {
    parent: Pid,
}

fn hello(g: &mut Gen) -> ImageSize {
    ImageSize {
        text_pages: g.rng.between(8, 48),
        data_pages: g.rng.between(1, 6),
        bss_pages: g.rng.between(1, 6),
        stack_pages: 8,
    }
}

/// The first accesses of a freshly exec'd program: some text, all data+bss, the stack top,
/// and a small heap.
fn start(g: &mut Gen, pid: Pid, image: ImageSize) {
    let text_reads = image.text_pages / 2;
    g.touch_random(pid, image.text_pages, text_reads, false, Place::Text);
    g.touch_each(pid, 0, image.data_pages + image.bss_pages, true, Place::Data);
    g.touch_each(pid, 0, 2, true, Place::Stack);
    g.brk(pid, 8);
    g.touch(pid, Place::Heap(0), 8, true);
}

impl Storm for ExecStorm {
    fn setup(&mut self, g: &mut Gen) {
        let p = g.spawn(PARENT);
        g.touch(p, Place::Data(0), PARENT.data_pages + PARENT.bss_pages, true);
        g.touch(p, Place::Stack(0), 2, true);
        self.parent = p;
    }

    fn round(&mut self, g: &mut Gen) {
        let c = g.fork(self.parent);
        g.touch(c, Place::Stack(0), 1, true);
        let img = hello(g);
        g.exec(c, img);
        start(g, c, img);
        if g.rng.chance(0.3) {
            let img = hello(g);
            g.exec(c, img);
            start(g, c, img);
        }
        g.exit(c);
        g.touch(self.parent, Place::Stack(0), 1, true);
    }
}
