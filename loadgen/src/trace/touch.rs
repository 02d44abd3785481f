//! Synthesized page touches for traces that have none (strace cannot see page faults).
//!
//! Follows the "touch a fraction of every mapping" model: after each op that creates
//! accessible memory, `fraction` of its pages are touched — sequentially from the start for
//! anonymous memory, data, bss, heap growth and file data; in random order for read-only file
//! pages and text; top-down for the stack after an exec (at most its first 8 pages scaled by
//! the fraction). Writable memory is written, the rest read. After a fork the child writes a
//! few pages (stack top, then data) before it execs or exits, which is what makes
//! copy-on-write faults in a shell. A reservation made accessible by `mprotect` counts as
//! created then. Touches become `VM_PAGEFAULT`s in the replay, the way the MINIX kernel
//! forwarded a user's first access to each page.
//!
//! Deterministic: the same trace, fraction and seed give the same touches.

use std::fmt;

use crate::op::{MapKind, Op, Place, Prot, Trace};
use crate::trace::shadow::{Shadow, ShadowError};
use vmstorm_core::rng::SplitMix64;

/// How to synthesize touches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TouchOptions {
    /// Fraction of each new mapping's pages to touch, `0.0..=1.0`.
    pub fraction: f64,
    /// Seed of the random choices (which text pages, in which order).
    pub seed: u64,
    /// Pages a forked child writes before it execs or exits, at fraction 1 (scaled by the
    /// fraction, rounded up).
    pub fork_writes: u64,
}

impl Default for TouchOptions {
    fn default() -> Self {
        TouchOptions { fraction: 0.25, seed: 1, fork_writes: 8 }
    }
}

/// Why touches could not be synthesized.
#[derive(Clone, Debug, PartialEq)]
pub enum TouchError {
    /// The fraction is not in `0.0..=1.0`.
    BadFraction(f64),
    /// The input trace is inconsistent at this op.
    Inconsistent(ShadowError),
}

impl fmt::Display for TouchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TouchError::BadFraction(x) => write!(f, "touch fraction {x} is not in 0..=1"),
            TouchError::Inconsistent(e) => write!(f, "op {}: {}", e.index, e.message),
        }
    }
}

impl std::error::Error for TouchError {}

struct Synth {
    shadow: Shadow,
    out: Vec<Op>,
    rng: SplitMix64,
    fraction: f64,
    fork_writes: u64,
}

impl Synth {
    fn share(&self, pages: u64) -> u64 {
        if pages == 0 || self.fraction <= 0.0 {
            return 0;
        }
        ((pages as f64 * self.fraction).ceil() as u64).clamp(1, pages)
    }

    /// Emits `op` if it fits the shadow (it always should; a misfit is skipped, not wrong).
    fn touch(&mut self, op: Op) {
        if self.shadow.apply(&op).is_ok() {
            self.out.push(op);
        }
    }

    fn seq(&mut self, pid: crate::op::Pid, place: Place, pages: u64, write: bool) {
        if pages > 0 {
            self.touch(Op::Touch { pid, place, pages, write });
        }
    }

    /// `n` distinct random pages of `[0, extent)` as single-page touches at `at(page)`.
    fn random(&mut self, pid: crate::op::Pid, extent: u64, n: u64, write: bool, at: impl Fn(u64) -> Place) {
        if n == 0 {
            return;
        }
        let picks: Vec<u64> = if n * 2 >= extent {
            let mut all: Vec<u64> = (0..extent).collect();
            for i in 0..n as usize {
                let j = i + self.rng.below(extent - i as u64) as usize;
                all.swap(i, j);
            }
            all.truncate(n as usize);
            all
        } else {
            let mut seen = hashbrown::HashSet::with_capacity(n as usize);
            let mut v = Vec::with_capacity(n as usize);
            while (v.len() as u64) < n {
                let p = self.rng.below(extent);
                if seen.insert(p) {
                    v.push(p);
                }
            }
            v
        };
        for p in picks {
            self.touch(Op::Touch { pid, place: at(p), pages: 1, write });
        }
    }

    fn new_memory(
        &mut self,
        pid: crate::op::Pid,
        id: crate::op::MapId,
        off: u64,
        pages: u64,
        prot: Prot,
        kind: MapKind,
    ) {
        if !prot.accessible() {
            return;
        }
        let n = self.share(pages);
        if kind == MapKind::File && !prot.writable() {
            self.random(pid, pages, n, false, |p| Place::Map(id, off + p));
        } else {
            self.seq(pid, Place::Map(id, off), n, prot.writable());
        }
    }

    fn after(&mut self, op: &Op, before: Option<(u64, u64)>) {
        match *op {
            Op::Exec { pid, image } => {
                let n = self.share(image.text_pages);
                self.random(pid, image.text_pages, n, false, Place::Text);
                let d = image.data_pages + image.bss_pages;
                let n = self.share(d);
                self.seq(pid, Place::Data(0), n, true);
                let n = self.share(8).min(image.stack_pages);
                self.seq(pid, Place::Stack(0), n, true);
            }
            Op::Fork { child, .. } => {
                let k = self.share(self.fork_writes);
                let Some(p) = self.shadow.process(child) else {
                    return;
                };
                let img = p.image;
                let heap = p.heap_pages;
                let s = k.min(2).min(img.stack_pages);
                let d = (k - s).min(img.data_pages + img.bss_pages);
                let h = (k - s - d).min(heap);
                self.seq(child, Place::Stack(0), s, true);
                self.seq(child, Place::Data(0), d, true);
                self.seq(child, Place::Heap(0), h, true);
            }
            Op::Mmap { pid, id, spec } | Op::MmapOver { pid, id, spec, .. } => {
                self.new_memory(pid, id, 0, spec.pages, spec.prot, spec.kind)
            }
            Op::Mprotect { pid, id, offset, pages, prot } => {
                let m = self.shadow.process(pid).and_then(|p| p.maps.get(&id));
                if let Some(m) = m {
                    if !m.created.accessible() {
                        let kind = m.kind;
                        self.new_memory(pid, id, offset, pages, prot, kind);
                    }
                }
            }
            Op::Mremap { pid, id, new_pages } => {
                let old = before.map(|b| b.0).unwrap_or(new_pages);
                if new_pages > old {
                    let m = self.shadow.process(pid).and_then(|p| p.maps.get(&id));
                    if let Some(m) = m {
                        let prot = m.segs.last().map(|s| s.2).unwrap_or(Prot::NONE);
                        let kind = m.kind;
                        self.new_memory(pid, id, old, new_pages - old, prot, kind);
                    }
                }
            }
            Op::Brk { pid, heap_pages } => {
                let old = before.map(|b| b.1).unwrap_or(heap_pages);
                if heap_pages > old {
                    let n = self.share(heap_pages - old);
                    self.seq(pid, Place::Heap(old), n, true);
                }
            }
            _ => {}
        }
    }
}

/// Returns `trace` with touches added after the ops that create memory (see the module
/// docs), and a header note with the parameters. Touches already in the trace are kept.
pub fn synthesize_touches(trace: &Trace, opts: &TouchOptions) -> Result<Trace, TouchError> {
    synthesize_touches_indexed(trace, opts).map(|(t, _)| t)
}

/// [`synthesize_touches`], also returning for every op of the result the index of the op of
/// `trace` it is or follows (a synthesized touch belongs to the op that created its memory),
/// so that an error in the played stream can name the line of the trace it came from.
pub fn synthesize_touches_indexed(
    trace: &Trace,
    opts: &TouchOptions,
) -> Result<(Trace, Vec<usize>), TouchError> {
    if !(0.0..=1.0).contains(&opts.fraction) {
        return Err(TouchError::BadFraction(opts.fraction));
    }
    let mut s = Synth {
        shadow: Shadow::new(),
        out: Vec::with_capacity(trace.ops.len() * 2),
        rng: SplitMix64::new(opts.seed),
        fraction: opts.fraction,
        fork_writes: opts.fork_writes,
    };
    let mut source = Vec::with_capacity(trace.ops.len() * 2);
    for (index, op) in trace.ops.iter().enumerate() {
        // Sizes before the op, for growth: (mapping pages for mremap, heap pages).
        let before = s.shadow.process(op.pid()).map(|p| {
            let map = match op {
                Op::Mremap { id, .. } => p.maps.get(id).map(|m| m.pages).unwrap_or(0),
                _ => 0,
            };
            (map, p.heap_pages)
        });
        s.shadow.apply(op).map_err(|message| TouchError::Inconsistent(ShadowError { index, message }))?;
        s.out.push(*op);
        s.after(op, before);
        source.resize(s.out.len(), index);
    }
    let mut header = trace.header.clone();
    header.notes.push(format!(
        "touches: synthesized fraction={} seed={} fork_writes={}",
        opts.fraction, opts.seed, opts.fork_writes
    ));
    Ok((Trace { header, ops: s.out }, source))
}

/// The trace a replay should play: `trace` itself when it already has touches or the
/// fraction is 0, else `trace` with synthesized touches (what `--touch-fraction` means for
/// imported traces).
pub fn ensure_touches(trace: Trace, opts: &TouchOptions) -> Result<Trace, TouchError> {
    ensure_touches_indexed(trace, opts).map(|(t, _)| t)
}

/// [`ensure_touches`] with the source index of every op (see
/// [`synthesize_touches_indexed`]); the identity when nothing was added.
pub fn ensure_touches_indexed(trace: Trace, opts: &TouchOptions) -> Result<(Trace, Vec<usize>), TouchError> {
    if !(0.0..=1.0).contains(&opts.fraction) {
        return Err(TouchError::BadFraction(opts.fraction));
    }
    if trace.has_touches() || opts.fraction == 0.0 {
        let n = trace.ops.len();
        return Ok((trace, (0..n).collect()));
    }
    synthesize_touches_indexed(&trace, opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{ForkKind, ImageSize, MapId, MapSpec, Pid};
    use crate::trace::validate;

    fn sample() -> Trace {
        let p1 = Pid(1);
        let spec = |pages, prot, kind| MapSpec { pages, prot, kind, prealloc: false };
        Trace {
            ops: vec![
                Op::Exec { pid: p1, image: ImageSize::DEFAULT },
                Op::Mmap { pid: p1, id: MapId(1), spec: spec(100, Prot::RW, MapKind::Private) },
                Op::Mmap { pid: p1, id: MapId(2), spec: spec(40, Prot::READ, MapKind::File) },
                Op::Mmap { pid: p1, id: MapId(3), spec: spec(64, Prot::NONE, MapKind::Private) },
                Op::Mprotect { pid: p1, id: MapId(3), offset: 0, pages: 16, prot: Prot::RW },
                Op::Brk { pid: p1, heap_pages: 10 },
                Op::Fork { parent: p1, child: Pid(2), kind: ForkKind::Fork },
                Op::Exit { pid: Pid(2) },
                Op::Exit { pid: p1 },
            ],
            ..Trace::default()
        }
    }

    fn touched(t: &Trace) -> u64 {
        t.ops
            .iter()
            .map(|o| match o {
                Op::Touch { pages, .. } => *pages,
                _ => 0,
            })
            .sum()
    }

    #[test]
    fn full_fraction_touches_every_accessible_page_and_stays_valid() {
        let opts = TouchOptions { fraction: 1.0, seed: 7, fork_writes: 8 };
        let t = synthesize_touches(&sample(), &opts).unwrap();
        validate(&t).unwrap();
        // text 32 + data 8 + stack 8 + anon 100 + file 40 + mprotected 16 + heap 10 + fork 8
        assert_eq!(touched(&t), 32 + 8 + 8 + 100 + 40 + 16 + 10 + 8);
        // The PROT_NONE part beyond the mprotect is never touched.
        assert!(!t.ops.iter().any(|o| matches!(
            o,
            Op::Touch { place: Place::Map(MapId(3), off), .. } if *off >= 16
        )));
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        let o = |seed| TouchOptions { fraction: 0.3, seed, fork_writes: 8 };
        let a = synthesize_touches(&sample(), &o(1)).unwrap();
        assert_eq!(a, synthesize_touches(&sample(), &o(1)).unwrap());
        assert_ne!(a.ops, synthesize_touches(&sample(), &o(2)).unwrap().ops);
        validate(&a).unwrap();
        let none = synthesize_touches(&sample(), &TouchOptions { fraction: 0.0, ..o(1) }).unwrap();
        assert_eq!(none.ops, sample().ops);
    }

    #[test]
    fn ensure_touches_only_adds_when_missing() {
        let o = TouchOptions::default();
        let once = ensure_touches(sample(), &o).unwrap();
        assert!(once.has_touches());
        assert_eq!(ensure_touches(once.clone(), &o).unwrap(), once);
        let zero = TouchOptions { fraction: 0.0, ..o };
        assert_eq!(ensure_touches(sample(), &zero).unwrap(), sample());
    }

    #[test]
    fn indexed_touches_point_at_the_op_they_follow() {
        let opts = TouchOptions { fraction: 1.0, seed: 7, fork_writes: 8 };
        let (t, src) = synthesize_touches_indexed(&sample(), &opts).unwrap();
        assert_eq!(src.len(), t.ops.len());
        assert!(src.windows(2).all(|w| w[0] <= w[1]));
        for (op, &i) in t.ops.iter().zip(&src) {
            match op {
                Op::Touch { .. } => {}
                op => assert_eq!(*op, sample().ops[i]),
            }
        }
        // The first touch of mapping m2 follows the mmap of m2 (op 2).
        let k =
            t.ops.iter().position(|o| matches!(o, Op::Touch { place: Place::Map(MapId(2), _), .. })).unwrap();
        assert_eq!(src[k], 2);
    }

    #[test]
    fn bad_inputs_are_errors() {
        for f in [-0.1, 1.5, f64::NAN] {
            let o = TouchOptions { fraction: f, ..TouchOptions::default() };
            assert!(matches!(synthesize_touches(&sample(), &o), Err(TouchError::BadFraction(_))));
        }
        let mut t = sample();
        t.ops.insert(0, Op::Exit { pid: Pid(9) });
        assert!(matches!(
            synthesize_touches(&t, &TouchOptions::default()),
            Err(TouchError::Inconsistent(ShadowError { index: 0, .. }))
        ));
    }
}
