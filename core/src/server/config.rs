//! The server's boot configuration and policies: [`VmConfig`], [`ZeroPolicy`], [`FolioSize`],
//! [`HugePolicy`] and the
//! boot errors ([`BootError`]), and the per-message invariant checking level with what
//! it reports ([`SanityLevel`], [`SanityError`]; the checks are in `crate::sanity`).
//!
//! Replaces the compile-time knobs of `servers/vm/{glo.h,vm.h}` (`NR_PROCS`, the fork
//! and zeroing choices) with values chosen at boot.

use crate::acl::AclFull;
use crate::arena::{ArenaConfig, ArenaError};
use crate::endpoint::{MAX_SLOTS, NR_BOOT_PROCS};
use crate::errno::Errno;
use crate::paging::{ForkPolicy, PagingError};
use crate::slots::DEFAULT_SLOTS;
use core::fmt;

/// When demand-zero pages are zeroed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum ZeroPolicy {
    /// Zero the frame inside the fault.
    #[default]
    OnFault,
    /// Take a frame from a pool zeroed off the fault path (refilled by [`crate::Vm::idle`]).
    Prezeroed,
}

/// The anonymous folio size a demand-zero write fault tries first, as one enabled size
/// of Linux's multi-size THP (`/sys/kernel/mm/transparent_hugepage/hugepages-<size>kB/
/// enabled`): the naturally aligned block of this size around the faulting page is
/// allocated contiguous, zeroed and mapped by ordinary leaf entries in one fault when the
/// rules of [`crate::calls::folio`] allow it, else the fault falls back to one 4 KiB page.
/// `4k` (the default, and MINIX's only size) turns large folios off.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub enum FolioSize {
    /// 4 KiB: one page per fault (large folios off).
    #[default]
    K4,
    /// 16 KiB (4 pages).
    K16,
    /// 32 KiB (8 pages).
    K32,
    /// 64 KiB (16 pages).
    K64,
    /// 128 KiB (32 pages).
    K128,
    /// 256 KiB (64 pages).
    K256,
    /// 512 KiB (128 pages).
    K512,
    /// 1 MiB (256 pages).
    M1,
}

impl FolioSize {
    /// Every size, smallest first.
    pub const ALL: [FolioSize; 8] = [
        FolioSize::K4,
        FolioSize::K16,
        FolioSize::K32,
        FolioSize::K64,
        FolioSize::K128,
        FolioSize::K256,
        FolioSize::K512,
        FolioSize::M1,
    ];

    /// log2 of the pages in a folio (Linux's folio order).
    #[inline]
    pub const fn order(self) -> u32 {
        match self {
            FolioSize::K4 => 0,
            FolioSize::K16 => 2,
            FolioSize::K32 => 3,
            FolioSize::K64 => 4,
            FolioSize::K128 => 5,
            FolioSize::K256 => 6,
            FolioSize::K512 => 7,
            FolioSize::M1 => 8,
        }
    }

    /// 4 KiB pages in a folio.
    #[inline]
    pub const fn pages(self) -> u64 {
        1 << self.order()
    }

    /// The name used on the command line (`4k` … `1m`).
    pub const fn name(self) -> &'static str {
        match self {
            FolioSize::K4 => "4k",
            FolioSize::K16 => "16k",
            FolioSize::K32 => "32k",
            FolioSize::K64 => "64k",
            FolioSize::K128 => "128k",
            FolioSize::K256 => "256k",
            FolioSize::K512 => "512k",
            FolioSize::M1 => "1m",
        }
    }

    /// The size named `s` (as [`FolioSize::name`], any case).
    pub fn parse(s: &str) -> Option<FolioSize> {
        FolioSize::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for FolioSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a demand-zero fault may map a whole page-directory entry's span with one huge
/// page (2 MiB with the x86-64 `PS` bit, 4 MiB with i386's `PSE`), as Linux's PMD-sized
/// THP (`/sys/kernel/mm/transparent_hugepage/enabled`). `never` (the default, and MINIX's
/// only choice) maps 4 KiB pages (or folios of [`FolioSize`]) only. The rules of
/// `always` are those of `crate::calls::huge`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub enum HugePolicy {
    /// No huge pages.
    #[default]
    Never,
    /// A huge page wherever the rules of the fault path allow one.
    Always,
}

impl HugePolicy {
    /// Both policies, `never` first.
    pub const ALL: [HugePolicy; 2] = [HugePolicy::Never, HugePolicy::Always];

    /// The name used on the command line (`never`, `always`).
    pub const fn name(self) -> &'static str {
        match self {
            HugePolicy::Never => "never",
            HugePolicy::Always => "always",
        }
    }

    /// The policy named `s` (as [`HugePolicy::name`], any case).
    pub fn parse(s: &str) -> Option<HugePolicy> {
        HugePolicy::ALL.into_iter().find(|h| h.name().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for HugePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How to boot a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmConfig {
    /// The physical memory.
    pub arena: ArenaConfig,
    /// Number of process slots (at least 11 for the boot image, at most 65,536).
    pub slots: usize,
    /// Fork policy.
    pub fork: ForkPolicy,
    /// Zeroing policy.
    pub zero: ZeroPolicy,
    /// Anonymous folio size of demand-zero write faults (4 KiB: large folios off).
    pub folio: FolioSize,
    /// Huge (page-directory-level) pages on demand-zero faults (off by default).
    pub huge: HugePolicy,
    /// Run [`crate::Vm::check_invariants`] at this level after every message (off by default).
    pub sanity: Option<SanityLevel>,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            arena: ArenaConfig::default(),
            slots: DEFAULT_SLOTS,
            fork: ForkPolicy::Cow,
            zero: ZeroPolicy::OnFault,
            folio: FolioSize::K4,
            huge: HugePolicy::Never,
            sanity: None,
        }
    }
}

impl VmConfig {
    /// The default configuration over an arena of `bytes` bytes.
    pub fn with_bytes(bytes: u64) -> VmConfig {
        VmConfig { arena: ArenaConfig { bytes, ..Default::default() }, ..Default::default() }
    }
}

/// Why a server could not boot.
#[derive(Debug)]
pub enum BootError {
    /// The arena could not be built.
    Arena(ArenaError),
    /// The slot count is below the boot image's 11 or above 65,536.
    TooManySlots(usize),
    /// The arena is too small for the boot image.
    OutOfMemory,
    /// The allocator given to `boot_with` does not manage exactly the arena's frames.
    AllocatorMismatch {
        /// Frames in the arena.
        arena: u64,
        /// Free frames the allocator reported.
        allocator: u64,
    },
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootError::Arena(e) => write!(f, "{e}"),
            BootError::TooManySlots(n) => {
                write!(f, "{n} process slots requested: need {NR_BOOT_PROCS} to {MAX_SLOTS}")
            }
            BootError::OutOfMemory => write!(f, "the arena is too small for the boot image"),
            BootError::AllocatorMismatch { arena, allocator } => {
                write!(f, "allocator has {allocator} free frames but the arena has {arena}")
            }
        }
    }
}

impl std::error::Error for BootError {}

/// The boot image's processes could not get a page-table frame.
impl From<PagingError> for BootError {
    fn from(_: PagingError) -> Self {
        BootError::OutOfMemory
    }
}

/// The boot image's call masks did not fit the call-mask table.
impl From<AclFull> for BootError {
    fn from(_: AclFull) -> Self {
        BootError::OutOfMemory
    }
}

/// The image builder's only failure at boot is running out of frames.
impl From<Errno> for BootError {
    fn from(_: Errno) -> Self {
        BootError::OutOfMemory
    }
}

impl From<ArenaError> for BootError {
    fn from(e: ArenaError) -> Self {
        BootError::Arena(e)
    }
}

/// How much to check.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum SanityLevel {
    /// Cheap structural checks (`SCL_TOP`).
    Top,
    /// Plus reference counts and allocator agreement (`SCL_FUNCTIONS`).
    Functions,
    /// Plus every page-table entry against its region (`SCL_DETAIL`).
    Detail,
}

/// A broken invariant: what, and where.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SanityError {
    /// The slot concerned, if any.
    pub slot: Option<usize>,
    /// What is wrong.
    pub what: String,
}

impl fmt::Display for SanityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.slot {
            Some(s) => write!(f, "slot {s}: {}", self.what),
            None => write!(f, "{}", self.what),
        }
    }
}

impl std::error::Error for SanityError {}
