//! Error numbers as the VM server sends them: MINIX's negative `errno` values.
//!
//! Replaces the `_SIGN`-negated constants of MINIX's `include/errno.h` as used by
//! `servers/vm` (a server puts `-EFOO` into a reply's `m_type`). Inner layers return small
//! per-operation error enums; they become an [`Errno`] at the message boundary, each
//! through the one `From` impl below (the fault path's `FaultError` has its own beside
//! it in `calls/fault.rs`).

use crate::acl::AclFull;
use crate::paging::PagingError;
use core::fmt;

/// The result code of a successful call (`OK` in MINIX).
pub const OK: i32 = 0;
/// A handler's "no reply now" result (`SUSPEND` in MINIX's `com.h`).
pub const SUSPEND: i32 = -998;

/// An error a VM call can answer with, carrying MINIX's negative value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(i32)]
pub enum Errno {
    /// Operation not permitted.
    EPERM = -1,
    /// No such process.
    ESRCH = -3,
    /// No such device or address.
    ENXIO = -6,
    /// Executable format error.
    ENOEXEC = -8,
    /// Try again.
    EAGAIN = -11,
    /// Out of memory.
    ENOMEM = -12,
    /// Bad address.
    EFAULT = -14,
    /// Invalid argument.
    EINVAL = -22,
    /// No space left (a fixed-size table is full).
    ENOSPC = -28,
    /// Function not implemented (also: call not allowed by the ACL, as MINIX answers).
    ENOSYS = -38,
    /// Source or destination endpoint is dead (stale generation or free slot).
    EDEADSRCDST = -105,
}

impl Errno {
    /// Every variant, in value order.
    pub const ALL: [Errno; 11] = [
        Errno::EPERM,
        Errno::ESRCH,
        Errno::ENXIO,
        Errno::ENOEXEC,
        Errno::EAGAIN,
        Errno::ENOMEM,
        Errno::EFAULT,
        Errno::EINVAL,
        Errno::ENOSPC,
        Errno::ENOSYS,
        Errno::EDEADSRCDST,
    ];

    /// The negative value put into a reply's `mtype`.
    #[inline]
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The error with this (negative) value, if it is one of ours.
    pub fn from_code(code: i32) -> Option<Errno> {
        Errno::ALL.iter().copied().find(|e| e.code() == code)
    }

    /// The symbolic name (`"ENOMEM"`).
    pub const fn name(self) -> &'static str {
        match self {
            Errno::EPERM => "EPERM",
            Errno::ESRCH => "ESRCH",
            Errno::ENXIO => "ENXIO",
            Errno::ENOEXEC => "ENOEXEC",
            Errno::EAGAIN => "EAGAIN",
            Errno::ENOMEM => "ENOMEM",
            Errno::EFAULT => "EFAULT",
            Errno::EINVAL => "EINVAL",
            Errno::ENOSPC => "ENOSPC",
            Errno::ENOSYS => "ENOSYS",
            Errno::EDEADSRCDST => "EDEADSRCDST",
        }
    }

    /// A short description.
    pub const fn description(self) -> &'static str {
        match self {
            Errno::EPERM => "operation not permitted",
            Errno::ESRCH => "no such process",
            Errno::ENXIO => "no such device or address",
            Errno::ENOEXEC => "exec format error",
            Errno::EAGAIN => "resource temporarily unavailable",
            Errno::ENOMEM => "not enough memory",
            Errno::EFAULT => "bad address",
            Errno::EINVAL => "invalid argument",
            Errno::ENOSPC => "no space left in a table",
            Errno::ENOSYS => "function not implemented or not allowed",
            Errno::EDEADSRCDST => "source or destination is not alive",
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {})", self.name(), self.description(), self.code())
    }
}

impl std::error::Error for Errno {}

/// A page-table operation that failed could not get a frame for a table (or, in eager
/// fork, a page copy), or was given an address or frame the format cannot hold: the
/// server answers every case as MINIX's `pt_*` failures are answered, `ENOMEM`.
impl From<PagingError> for Errno {
    #[inline]
    fn from(_: PagingError) -> Errno {
        Errno::ENOMEM
    }
}

/// A full call-mask table (`VM_RS_SET_PRIV` with a new mask): `ENOSPC`.
impl From<AclFull> for Errno {
    #[inline]
    fn from(_: AclFull) -> Errno {
        Errno::ENOSPC
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_minix_values() {
        assert_eq!(Errno::ENOMEM.code(), -12);
        assert_eq!(Errno::ENOSYS.code(), -38);
        assert_eq!(Errno::EDEADSRCDST.code(), -105);
        for e in Errno::ALL {
            assert_eq!(Errno::from_code(e.code()), Some(e));
            assert!(e.code() < 0);
        }
        assert_eq!(Errno::from_code(OK), None);
        assert_eq!(Errno::from_code(-2), None);
    }

    #[test]
    fn display_names_the_error() {
        let s = Errno::EFAULT.to_string();
        assert!(s.starts_with("EFAULT") && s.contains("-14"), "{s}");
    }
}
