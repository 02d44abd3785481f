//! Recording a command: run it under `strace -f`, import the log, write the trace.
//!
//! The capture is `strace -f -ttt -s 256 -o LOG -e trace=%process,%memory -- CMD` (`-o`
//! gives every line a pid; `-s 256` keeps program paths whole), which works unprivileged
//! wherever ptrace is allowed. The command's own output goes to the terminal as usual. This
//! stands in for running MINIX's test programs on MINIX itself: the run happens on the host
//! kernel, and what it asked of its memory manager is kept.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use crate::trace::{
    import_strace, save, synthesize_touches, ImportOptions, ImportReport, TouchOptions, TraceError,
};

/// How to record.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordOptions {
    /// The strace program to run.
    pub strace: PathBuf,
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
    /// The importer's report.
    pub import: ImportReport,
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
    Ok(RecordReport { status, out: out.to_path_buf(), log: options.keep_log.clone(), import })
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
