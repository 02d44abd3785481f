//! Synthetic storms: deterministic op streams, each mirroring a benchmark that measures one
//! memory-manager path on real kernels.
//!
//! | storm | mirrors | stresses |
//! |---|---|---|
//! | `fork` | UnixBench spawn, lmbench `lat_proc fork` | `VM_FORK` + `VM_EXIT` of a resident parent |
//! | `exec` | UnixBench execl, lmbench `lat_proc exec` | `VM_EXEC_NEWMEM` and the first faults of a new image |
//! | `shell` | lmbench `lat_proc shell`, `make -j4` | fork+exec+exit trees with ld.so-style mappings, interleaved |
//! | `mmap` | will-it-scale mmap1 | `VM_MMAP` + `VM_MUNMAP` of untouched regions |
//! | `fault` | will-it-scale page_fault1 | demand-zero faults (`VM_PAGEFAULT`, not present) |
//! | `cow` | will-it-scale page_fault3-style writes after fork | copy-on-write faults on both sides of a fork |
//! | `brk` | will-it-scale brk1/brk2 | `VM_BRK` up and down by a page |
//! | `discard` | will-it-scale tlb_flush1 | discard (madvise DONTNEED) and refault |
//! | `mixed` | a busy system | all of the above at random, bounded in memory; endless in soak mode |
//!
//! A storm is a [`Stream`]: a setup (the benchmark's parent process and its resident memory),
//! then rounds (one benchmark iteration each), then a teardown that exits every process, so
//! that a replay ends with every frame free again. [`generate`] plays `scale` rounds into a
//! [`Trace`]; soak mode pulls rounds from a [`Stream`] until its time is up. The same kind,
//! seed and scale always give the same ops (a fixed splitmix64, `vmstorm_core::rng`).
//!
//! This replaces the MINIX test programs that exercised VM by hand (`test10` spawning
//! children, `test44` mapping and touching memory), as op scripts instead of binaries.

mod brk;
mod cow;
mod discard;
mod exec;
mod fault;
mod fork;
mod gen;
mod mixed;
mod mmap;
mod shell;

use std::fmt;
use std::str::FromStr;

use crate::op::{Op, Trace};

pub(crate) use gen::Gen;

/// The storms, a closed set.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum StormKind {
    /// UnixBench spawn / lat_proc fork.
    Fork,
    /// UnixBench execl / lat_proc exec.
    Exec,
    /// lat_proc shell / make -j: fork+exec+exit trees.
    Shell,
    /// will-it-scale mmap1.
    Mmap,
    /// will-it-scale page_fault1.
    Fault,
    /// Write faults after fork.
    Cow,
    /// will-it-scale brk1.
    Brk,
    /// will-it-scale tlb_flush1.
    Discard,
    /// Everything at random.
    Mixed,
}

impl StormKind {
    /// Every storm, in report order.
    pub const ALL: [StormKind; 9] = [
        StormKind::Fork,
        StormKind::Exec,
        StormKind::Shell,
        StormKind::Mmap,
        StormKind::Fault,
        StormKind::Cow,
        StormKind::Brk,
        StormKind::Discard,
        StormKind::Mixed,
    ];

    /// The name used on the command line and in reports.
    pub const fn name(self) -> &'static str {
        match self {
            StormKind::Fork => "fork",
            StormKind::Exec => "exec",
            StormKind::Shell => "shell",
            StormKind::Mmap => "mmap",
            StormKind::Fault => "fault",
            StormKind::Cow => "cow",
            StormKind::Brk => "brk",
            StormKind::Discard => "discard",
            StormKind::Mixed => "mixed",
        }
    }

    /// One line on what the storm mirrors.
    pub const fn about(self) -> &'static str {
        match self {
            StormKind::Fork => "fork+exit of a resident parent (UnixBench spawn, lat_proc fork)",
            StormKind::Exec => "fork+exec+exit of small programs (UnixBench execl, lat_proc exec)",
            StormKind::Shell => "interleaved sh -> cc trees with ld.so mappings (lat_proc shell, make -j4)",
            StormKind::Mmap => "mmap+munmap of untouched 128 MiB regions (will-it-scale mmap1)",
            StormKind::Fault => "demand-zero write faults over 4 MiB regions (will-it-scale page_fault1)",
            StormKind::Cow => "copy-on-write faults in child and parent after fork",
            StormKind::Brk => "break up and down by one page (will-it-scale brk1/brk2)",
            StormKind::Discard => "discard and refault a 1 MiB region (will-it-scale tlb_flush1)",
            StormKind::Mixed => "all of the above at random, bounded in memory (soak with --duration)",
        }
    }

    /// Rounds of a default `vmstorm run` (about a second on a fast core).
    pub const fn default_scale(self) -> u64 {
        match self {
            StormKind::Fork => 4000,
            StormKind::Exec => 2000,
            StormKind::Shell => 300,
            StormKind::Mmap => 50_000,
            StormKind::Fault => 200,
            StormKind::Cow => 1000,
            StormKind::Brk => 50_000,
            StormKind::Discard => 400,
            StormKind::Mixed => 20_000,
        }
    }

    /// Rounds of a `compare --quick` cell.
    pub const fn quick_scale(self) -> u64 {
        let s = self.default_scale() / 4;
        if s == 0 {
            1
        } else {
            s
        }
    }
}

impl fmt::Display for StormKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A storm name that is not one of [`StormKind::ALL`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownStorm(pub String);

impl fmt::Display for UnknownStorm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = StormKind::ALL.iter().map(|k| k.name()).collect();
        write!(f, "unknown storm '{}' (expected one of {})", self.0, names.join(", "))
    }
}

impl std::error::Error for UnknownStorm {}

impl FromStr for StormKind {
    type Err = UnknownStorm;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StormKind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| UnknownStorm(s.to_string()))
    }
}

/// One storm's behaviour: what its parent sets up, what one iteration does.
pub(crate) trait Storm: Send {
    /// Creates the benchmark's long-lived processes and memory.
    fn setup(&mut self, g: &mut Gen);
    /// One iteration of the benchmark loop.
    fn round(&mut self, g: &mut Gen);
    /// Ends whatever the storm keeps open (before every live process exits).
    fn wind_down(&mut self, _g: &mut Gen) {}
}

fn storm_for(kind: StormKind) -> Box<dyn Storm> {
    match kind {
        StormKind::Fork => Box::new(fork::ForkStorm::default()),
        StormKind::Exec => Box::new(exec::ExecStorm::default()),
        StormKind::Shell => Box::new(shell::ShellStorm::default()),
        StormKind::Mmap => Box::new(mmap::MmapStorm::default()),
        StormKind::Fault => Box::new(fault::FaultStorm::default()),
        StormKind::Cow => Box::new(cow::CowStorm::default()),
        StormKind::Brk => Box::new(brk::BrkStorm::default()),
        StormKind::Discard => Box::new(discard::DiscardStorm::default()),
        StormKind::Mixed => Box::new(mixed::MixedStorm::default()),
    }
}

/// A storm as an open-ended stream of rounds (soak mode), or the source of [`generate`].
pub struct Stream {
    kind: StormKind,
    storm: Box<dyn Storm>,
    gen: Gen,
    rounds: u64,
    finished: bool,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream").field("kind", &self.kind).field("rounds", &self.rounds).finish()
    }
}

impl Stream {
    /// A stream of storm `kind` with seed `seed`; the setup ops are ready at the first pull.
    pub fn new(kind: StormKind, seed: u64) -> Stream {
        let mut storm = storm_for(kind);
        // Mix the storm into the seed so that two storms with one seed do not share choices.
        let mut gen = Gen::new(seed ^ (kind as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        storm.setup(&mut gen);
        Stream { kind, storm, gen, rounds: 0, finished: false }
    }

    /// The storm.
    pub fn kind(&self) -> StormKind {
        self.kind
    }

    /// Rounds generated so far.
    pub fn rounds(&self) -> u64 {
        self.rounds
    }

    /// Appends the ops of the next round (and, the first time, the setup's) to `out`.
    /// After [`Stream::finish`] nothing more is appended.
    pub fn next_round(&mut self, out: &mut Vec<Op>) {
        if self.finished {
            return;
        }
        self.storm.round(&mut self.gen);
        self.rounds += 1;
        self.gen.drain_into(out);
    }

    /// Appends the teardown: whatever the storm keeps open is ended and every live process
    /// exits (children before parents).
    pub fn finish(&mut self, out: &mut Vec<Op>) {
        if self.finished {
            return;
        }
        self.storm.wind_down(&mut self.gen);
        self.gen.exit_all();
        self.gen.drain_into(out);
        self.finished = true;
    }
}

/// About how many bytes of memory the ops of [`generate`]`(kind, seed, scale)` take: the
/// ops of a sample of rounds, scaled up (a storm's rounds are alike by design).
pub fn estimated_bytes(kind: StormKind, seed: u64, scale: u64) -> u64 {
    const SAMPLE: u64 = 64;
    let mut s = Stream::new(kind, seed);
    let mut ops = Vec::new();
    s.next_round(&mut ops);
    let first = ops.len() as u64;
    for _ in 1..SAMPLE {
        s.next_round(&mut ops);
    }
    let per_round = (ops.len() as u64 - first).div_ceil(SAMPLE - 1).max(1);
    let total = first.saturating_add(per_round.saturating_mul(scale.saturating_sub(1)));
    total.saturating_mul(std::mem::size_of::<Op>() as u64)
}

/// The trace of `scale` rounds of storm `kind` with seed `seed`, including setup and teardown.
pub fn generate(kind: StormKind, seed: u64, scale: u64) -> Trace {
    let mut trace = Trace::new(format!("storm:{kind}"));
    trace.header.notes.push(format!("storm {kind} seed={seed} scale={scale}: {}", kind.about()));
    let mut s = Stream::new(kind, seed);
    // The setup is emitted together with the first round.
    for _ in 0..scale.max(1) {
        s.next_round(&mut trace.ops);
    }
    s.finish(&mut trace.ops);
    trace
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::validate;

    #[test]
    fn every_storm_is_valid_and_deterministic() {
        for kind in StormKind::ALL {
            for seed in [1, 2, 99] {
                let t = generate(kind, seed, 25);
                validate(&t).unwrap_or_else(|e| panic!("{kind} seed {seed}: op {}: {}", e.index, e.message));
                assert_eq!(t, generate(kind, seed, 25), "{kind} not deterministic");
                assert!(t.ops.len() > 25, "{kind}: only {} ops", t.ops.len());
                // Every process exits at the end.
                let mut s = crate::trace::Shadow::new();
                for op in &t.ops {
                    s.apply(op).unwrap();
                }
                assert_eq!(s.live(), 0, "{kind}: processes left alive");
            }
        }
    }

    #[test]
    fn seed_and_scale_change_the_storm() {
        for kind in [StormKind::Shell, StormKind::Cow, StormKind::Mixed, StormKind::Exec] {
            assert_ne!(generate(kind, 1, 20).ops, generate(kind, 2, 20).ops, "{kind}");
        }
        for kind in StormKind::ALL {
            assert!(generate(kind, 1, 40).ops.len() > generate(kind, 1, 10).ops.len(), "{kind}");
        }
    }

    #[test]
    fn size_estimates_follow_the_scale() {
        for kind in StormKind::ALL {
            let real = (generate(kind, 3, 400).ops.len() * std::mem::size_of::<Op>()) as u64;
            let est = estimated_bytes(kind, 3, 400);
            assert!(est > real / 2 && est < real * 2, "{kind}: estimated {est}, generated {real}");
        }
        assert!(estimated_bytes(StormKind::Fork, 1, u64::MAX) > 1 << 50);
    }

    #[test]
    fn names_parse() {
        for kind in StormKind::ALL {
            assert_eq!(kind.name().parse::<StormKind>(), Ok(kind));
        }
        let e = "forks".parse::<StormKind>().unwrap_err();
        assert!(e.to_string().contains("fork, exec"));
    }

    #[test]
    fn stream_soak_stays_bounded_and_valid() {
        let mut s = Stream::new(StormKind::Mixed, 5);
        let mut shadow = crate::trace::Shadow::new();
        let mut ops = Vec::new();
        for _ in 0..20_000 {
            s.next_round(&mut ops);
            for op in ops.drain(..) {
                shadow.apply(&op).unwrap();
            }
        }
        s.finish(&mut ops);
        for op in ops.drain(..) {
            shadow.apply(&op).unwrap();
        }
        assert_eq!(shadow.live(), 0);
        let f = shadow.footprint();
        assert!(f.peak_total_pages < mixed::TOTAL_PAGES_CAP * 2, "{f:?}");
        assert!(f.peak_processes <= mixed::MAX_PROCS as u64 + 1, "{f:?}");
    }
}
