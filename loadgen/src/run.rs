//! One measured run on one server: boot, an untimed warm-up pass, then the timed pass (or,
//! in soak mode, rounds generated and played until the time is up).
//!
//! The warm-up first has the server hand out every free frame once (a few processes map and
//! write nearly all free memory, then exit), so that the host kernel's first touch of each
//! arena page (a Linux page fault of its own, about 2 µs, or a stall of milliseconds when
//! transparent huge pages compact) is never charged to the strategy being measured: an
//! allocator that walks the whole arena would otherwise pay it on every new frame. Then it
//! plays the same ops once untimed. Every process has exited after it, so the timed pass
//! starts from the boot state with a warm arena. This is the harness around the server that MINIX ran as a
//! real system.

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
            warm_arena(vm)?;
            let quiet = ReplayOptions { verify: false, timed: false, ..ReplayOptions::default() };
            let mut r = Replayer::new(vm, boot_free, quiet);
            r.play_all(self.ops, None).and_then(|_| r.finish().map(|_| ()))
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

/// Has the server allocate, write and free (nearly) every free frame once.
///
/// # Errors
/// A refused call (the arena is then too small for even this).
pub fn warm_arena<F: FrameAllocator, P: PagingFormat>(vm: &mut Vm<F, P>) -> Result<(), ReplayError> {
    let fail = |what: &str, e: String| ReplayError {
        index: None,
        op: None,
        message: format!("warm-up {what}: {e}"),
    };
    let mut procs: Vec<Endpoint> = Vec::new();
    let write = Access { write: true, user: true };
    let mut result = Ok(());
    'outer: while procs.len() < 64 {
        let free = vm.free_frames();
        // Leave room for page tables (one per 512 or 1024 pages) and the call paths.
        let want = free.saturating_sub(free / 32 + 512);
        if want < 1024 {
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
            left -= chunk;
        }
    }
    for ep in procs {
        client::exit(vm, ep).map_err(|e| fail("exit", e.to_string()))?;
    }
    result
}
