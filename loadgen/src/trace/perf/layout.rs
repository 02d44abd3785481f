//! The perf.data file layout checked before any record is decoded: header, sections and the
//! chain of record headers in the data section.
//!
//! The parser crate trusts the sizes in a file (a garbage section size becomes a huge
//! allocation, a zero-attribute file an index out of range); this pass checks every one
//! against the file's length first, so that a truncated or garbage capture is an error with
//! its byte offset instead. It also finds the byte offset of every `PERF_RECORD_LOST`, which
//! the sorted record stream no longer carries. No MINIX counterpart: it guards the input.

use crate::trace::TraceError;

/// `PERFILE2`, the magic of a little-endian perf.data file.
pub const PERF_MAGIC: [u8; 8] = *b"PERFILE2";

/// Size of the fixed file header.
const HEADER_SIZE: u64 = 104;
/// `PERF_RECORD_LOST`.
const RECORD_LOST: u32 = 2;
/// `PERF_RECORD_LOST_SAMPLES`.
const RECORD_LOST_SAMPLES: u32 = 13;
/// Smallest `perf_event_attr` (version 0).
const ATTR_SIZE_MIN: u64 = 64;
/// `PERF_RECORD_MMAP2`, `PERF_RECORD_AUXTRACE`, `PERF_RECORD_COMPRESSED(2)`.
const RECORD_MMAP2: u32 = 10;
const RECORD_AUXTRACE: u32 = 71;
const RECORD_COMPRESSED: u32 = 81;
const RECORD_COMPRESSED2: u32 = 83;
/// `PERF_RECORD_MISC_MMAP_BUILD_ID`.
const MISC_MMAP_BUILD_ID: u16 = 1 << 14;
/// Feature bits: `HEADER_ARCH`, `HEADER_EVENT_DESC`.
const FEATURE_ARCH: u32 = 6;
const FEATURE_EVENT_DESC: u32 = 12;

/// Checks a `perf_header_string` (u32 length, bytes) fits `[off, end)`; returns its end.
fn string_end(bytes: &[u8], off: u64, end: u64, file: &str, what: &str) -> Result<u64, TraceError> {
    if end - off < 4 {
        return Err(TraceError::offset(file, off, format!("{what}: string length cut short")));
    }
    let len = u32_at(bytes, off as usize) as u64;
    if len > end - off - 4 {
        return Err(TraceError::offset(
            file,
            off,
            format!("{what}: string of {len} bytes runs past its section"),
        ));
    }
    Ok(off + 4 + len)
}

fn check_string(bytes: &[u8], off: u64, end: u64, file: &str, what: &str) -> Result<(), TraceError> {
    string_end(bytes, off, end, file, what).map(|_| ())
}

/// Checks the `HEADER_EVENT_DESC` section: at least one event, every count and length
/// inside the section.
fn check_event_desc(bytes: &[u8], off: u64, end: u64, file: &str) -> Result<(), TraceError> {
    let bad = |at: u64, m: &str| Err(TraceError::offset(file, at, format!("event descriptions: {m}")));
    if end - off < 8 {
        return bad(off, "cut short");
    }
    let nr = u32_at(bytes, off as usize) as u64;
    let attr_size = u32_at(bytes, off as usize + 4) as u64;
    if nr == 0 || !(ATTR_SIZE_MIN..=4096).contains(&attr_size) {
        return bad(off, &format!("{nr} events of {attr_size}-byte attributes"));
    }
    let mut at = off + 8;
    for _ in 0..nr {
        if end - at < attr_size + 4 {
            return bad(at, "an event runs past the section");
        }
        at += attr_size;
        let ids = u32_at(bytes, at as usize) as u64;
        at = string_end(bytes, at + 4, end, file, "event name")?;
        if ids > (end - at) / 8 {
            return bad(at, &format!("{ids} event ids run past the section"));
        }
        at += 8 * ids;
    }
    Ok(())
}

/// What the layout pass learned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Byte range of the data section.
    pub data: (u64, u64),
    /// Records in the data section.
    pub records: u64,
    /// Byte offset of every `PERF_RECORD_LOST`/`LOST_SAMPLES` record and the events it says
    /// were lost.
    pub lost: Vec<(u64, u64)>,
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Checks the header, the sections and the record chain of `bytes`.
pub(crate) fn check(bytes: &[u8], file: &str) -> Result<Layout, TraceError> {
    let len = bytes.len() as u64;
    if bytes.len() >= 8 && bytes[..8] == *b"2ELIFREP" {
        return Err(TraceError::offset(
            file,
            0,
            "big-endian perf.data (recorded on a foreign architecture); only x86 captures can be imported",
        ));
    }
    if !bytes.starts_with(&PERF_MAGIC) {
        return Err(TraceError::offset(file, 0, "not a perf.data file (bad magic)"));
    }
    if len < HEADER_SIZE {
        return Err(TraceError::offset(file, len, "perf.data header cut short (truncated?)"));
    }
    let size = u64_at(bytes, 8);
    if size != HEADER_SIZE {
        return Err(TraceError::offset(
            file,
            8,
            format!("perf.data header size {size}, expected {HEADER_SIZE}"),
        ));
    }
    let attr_size = u64_at(bytes, 16);
    if !(ATTR_SIZE_MIN + 16..=4096).contains(&attr_size) {
        return Err(TraceError::offset(file, 16, format!("bad attribute entry size {attr_size}")));
    }
    let section = |at: usize, what: &str| -> Result<(u64, u64), TraceError> {
        let (off, sz) = (u64_at(bytes, at), u64_at(bytes, at + 8));
        match off.checked_add(sz) {
            Some(end) if end <= len => Ok((off, end)),
            _ => Err(TraceError::offset(
                file,
                len,
                format!("{what} section {off}+{sz} runs past the end of the file ({len} bytes; truncated?)"),
            )),
        }
    };
    let attrs = section(24, "attribute")?;
    if attrs.1 == attrs.0 || (attrs.1 - attrs.0) % attr_size != 0 {
        return Err(TraceError::offset(
            file,
            24,
            format!("attribute section of {} bytes holds no whole event attribute", attrs.1 - attrs.0),
        ));
    }
    // Each attribute entry ends with the file section of its event ids.
    let mut at = attrs.0;
    while at < attrs.1 {
        let ids = (at + attr_size - 16) as usize;
        section(ids, "event id")?;
        at += attr_size;
    }
    let data = section(40, "data")?;
    // Feature sections follow the data section: one (offset, size) pair per set flag bit.
    let mut flags = 0u32;
    for i in 0..4 {
        flags += u64_at(bytes, 72 + 8 * i).count_ones();
    }
    let table = data.1;
    let table_end = table + 16 * flags as u64;
    if table_end > len {
        return Err(TraceError::offset(
            file,
            len,
            format!("feature table of {flags} entries at byte {table} runs past the end (truncated?)"),
        ));
    }
    // Which feature each table entry belongs to, in bit order.
    let mut bits = Vec::new();
    for i in 0..256u32 {
        if u64_at(bytes, 72 + 8 * (i as usize / 64)) >> (i % 64) & 1 == 1 {
            bits.push(i);
        }
    }
    for (k, &bit) in bits.iter().enumerate() {
        let entry = table + 16 * k as u64;
        let (off, end) = section(entry as usize, "feature")?;
        if bit >= 128 {
            return Err(TraceError::offset(
                file,
                72 + 8 * (bit as u64 / 64),
                format!("feature {bit} is not one of Linux perf's (a simpleperf capture?)"),
            ));
        }
        match bit {
            FEATURE_ARCH => check_string(bytes, off, end, file, "ARCH")?,
            FEATURE_EVENT_DESC => check_event_desc(bytes, off, end, file)?,
            _ => {}
        }
    }
    let mut layout = Layout { data, ..Layout::default() };
    let mut at = data.0;
    while at < data.1 {
        if data.1 - at < 8 {
            return Err(TraceError::offset(
                file,
                at,
                "record header cut short at the end of the data section",
            ));
        }
        let i = at as usize;
        let kind = u32_at(bytes, i);
        let size = u16_at(bytes, i + 6) as u64;
        if size < 8 {
            return Err(TraceError::offset(
                file,
                at,
                format!("record {} has size {size} (garbage?)", layout.records + 1),
            ));
        }
        if at + size > data.1 {
            return Err(TraceError::offset(
                file,
                at,
                format!(
                    "record {} of {size} bytes runs past the data section (truncated?)",
                    layout.records + 1
                ),
            ));
        }
        match kind {
            RECORD_MMAP2
                if u16_at(bytes, i + 4) & MISC_MMAP_BUILD_ID != 0 && (size < 41 || bytes[i + 40] > 20) =>
            {
                return Err(TraceError::offset(
                    file,
                    at,
                    format!(
                        "record {}: mapping with a build id longer than 20 bytes (garbage?)",
                        layout.records + 1
                    ),
                ));
            }
            RECORD_AUXTRACE | RECORD_COMPRESSED | RECORD_COMPRESSED2 => {
                return Err(TraceError::offset(
                    file,
                    at,
                    format!(
                        "record {}: {} records are not supported (record without -z and without AUX tracing)",
                        layout.records + 1,
                        if kind == RECORD_AUXTRACE { "AUXTRACE" } else { "compressed" }
                    ),
                ));
            }
            _ => {}
        }
        if (kind == RECORD_LOST && size >= 24) || (kind == RECORD_LOST_SAMPLES && size >= 16) {
            let n = if kind == RECORD_LOST { u64_at(bytes, i + 16) } else { u64_at(bytes, i + 8) };
            layout.lost.push((at, n));
        }
        layout.records += 1;
        at += size;
    }
    Ok(layout)
}
