//! Page-table workloads shared by the Criterion and callgrind benches, run the same way
//! over our formats and the peer crates: the [`PageTables`] interface every candidate is
//! driven through, and the *scattered* layout that spreads 65,536 mapped pages over 1,024
//! leaf tables (4 MiB of tables on x86-64, beyond L2) for random translation.
//!
//! Measures what MINIX's `pt_writemap`/`pt_ptalloc` (`servers/vm/arch/i386/pagetable.c`)
//! and the MMU walk cost under each format.

use vmstorm_core::rng::SplitMix64;

/// Frames reserved for tables above the data frames of every window.
pub const TABLE_RESERVE: u64 = 8_192;
/// Frames of the "physical memory" the page-table benches run over by default: 256 MiB
/// of data frames mapped from frame 0 up, and the tables above them.
pub const WINDOW_FRAMES: u64 = TABLE_FRAMES_START + TABLE_RESERVE;
/// First frame used for tables (= data frames) in the default window.
pub const TABLE_FRAMES_START: u64 = 65_536;
/// Pages mapped by the scattered layout.
pub const SCATTERED_PAGES: u64 = 65_536;
/// Pages per run of the scattered layout.
pub const RUN_PAGES: u64 = 64;
/// Runs of the scattered layout, each in its own 4 MiB-aligned slot below 4 GiB.
pub const RUNS: u64 = SCATTERED_PAGES / RUN_PAGES;

/// A page-table implementation as the workloads drive it. Virtual addresses are page
/// aligned and below 4 GiB (so the i386 format runs the same layouts); frames are numbers
/// in the window, mapped user-writable.
pub trait PageTables {
    /// Short name used in benchmark ids.
    fn name(&self) -> &'static str;
    /// An empty address space over a fresh window of `data` data frames (numbered from
    /// 0) and [`TABLE_RESERVE`] table frames above them.
    fn with_data_frames(data: u64) -> Self
    where
        Self: Sized;
    /// An empty address space over a fresh window of [`WINDOW_FRAMES`] frames.
    fn new_space() -> Self
    where
        Self: Sized,
    {
        Self::with_data_frames(TABLE_FRAMES_START)
    }
    /// Maps one page.
    fn map(&mut self, va: u64, frame: u64);
    /// Maps `pages` pages from `va` to frames `first, first + 1, …`.
    fn map_range(&mut self, va: u64, first: u64, pages: u64);
    /// The frame mapped at `va`, if any.
    fn translate(&mut self, va: u64) -> Option<u64>;
    /// Unmaps `pages` mapped pages from `va`.
    fn unmap_range(&mut self, va: u64, pages: u64);
    /// Frames used as tables now (root included).
    fn table_frames(&self) -> u64;
    /// Copies this space's `pages` mapped pages from `va` into the empty space `child`, the
    /// best way the implementation allows (none of the peers has a copy API). By default a
    /// walk that translates each page and maps it into the child ([`fork_by_remap`]).
    fn fork_into(&mut self, child: &mut Self, va: u64, pages: u64)
    where
        Self: Sized,
    {
        fork_by_remap(self, child, va, pages);
    }
}

/// The scattered layout: run `k` of [`RUN_PAGES`] pages starts at the `slots[k]`-th
/// 4 MiB slot of the low 4 GiB.
#[derive(Clone, Debug)]
pub struct Scattered {
    /// Start address of each run.
    pub run_va: Vec<u64>,
}

impl Scattered {
    /// A layout drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        // Slots 1..1024 (the 4 MiB holding the null page stays unmapped), plus one run in
        // the upper half of the first slot drawn: 1,024 runs, one leaf table each.
        let mut slots: Vec<u64> = (1..1024).collect();
        rng.shuffle(&mut slots);
        let mut run_va: Vec<u64> = slots.iter().map(|s| s << 22).collect();
        run_va.push((slots[0] << 22) + (2 << 20));
        Scattered { run_va }
    }

    /// The address of mapped page `i` (`i < SCATTERED_PAGES`).
    #[inline(always)]
    pub fn page_va(&self, i: u64) -> u64 {
        self.run_va[(i / RUN_PAGES) as usize] + (i % RUN_PAGES) * 4096
    }

    /// Maps every run into `pt` (data frame of page `i` = `i`).
    pub fn map_all<P: PageTables>(&self, pt: &mut P) {
        for (k, &va) in self.run_va.iter().enumerate() {
            pt.map_range(va, k as u64 * RUN_PAGES, RUN_PAGES);
        }
    }
}

/// Random translation over a scattered space: each step translates one random mapped page.
#[derive(Debug)]
pub struct RandomTranslate<P> {
    /// The address space.
    pub pt: P,
    layout: Scattered,
    rng: SplitMix64,
}

impl<P: PageTables> RandomTranslate<P> {
    /// Builds and maps the scattered space from `seed`.
    pub fn build(seed: u64) -> Self {
        let layout = Scattered::new(seed);
        let mut pt = P::new_space();
        layout.map_all(&mut pt);
        RandomTranslate { pt, layout, rng: SplitMix64::new(seed ^ 0x5EED) }
    }

    /// One random translation; returns the frame (always mapped).
    #[inline]
    pub fn step(&mut self) -> Option<u64> {
        let i = self.rng.below(SCATTERED_PAGES);
        self.pt.translate(self.layout.page_va(i))
    }
}

/// Base address of the sequential map/translate/unmap benches: 16 MiB (x86-64 and i386
/// alike).
pub const SEQ_VA: u64 = 16 << 20;

/// Page tables that do nothing (every address translates to its page number): running a
/// workload over them measures the harness alone, to subtract from the others' counts.
#[derive(Debug, Default)]
pub struct NullTables;

impl PageTables for NullTables {
    fn name(&self) -> &'static str {
        "harness"
    }
    fn with_data_frames(_data: u64) -> Self {
        NullTables
    }
    fn map(&mut self, va: u64, frame: u64) {
        std::hint::black_box((va, frame));
    }
    fn map_range(&mut self, va: u64, first: u64, pages: u64) {
        std::hint::black_box((va, first, pages));
    }
    #[inline]
    fn translate(&mut self, va: u64) -> Option<u64> {
        Some(std::hint::black_box(va) >> 12)
    }
    fn unmap_range(&mut self, va: u64, pages: u64) {
        std::hint::black_box((va, pages));
    }
    fn table_frames(&self) -> u64 {
        0
    }
}

/// The peers' fork: none has a copy API, so a fork walks the parent page by page and maps
/// each present page into the child (as anchors.md measured them). `pages` pages from `va`.
pub fn fork_by_remap<P: PageTables>(parent: &mut P, child: &mut P, va: u64, pages: u64) {
    for i in 0..pages {
        let v = va + (i << 12);
        if let Some(f) = parent.translate(v) {
            child.map(v, f);
        }
    }
}
