//! The compact binary trace format, for traces too large to keep as text.
//!
//! Layout (all integers LEB128 varints unless said otherwise):
//!
//! ```text
//! magic      8 bytes  89 'V' 'M' 'T' 0d 0a 1a 0a   (PNG-style: catches text-mode mangling)
//! version    varint   FORMAT_VERSION
//! page_size  varint
//! source     string   (varint length + UTF-8 bytes)
//! names      varint count, then (pid varint, string) each
//! notes      varint count, then string each
//! recorded   version 2 only: one byte 0 (none) or 1, then 8 varints: faults kernel read
//!            write protwrite fetch other lost (see `RecordedFaults`)
//! ops        varint count, then per op: one tag byte and its fields
//! checksum   8 bytes  FNV-1a 64 of every byte before it, little-endian
//! ```
//! Op tags: 0 fork, 1 vfork, 2 exec, 3 exit, 4 mmap, 5 mmap-over, 6 munmap, 7 mprotect,
//! 8 mremap, 9 brk, 10 discard, 11 touch. A map spec is `pages` then one byte: bits 0-2
//! protection, bits 3-4 kind (0 private, 1 shared, 2 file), bit 5 prealloc. A touch carries
//! one byte: bits 0-2 place (0 text, 1 data, 2 heap, 3 stack, 4 mapping), bit 3 write; then the
//! mapping id for a mapping place, the offset and the page count.
//!
//! Decoding checks every length against the bytes left, so truncated or garbage input is an
//! error with its byte offset, never a panic or a huge allocation. This plays the role of the
//! pre-parsed op arrays that benches load outside their timed regions.

use crate::op::{
    ForkKind, ImageSize, MapId, MapKind, MapSpec, Op, Pid, Place, Prot, RecordedFaults, Trace,
    FORMAT_VERSION, FORMAT_VERSION_V1,
};
use crate::trace::TraceError;

/// The first eight bytes of every binary trace.
pub const BINARY_MAGIC: [u8; 8] = [0x89, b'V', b'M', b'T', 0x0d, 0x0a, 0x1a, 0x0a];

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |h, &b| (h ^ b as u64).wrapping_mul(FNV_PRIME))
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn spec_byte(s: &MapSpec) -> u8 {
    let kind = match s.kind {
        MapKind::Private => 0,
        MapKind::Shared => 1,
        MapKind::File => 2,
    };
    s.prot.bits() | (kind << 3) | ((s.prealloc as u8) << 5)
}

/// Encodes `trace` in the binary format.
pub fn encode_binary(trace: &Trace) -> Vec<u8> {
    let h = &trace.header;
    let mut out = Vec::with_capacity(32 + trace.ops.len() * 6);
    out.extend_from_slice(&BINARY_MAGIC);
    // Recorded faults need version 2; a header claiming 1 with them is written as 2.
    let version = if h.recorded.is_some() { h.version.max(FORMAT_VERSION) } else { h.version };
    put(&mut out, version as u64);
    put(&mut out, h.page_size as u64);
    put_str(&mut out, &h.source);
    put(&mut out, h.names.len() as u64);
    for (pid, name) in &h.names {
        put(&mut out, pid.0 as u64);
        put_str(&mut out, name);
    }
    put(&mut out, h.notes.len() as u64);
    for n in &h.notes {
        put_str(&mut out, n);
    }
    if version >= FORMAT_VERSION {
        match &h.recorded {
            None => out.push(0),
            Some(r) => {
                out.push(1);
                for v in [r.faults, r.kernel, r.read, r.write, r.protection_write, r.fetch, r.other, r.lost] {
                    put(&mut out, v);
                }
            }
        }
    }
    put(&mut out, trace.ops.len() as u64);
    for op in &trace.ops {
        encode_op(&mut out, op);
    }
    let sum = fnv1a(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

fn encode_op(out: &mut Vec<u8>, op: &Op) {
    match *op {
        Op::Fork { parent, child, kind } => {
            out.push(if kind == ForkKind::Vfork { 1 } else { 0 });
            put(out, parent.0 as u64);
            put(out, child.0 as u64);
        }
        Op::Exec { pid, image } => {
            out.push(2);
            put(out, pid.0 as u64);
            put(out, image.text_pages);
            put(out, image.data_pages);
            put(out, image.bss_pages);
            put(out, image.stack_pages);
        }
        Op::Exit { pid } => {
            out.push(3);
            put(out, pid.0 as u64);
        }
        Op::Mmap { pid, id, spec } => {
            out.push(4);
            put(out, pid.0 as u64);
            put(out, id.0 as u64);
            put(out, spec.pages);
            out.push(spec_byte(&spec));
        }
        Op::MmapOver { pid, id, over, offset, spec } => {
            out.push(5);
            put(out, pid.0 as u64);
            put(out, id.0 as u64);
            put(out, over.0 as u64);
            put(out, offset);
            put(out, spec.pages);
            out.push(spec_byte(&spec));
        }
        Op::Munmap { pid, id, offset, pages } | Op::Discard { pid, id, offset, pages } => {
            out.push(if matches!(op, Op::Munmap { .. }) { 6 } else { 10 });
            put(out, pid.0 as u64);
            put(out, id.0 as u64);
            put(out, offset);
            put(out, pages);
        }
        Op::Mprotect { pid, id, offset, pages, prot } => {
            out.push(7);
            put(out, pid.0 as u64);
            put(out, id.0 as u64);
            put(out, offset);
            put(out, pages);
            out.push(prot.bits());
        }
        Op::Mremap { pid, id, new_pages } => {
            out.push(8);
            put(out, pid.0 as u64);
            put(out, id.0 as u64);
            put(out, new_pages);
        }
        Op::Brk { pid, heap_pages } => {
            out.push(9);
            put(out, pid.0 as u64);
            put(out, heap_pages);
        }
        Op::Touch { pid, place, pages, write } => {
            out.push(11);
            put(out, pid.0 as u64);
            let (tag, id) = match place {
                Place::Text(_) => (0, None),
                Place::Data(_) => (1, None),
                Place::Heap(_) => (2, None),
                Place::Stack(_) => (3, None),
                Place::Map(id, _) => (4, Some(id)),
            };
            out.push(tag | ((write as u8) << 3));
            if let Some(id) = id {
                put(out, id.0 as u64);
            }
            put(out, place.offset());
            put(out, pages);
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    file: &'a str,
}

impl<'a> Reader<'a> {
    fn err(&self, at: usize, m: impl Into<String>) -> TraceError {
        TraceError::offset(self.file, at as u64, m)
    }
    fn byte(&mut self, what: &str) -> Result<u8, TraceError> {
        let b = *self.bytes.get(self.at).ok_or_else(|| {
            self.err(self.at, format!("unexpected end of data reading {what} (truncated?)"))
        })?;
        self.at += 1;
        Ok(b)
    }
    fn varint(&mut self, what: &str) -> Result<u64, TraceError> {
        let start = self.at;
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte(what)?;
            let bits = (b & 0x7f) as u64;
            if shift == 63 && bits > 1 {
                return Err(self.err(start, format!("{what}: varint overflows 64 bits")));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err(start, format!("{what}: varint longer than 10 bytes")))
    }
    fn u32(&mut self, what: &str) -> Result<u32, TraceError> {
        let start = self.at;
        let v = self.varint(what)?;
        u32::try_from(v).map_err(|_| self.err(start, format!("{what} {v} does not fit 32 bits")))
    }
    fn count(&mut self, what: &str, min_item_bytes: usize) -> Result<usize, TraceError> {
        let start = self.at;
        let n = self.varint(what)?;
        let left = (self.bytes.len() - self.at) / min_item_bytes.max(1);
        if n > left as u64 {
            return Err(self.err(
                start,
                format!("{what} count {n} exceeds the {left} that the remaining bytes can hold"),
            ));
        }
        Ok(n as usize)
    }
    fn string(&mut self, what: &str) -> Result<String, TraceError> {
        let len = self.count(what, 1)?;
        let start = self.at;
        let s = std::str::from_utf8(&self.bytes[start..start + len])
            .map_err(|_| self.err(start, format!("{what} is not UTF-8")))?;
        self.at += len;
        Ok(s.to_string())
    }
    fn spec(&mut self, pages: u64) -> Result<MapSpec, TraceError> {
        let at = self.at;
        let b = self.byte("map flags")?;
        let prot = Prot::from_bits(b & 7).unwrap_or(Prot::NONE);
        let kind = match (b >> 3) & 3 {
            0 => MapKind::Private,
            1 => MapKind::Shared,
            2 => MapKind::File,
            _ => return Err(self.err(at, format!("bad map kind in flags byte {b:#04x}"))),
        };
        if b >> 6 != 0 {
            return Err(self.err(at, format!("unknown bits in map flags byte {b:#04x}")));
        }
        Ok(MapSpec { pages, prot, kind, prealloc: b & 0x20 != 0 })
    }
}

/// Decodes a binary trace; `file` names it in errors (`file: byte N: message`). Checks the
/// encoding only; [`crate::trace::validate`] checks that the ops are consistent.
pub fn decode_binary(bytes: &[u8], file: &str) -> Result<Trace, TraceError> {
    decode_binary_positions(bytes, file).map(|d| d.trace)
}

/// A decoded binary trace with the byte offsets its later checks report errors at.
pub(crate) struct Decoded {
    pub trace: Trace,
    /// Offset of every op, in order.
    pub ops_at: Vec<u64>,
    /// Offset of the header's page-size field.
    pub page_size_at: u64,
}

/// [`decode_binary`] that also returns where the header fields and every op start.
pub(crate) fn decode_binary_positions(bytes: &[u8], file: &str) -> Result<Decoded, TraceError> {
    if !bytes.starts_with(&BINARY_MAGIC) {
        return Err(TraceError::offset(file, 0, "not a binary vmtrace (bad magic)"));
    }
    if bytes.len() < BINARY_MAGIC.len() + 8 {
        return Err(TraceError::offset(file, bytes.len() as u64, "unexpected end of data (truncated?)"));
    }
    let body_end = bytes.len() - 8;
    let mut r = Reader { bytes: &bytes[..body_end], at: BINARY_MAGIC.len(), file };
    let mut trace = Trace::default();
    let at = r.at;
    let version = r.u32("version")?;
    if !(FORMAT_VERSION_V1..=FORMAT_VERSION).contains(&version) {
        return Err(r.err(
            at,
            format!(
                "unsupported binary vmtrace version {version} (this build reads {FORMAT_VERSION_V1} to {FORMAT_VERSION})"
            ),
        ));
    }
    trace.header.version = version;
    let at = r.at;
    let page_size_at = at as u64;
    let page = r.u32("page size")?;
    if !page.is_power_of_two() || !(512..=1 << 30).contains(&page) {
        return Err(r.err(at, format!("page size {page} is not a power of two in 512..=1G")));
    }
    trace.header.page_size = page;
    trace.header.source = r.string("source")?;
    let names = r.count("names", 2)?;
    for _ in 0..names {
        let at = r.at;
        let pid = Pid(r.u32("pid")?);
        let name = r.string("name")?;
        if trace.header.names.insert(pid, name).is_some() {
            return Err(r.err(at, format!("second name for {pid}")));
        }
    }
    let notes = r.count("notes", 1)?;
    for _ in 0..notes {
        let n = r.string("note")?;
        trace.header.notes.push(n);
    }
    if version >= FORMAT_VERSION {
        let at = r.at;
        match r.byte("recorded flag")? {
            0 => {}
            1 => {
                let mut v = [0u64; 8];
                for (slot, what) in v.iter_mut().zip([
                    "recorded faults",
                    "kernel faults",
                    "read faults",
                    "write faults",
                    "protection-write faults",
                    "fetch faults",
                    "other faults",
                    "lost events",
                ]) {
                    *slot = r.varint(what)?;
                }
                let [faults, kernel, read, write, protection_write, fetch, other, lost] = v;
                trace.header.recorded = Some(RecordedFaults {
                    faults,
                    kernel,
                    read,
                    write,
                    protection_write,
                    fetch,
                    other,
                    lost,
                });
            }
            b => return Err(r.err(at, format!("bad recorded flag {b}"))),
        }
    }
    let n_ops = r.count("ops", 2)?;
    trace.ops.reserve_exact(n_ops);
    let mut offsets = Vec::with_capacity(n_ops);
    for _ in 0..n_ops {
        offsets.push(r.at as u64);
        let op = decode_op(&mut r)?;
        trace.ops.push(op);
    }
    if r.at != body_end {
        return Err(r.err(r.at, format!("{} bytes of trailing data after the last op", body_end - r.at)));
    }
    let want = u64::from_le_bytes(bytes[body_end..].try_into().unwrap_or([0; 8]));
    if fnv1a(&bytes[..body_end]) != want {
        return Err(TraceError::offset(file, body_end as u64, "checksum mismatch: the file is corrupted"));
    }
    Ok(Decoded { trace, ops_at: offsets, page_size_at })
}

fn decode_op(r: &mut Reader<'_>) -> Result<Op, TraceError> {
    let at = r.at;
    let tag = r.byte("op tag")?;
    let pid = Pid(r.u32("pid")?);
    Ok(match tag {
        0 | 1 => Op::Fork {
            parent: pid,
            child: Pid(r.u32("child pid")?),
            kind: if tag == 1 { ForkKind::Vfork } else { ForkKind::Fork },
        },
        2 => Op::Exec {
            pid,
            image: ImageSize {
                text_pages: r.varint("text pages")?,
                data_pages: r.varint("data pages")?,
                bss_pages: r.varint("bss pages")?,
                stack_pages: r.varint("stack pages")?,
            },
        },
        3 => Op::Exit { pid },
        4 => {
            let id = MapId(r.u32("mapping id")?);
            let pages = r.varint("pages")?;
            Op::Mmap { pid, id, spec: r.spec(pages)? }
        }
        5 => {
            let id = MapId(r.u32("mapping id")?);
            let over = MapId(r.u32("mapping id")?);
            let offset = r.varint("offset")?;
            let pages = r.varint("pages")?;
            Op::MmapOver { pid, id, over, offset, spec: r.spec(pages)? }
        }
        6 | 10 => {
            let id = MapId(r.u32("mapping id")?);
            let offset = r.varint("offset")?;
            let pages = r.varint("pages")?;
            if tag == 6 {
                Op::Munmap { pid, id, offset, pages }
            } else {
                Op::Discard { pid, id, offset, pages }
            }
        }
        7 => {
            let id = MapId(r.u32("mapping id")?);
            let offset = r.varint("offset")?;
            let pages = r.varint("pages")?;
            let pat = r.at;
            let b = r.byte("protection")?;
            let prot =
                Prot::from_bits(b).ok_or_else(|| r.err(pat, format!("bad protection byte {b:#04x}")))?;
            Op::Mprotect { pid, id, offset, pages, prot }
        }
        8 => Op::Mremap { pid, id: MapId(r.u32("mapping id")?), new_pages: r.varint("pages")? },
        9 => Op::Brk { pid, heap_pages: r.varint("heap pages")? },
        11 => {
            let pat = r.at;
            let b = r.byte("touch flags")?;
            if b >> 4 != 0 {
                return Err(r.err(pat, format!("unknown bits in touch flags {b:#04x}")));
            }
            let id = if b & 7 == 4 { Some(MapId(r.u32("mapping id")?)) } else { None };
            let off = r.varint("offset")?;
            let place = match (b & 7, id) {
                (0, _) => Place::Text(off),
                (1, _) => Place::Data(off),
                (2, _) => Place::Heap(off),
                (3, _) => Place::Stack(off),
                (4, Some(id)) => Place::Map(id, off),
                _ => return Err(r.err(pat, format!("bad touch place in flags {b:#04x}"))),
            };
            Op::Touch { pid, place, pages: r.varint("pages")?, write: b & 8 != 0 }
        }
        _ => return Err(r.err(at, format!("unknown op tag {tag}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [0, 1, 127, 128, 16383, 16384, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put(&mut out, v);
            let mut r = Reader { bytes: &out, at: 0, file: "t" };
            assert_eq!(r.varint("v").unwrap(), v);
            assert_eq!(r.at, out.len());
        }
        let bad = [0xffu8; 11];
        let mut r = Reader { bytes: &bad, at: 0, file: "t" };
        assert!(r.varint("v").is_err());
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        let mut r = Reader { bytes: &over, at: 0, file: "t" };
        assert!(r.varint("v").unwrap_err().message.contains("overflows"));
    }

    #[test]
    fn empty_trace_is_small_and_checked() {
        let t = Trace::new("s");
        let b = encode_binary(&t);
        assert_eq!(decode_binary(&b, "f").unwrap(), t);
        let mut bad = b.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        let e = decode_binary(&bad, "f").unwrap_err();
        assert!(e.message.contains("checksum"), "{e}");
        let e = decode_binary(&b[..10], "f").unwrap_err();
        assert_eq!(e.at, crate::trace::Position::Offset(10));
    }
}
