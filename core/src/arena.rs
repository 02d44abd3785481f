//! The "physical memory": one `memmap2` mapping that stands for a machine's RAM.
//!
//! Replaces what MINIX VM gets from the boot monitor's `memory` chunks (`get_mem_chunks`)
//! and from `sys_memset`/`sys_abscopy`: frame `n` is bytes `[n * 4096, (n + 1) * 4096)` of
//! the mapping, and physical address `p` is byte `p`. This is the only module of the crate
//! with `unsafe` code: every other module reaches frames through the safe, bounds-checked
//! views below (`frame`, `frame_mut`, `table64`, `table32`, …), whose borrows are tied to
//! the arena so that two live mutable views cannot alias.
//!
//! Why one file of ~560 lines (a third of them tests): it is the unsafe fence, and keeping
//! every `unsafe` block of the crate in one file is the point.
//!
//! The mapping is anonymous and lazily backed (`MAP_NORESERVE`), so a 32 GiB arena costs
//! only the frames that are touched; `huge_pages` asks for transparent huge pages
//! (`MADV_HUGEPAGE`), and `file` backs the arena with a sparse file instead.

use crate::addr::{Frame, PAGE_SIZE};
use core::fmt;
use memmap2::{Advice, MmapMut, MmapOptions};
use std::path::PathBuf;

/// Default arena size: 1 GiB.
pub const DEFAULT_ARENA_BYTES: u64 = 1 << 30;
/// Largest arena accepted: 32 GiB (also the most valgrind can map).
pub const MAX_ARENA_BYTES: u64 = 32 << 30;

/// How to build an [`Arena`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArenaConfig {
    /// Size in bytes; a positive multiple of 4 KiB, at most [`MAX_ARENA_BYTES`].
    pub bytes: u64,
    /// Ask the host kernel for transparent huge pages (`MADV_HUGEPAGE`).
    pub huge_pages: bool,
    /// Back the arena with this (sparse) file instead of anonymous memory.
    pub file: Option<PathBuf>,
}

impl Default for ArenaConfig {
    fn default() -> Self {
        ArenaConfig { bytes: DEFAULT_ARENA_BYTES, huge_pages: false, file: None }
    }
}

impl ArenaConfig {
    /// An anonymous arena of `frames` frames.
    pub fn frames(frames: u64) -> Self {
        ArenaConfig { bytes: frames.saturating_mul(PAGE_SIZE), ..Default::default() }
    }
}

/// Why an arena could not be built.
#[derive(Debug)]
pub enum ArenaError {
    /// The size is zero, not a multiple of 4 KiB, or above [`MAX_ARENA_BYTES`].
    BadSize(u64),
    /// The host refused the mapping, the advice or the backing file.
    Host(std::io::Error),
}

impl fmt::Display for ArenaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArenaError::BadSize(b) => write!(
                f,
                "arena size {b} bytes is not a positive multiple of 4 KiB up to {} GiB",
                MAX_ARENA_BYTES >> 30
            ),
            ArenaError::Host(e) => write!(f, "cannot map the arena: {e}"),
        }
    }
}

impl std::error::Error for ArenaError {}

/// A page table viewed as 512 raw 64-bit entries (x86-64 formats).
pub type Table64 = [u64; 512];
/// A page table viewed as 1024 raw 32-bit entries (i386 formats).
pub type Table32 = [u32; 1024];

/// The physical memory of the emulated machine.
pub struct Arena {
    map: MmapMut,
    frames: u64,
}

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena").field("frames", &self.frames).finish_non_exhaustive()
    }
}

impl Arena {
    /// Maps a new arena.
    ///
    /// # Errors
    /// [`ArenaError::BadSize`] for a bad size, [`ArenaError::Host`] when the host refuses.
    pub fn new(config: &ArenaConfig) -> Result<Arena, ArenaError> {
        let bytes = config.bytes;
        if bytes == 0 || !bytes.is_multiple_of(PAGE_SIZE) || bytes > MAX_ARENA_BYTES {
            return Err(ArenaError::BadSize(bytes));
        }
        let len = usize::try_from(bytes).map_err(|_| ArenaError::BadSize(bytes))?;
        let map = match &config.file {
            None => MmapOptions::new().len(len).no_reserve_swap().map_anon().map_err(ArenaError::Host)?,
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(path)
                    .map_err(ArenaError::Host)?;
                file.set_len(bytes).map_err(ArenaError::Host)?;
                // SAFETY: the file was opened by us just now and is only reached through
                // this mapping; a concurrent writer outside the process would only change
                // frame contents, which are plain bytes with no validity invariant.
                unsafe { MmapOptions::new().len(len).map_mut(&file) }.map_err(ArenaError::Host)?
            }
        };
        if config.huge_pages {
            map.advise(Advice::HugePage).map_err(ArenaError::Host)?;
        }
        Ok(Arena { map, frames: bytes / PAGE_SIZE })
    }

    /// An anonymous arena of `frames` frames.
    ///
    /// # Errors
    /// As [`Arena::new`].
    pub fn with_frames(frames: u64) -> Result<Arena, ArenaError> {
        Arena::new(&ArenaConfig::frames(frames))
    }

    /// Number of frames.
    #[inline]
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Size in bytes.
    #[inline]
    pub fn bytes(&self) -> u64 {
        self.frames * PAGE_SIZE
    }

    /// The byte offset of the last frame: a page table at byte `t` lies inside the arena
    /// exactly when `t <= last_frame_offset()` (the page walk's bounds check).
    #[inline(always)]
    pub fn last_frame_offset(&self) -> u64 {
        self.map.len() as u64 - PAGE_SIZE
    }

    /// Whether `frame` is backed by this arena (device frames lie beyond it).
    #[inline]
    pub fn contains(&self, frame: Frame) -> bool {
        frame.0 < self.frames
    }

    #[inline]
    fn offset(&self, frame: Frame) -> usize {
        assert!(self.contains(frame), "{frame:?} is outside an arena of {} frames", self.frames);
        frame.index() * PAGE_SIZE as usize
    }

    /// The bytes of `frame`.
    ///
    /// # Panics
    /// If `frame` is outside the arena (an internal bug: callers check device frames).
    #[inline]
    pub fn frame(&self, frame: Frame) -> &[u8; 4096] {
        let off = self.offset(frame);
        let bytes: &[u8] = &self.map[off..off + PAGE_SIZE as usize];
        bytes.try_into().expect("a frame is 4096 bytes")
    }

    /// The bytes of `frame`, writable.
    ///
    /// # Panics
    /// If `frame` is outside the arena.
    #[inline]
    pub fn frame_mut(&mut self, frame: Frame) -> &mut [u8; 4096] {
        let off = self.offset(frame);
        let bytes: &mut [u8] = &mut self.map[off..off + PAGE_SIZE as usize];
        bytes.try_into().expect("a frame is 4096 bytes")
    }

    /// `frame` viewed as a table of 512 raw 64-bit entries.
    ///
    /// # Panics
    /// If `frame` is outside the arena.
    #[inline]
    pub fn table64(&self, frame: Frame) -> &Table64 {
        let bytes = self.frame(frame);
        // SAFETY: the mapping is page aligned (mmap returns page-aligned memory) and frames
        // are page multiples into it, so `bytes` is 4096-aligned and 4096 long; `[u64; 512]`
        // has the same size, alignment 8 <= 4096, and every bit pattern is a valid u64.
        // The shared borrow of `self` keeps the bytes immutable for the returned lifetime.
        unsafe { &*(bytes.as_ptr() as *const Table64) }
    }

    /// `frame` viewed as a writable table of 512 raw 64-bit entries.
    ///
    /// # Panics
    /// If `frame` is outside the arena.
    #[inline]
    pub fn table64_mut(&mut self, frame: Frame) -> &mut Table64 {
        let bytes = self.frame_mut(frame);
        // SAFETY: as in `table64`; the exclusive borrow of `self` makes this the only view.
        unsafe { &mut *(bytes.as_mut_ptr() as *mut Table64) }
    }

    /// `frame` viewed as a table of 1024 raw 32-bit entries.
    ///
    /// # Panics
    /// If `frame` is outside the arena.
    #[inline]
    pub fn table32(&self, frame: Frame) -> &Table32 {
        let bytes = self.frame(frame);
        // SAFETY: as in `table64`, with `[u32; 1024]` (size 4096, alignment 4).
        unsafe { &*(bytes.as_ptr() as *const Table32) }
    }

    /// `frame` viewed as a writable table of 1024 raw 32-bit entries.
    ///
    /// # Panics
    /// If `frame` is outside the arena.
    #[inline]
    pub fn table32_mut(&mut self, frame: Frame) -> &mut Table32 {
        let bytes = self.frame_mut(frame);
        // SAFETY: as in `table32`; the exclusive borrow of `self` makes this the only view.
        unsafe { &mut *(bytes.as_mut_ptr() as *mut Table32) }
    }

    /// Two distinct frames at once: `(src, dst)` with `dst` writable.
    ///
    /// # Panics
    /// If either frame is outside the arena or `src == dst`.
    #[inline]
    pub fn frame_pair_mut(&mut self, src: Frame, dst: Frame) -> (&[u8; 4096], &mut [u8; 4096]) {
        assert_ne!(src, dst, "frame_pair_mut needs two distinct frames");
        let (s, d) = (self.offset(src), self.offset(dst));
        let base = self.map.as_mut_ptr();
        // SAFETY: both offsets are in bounds (checked by `offset`), page aligned and
        // distinct, so the two 4096-byte ranges do not overlap; the exclusive borrow of
        // `self` guarantees no other view of the mapping is alive for their lifetime.
        unsafe { (&*(base.add(s) as *const [u8; 4096]), &mut *(base.add(d) as *mut [u8; 4096])) }
    }

    /// Entry `index % 512` of the 64-bit table at byte `table` (a frame's first byte):
    /// the page walk's load, one bounds check per table.
    ///
    /// # Panics
    /// If the table is not inside the arena.
    #[inline(always)]
    pub fn entry_u64(&self, table: u64, index: usize) -> u64 {
        assert!(table <= self.last_frame_offset(), "page table out of the arena");
        let at = table as usize + (index % 512) * 8;
        // SAFETY: `table + 4096 <= len` and `at + 8 <= table + 4096`, so the 8 bytes are
        // inside the mapping; an unaligned read has no alignment requirement and every bit
        // pattern is a valid u64; the shared borrow of `self` excludes writers.
        unsafe { self.map.as_ptr().add(at).cast::<u64>().read_unaligned() }
    }

    /// Entry `index % 1024` of the 32-bit table at byte `table` (see [`Arena::entry_u64`]).
    ///
    /// # Panics
    /// If the table is not inside the arena.
    #[inline(always)]
    pub fn entry_u32(&self, table: u64, index: usize) -> u32 {
        assert!(table <= self.last_frame_offset(), "page table out of the arena");
        let at = table as usize + (index % 1024) * 4;
        // SAFETY: as in `entry_u64`, for 4 bytes inside the 4096-byte table.
        unsafe { self.map.as_ptr().add(at).cast::<u32>().read_unaligned() }
    }

    /// The little-endian 64-bit word at byte `offset` (one x86-64 page-table entry): the
    /// page walk's load, with a single bounds check.
    ///
    /// # Panics
    /// If the word is not inside the arena.
    #[inline(always)]
    pub fn load_u64(&self, offset: u64) -> u64 {
        let len = self.map.len() as u64;
        assert!(offset <= len - 8, "arena load out of bounds");
        // SAFETY: `offset + 8 <= len`, so the 8 bytes are inside the mapping; an unaligned
        // read has no alignment requirement and every bit pattern is a valid u64; the
        // shared borrow of `self` excludes concurrent writers.
        unsafe { self.map.as_ptr().add(offset as usize).cast::<u64>().read_unaligned() }
    }

    /// Stores a 64-bit word at byte `offset` (see [`Arena::load_u64`]).
    ///
    /// # Panics
    /// If the word is not inside the arena.
    #[inline(always)]
    pub fn store_u64(&mut self, offset: u64, value: u64) {
        let len = self.map.len() as u64;
        assert!(offset <= len - 8, "arena store out of bounds");
        // SAFETY: in bounds as in `load_u64`; the exclusive borrow of `self` makes this
        // the only access to the mapping.
        unsafe { self.map.as_mut_ptr().add(offset as usize).cast::<u64>().write_unaligned(value) }
    }

    /// The 32-bit word at byte `offset` (one i386 page-table entry).
    ///
    /// # Panics
    /// If the word is not inside the arena.
    #[inline(always)]
    pub fn load_u32(&self, offset: u64) -> u32 {
        let len = self.map.len() as u64;
        assert!(offset <= len - 4, "arena load out of bounds");
        // SAFETY: as in `load_u64`, for 4 bytes.
        unsafe { self.map.as_ptr().add(offset as usize).cast::<u32>().read_unaligned() }
    }

    /// Stores a 32-bit word at byte `offset` (see [`Arena::load_u32`]).
    ///
    /// # Panics
    /// If the word is not inside the arena.
    #[inline(always)]
    pub fn store_u32(&mut self, offset: u64, value: u32) {
        let len = self.map.len() as u64;
        assert!(offset <= len - 4, "arena store out of bounds");
        // SAFETY: as in `store_u64`, for 4 bytes.
        unsafe { self.map.as_mut_ptr().add(offset as usize).cast::<u32>().write_unaligned(value) }
    }

    /// Two distinct frames, both writable: `(a, b)`.
    ///
    /// # Panics
    /// If either frame is outside the arena or `a == b`.
    #[inline]
    pub fn frames_both_mut(&mut self, a: Frame, b: Frame) -> (&mut [u8; 4096], &mut [u8; 4096]) {
        assert_ne!(a, b, "frames_both_mut needs two distinct frames");
        let (oa, ob) = (self.offset(a), self.offset(b));
        let base = self.map.as_mut_ptr();
        // SAFETY: both offsets are in bounds (checked by `offset`), page aligned and
        // distinct, so the two 4096-byte ranges do not overlap; the exclusive borrow of
        // `self` guarantees no other view of the mapping is alive for their lifetime.
        unsafe { (&mut *(base.add(oa) as *mut [u8; 4096]), &mut *(base.add(ob) as *mut [u8; 4096])) }
    }

    /// Two distinct frames viewed as writable tables of 512 raw 64-bit entries.
    ///
    /// # Panics
    /// If either frame is outside the arena or `a == b`.
    #[inline]
    pub fn tables64_both_mut(&mut self, a: Frame, b: Frame) -> (&mut Table64, &mut Table64) {
        let (x, y) = self.frames_both_mut(a, b);
        // SAFETY: as in `table64`: each view is 4096-aligned, 4096 long and exclusive, and
        // every bit pattern is a valid u64.
        unsafe { (&mut *(x.as_mut_ptr() as *mut Table64), &mut *(y.as_mut_ptr() as *mut Table64)) }
    }

    /// Two distinct frames viewed as writable tables of 1024 raw 32-bit entries.
    ///
    /// # Panics
    /// If either frame is outside the arena or `a == b`.
    #[inline]
    pub fn tables32_both_mut(&mut self, a: Frame, b: Frame) -> (&mut Table32, &mut Table32) {
        let (x, y) = self.frames_both_mut(a, b);
        // SAFETY: as in `table32`: each view is 4096-aligned, 4096 long and exclusive, and
        // every bit pattern is a valid u32.
        unsafe { (&mut *(x.as_mut_ptr() as *mut Table32), &mut *(y.as_mut_ptr() as *mut Table32)) }
    }

    /// Copies the contents of `src` into `dst`.
    ///
    /// # Panics
    /// If either frame is outside the arena or they are the same frame.
    #[inline]
    pub fn copy_frame(&mut self, src: Frame, dst: Frame) {
        let (s, d) = self.frame_pair_mut(src, dst);
        d.copy_from_slice(s);
    }

    /// Copies `src` into `dst` with non-temporal (streaming) stores: the destination is
    /// written without first being read into the cache, which is what a fresh, cold frame
    /// wants (a forked child's page tables). Falls back to [`Arena::copy_frame`] off x86-64.
    ///
    /// # Panics
    /// If either frame is outside the arena or they are the same frame.
    #[inline]
    pub fn copy_frame_streaming(&mut self, src: Frame, dst: Frame) {
        #[cfg(target_arch = "x86_64")]
        {
            use core::arch::x86_64::{__m128i, _mm_load_si128, _mm_sfence, _mm_stream_si128};
            let (s, d) = self.frame_pair_mut(src, dst);
            let from = s.as_ptr() as *const __m128i;
            let to = d.as_mut_ptr() as *mut __m128i;
            // SAFETY: SSE2 is part of the x86-64 baseline; both pointers are to distinct,
            // 4096-aligned, 4096-byte buffers (`frame_pair_mut` checked bounds and
            // distinctness), so the 256 aligned 16-byte loads and stores stay inside them;
            // the sfence orders the streaming stores before any later ordinary access.
            unsafe {
                for i in 0..(PAGE_SIZE as usize / 16) {
                    _mm_stream_si128(to.add(i), _mm_load_si128(from.add(i)));
                }
                _mm_sfence();
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.copy_frame(src, dst);
    }

    /// Zeroes `frame` with ordinary stores (best when the frame is about to be used).
    #[inline]
    pub fn zero_frame(&mut self, frame: Frame) {
        self.frame_mut(frame).fill(0);
    }

    /// Zeroes `frame` with non-temporal (streaming) stores that bypass the caches: best for
    /// frames that will not be read soon, such as a pre-zeroed pool. Falls back to
    /// [`Arena::zero_frame`] off x86-64.
    #[inline]
    pub fn zero_frame_streaming(&mut self, frame: Frame) {
        #[cfg(target_arch = "x86_64")]
        {
            use core::arch::x86_64::{__m128i, _mm_setzero_si128, _mm_sfence, _mm_stream_si128};
            let page = self.frame_mut(frame);
            let ptr = page.as_mut_ptr() as *mut __m128i;
            // SAFETY: SSE2 is part of the x86-64 baseline; `ptr` points to a 4096-byte,
            // 4096-aligned exclusive buffer, so the 256 16-byte aligned stores stay inside
            // it; the sfence orders them before any later ordinary store.
            unsafe {
                let zero = _mm_setzero_si128();
                for i in 0..(PAGE_SIZE as usize / 16) {
                    _mm_stream_si128(ptr.add(i), zero);
                }
                _mm_sfence();
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.zero_frame(frame);
    }

    /// Gives `count` frames from `first` back to the host (`MADV_DONTNEED`); they read as
    /// zero afterwards. Used to keep the resident size down after large runs.
    ///
    /// # Errors
    /// When the host refuses the advice.
    ///
    /// # Panics
    /// If the range is outside the arena.
    pub fn release(&mut self, first: Frame, count: u64) -> std::io::Result<()> {
        assert!(first.0.checked_add(count).is_some_and(|end| end <= self.frames));
        let off = first.index() * PAGE_SIZE as usize;
        let len = (count * PAGE_SIZE) as usize;
        // SAFETY: the range is inside our private mapping; DONTNEED only replaces its
        // contents with zero pages, and no reference into the range can be alive because
        // we hold `&mut self`.
        unsafe { self.map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, off, len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_sizes() {
        assert!(matches!(Arena::new(&ArenaConfig::frames(0)), Err(ArenaError::BadSize(0))));
        let odd = ArenaConfig { bytes: 4097, ..Default::default() };
        assert!(matches!(Arena::new(&odd), Err(ArenaError::BadSize(4097))));
        let huge = ArenaConfig { bytes: MAX_ARENA_BYTES + PAGE_SIZE, ..Default::default() };
        assert!(Arena::new(&huge).is_err());
    }

    #[test]
    fn frames_zero_copy_and_views() {
        let mut a = Arena::with_frames(8).unwrap();
        assert_eq!(a.frames(), 8);
        a.frame_mut(Frame(1)).fill(0xab);
        a.copy_frame(Frame(1), Frame(2));
        assert!(a.frame(Frame(2)).iter().all(|&b| b == 0xab));
        a.zero_frame_streaming(Frame(2));
        assert!(a.frame(Frame(2)).iter().all(|&b| b == 0));
        a.zero_frame(Frame(1));
        assert!(a.frame(Frame(1)).iter().all(|&b| b == 0));
        a.table64_mut(Frame(3))[511] = 0xdead_beef_0000_0001;
        assert_eq!(a.table64(Frame(3))[511], 0xdead_beef_0000_0001);
        assert_eq!(a.table32(Frame(3))[1022], 0x0000_0001);
        a.table32_mut(Frame(4))[0] = 7;
        assert_eq!(a.frame(Frame(4))[0], 7);
        a.release(Frame(3), 2).unwrap();
        assert_eq!(a.table64(Frame(3))[511], 0);
    }

    #[test]
    fn pair_views_and_streaming_copy() {
        let mut a = Arena::with_frames(4).unwrap();
        let (x, y) = a.tables64_both_mut(Frame(1), Frame(2));
        x[0] = 1;
        y[511] = 2;
        assert_eq!((a.table64(Frame(1))[0], a.table64(Frame(2))[511]), (1, 2));
        let (x, y) = a.tables32_both_mut(Frame(3), Frame(0));
        x[1023] = 3;
        y[0] = 4;
        assert_eq!((a.table32(Frame(3))[1023], a.table32(Frame(0))[0]), (3, 4));
        a.frame_mut(Frame(1)).iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        a.copy_frame_streaming(Frame(1), Frame(2));
        assert_eq!(a.frame(Frame(1)), a.frame(Frame(2)));
    }

    #[test]
    fn word_loads_and_stores() {
        let mut a = Arena::with_frames(2).unwrap();
        a.store_u64(8192 - 8, 0x0123_4567_89ab_cdef);
        assert_eq!(a.table64(Frame(1))[511], 0x0123_4567_89ab_cdef);
        assert_eq!(a.load_u64(8192 - 8), 0x0123_4567_89ab_cdef);
        assert_eq!(a.load_u32(8192 - 4), 0x0123_4567);
        a.store_u32(4, 7);
        assert_eq!(a.table32(Frame(0))[1], 7);
        assert_eq!(a.entry_u64(4096, 511), 0x0123_4567_89ab_cdef);
        assert_eq!(a.entry_u64(4096, 511 + 512), 0x0123_4567_89ab_cdef, "the index wraps in the table");
        assert_eq!(a.entry_u32(0, 1), 7);
    }

    #[test]
    #[should_panic]
    fn entry_of_a_table_past_the_end_panics() {
        let a = Arena::with_frames(1).unwrap();
        let _ = a.entry_u64(4096, 0);
    }

    #[test]
    #[should_panic]
    fn word_load_past_the_end_panics() {
        let a = Arena::with_frames(1).unwrap();
        let _ = a.load_u64(4096 - 7);
    }

    #[test]
    #[should_panic]
    fn pair_views_refuse_the_same_frame() {
        let mut a = Arena::with_frames(2).unwrap();
        let _ = a.frames_both_mut(Frame(1), Frame(1));
    }

    #[test]
    #[should_panic]
    fn out_of_range_frame_panics() {
        let a = Arena::with_frames(2).unwrap();
        let _ = a.frame(Frame(2));
    }

    #[test]
    fn file_backed_arena() {
        let path = std::env::temp_dir().join(format!("vmstorm-arena-{}", std::process::id()));
        let cfg = ArenaConfig { bytes: 16 * PAGE_SIZE, huge_pages: false, file: Some(path.clone()) };
        let mut a = Arena::new(&cfg).unwrap();
        a.frame_mut(Frame(15))[4095] = 9;
        assert_eq!(a.frame(Frame(15))[4095], 9);
        drop(a);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 16 * PAGE_SIZE);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn huge_page_advice_is_accepted() {
        let cfg = ArenaConfig { bytes: 4 << 20, huge_pages: true, file: None };
        let mut a = Arena::new(&cfg).unwrap();
        a.frame_mut(Frame(1023))[0] = 1;
        assert_eq!(a.frame(Frame(1023))[0], 1);
    }
}
