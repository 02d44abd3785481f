//! Recording a command: run it under `perf record` (the page faults themselves) or else
//! `strace -f` (process and memory calls only; touches are synthesized), import the
//! capture, write the trace.
//!
//! perf is used when this process may open tracepoints: as root, or with
//! `perf_event_paranoid` at -1, and tracefs readable (mounted first when root and missing);
//! [`choose`] says which tool and why in one line. The perf capture is [`perf_command`]'s
//! `perf record -d -e ...` with every event the importer reads. The strace capture is `strace -f -ttt -s 256 -o LOG -e trace=%process,%memory -- CMD` (`-o`
//! gives every line a pid; `-s 256` keeps program paths whole), which works unprivileged
//! wherever ptrace is allowed. The command's own output goes to the terminal as usual. This
//! stands in for running MINIX's test programs on MINIX itself: the run happens on the host
//! kernel, and what it asked of its memory manager is kept.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use crate::trace::perf::perf_events;
use crate::trace::{
    import_perf, import_strace, save, synthesize_touches, ImportOptions, ImportReport, PerfReport,
    TouchOptions, TraceError,
};

const TRACEFS: &str = "/sys/kernel/tracing";

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Chooses the capture tool: perf when it runs and tracepoints may be opened here, else
/// strace; the text says which and why, in one line.
pub fn choose(options: &RecordOptions) -> (Tool, String) {
    if let Some(t) = options.tool {
        let what = match t {
            Tool::Perf => "perf (recorded page faults)",
            Tool::Strace => "strace (faults synthesized on replay)",
        };
        return (t, format!("record: {what}: as asked with --with"));
    }
    let fallback =
        |why: String| (Tool::Strace, format!("record: strace (faults synthesized on replay): {why}"));
    if Command::new(&options.perf).arg("--version").output().map(|o| !o.status.success()).unwrap_or(true) {
        return fallback(format!("'{}' does not run", options.perf.display()));
    }
    let root = is_root();
    let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .unwrap_or(2);
    if !root && paranoid > -1 {
        return fallback(format!("not root and perf_event_paranoid is {paranoid} (tracepoints need -1)"));
    }
    let probe = Path::new(TRACEFS).join("events/exceptions/page_fault_user/id");
    if !probe.exists() && root {
        let _ = Command::new("mount").args(["-t", "tracefs", "nodev", TRACEFS]).output();
    }
    if std::fs::read_to_string(&probe).is_err() {
        return fallback(format!("{} is not readable (tracefs not mounted?)", probe.display()));
    }
    let who = if root { "root".to_string() } else { format!("perf_event_paranoid {paranoid}") };
    (Tool::Perf, format!("record: perf (recorded page faults): {who}, tracefs readable"))
}

/// The `perf record` arguments (after `perf`) that capture `log`.
pub fn perf_command(log: &Path) -> Vec<String> {
    // -d: data mappings too (the exec image's layout); --no-bpf-event: no side-band thread
    // (its 1 s poll timeout delays every exit); -B -N: no build-id pass (not needed here).
    let mut a: Vec<String> =
        ["record", "-q", "-d", "--no-bpf-event", "-B", "-N", "--mmap-pages", "1024", "-o"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    a.push(log.display().to_string());
    for e in perf_events() {
        a.push("-e".into());
        a.push(e);
    }
    a
}

/// The capture tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// `perf record` with the fault tracepoints.
    Perf,
    /// `strace -f`; touches are synthesized on replay.
    Strace,
}

/// How to record.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordOptions {
    /// The strace program to run.
    pub strace: PathBuf,
    /// The perf program to run.
    pub perf: PathBuf,
    /// The tool; `None` chooses with [`choose`].
    pub tool: Option<Tool>,
    /// Import options (`read_elf` is on by default here: the programs are on this machine).
    pub import: ImportOptions,
    /// Keep the raw strace log at this path instead of deleting it.
    pub keep_log: Option<PathBuf>,
    /// Synthesize touches into the written trace (by default none: replay adds them).
    pub touch: Option<TouchOptions>,
}

impl Default for RecordOptions {
    fn default() -> Self {
        RecordOptions {
            strace: PathBuf::from("strace"),
            perf: PathBuf::from("perf"),
            tool: None,
            import: ImportOptions { read_elf: true, ..ImportOptions::default() },
            keep_log: None,
            touch: None,
        }
    }
}

/// What a recording did.
#[derive(Clone, Debug)]
pub struct RecordReport {
    /// How the command (as reported by strace) ended; strace passes on its exit status.
    pub status: ExitStatus,
    /// The trace written.
    pub out: PathBuf,
    /// The raw log, when kept.
    pub log: Option<PathBuf>,
    /// The importer's report (for perf, its process and memory side).
    pub import: ImportReport,
    /// The tool used.
    pub tool: Tool,
    /// The perf importer's report, for a perf capture.
    pub perf: Option<PerfReport>,
}

/// Why a recording failed.
#[derive(Debug)]
pub enum RecordError {
    /// No command was given.
    EmptyCommand,
    /// strace could not be run.
    StraceMissing {
        /// The program tried.
        program: PathBuf,
        /// Why it could not start.
        error: std::io::Error,
    },
    /// The temporary log could not be created or read.
    Log {
        /// The log path.
        path: PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
    /// strace ran but produced no usable log (it could not start the command, or ptrace is
    /// not allowed here).
    NoLog {
        /// strace's exit status.
        status: ExitStatus,
    },
    /// The log could not be imported, or the trace not written.
    Trace(TraceError),
    /// Touch synthesis failed.
    Touch(crate::trace::touch::TouchError),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::EmptyCommand => write!(f, "record: no command given (use -- CMD ...)"),
            RecordError::StraceMissing { program, error } => write!(
                f,
                "record: cannot run '{}': {error} (install strace, e.g. apt-get install strace)",
                program.display()
            ),
            RecordError::Log { path, error } => {
                write!(f, "record: strace log {}: {error}", path.display())
            }
            RecordError::NoLog { status } => write!(
                f,
                "record: strace produced no trace ({status}); was the command found, and is ptrace allowed?"
            ),
            RecordError::Trace(e) => write!(f, "{e}"),
            RecordError::Touch(e) => write!(f, "record: {e}"),
        }
    }
}

impl std::error::Error for RecordError {}

fn temp_log() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("vmstorm-record-{}-{nanos}.strace", std::process::id()))
}

/// Runs `cmd` under strace, imports the log and writes the trace to `out` (text or binary
/// by extension, see [`crate::trace::save`]).
pub fn record(cmd: &[String], out: &Path, options: &RecordOptions) -> Result<RecordReport, RecordError> {
    if cmd.is_empty() {
        return Err(RecordError::EmptyCommand);
    }
    let tool = options.tool.unwrap_or_else(|| choose(options).0);
    if tool == Tool::Perf {
        return record_perf(cmd, out, options);
    }
    // Is strace there at all? (A clear error beats "No such file" about the command.)
    Command::new(&options.strace)
        .arg("-V")
        .output()
        .map_err(|error| RecordError::StraceMissing { program: options.strace.clone(), error })?;
    let log = options.keep_log.clone().unwrap_or_else(temp_log);
    let status = Command::new(&options.strace)
        .args(["-f", "-ttt", "-s", "256", "-o"])
        .arg(&log)
        .args(["-e", "trace=%process,%memory", "--"])
        .args(cmd)
        .status()
        .map_err(|error| RecordError::StraceMissing { program: options.strace.clone(), error })?;
    let result = import_log(&log, out, options, status);
    if options.keep_log.is_none() {
        let _ = std::fs::remove_file(&log);
    }
    let import = result?;
    Ok(RecordReport {
        status,
        out: out.to_path_buf(),
        log: options.keep_log.clone(),
        import,
        tool: Tool::Strace,
        perf: None,
    })
}

fn record_perf(cmd: &[String], out: &Path, options: &RecordOptions) -> Result<RecordReport, RecordError> {
    let log = options.keep_log.clone().unwrap_or_else(|| temp_log().with_extension("perf.data"));
    let status = Command::new(&options.perf)
        .args(perf_command(&log))
        .arg("--")
        .args(cmd)
        .status()
        .map_err(|error| RecordError::StraceMissing { program: options.perf.clone(), error })?;
    let result = (|| {
        let bytes = match std::fs::read(&log) {
            Ok(b) if !b.is_empty() => b,
            Ok(_) => return Err(RecordError::NoLog { status }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(RecordError::NoLog { status }),
            Err(error) => return Err(RecordError::Log { path: log.clone(), error }),
        };
        let name = log.display().to_string();
        let (mut trace, report) = import_perf(&bytes, &name, &options.import).map_err(RecordError::Trace)?;
        trace
            .header
            .notes
            .push(format!("recorded with perf record -d (fault tracepoints); command {status}"));
        crate::trace::validate(&trace).map_err(|e| {
            RecordError::Trace(TraceError::file(&name, format!("op {}: {}", e.index, e.message)))
        })?;
        save(&trace, out).map_err(RecordError::Trace)?;
        Ok(report)
    })();
    if options.keep_log.is_none() {
        let _ = std::fs::remove_file(&log);
    }
    let report = result?;
    Ok(RecordReport {
        status,
        out: out.to_path_buf(),
        log: options.keep_log.clone(),
        import: report.import.clone(),
        tool: Tool::Perf,
        perf: Some(report),
    })
}

fn import_log(
    log: &Path,
    out: &Path,
    options: &RecordOptions,
    status: ExitStatus,
) -> Result<ImportReport, RecordError> {
    let text = match std::fs::read(log) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(RecordError::NoLog { status }),
        Err(error) => return Err(RecordError::Log { path: log.to_path_buf(), error }),
    };
    if text.iter().all(u8::is_ascii_whitespace) {
        return Err(RecordError::NoLog { status });
    }
    let text = String::from_utf8_lossy(&text);
    let name = out.file_stem().and_then(|s| s.to_str()).unwrap_or("record").to_string();
    let (mut trace, report) = import_strace(&text, &name, &options.import).map_err(RecordError::Trace)?;
    trace.header.notes.push(format!("recorded with strace -f -e trace=%process,%memory; command {status}"));
    if let Some(t) = &options.touch {
        trace = synthesize_touches(&trace, t).map_err(RecordError::Touch)?;
    }
    save(&trace, out).map_err(RecordError::Trace)?;
    Ok(report)
}
