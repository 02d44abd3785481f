//! Trace files: the `.vmtrace` text format, the compact binary format, the strace and perf
//! importers, touch synthesis and recording a command under perf or strace.
//!
//! This is the input side of the replayer: what the MINIX test suite's hand-written programs
//! (`test44`, `test10`, ...) did with real processes, a trace does with recorded ones. [`load`]
//! detects the format of a file (binary magic, perf.data magic, `# vmtrace` header, or an
//! strace log), parses
//! it and checks that its ops are consistent ([`shadow::validate`]), so a replayer can trust
//! every id and range it sees. Every failure is a [`TraceError`] naming the file and the line
//! or byte offset; nothing here panics on bad input.

pub mod binary;
pub mod elf;
pub mod perf;
pub mod record;
pub mod shadow;
pub mod strace;
pub mod text;
pub mod touch;

use std::fmt;
use std::path::Path;

use crate::op::Trace;

pub use binary::{decode_binary, encode_binary, BINARY_MAGIC};
pub use perf::{import_perf, PerfReport, PERF_MAGIC};
pub use record::{record, RecordError, RecordOptions, RecordReport, Tool};
pub use shadow::{validate, Footprint, Shadow};
pub use strace::{import_strace, ImportOptions, ImportReport};
pub use text::{parse_text, write_text};
pub use touch::{ensure_touches, synthesize_touches, TouchError, TouchOptions};

/// Where in a file an error was found.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Position {
    /// The file as a whole (unreadable, empty, ...).
    File,
    /// A 1-based line of a text file.
    Line(usize),
    /// A byte offset in a binary file.
    Offset(u64),
}

/// A trace that could not be read, parsed or checked: the file, the place, and what is wrong.
///
/// Its `Display` is one line: `FILE:LINE: message`, `FILE: byte N: message` or
/// `FILE: message`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TraceError {
    /// The file name as given by the caller.
    pub file: String,
    /// Where in the file.
    pub at: Position,
    /// What is wrong.
    pub message: String,
}

impl TraceError {
    /// An error at a 1-based line.
    pub fn line(file: &str, line: usize, message: impl Into<String>) -> TraceError {
        TraceError { file: file.to_string(), at: Position::Line(line), message: message.into() }
    }
    /// An error at a byte offset.
    pub fn offset(file: &str, offset: u64, message: impl Into<String>) -> TraceError {
        TraceError { file: file.to_string(), at: Position::Offset(offset), message: message.into() }
    }
    /// An error about the whole file.
    pub fn file(file: &str, message: impl Into<String>) -> TraceError {
        TraceError { file: file.to_string(), at: Position::File, message: message.into() }
    }
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Position::File => write!(f, "{}: {}", self.file, self.message),
            Position::Line(n) => write!(f, "{}:{}: {}", self.file, n, self.message),
            Position::Offset(n) => write!(f, "{}: byte {}: {}", self.file, n, self.message),
        }
    }
}

impl std::error::Error for TraceError {}

/// The on-disk form of a trace.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    /// `.vmtrace` text.
    Text,
    /// The compact binary format ([`binary`]).
    Binary,
    /// An `strace -f` log, imported on load.
    Strace,
    /// A `perf record` capture (perf.data), imported on load.
    Perf,
}

/// Tells which format `bytes` are in: binary magic, perf.data magic (either byte order; the
/// importer refuses a big-endian one), a `# vmtrace` first line, or else an strace log (the
/// importer rejects what is not one).
pub fn detect(bytes: &[u8]) -> Format {
    if bytes.starts_with(&BINARY_MAGIC) {
        return Format::Binary;
    }
    if bytes.starts_with(&PERF_MAGIC) || bytes.starts_with(b"2ELIFREP") {
        return Format::Perf;
    }
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    if bytes[start..].starts_with(text::HEADER_PREFIX.as_bytes()) {
        Format::Text
    } else {
        Format::Strace
    }
}

/// A loaded trace with what was learned while loading it.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The trace, checked by [`validate`].
    pub trace: Trace,
    /// The format the file was in.
    pub format: Format,
    /// The importer's report when the file was an strace log.
    pub report: Option<ImportReport>,
    /// The importer's report when the file was a perf capture.
    pub perf: Option<PerfReport>,
}

/// Reads a trace file in any format ([`detect`]), imports strace logs with `import`, and
/// validates the ops. `file` in errors is `path` as displayed.
pub fn load_with(path: &Path, import: &ImportOptions) -> Result<Loaded, TraceError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| TraceError::file(&name, format!("cannot read: {e}")))?;
    load_bytes(&bytes, &name, import)
}

/// [`load_with`] default import options.
pub fn load(path: &Path) -> Result<Trace, TraceError> {
    load_with(path, &ImportOptions::default()).map(|l| l.trace)
}

/// Like [`load_with`] for bytes already in memory; `name` is used in errors.
pub fn load_bytes(bytes: &[u8], name: &str, import: &ImportOptions) -> Result<Loaded, TraceError> {
    let format = detect(bytes);
    if format == Format::Binary {
        let (trace, offsets) = binary::decode_binary_positions(bytes, name)?;
        check(&trace, name, |i| Position::Offset(offsets[i]))?;
        return Ok(Loaded { trace, format, report: None, perf: None });
    }
    if format == Format::Perf {
        let (trace, report) = import_perf(bytes, name, import)?;
        check(&trace, name, |_| Position::File)?;
        return Ok(Loaded { trace, format, report: None, perf: Some(report) });
    }
    let text = as_text(bytes, name)?;
    match format {
        Format::Text => {
            let (trace, lines) = text::parse_text_positions(text, name)?;
            check(&trace, name, |i| Position::Line(lines[i]))?;
            Ok(Loaded { trace, format, report: None, perf: None })
        }
        _ => {
            let (trace, report) = import_strace(text, name, import)?;
            // The importer only emits consistent ops; a failure here is a bug worth a clear
            // message rather than a replay error much later.
            check(&trace, name, |_| Position::File)?;
            Ok(Loaded { trace, format, report: Some(report), perf: None })
        }
    }
}

fn check(trace: &Trace, name: &str, pos: impl Fn(usize) -> Position) -> Result<(), TraceError> {
    validate(trace).map(|_| ()).map_err(|e| TraceError {
        file: name.to_string(),
        at: pos(e.index),
        message: e.message,
    })
}

/// The bytes as UTF-8, or an error at the line and byte of the first invalid sequence.
fn as_text<'a>(bytes: &'a [u8], name: &str) -> Result<&'a str, TraceError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        TraceError::line(name, line, format!("not text: invalid UTF-8 at byte {at} (binary garbage?)"))
    })
}

/// Writes `trace` to `path`: the binary format when the extension is `vmtb` or `bin`, the
/// `.vmtrace` text format otherwise.
pub fn save(trace: &Trace, path: &Path) -> Result<(), TraceError> {
    let name = path.display().to_string();
    let binary = matches!(path.extension().and_then(|e| e.to_str()), Some("vmtb") | Some("bin"));
    let bytes = if binary { encode_binary(trace) } else { write_text(trace).into_bytes() };
    std::fs::write(path, bytes).map_err(|e| TraceError::file(&name, format!("cannot write: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_display_is_one_line_with_location() {
        assert_eq!(TraceError::line("a.vmtrace", 3, "bad").to_string(), "a.vmtrace:3: bad");
        assert_eq!(TraceError::offset("a.vmtb", 17, "bad").to_string(), "a.vmtb: byte 17: bad");
        assert_eq!(TraceError::file("a", "gone").to_string(), "a: gone");
    }

    #[test]
    fn detect_formats() {
        assert_eq!(detect(&BINARY_MAGIC), Format::Binary);
        assert_eq!(detect(b"\n# vmtrace v1 page=4096\n"), Format::Text);
        assert_eq!(detect(b"123  brk(NULL) = 0x1000\n"), Format::Strace);
        assert_eq!(detect(b""), Format::Strace);
        assert_eq!(detect(b"PERFILE2\x68"), Format::Perf);
    }

    #[test]
    fn invalid_utf8_names_line() {
        let e = as_text(b"ok\nok\n\xff\xfe", "g").unwrap_err();
        assert_eq!(e.at, Position::Line(3));
    }
}
