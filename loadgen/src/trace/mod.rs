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
use std::io::Read;
use std::path::Path;

use crate::op::{Trace, TRACE_PAGE_SIZE};

pub use binary::{decode_binary, encode_binary, BINARY_MAGIC};
pub use perf::{import_perf, PerfReport, PERF_MAGIC};
pub use record::{record, RecordError, RecordOptions, RecordReport, Tool};
pub use shadow::{validate, Footprint, Shadow};
pub use strace::{import_strace, import_strace_lines, ImportOptions, ImportReport};
pub use text::{parse_text, write_text};
pub use touch::{
    ensure_touches, ensure_touches_indexed, synthesize_touches, synthesize_touches_indexed, TouchError,
    TouchOptions,
};

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

/// Longest word (a token, a path) an error message repeats; the rest of it is elided (a 1 MB
/// garbage token must not come back whole on the terminal).
pub const MAX_WORD_CHARS: usize = 120;
/// Longest error message, after long words are clipped.
pub const MAX_ERROR_CHARS: usize = 1000;

/// `s` cut to at most `max` characters, with what was cut said: `abc... (1048576 bytes)`.
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((at, _)) => format!("{}... ({} bytes in all)", &s[..at], s.len()),
    }
}

/// `s` with every word (run of non-spaces) longer than [`MAX_WORD_CHARS`] clipped, and the
/// whole cut to [`MAX_ERROR_CHARS`]; newlines become spaces, so an error stays one line.
pub fn clip_words(s: &str) -> String {
    let words: Vec<String> = s.split([' ', '\n']).map(|w| clip(w, MAX_WORD_CHARS)).collect();
    clip(&words.join(" "), MAX_ERROR_CHARS)
}

impl TraceError {
    /// An error at a 1-based line.
    pub fn line(file: &str, line: usize, message: impl Into<String>) -> TraceError {
        TraceError::at(file, Position::Line(line), message)
    }
    /// An error at a byte offset.
    pub fn offset(file: &str, offset: u64, message: impl Into<String>) -> TraceError {
        TraceError::at(file, Position::Offset(offset), message)
    }
    /// An error about the whole file.
    pub fn file(file: &str, message: impl Into<String>) -> TraceError {
        TraceError::at(file, Position::File, message)
    }
    /// An error at `at`; the message is clipped to [`MAX_ERROR_CHARS`].
    pub fn at(file: &str, at: Position, message: impl Into<String>) -> TraceError {
        TraceError { file: clip(file, MAX_ERROR_CHARS), at, message: clip_words(&message.into()) }
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
    /// Where in the file each op is (or, for an strace log, the line it came from).
    pub positions: Vec<Position>,
    /// The importer's report when the file was a perf capture.
    pub perf: Option<PerfReport>,
}

/// Whether `path` means standard input (`-`).
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// The bytes of `path`, or of standard input when it is `-`, and the name errors use.
pub fn read_input(path: &Path) -> Result<(Vec<u8>, String), TraceError> {
    if is_stdin(path) {
        let name = "<stdin>".to_string();
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|e| TraceError::file(&name, format!("cannot read: {e}")))?;
        return Ok((bytes, name));
    }
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| TraceError::file(&name, format!("cannot read: {e}")))?;
    Ok((bytes, name))
}

/// Reads a trace file in any format ([`detect`]), imports strace logs with `import`, and
/// validates the ops. `file` in errors is `path` as displayed; `-` reads standard input.
pub fn load_with(path: &Path, import: &ImportOptions) -> Result<Loaded, TraceError> {
    let (bytes, name) = read_input(path)?;
    load_bytes(&bytes, &name, import)
}

/// Where each op of a played stream came from: the file and the position of the op (or of
/// the op a synthesized touch follows).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources {
    /// The file name as displayed.
    pub file: String,
    /// Position of each played op.
    pub at: Vec<Position>,
}

impl Sources {
    /// `FILE:LINE`, `FILE: byte N` or `FILE` for op `index` of the played stream.
    pub fn locate(&self, index: u64) -> String {
        match usize::try_from(index).ok().and_then(|i| self.at.get(i)) {
            Some(Position::Line(n)) => format!("{}:{n}", self.file),
            Some(Position::Offset(n)) => format!("{}: byte {n}", self.file),
            _ => self.file.clone(),
        }
    }
}

/// A trace made ready for a replay: loaded, with touches when it had none, and where each
/// played op came from.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The ops to play.
    pub trace: Trace,
    /// The importer's report when the file was an strace log (a replay prints it, as
    /// `import` does).
    pub report: Option<ImportReport>,
    /// The importer's report when the file was a perf capture.
    pub perf: Option<PerfReport>,
    /// Where each op of `trace` came from.
    pub sources: Sources,
}

/// Loads `path` (`-`: standard input) like [`load_with`] and adds touches as
/// [`ensure_touches`] does.
pub fn prepare(path: &Path, import: &ImportOptions, touch: &TouchOptions) -> Result<Prepared, TraceError> {
    let (bytes, name) = read_input(path)?;
    let loaded = load_bytes(&bytes, &name, import)?;
    let (trace, index) =
        ensure_touches_indexed(loaded.trace, touch).map_err(|e| TraceError::file(&name, e.to_string()))?;
    let at = index.iter().map(|&i| loaded.positions.get(i).copied().unwrap_or(Position::File)).collect();
    Ok(Prepared { trace, report: loaded.report, perf: loaded.perf, sources: Sources { file: name, at } })
}

/// [`load_with`] default import options.
pub fn load(path: &Path) -> Result<Trace, TraceError> {
    load_with(path, &ImportOptions::default()).map(|l| l.trace)
}

/// Like [`load_with`] for bytes already in memory; `name` is used in errors.
pub fn load_bytes(bytes: &[u8], name: &str, import: &ImportOptions) -> Result<Loaded, TraceError> {
    let format = detect(bytes);
    if format == Format::Binary {
        let binary::Decoded { trace, ops_at, page_size_at } = binary::decode_binary_positions(bytes, name)?;
        page_size(&trace, name, Position::Offset(page_size_at))?;
        check(&trace, name, |i| Position::Offset(ops_at[i]))?;
        let positions = ops_at.iter().map(|&o| Position::Offset(o)).collect();
        return Ok(Loaded { trace, format, report: None, positions, perf: None });
    }
    if format == Format::Perf {
        let (trace, report) = import_perf(bytes, name, import)?;
        check(&trace, name, |_| Position::File)?;
        let positions = vec![Position::File; trace.ops.len()];
        return Ok(Loaded { trace, format, report: None, positions, perf: Some(report) });
    }
    let text = as_text(bytes, name)?;
    match format {
        Format::Text => {
            let (trace, lines) = text::parse_text_positions(text, name)?;
            let header = text.lines().position(|l| !l.trim().is_empty()).unwrap_or(0) + 1;
            page_size(&trace, name, Position::Line(header))?;
            check(&trace, name, |i| Position::Line(lines[i]))?;
            let positions = lines.iter().map(|&l| Position::Line(l)).collect();
            Ok(Loaded { trace, format, report: None, positions, perf: None })
        }
        _ => {
            let (trace, report, lines) = import_strace_lines(text, name, import)?;
            let positions: Vec<Position> =
                lines.iter().map(|l| l.map(Position::Line).unwrap_or(Position::File)).collect();
            // The importer only emits consistent ops; a failure here is a bug worth a clear
            // message rather than a replay error much later.
            check(&trace, name, |i| positions.get(i).copied().unwrap_or(Position::File))?;
            Ok(Loaded { trace, format, report: Some(report), positions, perf: None })
        }
    }
}

/// Refuses a trace whose page counts are not in the 4 KiB pages the replayer plays: reading
/// `page=8192` counts as 4 KiB pages would silently halve every size.
fn page_size(trace: &Trace, name: &str, at: Position) -> Result<(), TraceError> {
    let p = trace.header.page_size;
    if p == TRACE_PAGE_SIZE {
        return Ok(());
    }
    Err(TraceError::at(
        name,
        at,
        format!(
            "page size {p} is not supported: the replayer plays {TRACE_PAGE_SIZE}-byte pages; \
             convert the trace to page={TRACE_PAGE_SIZE} (every count times {p}/{TRACE_PAGE_SIZE})"
        ),
    ))
}

fn check(trace: &Trace, name: &str, pos: impl Fn(usize) -> Position) -> Result<(), TraceError> {
    validate(trace).map(|_| ()).map_err(|e| TraceError::at(name, pos(e.index), e.message))
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
    fn long_tokens_are_clipped_in_errors() {
        let big = "y".repeat(1 << 20);
        let e = TraceError::line("t", 2, format!("bad number '{big}' in op"));
        let shown = e.to_string();
        assert!(shown.len() < 300, "{} bytes", shown.len());
        assert!(shown.ends_with(" in op"), "{shown}");
        assert!(shown.contains("(1048578 bytes in all)"), "{shown}");
        assert_eq!(clip_words("short words stay"), "short words stay");
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
