//! Whole-state invariant checks at graded levels.
//!
//! Replaces `servers/vm/sanitycheck.h` (`SANITYCHECK(SCL_TOP|SCL_FUNCTIONS|SCL_DETAIL)`),
//! `map_sanitycheck`, `pt_sanitycheck` and the allocator's (broken, §21.16) self check.
//! * [`SanityLevel::Top`]: slot table (in-use bitset, live roots), regions sorted,
//!   aligned, non-empty and non-overlapping, call-mask ids valid, page-table frame count.
//! * [`SanityLevel::Functions`]: also every frame's reference count equals the references
//!   to it (leaf entries of every address space, page tables, the pre-zeroed pool), no
//!   frame is both free and used, the allocator's free count agrees, and no private page
//!   is writable while its frame is shared (copy-on-write isolation).
//! * [`SanityLevel::Detail`]: also every present entry lies inside a region of its
//!   process and agrees with it (user bit, write permission, shared/direct kind, device
//!   frame).

use crate::addr::{Frame, PageSpan, VirtAddr, PAGE_SIZE};
use crate::frames::FrameAllocator;
use crate::paging::{PageFlags, PagingFormat};
use crate::region::MemType;
use crate::server::Vm;
use core::fmt;

/// How much to check.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum SanityLevel {
    /// Cheap structural checks (`SCL_TOP`).
    Top,
    /// Plus reference counts and allocator agreement (`SCL_FUNCTIONS`).
    Functions,
    /// Plus every page-table entry against its region (`SCL_DETAIL`).
    Detail,
}

/// A broken invariant: what, and where.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SanityError {
    /// The slot concerned, if any.
    pub slot: Option<usize>,
    /// What is wrong.
    pub what: String,
}

impl fmt::Display for SanityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.slot {
            Some(s) => write!(f, "slot {s}: {}", self.what),
            None => write!(f, "{}", self.what),
        }
    }
}

impl std::error::Error for SanityError {}

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
        let mut expected: Vec<u32> =
            if level >= SanityLevel::Functions { vec![0; frames as usize] } else { Vec::new() };
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
            P::for_each_table(&self.mem.arena, s.root, &mut |f| {
                tables += 1;
                if f.0 >= frames {
                    bad = Some(f);
                } else if level >= SanityLevel::Functions {
                    expected[f.index()] += 1;
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
        if tables != self.mem.table_frames {
            return fail(None, format!("{tables} table frames found, {} counted", self.mem.table_frames));
        }
        if level < SanityLevel::Functions {
            return Ok(());
        }
        for &f in &self.pool {
            expected[f.index()] += 1;
        }
        let mut err: Option<SanityError> = None;
        for i in self.slots.in_use_indices() {
            let s = self.slots.get(i);
            P::for_each_mapping(&self.mem.arena, s.root, full, &mut |va, m| {
                if err.is_some() {
                    return;
                }
                let direct = m.flags.contains(PageFlags::DIRECT);
                if !direct {
                    if m.frame.0 >= frames {
                        err = Some(SanityError {
                            slot: Some(i),
                            what: format!("{va:?} maps {:?} beyond the arena", m.frame),
                        });
                        return;
                    }
                    expected[m.frame.index()] += 1;
                    let private = !m.flags.contains(PageFlags::SHARED);
                    if private && m.flags.contains(PageFlags::WRITE) && self.mem.refs.get(m.frame) > 1 {
                        err = Some(SanityError {
                            slot: Some(i),
                            what: format!(
                                "{va:?} is writable but {:?} has {} references",
                                m.frame,
                                self.mem.refs.get(m.frame)
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
            });
            if let Some(e) = err {
                return Err(e);
            }
        }
        let mut unreferenced = 0u64;
        for f in 0..frames {
            let frame = Frame(f);
            let have = self.mem.refs.get(frame);
            if have != expected[f as usize] {
                return fail(
                    None,
                    format!("{frame:?} has count {have} but {} references", expected[f as usize]),
                );
            }
            let free = self.mem.alloc.is_free(frame);
            if free == (have > 0) {
                return fail(None, format!("{frame:?} has count {have} and the allocator says free={free}"));
            }
            if have == 0 {
                unreferenced += 1;
            }
        }
        if unreferenced != self.mem.alloc.free_count() {
            return fail(
                None,
                format!(
                    "{unreferenced} frames unreferenced, allocator counts {} free",
                    self.mem.alloc.free_count()
                ),
            );
        }
        Ok(())
    }
}
