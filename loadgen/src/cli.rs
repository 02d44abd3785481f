//! The `vmstorm` command line: sub-commands, flags and their help, parsed with clap.
//!
//! Stands in for the way MINIX's VM was driven and measured: by PM, the kernel and test
//! programs on a running system. Here one command plays storms and traces into the server
//! and compares strategies. Parsing only: [`crate::commands`] carries the commands out.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use vmstorm_core::{ForkPolicy, ZeroPolicy};

use crate::storms::StormKind;
use crate::strategy::{alloc_help, choice_parser, AllocKind, FolioSize, HugePolicy, PagingKind, Strategy};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "vmstorm",
    version,
    about = "Replay fork, exec, mmap and fault storms into the MINIX 3 VM server rebuilt in Rust, and compare \
             its strategies.",
    long_about = "Replay fork, exec, mmap and fault storms into the MINIX 3 VM server rebuilt in Rust, and \
                  compare its strategies (frame allocator, page-table format, fork and zeroing policy).\n\n\
                  With no arguments, runs `vmstorm compare --quick`: every storm and an embedded `make -j2` \
                  trace under every allocator and page-table format, with and without a hot frame list, a \
                  table on the terminal and a report in target/vmstorm-compare/ (`compare --publish` \
                  refreshes the committed results/compare/).",
    after_help = "Examples:\n  vmstorm run fork --alloc all --paging all\n  vmstorm run mixed --duration 60s \
                  --verify\n  vmstorm record -o ls.vmtrace -- ls -l /\n  vmstorm replay ls.vmtrace \
                  --touch-fraction 0.5 --verify --json ls.json\n  vmstorm compare --storms fork,cow,fault \
                  --fork all"
)]
pub struct Cli {
    /// What to do (default: `compare --quick`).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Play a synthetic storm into the server and report throughput and latency.
    Run(RunArgs),
    /// Play a trace file (.vmtrace text, binary, or an `strace -f` log) into the server.
    Replay(ReplayArgs),
    /// Convert an `strace -f` log into a .vmtrace trace.
    Import(ImportArgs),
    /// Run a command under strace and save what it asked of its memory manager as a trace.
    Record(RecordArgs),
    /// Measure workloads under several strategies and write a report with charts.
    Compare(CompareArgs),
}

/// Which server strategies to run; `all` runs every choice in turn.
#[derive(Debug, Clone, Args)]
pub struct StrategyArgs {
    /// Frame allocator (see the registry in `vmstorm_core::strategy`), or `all`.
    #[arg(long, default_value = Strategy::DEFAULT.alloc.name(), value_parser = choice_parser::<AllocKind>(), help = alloc_help())]
    pub alloc: String,
    /// Page-table format: `i386` (2-level, 32-bit, MINIX 3's; the default) or `x86-64`
    /// (4-level, 48-bit), or `all`.
    /// Traces are address-independent, so a 64-bit Linux trace replays under i386 too.
    #[arg(long, default_value = Strategy::DEFAULT.paging.name(), value_parser = choice_parser::<PagingKind>())]
    pub paging: String,
    /// Fork policy: `cow` (per-page copy-on-write), `share` (on-demand fork: leaf page
    /// tables shared until first written), `copy` (eager copy of every page, the
    /// baseline), or `all`.
    #[arg(long, default_value = Strategy::DEFAULT.fork.name(), value_parser = choice_parser::<ForkPolicy>())]
    pub fork: String,
    /// When demand-zero frames are zeroed: `on-fault` (inside the fault) or `prezeroed` (from a
    /// pool zeroed off the fault path), or `all`.
    #[arg(long, default_value = Strategy::DEFAULT.zero.name(), value_parser = choice_parser::<ZeroPolicy>())]
    pub zero: String,
    /// A hot list of recently freed (cache-hot) frames in front of the allocator, handed out
    /// first, as Linux's per-cpu page lists sit in front of its buddy allocator: `on` (the
    /// default), `off` (the allocator alone, the cold variant), or `all`.
    #[arg(long, default_value = if Strategy::DEFAULT.hot { "on" } else { "off" }, value_parser = ["on", "off", "all"])]
    pub hot: String,
    /// Anonymous folio size a demand-zero write fault maps at once when the naturally
    /// aligned block lies inside a private anonymous region and none of its pages is
    /// present (Linux's multi-size THP), else 4 KiB: `4k` (off), `16k`, `32k`, `64k`,
    /// `128k`, `256k`, `512k`, `1m`, or `all`.
    #[arg(long, default_value = "4k", value_parser = choice_parser::<FolioSize>())]
    pub folio: String,
    /// Huge pages: `always` maps a whole page-directory entry's span (2 MiB with x86-64's
    /// `PS` bit, 4 MiB with i386's `PSE`) on a demand-zero fault in a private anonymous
    /// region that holds the whole aligned block while no page table exists for it (Linux's
    /// PMD THP; a read maps a huge zero page), `never` (the default), or `all`. With a perf
    /// capture, `always` also predicts the host's faults with PMD THP on, and their range
    /// over the placements address-space randomization may give.
    #[arg(long, default_value = "never", value_parser = choice_parser::<HugePolicy>())]
    pub huge: String,
    /// Size of the server's physical-memory arena: bytes, or with a K, M or G suffix.
    #[arg(long, default_value = "1G", value_parser = parse_size)]
    pub mem: u64,
    /// Size of the server's process table (MINIX's NR_PROCS): live processes at once,
    /// including the boot image's 11. A program with more live processes than this fails
    /// its fork with "process table full".
    #[arg(long, default_value_t = vmstorm_core::slots::DEFAULT_SLOTS)]
    pub slots: usize,
}

/// Flags shared by `run` and `replay`.
#[derive(Debug, Clone, Args)]
pub struct PlayArgs {
    /// Check correctness while playing: a signature is written into every touched page and
    /// checked on later touches, after forks and after exits (a child's writes must not be
    /// seen by its parent; every process mapping a shared page must see its last write); the
    /// server's invariants are checked at intervals; at the end every frame must be free
    /// again. Verification is not timed: its time is left out of the reported seconds and
    /// ops/s (and shown apart).
    #[arg(long)]
    pub verify: bool,
    /// Write the results as one JSON object to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Run N independent servers on N threads (each its own arena, seed + shard index) and
    /// report the aggregate, each shard, and the speed-up over one shard measured in the same
    /// run. --mem × N must fit in the host's available memory; more shards than cores is
    /// allowed, with a warning.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub shards: u64,
    /// Skip the untimed warm-up (by default the workload is played once, then twice the
    /// frames it used are handed out and written once, before the timed pass, so that the
    /// host's first touches of the arena are not charged to the server; its cost follows the
    /// workload, not --mem).
    #[arg(long)]
    pub no_warmup: bool,
}

/// `vmstorm run STORM`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The storm: fork, exec, shell, mmap, fault, cow, brk, discard or mixed
    /// (see `vmstorm run --help`).
    #[arg(value_parser = parse_storm, long_help = storm_help())]
    pub storm: StormKind,
    /// Seed of the storm's random choices (same seed, same ops).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Rounds of the storm (one benchmark iteration each); default depends on the storm, about
    /// a second of work. The storm is held in memory: a scale whose ops do not fit is refused
    /// (use --duration for long runs). Not with --duration, which plays rounds until the time
    /// is up.
    #[arg(long, conflicts_with = "duration")]
    pub scale: Option<u64>,
    /// Soak mode (mixed only): keep generating and playing rounds until this much time has
    /// passed, e.g. `90s`, `10m`, `1h`. Combine with --verify.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Also save the generated storm as a trace (text, or binary for .vmtb). Not with
    /// --duration, whose rounds are generated while playing and not kept.
    #[arg(long, value_name = "FILE", conflicts_with = "duration")]
    pub save_trace: Option<PathBuf>,
    /// Strategy.
    #[command(flatten)]
    pub strategy: StrategyArgs,
    /// Play options.
    #[command(flatten)]
    pub play: PlayArgs,
}

/// `vmstorm replay TRACE`.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// The trace: a .vmtrace text file, a binary trace, an `strace -f` log or a `perf record`
    /// capture (detected from the contents; a perf capture plays its recorded faults); `-`
    /// reads standard input.
    pub trace: PathBuf,
    /// For traces without touches (strace cannot see page faults): touch this fraction of
    /// every new mapping, image and heap growth (0 to 1).
    #[arg(long, default_value_t = 0.25, value_name = "F")]
    pub touch_fraction: f64,
    /// Seed of the synthesized touches.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How an strace log is imported.
    #[command(flatten)]
    pub import: ImportFlags,
    /// Strategy.
    #[command(flatten)]
    pub strategy: StrategyArgs,
    /// Play options.
    #[command(flatten)]
    pub play: PlayArgs,
}

/// Import flags shared by `import` and `replay` of a raw strace log.
#[derive(Debug, Clone, Args)]
pub struct ImportFlags {
    /// Give every exec the default image (a small static program) instead of reading text,
    /// data and bss sizes from the program files named in execve (read when they exist on
    /// this machine, as `record` does, so one log gives one trace).
    #[arg(long)]
    pub default_images: bool,
    /// Import a log even when calls the replay needs (fork, exec, mmap, ...) cannot be
    /// decoded, leaving them out and counting them (by default the import stops at the first).
    #[arg(long)]
    pub skip_undecoded: bool,
    /// Use a perf capture that lost events (PERF_RECORD_LOST) instead of refusing it.
    #[arg(long)]
    pub allow_lost: bool,
}

impl ImportFlags {
    /// The importer's options for these flags.
    pub fn options(&self) -> crate::trace::ImportOptions {
        crate::trace::ImportOptions {
            read_elf: !self.default_images,
            skip_undecoded: self.skip_undecoded,
            allow_lost: self.allow_lost,
            ..crate::trace::ImportOptions::default()
        }
    }
}

/// `vmstorm import STRACE_LOG -o OUT`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The log, captured with `strace -f -ttt -e trace=%process,%memory -o LOG -- CMD`, or a
    /// perf.data capture (the README gives the `perf record` command); `-` reads standard
    /// input.
    pub log: PathBuf,
    /// Where to write the trace (.vmtrace text, or the binary format for .vmtb).
    #[arg(short, long, value_name = "OUT")]
    pub out: PathBuf,
    /// Treat lines that are not strace output as errors instead of counting them.
    #[arg(long)]
    pub strict: bool,
    /// How the log is imported.
    #[command(flatten)]
    pub import: ImportFlags,
    /// Also synthesize touches at this fraction into the written trace.
    #[arg(long, value_name = "F")]
    pub touch_fraction: Option<f64>,
}

/// `vmstorm record -o OUT -- CMD...`.
#[derive(Debug, Clone, Args)]
pub struct RecordArgs {
    /// Where to write the trace.
    #[arg(short, long, value_name = "OUT")]
    pub out: PathBuf,
    /// Keep the raw capture (perf.data or strace log) at this path.
    #[arg(long, value_name = "LOG")]
    pub keep_log: Option<PathBuf>,
    /// Also synthesize touches at this fraction into the written trace (strace captures).
    #[arg(long, value_name = "F")]
    pub touch_fraction: Option<f64>,
    /// Capture tool: `auto` (perf when tracepoints may be opened here, else strace), `perf`
    /// (recorded page faults) or `strace` (faults synthesized on replay).
    #[arg(long, default_value = "auto", value_parser = ["auto", "perf", "strace"])]
    pub with: String,
    /// The command to run, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `vmstorm compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Workloads, comma separated: storm names, `make` (the embedded `make -j2` trace), or
    /// paths of trace files. Default: every storm and `make`.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub storms: Vec<String>,
    /// A capture of your own (.vmtrace, strace log, or any format `replay` reads) to add as
    /// a row beside the storms; repeat for several.
    #[arg(long = "trace", value_name = "FILE")]
    pub traces: Vec<PathBuf>,
    /// Frame allocator(s) (default here: all).
    #[arg(long, default_value = "all", value_parser = choice_parser::<AllocKind>())]
    pub alloc: String,
    /// Page-table format(s) (default here: all).
    #[arg(long, default_value = "all", value_parser = choice_parser::<PagingKind>())]
    pub paging: String,
    /// Fork policy (or all).
    #[arg(long, default_value = "cow", value_parser = choice_parser::<ForkPolicy>())]
    pub fork: String,
    /// Zeroing policy (or all).
    #[arg(long, default_value = "on-fault", value_parser = choice_parser::<ZeroPolicy>())]
    pub zero: String,
    /// A hot list of recently freed (cache-hot) frames in front of the allocator: off, on
    /// (the default strategy has one), or all (each strategy without and with one, so the
    /// effect stays visible).
    #[arg(long, default_value = "all", value_parser = ["off", "on", "all"])]
    pub hot: String,
    /// Anonymous folio size(s) of demand-zero write faults (`4k` = off; or all).
    #[arg(long, default_value = "4k", value_parser = choice_parser::<FolioSize>())]
    pub folio: String,
    /// Huge-page policy (policies) of demand-zero faults: `never` (off), `always`, or all.
    #[arg(long, default_value = "never", value_parser = choice_parser::<HugePolicy>())]
    pub huge: String,
    /// Arena size of every server (every free frame is touched once before timing, so a
    /// smaller arena makes the comparison faster). Default: 64M with --quick, else 256M.
    #[arg(long, value_parser = parse_size)]
    pub mem: Option<u64>,
    /// Small storms (a quarter of the default rounds) and fewer timing rounds per cell: the
    /// whole matrix in about a minute.
    #[arg(long)]
    pub quick: bool,
    /// Timing rounds per cell (each on a freshly booted server; default 5 with --quick,
    /// else 9). The report gives the median and the spread of the rounds.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: Option<u32>,
    /// Seed of every storm.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also verify every cell in an untimed pass (contents, isolation, invariants, leaks).
    #[arg(long)]
    pub verify: bool,
    /// List the cells of this comparison (index, workload, strategy) and exit.
    #[arg(long, conflicts_with_all = ["cell", "merge"])]
    pub cells: bool,
    /// Run only cell N (see --cells) and write it as `cell-N.json` into --out, for --merge.
    #[arg(long, value_name = "N", conflicts_with = "merge")]
    pub cell: Option<usize>,
    /// Join the `cell-*.json` files of DIR (from --cell runs) into one report in --out.
    #[arg(long, value_name = "DIR")]
    pub merge: Option<PathBuf>,
    /// Directory of the report (REPORT.md, SVG charts, results.json). Default:
    /// `target/vmstorm-compare` (ignored by git); see --publish.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write the report into `results/compare/`, the committed reference, and copy its
    /// default-against-fastest table into README.md (run from the repository root):
    /// refreshing them is a deliberate act.
    #[arg(long, conflicts_with = "out")]
    pub publish: bool,
}

/// Where a user's comparison goes unless told otherwise (ignored by git).
pub const COMPARE_OUT: &str = "target/vmstorm-compare";
/// The committed reference report, written only with `--publish`.
pub const COMPARE_PUBLISHED: &str = "results/compare";
/// The README whose compare table `--publish` regenerates from the published report.
pub const PUBLISHED_README: &str = "README.md";

impl CompareArgs {
    /// The arena size to use.
    pub fn mem_bytes(&self) -> u64 {
        self.mem.unwrap_or(if self.quick { 64 << 20 } else { 256 << 20 })
    }

    /// Timing rounds per cell.
    pub fn rounds(&self) -> u32 {
        self.rounds.unwrap_or(if self.quick { 5 } else { 9 })
    }

    /// The report directory.
    pub fn out_dir(&self) -> PathBuf {
        match (&self.out, self.publish) {
            (Some(d), _) => d.clone(),
            (None, true) => PathBuf::from(COMPARE_PUBLISHED),
            (None, false) => PathBuf::from(COMPARE_OUT),
        }
    }

    /// `compare --quick` with every default: what `vmstorm` alone runs.
    pub fn quick_default() -> CompareArgs {
        CompareArgs {
            storms: Vec::new(),
            traces: Vec::new(),
            alloc: "all".into(),
            paging: "all".into(),
            fork: "cow".into(),
            zero: "on-fault".into(),
            hot: "all".into(),
            folio: "4k".into(),
            huge: "never".into(),
            mem: None,
            quick: true,
            rounds: None,
            seed: 1,
            verify: false,
            cells: false,
            cell: None,
            merge: None,
            out: None,
            publish: false,
        }
    }
}

/// Checks, before any work, that every file the command will write can be written and that
/// none of them is one of its inputs; the error names the argument.
///
/// # Errors
/// `ARG PATH: why` for the first output that cannot be written.
pub fn check_outputs(cli: &Cli) -> Result<(), String> {
    let Some(cmd) = &cli.command else {
        return Ok(());
    };
    match cmd {
        Command::Run(a) => {
            check_file("--json", a.play.json.as_deref())?;
            check_file("--save-trace", a.save_trace.as_deref())
        }
        Command::Replay(a) => {
            check_file("--json", a.play.json.as_deref())?;
            not_input("--json", a.play.json.as_deref(), &a.trace)
        }
        Command::Import(a) => {
            not_input("-o", Some(&a.out), &a.log)?;
            check_file("-o", Some(&a.out))
        }
        Command::Record(a) => {
            if let Some(k) = &a.keep_log {
                not_input("--keep-log", Some(k), &a.out)?;
            }
            check_file("-o", Some(&a.out))?;
            check_file("--keep-log", a.keep_log.as_deref())
        }
        Command::Compare(a) => check_dir("--out", &a.out_dir()),
    }
}

/// Refuses writing `out` when it is the file `input` (the same path, or a link to it).
fn not_input(arg: &str, out: Option<&Path>, input: &Path) -> Result<(), String> {
    let Some(out) = out else {
        return Ok(());
    };
    let same = out == input || matches!((out.canonicalize(), input.canonicalize()), (Ok(a), Ok(b)) if a == b);
    if same {
        return Err(format!(
            "{arg} {}: is the input; writing it would destroy the input (choose another name)",
            out.display()
        ));
    }
    Ok(())
}

/// Whether a file can be written at `path`: it is not a directory, its directory exists,
/// and opening it for writing works (without truncating it; a file created for the test is
/// removed again).
fn check_file(arg: &str, path: Option<&Path>) -> Result<(), String> {
    let Some(path) = path else {
        return Ok(());
    };
    let fail = |why: String| Err(format!("{arg} {}: {why}", path.display()));
    if path.is_dir() {
        return fail("is a directory, not a file".into());
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return fail(format!("cannot write: directory {} does not exist", parent.display()));
    }
    let existed = path.exists();
    match std::fs::OpenOptions::new().append(true).create(true).open(path) {
        Ok(_) => {
            if !existed {
                let _ = std::fs::remove_file(path);
            }
            Ok(())
        }
        Err(e) => fail(format!("cannot write: {e}")),
    }
}

/// Whether a directory of results can be made at `path` (created now if missing).
fn check_dir(arg: &str, path: &Path) -> Result<(), String> {
    let fail = |why: String| Err(format!("{arg} {}: {why}", path.display()));
    if path.exists() && !path.is_dir() {
        return fail("is a file, not a directory".into());
    }
    if let Err(e) = std::fs::create_dir_all(path) {
        return fail(format!("cannot create the directory: {e}"));
    }
    let probe = path.join(format!(".vmstorm-write-test-{}", std::process::id()));
    match std::fs::write(&probe, b"") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => fail(format!("cannot write in it: {e}")),
    }
}

/// clap's error text as one line: its first line, with the list that follows a first line
/// ending in `:` (the missing arguments, the possible values) joined onto it, and the usage
/// and tips left out.
pub fn one_line(clap_text: &str) -> String {
    let mut lines = clap_text.lines();
    let first = lines.next().unwrap_or("bad command line").trim_start_matches("error: ").trim_end();
    if !first.ends_with(':') {
        return first.to_string();
    }
    let items: Vec<&str> = lines
        .take_while(|l| l.starts_with(' ') || l.starts_with('\t'))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if items.is_empty() {
        first.to_string()
    } else {
        format!("{first} {}", items.join(", "))
    }
}

fn storm_help() -> String {
    let mut s = String::from("The storm to play:\n");
    for k in StormKind::ALL {
        s.push_str(&format!("  {:<8} {}\n", k.name(), k.about()));
    }
    s
}

fn parse_storm(s: &str) -> Result<StormKind, String> {
    s.parse::<StormKind>().map_err(|e| e.to_string())
}

/// Parses a size: bytes, or a number with a `K`, `M` or `G` suffix (powers of 1024; `KiB`,
/// `MB`, ... accepted). The result must be a positive multiple of 4 KiB.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num.parse().map_err(|_| format!("'{s}' is not a size (e.g. 512M, 1G)"))?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        u => return Err(format!("'{s}': unknown unit '{u}' (use K, M or G)")),
    };
    let bytes = n.checked_mul(1 << shift).ok_or_else(|| format!("'{s}' is too large"))?;
    if bytes == 0 || bytes % 4096 != 0 {
        return Err(format!("'{s}' must be a positive multiple of 4K"));
    }
    Ok(bytes)
}

/// Parses a duration: seconds, or a number with `ms`, `s`, `m` or `h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num.parse().map_err(|_| format!("'{s}' is not a duration (e.g. 30s, 5m)"))?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        u => return Err(format!("'{s}': unknown unit '{u}' (use ms, s, m or h)")),
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("8192"), Ok(8192));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert!(parse_size("1000").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("1T").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("99999999999999G").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_a_run() {
        let c =
            Cli::try_parse_from(["vmstorm", "run", "cow", "--alloc", "buddy", "--mem", "64M", "--verify"])
                .unwrap();
        match c.command {
            Some(Command::Run(r)) => {
                assert_eq!(r.storm, StormKind::Cow);
                assert_eq!(r.strategy.alloc, "buddy");
                assert_eq!(r.strategy.mem, 64 << 20);
                assert!(r.play.verify);
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["vmstorm", "run", "nope"]).is_err());
        assert!(Cli::try_parse_from(["vmstorm", "run", "fork", "--alloc", "slab"]).is_err());
        let c = Cli::try_parse_from(["vmstorm", "record", "-o", "x", "--", "ls", "-l"]).unwrap();
        assert!(matches!(c.command, Some(Command::Record(r)) if r.command == ["ls", "-l"]));
        assert!(Cli::try_parse_from(["vmstorm"]).unwrap().command.is_none());
    }

    #[test]
    fn missing_arguments_are_named_in_one_line() {
        let e = Cli::try_parse_from(["vmstorm", "import", "x.strace"]).unwrap_err().to_string();
        let line = one_line(&e);
        assert!(line.contains("--out"), "{line}");
        assert!(!line.contains('\n'));
        let e = Cli::try_parse_from(["vmstorm", "replay"]).unwrap_err().to_string();
        assert!(one_line(&e).contains("<TRACE>"), "{}", one_line(&e));
    }
}
