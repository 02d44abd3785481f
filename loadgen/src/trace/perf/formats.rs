//! The tracepoint formats perf stores in a capture's `TRACING_DATA` feature section: for
//! every recorded tracepoint its id, `system:name` and the offset and size of each payload
//! field, read from the kernel's own format text rather than assumed.
//!
//! Section layout (perf's `trace-event-read.c`): the magic `17 08 44 "tracing"`, a
//! NUL-terminated version string, one endianness byte, one `long` size byte, a 4-byte page
//! size, the `header_page` and `header_event` files (name, 8-byte size, text), the ftrace
//! formats (4-byte count, then 8-byte size + text each), then the event systems (4-byte
//! count; per system a NUL-terminated name, a 4-byte count and 8-byte size + text per
//! event); kallsyms and printk follow and are not read. No MINIX counterpart: MINIX's kernel
//! reported faults to VM in a fixed message.

use hashbrown::HashMap;

/// One payload field of a tracepoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    /// Byte offset in the raw sample.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
}

/// One tracepoint's format.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct EventFormat {
    /// `system:name`.
    pub name: String,
    /// Fields by name.
    pub fields: HashMap<String, Field>,
}

impl EventFormat {
    /// Reads field `name` as an unsigned integer of its size, from `raw`; `None` when the
    /// field is missing, not 1/2/4/8 bytes, or beyond `raw`.
    pub fn get(&self, raw: &[u8], name: &str) -> Option<u64> {
        let f = self.fields.get(name)?;
        let b = raw.get(f.offset..f.offset.checked_add(f.size)?)?;
        Some(match f.size {
            1 => b[0] as u64,
            2 => u16::from_le_bytes([b[0], b[1]]) as u64,
            4 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64,
            8 => u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            _ => return None,
        })
    }

    /// Reads a `__data_loc char[]` field (a 4-byte offset | length << 16) as text.
    pub fn string(&self, raw: &[u8], name: &str) -> Option<String> {
        let loc = self.get(raw, name)?;
        let (off, len) = ((loc & 0xffff) as usize, (loc >> 16) as usize);
        let b = raw.get(off..off.checked_add(len)?)?;
        let b = b.split(|&c| c == 0).next().unwrap_or(b);
        Some(String::from_utf8_lossy(b).into_owned())
    }
}

/// What the section holds: formats by tracepoint id, and the word size of the kernel.
#[derive(Clone, Debug, Default)]
pub(crate) struct Formats {
    /// Formats by tracepoint id (the `config` of a tracepoint attribute).
    pub by_id: HashMap<u64, EventFormat>,
    /// `sizeof(long)` of the recording kernel.
    pub long_size: u8,
    /// Whether the kernel was big-endian.
    pub big_endian: bool,
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len()).ok_or_else(|| {
            format!("tracing data cut short at byte {} of {} (wanted {n} more)", self.at, self.b.len())
        })?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let s = self.take(8)?;
        Ok(u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]))
    }
    fn cstr(&mut self) -> Result<&'a str, String> {
        let rest = &self.b[self.at.min(self.b.len())..];
        let n = rest.iter().position(|&c| c == 0).ok_or("tracing data: unterminated string")?;
        let s =
            std::str::from_utf8(&rest[..n]).map_err(|_| "tracing data: string is not UTF-8".to_string())?;
        self.at += n + 1;
        Ok(s)
    }
    fn sized(&mut self) -> Result<&'a [u8], String> {
        let n = self.u64()?;
        let n = usize::try_from(n).map_err(|_| format!("tracing data: size {n} too large"))?;
        self.take(n)
    }
}

/// Parses one event's format text (`name:`, `ID:`, `field:` lines).
fn parse_event(system: &str, text: &str) -> Option<(u64, EventFormat)> {
    let mut name = None;
    let mut id = None;
    let mut fields = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(n) = line.strip_prefix("name:") {
            name = Some(n.trim().to_string());
        } else if let Some(n) = line.strip_prefix("ID:") {
            id = n.trim().parse::<u64>().ok();
        } else if let Some(rest) = line.strip_prefix("field:") {
            // field:unsigned long address;	offset:8;	size:8;	signed:0;
            let mut parts = rest.split(';').map(str::trim);
            let decl = parts.next()?;
            let fname = decl.rsplit([' ', '*']).next()?.split('[').next()?.to_string();
            let mut offset = None;
            let mut size = None;
            for p in parts {
                if let Some(v) = p.strip_prefix("offset:") {
                    offset = v.parse().ok();
                } else if let Some(v) = p.strip_prefix("size:") {
                    size = v.parse().ok();
                }
            }
            if let (Some(offset), Some(size)) = (offset, size) {
                fields.insert(fname, Field { offset, size });
            }
        }
    }
    Some((id?, EventFormat { name: format!("{system}:{}", name?), fields }))
}

/// Parses the `TRACING_DATA` section.
pub(crate) fn parse(b: &[u8]) -> Result<Formats, String> {
    let mut c = Cursor { b, at: 0 };
    if c.take(10)? != b"\x17\x08\x44tracing" {
        return Err("tracing data: bad magic".into());
    }
    let _version = c.cstr()?;
    let big_endian = c.take(1)?[0] != 0;
    let long_size = c.take(1)?[0];
    let _page = c.u32()?;
    let mut out = Formats { long_size, big_endian, ..Formats::default() };
    if big_endian {
        return Ok(out);
    }
    for want in ["header_page", "header_event"] {
        let got = c.take(want.len() + 1)?;
        if &got[..want.len()] != want.as_bytes() {
            return Err(format!("tracing data: expected the {want} file"));
        }
        c.sized()?;
    }
    let ftrace = c.u32()?;
    for _ in 0..ftrace {
        c.sized()?;
    }
    let systems = c.u32()?;
    for _ in 0..systems {
        let system = c.cstr()?.to_string();
        let n = c.u32()?;
        for _ in 0..n {
            let text = String::from_utf8_lossy(c.sized()?);
            if let Some((id, f)) = parse_event(&system, &text) {
                out.by_id.insert(id, f);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_of_a_format() {
        let text = "name: page_fault_user\nID: 120\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:unsigned long address;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:__data_loc char[] filename;\toffset:16;\tsize:4;\tsigned:0;\n";
        let (id, f) = parse_event("exceptions", text).unwrap();
        assert_eq!(id, 120);
        assert_eq!(f.name, "exceptions:page_fault_user");
        assert_eq!(f.fields["address"], Field { offset: 8, size: 8 });
        assert_eq!(f.fields["filename"], Field { offset: 16, size: 4 });
        let mut raw = vec![0u8; 24];
        raw[8..16].copy_from_slice(&0x7f00_1234u64.to_le_bytes());
        raw[16..20].copy_from_slice(&(20u32 | (3 << 16)).to_le_bytes());
        raw[20..23].copy_from_slice(b"ab\0");
        assert_eq!(f.get(&raw, "address"), Some(0x7f00_1234));
        assert_eq!(f.string(&raw, "filename").as_deref(), Some("ab"));
        assert_eq!(f.get(&raw[..10], "address"), None);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse(b"nonsense").is_err());
        assert!(parse(b"\x17\x08\x44tracing0.6").is_err());
    }
}
