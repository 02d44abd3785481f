//! What the address-independent trace drops about each recorded fault and a prediction of
//! the host's large-folio faults needs: the fault's virtual page, its full error code, and
//! the extent of the area it fell in around it.
//!
//! A trace names memory by (mapping id, page offset) so that it replays into any address
//! space; but Linux decides whether a fault may take a 16 KiB … 2 MiB folio from virtual
//! alignment: the naturally aligned block around the fault must lie inside one VMA (see
//! `docs/large-folios.md`). The perf importer still knows the addresses while it converts, so
//! it keeps one [`TouchFault`] per touch of the trace, in the same order, in
//! [`super::PerfReport::touch_faults`]. Nothing here changes the trace or its formats.
//!
//! MINIX has no counterpart: its VM server allocates 4 KiB pages only.

use crate::op::{MapKind, Prot};

/// Pages in a 2 MiB block (the largest folio an anonymous fault may take on x86-64).
pub const PMD_PAGES: u64 = 512;

/// x86 page-fault error code bits.
const PF_PRESENT: u8 = 1;
const PF_WRITE: u8 = 2;
const PF_USER: u8 = 4;
const PF_FETCH: u8 = 0x10;

/// What an area of a process is, as far as folio rules care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AreaKind {
    /// A mapping made by `mmap` (or by `execve` for the interpreter), with its backing.
    Map(MapKind),
    /// The program's text (file-backed, read-only).
    Text,
    /// The program's initialized data (a private file mapping: a write copies one page).
    Data,
    /// The program's bss beyond its last file page (private anonymous).
    Bss,
    /// The `brk` heap (private anonymous).
    Heap,
    /// The main stack (private anonymous, grows down).
    Stack,
}

/// Which of the kernel's randomized bases placed an area: where address-space
/// randomization moves it from one run of the program to the next (at 4 KiB granularity on
/// x86-64), which decides how many whole 2 MiB blocks it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Base {
    /// Placed below the randomized mmap base (every mapping made without `MAP_FIXED`, and
    /// the fixed ones the loader lays over its own reservations).
    Mmap,
    /// The `brk` heap, started at a randomized offset past the program's image.
    Brk,
    /// The main stack, below a randomized top.
    Stack,
    /// The program's own image (a PIE's text, data and bss), at a randomized load base.
    Image,
    /// Not moved by randomization as far as 2 MiB blocks go: an anonymous mapping whose
    /// length is a multiple of 2 MiB, which the kernel places on a 2 MiB boundary, and the
    /// mappings the process placed after it (top-down below it).
    Aligned,
}

/// One recorded fault that became a touch, with the facts the trace leaves out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TouchFault {
    /// Linux virtual page number (address >> 12) of the fault.
    pub page: u64,
    /// The x86 error code's low byte as recorded (present, write, user, ..., fetch).
    pub code: u8,
    /// What the fault fell in.
    pub kind: AreaKind,
    /// The area's protection when the fault happened (for mappings, the last protection set
    /// on the mapping id: a partial `mprotect` is not tracked per page).
    pub prot: Prot,
    /// The mapping was made with `MAP_STACK`, which Linux 6.7+ turns into `VM_NOHUGEPAGE`.
    pub no_huge: bool,
    /// Linux pages `[start, end)` of the area around the fault, clipped to the 2 MiB-aligned
    /// block holding it: the largest range a folio decision looks at. For mappings it joins
    /// neighbouring mappings of the same kind, protection and `MAP_STACK` flag, as Linux
    /// merges such VMAs.
    pub window: (u64, u64),
    /// The same area (and joined neighbours) clipped instead to the three 2 MiB blocks
    /// centred on the fault's: enough to know the fault's window when the area is shifted
    /// by less than 2 MiB (a placement of another run).
    pub reach: (u64, u64),
    /// The randomized base that placed the area.
    pub base: Base,
}

impl TouchFault {
    /// Whether the page was present (a protection fault: copy-on-write, write after a
    /// zero-page read) rather than missing.
    pub fn present(&self) -> bool {
        self.code & PF_PRESENT != 0
    }
    /// Whether the access was a write.
    pub fn write(&self) -> bool {
        self.code & PF_WRITE != 0
    }
    /// Whether the fault was taken in user mode (else the kernel touched user memory).
    pub fn user(&self) -> bool {
        self.code & PF_USER != 0
    }
    /// Whether the access was an instruction fetch.
    pub fn fetch(&self) -> bool {
        self.code & PF_FETCH != 0
    }
    /// Whether the area is private anonymous memory: the only memory Linux backs with
    /// anonymous large folios (shared anonymous memory is shmem, with its own policy).
    pub fn anon_private(&self) -> bool {
        match self.kind {
            AreaKind::Map(k) => k == MapKind::Private,
            AreaKind::Heap | AreaKind::Stack | AreaKind::Bss => true,
            AreaKind::Text | AreaKind::Data => false,
        }
    }
    /// Whether Linux could have served this fault with a new anonymous folio of `pages`
    /// pages (a power of two, at most [`PMD_PAGES`]) if every page of its aligned block was
    /// still missing: a missing-page write in private anonymous memory without
    /// `MAP_STACK`, whose aligned block lies inside the area.
    pub fn folio_candidate(&self, pages: u64) -> bool {
        if !pages.is_power_of_two() || pages > PMD_PAGES {
            return false;
        }
        let start = self.page & !(pages - 1);
        self.eligible()
            && self.write()
            && !self.present()
            && start >= self.window.0
            && start + pages <= self.window.1
    }

    /// Whether Linux may back this fault's area with anonymous large folios at all:
    /// private anonymous memory without `MAP_STACK`.
    pub fn eligible(&self) -> bool {
        self.anon_private() && !self.no_huge
    }

    /// The fault as it would be in a run whose `base` placed its area `by` pages higher
    /// (`by` < [`PMD_PAGES`]; other areas, and `by` = 0, leave it as recorded): its page
    /// and window move, the window taken from [`TouchFault::reach`] for the new block.
    pub fn shifted(&self, base: Base, by: u64) -> TouchFault {
        if base != self.base || by == 0 || by >= PMD_PAGES {
            return *self;
        }
        let page = self.page + by;
        let (s, e) = (self.reach.0 + by, self.reach.1 + by);
        TouchFault { page, window: clip_to_block(page, s, e), reach: (s, e), ..*self }
    }
}

/// The 2 MiB-aligned block `[start, end)` of Linux pages holding `page`.
pub fn pmd_block(page: u64) -> (u64, u64) {
    let start = page & !(PMD_PAGES - 1);
    (start, start + PMD_PAGES)
}

/// `[start, end)` clipped to the 2 MiB block of `page` (empty at `page` if they miss it).
pub fn clip_to_block(page: u64, start: u64, end: u64) -> (u64, u64) {
    let (bs, be) = pmd_block(page);
    let s = start.max(bs);
    let e = end.min(be);
    if s < e {
        (s, e)
    } else {
        (page, page)
    }
}

/// The run of adjacent ranges `[start, end)` (in address order, as `Space::pieces`
/// returns them) around `page`, as one range: the range holding `page`, extended over
/// touching neighbours whose flag says they are alike it. `None` when no range holds `page`.
pub fn run_around(page: u64, ranges: &[(u64, u64, bool)]) -> Option<(u64, u64)> {
    let at = ranges.iter().position(|&(s, e, _)| s <= page && page < e)?;
    let (mut start, mut end, _) = ranges[at];
    for &(s, e, same) in ranges[..at].iter().rev() {
        if !same || e != start {
            break;
        }
        start = s;
    }
    for &(s, e, same) in &ranges[at + 1..] {
        if !same || s != end {
            break;
        }
        end = e;
    }
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(page: u64, code: u8, window: (u64, u64)) -> TouchFault {
        TouchFault {
            page,
            code,
            kind: AreaKind::Map(MapKind::Private),
            prot: Prot::RW,
            no_huge: false,
            window,
            reach: window,
            base: Base::Mmap,
        }
    }

    #[test]
    fn error_code_bits() {
        let f = fault(0x1000, 0x6, (0x1000, 0x1001));
        assert!(f.write() && f.user() && !f.present() && !f.fetch());
        let f = fault(0x1000, 0x15, (0x1000, 0x1001));
        assert!(f.present() && f.fetch() && !f.write());
    }

    #[test]
    fn a_folio_needs_its_whole_aligned_block_inside_the_area() {
        // An area from page 0x1003 to 0x1200: the 16 KiB block around 0x1003 starts at 0x1000,
        // outside; the one around 0x1004 is inside.
        let w = (0x1003, 0x1200);
        assert!(!fault(0x1003, 0x6, w).folio_candidate(4));
        assert!(fault(0x1004, 0x6, w).folio_candidate(4));
        assert!(fault(0x1004, 0x6, w).folio_candidate(1));
        // 64 KiB around 0x11f8 ends at 0x1200: inside; 2 MiB is not.
        assert!(fault(0x11f8, 0x6, w).folio_candidate(16));
        assert!(!fault(0x11f8, 0x6, w).folio_candidate(512));
        assert!(fault(0x1000, 0x6, (0x1000, 0x1200)).folio_candidate(512));
        // Not a size.
        assert!(!fault(0x1004, 0x6, w).folio_candidate(3));
        assert!(!fault(0x1000, 0x6, (0x1000, 0x1200)).folio_candidate(1024));
    }

    #[test]
    fn reads_protection_faults_files_and_stacks_take_no_folio() {
        let w = (0x1000, 0x1200);
        assert!(!fault(0x1000, 0x4, w).folio_candidate(4), "a read maps the zero page");
        assert!(!fault(0x1000, 0x7, w).folio_candidate(4), "copy-on-write copies one page");
        let mut f = fault(0x1000, 0x6, w);
        f.kind = AreaKind::Map(MapKind::File);
        assert!(!f.folio_candidate(4));
        f.kind = AreaKind::Map(MapKind::Shared);
        assert!(!f.folio_candidate(4));
        f.kind = AreaKind::Data;
        assert!(!f.folio_candidate(4));
        f.kind = AreaKind::Bss;
        assert!(f.folio_candidate(4));
        f.kind = AreaKind::Heap;
        assert!(f.folio_candidate(4));
        f.no_huge = true;
        assert!(!f.folio_candidate(4), "MAP_STACK sets VM_NOHUGEPAGE");
    }

    #[test]
    fn clipping_to_the_2mib_block() {
        assert_eq!(pmd_block(0x1234), (0x1200, 0x1400));
        assert_eq!(clip_to_block(0x1234, 0x1000, 0x1300), (0x1200, 0x1300));
        assert_eq!(clip_to_block(0x1234, 0x1201, 0x5000), (0x1201, 0x1400));
        assert_eq!(clip_to_block(0x1234, 0x1500, 0x1600), (0x1234, 0x1234));
    }

    #[test]
    fn runs_join_adjacent_alike_ranges_only() {
        let r = [(0, 10, true), (10, 20, true), (20, 30, true), (31, 40, true)];
        assert_eq!(run_around(15, &r), Some((0, 30)));
        assert_eq!(run_around(35, &r), Some((31, 40)), "a gap ends the run");
        let r = [(0, 10, true), (10, 20, false), (20, 30, true), (30, 40, true)];
        assert_eq!(run_around(25, &r), Some((20, 40)), "an unlike neighbour ends the run");
        assert_eq!(run_around(50, &r), None);
        // The flags say whether each range is alike the faulting one; the faulting range's
        // own flag does not matter.
        let r = [(0, 10, false), (10, 20, false), (20, 30, false)];
        assert_eq!(run_around(15, &r), Some((10, 20)), "the faulting range itself always counts");
    }
}
