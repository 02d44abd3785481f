//! The frame-allocator registry: the one list of strategies, and what is generated from it
//! (the [`AllocKind`] enum with its names, parsing and `ALL`, the strategy modules of
//! [`crate::frames`], the dispatch from a kind to its type, and the test matrix of
//! [`crate::every_strategy`]).
//!
//! MINIX chose its allocator at build time (`vm_paged`); here the strategy is picked once at
//! start-up by name and the server is monomorphized over it.
//!
//! Adding a strategy: write `frames/NAME.rs` (a type implementing
//! [`crate::frames::FrameAllocator`] whose `name()` is the command-line name) and add its
//! line to [`with_allocators!`]. Everything else (the CLI's `--alloc` choices and `all`, the
//! tests' strategy matrix, the frames property test, the benches' loops) follows.

use core::fmt;
use core::str::FromStr;

use super::FrameAllocator;

/// The registry of frame-allocator strategies, one line each:
/// `[Type module "cli-name" "one-line description"]`, default first.
///
/// Calls `$cb! { {args} [Type module "name" "doc"] ... }`, so that every list of strategies
/// in the workspace is generated from these lines.
#[macro_export]
macro_rules! with_allocators {
    ([$($cb:tt)*] { $($args:tt)* }) => {
        $($cb)*! {
            { $($args)* }
            [Bitset bitset "bitset" "hierarchical bitset with summary words"]
            [Buddy buddy "buddy" "binary buddy system; the default, behind a hot list"]
            [HoleList holelist "holelist" "MINIX 3.1's first-fit hole list, the baseline"]
            [Lifo lifo "lifo" "LIFO free stack: the most recently freed frame is reused first"]
        }
    };
}

/// Declares the strategy modules of `frames/` and re-exports their types (used once, in
/// `frames/mod.rs`).
#[doc(hidden)]
#[macro_export]
macro_rules! __declare_allocator_modules {
    ({} $([$ty:ident $module:ident $name:literal $doc:literal])*) => {
        $(
            mod $module;
            #[doc = concat!("`", $name, "`: ", $doc, ".")]
            pub use $module::$ty;
        )*
    };
}

macro_rules! declare_kinds {
    ({} $([$ty:ident $module:ident $name:literal $doc:literal])*) => {
        /// A frame-allocator strategy, as named on the command line.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum AllocKind {
            $(
                #[doc = concat!("[`crate::frames::", stringify!($ty), "`]: ", $doc, ".")]
                $ty,
            )*
        }

        impl AllocKind {
            /// Every strategy, default first.
            pub const ALL: &'static [AllocKind] = &[$(AllocKind::$ty),*];

            /// The command-line names, in the order of [`AllocKind::ALL`].
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            /// The command-line name, equal to [`crate::frames::FrameAllocator::name`] of the
            /// strategy.
            pub const fn name(self) -> &'static str {
                match self {
                    $(AllocKind::$ty => $name,)*
                }
            }

            /// One line on what the strategy is.
            pub const fn about(self) -> &'static str {
                match self {
                    $(AllocKind::$ty => $doc,)*
                }
            }

            /// Runs `job` with the strategy's type.
            #[inline]
            pub fn dispatch<J: AllocJob>(self, job: J) -> J::Output {
                match self {
                    $(AllocKind::$ty => job.run::<super::$ty>(),)*
                }
            }
        }
    };
}

crate::with_allocators!([declare_kinds] {});

// The first line of the registry is the default.
impl Default for AllocKind {
    fn default() -> Self {
        AllocKind::ALL[0]
    }
}

/// Work that needs a strategy's type: [`AllocKind::dispatch`] monomorphizes it once per
/// strategy and calls the one named.
pub trait AllocJob {
    /// What the job returns.
    type Output;
    /// Runs with strategy `F`.
    fn run<F: FrameAllocator>(self) -> Self::Output;
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
        write!(f, "unknown frame allocator `{}` (expected one of: {})", self.0, AllocKind::NAMES.join(", "))
    }
}

impl std::error::Error for UnknownAllocKind {}

impl FromStr for AllocKind {
    type Err = UnknownAllocKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AllocKind::ALL.iter().copied().find(|k| k.name() == s).ok_or_else(|| UnknownAllocKind(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NameOf;
    impl AllocJob for NameOf {
        type Output = &'static str;
        fn run<F: FrameAllocator>(self) -> &'static str {
            F::with_frames(1).name()
        }
    }

    #[test]
    fn names_round_trip_and_match_the_strategies() {
        assert!(AllocKind::ALL.len() >= 4);
        for &k in AllocKind::ALL {
            assert_eq!(k.name().parse::<AllocKind>(), Ok(k));
            assert_eq!(k.to_string(), k.name());
            assert_eq!(k.dispatch(NameOf), k.name(), "{k:?}");
            assert!(!k.about().is_empty());
        }
        assert_eq!(AllocKind::NAMES.len(), AllocKind::ALL.len());
        assert!(AllocKind::NAMES.starts_with(&["bitset", "buddy", "holelist", "lifo"]));
        assert_eq!(AllocKind::default(), AllocKind::Bitset);
    }

    #[test]
    fn unknown_names_are_refused() {
        let e = "slab".parse::<AllocKind>().unwrap_err();
        assert_eq!(e, UnknownAllocKind("slab".into()));
        assert!(e.to_string().contains(&AllocKind::NAMES.join(", ")));
        assert!(e.to_string().contains("bitset, buddy, holelist, lifo"));
        assert!("Bitset".parse::<AllocKind>().is_err());
    }
}
