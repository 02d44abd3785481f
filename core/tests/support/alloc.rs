//! Test allocators with easily predicted choices: [`VecAlloc`] (lowest free frame first, a
//! free list in a `Vec`) and [`TopDown`] (highest free frame first). Out-of-frames tests wrap
//! them in the core's `FailingAllocator`.

use vmstorm_core::{Frame, FrameAllocator};

/// A free list in a `Vec`: lowest frames first.
#[derive(Debug)]
pub struct VecAlloc {
    free: Vec<u64>,
    used: Vec<bool>,
}

impl FrameAllocator for VecAlloc {
    fn with_frames(frames: u64) -> Self {
        VecAlloc { free: (0..frames).rev().collect(), used: vec![false; frames as usize] }
    }
    fn alloc(&mut self) -> Option<Frame> {
        let f = self.free.pop()?;
        self.used[f as usize] = true;
        Some(Frame(f))
    }
    fn alloc_contiguous(&mut self, count: u64, align: u64) -> Option<Frame> {
        let align = align.max(1);
        let n = self.used.len() as u64;
        let mut first = 0;
        while first + count <= n && count > 0 {
            if (first..first + count).all(|f| !self.used[f as usize]) {
                for f in first..first + count {
                    self.used[f as usize] = true;
                }
                self.free.retain(|&f| f < first || f >= first + count);
                return Some(Frame(first));
            }
            first += align;
        }
        None
    }
    fn free(&mut self, frame: Frame) {
        assert!(self.used[frame.index()], "double free of {frame:?}");
        self.used[frame.index()] = false;
        self.free.push(frame.0);
    }
    fn free_contiguous(&mut self, first: Frame, count: u64) {
        for i in 0..count {
            self.free(first.add(i));
        }
    }
    fn free_count(&self) -> u64 {
        self.free.len() as u64
    }
    fn is_free(&self, frame: Frame) -> bool {
        !self.used[frame.index()]
    }
    fn name(&self) -> &'static str {
        "vec"
    }
}

/// Hands out the highest free frame first (frames kept in a `BTreeSet`).
#[derive(Debug)]
pub struct TopDown {
    free: std::collections::BTreeSet<u64>,
}

impl FrameAllocator for TopDown {
    fn with_frames(frames: u64) -> Self {
        TopDown { free: (0..frames).collect() }
    }
    fn alloc(&mut self) -> Option<Frame> {
        self.free.pop_last().map(Frame)
    }
    fn alloc_contiguous(&mut self, count: u64, _align: u64) -> Option<Frame> {
        (count == 1).then(|| self.alloc()).flatten()
    }
    fn free(&mut self, frame: Frame) {
        assert!(self.free.insert(frame.0), "double free of {frame:?}");
    }
    fn free_contiguous(&mut self, first: Frame, count: u64) {
        for i in 0..count {
            self.free(first.add(i));
        }
    }
    fn free_count(&self) -> u64 {
        self.free.len() as u64
    }
    fn is_free(&self, frame: Frame) -> bool {
        self.free.contains(&frame.0)
    }
    fn name(&self) -> &'static str {
        "top-down"
    }
}
