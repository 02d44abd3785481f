//! What the fuzz targets check, shared between them: a trace reader given arbitrary bytes
//! returns a trace or an error that names the file and a place inside it, never panics, and
//! every trace it returns survives both on-disk formats unchanged.
//!
//! These are the DESIGN §7 promises "a corrupted or truncated trace gives an error with its
//! location, never a panic" and "the writer is the exact inverse of the parser", checked on
//! inputs libFuzzer mutates instead of on hand-picked ones.

use vmstorm_loadgen::op::Trace;
use vmstorm_loadgen::trace::{
    decode_binary, encode_binary, parse_text, validate, write_text, Position, TraceError, BINARY_MAGIC,
};

/// The file name every target passes to the readers; errors must repeat it.
pub const NAME: &str = "fuzz.input";

/// Asserts that `e` is a well-formed error for an input of `len` bytes and `lines` lines:
/// it names [`NAME`], its message is one non-empty line, and its place is inside the input.
/// A whole-file error is only acceptable for an input with nothing in it ("empty file").
pub fn check_error(e: &TraceError, len: usize, lines: usize) {
    assert_eq!(e.file, NAME, "error names another file: {e}");
    assert!(!e.message.is_empty(), "empty error message: {e:?}");
    let shown = e.to_string();
    assert!(!shown.contains('\n'), "error is not one line: {shown:?}");
    match e.at {
        Position::Line(n) => assert!(n >= 1 && n <= lines.max(1), "line {n} outside 1..={lines}: {e}"),
        Position::Offset(o) => assert!(o as usize <= len, "offset {o} past the end ({len}): {e}"),
        Position::File => assert!(e.message.starts_with("empty file"), "error without a line or offset: {e}"),
    }
}

/// Number of lines as the text parsers count them (`split('\n')`).
pub fn line_count(text: &str) -> usize {
    text.split('\n').count()
}

/// Asserts that `t` comes back unchanged from the text writer and parser and from the
/// binary encoder and decoder, and that validating it does not panic.
pub fn check_round_trips(t: &Trace) {
    let text = write_text(t);
    match parse_text(&text, NAME) {
        Ok(back) => assert_eq!(&back, t, "text round trip changed the trace:\n{text}"),
        Err(e) => panic!("the text writer's output does not parse: {e}\n{text}"),
    }
    let bin = encode_binary(t);
    match decode_binary(&bin, NAME) {
        Ok(back) => assert_eq!(&back, t, "binary round trip changed the trace"),
        Err(e) => panic!("the binary encoder's output does not decode: {e}"),
    }
    let _ = validate(t);
}

/// FNV-1a 64, the binary format's checksum (kept here so a target can repair it).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// `bytes` with the binary magic in front (unless already there) and a correct trailing
/// checksum, so that mutations reach the decoder's body instead of dying at the checksum.
pub fn with_valid_checksum(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 16);
    if !bytes.starts_with(&BINARY_MAGIC) {
        out.extend_from_slice(&BINARY_MAGIC);
    }
    out.extend_from_slice(bytes);
    if out.len() < BINARY_MAGIC.len() + 8 {
        out.resize(BINARY_MAGIC.len() + 8, 0);
    }
    let body = out.len() - 8;
    let sum = fnv1a(&out[..body]).to_le_bytes();
    out[body..].copy_from_slice(&sum);
    out
}
