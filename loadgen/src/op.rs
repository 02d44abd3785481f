//! The address-independent operation model that storms and traces play into the VM server.
//!
//! An [`Op`] is one thing a process asks of the memory manager, expressed the way PM and the
//! kernel would turn it into VM requests (`VM_FORK`, `VM_EXEC_NEWMEM`, `VM_MMAP`, `VM_BRK`,
//! `VM_PAGEFAULT`, ...), but without any raw address: processes are trace-local ids ([`Pid`]),
//! mappings are trace-unique ids ([`MapId`]) and memory is named by a [`Place`] (a mapping id
//! or an image part plus a page offset). The replayer keeps its own `MapId -> address` table
//! per process, so a trace recorded on 64-bit Linux replays into an `x86-64` or an `i386`
//! address space with the server's own placement policy (first fit at or above the hint).
//!
//! This module replaces what the MINIX test programs (`test44`, `test10`, ...) encode by hand:
//! a script of process and memory calls. It owns no state; [`crate::trace::shadow`] checks
//! that a sequence of ops is consistent.

use std::collections::BTreeMap;
use std::fmt;

/// Newest version of the trace model and of both on-disk formats (`.vmtrace` text and
/// binary). Version 2 adds the header's [`RecordedFaults`] (traces imported from a perf
/// capture); a trace without them is still written as version 1 ([`FORMAT_VERSION_V1`]) so
/// that older builds read it, and both versions are read.
pub const FORMAT_VERSION: u32 = 2;

/// The first version: no recorded fault counts.
pub const FORMAT_VERSION_V1: u32 = 1;

/// The page size every trace is expressed in (bytes); the server's page and frame size.
pub const TRACE_PAGE_SIZE: u32 = 4096;

/// A trace-local process id.
///
/// Ids are never reused inside a trace: a Linux pid that is recycled gets a new `Pid`. The
/// replayer maps each `Pid` to a server endpoint when the process is created (by [`Op::Fork`],
/// or by the first [`Op::Exec`] of a root process).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Pid(pub u32);

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

/// A trace-unique mapping id.
///
/// An id is created by [`Op::Mmap`] or [`Op::MmapOver`] and never created twice. A forked child
/// inherits the parent's mappings under the same ids; each process then changes its own copy.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct MapId(pub u32);

impl fmt::Display for MapId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m{}", self.0)
    }
}

/// Page protection of a mapping: any combination of read, write and execute.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Prot(u8);

impl Prot {
    /// No access (`PROT_NONE`): a reservation.
    pub const NONE: Prot = Prot(0);
    /// Readable (`PROT_READ`).
    pub const READ: Prot = Prot(1);
    /// Writable (`PROT_WRITE`).
    pub const WRITE: Prot = Prot(2);
    /// Executable (`PROT_EXEC`).
    pub const EXEC: Prot = Prot(4);
    /// Read and write, the usual data protection.
    pub const RW: Prot = Prot(3);
    /// Read and execute, the usual text protection.
    pub const RX: Prot = Prot(5);

    /// The protection with bits `bits` (bit 0 read, bit 1 write, bit 2 execute), or `None` when
    /// other bits are set.
    pub const fn from_bits(bits: u8) -> Option<Prot> {
        if bits & !7 == 0 {
            Some(Prot(bits))
        } else {
            None
        }
    }
    /// The raw bits (bit 0 read, bit 1 write, bit 2 execute).
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// Whether every bit of `other` is set here.
    pub const fn contains(self, other: Prot) -> bool {
        self.0 & other.0 == other.0
    }
    /// The union of both protections.
    pub const fn union(self, other: Prot) -> Prot {
        Prot(self.0 | other.0)
    }
    /// Whether the pages may be written.
    pub const fn writable(self) -> bool {
        self.0 & 2 != 0
    }
    /// Whether the pages may be accessed at all.
    pub const fn accessible(self) -> bool {
        self.0 != 0
    }
    /// The three-letter form used by `/proc/PID/maps` and `.vmtrace`: `rw-`, `r-x`, `---`.
    pub fn letters(self) -> [u8; 3] {
        [
            if self.0 & 1 != 0 { b'r' } else { b'-' },
            if self.0 & 2 != 0 { b'w' } else { b'-' },
            if self.0 & 4 != 0 { b'x' } else { b'-' },
        ]
    }
    /// Parses the three-letter form (`rw-`, `r-x`, `---`, ...).
    pub fn from_letters(s: &str) -> Option<Prot> {
        let b = s.as_bytes();
        if b.len() != 3 {
            return None;
        }
        let mut bits = 0;
        for (i, (&c, want)) in b.iter().zip([b'r', b'w', b'x']).enumerate() {
            if c == want {
                bits |= 1 << i;
            } else if c != b'-' {
                return None;
            }
        }
        Some(Prot(bits))
    }
}

impl fmt::Display for Prot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = self.letters();
        write!(f, "{}{}{}", l[0] as char, l[1] as char, l[2] as char)
    }
}

impl fmt::Debug for Prot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Prot({self})")
    }
}

/// What backs a mapping.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MapKind {
    /// Anonymous private memory (`MAP_PRIVATE|MAP_ANON`): demand-zero, copied on write after a
    /// fork.
    Private,
    /// Anonymous shared memory (`MAP_SHARED|MAP_ANON`): demand-zero, shared with forked
    /// children (`VR_SHARED`).
    Shared,
    /// A file mapping (private or shared). The VM server has no file pages, so the replayer
    /// maps it as private demand-zero memory; the kind is kept for touch synthesis and reports.
    File,
}

/// Why a fork happened; the replayer may treat a vfork specially.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ForkKind {
    /// `fork()` or `clone()` without `CLONE_VM`: a copy-on-write copy of the parent.
    Fork,
    /// `vfork()` or `clone*(CLONE_VM|CLONE_VFORK)`: on Linux the child borrows the parent's
    /// space until it execs or exits. MINIX has no such sharing, so it is replayed as a fork;
    /// a replayer may skip the copy because the child only execs or exits.
    Vfork,
}

/// Sizes of a new program image, in pages (`struct exec_newmem` of `VM_EXEC_NEWMEM`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct ImageSize {
    /// Text (code and read-only data) pages.
    pub text_pages: u64,
    /// Initialized data pages.
    pub data_pages: u64,
    /// Zero-initialized data pages; the initial break is at the end of data + bss.
    pub bss_pages: u64,
    /// Initial stack pages (arguments, environment and the first frames).
    pub stack_pages: u64,
}

impl ImageSize {
    /// The image used when nothing better is known: a small static program.
    pub const DEFAULT: ImageSize = ImageSize { text_pages: 32, data_pages: 4, bss_pages: 4, stack_pages: 8 };
}

/// Shape of a new mapping: size, protection, backing and whether to fill it at once.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct MapSpec {
    /// Length in pages (rounded up from the byte length).
    pub pages: u64,
    /// Initial protection.
    pub prot: Prot,
    /// What backs it.
    pub kind: MapKind,
    /// Allocate and map every page at once (`MAP_PREALLOC` on MINIX, `MAP_POPULATE` on
    /// Linux) instead of on demand.
    pub prealloc: bool,
}

/// A page range in a process's memory, named without addresses.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Place {
    /// Page `n` of the program text (from the start of the text segment).
    Text(u64),
    /// Page `n` of the data + bss segment (from its start).
    Data(u64),
    /// Page `n` above the initial break (the heap grown by [`Op::Brk`]).
    Heap(u64),
    /// Page `n` below the stack top: `Stack(0)` is the topmost stack page, and a range of `k`
    /// pages from `Stack(n)` covers `Stack(n)` down to `Stack(n + k - 1)`.
    Stack(u64),
    /// Page `n` of mapping `id`, counted from the mapping's start.
    Map(MapId, u64),
}

impl Place {
    /// The page offset inside the place's area.
    pub const fn offset(self) -> u64 {
        match self {
            Place::Text(n) | Place::Data(n) | Place::Heap(n) | Place::Stack(n) => n,
            Place::Map(_, n) => n,
        }
    }
}

/// One operation of a storm or a trace. Each documents the MINIX request(s) it becomes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Op {
    /// `parent` forks `child` (a fresh id). Becomes `VM_FORK(parent, free slot)` from PM; the
    /// child inherits every mapping under the same ids, the heap and the image.
    Fork {
        /// The forking process.
        parent: Pid,
        /// The new process.
        child: Pid,
        /// Fork or vfork.
        kind: ForkKind,
    },
    /// `pid` replaces its image. Becomes `VM_EXEC_NEWMEM(pid, exec_newmem)` from PM: every
    /// region is dropped and text, data+bss and stack are built anew; the heap is empty. The
    /// first op of a process that is not a fork child is its `Exec`: the replayer creates such
    /// a root process first (as PM does for a process started by the system).
    Exec {
        /// The process.
        pid: Pid,
        /// Sizes of the new image.
        image: ImageSize,
    },
    /// `pid` exits. Becomes `VM_WILLEXIT` then `VM_EXIT` from PM; every frame it alone held
    /// is free again.
    Exit {
        /// The process.
        pid: Pid,
    },
    /// `pid` maps a new region `id` anywhere. Becomes `VM_MMAP` (hint 0, `MAP_ANON`, plus
    /// `MAP_SHARED` or `MAP_PREALLOC` as the spec says).
    Mmap {
        /// The process.
        pid: Pid,
        /// The new mapping's id.
        id: MapId,
        /// Size, protection, backing.
        spec: MapSpec,
    },
    /// `pid` maps a new region `id` exactly over pages `[offset, offset + spec.pages)` of its
    /// existing mapping `over`, replacing them (Linux `MAP_FIXED` inside a reservation, as
    /// `ld.so` does for each segment). Becomes `VM_MUNMAP` of that range followed by `VM_MMAP`
    /// with the range's start as hint (first fit at or above the hint lands exactly there).
    /// Afterwards `Place::Map(id, n)` is the same page as `Place::Map(over, offset + n)`.
    MmapOver {
        /// The process.
        pid: Pid,
        /// The new mapping's id.
        id: MapId,
        /// The mapping it lies in.
        over: MapId,
        /// First page of `over` it replaces.
        offset: u64,
        /// Size, protection, backing.
        spec: MapSpec,
    },
    /// `pid` unmaps pages `[offset, offset + pages)` of mapping `id`. Becomes `VM_MUNMAP`
    /// (with the 2010 defect fixed: any page range, not only a prefix of a region).
    Munmap {
        /// The process.
        pid: Pid,
        /// The mapping.
        id: MapId,
        /// First page.
        offset: u64,
        /// Number of pages.
        pages: u64,
    },
    /// `pid` changes the protection of pages `[offset, offset + pages)` of mapping `id`.
    /// Becomes the `mprotect` extension call (MINIX 2010 ignores protections).
    Mprotect {
        /// The process.
        pid: Pid,
        /// The mapping.
        id: MapId,
        /// First page.
        offset: u64,
        /// Number of pages.
        pages: u64,
        /// New protection.
        prot: Prot,
    },
    /// `pid` resizes the whole mapping `id` to `new_pages`, moving it if it must. Becomes the
    /// `mremap` extension call; the id keeps naming the mapping wherever it lands.
    Mremap {
        /// The process.
        pid: Pid,
        /// The mapping.
        id: MapId,
        /// New length in pages.
        new_pages: u64,
    },
    /// `pid` sets its break `heap_pages` pages above its initial break (the end of data +
    /// bss of its image). Becomes `VM_BRK(pid, initial break + heap_pages * page)`.
    Brk {
        /// The process.
        pid: Pid,
        /// Heap size in pages above the initial break.
        heap_pages: u64,
    },
    /// `pid` discards pages `[offset, offset + pages)` of mapping `id` (Linux
    /// `madvise(MADV_DONTNEED)`): their frames are freed and the next touch faults in a zero
    /// page. Becomes the discard extension call.
    Discard {
        /// The process.
        pid: Pid,
        /// The mapping.
        id: MapId,
        /// First page.
        offset: u64,
        /// Number of pages.
        pages: u64,
    },
    /// `pid` reads or writes one byte in each of `pages` pages from `place`. The replayer goes
    /// through the soft MMU; a missing or write-protected page raises `VM_PAGEFAULT` from the
    /// kernel with the x86 error code (not-present or protection, write bit).
    Touch {
        /// The process.
        pid: Pid,
        /// First page.
        place: Place,
        /// Number of pages.
        pages: u64,
        /// Write (true) or read (false).
        write: bool,
    },
}

impl Op {
    /// The process the op acts for (the parent for a fork).
    pub const fn pid(&self) -> Pid {
        match *self {
            Op::Fork { parent, .. } => parent,
            Op::Exec { pid, .. }
            | Op::Exit { pid }
            | Op::Mmap { pid, .. }
            | Op::MmapOver { pid, .. }
            | Op::Munmap { pid, .. }
            | Op::Mprotect { pid, .. }
            | Op::Mremap { pid, .. }
            | Op::Brk { pid, .. }
            | Op::Discard { pid, .. }
            | Op::Touch { pid, .. } => pid,
        }
    }

    /// The op's kind, for per-kind statistics.
    pub const fn kind(&self) -> OpKind {
        match self {
            Op::Fork { .. } => OpKind::Fork,
            Op::Exec { .. } => OpKind::Exec,
            Op::Exit { .. } => OpKind::Exit,
            Op::Mmap { .. } => OpKind::Mmap,
            Op::MmapOver { .. } => OpKind::MmapOver,
            Op::Munmap { .. } => OpKind::Munmap,
            Op::Mprotect { .. } => OpKind::Mprotect,
            Op::Mremap { .. } => OpKind::Mremap,
            Op::Brk { .. } => OpKind::Brk,
            Op::Discard { .. } => OpKind::Discard,
            Op::Touch { .. } => OpKind::Touch,
        }
    }
}

/// The kind of an [`Op`], without its fields.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum OpKind {
    /// [`Op::Fork`].
    Fork,
    /// [`Op::Exec`].
    Exec,
    /// [`Op::Exit`].
    Exit,
    /// [`Op::Mmap`].
    Mmap,
    /// [`Op::MmapOver`].
    MmapOver,
    /// [`Op::Munmap`].
    Munmap,
    /// [`Op::Mprotect`].
    Mprotect,
    /// [`Op::Mremap`].
    Mremap,
    /// [`Op::Brk`].
    Brk,
    /// [`Op::Discard`].
    Discard,
    /// [`Op::Touch`].
    Touch,
}

impl OpKind {
    /// Every kind, in declaration order.
    pub const ALL: [OpKind; 11] = [
        OpKind::Fork,
        OpKind::Exec,
        OpKind::Exit,
        OpKind::Mmap,
        OpKind::MmapOver,
        OpKind::Munmap,
        OpKind::Mprotect,
        OpKind::Mremap,
        OpKind::Brk,
        OpKind::Discard,
        OpKind::Touch,
    ];

    /// The lower-case name used in reports and JSON (`fork`, `mmap_over`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            OpKind::Fork => "fork",
            OpKind::Exec => "exec",
            OpKind::Exit => "exit",
            OpKind::Mmap => "mmap",
            OpKind::MmapOver => "mmap_over",
            OpKind::Munmap => "munmap",
            OpKind::Mprotect => "mprotect",
            OpKind::Mremap => "mremap",
            OpKind::Brk => "brk",
            OpKind::Discard => "discard",
            OpKind::Touch => "touch",
        }
    }
}

/// Facts about a trace that are not ops.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TraceHeader {
    /// Format version ([`FORMAT_VERSION`]).
    pub version: u32,
    /// Page size in bytes of every page count in the trace ([`TRACE_PAGE_SIZE`]).
    pub page_size: u32,
    /// Where the trace came from, e.g. `strace:make-j2` or `storm:fork`; may be empty.
    pub source: String,
    /// Command name of each process (the program it last exec'd, or its parent's).
    pub names: BTreeMap<Pid, String>,
    /// Free-form notes: clamped reservations, approximations, touch synthesis parameters.
    pub notes: Vec<String>,
    /// Page faults the capture recorded (version 2; perf captures only).
    pub recorded: Option<RecordedFaults>,
}

impl Default for TraceHeader {
    fn default() -> Self {
        TraceHeader {
            version: FORMAT_VERSION_V1,
            page_size: TRACE_PAGE_SIZE,
            source: String::new(),
            names: BTreeMap::new(),
            notes: Vec::new(),
            recorded: None,
        }
    }
}

/// What a fault capture saw, by x86 error code: every fault event at a user address of a
/// traced process, kept in the trace so a replay can compare its own faults with them.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct RecordedFaults {
    /// All fault events at user addresses (user- and kernel-mode).
    pub faults: u64,
    /// Of them, taken in kernel mode (error code without the user bit: `read()` into a fresh
    /// buffer, `execve` writing the arguments).
    pub kernel: u64,
    /// Not-present reads (`0x4`).
    pub read: u64,
    /// Not-present writes (`0x6`): demand-zero or first write to a file page.
    pub write: u64,
    /// Protection writes (`0x7`): copy-on-write after fork or of a private file page.
    pub protection_write: u64,
    /// Instruction fetches (`0x14`, `0x15`).
    pub fetch: u64,
    /// Other codes (protection reads, reserved bits).
    pub other: u64,
    /// Events the kernel dropped (`PERF_RECORD_LOST`): the capture is incomplete when > 0.
    pub lost: u64,
}

/// A whole trace: a header and the ops in the order they are played.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Trace {
    /// Header facts.
    pub header: TraceHeader,
    /// The ops, in order.
    pub ops: Vec<Op>,
}

impl Trace {
    /// An empty trace with a default header naming `source`.
    pub fn new(source: impl Into<String>) -> Trace {
        Trace { header: TraceHeader { source: source.into(), ..TraceHeader::default() }, ops: Vec::new() }
    }

    /// Whether any op is a [`Op::Touch`] (imported traces have none until synthesized).
    pub fn has_touches(&self) -> bool {
        self.ops.iter().any(|op| matches!(op, Op::Touch { .. }))
    }

    /// How many ops of each kind the trace holds, indexed like [`OpKind::ALL`].
    pub fn counts(&self) -> [u64; 11] {
        let mut c = [0u64; 11];
        for op in &self.ops {
            c[op.kind() as usize] += 1;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prot_letters_round_trip() {
        for bits in 0..8 {
            let p = Prot::from_bits(bits).unwrap();
            let s = p.to_string();
            assert_eq!(Prot::from_letters(&s), Some(p));
        }
        assert_eq!(Prot::RW.to_string(), "rw-");
        assert_eq!(Prot::RX.to_string(), "r-x");
        assert_eq!(Prot::from_letters("wr-"), None);
        assert_eq!(Prot::from_letters("rw"), None);
        assert_eq!(Prot::from_bits(8), None);
    }

    #[test]
    fn counts_by_kind() {
        let mut t = Trace::new("x");
        t.ops.push(Op::Exit { pid: Pid(1) });
        t.ops.push(Op::Brk { pid: Pid(1), heap_pages: 1 });
        let c = t.counts();
        assert_eq!(c[OpKind::Exit as usize], 1);
        assert_eq!(c[OpKind::Brk as usize], 1);
        assert!(!t.has_touches());
    }
}
