//! The closed set of frame-allocator strategies, as named on the command line.
//!
//! MINIX chose its allocator at build time (`vm_paged`); here the strategy is picked once at
//! start-up by name and the server is monomorphized over it.

use core::fmt;
use core::str::FromStr;

/// A frame-allocator strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum AllocKind {
    /// [`crate::frames::Bitset`]: hierarchical bitset with summary words (the default).
    #[default]
    Bitset,
    /// [`crate::frames::Buddy`]: binary buddy system.
    Buddy,
    /// [`crate::frames::HoleList`]: MINIX 3.1's first-fit hole list (the baseline).
    HoleList,
}

impl AllocKind {
    /// Every strategy, default first.
    pub const ALL: [AllocKind; 3] = [AllocKind::Bitset, AllocKind::Buddy, AllocKind::HoleList];

    /// The command-line name (`bitset`, `buddy`, `holelist`), equal to
    /// [`crate::frames::FrameAllocator::name`] of the strategy.
    pub const fn name(self) -> &'static str {
        match self {
            AllocKind::Bitset => "bitset",
            AllocKind::Buddy => "buddy",
            AllocKind::HoleList => "holelist",
        }
    }
}

impl fmt::Display for AllocKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a frame-allocator strategy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownAllocKind(pub String);

impl fmt::Display for UnknownAllocKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown frame allocator `{}` (expected one of: bitset, buddy, holelist)", self.0)
    }
}

impl std::error::Error for UnknownAllocKind {}

impl FromStr for AllocKind {
    type Err = UnknownAllocKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AllocKind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| UnknownAllocKind(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::{Bitset, Buddy, FrameAllocator, HoleList};

    #[test]
    fn names_round_trip_and_match_the_strategies() {
        for k in AllocKind::ALL {
            assert_eq!(k.name().parse::<AllocKind>(), Ok(k));
            assert_eq!(k.to_string(), k.name());
        }
        assert_eq!(Bitset::with_frames(1).name(), AllocKind::Bitset.name());
        assert_eq!(Buddy::with_frames(1).name(), AllocKind::Buddy.name());
        assert_eq!(HoleList::with_frames(1).name(), AllocKind::HoleList.name());
        assert_eq!(AllocKind::default(), AllocKind::Bitset);
    }

    #[test]
    fn unknown_names_are_refused() {
        let e = "slab".parse::<AllocKind>().unwrap_err();
        assert_eq!(e, UnknownAllocKind("slab".into()));
        assert!(e.to_string().contains("bitset, buddy, holelist"));
        assert!("Bitset".parse::<AllocKind>().is_err());
    }
}
