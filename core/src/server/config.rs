//! The server's boot configuration and policies: [`VmConfig`], [`ZeroPolicy`] and the
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
    /// Take a frame from a pool zeroed off the fault path (refilled by [`Vm::idle`]).
    Prezeroed,
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
    /// Run [`Vm::check_invariants`] at this level after every message (off by default).
    pub sanity: Option<SanityLevel>,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            arena: ArenaConfig::default(),
            slots: DEFAULT_SLOTS,
            fork: ForkPolicy::Cow,
            zero: ZeroPolicy::OnFault,
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
