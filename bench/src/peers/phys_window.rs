//! "Physical memory" for the page-table peers: an anonymous mapping whose base address is
//! the phys→virt offset (physical address `p` lives at `base + p`), and the table-frame
//! allocator the peers call back into. The same layout as our arena: frame `n` is bytes
//! `[n * 4096, (n + 1) * 4096)`. The table frames are written once at creation
//! ([`PhysWindow::prefault`]), so the peers, like our arena in the benches, never take a
//! host page fault in a timed region.

use memmap2::{Advice, MmapMut, MmapOptions};

/// Hands out table frames from the top of the window (data frames are mapped from 0
/// upward and never touched), reusing freed ones first.
#[derive(Debug)]
pub struct TableFrames {
    next: u64,
    end: u64,
    free: Vec<u64>,
    /// Table frames currently in use.
    pub in_use: u64,
}

impl TableFrames {
    /// Table frames `first..end`.
    pub fn new(first: u64, end: u64) -> Self {
        TableFrames { next: first, end, free: Vec::new(), in_use: 0 }
    }

    /// A table frame (its contents are not cleared), or `None` when exhausted.
    #[inline]
    pub fn alloc(&mut self) -> Option<u64> {
        let f = match self.free.pop() {
            Some(f) => f,
            None if self.next < self.end => {
                self.next += 1;
                self.next - 1
            }
            None => return None,
        };
        self.in_use += 1;
        Some(f)
    }

    /// Returns a table frame.
    #[inline]
    pub fn free(&mut self, frame: u64) {
        self.in_use -= 1;
        self.free.push(frame);
    }
}

/// The mapping standing in for physical memory.
#[derive(Debug)]
pub struct PhysWindow {
    map: MmapMut,
    frames: u64,
}

impl PhysWindow {
    /// A window of `frames` frames, lazily backed by the host with transparent huge
    /// pages where it has them (as our arena is in the benches).
    pub fn new(frames: u64) -> Self {
        let map = MmapOptions::new()
            .len(frames as usize * 4096)
            .no_reserve_swap()
            .map_anon()
            .expect("map the physical window");
        let _ = map.advise(Advice::HugePage);
        PhysWindow { map, frames }
    }

    /// Writes every frame from `first` to the end once, so the host backs them now and no
    /// host page fault lands in a timed region later (the peers' table frames live there;
    /// the data frames are never touched).
    pub fn prefault(&mut self, first: u64) {
        for f in first..self.frames {
            let off = f as usize * 4096;
            self.map[off] = 0;
        }
    }

    /// A pointer to the start of the window (frame 0), for walks that visit many frames.
    pub fn base_ptr(&mut self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    /// Number of frames.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The phys→virt offset, with the mapping's provenance exposed so the peers may turn
    /// `offset + phys` back into pointers.
    pub fn offset(&mut self) -> usize {
        self.map.as_mut_ptr().expose_provenance()
    }

    /// A pointer to the start of `frame`.
    ///
    /// # Panics
    /// If `frame` is outside the window.
    pub fn frame_ptr(&mut self, frame: u64) -> *mut u8 {
        assert!(frame < self.frames, "frame {frame} is outside the window");
        self.map[frame as usize * 4096..].as_mut_ptr()
    }

    /// Zeroes `frame`.
    pub fn zero(&mut self, frame: u64) {
        let off = frame as usize * 4096;
        self.map[off..off + 4096].fill(0);
    }
}
