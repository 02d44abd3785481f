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
    for i in 0..flags as u64 {
        section((table + 16 * i) as usize, "feature")?;
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
        if (kind == RECORD_LOST && size >= 24) || (kind == RECORD_LOST_SAMPLES && size >= 16) {
            let n = if kind == RECORD_LOST { u64_at(bytes, i + 16) } else { u64_at(bytes, i + 8) };
            layout.lost.push((at, n));
        }
        layout.records += 1;
        at += size;
    }
    Ok(layout)
}
