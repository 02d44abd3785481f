//! `--shards N`: N independent servers on N rayon threads, each with its own arena and its
//! own workload (the storm's seed plus the shard index), and the speed-up over one shard
//! measured in the same run.
//!
//! MINIX ran one VM server; the shards model a machine partitioned into independent memory
//! managers (one per core or per NUMA node) to show how the core scales when nothing is
//! shared. First one shard runs alone (the baseline), then all N run with their timed passes
//! started together at a barrier after their warm-ups; the aggregate throughput is all ops
//! over the slowest shard's time.

use std::sync::Barrier;

use rayon::prelude::*;

use crate::metrics::{Metrics, ShardFigures};
use crate::op::Trace;
use crate::replay::ReplayError;
use crate::run::PlayJob;
use crate::strategy::{with_vm_sized, Strategy};

/// What a sharded run measured.
#[derive(Clone, Debug)]
pub struct ShardRun {
    /// All shards merged (ops added, seconds = the slowest shard's).
    pub total: Metrics,
    /// Each shard's own figures.
    pub per_shard: Vec<ShardFigures>,
    /// One shard alone, measured first.
    pub single: Metrics,
    /// Aggregate ops/s over the single shard's ops/s.
    pub speedup: f64,
}

/// Why a sharded run failed.
#[derive(Debug)]
pub enum ShardError {
    /// A server did not boot.
    Boot(String),
    /// A shard's replay failed.
    Replay(usize, ReplayError),
}

impl std::fmt::Display for ShardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShardError::Boot(e) => write!(f, "{e}"),
            ShardError::Replay(i, e) => write!(f, "shard {i}: {e}"),
        }
    }
}

impl std::error::Error for ShardError {}

fn one(
    trace: &Trace,
    strategy: &Strategy,
    mem: u64,
    slots: usize,
    verify: bool,
    warmup: bool,
    barrier: Option<&Barrier>,
) -> Result<Result<Metrics, ReplayError>, ShardError> {
    let job = PlayJob { ops: &trace.ops, verify, warmup, barrier, progress: None, repeats: 1 };
    with_vm_sized(strategy, mem, slots, job)
        .map_err(|e| ShardError::Boot(format!("cannot boot the server: {e}")))
}

/// Runs `traces.len()` shards (trace `i` on shard `i`) under `strategy`, each with `mem`
/// bytes and `slots` process slots, after running shard 0's trace alone.
///
/// # Errors
/// A boot failure or the first shard's replay error.
pub fn run_shards(
    traces: &[Trace],
    strategy: &Strategy,
    mem: u64,
    slots: usize,
    verify: bool,
    warmup: bool,
) -> Result<ShardRun, ShardError> {
    let n = traces.len().max(1);
    let single =
        one(&traces[0], strategy, mem, slots, verify, warmup, None)?.map_err(|e| ShardError::Replay(0, e))?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .map_err(|e| ShardError::Boot(format!("cannot start {n} threads: {e}")))?;
    let barrier = Barrier::new(n);
    // A shard that fails before the barrier would leave the others waiting: boot errors
    // are caught by running shard 0 alone first with the same configuration, and replay
    // errors in the warm-up are errors of the same trace the others play.
    let results: Vec<Result<Result<Metrics, ReplayError>, ShardError>> = pool.install(|| {
        traces.par_iter().map(|t| one(t, strategy, mem, slots, verify, warmup, Some(&barrier))).collect()
    });
    let mut total = Metrics::new();
    let mut per_shard = Vec::with_capacity(n);
    for (i, r) in results.into_iter().enumerate() {
        let m = r?.map_err(|e| ShardError::Replay(i, e))?;
        per_shard.push(ShardFigures {
            shard: i,
            ops: m.ops,
            seconds: m.seconds,
            ops_per_sec: m.ops_per_sec(),
        });
        total.merge(&m);
    }
    let speedup = if single.ops_per_sec() > 0.0 { total.ops_per_sec() / single.ops_per_sec() } else { 0.0 };
    Ok(ShardRun { total, per_shard, single, speedup })
}
