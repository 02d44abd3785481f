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
use crate::metrics::{RunReport, Workload};
use crate::op::Trace;
use crate::progress::Progress;
use crate::run::{PlayJob, SoakJob};
use crate::shards::run_shards;
use crate::storms::generate;
use crate::strategy::{matrix, with_vm, Strategy};
use crate::trace::{self, ensure_touches, Format, ImportOptions, RecordOptions, TouchOptions};

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
            let line = std::env::args().collect::<Vec<_>>().join(" ");
            compare_cmd(a, &line)
        }
    }
}

fn strategies(s: &StrategyArgs) -> Result<Vec<Strategy>, CliError> {
    matrix(&s.alloc, &s.paging, &s.fork, &s.zero).map_err(CliError)
}

/// Plays `traces` (one per shard) under each strategy and prints and writes the results.
fn play_and_report(
    work: &Workload,
    traces: &[Trace],
    strat: &StrategyArgs,
    play: &PlayArgs,
) -> Result<(), CliError> {
    // A perf capture's recorded faults, to set beside the replayed ones.
    let recorded = traces.first().and_then(|t| t.header.recorded);
    let mix = recorded.and(traces.first()).map(trace::perf::explain::TouchMix::of);
    let strategies = strategies(strat)?;
    let mut reports = Vec::new();
    let mut cells = Vec::new();
    for s in &strategies {
        let (report, metrics) = if play.shards > 1 {
            let r = run_shards(traces, s, strat.mem, play.verify, !play.no_warmup)?;
            let mut report = RunReport::new(work, &s.names(), traces.len(), &r.total);
            report.per_shard = r.per_shard.clone();
            report.speedup_vs_one_shard = Some(r.speedup);
            (report, r.total)
        } else {
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
            let m = with_vm(s, strat.mem, job).map_err(|e| err(format!("cannot boot the server: {e}")))?;
            progress.finish();
            let m = m.map_err(|e| err(format!("{}: {e}", work.label())))?;
            (RunReport::new(work, &s.names(), 1, &m), m)
        };
        let mut report = report;
        report.recorded_faults = recorded.map(|r| r.faults * traces.len() as u64);
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
    let scale = a.scale.unwrap_or(a.storm.default_scale());
    if scale == 0 {
        return Err(err("--scale must be at least 1"));
    }
    let work = Workload::Storm { name: a.storm.name().to_string(), seed: a.seed, scale };
    if let Some(duration) = a.duration {
        return soak(&a, duration, &work);
    }
    let traces: Vec<Trace> =
        (0..a.play.shards).map(|i| generate(a.storm, a.seed.wrapping_add(i), scale)).collect();
    if let Some(path) = &a.save_trace {
        trace::save(&traces[0], path)?;
    }
    play_and_report(&work, &traces, &a.strategy, &a.play)
}

fn soak(a: &RunArgs, duration: std::time::Duration, work: &Workload) -> Result<(), CliError> {
    if a.play.shards > 1 {
        return Err(err("--duration runs one server; drop --shards"));
    }
    let strategies = strategies(&a.strategy)?;
    let mut reports = Vec::new();
    for s in &strategies {
        let progress = Progress::new(duration.as_secs().max(1), "seconds");
        let job = SoakJob {
            kind: a.storm,
            seed: a.seed,
            duration,
            verify: a.play.verify,
            progress: Some(&progress),
        };
        let m = with_vm(s, a.strategy.mem, job).map_err(|e| err(format!("cannot boot the server: {e}")))?;
        progress.finish();
        let m = m.map_err(|e| err(format!("soak {}: {e}", a.storm)))?;
        let mut report = RunReport::new(work, &s.names(), 1, &m);
        report.scale = None;
        print!("{}", report.summary());
        reports.push(report);
    }
    if let Some(path) = &a.play.json {
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
    let loaded = trace::load_with(path, import)?;
    let opts = TouchOptions { fraction, seed, ..TouchOptions::default() };
    ensure_touches(loaded.trace, &opts).map_err(|e| err(format!("{}: {e}", path.display())))
}

fn replay_cmd(a: ReplayArgs) -> Result<(), CliError> {
    let import = ImportOptions { allow_lost: a.allow_lost, ..ImportOptions::default() };
    let trace = load_for_replay_with(&a.trace, a.touch_fraction, a.seed, &import)?;
    let name = a.trace.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let work = Workload::Trace(name);
    let traces = vec![trace; a.play.shards as usize];
    play_and_report(&work, &traces, &a.strategy, &a.play)
}

fn import_cmd(a: ImportArgs) -> Result<(), CliError> {
    let name = a.log.display().to_string();
    let bytes = std::fs::read(&a.log).map_err(|e| err(format!("{name}: cannot read: {e}")))?;
    if !matches!(trace::detect(&bytes), Format::Strace | Format::Perf) {
        return Err(err(format!("{name}: already a vmstorm trace, not an strace log or perf capture")));
    }
    let opts = ImportOptions {
        strict: a.strict,
        read_elf: a.read_elf,
        allow_lost: a.allow_lost,
        ..ImportOptions::default()
    };
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
    println!("report: {}", out.report.display());
    Ok(())
}
