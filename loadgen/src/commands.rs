//! What each `vmstorm` sub-command does, on top of the parsed command line ([`crate::cli`]).
//!
//! Every failure comes back as a [`CliError`], one line that `main` prints as
//! `vmstorm: error: ...` before exiting non-zero; nothing here panics on bad input.

use std::fmt;
use std::path::Path;

use crate::cli::{
    Cli, Command, CompareArgs, ImportArgs, PlayArgs, RecordArgs, ReplayArgs, RunArgs, StrategyArgs,
};
use crate::compare;
use crate::host::{Bytes, Host};
use crate::metrics::{RunReport, Workload};
use crate::op::Trace;
use crate::progress::Progress;
use crate::run::{PlayJob, SoakJob};
use crate::shards::run_shards;
use crate::storms::{estimated_bytes, generate};
use crate::strategy::{
    matrix, with_folio, with_hot, with_huge, with_vm_sized, FolioSize, ReportNames, Strategy,
};
use crate::trace::{self, Format, ImportOptions, RecordOptions, TouchOptions};

/// A command failure: one line, printed after `vmstorm: error: `.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the source said.
        f.write_str(&self.0.replace('\n', " "))
    }
}

impl<E: std::error::Error> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError(e.to_string())
    }
}

fn err(msg: impl Into<String>) -> CliError {
    CliError(msg.into())
}

/// Runs the parsed command line (no sub-command: `compare --quick`).
///
/// # Errors
/// The command's failure.
pub fn execute(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        None => compare_cmd(CompareArgs::quick_default(), "vmstorm"),
        Some(Command::Run(a)) => run_cmd(a),
        Some(Command::Replay(a)) => replay_cmd(a),
        Some(Command::Import(a)) => import_cmd(a),
        Some(Command::Record(a)) => record_cmd(a),
        Some(Command::Compare(a)) => {
            // The program by its name, not by the path it was started from.
            let line = std::iter::once("vmstorm".to_string())
                .chain(std::env::args().skip(1))
                .collect::<Vec<_>>()
                .join(" ");
            compare_cmd(a, &line)
        }
    }
}

/// What `run` and `replay` play under each strategy.
#[derive(Clone, Copy)]
enum Play<'a> {
    /// These ops, one trace per shard.
    Traces(&'a [Trace]),
    /// Rounds of a storm until the time is up (one server).
    Soak(&'a RunArgs, std::time::Duration),
}

/// The strategies named on the command line, once the host is known to hold `--mem` ×
/// `--shards` (a one-line error otherwise); warns when the shards exceed the cores.
fn preamble(strat: &StrategyArgs, play: &PlayArgs) -> Result<Vec<Strategy>, CliError> {
    let strategies = matrix(&strat.alloc, &strat.paging, &strat.fork, &strat.zero)
        .and_then(|m| with_hot(m, &strat.hot))
        .and_then(|s| with_folio(s, &strat.folio))
        .and_then(|s| with_huge(s, &strat.huge))
        .map_err(CliError)?;
    let host = Host::current();
    let what = format!("--mem {} × --shards {}", Bytes(strat.mem), play.shards);
    host.check_memory(strat.mem.saturating_mul(play.shards), &what, "use a smaller --mem or fewer --shards")
        .map_err(CliError)?;
    if let Some(w) = host.shard_warning(play.shards) {
        eprintln!("vmstorm: warning: {w}");
    }
    Ok(strategies)
}

/// What a replayed file says about the host's own faults, for `predicted_host_faults`.
#[derive(Clone, Copy)]
enum HostFacts<'a> {
    /// A perf capture: its ops and the importer's fact of each recorded fault.
    Perf(&'a [crate::op::Op], &'a [trace::perf::TouchFault]),
    /// A file without recorded faults, and why.
    None(&'static str),
}

/// A host prediction: the count at the recorded placement, the range over placements (with
/// huge pages on), or why there is none.
type HostPrediction = (Option<u64>, Option<[u64; 2]>, Option<String>);

impl HostFacts<'_> {
    /// The prediction for `strategy`'s folio size and huge-page policy (× `shards`), or why
    /// there is none.
    fn predict(self, strategy: &Strategy, shards: u64) -> HostPrediction {
        use trace::perf::predict;
        match self {
            HostFacts::Perf(ops, facts) => {
                let at = match predict::predict_host_faults(ops, facts, strategy.folio, strategy.huge) {
                    Ok(n) => n,
                    Err(e) => return (None, None, Some(e.to_string())),
                };
                // The range is the PMD model's over placements with 4 KiB below it; with
                // mTHP sizes too it is not computed (see docs/large-folios.md §11).
                let range = (strategy.huge == vmstorm_core::HugePolicy::Always
                    && strategy.folio == FolioSize::K4)
                    .then(|| predict::predict_range(ops, facts))
                    .transpose();
                match range {
                    Ok(r) => (Some(at * shards), r.map(|(lo, hi)| [lo * shards, hi * shards]), None),
                    Err(e) => (None, None, Some(e.to_string())),
                }
            }
            HostFacts::None(why) => (None, None, Some(why.to_string())),
        }
    }
}

/// Plays `what` under each strategy, prints each report (and a table for several), and
/// writes them to `--json`. `sources` says where each op of a trace file came from, for
/// errors.
fn play_and_report(
    work: &Workload,
    what: Play<'_>,
    strat: &StrategyArgs,
    play: &PlayArgs,
    sources: Option<&trace::Sources>,
    host: Option<HostFacts<'_>>,
) -> Result<(), CliError> {
    let located = |e: &crate::replay::ReplayError| match sources {
        Some(s) => e.located(s),
        None => format!("{}: {e}", work.label()),
    };
    // A perf capture's recorded faults, to set beside the replayed ones.
    let (first, shards) = match what {
        Play::Traces(t) => (t.first(), t.len() as u64),
        Play::Soak(..) => (None, 1),
    };
    let recorded = first.and_then(|t| t.header.recorded);
    let mix = recorded.and(first).map(trace::perf::explain::TouchMix::of);
    let strategies = preamble(strat, play)?;
    let mut reports = Vec::new();
    let mut cells = Vec::new();
    let mut predictions: Vec<((FolioSize, vmstorm_core::HugePolicy), HostPrediction)> = Vec::new();
    for s in &strategies {
        let (report, metrics) = match what {
            Play::Traces(traces) if play.shards > 1 => {
                let r = run_shards(traces, s, strat.mem, strat.slots, play.verify, !play.no_warmup).map_err(
                    |e| match e {
                        crate::shards::ShardError::Replay(i, re) => {
                            err(format!("shard {i}: {}", located(&re)))
                        }
                        e => CliError::from(e),
                    },
                )?;
                let mut report = RunReport::new(work, &s.names(), traces.len(), &r.total);
                report.per_shard = r.per_shard.clone();
                report.speedup_vs_one_shard = Some(r.speedup);
                (report, r.total)
            }
            Play::Traces(traces) => {
                let trace = &traces[0];
                let progress = Progress::new(trace.ops.len() as u64, "ops");
                let job = PlayJob {
                    ops: &trace.ops,
                    verify: play.verify,
                    warmup: !play.no_warmup,
                    barrier: None,
                    progress: Some(&progress),
                    repeats: 1,
                };
                let m = with_vm_sized(s, strat.mem, strat.slots, job)
                    .map_err(|e| err(format!("cannot boot the server: {e}")))?;
                progress.finish();
                let m = m.map_err(|e| err(located(&e)))?;
                (RunReport::new(work, &s.names(), 1, &m), m)
            }
            Play::Soak(a, duration) => {
                let progress = Progress::new(duration.as_secs().max(1), "seconds");
                let job = SoakJob {
                    kind: a.storm,
                    seed: a.seed,
                    duration,
                    verify: play.verify,
                    progress: Some(&progress),
                };
                let m = with_vm_sized(s, strat.mem, strat.slots, job)
                    .map_err(|e| err(format!("cannot boot the server: {e}")))?;
                progress.finish();
                let m = m.map_err(|e| err(format!("soak {}: {e}", a.storm)))?;
                let mut report = RunReport::new(work, &s.names(), 1, &m);
                report.scale = None;
                (report, m)
            }
        };
        let mut report = report;
        report.recorded_faults = recorded.map(|r| r.faults * shards);
        if let Some(h) = host {
            // Strategies differing in allocator or format predict alike: compute once.
            let key = (s.folio, s.huge);
            let p = match predictions.iter().find(|(k, _)| *k == key) {
                Some((_, p)) => p.clone(),
                None => {
                    let p = h.predict(s, shards);
                    predictions.push((key, p.clone()));
                    p
                }
            };
            (report.predicted_host_faults, report.predicted_host_faults_range, report.host_prediction) = p;
        }
        print!("{}", report.summary());
        if let (Some(r), Some(mix)) = (recorded, mix) {
            print!("{}", trace::perf::explain::recorded_vs_replayed(&r, &mix, &report));
        }
        cells.push(compare::Cell::new(work.label(), s.label(), report.clone(), &metrics));
        reports.push(report);
    }
    if strategies.len() > 1 {
        println!();
        print!("{}", compare::terminal_table(&cells));
    }
    if let Some(path) = &play.json {
        let text = if reports.len() == 1 {
            reports[0].to_json()
        } else {
            serde_json::to_string_pretty(&reports).unwrap_or_default()
        };
        std::fs::write(path, text + "\n")
            .map_err(|e| err(format!("{}: cannot write: {e}", path.display())))?;
    }
    Ok(())
}

fn run_cmd(a: RunArgs) -> Result<(), CliError> {
    if let Some(duration) = a.duration {
        if a.play.shards > 1 {
            return Err(err("--duration runs one server; drop --shards"));
        }
        let work = Workload::Storm { name: a.storm.name().to_string(), seed: a.seed, scale: 0 };
        return play_and_report(&work, Play::Soak(&a, duration), &a.strategy, &a.play, None, None);
    }
    let scale = a.scale.unwrap_or(a.storm.default_scale());
    if scale == 0 {
        return Err(err("--scale must be at least 1"));
    }
    // The storm is generated whole (the same ops for the warm-up and the timed pass, and
    // one trace per shard): refuse a scale whose ops cannot fit.
    let bytes = estimated_bytes(a.storm, a.seed, scale).saturating_mul(a.play.shards);
    Host::current()
        .check_memory(
            bytes,
            &format!(
                "--scale {scale} of the {} storm ({} shard(s) of ops held in memory)",
                a.storm, a.play.shards
            ),
            "use a smaller --scale, or --duration for a long run (its rounds are streamed)",
        )
        .map_err(CliError)?;
    let work = Workload::Storm { name: a.storm.name().to_string(), seed: a.seed, scale };
    let traces: Vec<Trace> =
        (0..a.play.shards).map(|i| generate(a.storm, a.seed.wrapping_add(i), scale)).collect();
    if let Some(path) = &a.save_trace {
        trace::save(&traces[0], path)?;
    }
    play_and_report(&work, Play::Traces(&traces), &a.strategy, &a.play, None, None)
}

/// Loads a trace file of any format and adds touches when it has none.
pub fn load_for_replay(path: &Path, fraction: f64, seed: u64) -> Result<Trace, CliError> {
    load_for_replay_with(path, fraction, seed, &ImportOptions::default())
}

/// [`load_for_replay`] with import options (`allow_lost` for a lossy perf capture).
pub fn load_for_replay_with(
    path: &Path,
    fraction: f64,
    seed: u64,
    import: &ImportOptions,
) -> Result<Trace, CliError> {
    if !(0.0..=1.0).contains(&fraction) {
        return Err(err(format!("--touch-fraction {fraction} is not between 0 and 1")));
    }
    let opts = TouchOptions { fraction, seed, ..TouchOptions::default() };
    Ok(trace::prepare(path, import, &opts)?.trace)
}

fn replay_cmd(a: ReplayArgs) -> Result<(), CliError> {
    if !(0.0..=1.0).contains(&a.touch_fraction) {
        return Err(err(format!("--touch-fraction {} is not between 0 and 1", a.touch_fraction)));
    }
    let touch = TouchOptions { fraction: a.touch_fraction, seed: a.seed, ..TouchOptions::default() };
    let p = trace::prepare(&a.trace, &a.import.options(), &touch)?;
    if let Some(r) = &p.report {
        // What the import dropped, clamped or approximated, as `import` prints it.
        print!("{r}");
    }
    if let Some(r) = &p.perf {
        print!("{r}");
    }
    let name = a.trace.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let work = Workload::Trace(name);
    let host = match (&p.perf, &p.report) {
        (Some(r), _) => HostFacts::Perf(&p.trace.ops, &r.touch_faults),
        (None, Some(_)) => {
            HostFacts::None("an strace log records no page faults; record with perf to predict")
        }
        (None, None) => HostFacts::None("a vmstorm trace keeps no host fault facts; replay the perf capture"),
    };
    let traces = vec![p.trace.clone(); a.play.shards as usize];
    play_and_report(&work, Play::Traces(&traces), &a.strategy, &a.play, Some(&p.sources), Some(host))
}

fn import_cmd(a: ImportArgs) -> Result<(), CliError> {
    let (bytes, name) = trace::read_input(&a.log)?;
    if !matches!(trace::detect(&bytes), Format::Strace | Format::Perf) {
        return Err(err(format!("{name}: already a vmstorm trace, not an strace log or perf capture")));
    }
    let opts = ImportOptions { strict: a.strict, ..a.import.options() };
    let loaded = trace::load_bytes(&bytes, &name, &opts)?;
    let mut t = loaded.trace;
    if let Some(f) = a.touch_fraction {
        if !(0.0..=1.0).contains(&f) {
            return Err(err(format!("--touch-fraction {f} is not between 0 and 1")));
        }
        t = trace::synthesize_touches(&t, &TouchOptions { fraction: f, ..TouchOptions::default() })
            .map_err(|e| err(format!("{name}: {e}")))?;
    }
    trace::save(&t, &a.out)?;
    if let Some(r) = loaded.report {
        print!("{r}");
    }
    if let Some(r) = loaded.perf {
        print!("{r}");
    }
    println!("wrote {} ({} ops)", a.out.display(), t.ops.len());
    Ok(())
}

fn record_cmd(a: RecordArgs) -> Result<(), CliError> {
    let touch = match a.touch_fraction {
        Some(f) if !(0.0..=1.0).contains(&f) => {
            return Err(err(format!("--touch-fraction {f} is not between 0 and 1")))
        }
        Some(f) => Some(TouchOptions { fraction: f, ..TouchOptions::default() }),
        None => None,
    };
    let tool = match a.with.as_str() {
        "perf" => Some(trace::record::Tool::Perf),
        "strace" => Some(trace::record::Tool::Strace),
        _ => None,
    };
    let mut opts = RecordOptions { keep_log: a.keep_log.clone(), touch, tool, ..RecordOptions::default() };
    let (tool, why) = trace::record::choose(&opts);
    println!("{why}");
    opts.tool = Some(tool);
    let r = trace::record(&a.command, &a.out, &opts)?;
    match &r.perf {
        Some(p) => print!("{p}"),
        None => print!("{}", r.import),
    }
    println!("wrote {} (command {})", r.out.display(), r.status);
    Ok(())
}

fn compare_cmd(a: CompareArgs, command: &str) -> Result<(), CliError> {
    let out = compare::run(&a, command).map_err(CliError)?;
    print!("{}", out.table);
    if let Some(r) = &out.report {
        println!("{}: {}", if a.cell.is_some() { "cell" } else { "report" }, r.display());
        if a.publish && a.cell.is_none() {
            let readme = std::path::Path::new(crate::cli::PUBLISHED_README);
            compare::publish_summary(r, readme).map_err(CliError)?;
            println!("README: {} (its compare table, from the report)", readme.display());
        }
    }
    Ok(())
}
