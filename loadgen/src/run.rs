//! One measured run on one server: boot, an untimed warm-up pass, then the timed pass (or,
//! in soak mode, rounds generated and played until the time is up).
//!
//! The warm-up first plays the ops once untimed, which gives the most frames they use at
//! once; then it has the server hand out twice that many frames (plus a margin) and write
//! each once (a few processes map and write, then exit), so that the host kernel's first
//! touch of an arena page (a Linux page fault of its own, about 2 µs, or a stall of
//! milliseconds when transparent huge pages compact) is never charged to the strategy being
//! measured: an allocator that walks to frames the untimed pass did not use would otherwise
//! pay it. The warm-up's cost follows what the run uses, not `--mem`: a small workload on a
//! large arena touches a small part of it. Every process has exited after it, so the timed
//! pass starts from the boot state with a warm arena. This is the harness around the server
//! that MINIX ran as a real system.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use vmstorm_core::client::{self, MmapArgs};
use vmstorm_core::endpoint::INIT_PROC_NR;
use vmstorm_core::{Access, Endpoint, FrameAllocator, PagingFormat, VirtAddr, Vm, PAGE_SIZE};

use crate::metrics::Metrics;
use crate::op::Op;
use crate::progress::Progress;
use crate::replay::{ReplayError, ReplayOptions, Replayer};
use crate::storms::{StormKind, Stream};
use crate::strategy::VmJob;

/// Play a list of ops: warm-up (optional), then the timed (and maybe verified) pass.
#[derive(Debug)]
pub struct PlayJob<'a> {
    /// The ops.
    pub ops: &'a [Op],
    /// Verify the timed pass.
    pub verify: bool,
    /// Play the ops once untimed first.
    pub warmup: bool,
    /// Wait here between warm-up and timed pass (shards start their timed passes together).
    pub barrier: Option<&'a Barrier>,
    /// Progress of the timed pass, in ops.
    pub progress: Option<&'a Progress>,
    /// Timed passes to make (at least 1); the pass with the median throughput is kept, so
    /// that one pass disturbed by the rest of the machine does not decide the figure.
    pub repeats: usize,
}

impl VmJob for PlayJob<'_> {
    type Output = Result<Metrics, ReplayError>;

    fn run<F: FrameAllocator, P: PagingFormat>(self, vm: &mut Vm<F, P>) -> Self::Output {
        let boot_free = vm.free_frames();
        let warm = if self.warmup {
            if let Some(p) = self.progress {
                p.warming();
            }
            warm_up(vm, boot_free, self.ops).map(|_| ())
        } else {
            Ok(())
        };
        // Wait even after a failed warm-up, so that other shards are not left waiting.
        if let Some(b) = self.barrier {
            b.wait();
        }
        warm?;
        if let Some(p) = self.progress {
            p.start();
        }
        let opts = ReplayOptions { verify: self.verify, ..ReplayOptions::default() };
        let mut passes = Vec::with_capacity(self.repeats.max(1));
        for _ in 0..self.repeats.max(1) {
            let mut r = Replayer::new(vm, boot_free, opts);
            r.play_all(self.ops, self.progress)?;
            passes.push(r.finish()?);
        }
        passes.sort_by(|a, b| a.ops_per_sec().total_cmp(&b.ops_per_sec()));
        let mid = passes.len() / 2;
        Ok(passes.swap_remove(mid))
    }
}

/// Soak: generate rounds of a storm and play them until `duration` has passed, then wind
/// the storm down (every process exits) and finish.
#[derive(Debug)]
pub struct SoakJob<'a> {
    /// The storm.
    pub kind: StormKind,
    /// Its seed.
    pub seed: u64,
    /// How long to keep going.
    pub duration: Duration,
    /// Verify while playing.
    pub verify: bool,
    /// Progress in elapsed seconds.
    pub progress: Option<&'a Progress>,
}

impl VmJob for SoakJob<'_> {
    type Output = Result<Metrics, ReplayError>;

    fn run<F: FrameAllocator, P: PagingFormat>(self, vm: &mut Vm<F, P>) -> Self::Output {
        let boot_free = vm.free_frames();
        let opts = ReplayOptions { verify: self.verify, ..ReplayOptions::default() };
        let mut r = Replayer::new(vm, boot_free, opts);
        let mut stream = Stream::new(self.kind, self.seed);
        let mut buf = Vec::with_capacity(4096);
        let start = Instant::now();
        let mut rounds = 0u64;
        loop {
            // Generate a batch of rounds, then play it (generation is outside the op timing).
            for _ in 0..64 {
                stream.next_round(&mut buf);
            }
            r.play_all(&buf, None)?;
            buf.clear();
            rounds += 64;
            if rounds.is_multiple_of(1024) {
                let t = start.elapsed();
                if let Some(p) = self.progress {
                    p.set(t.as_secs().min(self.duration.as_secs()));
                }
                if t >= self.duration {
                    break;
                }
            }
        }
        stream.finish(&mut buf);
        r.play_all(&buf, None)?;
        r.finish()
    }
}

/// Frames the warm-up writes beyond twice the untimed pass's peak.
const WARM_MARGIN: u64 = 1024;

/// The untimed warm-up: `ops` played once, then twice the frames they used at once (plus
/// `WARM_MARGIN`) written by the server; returns the frames [`warm_arena`] wrote.
///
/// # Errors
/// A refused call or a failed op.
pub fn warm_up<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    boot_free: u64,
    ops: &[Op],
) -> Result<u64, ReplayError> {
    let quiet = ReplayOptions { verify: false, timed: false, ..ReplayOptions::default() };
    let mut r = Replayer::new(vm, boot_free, quiet);
    r.play_all(ops, None)?;
    let peak = r.finish()?.server.frames_peak;
    warm_arena(vm, peak.saturating_mul(2).saturating_add(WARM_MARGIN))
}

/// Has the server allocate, write and free about `frames` frames (at most nearly every free
/// frame) once; returns how many it wrote.
///
/// # Errors
/// A refused call (the arena is then too small for even this).
pub fn warm_arena<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    frames: u64,
) -> Result<u64, ReplayError> {
    let fail = |what: &str, e: String| ReplayError {
        index: None,
        op: None,
        message: format!("warm-up {what}: {e}"),
    };
    let mut procs: Vec<Endpoint> = Vec::new();
    let write = Access { write: true, user: true };
    let mut result = Ok(());
    let mut written = 0u64;
    'outer: while procs.len() < 64 && written < frames {
        let free = vm.free_frames();
        // Leave room for page tables (one per 512 or 1024 pages) and the call paths.
        let want = free.saturating_sub(free / 32 + 512).min(frames - written);
        if want == 0 {
            break;
        }
        let ep = match client::fork(vm, INIT_PROC_NR) {
            Ok(ep) => ep,
            Err(e) => {
                result = Err(fail("fork", e.to_string()));
                break;
            }
        };
        procs.push(ep);
        // At most 1 GiB per process, in 256 MiB mappings: fits an i386 mmap area.
        let mut left = want.min(1 << 18);
        while left > 0 {
            let chunk = left.min(1 << 16);
            let va = match client::mmap(vm, ep, &MmapArgs::anon(chunk * PAGE_SIZE)) {
                Ok(va) => va,
                Err(e) => {
                    result = Err(fail("mmap", e.to_string()));
                    break 'outer;
                }
            };
            for k in 0..chunk {
                if let Err(e) = client::touch(vm, ep, VirtAddr(va.0 + k * PAGE_SIZE), write) {
                    result = Err(fail("touch", e.to_string()));
                    break 'outer;
                }
            }
            written += chunk;
            left -= chunk;
        }
    }
    for ep in procs {
        client::exit(vm, ep).map_err(|e| fail("exit", e.to_string()))?;
    }
    result.map(|()| written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storms::generate;
    use vmstorm_core::{Bitset, VmConfig, X86_64};

    #[test]
    fn warm_up_follows_what_the_run_uses_not_the_arena() {
        // 256 MiB of arena (65,536 frames) for a storm that uses a few hundred frames.
        let mut vm = Vm::<Bitset, X86_64>::boot(VmConfig::with_bytes(256 << 20)).unwrap();
        let boot_free = vm.free_frames();
        let trace = generate(StormKind::Fork, 1, 20);
        let written = warm_up(&mut vm, boot_free, &trace.ops).unwrap();
        assert!(written >= WARM_MARGIN && written < boot_free / 16, "{written} of {boot_free} frames");
        assert_eq!(vm.free_frames(), boot_free);
        // A large workload still warms (nearly) all it will use, within the arena.
        let all = warm_arena(&mut vm, u64::MAX).unwrap();
        assert!(all > boot_free * 9 / 10 && all < boot_free, "{all} of {boot_free}");
    }
}
