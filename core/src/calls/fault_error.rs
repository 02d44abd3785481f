//! Why a page fault could not be resolved ([`FaultError`]), and the errno it becomes when
//! the fault came as a kernel memory request (`handle_memory`).
//!
//! Replaces the seed's `EFAULT`/`ENOMEM` returns of `map_pf` and `map_handle_memory`. Its
//! own file because every step of the fault path returns it: the entry (`fault`), the
//! copy-on-write break (`cow`), the large-folio and huge-page paths.

use crate::errno::Errno;

/// Why a fault could not be resolved.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FaultError {
    /// The address is in no region (SIGSEGV).
    NoRegion,
    /// The region's protection forbids the access (SIGSEGV).
    Protection,
    /// No frame for the page or a page table.
    OutOfMemory,
}

impl From<FaultError> for Errno {
    fn from(e: FaultError) -> Errno {
        match e {
            FaultError::NoRegion | FaultError::Protection => Errno::EFAULT,
            FaultError::OutOfMemory => Errno::ENOMEM,
        }
    }
}
