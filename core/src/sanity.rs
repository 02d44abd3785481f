//! Whole-state invariant checks at graded levels.
//!
//! Replaces `servers/vm/sanitycheck.h` (`SANITYCHECK(SCL_TOP|SCL_FUNCTIONS|SCL_DETAIL)`),
//! `map_sanitycheck`, `pt_sanitycheck` and the allocator's (broken, §21.16) self check.
//! * [`SanityLevel::Top`]: slot table (in-use bitset, live roots), regions sorted,
//!   aligned, non-empty and non-overlapping, call-mask ids valid, page-table frame count.
//! * [`SanityLevel::Functions`]: also every frame's reference count equals the references
//!   to it (leaf entries of every address space, page tables, the pre-zeroed pool), no
//!   frame is both free and used, the allocator is internally consistent and its free
//!   count agrees, every table's count of present entries is right, and no private page
//!   is writable while its frame is shared
//!   (copy-on-write isolation; under a leaf table linked read-only by an on-demand fork
//!   every write faults first, so there the check does not apply). A leaf table linked by
//!   several directories counts one reference per link, and its entries' references
//!   once. The number of mappings of every frame as VM_GETREF and VM_INFO answer it
//!   (`calls::shared::sharer_counts`, derived from table links) equals the number of
//!   mappings a walk of every process finds. Huge entries (`PS`): each frame of the
//!   block is referenced once per mapping, the block is aligned, neither shared nor
//!   direct, the huge zero page is never mapped writable and its pin (one reference per
//!   frame) is counted, and the number of huge entries is the one counted. The references
//!   are collected and sorted, so the cost follows the frames in use; frames nobody
//!   references are covered by one pass summing the count array and by the allocator's
//!   free count.
//! * [`SanityLevel::Detail`]: also every present entry lies inside a region of its
//!   process and agrees with it (user bit, write permission, shared/direct kind, device
//!   frame); a huge entry's block lies inside one private anonymous region.

use crate::addr::{Frame, PageSpan, VirtAddr, PAGE_SIZE};
use crate::frames::FrameAllocator;
use crate::paging::{PageFlags, PagingFormat};
use crate::region::MemType;
use crate::server::Vm;

pub use crate::server::{SanityError, SanityLevel};

fn fail<T>(slot: Option<usize>, what: String) -> Result<T, SanityError> {
    Err(SanityError { slot, what })
}

impl<F: FrameAllocator, P: PagingFormat> Vm<F, P> {
    /// Checks the invariants at `level`.
    ///
    /// # Errors
    /// The first broken invariant found.
    pub fn check_invariants(&self, level: SanityLevel) -> Result<(), SanityError> {
        let frames = self.total_frames();
        let full = PageSpan { start: VirtAddr(0), pages: P::VA_END / PAGE_SIZE };
        let mut tables = 0u64;
        // Every reference found (page tables, pool frames, counted leaf entries), as frame
        // numbers; sorted and counted below. Proportional to the frames in use, not to
        // the arena.
        let mut seen: Vec<u64> = Vec::new();
        // Table frames found so far: a leaf table shared by an on-demand fork is reached
        // from every space that links it but is one table.
        let mut table_set = std::collections::HashSet::new();
        for i in self.slots.in_use_indices() {
            let s = self.slots.get(i);
            if !s.in_use || s.endpoint.slot() != i as i32 {
                return fail(
                    Some(i),
                    format!("in-use bit set but slot says in_use={} {:?}", s.in_use, s.endpoint),
                );
            }
            if s.root.0 >= frames {
                return fail(Some(i), format!("root {:?} outside the arena", s.root));
            }
            if self.acl.refs(s.acl) == 0 {
                return fail(Some(i), format!("call mask id {:?} is not referenced", s.acl));
            }
            let mut prev_end = 0u64;
            for r in s.regions.as_slice() {
                if !r.start.is_page_aligned() || r.pages == 0 || r.start.0 < prev_end || r.end().0 > P::VA_END
                {
                    return fail(Some(i), format!("bad region order or bounds at {r:?}"));
                }
                prev_end = r.end().0;
            }
            let mut bad = None;
            P::for_each_table(self.mem.arena(), s.root, &mut |f| {
                if table_set.insert(f.0) {
                    tables += 1;
                }
                if f.0 >= frames {
                    bad = Some(f);
                } else if level >= SanityLevel::Functions {
                    seen.push(f.0);
                }
            });
            if let Some(f) = bad {
                return fail(Some(i), format!("page table {f:?} outside the arena"));
            }
        }
        for i in 0..self.slots.len() {
            if self.slots.get(i).in_use != self.slots.is_in_use(i) {
                return fail(Some(i), "in-use flag and bitset disagree".into());
            }
        }
        if tables != self.mem.table_frames() {
            return fail(None, format!("{tables} table frames found, {} counted", self.mem.table_frames()));
        }
        if level < SanityLevel::Functions {
            return Ok(());
        }
        // Every table's count of present entries.
        for &t in &table_set {
            let have = P::present_entries(self.mem.arena(), Frame(t));
            if u64::from(self.mem.live(Frame(t))) != have {
                return fail(
                    None,
                    format!(
                        "table {:?} has {have} present entries, {} counted",
                        Frame(t),
                        self.mem.live(Frame(t))
                    ),
                );
            }
        }
        seen.extend(self.pool.iter().map(|f| f.0));
        // The huge zero page: pinned by the server, one reference per frame.
        if let Some(z) = self.huge_zero {
            seen.extend((0..P::HUGE_PAGES).map(|k| z.0 + k));
        }
        let mut huge_found = 0u64;
        let mut err: Option<SanityError> = None;
        let mut counted_leaves = std::collections::HashSet::new();
        // Mappings of every counted frame, one per process mapping it.
        let mut mapped: std::collections::HashMap<u64, u32> = std::collections::HashMap::new();
        for i in self.slots.in_use_indices() {
            let s = self.slots.get(i);
            // (first address, table, link writable) of every leaf table, in address order;
            // the visits below come in address order too.
            let mut leaves = Vec::new();
            P::for_each_leaf_table(self.mem.arena(), s.root, &mut |va, t, w| leaves.push((va, t, w)));
            // Every huge entry (block address, mapping of its first page), in address order:
            // its pages are in no leaf table, and are counted here once.
            let mut huge = Vec::new();
            P::for_each_huge(self.mem.arena(), s.root, full, &mut |va, m| huge.push((va, m)));
            huge_found += huge.len() as u64;
            let block = P::HUGE_PAGES * PAGE_SIZE;
            for &(va, m) in &huge {
                let problem = if m.frame.0 % P::HUGE_PAGES != 0 || va.0 % block != 0 {
                    Some("is not aligned to the block")
                } else if m.frame.0 + P::HUGE_PAGES > frames {
                    Some("ends beyond the arena")
                } else if m.flags.intersects(PageFlags::SHARED | PageFlags::DIRECT) {
                    Some("maps shared or direct memory")
                } else if Some(m.frame) == self.huge_zero && m.flags.contains(PageFlags::WRITE) {
                    Some("maps the huge zero page writable")
                } else if level >= SanityLevel::Detail
                    && !s
                        .regions
                        .find(va)
                        .is_some_and(|r| r.mem == MemType::Anon && r.end().0 >= va.0 + block)
                {
                    Some("is not inside one private anonymous region")
                } else {
                    None
                };
                if let Some(p) = problem {
                    return fail(Some(i), format!("huge entry at {va:?} to {:?} {p}", m.frame));
                }
            }
            let mut next_huge = 0;
            let mut next_leaf = 0;
            // Whether the current leaf table's entries are counted here (first space to
            // reach it), and whether its link is writable.
            let (mut count, mut link_writable) = (true, true);
            let mut visit = |va: VirtAddr, m: crate::paging::Mapping| {
                if err.is_some() {
                    return;
                }
                while next_leaf < leaves.len() && leaves[next_leaf].0 <= va {
                    let (_, t, w) = leaves[next_leaf];
                    count = counted_leaves.insert(t.0);
                    link_writable = w;
                    next_leaf += 1;
                }
                while next_huge < huge.len() && huge[next_huge].0 .0 + block <= va.0 {
                    next_huge += 1;
                }
                let in_huge = next_huge < huge.len() && huge[next_huge].0 <= va;
                let (count, link_writable) = if in_huge { (true, true) } else { (count, link_writable) };
                let direct = m.flags.contains(PageFlags::DIRECT);
                if !direct {
                    if m.frame.0 >= frames {
                        err = Some(SanityError {
                            slot: Some(i),
                            what: format!("{va:?} maps {:?} beyond the arena", m.frame),
                        });
                        return;
                    }
                    if count {
                        seen.push(m.frame.0);
                    }
                    *mapped.entry(m.frame.0).or_default() += 1;
                    let private = !m.flags.contains(PageFlags::SHARED);
                    if private
                        && link_writable
                        && m.flags.contains(PageFlags::WRITE)
                        && self.mem.refs().get(m.frame) > 1
                    {
                        err = Some(SanityError {
                            slot: Some(i),
                            what: format!(
                                "{va:?} is writable but {:?} has {} references",
                                m.frame,
                                self.mem.refs().get(m.frame)
                            ),
                        });
                        return;
                    }
                }
                if level >= SanityLevel::Detail {
                    let Some(r) = s.regions.find(va) else {
                        err = Some(SanityError {
                            slot: Some(i),
                            what: format!("{va:?} is mapped outside every region"),
                        });
                        return;
                    };
                    let want_user = r.prot.accessible();
                    let problem = if m.flags.contains(PageFlags::USER) != want_user {
                        Some("user bit disagrees with the region's protection")
                    } else if m.flags.contains(PageFlags::WRITE) && !r.prot.writable() {
                        Some("writable in a read-only region")
                    } else if m.flags.contains(PageFlags::SHARED) != (r.mem == MemType::Shared) {
                        Some("shared bit disagrees with the region's type")
                    } else if direct != matches!(r.mem, MemType::DirectPhys { .. }) {
                        Some("direct bit disagrees with the region's type")
                    } else if let MemType::DirectPhys { base } = r.mem {
                        (m.frame != base.add((va.0 - r.start.0) / PAGE_SIZE)).then_some("wrong device frame")
                    } else {
                        None
                    };
                    if let Some(p) = problem {
                        err = Some(SanityError {
                            slot: Some(i),
                            what: format!("{va:?} {:?} in {r:?}: {p}", m.flags),
                        });
                    }
                }
            };
            if level >= SanityLevel::Detail {
                // Every entry of the address space, to find any outside the regions.
                P::for_each_mapping(self.mem.arena(), s.root, full, &mut visit);
            } else {
                // The regions' entries only: a counted entry outside them would show as
                // counts summing to more than the references found.
                for r in s.regions.as_slice() {
                    P::for_each_mapping(self.mem.arena(), s.root, r.span(), &mut visit);
                }
            }
            if let Some(e) = err {
                return Err(e);
            }
        }
        if huge_found != self.mem.huge_entries() {
            return fail(
                None,
                format!("{huge_found} huge entries found, {} counted", self.mem.huge_entries()),
            );
        }
        // The sharers figure of the calls agrees with the processes' own mappings.
        let sharers = crate::calls::shared::sharer_counts(self, |_| true);
        if sharers != mapped {
            let f = mapped.keys().chain(sharers.keys()).find(|f| sharers.get(f) != mapped.get(f));
            let f = f.copied().unwrap_or_default();
            return fail(
                None,
                format!(
                    "{:?} is mapped {} times but the sharers figure says {}",
                    Frame(f),
                    mapped.get(&f).copied().unwrap_or(0),
                    sharers.get(&f).copied().unwrap_or(0)
                ),
            );
        }
        // Each referenced frame: its count equals its references and the allocator has it.
        seen.sort_unstable();
        let mut referenced = 0u64;
        let mut i = 0;
        while i < seen.len() {
            let frame = Frame(seen[i]);
            let mut n = 1;
            while i + n < seen.len() && seen[i + n] == frame.0 {
                n += 1;
            }
            i += n;
            referenced += 1;
            let have = self.mem.refs().get(frame);
            if u64::from(have) != n as u64 {
                return fail(None, format!("{frame:?} has count {have} but {n} references"));
            }
            if self.mem.allocator().is_free(frame) {
                return fail(None, format!("{frame:?} has count {have} and the allocator says free=true"));
            }
        }
        // Every other frame: count zero (the counts sum to the references found) and free
        // (the allocator, itself consistent, counts exactly the unreferenced frames free).
        let total: u64 = self.mem.refs().as_slice().iter().map(|&c| u64::from(c)).sum();
        if total != seen.len() as u64 {
            return fail(
                None,
                format!("reference counts sum to {total} but {} references exist", seen.len()),
            );
        }
        if let Err(e) = self.mem.allocator().check_invariants() {
            return fail(None, format!("allocator: {e}"));
        }
        let unreferenced = frames - referenced;
        if unreferenced != self.mem.allocator().free_count() {
            return fail(
                None,
                format!(
                    "{unreferenced} frames unreferenced, allocator counts {} free",
                    self.mem.allocator().free_count()
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::VmConfig;
    use crate::{Bitset, X86_64};

    fn vm() -> Vm<Bitset, X86_64> {
        Vm::boot(VmConfig::with_bytes(4 << 20)).expect("boot")
    }

    #[test]
    fn a_clean_server_passes_every_level() {
        let vm = vm();
        for level in [SanityLevel::Top, SanityLevel::Functions, SanityLevel::Detail] {
            assert_eq!(vm.check_invariants(level), Ok(()));
        }
    }

    #[test]
    fn a_frame_taken_but_unreferenced_is_found() {
        let mut vm = vm();
        vm.allocator_mut().alloc().expect("a frame");
        let e = vm.check_invariants(SanityLevel::Functions).unwrap_err();
        assert!(e.what.contains("unreferenced"), "{e}");
    }

    #[test]
    fn a_count_on_a_free_frame_is_found() {
        let mut vm = vm();
        let free = (0..vm.total_frames()).map(Frame).find(|&f| vm.mem.allocator().is_free(f)).expect("free");
        vm.mem.set_ref_for_test(free, 1);
        let e = vm.check_invariants(SanityLevel::Functions).unwrap_err();
        assert!(e.what.contains("sum"), "{e}");
    }

    #[test]
    fn a_huge_block_with_a_wrong_count_or_the_zero_page_unpinned_is_found() {
        use crate::client::{self, Touch};
        let cfg = VmConfig { huge: crate::HugePolicy::Always, ..VmConfig::with_bytes(16 << 20) };
        let mut vm: Vm<Bitset, X86_64> = Vm::boot(cfg).expect("boot");
        let p = client::fork(&mut vm, crate::endpoint::INIT_PROC_NR).unwrap();
        let n = <X86_64 as PagingFormat>::HUGE_PAGES;
        let a = client::mmap(&mut vm, p, &client::MmapArgs::anon(3 * n * PAGE_SIZE)).unwrap();
        let a = VirtAddr(a.0.next_multiple_of(n * PAGE_SIZE));
        let read = crate::paging::Access { write: false, user: true };
        assert_eq!(client::touch(&mut vm, p, a, read), Ok(Touch::Faulted));
        assert_eq!(
            client::touch(&mut vm, p, a.add_pages(n), crate::paging::Access { write: true, user: true }),
            Ok(Touch::Faulted)
        );
        assert_eq!(vm.check_invariants(SanityLevel::Detail), Ok(()));
        let block = vm.mmu_translate(p, a.add_pages(n + 7), read).unwrap().frame;
        vm.mem.set_ref_for_test(block, 2);
        // Found as a writable page of a shared frame, or as a count without a reference.
        let e = vm.check_invariants(SanityLevel::Functions).unwrap_err();
        assert!(e.what.contains(&format!("{block:?}")), "{e}");
        vm.mem.set_ref_for_test(block, 1);
        let zero = vm.huge_zero_page().unwrap();
        vm.huge_zero = None;
        let e = vm.check_invariants(SanityLevel::Functions).unwrap_err();
        assert!(e.what.contains(&format!("{:?} has count 2 but 1 references", zero)), "{e}");
        vm.huge_zero = Some(zero);
        assert_eq!(vm.check_invariants(SanityLevel::Detail), Ok(()));
    }

    #[test]
    fn a_wrong_count_on_a_used_frame_is_found() {
        let mut vm = vm();
        let root = vm.slots.get(0).root;
        vm.mem.set_ref_for_test(root, 2);
        let e = vm.check_invariants(SanityLevel::Functions).unwrap_err();
        assert!(e.what.contains("has count 2 but 1 references"), "{e}");
        assert_eq!(vm.check_invariants(SanityLevel::Top), Ok(()));
    }
}
