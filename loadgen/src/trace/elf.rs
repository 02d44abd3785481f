//! Image sizes of a program from its ELF program headers, for exec ops of imported traces.
//!
//! MINIX's exec read an a.out header (`text_bytes`, `data_bytes`, `bss_bytes` of
//! `struct exec_newmem`); this reads the ELF equivalent: the `PT_LOAD` segments. Non-writable
//! segments (code, read-only data, headers) count as text; writable ones give data (their
//! file part) and bss (their zero-filled tail). A `#!` script is followed to its
//! interpreter once. Only the headers are read; any malformed file gives `None`.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::op::ImageSize;

const PT_LOAD: u32 = 1;
const PF_W: u32 = 2;
const PAGE: u64 = 4096;
/// Most bytes read from the start of a file: enough for any sane header table.
const HEAD_BYTES: u64 = 64 * 1024;

fn read_head(path: &Path) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    File::open(path).ok()?.take(HEAD_BYTES).read_to_end(&mut buf).ok()?;
    Some(buf)
}

/// Image sizes of the program at `path`, or `None` if it is not a readable ELF file (or a
/// script whose interpreter is one).
pub fn image_size(path: &Path) -> Option<ImageSize> {
    let head = read_head(path)?;
    if let Some(rest) = head.strip_prefix(b"#!") {
        let line = rest.split(|&b| b == b'\n').next()?;
        let interp = std::str::from_utf8(line).ok()?.split_whitespace().next()?;
        return parse(&read_head(Path::new(interp))?);
    }
    parse(&head)
}

fn field(b: &[u8], off: usize, len: usize, le: bool) -> Option<u64> {
    let s = b.get(off..off.checked_add(len)?)?;
    let mut v = 0u64;
    for i in 0..len {
        let byte = if le { s[len - 1 - i] } else { s[i] };
        v = (v << 8) | byte as u64;
    }
    Some(v)
}

/// Image sizes from the bytes of an ELF file's start.
pub fn parse(b: &[u8]) -> Option<ImageSize> {
    if b.get(..4)? != b"\x7fELF" {
        return None;
    }
    let wide = match b.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let le = match b.get(5)? {
        1 => true,
        2 => false,
        _ => return None,
    };
    let (phoff, phentsize, phnum) = if wide {
        (field(b, 0x20, 8, le)?, field(b, 0x36, 2, le)?, field(b, 0x38, 2, le)?)
    } else {
        (field(b, 0x1c, 4, le)?, field(b, 0x2a, 2, le)?, field(b, 0x2c, 2, le)?)
    };
    let (mut text, mut data, mut bss) = (0u64, 0u64, 0u64);
    let mut loads = 0;
    for i in 0..phnum {
        let at = usize::try_from(phoff.checked_add(i.checked_mul(phentsize)?)?).ok()?;
        let typ = field(b, at, 4, le)? as u32;
        if typ != PT_LOAD {
            continue;
        }
        let (flags, vaddr, filesz, memsz) = if wide {
            (
                field(b, at + 4, 4, le)? as u32,
                field(b, at + 0x10, 8, le)?,
                field(b, at + 0x20, 8, le)?,
                field(b, at + 0x28, 8, le)?,
            )
        } else {
            (
                field(b, at + 0x18, 4, le)? as u32,
                field(b, at + 8, 4, le)?,
                field(b, at + 0x10, 4, le)?,
                field(b, at + 0x14, 4, le)?,
            )
        };
        loads += 1;
        let first = vaddr / PAGE;
        let file_end = vaddr.checked_add(filesz)?.div_ceil(PAGE);
        let mem_end = vaddr.checked_add(memsz.max(filesz))?.div_ceil(PAGE);
        if flags & PF_W != 0 {
            data += file_end.saturating_sub(first);
            bss += mem_end - file_end.max(first).min(mem_end);
        } else {
            text += mem_end.saturating_sub(first);
        }
    }
    (loads > 0).then_some(ImageSize {
        text_pages: text.clamp(1, 1 << 20),
        data_pages: data.clamp(1, 1 << 20),
        bss_pages: bss.clamp(1, 1 << 20),
        stack_pages: ImageSize::DEFAULT.stack_pages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf64(loads: &[(u32, u64, u64, u64)]) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56 * loads.len()];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&(loads.len() as u16).to_le_bytes());
        for (i, &(flags, vaddr, filesz, memsz)) in loads.iter().enumerate() {
            let at = 64 + 56 * i;
            b[at..at + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
            b[at + 4..at + 8].copy_from_slice(&flags.to_le_bytes());
            b[at + 0x10..at + 0x18].copy_from_slice(&vaddr.to_le_bytes());
            b[at + 0x20..at + 0x28].copy_from_slice(&filesz.to_le_bytes());
            b[at + 0x28..at + 0x30].copy_from_slice(&memsz.to_le_bytes());
        }
        b
    }

    #[test]
    fn sizes_from_load_segments() {
        // r--, r-x (0x12000), r--, rw- with 0x1000 file + bss
        let b = elf64(&[
            (4, 0, 0x3000, 0x3000),
            (5, 0x4000, 0x12000, 0x12000),
            (4, 0x17000, 0x5000, 0x5000),
            (6, 0x1c010, 0x1500, 0x3800),
        ]);
        let s = parse(&b).unwrap();
        assert_eq!(s.text_pages, 3 + 0x12 + 5);
        assert_eq!(s.data_pages, 2);
        assert_eq!(s.bss_pages, 2);
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(parse(b""), None);
        assert_eq!(parse(b"\x7fELF\x02\x01"), None);
        let mut b = elf64(&[(5, 0, 0x1000, 0x1000)]);
        b[0x38] = 200; // more headers than bytes
        assert_eq!(parse(&b), None);
        assert_eq!(image_size(Path::new("/nonexistent/program")), None);
    }

    #[test]
    fn reads_a_real_program_when_present() {
        if let Some(s) = image_size(Path::new("/bin/sh")) {
            assert!(s.text_pages >= 1 && s.data_pages >= 1);
        }
    }
}
